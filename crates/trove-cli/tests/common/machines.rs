//! Many "machines" writing to one store at once: processes with their own working and cache folders (so
//! their own writer ids and, for a store in a bucket, their own copies of a SQLite catalog).

use std::process::{Command, Stdio};

use serde_json::{Value, json};

use super::{TestStore, bin};

/// Every dataset's `show --json`, in path order.
pub fn everything(s: &TestStore) -> Vec<Value> {
    s.ok(&["find", "--json"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `writers` processes ingest `each` datasets apiece, one commit a dataset, and every one of them also
/// writes one shared dataset now and then. Nothing may be lost, the shared dataset holds every writer's
/// keys, and the catalog equals a rebuild from the log.
pub fn write_at_once_and_lose_nothing(s: &TestStore, writers: usize, each: usize) {
    let mut children = Vec::new();
    for w in 0..writers {
        let work = tempfile::tempdir().unwrap();
        let mut lines = String::new();
        for i in 0..each {
            lines.push_str(&format!("{}\n", json!({"path": format!("m{w}/r{i:03}"), "metadata": {"w": w, "i": i}})));
            if i % 50 == 0 {
                // Every machine also writes the same dataset: one dataset results, whatever the order.
                lines.push_str(&format!("{}\n", json!({"path": "shared/x", "metadata": {format!("w{w}"): i}})));
            }
        }
        let file = work.path().join("in.jsonl");
        std::fs::write(&file, lines).unwrap();
        let child = Command::new(bin())
            .current_dir(work.path())
            .env_remove("TROVE_STORE")
            .envs(s.env.clone())
            .env("TROVE_CACHE", work.path())
            .args(["--store", &s.location, "ingest", file.to_str().unwrap(), "--batch", "1"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        children.push((child, work));
    }
    for (child, _) in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let before = everything(s);
    assert_eq!(before.len(), writers * each + 1, "nothing lost");
    let shared: Vec<&Value> = before.iter().filter(|d| d["path"] == "x").collect();
    assert_eq!(shared.len(), 1);
    let keys = shared[0]["metadata"].as_object().unwrap();
    assert_eq!(keys.len(), writers, "every writer's edit of the shared dataset merged: {keys:?}");
    assert!(s.ok(&["catalog", "info", "--json"]).contains("\"segments_behind\":0"));
    s.ok(&["sync", "--full"]);
    assert_eq!(everything(s), before, "the catalog equals a rebuild from the log");
}
