//! Every command through the real binary, with its error paths.

mod common;

use assert_cmd::Command;
use common::{TestStore, bin};
use predicates::prelude::*;
use serde_json::json;

#[test]
fn init_refuses_an_existing_store_and_commands_need_a_store() {
    let s = TestStore::new();
    assert!(s.root().join("trove.toml").is_file());
    assert!(s.root().join(".trove/log").is_dir());
    assert!(s.root().join(".trove/catalog.sqlite").is_file());
    Command::new(bin())
        .arg("init")
        .arg(s.root())
        .assert()
        .code(1)
        .stderr(predicate::str::contains("already a trove store"));

    let empty = tempfile::tempdir().unwrap();
    Command::new(bin())
        .current_dir(empty.path())
        .env_remove("TROVE_STORE")
        .arg("ls")
        .assert()
        .code(1)
        .stderr(predicate::str::starts_with("error: no trove store found"));
    Command::new(bin())
        .env_remove("TROVE_STORE")
        .args(["--store"])
        .arg(empty.path())
        .arg("ls")
        .assert()
        .code(1)
        .stderr(predicate::str::contains("is not a trove store"));
}

#[test]
fn the_store_is_found_from_env_and_from_subfolders() {
    let s = TestStore::new();
    s.ok(&["put", "lab/runs/1", "-m", "t=1"]);
    let sub = std::path::PathBuf::from(s.ok(&["locate", "lab/runs/1"]).trim());
    assert!(sub.is_dir());
    Command::new(bin())
        .current_dir(&sub)
        .env_remove("TROVE_STORE")
        .args(["ls", "lab/runs"])
        .assert()
        .success()
        .stdout("1\n");
    Command::new(bin())
        .env("TROVE_STORE", s.root())
        .args(["ls"])
        .assert()
        .success()
        .stdout(predicate::str::contains("lab/"));
}

#[test]
fn usage_errors_exit_2() {
    let s = TestStore::new();
    s.fails(&["put"], 2);
    s.fails(&["frobnicate"], 2);
    s.fails(&["meta", "set", "lab/x"], 2);
}

#[test]
fn put_types_values_and_show_prints_the_contract() {
    let s = TestStore::new();
    let out = s.ok(&[
        "put",
        "lab/runs/2024/r17",
        "--kind",
        "measurement",
        "-t",
        "zeta",
        "-t",
        "calibrated",
        "-m",
        "t=300",
        "-m",
        "x=2.5",
        "-m",
        "name=steel",
        "-m",
        "flag=true",
        "-m",
        "nothing=null",
        "-m",
        "xs=[1, 2]",
        "-m",
        "id==007",
        "-m",
        "j:={\"a\": 1}",
        "-m",
        "sample.thickness_mm=2",
        "-m",
        "sample.material=iron",
    ]);
    assert!(out.starts_with("created lab/runs/2024/r17"), "{out}");
    let v = s.show("lab/runs/2024/r17");
    assert_eq!(
        v["metadata"],
        json!({"t": 300, "x": 2.5, "name": "steel", "flag": true, "nothing": null, "xs": [1, 2], "id": "007",
               "j": {"a": 1}, "sample": {"thickness_mm": 2, "material": "iron"}})
    );
    assert_eq!(v["tags"], json!(["calibrated", "zeta"]));
    assert_eq!(v["kind"], "measurement");
    assert_eq!(v["project"], "lab");
    assert_eq!(v["path"], "runs/2024/r17");
    for key in ["id", "objects", "created", "updated"] {
        assert!(v.get(key).is_some(), "{key} missing from {v}");
    }
    assert_eq!(uuid::Uuid::parse_str(v["id"].as_str().unwrap()).unwrap().get_version_num(), 7);
    // Updating keeps the id and merges.
    s.ok(&["put", "lab/runs/2024/r17", "-m", "t=301", "-m", "sample.batch=B1"]);
    let w = s.show("lab/runs/2024/r17");
    assert_eq!(w["id"], v["id"]);
    assert_eq!(w["metadata"]["t"], 301);
    assert_eq!(w["metadata"]["sample"], json!({"thickness_mm": 2, "material": "iron", "batch": "B1"}));
    // Human output too.
    let text = s.ok(&["show", "lab/runs/2024/r17"]);
    assert!(text.contains("kind: measurement") && text.contains("  thickness_mm: 2"), "{text}");
}

#[test]
fn put_with_meta_json() {
    let s = TestStore::new();
    let f = s.file("m.json", br#"{"a": {"b": [1, 2]}, "c": "x"}"#);
    s.ok(&["put", "p/d", "--meta-json", f.to_str().unwrap()]);
    assert_eq!(s.show("p/d")["metadata"], json!({"a": {"b": [1, 2]}, "c": "x"}));
    let bad = s.file("bad.json", b"[1, 2]");
    let e = s.fails(&["put", "p/d", "--meta-json", bad.to_str().unwrap()], 1);
    assert!(e.contains("must be an object"), "{e}");
}

#[test]
fn objects_are_stored_at_readable_paths_with_checksums_and_replaced_atomically() {
    let s = TestStore::new();
    let f = s.file("velocity.csv", b"t,v\n0,1.5\n1,2.5\n");
    let out = s.ok(&["put", "lab/runs/1", f.to_str().unwrap()]);
    assert!(out.contains("+ velocity.csv") && out.contains("blake3:"), "{out}");
    let v = s.show("lab/runs/1");
    let o = &v["objects"][0];
    assert_eq!(o["name"], "velocity.csv");
    assert_eq!(o["format"], "csv");
    assert_eq!(o["size"], 16);
    assert_eq!(o["checksum"].as_str().unwrap(), format!("blake3:{}", blake3::hash(b"t,v\n0,1.5\n1,2.5\n").to_hex()));
    assert_eq!(o["path"], "lab/runs/1/velocity.csv");
    assert_eq!(std::fs::read(s.root().join("lab/runs/1/velocity.csv")).unwrap(), b"t,v\n0,1.5\n1,2.5\n");
    // --name, and replacing an object.
    let g = s.file("other.bin", b"v2");
    s.ok(&["put", "lab/runs/1", g.to_str().unwrap(), "--name", "velocity.csv"]);
    assert_eq!(std::fs::read(s.root().join("lab/runs/1/velocity.csv")).unwrap(), b"v2");
    assert_eq!(s.show("lab/runs/1")["objects"][0]["size"], 2);
    // Nothing left in staging.
    assert_eq!(std::fs::read_dir(s.root().join(".trove/staging")).map(|d| d.count()).unwrap_or(0), 0);
    let e = s.fails(&["put", "lab/runs/1", f.to_str().unwrap(), g.to_str().unwrap(), "--name", "x"], 1);
    assert!(e.contains("--name"), "{e}");
}

#[test]
fn bad_input_is_refused_with_a_clear_first_line_and_nothing_written() {
    let s = TestStore::new();
    s.ok(&["put", "lab/a"]);
    let before = s.segments();
    let e = s.fails(&["put", "lab/runs/a*b"], 1);
    assert!(e.starts_with("error: invalid reference") && e.contains("'*'"), "{e}");
    let e = s.fails(&["put", "lab/ x"], 1);
    assert!(e.contains("space"), "{e}");
    let e = s.fails(&["put", "lab/x", "/definitely/not/here.csv"], 1);
    assert!(e.starts_with("error: /definitely/not/here.csv"), "{e}");
    let e = s.fails(&["put", "lab/x", "-m", "novalue"], 1);
    assert!(e.contains("expected key=value"), "{e}");
    let e = s.fails(&["put", "lab/x", "-m", "a=[broken"], 1);
    assert!(e.contains("invalid JSON for key \"a\""), "{e}");
    let e = s.fails(&["put", "lab/x", "-t", "bad/tag"], 1);
    assert!(e.contains("invalid tag"), "{e}");
    let e = s.fails(&["put", "lab"], 1);
    assert!(e.contains("names a project"), "{e}");
    let e = s.fails(&["put", ".trove/x"], 1);
    assert!(e.contains("may not start with `.`"), "{e}");
    let odd = s.file("a:b.txt", b"x");
    let e = s.fails(&["put", "lab/x", odd.to_str().unwrap()], 1);
    assert!(e.contains("not usable as an object name") && e.contains("--name"), "{e}");
    assert_eq!(s.segments(), before, "a failed command wrote to the log");
    assert!(s.fails(&["show", "lab/x"], 1).contains("dataset lab/x not found"));
}

#[test]
fn get_exports_objects_and_datasets() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"alpha");
    let g = s.file("b.txt", b"beta");
    s.ok(&["put", "p/d", f.to_str().unwrap(), g.to_str().unwrap()]);
    let out_dir = tempfile::tempdir().unwrap();
    let dest = out_dir.path().join("copy.txt");
    s.ok(&["get", "p/d:a.txt", "-o", dest.to_str().unwrap()]);
    assert_eq!(std::fs::read(&dest).unwrap(), b"alpha");
    s.cmd(&["get", "p/d:b.txt", "-o", "-"]).assert().success().stdout("beta");
    let ds_dir = out_dir.path().join("whole");
    let out = s.ok(&["get", "p/d", "-o", ds_dir.to_str().unwrap()]);
    assert!(out.contains("wrote 2 objects"), "{out}");
    assert_eq!(std::fs::read(ds_dir.join("b.txt")).unwrap(), b"beta");
    assert!(s.fails(&["get", "p/d:nope.txt", "-o", "-"], 1).contains("object p/d:nope.txt not found"));
    assert!(s.fails(&["get", "p/missing:x", "-o", "-"], 1).contains("not found"));
    // A damaged file is caught by the checksum and no output file is left behind.
    std::fs::write(s.root().join("p/d/a.txt"), b"alphX").unwrap();
    let bad = out_dir.path().join("bad.txt");
    let e = s.fails(&["get", "p/d:a.txt", "-o", bad.to_str().unwrap()], 1);
    assert!(e.contains("is damaged"), "{e}");
    assert!(!bad.exists());
}

#[test]
fn ls_lists_children_folders_recursive_json_and_tree() {
    let s = TestStore::new();
    for p in ["lab/runs/2023/a", "lab/runs/2024/b", "lab/runs/2024/c", "lab/runs", "lab/top", "other/x"] {
        s.ok(&["put", p, "--kind", "k"]);
    }
    assert_eq!(s.ok(&["ls"]), "lab/\t5 datasets\nother/\t1 datasets\n");
    assert_eq!(s.ok(&["ls", "lab"]), "runs/\tk\ntop\tk\n");
    assert_eq!(s.ok(&["ls", "lab/runs"]), "2023/\n2024/\n");
    assert_eq!(s.ok(&["ls", "-r", "lab/runs"]), "lab/runs/2023/a\nlab/runs/2024/b\nlab/runs/2024/c\n");
    assert_eq!(s.ok(&["ls", "-r", "lab", "--depth", "1"]), "lab/runs\nlab/top\n");
    // --json lists datasets only: the implicit folders 2023 and 2024 are not datasets.
    assert_eq!(s.ok(&["ls", "--json", "lab/runs"]).lines().count(), 0);
    let all: Vec<serde_json::Value> =
        s.ok(&["ls", "-r", "--json", "lab"]).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(all.len(), 5);
    assert!(all.iter().all(|v| v["id"].is_string() && v["tags"].is_array()));
    let tree = s.ok(&["ls", "--tree", "lab"]);
    assert_eq!(
        tree,
        "lab\n├── runs/\tk\n│   ├── 2023/\n│   │   └── a\tk\n│   └── 2024/\n│       ├── b\tk\n│       └── c\tk\n└── top\tk\n"
    );
    let shallow = s.ok(&["ls", "--tree", "--depth", "1", "lab"]);
    assert_eq!(shallow, "lab\n├── runs\tk\n└── top\tk\n");
    assert!(s.fails(&["ls", "nope"], 1).contains("project nope not found"));
    assert!(s.fails(&["ls", "lab/zzz"], 1).contains("not found"));
}

#[test]
fn locate_prints_absolute_paths() {
    let s = TestStore::new();
    let f = s.file("fig.png", b"png");
    s.ok(&["put", "lab/runs/1", f.to_str().unwrap()]);
    let root = std::fs::canonicalize(s.root()).unwrap();
    assert_eq!(s.ok(&["locate", "lab/runs/1"]).trim(), root.join("lab/runs/1").to_str().unwrap());
    let obj = s.ok(&["locate", "lab/runs/1:fig.png"]);
    assert_eq!(obj.trim(), root.join("lab/runs/1/fig.png").to_str().unwrap());
    assert!(std::path::Path::new(obj.trim()).is_file());
    assert!(s.fails(&["locate", "lab/runs/2"], 1).contains("not found"));
}

#[test]
fn show_inherited_merges_project_and_ancestors() {
    let s = TestStore::new();
    s.ok(&["project", "create", "lab", "-m", "institute=MPL", "-m", "setup.rig=2"]);
    s.ok(&["put", "lab/runs", "-m", "campaign=A", "-m", "setup.temp=300"]);
    s.ok(&["put", "lab/runs/1", "-m", "campaign=B", "-m", "x=1"]);
    let v: serde_json::Value = serde_json::from_str(&s.ok(&["show", "lab/runs/1", "--inherited", "--json"])).unwrap();
    assert_eq!(v["metadata"], json!({"campaign": "B", "x": 1}));
    assert_eq!(v["inherited"], json!({"institute": "MPL", "setup": {"rig": 2, "temp": 300}, "campaign": "B", "x": 1}));
    let p: serde_json::Value = serde_json::from_str(&s.ok(&["show", "lab", "--json"])).unwrap();
    assert_eq!(p["metadata"], json!({"institute": "MPL", "setup": {"rig": 2}}));
    assert_eq!(p["datasets"], 2);
    let projects = s.ok(&["project", "ls", "--json"]);
    assert!(projects.contains("\"project\":\"lab\""), "{projects}");
    s.ok(&["put", "lab/x/deep"]);
    assert!(s.fails(&["show", "lab/x"], 1).contains("is a folder"));
    let obj = s.file("o.txt", b"o");
    s.ok(&["put", "lab/runs/1", obj.to_str().unwrap()]);
    let o: serde_json::Value = serde_json::from_str(&s.ok(&["show", "lab/runs/1:o.txt", "--json"])).unwrap();
    assert_eq!(o["size"], 1);
}

#[test]
fn meta_and_tags_edit_in_place() {
    let s = TestStore::new();
    s.ok(&["put", "p/d", "-m", "a=1", "-m", "s.x=1", "-m", "s.y=2", "-t", "one"]);
    s.ok(&["meta", "set", "p/d", "b=two", "s.z=3"]);
    s.ok(&["meta", "unset", "p/d", "a", "s.x"]);
    s.ok(&["tag", "add", "p/d", "two", "three"]);
    s.ok(&["tag", "rm", "p/d", "one"]);
    let v = s.show("p/d");
    assert_eq!(v["metadata"], json!({"b": "two", "s": {"y": 2, "z": 3}}));
    assert_eq!(v["tags"], json!(["three", "two"]));
    s.ok(&["meta", "set", "p", "owner=ada"]);
    assert_eq!(s.show("p")["metadata"], json!({"owner": "ada"}));
    assert!(s.fails(&["meta", "set", "p/nope", "a=1"], 1).contains("dataset p/nope not found"));
    assert!(s.fails(&["tag", "add", "p", "x"], 1).contains("names a project"));
    assert!(s.fails(&["meta", "unset", "p/d", "@kind"], 1).contains("reserved"));
}

#[test]
fn rm_removes_datasets_subtrees_and_objects() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"a");
    s.ok(&["put", "p/runs/1", f.to_str().unwrap()]);
    s.ok(&["put", "p/runs/1/sub"]);
    s.ok(&["put", "p/runs/2"]);
    let e = s.fails(&["rm", "p/runs/1"], 1);
    assert!(e.contains("has 1 datasets below it") && e.contains("rm -r"), "{e}");
    assert!(s.fails(&["rm", "p/runs"], 1).contains("rm -r"));
    assert_eq!(s.ok(&["rm", "p/runs/1:a.txt"]), "removed 1 object\n");
    assert!(!s.root().join("p/runs/1/a.txt").exists());
    assert_eq!(s.show("p/runs/1")["objects"], json!([]));
    s.ok(&["put", "p/runs/1", f.to_str().unwrap()]);
    assert_eq!(s.ok(&["rm", "-r", "p/runs/1"]), "removed 2 datasets\n");
    assert!(!s.root().join("p/runs/1/a.txt").exists());
    assert!(s.fails(&["show", "p/runs/1"], 1).contains("not found"));
    assert_eq!(s.ok(&["rm", "p/runs/2"]), "removed 1 dataset\n");
    assert!(s.fails(&["rm", "p/runs/2"], 1).contains("not found"));
    // A new dataset at a removed path is a new dataset.
    s.ok(&["put", "p/runs/2"]);
    assert_eq!(s.all().len(), 1);
}

#[test]
fn mv_moves_subtrees_with_their_files_and_keeps_ids() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"a");
    s.ok(&["put", "p/runs/1", f.to_str().unwrap()]);
    s.ok(&["put", "p/runs/1/deep", f.to_str().unwrap()]);
    s.ok(&["put", "p/other"]);
    let id = s.show("p/runs/1")["id"].clone();
    assert_eq!(s.ok(&["mv", "p/runs", "q/archive/runs"]), "moved 2 datasets to q/archive/runs\n");
    assert_eq!(s.show("q/archive/runs/1")["id"], id);
    assert_eq!(s.show("q/archive/runs/1/deep")["objects"][0]["path"], "q/archive/runs/1/deep/a.txt");
    assert!(s.root().join("q/archive/runs/1/deep/a.txt").is_file());
    assert!(!s.root().join("p/runs").exists(), "the old folder is cleaned up");
    assert!(s.fails(&["show", "p/runs/1"], 1).contains("not found"));
    assert!(s.fails(&["mv", "q/archive/runs", "p/other"], 1).contains("already exists"));
    assert!(s.fails(&["mv", "q/archive", "q/archive/inner"], 1).contains("into itself"));
    assert!(s.fails(&["mv", "q/nope", "q/x"], 1).contains("not found"));
    s.ok(&["get", "q/archive/runs/1:a.txt", "-o", "-"]);
}

#[test]
fn cp_copies_with_new_ids_and_origin() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"a");
    s.ok(&["put", "p/src", f.to_str().unwrap(), "-m", "x=1", "-t", "t"]);
    s.ok(&["put", "p/src/child"]);
    assert_eq!(s.ok(&["cp", "p/src", "p/dst"]), "copied 1 dataset to p/dst\n");
    let (a, b) = (s.show("p/src"), s.show("p/dst"));
    assert_ne!(a["id"], b["id"]);
    assert_eq!(b["origin"], json!({"id": a["id"], "ref": "p/src"}));
    assert_eq!(b["metadata"], a["metadata"]);
    assert_eq!(b["objects"][0]["checksum"], a["objects"][0]["checksum"]);
    assert!(s.root().join("p/dst/a.txt").is_file() && s.root().join("p/src/a.txt").is_file());
    assert!(s.fails(&["show", "p/dst/child"], 1).contains("not found"));
    assert_eq!(s.ok(&["cp", "-r", "p/src", "p/dst2"]), "copied 2 datasets to p/dst2\n");
    s.ok(&["show", "p/dst2/child"]);
    assert!(s.fails(&["cp", "p/src", "p/dst"], 1).contains("already exists"));
}

#[test]
fn ingest_validates_everything_first_and_commits_per_batch() {
    let s = TestStore::new();
    let data = s.file("d.txt", b"data");
    let good = format!(
        "{}\n{}\n\n{}\n",
        json!({"path": "lab/a", "kind": "measurement", "metadata": {"t": 1}, "tags": ["x"]}),
        json!({"path": "lab/b", "files": {"raw.txt": data.to_str().unwrap()}}),
        json!({"path": "lab/a", "metadata": {"u": 2}}),
    );
    let f = s.file("in.jsonl", good.as_bytes());
    let out = s.ok(&["ingest", f.to_str().unwrap(), "--batch", "2"]);
    assert!(out.starts_with("ingested 3 datasets (2 created, 1 updated) in 2 commits"), "{out}");
    assert_eq!(s.show("lab/a")["metadata"], json!({"t": 1, "u": 2}));
    assert_eq!(s.show("lab/b")["objects"][0]["name"], "raw.txt");
    let before = s.segments();
    let bad = format!("{}\n{}\n", json!({"path": "lab/c"}), json!({"path": "lab/d", "metdata": {}}));
    let g = s.file("bad.jsonl", bad.as_bytes());
    let e = s.fails(&["ingest", g.to_str().unwrap()], 1);
    assert!(e.contains("line 2") && e.contains("metdata"), "{e}");
    for (line, why) in [
        (json!({"path": "lab"}).to_string(), "PROJECT/PATH"),
        (json!({"path": "lab/a:b"}).to_string(), "PROJECT/PATH"),
        ("{not json".to_string(), "line 1"),
        (json!({"path": "lab/x", "files": {"f": "/no/such/file"}}).to_string(), "/no/such/file"),
        (json!({"path": "lab/x", "tags": ["a/b"]}).to_string(), "invalid tag"),
    ] {
        let h = s.file("bad2.jsonl", line.as_bytes());
        let e = s.fails(&["ingest", h.to_str().unwrap()], 1);
        assert!(e.contains(why), "{line}: {e}");
    }
    assert_eq!(s.segments(), before);
    s.cmd(&["ingest", "-"]).write_stdin(format!("{}\n", json!({"path": "lab/stdin"}))).assert().success();
    s.ok(&["show", "lab/stdin"]);
}

#[test]
fn the_catalog_is_disposable() {
    let s = TestStore::new();
    let f = s.file("a.txt", b"a");
    s.ok(&["project", "create", "p", "-m", "k=v"]);
    s.ok(&["put", "p/a", f.to_str().unwrap(), "-m", "x=1", "-t", "t"]);
    s.ok(&["put", "p/b/c", "-m", "y=2"]);
    s.ok(&["mv", "p/b", "p/bb"]);
    s.ok(&["meta", "unset", "p/a", "x"]);
    s.ok(&["rm", "p/bb/c"]);
    s.ok(&["put", "p/d"]);
    let before = s.all();
    let project = s.show("p");
    let out = s.ok(&["sync", "--full"]);
    assert!(out.starts_with("rebuilt the catalog: applied"), "{out}");
    assert_eq!(s.all(), before);
    for f in ["catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(s.root().join(".trove").join(f));
    }
    assert_eq!(s.all(), before);
    assert_eq!(s.show("p"), project);
    assert!(s.ok(&["sync"]).contains("catalog up to date: applied 0 log segments"));
}

#[test]
fn compaction_keeps_every_answer() {
    let s = TestStore::new();
    for i in 0..6 {
        s.ok(&["put", &format!("p/d{i}"), "-m", &format!("i={i}")]);
    }
    s.ok(&["meta", "set", "p/d0", "i=100"]);
    s.ok(&["rm", "p/d1"]);
    let before = s.all();
    let n = s.segments().len();
    let out = s.ok(&["compact"]);
    assert!(out.starts_with(&format!("merged {n} segments")), "{out}");
    assert_eq!(s.segments().len(), 1);
    assert!(s.segments()[0].ends_with(".checkpoint.jsonl"));
    assert_eq!(s.all(), before);
    s.ok(&["put", "p/d9"]);
    s.ok(&["put", "p/d10"]);
    s.ok(&["compact", "--full"]);
    assert_eq!(s.segments().len(), 1);
    s.ok(&["sync", "--full"]);
    let after = s.all();
    assert_eq!(after.len(), before.len() + 2);
    assert_eq!(&after.iter().filter(|v| v["path"] != "d9" && v["path"] != "d10").cloned().collect::<Vec<_>>(), &before);
    assert_eq!(s.ok(&["compact"]), "nothing to compact\n");
}

#[test]
fn automatic_compaction_past_the_threshold() {
    let s = TestStore::new();
    let toml = s.root().join("trove.toml");
    let text = std::fs::read_to_string(&toml).unwrap().replace("compact_after = 1000", "compact_after = 4");
    std::fs::write(&toml, text).unwrap();
    for i in 0..7 {
        s.ok(&["put", &format!("p/d{i}")]);
    }
    let segs = s.segments();
    assert!(segs.iter().any(|n| n.ends_with(".checkpoint.jsonl")), "{segs:?}");
    assert!(segs.len() <= 5, "{segs:?}");
    assert_eq!(s.all().len(), 7);
}

#[test]
fn names_clash_between_objects_and_child_datasets() {
    let s = TestStore::new();
    let f = s.file("x", b"x");
    s.ok(&["put", "p/d", f.to_str().unwrap()]);
    assert!(s.fails(&["put", "p/d/x"], 1).contains("already exists"));
    s.ok(&["put", "p/e/y"]);
    let y = s.file("y", b"y");
    assert!(s.fails(&["put", "p/e", y.to_str().unwrap()], 1).contains("already exists"));
}

#[test]
fn demo_builds_and_tours_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let target = dir.path().join("demo");
    let out = Command::new(bin()).arg("demo").arg(&target).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("Built a demo store")
            && text.contains("└──")
            && text.contains("stress_strain.parquet")
            && text.contains("stress_mpa"),
        "{text}"
    );
    let n: usize = Command::new(bin())
        .args(["--store"])
        .arg(&target)
        .args(["ls", "-r"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
        .unwrap();
    assert!(n >= 200, "{n} datasets");
    Command::new(bin()).arg("demo").arg(&target).assert().code(1).stderr(predicate::str::contains("already holds"));
}

#[test]
fn a_damaged_catalog_is_rebuilt_and_a_damaged_log_segment_is_named() {
    let s = TestStore::new();
    s.ok(&["put", "p/a", "-m", "x=1"]);
    s.ok(&["put", "p/b", "-t", "t"]);
    let before = s.all();
    for f in ["catalog.sqlite-wal", "catalog.sqlite-shm"] {
        let _ = std::fs::remove_file(s.root().join(".trove").join(f));
    }
    std::fs::write(s.root().join(".trove/catalog.sqlite"), vec![b'x'; 8192]).unwrap();
    let out = s.cmd(&["ls", "-r", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("warning: the catalog was damaged"));
    assert_eq!(s.all(), before);

    // A segment truncated by hand is named with its line and skipped; nothing else is touched, and once it is
    // whole again everything is back.
    let seg = s.root().join(".trove/log").join(&s.segments()[1]);
    let text = std::fs::read_to_string(&seg).unwrap();
    std::fs::write(&seg, &text[..text.len() - 10]).unwrap();
    let out = s.cmd(&["sync", "--full"]).output().unwrap();
    assert!(out.status.success());
    let e = String::from_utf8_lossy(&out.stderr);
    assert!(e.starts_with("warning: log segment") && e.contains("is damaged at line 2"), "{e}");
    std::fs::write(&seg, text).unwrap();
    s.ok(&["sync", "--full"]);
    assert_eq!(s.all(), before);
}

#[test]
fn rm_takes_many_references_and_stdin_in_one_commit() {
    let s = TestStore::new();
    let mut lines = String::new();
    for i in 0..300 {
        lines.push_str(&format!("{{\"path\": \"lab/runs/r{i:03}\", \"metadata\": {{\"i\": {i}}}}}\n"));
    }
    lines.push_str("{\"path\": \"lab/runs/r000/child\"}\n");
    let jsonl = s.file("runs.jsonl", lines.as_bytes());
    s.ok(&["ingest", jsonl.to_str().unwrap()]);
    let before = s.segments().len();
    // One bad reference among many: nothing goes.
    let mut refs: String = (1..200).map(|i| format!("lab/runs/r{i:03}\n")).collect();
    refs.push_str("lab/runs/nope\n");
    let err = s.cmd(&["rm", "-"]).write_stdin(refs.clone()).output().unwrap();
    assert_eq!(err.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&err.stderr).contains("lab/runs/nope"), "{}", String::from_utf8_lossy(&err.stderr));
    assert_eq!(s.segments().len(), before);
    assert_eq!(s.all().len(), 301);
    // 199 from stdin, two as arguments (one named twice), one with a child: one commit.
    let refs = refs.replace("lab/runs/nope\n", "\n");
    let out = s
        .cmd(&["rm", "-r", "-", "lab/runs/r250", "lab/runs/r250", "lab/runs/r000"])
        .write_stdin(refs)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "removed 202 datasets");
    assert_eq!(s.segments().len(), before + 1);
    assert_eq!(s.all().len(), 99);
    let out = s.cmd(&["rm", "-"]).write_stdin("lab/runs/r299\nlab/ru:ns:x:y\n").output().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.code() == Some(1) && said.starts_with("error: stdin line 2: "), "{said}");
    let err = s.fails(&["rm", "lab/runs/r299", "lab/runs/r298:none"], 1);
    assert!(err.contains("r298:none"), "{err}");
    assert_eq!(s.all().len(), 99);
}

/// `tag add|rm`, `meta set|unset` and `rm` on many datasets: references on stdin or `--where FILTER`, one
/// commit per batch, all or none, and `--dry-run` changing nothing.
#[test]
fn tags_metadata_and_removal_by_filter_or_stdin_in_one_commit() {
    let s = TestStore::new();
    let mut lines = String::new();
    for i in 0..120 {
        // Identical metadata in pairs, a Unicode project and a maximal-length name among them.
        let name = if i == 7 { "é".repeat(127) } else { format!("r{i:03}") };
        lines.push_str(&format!(
            "{{\"path\": \"läb/runs/{name}\", \"metadata\": {{\"i\": {}, \"even\": {}}}}}\n",
            i / 2,
            i % 2 == 0
        ));
    }
    let jsonl = s.file("runs.jsonl", lines.as_bytes());
    s.ok(&["ingest", jsonl.to_str().unwrap()]);
    let count = |filter: &str| s.ok(&["find", "--count", filter]).trim().parse::<usize>().unwrap();
    let before = s.segments().len();

    // A dry run lists what would change and changes nothing.
    let out = s.ok(&["tag", "add", "--where", "even == true and i < 10", "--dry-run", "calibrated"]);
    assert_eq!(out.lines().count(), 11, "{out}");
    assert!(out.ends_with("would change 10 datasets; nothing was changed\n"), "{out}");
    assert_eq!(s.segments().len(), before);
    assert_eq!(count("@tag == 'calibrated'"), 0);

    assert_eq!(s.ok(&["tag", "add", "--where", "even == true", "calibrated", "✓"]).trim(), "changed 60 datasets");
    assert_eq!(s.segments().len(), before + 1);
    assert_eq!(count("@tag == 'calibrated' and @tag == '✓'"), 60);
    assert_eq!(s.ok(&["tag", "rm", "--where", "i >= 50", "calibrated"]).trim(), "changed 20 datasets");
    assert_eq!(count("@tag == 'calibrated'"), 50);
    let long = format!("läb/runs/{}", "é".repeat(127));
    let out = s
        .cmd(&["meta", "set", "-", "checked=yes", "n:=[1, 2]"])
        .write_stdin(format!("{long}\nläb/runs/r000\n\n{long}\n"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "changed 2 datasets");
    assert_eq!(count("checked == 'yes' and n contains 2"), 2);
    assert_eq!(s.ok(&["meta", "unset", "--where", "exists(checked)", "checked"]).trim(), "changed 2 datasets");
    assert_eq!(count("exists(checked)"), 0);

    // One missing dataset among many, or a bad assignment: nothing changes.
    let segments = s.segments().len();
    let out = s.cmd(&["tag", "add", "-", "x"]).write_stdin("läb/runs/r001\nläb/runs/nope\n").output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("läb/runs/nope"));
    let err = s.fails(&["meta", "set", "--where", "i < 3", "bad.=1"], 1);
    assert!(err.starts_with("error: "), "{err}");
    assert_eq!(s.segments().len(), segments);
    assert_eq!(count("@tag == 'x'"), 0);
    assert!(s.fails(&["tag", "add", "--dry-run", "läb/runs/r001", "x"], 2).contains("--where"));
    assert!(s.fails(&["tag", "add", "läb/runs/r001"], 2).contains("at least one TAG"));
    assert!(s.fails(&["meta", "set", "--where", "i <", "a=1"], 1).contains("expected a value"));

    // rm --where: without a terminal to ask on, it goes ahead; a dry run first.
    let out = s.ok(&["rm", "--where", "i >= 55", "--dry-run"]);
    assert!(out.ends_with("would remove 10 datasets; nothing was changed\n"), "{out}");
    assert_eq!(count(""), 120);
    assert_eq!(s.ok(&["rm", "--where", "i >= 55", "läb/runs/r000"]).trim(), "removed 11 datasets");
    assert_eq!(count(""), 109);
    assert_eq!(s.ok(&["rm", "--where", "i > 1000", "--yes"]).trim(), "removed 0 datasets");
    assert_eq!(s.ok(&["tag", "add", "--where", "i > 1000", "x"]).trim(), "changed 0 datasets");
}
