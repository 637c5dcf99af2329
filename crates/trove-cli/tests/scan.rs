//! `trove sync --scan` and `trove watch`: hand edits of the data folders (rm -r, mv, cp -r, a file dropped
//! in, a file changed in place) become what they are in the log, seen through `show --json`.

mod common;

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::{TestStore, bin};
use serde_json::Value;

/// The scan cache keeps a checksum only for a file last modified a little before it was hashed (a file
/// written again within the same timestamp tick would look unchanged): the tests let hand edits settle
/// that long before scanning, so that the next scan has nothing to hash.
fn settle() {
    std::thread::sleep(Duration::from_millis(60));
}

fn scan(store: &TestStore) -> Value {
    let out = store.ok(&["sync", "--scan", "--json"]);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not one JSON report ({e}): {out}"))
}

fn checksum(content: &[u8]) -> String {
    format!("blake3:{}", blake3::hash(content).to_hex())
}

fn object<'a>(dataset: &'a Value, name: &str) -> &'a Value {
    dataset["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["name"] == name)
        .unwrap_or_else(|| panic!("no object {name} in {dataset}"))
}

fn paths(store: &TestStore) -> Vec<String> {
    store.all().iter().map(|d| format!("{}/{}", d["project"].as_str().unwrap(), d["path"].as_str().unwrap())).collect()
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        } else {
            std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn every_hand_edit_is_recorded_as_what_it_is() {
    let s = TestStore::new();
    let csv = s.file("v.csv", b"t,p\n1,2\n3,4\n");
    let notes = s.file("notes.txt", b"first run\n");
    let w = s.file("w.csv", b"x\n9\n");
    let e = s.file("e.csv", b"y\n1\n");
    let folder = s.inputs.path().join("frames");
    std::fs::create_dir_all(folder.join("deep")).unwrap();
    std::fs::write(folder.join("deep/0.bin"), b"frame zero").unwrap();
    std::fs::write(folder.join("1.bin"), b"frame one").unwrap();
    let (csv, notes, w, e, folder) = (
        csv.to_str().unwrap(),
        notes.to_str().unwrap(),
        w.to_str().unwrap(),
        e.to_str().unwrap(),
        folder.to_str().unwrap(),
    );
    s.ok(&["put", "lab/a", csv, notes, "-m", "t=300", "-t", "steel", "--kind", "measurement"]);
    s.ok(&["put", "lab/a/c", w, "-m", "child=true"]);
    s.ok(&["put", "lab/b", w, "-m", "source=1", "-t", "orig"]);
    s.ok(&["put", "lab/gone", e]);
    s.ok(&["put", "lab/d", e, folder]);
    s.ok(&["put", "lab/partial", csv, w]);
    let before = |r: &str| s.show(r);
    let (a, c, b, d) = (before("lab/a"), before("lab/a/c"), before("lab/b"), before("lab/d"));
    let first = scan(&s);
    assert_eq!(first["committed"], false, "what trove wrote itself is no hand edit: {first}");

    let root = s.root();
    std::fs::remove_dir_all(root.join("lab/gone")).unwrap();
    std::fs::rename(root.join("lab/a"), root.join("lab/moved")).unwrap();
    copy_tree(&root.join("lab/b"), &root.join("lab/b-copy"));
    std::fs::write(root.join("lab/d/extra.txt"), b"dropped in").unwrap();
    std::fs::write(root.join("lab/d/e.csv"), b"y\n2\n").unwrap();
    std::fs::write(root.join("lab/d/frames/1.bin"), b"frame one, again").unwrap();
    std::fs::write(root.join("lab/d/x:y.txt"), b"a name trove refuses").unwrap();
    std::fs::remove_file(root.join("lab/partial/w.csv")).unwrap();
    std::fs::create_dir_all(root.join("field/run1")).unwrap();
    std::fs::write(root.join("field/run1/log.txt"), b"new project").unwrap();
    settle();
    let segments = s.segments().len();
    let report = scan(&s);
    assert_eq!(report["committed"], true);
    assert_eq!(s.segments().len(), segments + 1, "one commit holds every finding");

    // rm -r: the dataset is gone.
    s.fails(&["show", "lab/gone"], 1);
    assert_eq!(report["removed"][0]["path"], "lab/gone");
    // mv (a subtree with a child): same ids, same metadata, at the new paths.
    let moved = s.show("lab/moved");
    assert_eq!(moved["id"], a["id"]);
    assert_eq!(moved["metadata"], a["metadata"]);
    assert_eq!(moved["tags"], a["tags"]);
    assert_eq!(moved["kind"], "measurement");
    assert_eq!(object(&moved, "v.csv")["checksum"], object(&a, "v.csv")["checksum"]);
    let child = s.show("lab/moved/c");
    assert_eq!(child["id"], c["id"]);
    assert_eq!(child["metadata"]["child"], true);
    s.fails(&["show", "lab/a"], 1);
    // cp -r: a new id recording its origin, the metadata copied, the source unchanged.
    let copy = s.show("lab/b-copy");
    assert_ne!(copy["id"], b["id"]);
    assert_eq!(copy["origin"]["id"], b["id"]);
    assert_eq!(copy["origin"]["ref"], "lab/b");
    assert_eq!(copy["origin"]["found_by"], "scan");
    assert_eq!(copy["metadata"], b["metadata"]);
    assert_eq!(copy["tags"], b["tags"]);
    assert_eq!(s.show("lab/b"), b);
    // A file dropped in: a new object with its checksum. A file changed in place: a new version, flagged.
    let d_now = s.show("lab/d");
    assert_eq!(d_now["id"], d["id"]);
    assert_eq!(object(&d_now, "extra.txt")["checksum"], checksum(b"dropped in"));
    assert_eq!(object(&d_now, "extra.txt")["format"], "text");
    let edited = object(&d_now, "e.csv");
    assert_eq!(edited["checksum"], checksum(b"y\n2\n"));
    assert!(edited["edited"].as_str().is_some_and(|t| t.starts_with("20")), "{edited}");
    assert!(object(&d, "e.csv").get("edited").is_none());
    // A file changed inside a folder object: a new version of the folder.
    let frames = object(&d_now, "frames");
    assert_ne!(frames["checksum"], object(&d, "frames")["checksum"]);
    assert!(frames["edited"].is_string());
    assert_eq!(frames["files"], 2);
    // A name trove cannot use is skipped, and said so.
    let skipped = report["skipped"].as_array().unwrap();
    assert!(
        skipped.iter().any(|k| k["path"] == "lab/d/x:y.txt" && k["reason"].as_str().unwrap().contains("':'")),
        "{skipped:?}"
    );
    assert!(d_now["objects"].as_array().unwrap().iter().all(|o| o["name"] != "x:y.txt"));
    // One object file of two gone: damage, not a removal.
    assert_eq!(report["missing"], serde_json::json!(["lab/partial:w.csv"]));
    assert_eq!(s.show("lab/partial")["objects"].as_array().unwrap().len(), 2);
    // A new top-level folder: a new project, and its folder of files a new dataset.
    assert_eq!(report["projects"], serde_json::json!(["field"]));
    assert_eq!(object(&s.show("field/run1"), "log.txt")["checksum"], checksum(b"new project"));
    assert_eq!(paths(&s), ["field/run1", "lab/b", "lab/b-copy", "lab/d", "lab/moved", "lab/moved/c", "lab/partial"]);

    // Nothing changed since: no commit, nothing hashed.
    let segments = s.segments().len();
    let again = scan(&s);
    assert_eq!(again["committed"], false, "{again}");
    assert_eq!(again["files_hashed"], 0, "{again}");
    assert_eq!(s.segments().len(), segments);
    let text = s.ok(&["sync", "--scan"]);
    assert!(text.lines().last().unwrap().contains("0 hashed"), "{text}");

    // A rebuilt catalog forgets the cache: everything is hashed once more, and still nothing is recorded.
    s.ok(&["sync", "--full"]);
    let rebuilt = scan(&s);
    assert_eq!(rebuilt["committed"], false, "{rebuilt}");
    assert!(rebuilt["files_hashed"].as_u64().unwrap() >= 10, "{rebuilt}");
    assert_eq!(s.segments().len(), segments);
    assert_eq!(s.show("lab/moved")["id"], a["id"]);
}

#[test]
fn scan_lines_name_each_finding() {
    let s = TestStore::new();
    let v = s.file("v.csv", b"a\n1\n");
    s.ok(&["put", "lab/a", v.to_str().unwrap()]);
    s.ok(&["put", "lab/x", v.to_str().unwrap()]);
    std::fs::rename(s.root().join("lab/a"), s.root().join("lab/b")).unwrap();
    std::fs::remove_dir_all(s.root().join("lab/x")).unwrap();
    std::fs::write(s.root().join("lab/b/notes.txt"), b"n").unwrap();
    let out = s.ok(&["sync", "--scan"]);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[..3],
        ["moved lab/a → lab/b (same id)", "removed lab/x (its folder is gone)", "new object lab/b:notes.txt"]
    );
    assert!(lines[3].starts_with("scanned ") && lines[3].contains("1 moved, 1 removed, 1 new objects"), "{out}");
}

#[test]
fn watch_records_a_file_dropped_into_a_dataset() {
    let s = TestStore::new();
    let v = s.file("v.csv", b"a\n1\n");
    s.ok(&["put", "lab/a", v.to_str().unwrap()]);
    let mut watcher = std::process::Command::new(bin())
        .env_remove("TROVE_STORE")
        .arg("--store")
        .arg(s.root())
        .arg("watch")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::fs::write(s.root().join("lab/a/dropped.txt"), b"while watched").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let found = loop {
        let a = s.show("lab/a");
        if let Some(o) = a["objects"].as_array().unwrap().iter().find(|o| o["name"] == "dropped.txt") {
            break Some(o.clone());
        }
        if Instant::now() > deadline {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let exited_early = watcher.try_wait().unwrap();
    watcher.kill().unwrap();
    watcher.wait().unwrap();
    assert!(exited_early.is_none(), "trove watch ended on its own: {exited_early:?}");
    let found = found.expect("trove watch recorded the dropped file within 20 s");
    assert_eq!(found["checksum"], checksum(b"while watched"));
}

#[test]
fn scan_and_watch_refuse_log_only_mode() {
    // A log-only process reads a catalog that may lag behind the log: it cannot tell a hand edit from
    // another writer's commit.
    let s = TestStore::new();
    for args in [&["--log-only", "sync", "--scan"][..], &["--log-only", "watch"][..]] {
        let err = s.fails(args, 1);
        assert!(err.contains("log-only"), "{err}");
    }
}
