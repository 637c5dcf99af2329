//! Real processes at once, and processes killed mid-write.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::{TestStore, bin};
use serde_json::json;

fn jsonl(lines: impl Iterator<Item = serde_json::Value>) -> String {
    lines.map(|l| format!("{l}\n")).collect()
}

#[test]
fn two_writers_at_once_lose_nothing() {
    let s = TestStore::new();
    // Writer A and B: 40 commits each of their own datasets, plus one commit each per key on a shared
    // dataset (A sets a0..a39, B sets b0..b39 on the same dataset).
    let input = |w: &str| {
        jsonl((0..200).flat_map(|i| {
            let own = json!({"path": format!("p/{w}/d{i:03}"), "metadata": {"i": i, "w": w}, "tags": [w]});
            let shared = json!({"path": "p/shared", "metadata": {format!("{w}{i}"): i}});
            if i % 5 == 0 { vec![own, shared] } else { vec![own] }
        }))
    };
    let files: Vec<_> = ["a", "b"].iter().map(|w| s.file(&format!("{w}.jsonl"), input(w).as_bytes())).collect();
    let children: Vec<_> = files
        .iter()
        .map(|f| {
            Command::new(bin())
                .arg("--store")
                .arg(s.root())
                .args(["ingest", "--batch", "6"])
                .arg(f)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let all = s.all();
    assert_eq!(all.len(), 401);
    let shared = s.show("p/shared");
    for w in ["a", "b"] {
        for i in (0..200).step_by(5) {
            assert_eq!(shared["metadata"][format!("{w}{i}")], i, "{w}{i} lost: {shared}");
        }
    }
    s.ok(&["sync", "--full"]);
    assert_eq!(s.all(), all);
}

#[test]
fn many_processes_editing_one_dataset_keep_every_key() {
    let s = TestStore::new();
    s.ok(&["put", "p/d"]);
    let children: Vec<_> = (0..4)
        .map(|w| {
            let script = (0..8)
                .map(|i| format!("\"$TROVE\" --store \"$STORE\" meta set p/d w{w}_{i}={i} && \"$TROVE\" --store \"$STORE\" tag add p/d t{w}_{i}"))
                .collect::<Vec<_>>()
                .join(" && ");
            Command::new("sh").arg("-c").arg(script).env("TROVE", bin()).env("STORE", s.root()).spawn().unwrap()
        })
        .collect();
    for mut c in children {
        assert!(c.wait().unwrap().success());
    }
    let v = s.show("p/d");
    assert_eq!(v["metadata"].as_object().unwrap().len(), 32, "{v}");
    assert_eq!(v["tags"].as_array().unwrap().len(), 32, "{v}");
}

/// Kills `trove ARGS` after `delay` and returns whether it had already finished.
fn run_and_kill(s: &TestStore, args: &[&str], delay: Duration) -> bool {
    let mut child = Command::new(bin())
        .arg("--store")
        .arg(s.root())
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(delay);
    let finished = child.try_wait().unwrap().is_some();
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    finished
}

#[test]
fn a_killed_ingest_leaves_whole_commits_only() {
    let s = TestStore::new();
    let batch = 500;
    let lines = jsonl((0..6000).map(|i| {
        json!({"path": format!("p/r{:02}/d{i:05}", i % 37), "metadata": {"i": i, "t": 290.5 + i as f64, "m": "steel", "ok": true}, "tags": ["x", "y"]})
    }));
    let f = s.file("big.jsonl", lines.as_bytes());
    let mut killed_midway = 0;
    for (round, ms) in [30u64, 80, 150, 250, 400, 700].iter().enumerate() {
        let before = s.all().len();
        let finished = run_and_kill(
            &s,
            &["ingest", "--batch", &batch.to_string(), f.to_str().unwrap()],
            Duration::from_millis(*ms),
        );
        if !finished {
            killed_midway += 1;
        }
        // The store opens; every visible dataset is whole; whole commits only (a multiple of the batch, counting
        // only datasets this round created).
        let all = s.all();
        for v in &all {
            assert_eq!(v["metadata"].as_object().unwrap().len(), 4, "round {round}: partial dataset {v}");
            assert_eq!(v["tags"], json!(["x", "y"]));
        }
        if round == 0 {
            assert_eq!((all.len() - before) % batch, 0, "round {round}: {} datasets", all.len());
        }
        s.ok(&["sync", "--full"]);
        assert_eq!(s.all(), all, "round {round}: the catalog disagreed with the log");
    }
    eprintln!("{killed_midway} of 6 ingests were killed mid-way");
    // The store still takes writes, and a full ingest completes.
    s.ok(&["ingest", f.to_str().unwrap()]);
    assert_eq!(s.all().len(), 6000);
}

#[test]
fn a_killed_put_leaves_the_old_object_or_the_new_one() {
    let s = TestStore::new();
    let big: Vec<u8> = (0..48u32 * 1024 * 1024).map(|i| (i.wrapping_mul(2654435761) >> 24) as u8).collect();
    let f = s.file("big.bin", &big);
    let small = s.file("small.bin", b"small");
    s.ok(&["put", "p/d", small.to_str().unwrap(), "--name", "big.bin"]);
    for ms in [5u64, 40, 120, 300] {
        run_and_kill(&s, &["put", "p/d", f.to_str().unwrap()], Duration::from_millis(ms));
        let v = s.show("p/d");
        let size = v["objects"][0]["size"].as_u64().unwrap();
        assert!(size == 5 || size == big.len() as u64, "{v}");
        // Whatever the log says is what `get` returns, verified against the checksum.
        let out = s.cmd(&["get", "p/d:big.bin", "-o", "-"]).output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(out.stdout.len() as u64, size);
        s.ok(&["put", "p/d", small.to_str().unwrap(), "--name", "big.bin"]);
    }
}

/// Runs a command that aborts at a fault point.
fn crash_at(s: &TestStore, point: &str, args: &[&str]) {
    let out = s.cmd(args).env("TROVE_FAULT", point).output().unwrap();
    assert!(!out.status.success(), "trove {args:?} did not stop at {point}");
}

fn staging_files(s: &TestStore) -> usize {
    std::fs::read_dir(s.root().join(".trove/staging")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_put_that_dies_before_its_commit_changes_nothing() {
    let s = TestStore::new();
    let v1 = s.file("v1.txt", b"version one");
    let v2 = s.file("v2.txt", b"version two!");
    s.ok(&["put", "p/d", v1.to_str().unwrap(), "--name", "data.txt"]);
    crash_at(&s, "before-commit", &["put", "p/d", v2.to_str().unwrap(), "--name", "data.txt", "-m", "v=2"]);
    let v = s.show("p/d");
    assert_eq!(v["objects"][0]["size"], 11);
    assert_eq!(v["metadata"], json!({}));
    assert_eq!(std::fs::read(s.root().join("p/d/data.txt")).unwrap(), b"version one");
    assert_eq!(staging_files(&s), 1, "the staged upload is an orphan for gc");
}

#[test]
fn a_put_that_dies_after_its_commit_is_finished_by_the_next_command() {
    for point in ["after-commit", "after-moves"] {
        let s = TestStore::new();
        let v1 = s.file("v1.txt", b"version one");
        let v2 = s.file("v2.txt", b"version two!");
        s.ok(&["put", "p/d", v1.to_str().unwrap(), "--name", "data.txt"]);
        crash_at(&s, point, &["put", "p/d", v2.to_str().unwrap(), "--name", "data.txt", "-m", "v=2"]);
        // The commit is true: the next command applies it and puts the file in place.
        let v = s.show("p/d");
        assert_eq!(v["objects"][0]["size"], 12, "{point}");
        assert_eq!(v["metadata"], json!({"v": 2}));
        assert_eq!(std::fs::read(s.root().join("p/d/data.txt")).unwrap(), b"version two!", "{point}");
        assert_eq!(staging_files(&s), 0, "{point}");
        s.ok(&["get", "p/d:data.txt", "-o", "-"]);
    }
}

#[test]
fn a_mv_that_dies_after_its_commit_is_finished_by_the_next_command() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"a");
    s.ok(&["put", "p/x/1", f.to_str().unwrap()]);
    s.ok(&["put", "p/x/2", f.to_str().unwrap()]);
    crash_at(&s, "after-commit", &["mv", "p/x", "p/y"]);
    assert_eq!(s.ok(&["ls", "-r", "p"]), "p/y/1\np/y/2\n");
    assert!(s.root().join("p/y/1/a.txt").is_file() && s.root().join("p/y/2/a.txt").is_file());
    assert!(!s.root().join("p/x").exists());
    s.ok(&["get", "p/y/2:a.txt", "-o", "-"]);
}

#[test]
fn log_only_jobs_append_and_the_catalog_catches_up_at_sync() {
    let s = TestStore::new();
    // Four "batch jobs" at once, each writing its own datasets and keys of one dataset none of them finds in
    // the catalog (they all create it): one dataset, every key kept.
    let script = |w: usize| {
        let mut lines = String::new();
        for i in 0..10 {
            lines.push_str(&format!(
                "{bin} --store {root} --log-only put p/job{w}/r{i} -m i={i} && \
                 {bin} --store {root} --log-only meta set p/summary w{w}_{i}={i} 2>/dev/null || \
                 {bin} --store {root} --log-only put p/summary -m w{w}_{i}={i}\n",
                bin = bin().display(),
                root = s.root().display()
            ));
        }
        lines
    };
    let children: Vec<_> = (0..4)
        .map(|w| {
            Command::new("bash")
                .args(["-e", "-c", &script(w)])
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    // Nothing reached the catalog yet: a log-only reader says so.
    let out = s.cmd(&["--log-only", "find", "--count"]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("`trove sync` where the catalog can be written merges them"));
    assert!(s.fails(&["--log-only", "sync"], 1).contains("log-only"));
    s.ok(&["sync"]);
    assert_eq!(s.ok(&["find", "--count"]).trim(), "41");
    let summary = s.show("p/summary");
    for w in 0..4 {
        for i in 0..10 {
            assert_eq!(summary["metadata"][format!("w{w}_{i}")], i, "w{w}_{i} lost: {summary}");
        }
    }
    s.ok(&["check"]);
}

#[test]
fn a_busy_lease_is_waited_for_visibly_then_taken_over_when_it_expires() {
    let s = TestStore::new();
    s.ok(&["project", "create", "p"]);
    s.ok(&["meta", "set", "p", "x=1"]);
    // Another machine holds the compaction lease for one more second (a host this machine cannot check).
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros() as i64;
    let lease = json!({
        "name": "compact",
        "owner": {"host": "elsewhere.example", "pid": 4711, "start": 1, "writer": "remote"},
        "acquired": now,
        "expires": now + 1_000_000,
    });
    let dir = s.root().join(".trove/leases");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("compact.00000000000000000001.lease"), lease.to_string()).unwrap();
    let out = s.cmd(&["compact", "--full"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("waiting for lease compact held by pid 4711 on elsewhere.example (writer remote)"),
        "{stderr}"
    );
    // The expired lease was taken over and released: nothing is left for gc.
    s.ok(&["check"]);
}
