//! Leases among real processes: mutual exclusion, takeover of a dead owner's lease and of an expired one,
//! and lease files that do not parse. The test binary re-executes itself as the competing processes.

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use trove_storage::{HolderState, Leases, ProcessOwner, Storage};

const WORKER: &str = "TROVE_LEASE_WORKER";

fn leases(root: &Path, writer: &str) -> Leases {
    let storage = Arc::new(Storage::local(root, false).unwrap());
    Leases::new(storage, ProcessOwner::current(writer)).with_timing(
        Duration::from_secs(60),
        Duration::from_millis(5),
        Duration::from_millis(0),
    )
}

fn spawn_self(test: &str, spec: String) -> std::process::Child {
    Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--nocapture", "--test-threads", "1"])
        .env(WORKER, spec)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[test]
fn only_one_process_holds_a_lease_at_a_time() {
    if let Ok(root) = std::env::var(WORKER) {
        // A worker: read-modify-write a counter under the lease; without exclusion increments get lost.
        let root = Path::new(&root);
        let leases = leases(root, "worker");
        for _ in 0..20 {
            let _lease = leases.acquire("counter", &mut |_| {}).unwrap();
            let path = root.join("counter");
            let n: u64 = std::fs::read_to_string(&path).map(|s| s.trim().parse().unwrap()).unwrap_or(0);
            std::thread::sleep(Duration::from_millis(1));
            std::fs::write(&path, format!("{}", n + 1)).unwrap();
        }
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let children: Vec<_> = (0..5)
        .map(|_| spawn_self("only_one_process_holds_a_lease_at_a_time", dir.path().display().to_string()))
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(std::fs::read_to_string(dir.path().join("counter")).unwrap(), "100");
    // Every lease was released: nothing live is left.
    let left = leases(dir.path(), "check").holders().unwrap();
    assert!(left.iter().all(|h| h.state != HolderState::Live), "{left:?}");
}

#[test]
fn a_dead_owners_lease_is_taken_over_without_waiting_for_it_to_expire() {
    if let Ok(root) = std::env::var(WORKER) {
        let lease = leases(Path::new(&root), "doomed").acquire("compact", &mut |_| {}).unwrap();
        std::fs::write(Path::new(&root).join("held"), b"").unwrap();
        std::mem::forget(lease);
        std::process::abort();
    }
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_self(
        "a_dead_owners_lease_is_taken_over_without_waiting_for_it_to_expire",
        dir.path().display().to_string(),
    );
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(dir.path().join("held").exists(), "the worker did not get the lease");
    let mine = leases(dir.path(), "survivor");
    let holders = mine.holders().unwrap();
    assert_eq!(holders.len(), 1);
    assert_eq!(holders[0].state, HolderState::OwnerDead, "{}", holders[0]);
    let started = Instant::now();
    let mut waited = false;
    let lease = mine.acquire("compact", &mut |_| waited = true).unwrap();
    assert!(!waited, "waited for a dead owner");
    assert!(started.elapsed() < Duration::from_secs(30), "the 60 s lease was waited out");
    assert!(!lease.is_lost());
    drop(lease);
    assert!(mine.holders().unwrap().is_empty(), "released leases leave no file");
}

#[test]
fn a_lease_from_another_machine_is_waited_for_until_it_expires() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::local(dir.path(), false).unwrap());
    let elsewhere = ProcessOwner { host: "elsewhere.example".into(), pid: 1, start: 1, writer: "remote".into() };
    let write = |generation: u64, expires_in_ms: i64| {
        let now = trove_storage::writer::now_micros();
        let record = serde_json::json!({
            "name": "tree/lab", "owner": elsewhere, "acquired": now, "expires": now + expires_in_ms * 1000
        });
        storage
            .put(&format!(".trove/leases/tree=2Flab.{generation:020}.lease"), record.to_string().into_bytes(), true)
            .unwrap();
    };
    let mine = leases(dir.path(), "local");

    // Expired a while ago: taken over at once.
    write(1, -10_000);
    let mut waited = false;
    let lease = mine.acquire("tree/lab", &mut |_| waited = true).unwrap();
    assert!(!waited);
    drop(lease);

    // Expiring in 1.5 s: waited for, visibly, then taken.
    write(3, 1500);
    let mut seen = Vec::new();
    let started = Instant::now();
    let lease = mine.acquire("tree/lab", &mut |h| seen.push(h.to_string())).unwrap();
    assert!(started.elapsed() >= Duration::from_millis(1000), "did not wait for a live foreign lease");
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert!(seen[0].contains("held by pid 1 on elsewhere.example"), "{}", seen[0]);
    // A bounded wait for a held lease gives up with a message naming the holder.
    let other = leases(dir.path(), "other");
    let e = other.acquire_within("tree/lab", Some(Duration::from_millis(50)), &mut |_| {});
    assert!(matches!(e, Err(trove_storage::LeaseError::HeldByThisProcess { .. })), "{e:?}");
    drop(lease);
}

#[test]
fn a_lease_file_that_does_not_parse_does_not_block() {
    let dir = tempfile::tempdir().unwrap();
    let storage = Arc::new(Storage::local(dir.path(), false).unwrap());
    storage.put(".trove/leases/scan.00000000000000000007.lease", b"{not json".to_vec(), true).unwrap();
    let mine = leases(dir.path(), "local");
    assert_eq!(mine.holders().unwrap()[0].state, HolderState::Unreadable);
    let lease = mine.try_acquire("scan").unwrap().expect("an unreadable lease blocked");
    assert_eq!(lease.name(), "scan");
    drop(lease);
    assert_eq!(mine.remove_stale().unwrap(), 0, "the takeover already removed the unreadable file");
}
