//! The holes adversarial testing found (issue 13), each as the repro that found it: routine commands must
//! never lose data, one write must never make a store unusable, an error must mean nothing happened, and no
//! command may hang.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::TestStore;

/// What `trove check --json` found, as `(kind, subject)`.
fn findings(s: &TestStore) -> Vec<(String, String)> {
    s.findings()
        .into_iter()
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string()))
        .collect()
}

fn assert_clean(s: &TestStore) {
    let found = findings(s);
    assert!(found.is_empty(), "check found: {found:?}");
}

fn refs(s: &TestStore) -> Vec<String> {
    s.all().iter().map(|d| format!("{}/{}", d["project"].as_str().unwrap(), d["path"].as_str().unwrap())).collect()
}

fn p(path: &Path) -> &str {
    path.to_str().unwrap()
}

// ---------------------------------------------------------------------------------------------------------
// 1. Names on disk are the names

#[test]
fn unicode_and_odd_names_are_kept_on_disk_as_they_are_and_survive_a_scan() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    let long_e = "é".repeat(127);
    let hashes = "#".repeat(100);
    let max = "x".repeat(255);
    let names = ["café", "x#1", "50% ~{^}[]`", long_e.as_str(), hashes.as_str(), max.as_str()];
    for name in names {
        s.ok(&["put", &format!("lab/{name}"), p(&a), "--name", name, "-m", "k=1"]);
        let on_disk = s.root().join("lab").join(name).join(name);
        assert!(on_disk.is_file(), "{name}: not at {}", on_disk.display());
        let located = s.ok(&["locate", &format!("lab/{name}:{name}")]);
        assert_eq!(Path::new(located.trim()), on_disk);
    }
    assert_clean(&s);
    let scan = s.ok(&["sync", "--scan"]);
    assert!(!scan.contains("removed"), "{scan}");
    assert_eq!(refs(&s).len(), names.len());
    assert_clean(&s);
    // And they move, copy and go like any other.
    s.ok(&["mv", "lab/café", "lab/thé"]);
    assert!(s.root().join("lab/thé/café").is_file());
    s.ok(&["cp", "lab/x#1", "lab/y#2"]);
    assert!(s.root().join("lab/y#2/x#1").is_file());
    s.ok(&["rm", &format!("lab/{hashes}")]);
    assert!(!s.root().join("lab").join(&hashes).exists());
    s.ok(&["sync", "--scan"]);
    assert_eq!(refs(&s).len(), names.len());
    assert_clean(&s);
}

// ---------------------------------------------------------------------------------------------------------
// 2. An object and a dataset on one path

#[test]
fn a_store_with_format_1_escaped_names_is_upgraded_when_opened() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    s.ok(&["put", "lab/café", p(&a), "--name", "x#1", "-m", "k=1"]);
    s.ok(&["put", "lab/plain", p(&a)]);
    // What format 1 left on disk: escaped names, and the version in trove.toml.
    let lab = s.root().join("lab");
    std::fs::rename(lab.join("café"), lab.join("caf%C3%A9")).unwrap();
    std::fs::rename(lab.join("caf%C3%A9/x#1"), lab.join("caf%C3%A9/x%231")).unwrap();
    let config = s.root().join("trove.toml");
    let text = std::fs::read_to_string(&config).unwrap().replace("format_version = 2", "format_version = 1");
    std::fs::write(&config, text).unwrap();
    assert_eq!(refs(&s), ["lab/café", "lab/plain"]);
    assert_eq!(std::fs::read(lab.join("café/x#1")).unwrap(), b"a\n");
    assert!(!lab.join("caf%C3%A9").exists());
    assert!(std::fs::read_to_string(&config).unwrap().contains("format_version = 2"));
    assert!(s.ok(&["sync", "--scan"]).contains("nothing changed"));
    assert_clean(&s);
}

#[test]
fn an_object_and_a_child_dataset_on_one_path_are_refused_in_either_order() {
    for reversed in [false, true] {
        let s = TestStore::new();
        let a = s.file("a.txt", b"a\n");
        let child = format!(r#"{{"path":"lab/x/y","files":{{"a.txt":"{}"}}}}"#, p(&a));
        let parent = format!(r#"{{"path":"lab/x","files":{{"y":"{}"}}}}"#, p(&a));
        let lines = if reversed { format!("{parent}\n{child}\n") } else { format!("{child}\n{parent}\n") };
        let input = s.file("in.jsonl", lines.as_bytes());
        let err = s.fails(&["ingest", p(&input)], 1);
        assert!(err.lines().next().unwrap().contains("lab/x/y"), "{err}");
        assert!(refs(&s).is_empty(), "nothing may be committed");
        assert_clean(&s);
    }
}

#[test]
fn log_only_writers_cannot_put_an_object_where_a_dataset_folder_is() {
    for reversed in [false, true] {
        let s = TestStore::new();
        let a = s.file("a.txt", b"a\n");
        let child = ["put", "--log-only", "lab/x/y", p(&a)];
        let parent = ["put", "--log-only", "lab/x", p(&a), "--name", "y"];
        let (first, second): (&[&str], &[&str]) = if reversed { (&parent, &child) } else { (&child, &parent) };
        s.ok(first);
        let err = s.fails(second, 1);
        assert!(err.contains("lab/x/y"), "{err}");
        s.ok(&["sync"]);
        assert_eq!(refs(&s).len(), 1);
        assert_clean(&s);
    }
}

// ---------------------------------------------------------------------------------------------------------
// 3. Files placed by hand are never overwritten

#[test]
fn hand_placed_files_in_the_way_are_named_and_kept() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"trove's\n");
    // put --name onto a hand-made folder
    s.ok(&["put", "lab/x", p(&a)]);
    std::fs::create_dir_all(s.root().join("lab/x/y")).unwrap();
    std::fs::write(s.root().join("lab/x/y/mine.txt"), b"by hand").unwrap();
    let err = s.fails(&["put", "lab/x", p(&a), "--name", "y"], 1);
    assert!(err.contains("lab/x/y") && err.contains("by hand"), "{err}");
    assert_eq!(std::fs::read(s.root().join("lab/x/y/mine.txt")).unwrap(), b"by hand");
    // mv onto a hand-made file
    s.ok(&["put", "lab/a", p(&a)]);
    std::fs::create_dir_all(s.root().join("lab/b")).unwrap();
    std::fs::write(s.root().join("lab/b/a.txt"), b"also mine").unwrap();
    let err = s.fails(&["mv", "lab/a", "lab/b"], 1);
    assert!(err.contains("lab/b/a.txt"), "{err}");
    assert_eq!(std::fs::read(s.root().join("lab/b/a.txt")).unwrap(), b"also mine");
    assert!(s.root().join("lab/a/a.txt").is_file());
    // cp of a folder object onto a hand-made folder
    let frames = s.inputs.path().join("frames");
    std::fs::create_dir_all(&frames).unwrap();
    std::fs::write(frames.join("0.bin"), b"0").unwrap();
    s.ok(&["put", "lab/src", p(&frames)]);
    std::fs::create_dir_all(s.root().join("lab/dst/frames")).unwrap();
    std::fs::write(s.root().join("lab/dst/frames/keep.bin"), b"keep").unwrap();
    let err = s.fails(&["cp", "lab/src", "lab/dst"], 1);
    assert!(err.contains("lab/dst/frames"), "{err}");
    assert_eq!(std::fs::read(s.root().join("lab/dst/frames/keep.bin")).unwrap(), b"keep");
    // Replacing trove's own object still works.
    let a2 = s.file("a2.txt", b"new\n");
    s.ok(&["put", "lab/a", p(&a2), "--name", "a.txt"]);
    assert_eq!(std::fs::read(s.root().join("lab/a/a.txt")).unwrap(), b"new\n");
    assert_eq!(refs(&s), ["lab/a", "lab/src", "lab/x"]);
}

#[test]
fn a_folder_moved_by_hand_keeps_its_own_identity_among_identical_datasets() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"the same bytes\n");
    for n in 1..=3 {
        s.ok(&["put", &format!("hand/h{n}"), p(&a), "-m", &format!("n={n}")]);
    }
    let id2 = s.show("hand/h2")["id"].clone();
    std::fs::remove_dir_all(s.root().join("hand/h1")).unwrap();
    std::fs::rename(s.root().join("hand/h2"), s.root().join("hand/h2moved")).unwrap();
    let scan = s.ok(&["sync", "--scan"]);
    assert!(scan.contains("moved hand/h2 → hand/h2moved"), "{scan}");
    assert!(scan.contains("removed hand/h1"), "{scan}");
    let moved = s.show("hand/h2moved");
    assert_eq!(moved["id"], id2);
    assert_eq!(moved["metadata"]["n"], 2);
    assert_eq!(refs(&s), ["hand/h2moved", "hand/h3"]);
    assert_clean(&s);

    // Without the files' identities (a rebuilt catalog forgets them), content alone cannot tell a deleted
    // dataset from a moved one: the folder is reported, nothing is recorded, nothing is removed.
    for n in 4..=5 {
        s.ok(&["put", &format!("other/h{n}"), p(&a), "-m", &format!("n={n}")]);
    }
    s.ok(&["sync", "--full"]);
    std::fs::remove_dir_all(s.root().join("other/h4")).unwrap();
    std::fs::rename(s.root().join("other/h5"), s.root().join("other/h5moved")).unwrap();
    let scan = s.ok(&["sync", "--scan"]);
    assert!(scan.contains("skipped other/h5moved"), "{scan}");
    assert!(scan.contains("other/h4, other/h5"), "{scan}");
    assert!(!scan.contains("removed") && !scan.contains("moved other"), "{scan}");
    assert_eq!(refs(&s), ["hand/h2moved", "hand/h3", "other/h4", "other/h5"]);
    // Told which was deleted, the scan finds the other moved.
    s.ok(&["rm", "other/h4"]);
    let scan = s.ok(&["sync", "--scan"]);
    assert!(scan.contains("moved other/h5 → other/h5moved"), "{scan}");
    assert_eq!(s.show("other/h5moved")["metadata"]["n"], 5);
    assert_clean(&s);
}

#[test]
fn a_new_dataset_where_a_removed_folder_object_was_is_not_an_orphan_for_gc() {
    // Found by the sequence property: `lab/p/a` was a folder object of `lab/p`; after `rm lab/p` a new
    // dataset was made there by hand, and `check` called it left behind (so `gc` would have deleted it).
    let s = TestStore::new();
    let lab = s.root().join("lab");
    std::fs::create_dir_all(lab.join("p/a")).unwrap();
    std::fs::write(lab.join("p/a/f1"), b"same\n").unwrap();
    std::fs::write(lab.join("p/f2"), b"same\n").unwrap();
    s.ok(&["sync", "--scan"]);
    s.ok(&["rm", "lab/p"]);
    std::fs::create_dir_all(lab.join("p/a")).unwrap();
    std::fs::write(lab.join("p/a/f4"), b"same\n").unwrap();
    let scan = s.ok(&["sync", "--scan"]);
    assert!(scan.contains("new dataset lab/p/a"), "{scan}");
    assert_clean(&s);
    s.ok(&["gc", "--grace", "0s"]);
    assert_eq!(std::fs::read(lab.join("p/a/f4")).unwrap(), b"same\n");
    assert_clean(&s);
}

#[test]
fn a_dataset_in_a_hidden_folder_is_left_alone_by_a_scan() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    s.ok(&["put", "lab/.hidden", p(&a)]);
    for _ in 0..2 {
        let scan = s.ok(&["sync", "--scan"]);
        assert!(scan.contains("nothing changed"), "{scan}");
    }
    assert_eq!(refs(&s), ["lab/.hidden"]);
    assert_clean(&s);
}

// ---------------------------------------------------------------------------------------------------------
// 5. One write must never brick a store

#[test]
fn integers_are_kept_exactly_or_refused_never_rounded() {
    let s = TestStore::new();
    // Past 2^63 but inside u64: kept exactly.
    s.ok(&["put", "lab/u", "-m", "seed=12345678901234567891"]);
    assert_eq!(s.show("lab/u")["metadata"]["seed"].to_string(), "12345678901234567891");
    // Past 64 bits: refused at every entry point, with the value named and nothing written.
    let huge = "123456789012345678901";
    for args in [
        vec!["put", "lab/h", "-m", &format!("seed={huge}")],
        vec!["put", "lab/h", "-m", &format!("seeds:=[1, {huge}]")],
    ] {
        let err = s.fails(&args, 1);
        assert!(err.starts_with(&format!("error: the integer {huge} (at \"seed")), "{err}");
    }
    let meta =
        s.file("m.json", format!(r#"{{"run": {{"seed": {huge}}}, "date": "2024-05-01", "x": -1.5e300}}"#).as_bytes());
    let err = s.fails(&["put", "lab/h", "--meta-json", p(&meta)], 1);
    assert!(err.contains(huge) && err.contains("does not fit in 64 bits"), "{err}");
    let lines =
        s.file("in.jsonl", format!("{{\"path\": \"lab/h\", \"metadata\": {{\"seed\": -{huge}}}}}\n").as_bytes());
    let err = s.fails(&["ingest", p(&lines)], 1);
    assert!(err.contains(&format!("-{huge}")), "{err}");
    assert!(s.fails(&["show", "lab/h"], 1).contains("not found"));
    // As text it is kept as given; dates and big floats are untouched by the check.
    s.ok(&["put", "lab/h", "-m", &format!("seed=={huge}"), "-m", "day=2024-05-01", "-m", "x=1e300"]);
    assert_eq!(s.show("lab/h")["metadata"]["seed"], huge);
    assert_eq!(s.show("lab/h")["metadata"]["day"], "2024-05-01");
}

#[test]
fn deep_or_unqueryable_metadata_is_refused_at_every_entry_point() {
    let s = TestStore::new();
    s.ok(&["put", "lab/d", "-m", "k=1"]);
    let dotted = vec!["a"; 200].join(".");
    let err = s.fails(&["meta", "set", "lab/d", &format!("{dotted}=1")], 1);
    assert!(err.lines().next().unwrap().contains("64"), "{err}");
    let deep = format!("{}1{}", r#"{"a":"#.repeat(127), "}".repeat(127));
    let meta = s.file("deep.json", deep.as_bytes());
    let err = s.fails(&["put", "lab/d", "--meta-json", p(&meta)], 1);
    assert!(err.contains("nested more than 64 levels"), "{err}");
    for bad in [
        r#"{"": 1}"#,
        r#"{"@kind": 1}"#,
        r#"{"a\nb": 1}"#,
        r#"{"a..b": 1}"#,
        r#"{"a.b": 1, "a": {"b": 2}}"#,
        r#"{"$gt": 1}"#,
        r#"{"a": {"x\u0000y": 1}}"#,
    ] {
        let meta = s.file("bad.json", bad.as_bytes());
        let err = s.fails(&["put", "lab/d", "--meta-json", p(&meta)], 1);
        assert!(err.starts_with("error: invalid metadata key"), "{bad}: {err}");
        let line = format!(r#"{{"path":"lab/e","metadata":{bad}}}"#);
        let input = s.file("bad.jsonl", line.as_bytes());
        let err = s.fails(&["ingest", p(&input)], 1);
        assert!(err.contains("invalid metadata key"), "{bad}: {err}");
    }
    // Values may hold anything: NUL, huge integers, deep-but-allowed nesting.
    let fine =
        format!(r#"{{"s": "a\u0000b", "big": 18446744073709551615, "deep": {}1{}}}"#, "[".repeat(60), "]".repeat(60));
    let meta = s.file("fine.json", fine.as_bytes());
    s.ok(&["put", "lab/d", "--meta-json", p(&meta)]);
    for command in [&["ls", "-r"][..], &["check"], &["verify"], &["compact"], &["sync", "--full"]] {
        s.ok(command);
    }
    s.ok(&["meta", "unset", "lab/d", "deep"]);
    s.ok(&["rm", "lab/d"]);
    assert_clean(&s);
}

// ---------------------------------------------------------------------------------------------------------
// 7. An error means nothing happened

#[test]
fn a_path_too_long_for_the_disk_is_refused_before_anything_is_committed() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    let path = vec!["x".repeat(250); 20].join("/");
    let err = s.fails(&["put", &format!("lab/{path}"), p(&a)], 1);
    assert!(err.contains("bytes long"), "{err}");
    assert!(refs(&s).is_empty());
    s.ok(&["gc"]);
    assert_clean(&s);
}

#[test]
fn an_ingest_that_fails_in_a_later_batch_says_what_was_committed() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    s.ok(&["put", "lab/x", p(&a), "--name", "y"]);
    let lines = "{\"path\":\"lab/ok\"}\n{\"path\":\"lab/x/y/z\"}\n";
    let input = s.file("in.jsonl", lines.as_bytes());
    let err = s.fails(&["ingest", p(&input), "--batch", "1"], 1);
    assert!(err.contains("lab/x:y") && err.contains("line 2") && err.contains("1 line"), "{err}");
    assert_eq!(refs(&s), ["lab/ok", "lab/x"]);
}

#[test]
fn two_files_of_one_name_are_refused() {
    let s = TestStore::new();
    for d in ["d1", "d2"] {
        std::fs::create_dir_all(s.inputs.path().join(d)).unwrap();
        std::fs::write(s.inputs.path().join(d).join("v.txt"), d).unwrap();
    }
    let (v1, v2) = (s.inputs.path().join("d1/v.txt"), s.inputs.path().join("d2/v.txt"));
    let err = s.fails(&["put", "lab/d", p(&v1), p(&v2)], 1);
    assert!(err.contains("\"v.txt\""), "{err}");
    assert!(refs(&s).is_empty());
    s.ok(&["gc"]);
    assert_clean(&s);
}

fn running_as_root() -> bool {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Runs trove as a user that file permissions apply to: the tests' own user, or `nobody` when they run as
/// root (root may write any file). `None` (said loudly; a failure under CI) when that cannot be arranged.
fn unprivileged_trove(dir: &Path) -> Option<impl Fn(&[&str]) -> std::process::Output> {
    use std::os::unix::fs::PermissionsExt;
    let root = running_as_root();
    let setpriv = Path::new("/usr/bin/setpriv");
    if root && !setpriv.exists() {
        assert!(std::env::var_os("CI").is_none(), "running as root without setpriv: cannot test permissions");
        eprintln!("SKIPPED: running as root without /usr/bin/setpriv, so file permissions cannot be tested");
        return None;
    }
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.join("trove");
    std::fs::copy(common::bin(), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let store = dir.join("s");
    Some(move |args: &[&str]| {
        let mut c = if root {
            let mut c = std::process::Command::new(setpriv);
            c.args(["--reuid=65534", "--regid=65534", "--clear-groups"]).arg(&bin);
            c
        } else {
            std::process::Command::new(&bin)
        };
        c.env_remove("TROVE_STORE").arg("--store").arg(&store).args(args).current_dir(dir).output().unwrap()
    })
}

#[test]
fn a_read_only_catalog_makes_writes_log_only_and_breaks_no_later_command() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let Some(trove) = unprivileged_trove(dir.path()) else { return };
    let ok = |args: &[&str]| {
        let out = trove(args);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        (String::from_utf8(out.stdout).unwrap(), String::from_utf8(out.stderr).unwrap())
    };
    let store = dir.path().join("s");
    let out = std::process::Command::new(common::bin()).arg("init").arg(&store).output().unwrap();
    assert!(out.status.success());
    if running_as_root() {
        let chown = std::process::Command::new("chown").args(["-R", "nobody:nogroup"]).arg(&store).status();
        assert!(chown.is_ok_and(|s| s.success()), "chown of the test store to nobody failed");
    }
    std::fs::write(dir.path().join("a.txt"), "a\n").unwrap();
    std::fs::set_permissions(dir.path().join("a.txt"), std::fs::Permissions::from_mode(0o644)).unwrap();
    ok(&["put", "lab/a", "a.txt"]);
    let database = store.join(".trove/catalog.sqlite");
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o444)).unwrap();
    let (_, said) = ok(&["put", "lab/b", "a.txt"]);
    assert!(said.contains("written to the log only") && said.contains("cannot be written"), "{said}");
    let (listed, said) = ok(&["ls", "-r"]);
    assert_eq!(listed, "lab/a\n");
    assert!(said.contains("lacks the last 1 log segment"), "{said}");
    // Once the catalog can be written again, nothing left behind stands in the way.
    std::fs::set_permissions(&database, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (listed, _) = ok(&["ls", "-r"]);
    assert_eq!(listed, "lab/a\nlab/b\n");
    ok(&["check"]);
}

// ---------------------------------------------------------------------------------------------------------
// 8. No hangs

#[test]
fn special_files_are_refused_without_being_opened() {
    let s = TestStore::new();
    let fifo = s.inputs.path().join("p");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let started = Instant::now();
    let err = s.fails(&["put", "lab/d", p(&fifo)], 1);
    assert!(err.contains("named pipe"), "{err}");
    let err = s.fails(&["put", "lab/d", "/dev/zero"], 1);
    assert!(err.contains("character device"), "{err}");
    // Inside a folder too.
    let folder = s.inputs.path().join("f");
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(folder.join("ok.txt"), b"ok").unwrap();
    assert!(std::process::Command::new("mkfifo").arg(folder.join("q")).status().unwrap().success());
    let err = s.fails(&["put", "lab/d", p(&folder)], 1);
    assert!(err.contains("named pipe"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(60), "a special file made trove wait");
    assert!(refs(&s).is_empty());
}

#[test]
fn a_lease_claiming_to_last_for_ever_is_believed_only_for_a_term() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    s.ok(&["put", "lab/a", p(&a)]);
    let leases = s.root().join(".trove/leases");
    std::fs::create_dir_all(&leases).unwrap();
    let record = serde_json::json!({
        "name": "tree/lab",
        "owner": {"host": "elsewhere.example", "pid": 4711, "start": 1, "writer": "remote"},
        "acquired": 0,
        "expires": i64::MAX,
    });
    let file = leases.join("tree=2Flab.00000000000000000001.lease");
    std::fs::write(&file, serde_json::to_vec(&record).unwrap()).unwrap();
    let hour_ago = std::time::SystemTime::now() - Duration::from_secs(3600);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(hour_ago).unwrap();
    s.ok(&["mv", "lab/a", "lab/b"]);
    assert_eq!(refs(&s), ["lab/b"]);
}

// ---------------------------------------------------------------------------------------------------------
// 10. Links never lead trove out of the store

#[test]
fn a_symlink_in_the_store_is_never_written_or_deleted_through() {
    let s = TestStore::new();
    let elsewhere = tempfile::tempdir().unwrap();
    std::fs::write(elsewhere.path().join("a.txt"), b"precious").unwrap();
    let a = s.file("a.txt", b"a\n");
    std::fs::create_dir_all(s.root().join("lab")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), s.root().join("lab/evil")).unwrap();
    let err = s.fails(&["put", "lab/evil", p(&a)], 1);
    assert!(err.contains("symbolic link"), "{err}");
    assert_eq!(std::fs::read(elsewhere.path().join("a.txt")).unwrap(), b"precious");
    assert!(refs(&s).is_empty());
    // A dataset folder swapped for a link by hand: rm removes the dataset, never what the link leads to.
    std::fs::remove_file(s.root().join("lab/evil")).unwrap();
    s.ok(&["put", "lab/evil", p(&a)]);
    std::fs::remove_dir_all(s.root().join("lab/evil")).unwrap();
    std::os::unix::fs::symlink(elsewhere.path(), s.root().join("lab/evil")).unwrap();
    s.ok(&["rm", "-r", "lab/evil"]);
    assert_eq!(std::fs::read(elsewhere.path().join("a.txt")).unwrap(), b"precious");
}

// ---------------------------------------------------------------------------------------------------------
// Smaller

#[test]
fn a_store_inside_a_store_is_refused() {
    let s = TestStore::new();
    let inner = s.root().join("lab/inner");
    let out = assert_cmd::Command::new(common::bin()).arg("init").arg(&inner).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert!(err.contains("inside the trove store"), "{err}");
    assert!(!inner.join("trove.toml").exists());
}

#[test]
fn errors_are_one_line_first_and_say_what_was_wrong() {
    let s = TestStore::new();
    let err = s.fails(&["project", "create", "trove.toml"], 1);
    assert!(err.contains("settings file") && !err.contains("leading"), "{err}");
    std::fs::write(s.root().join("trove.toml"), b"[store\nformat_version = = 1\n").unwrap();
    let err = s.fails(&["ls"], 1);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(err.contains("trove.toml is not valid: line 1"), "{err}");
}

// ---------------------------------------------------------------------------------------------------------
// 6. Recovery: the catalog is rebuilt whenever it is damaged; a damaged segment is skipped, named and
// quarantined, and every other commit stays usable

#[test]
fn damaged_segments_are_skipped_named_and_quarantined() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"a\n");
    s.ok(&["put", "lab/one", p(&a), "-m", "k=1"]);
    s.ok(&["put", "lab/two", "-m", "k=2"]);
    s.ok(&["put", "lab/three", "-m", "k=3"]);
    let log = s.root().join(".trove/log");
    let segments = s.segments();
    let two = log.join(&segments[segments.len() - 2]);
    let three = log.join(&segments[segments.len() - 1]);
    // An empty segment, and one with a garbage line appended.
    std::fs::write(&two, b"").unwrap();
    let mut text = std::fs::read(&three).unwrap();
    text.extend_from_slice(b"{garbage\n");
    std::fs::write(&three, &text).unwrap();
    let out = s.cmd(&["sync", "--full"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let warning = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(warning.contains("is damaged") && warning.contains("trove repair"), "{warning}");
    assert_eq!(refs(&s), ["lab/one"]);
    s.ok(&["put", "lab/four", "-m", "k=4"]);
    let kinds: Vec<String> = findings(&s).into_iter().map(|(k, _)| k).collect();
    assert_eq!(kinds, ["damaged-segment", "damaged-segment"], "{kinds:?}");
    let repaired = s.ok(&["repair"]);
    assert!(repaired.contains("2 damaged segments moved aside"), "{repaired}");
    assert!(repaired.contains("lab/three") && repaired.contains("the segment is empty"), "{repaired}");
    assert!(s.root().join(".trove/quarantine").join(two.file_name().unwrap()).is_file());
    assert_eq!(refs(&s), ["lab/four", "lab/one"]);
    assert_clean(&s);
}

#[test]
fn a_catalog_with_a_damaged_page_is_rebuilt_from_the_log() {
    let s = TestStore::new();
    for i in 0..200 {
        s.ok(&["put", &format!("lab/d{i}"), "-m", &format!("k={i}"), "-m", &format!("text={}", "x".repeat(300))]);
    }
    s.ok(&["compact"]);
    let before = s.all();
    let catalog = s.root().join(".trove/catalog.sqlite");
    let mut bytes = std::fs::read(&catalog).unwrap();
    assert!(bytes.len() > 64 * 1024, "{} bytes", bytes.len());
    let end = bytes.len() - 4096;
    bytes[8192..end].fill(0xA5);
    std::fs::write(&catalog, &bytes).unwrap();
    let out = s.cmd(&["sync", "--full"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.all(), before);
    assert_clean(&s);
}
