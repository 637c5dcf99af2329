//! Log replay: random histories, split into commits and replayed in random orders, give identical catalogs;
//! a catalog rebuilt from scratch gives identical answers.

use std::sync::Arc;

use proptest::prelude::*;
use serde_json::{Value, json};
use trove::model::{DatasetPath, DatasetState, Record, Ref, Segment, SegmentHeader, SegmentKind, Stamp};
use trove::{DatasetEdit, Store};
use trove_catalog::Catalog;
use trove_catalog::conformance::rows;
use trove_storage::{Log, Storage};

#[derive(Debug, Clone)]
enum Op {
    Put { path: usize, key: usize, value: i64 },
    Tag { path: usize, tag: usize, add: bool },
    Unset { path: usize, key: usize },
    Rm { path: usize, recursive: bool },
    Mv { from: usize, to: usize },
    Cp { from: usize, to: usize },
    ProjectMeta { key: usize, value: i64 },
}

const PATHS: [&str; 6] = ["a", "a/b", "a/c", "d", "d/e/f", "g"];
const KEYS: [&str; 3] = ["t", "s.x", "s.y"];
const TAGS: [&str; 2] = ["calibrated", "bad"];

fn op() -> impl Strategy<Value = Op> {
    let p = 0..PATHS.len();
    prop_oneof![
        4 => (p.clone(), 0..KEYS.len(), -5i64..5).prop_map(|(path, key, value)| Op::Put { path, key, value }),
        2 => (p.clone(), 0..TAGS.len(), any::<bool>()).prop_map(|(path, tag, add)| Op::Tag { path, tag, add }),
        1 => (p.clone(), 0..KEYS.len()).prop_map(|(path, key)| Op::Unset { path, key }),
        1 => (p.clone(), any::<bool>()).prop_map(|(path, recursive)| Op::Rm { path, recursive }),
        1 => (p.clone(), p.clone()).prop_map(|(from, to)| Op::Mv { from, to }),
        1 => (p.clone(), p).prop_map(|(from, to)| Op::Cp { from, to }),
        1 => (0..KEYS.len(), -5i64..5).prop_map(|(key, value)| Op::ProjectMeta { key, value }),
    ]
}

fn r(path: usize) -> Ref {
    Ref::parse(&format!("p/{}", PATHS[path])).unwrap()
}

fn run(store: &Store, op: &Op) {
    let dp = |i: usize| DatasetPath::parse(PATHS[i]).unwrap();
    // Operations that the store refuses (a missing dataset, a clash) write nothing; that is part of the test.
    let _ = match op {
        Op::Put { path, key, value } => {
            let edit = DatasetEdit { meta: vec![(KEYS[*key].into(), json!(value))], ..Default::default() };
            store.put("p", &dp(*path), &edit, &[]).map(|_| ())
        }
        Op::Tag { path, tag, add } => {
            let t = vec![TAGS[*tag].to_string()];
            let edit = if *add {
                DatasetEdit { tags_add: t, ..Default::default() }
            } else {
                DatasetEdit { tags_rm: t, ..Default::default() }
            };
            store.edit(&r(*path), &edit)
        }
        Op::Unset { path, key } => {
            store.edit(&r(*path), &DatasetEdit { unset: vec![KEYS[*key].into()], ..Default::default() })
        }
        Op::Rm { path, recursive } => store.remove(&r(*path), *recursive).map(|_| ()),
        Op::Mv { from, to } => store.rename(&r(*from), &r(*to)).map(|_| ()),
        Op::Cp { from, to } => store.copy(&r(*from), &r(*to), true).map(|_| ()),
        Op::ProjectMeta { key, value } => store.edit(
            &Ref::parse("p").unwrap(),
            &DatasetEdit { meta: vec![(KEYS[*key].into(), json!(value))], ..Default::default() },
        ),
    };
}

/// Every visible dataset's `show --json`, in path order, and the project's metadata.
fn answers(store: &Store) -> (Vec<Value>, Value) {
    let mut out = Vec::new();
    if store.projects().unwrap().is_empty() {
        return (out, Value::Null);
    }
    store
        .descendants("p", None, |s| {
            out.push(store.dataset_json(&s));
            Ok(())
        })
        .unwrap();
    let project = store.projects().unwrap().into_iter().next().map(|p| Value::Object(p.meta)).unwrap_or(Value::Null);
    (out, project)
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        items.swap(i, (seed >> 33) as usize % (i + 1));
    }
}

fn header(kind: SegmentKind, ts: i64, writer: &str, records: usize) -> SegmentHeader {
    SegmentHeader {
        trove: kind,
        version: 1,
        ts,
        writer: writer.into(),
        host: "h".into(),
        pid: 1,
        user: String::new(),
        op: "test".into(),
        records,
        covers: vec![],
        moves: vec![],
        seen: 0,
    }
}

/// Writes `ops` through a store, then applies its log to new catalogs (`open`) in a random order, and as
/// stamped states regrouped into random segments: every catalog equals the store's; a rebuild and a deleted
/// catalog answer the same.
fn replays_agree(ops: &[Op], seed: u64, cuts: u64, open: &dyn Fn() -> Catalog) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    for op in ops {
        run(&store, op);
    }
    let reference = rows(&trove_catalog_sqlite::open(&dir.path().join(".trove/catalog.sqlite")).unwrap());
    let before = answers(&store);

    let log = Log::new(Arc::new(Storage::local(dir.path(), false).unwrap()));
    let mut names = log.list().unwrap();
    let segments: Vec<(String, Segment)> = names.iter().map(|n| (n.clone(), log.read(n).unwrap())).collect();

    // 1. The same commits, applied in a random order.
    shuffle(&mut names, seed);
    let mut shuffled = open();
    let mut tx = shuffled.write().unwrap();
    for n in &names {
        let seg = &segments.iter().find(|(m, _)| m == n).unwrap().1;
        tx.apply_segment(n, seg.clone()).unwrap();
    }
    tx.commit().unwrap();
    prop_assert_eq!(&rows(&shuffled), &reference);

    // 2. Every change as a stamped state, regrouped into random segments, applied in random order.
    let mut states: Vec<Record> = Vec::new();
    for (_, seg) in &segments {
        for (i, rec) in seg.records.iter().enumerate() {
            let stamp = Stamp::new(seg.header.ts, seg.header.writer.clone(), i as u32);
            states.push(match rec.clone() {
                Record::Dataset(c) => Record::DatasetState(DatasetState::from_change(c, &stamp)),
                Record::Project(c) => Record::ProjectState(trove::model::ProjectState::from_change(c, &stamp)),
                other => other,
            });
        }
    }
    shuffle(&mut states, seed ^ cuts);
    let mut regrouped = open();
    let mut tx = regrouped.write().unwrap();
    let mut rest = &states[..];
    let mut k = 0u64;
    while !rest.is_empty() {
        let take = 1 + ((cuts >> (k % 60)) as usize % 4).min(rest.len() - 1);
        let (chunk, tail) = rest.split_at(take.min(rest.len()));
        let seg = Segment { header: header(SegmentKind::Checkpoint, 0, "x", chunk.len()), records: chunk.to_vec() };
        tx.apply_segment(&format!("s{k}"), seg).unwrap();
        rest = tail;
        k += 1;
    }
    tx.commit().unwrap();
    prop_assert_eq!(&rows(&regrouped), &reference);

    // 3. A rebuild from scratch, and a deleted catalog, give the same answers.
    store.sync_full().unwrap();
    prop_assert_eq!(&answers(&store), &before);
    drop(store);
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(dir.path().join(".trove").join(f));
    }
    let reopened = Store::open(dir.path()).unwrap();
    prop_assert_eq!(&answers(&reopened), &before);
    Ok(())
}

thread_local! {
    static DATABASE: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// A new, empty PostgreSQL catalog (the schema of this thread's test database, emptied), or `None` without
/// a server.
fn postgres() -> Option<Catalog> {
    let url = DATABASE.with(|db| {
        let mut db = db.borrow_mut();
        if db.is_none() {
            *db = trove_catalog_postgres::testing::fresh_database();
        }
        db.clone()
    })?;
    let mut reset = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    reset.batch_execute("DROP SCHEMA IF EXISTS trove CASCADE").unwrap();
    Some(trove_catalog_postgres::open(&url, None, "replay").unwrap())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_any_split_gives_the_same_catalog(ops in prop::collection::vec(op(), 1..40), seed in any::<u64>(), cuts in any::<u64>()) {
        replays_agree(&ops, seed, cuts, &|| trove_catalog_sqlite::open_in_memory().unwrap())?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    #[test]
    fn any_order_and_any_split_gives_the_same_postgres_catalog(ops in prop::collection::vec(op(), 1..40), seed in any::<u64>(), cuts in any::<u64>()) {
        if postgres().is_some() {
            replays_agree(&ops, seed, cuts, &|| postgres().unwrap())?;
        }
    }
}
