//! Many writer processes on one store: nothing is lost, and the catalog equals a rebuild from the log.
//!
//! The test binary re-executes itself as the writers (`TROVE_TEST_WORKER` says which), so each writer is a
//! real process with its own library handle, clock and catalog connection.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::{Value, json};
use trove::model::{DatasetPath, Ref};
use trove::{DatasetEdit, OpenOptions, Store};

const WORKER: &str = "TROVE_TEST_WORKER";

/// Shared datasets every writer also writes to.
const SHARED: u64 = 16;

/// A tiny deterministic generator, so a failure can be replayed (the seed is printed).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

/// What worker `w` writes in put number `i`: its own dataset (most puts), or a shared one. Every put sets a
/// key only this put sets (`w<w>_<i>`), so every key must survive; puts to shared datasets also set `last`,
/// which every writer sets (last write wins).
fn plan(w: u64, i: u64, seed: u64) -> (String, Vec<(String, Value)>) {
    let mut rng = Rng(seed ^ (w << 32 | i).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1);
    let shared = rng.next() % 10 < 3;
    let path = if shared { format!("shared/s{}", rng.next() % SHARED) } else { format!("w{w}/d{i}") };
    let mut meta = vec![(format!("w{w}_{i}"), json!(i))];
    if shared {
        meta.push(("last".into(), json!(format!("{w}/{i}"))));
    }
    (path, meta)
}

fn run_worker(root: &Path, w: u64, puts: u64, seed: u64, log_only: bool) {
    let store = Store::open_with(root, &OpenOptions { durable: Some(false), log_only, ..Default::default() }).unwrap();
    for i in 0..puts {
        let (path, meta) = plan(w, i, seed);
        let edit = DatasetEdit { meta, ..Default::default() };
        store.put("p", &DatasetPath::parse(&path).unwrap(), &edit, &[]).unwrap();
    }
}

/// Runs `writers` copies of this test binary as writers, all at once.
fn spawn_writers(test: &str, root: &Path, writers: u64, puts: u64, seed: u64) {
    let exe = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..writers)
        .map(|w| {
            Command::new(&exe)
                .args(["--exact", test, "--nocapture", "--test-threads", "1"])
                .env(WORKER, format!("{w}:{puts}:{seed}:{}", root.display()))
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "a writer failed: {}", String::from_utf8_lossy(&out.stderr));
    }
}

/// In a worker process: do the work and report whether this process was one.
fn as_worker(log_only: bool) -> bool {
    let Ok(spec) = std::env::var(WORKER) else { return false };
    let mut parts = spec.splitn(4, ':');
    let mut num = || parts.next().unwrap().parse::<u64>().unwrap();
    let (w, puts, seed) = (num(), num(), num());
    let root = parts.next().unwrap().to_string();
    run_worker(Path::new(&root), w, puts, seed, log_only);
    true
}

fn seed() -> u64 {
    let seed = std::env::var("TROVE_TEST_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64 | 1
    });
    eprintln!("seed {seed} (TROVE_TEST_SEED={seed} replays it)");
    seed
}

/// Every dataset's state, by path, as the catalog has it.
fn states(store: &Store) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    let r = Ref::parse("p").unwrap();
    store
        .descendants(&r.project, None, |state| {
            let path = state.at.as_ref().unwrap().path().to_string();
            out.insert(path, serde_json::to_value(state).unwrap());
            Ok(())
        })
        .unwrap();
    out
}

/// Checks that every put of every writer is there: each own dataset with its key, each shared dataset with
/// every key written to it, and `last` equal to one of the values written.
fn assert_nothing_lost(store: &Store, writers: u64, puts: u64, seed: u64) {
    let states = states(store);
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for w in 0..writers {
        for i in 0..puts {
            let (path, meta) = plan(w, i, seed);
            expected.entry(path).or_default().push(meta[0].0.clone());
        }
    }
    assert_eq!(states.len(), expected.len(), "datasets lost or invented");
    for (path, keys) in &expected {
        let state = states.get(path).unwrap_or_else(|| panic!("dataset p/{path} lost"));
        for key in keys {
            assert!(state["meta"].get(key).is_some(), "key {key} of p/{path} lost: {state}");
        }
        if path.starts_with("shared/") {
            let last = state["meta"]["last"].as_str().unwrap_or_else(|| panic!("p/{path} has no `last`"));
            let (w, i) = last.split_once('/').unwrap();
            assert!(keys.contains(&format!("w{w}_{i}")), "p/{path}: `last` = {last} was never written there");
        }
    }
}

#[test]
fn eight_writer_processes_lose_nothing() {
    if as_worker(false) {
        return;
    }
    let (writers, puts) = (8, 1000);
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    drop(Store::init_with(dir.path(), false).unwrap());
    spawn_writers("eight_writer_processes_lose_nothing", dir.path(), writers, puts, seed);

    let store = Store::open(dir.path()).unwrap();
    assert_nothing_lost(&store, writers, puts, seed);
    let before = states(&store);
    store.sync_full().unwrap();
    assert_eq!(states(&store), before, "the catalog differs from a rebuild from the log");
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
}

#[test]
fn log_only_writers_lose_nothing_and_the_catalog_catches_up() {
    if as_worker(true) {
        return;
    }
    let (writers, puts) = (6, 150);
    let seed = seed();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    // One shared dataset exists before the jobs start (they find its id in the catalog); the others are
    // created by the log-only writers themselves, several at once.
    store.put("p", &DatasetPath::parse("shared/s0").unwrap(), &DatasetEdit::default(), &[]).unwrap();
    drop(store);
    spawn_writers("log_only_writers_lose_nothing_and_the_catalog_catches_up", dir.path(), writers, puts, seed);

    let store = Store::open(dir.path()).unwrap();
    assert_nothing_lost(&store, writers, puts, seed);
    let report = store.check().unwrap();
    assert!(report.is_clean(), "{:#?}", report.findings);
    let before = states(&store);
    store.sync_full().unwrap();
    assert_eq!(states(&store), before);
}
