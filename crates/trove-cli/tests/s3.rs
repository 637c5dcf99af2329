//! Stores in an S3 bucket (scripts/test starts a SeaweedFS server on loopback): the README tour answers as on
//! a folder, with the catalog cached on this machine or in PostgreSQL; data objects of every kind go up and
//! come back verified; hand edits in the bucket are found; a wrong secret is a clear error; processes killed
//! mid-write leave only what `gc` removes; many "machines" write at once and lose nothing.

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use common::machines::everything;
use common::tour::tour;
use common::{TestStore, bin};
use serde_json::{Value, json};

/// The storage of a test store, reached from this process with the test's credentials.
fn storage(s: &TestStore) -> trove_storage::Storage {
    let options: Vec<(String, String)> =
        s.env.iter().filter(|(k, _)| k.starts_with("AWS_")).map(|(k, v)| (k.to_ascii_lowercase(), v.clone())).collect();
    trove_storage::Storage::open_url(&s.location, &options).unwrap()
}

fn assert_same_tour(s: &TestStore, what: &str) {
    let expected = tour(&TestStore::new());
    let got = tour(s);
    for (a, b) in expected.lines().zip(got.lines()) {
        assert_eq!(a, b, "a folder store and {what} answer differently");
    }
    assert_eq!(expected.lines().count(), got.lines().count());
    for seen in ["lab/run2  -  big=18446744073709551615", "bulk/r03", "steel", "odd", "rows"] {
        assert!(got.contains(seen), "{seen} missing from:\n{got}");
    }
}

#[test]
fn the_readme_tour_answers_the_same_on_s3_with_a_cached_catalog() {
    let Some(s) = TestStore::on_s3("") else { return };
    assert_same_tour(&s, "a store on S3");
    let info = s.ok(&["catalog", "info"]);
    assert!(info.contains(s.root().to_str().unwrap()), "the SQLite catalog is cached in TROVE_CACHE: {info}");
    assert!(storage(&s).list("").unwrap().iter().all(|e| !e.key.ends_with(".sqlite")), "no catalog in the bucket");
}

#[test]
fn the_readme_tour_answers_the_same_on_s3_with_a_postgres_catalog() {
    let Some(s) = TestStore::on_s3_and_postgres() else { return };
    assert_same_tour(&s, "a store on S3 with PostgreSQL");
    assert!(s.ok(&["catalog", "info"]).contains("PostgreSQL"));
}

#[test]
fn objects_of_every_kind_go_up_and_come_back_verified() {
    let Some(s) = TestStore::on_s3("") else { return };
    let csv = s.file("velocity.csv", b"t,vx\n1,2.5\n2,3.5\n3,\n");
    let same = s.file("same.txt", b"identical contents\n");
    let empty = s.file("empty.dat", b"");
    let folder = s.inputs.path().join("frames");
    std::fs::create_dir_all(folder.join("sub/deeper")).unwrap();
    std::fs::write(folder.join("a.txt"), "a").unwrap();
    std::fs::write(folder.join("sub/deeper/ü b.txt"), "b").unwrap();
    let long = format!("{}.txt", "é".repeat(125));
    let (csv, same, empty) = (csv.to_str().unwrap(), same.to_str().unwrap(), empty.to_str().unwrap());

    s.ok(&["put", "lab/r1", csv, "--as", "parquet", "-m", "t=1"]);
    s.ok(&["put", "lab/r1", same, empty, folder.to_str().unwrap()]);
    s.ok(&["put", "lab/r1", same, "--name", &long]);
    s.ok(&["put", "lab/ü r2", same]);
    let table = s.ok(&["cat", "lab/r1:velocity.parquet", "--columns", "vx"]);
    assert!(table.contains("2.5") && table.contains("3 rows"), "{table}");
    let out = s.inputs.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    s.ok(&["get", "lab/r1:velocity.parquet", "--as", "csv", "-o", out.join("v.csv").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("v.csv")).unwrap(), "t,vx\n1,2.5\n2,3.5\n3,\n");
    s.ok(&["get", "lab/r1", "-o", out.join("r1").to_str().unwrap()]);
    assert_eq!(std::fs::read_to_string(out.join("r1/frames/sub/deeper/ü b.txt")).unwrap(), "b");
    assert_eq!(std::fs::read(out.join("r1/empty.dat")).unwrap(), b"");
    assert_eq!(std::fs::read_to_string(out.join("r1").join(&long)).unwrap(), "identical contents\n");
    let located = s.ok(&["locate", "lab/r1:same.txt"]);
    assert_eq!(located.trim(), format!("{}/lab/r1/same.txt", s.location));
    assert!(s.ok(&["verify", "--all"]).contains(": 0 damaged"));
    assert!(s.findings().is_empty(), "{:?}", s.findings());

    // Hand edits in the bucket: a changed object, a file inside a folder object, a stray file.
    let bucket = storage(&s);
    bucket.put("lab/r1/same.txt", &b"changed by hand\n"[..], false).unwrap();
    bucket.put("lab/r1/frames/extra.txt", &b"x"[..], false).unwrap();
    bucket.put("lab/stray.bin", &b"\0\x01"[..], false).unwrap();
    let verify = s.fails(&["verify", "--all"], 1);
    assert!(verify.contains("2 damaged"), "{verify}");
    let kinds: Vec<String> = s.findings().iter().map(|f| f["kind"].as_str().unwrap().to_string()).collect();
    assert_eq!(kinds, ["size-mismatch", "unknown", "unknown"], "{:?}", s.findings());
    let err = s.fails(&["get", "lab/r1:same.txt", "-o", out.join("x").to_str().unwrap()], 1);
    assert!(err.contains("damaged"), "a changed object is never handed out as if it were the stored one: {err}");
}

#[test]
fn a_second_machine_sees_the_first_ones_writes() {
    let Some(first) = TestStore::on_s3("") else { return };
    first.ok(&["put", "lab/a", "-m", "n=1"]);
    // Another machine: its own cache folder, so its own copy of the catalog, built from the log.
    let cache = tempfile::tempdir().unwrap();
    let mut env = first.env.clone();
    env.retain(|(k, _)| k != "TROVE_CACHE");
    env.push(("TROVE_CACHE".into(), cache.path().to_string_lossy().into_owned()));
    let second = TestStore { dir: cache, inputs: tempfile::tempdir().unwrap(), location: first.location.clone(), env };
    assert_eq!(everything(&second).len(), 1);
    second.ok(&["put", "lab/b", "-m", "n=2"]);
    first.ok(&["meta", "set", "lab/a", "n=3"]);
    assert_eq!(everything(&first), everything(&second));
    assert_eq!(everything(&first).len(), 2);
}

#[test]
fn a_wrong_secret_or_an_unknown_store_is_a_clear_error_and_changes_nothing() {
    let Some(s) = TestStore::on_s3("") else { return };
    s.ok(&["put", "lab/a"]);
    let with = |name: &str, value: &str| {
        let mut c = Command::new(bin());
        c.env_remove("TROVE_STORE").envs(s.env.clone()).env(name, value);
        c
    };
    let out = with("AWS_SECRET_ACCESS_KEY", "wrong").args(["--store", &s.location, "put", "lab/b"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    let first = err.lines().next().unwrap();
    assert!(first.contains("refused access") && first.contains(&s.location), "{err}");
    let fresh = format!("{}-new", s.location);
    let out = with("AWS_SECRET_ACCESS_KEY", "wrong").args(["init", &fresh]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused access"));
    assert!(storage(&s).head("trove.toml").unwrap().is_some());
    let nothing = format!("{}-nothing", s.location);
    let out = with("X", "x").args(["--store", &nothing, "ls"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a trove store"));
    let out = with("X", "x").args(["init", &s.location]).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("already a trove store"));
    assert_eq!(everything(&s).len(), 1, "nothing changed");
    let here = tempfile::tempdir().unwrap();
    let out = with("X", "x").current_dir(here.path()).args(["init", "ftp://host/x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stdout));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot keep a store at a ftp:// URL"));
    assert_eq!(std::fs::read_dir(here.path()).unwrap().count(), 0, "no folder named like the URL");
}

/// A process killed at a random moment of a put, an ingest or a compaction leaves a store whose `check`
/// finds orphans at most, which `gc` removes; the operation is there whole or not at all.
#[test]
fn writers_killed_mid_way_leave_only_what_gc_removes() {
    let Some(s) = TestStore::on_s3("") else { return };
    let big = s.file("big.bin", &vec![7u8; 24 << 20]);
    let lines: String =
        (0..3000).map(|i| format!("{}\n", json!({"path": format!("bulk/r{i:04}"), "metadata": {"i": i}}))).collect();
    let jsonl = s.file("in.jsonl", lines.as_bytes());
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64 ^ u64::from(std::process::id());
    eprintln!("seed {seed}");
    for round in 0..6 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let args: Vec<String> = match round % 3 {
            0 => vec!["put".into(), format!("lab/big{round}"), big.to_str().unwrap().into()],
            1 => vec!["ingest".into(), jsonl.to_str().unwrap().into(), "--batch".into(), "500".into()],
            _ => vec!["compact".into()],
        };
        let mut child = Command::new(bin())
            .env_remove("TROVE_STORE")
            .envs(s.env.clone())
            .arg("--store")
            .arg(&s.location)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(seed % 600));
        let _ = child.kill();
        let _ = child.wait();
        for finding in s.findings() {
            assert_eq!(finding["kind"], "orphan", "round {round} ({args:?}): {finding}");
        }
        s.ok(&["gc", "--grace", "0s"]);
        assert!(s.findings().is_empty(), "round {round}: {:?}", s.findings());
        let all = everything(&s);
        let bulk = all.iter().filter(|d| d["path"].as_str().is_some_and(|p| p.starts_with("bulk/"))).count();
        assert_eq!(bulk % 500, 0, "an ingest commits whole batches: {bulk}");
        for d in all.iter().filter(|d| d["path"].as_str().is_some_and(|p| p.starts_with("big"))) {
            assert_eq!(d["objects"][0]["size"], 24 << 20, "a put is whole or absent");
        }
    }
    s.ok(&["sync", "--full"]);
    assert!(s.ok(&["verify", "--all"]).contains(": 0 damaged"));
}

#[test]
fn eight_machines_write_500_datasets_each_to_s3_and_postgres_and_lose_nothing() {
    let Some(s) = TestStore::on_s3_and_postgres() else { return };
    common::machines::write_at_once_and_lose_nothing(&s, 8, 500);
}

/// A source store with objects of every kind: files of a few MiB (so that a kill lands mid-transfer), the
/// same contents in several datasets, a folder object, an empty file, Unicode and maximal-length names.
fn varied_source(s: &TestStore) {
    let same = s.file("same.bin", &vec![1u8; 3 << 20]);
    let folder = s.inputs.path().join("frames");
    std::fs::create_dir_all(folder.join("sub")).unwrap();
    std::fs::write(folder.join("a.txt"), "a").unwrap();
    std::fs::write(folder.join("sub/ü.txt"), vec![2u8; 1 << 20]).unwrap();
    let empty = s.file("empty.dat", b"");
    let long = "é".repeat(127);
    for i in 0..24 {
        let own = s.file(&format!("own{i}.bin"), &vec![i as u8; (i % 4 + 1) << 20]);
        let path = if i == 5 { format!("lab/{long}") } else { format!("lab/ü run {i}") };
        s.ok(&["put", &path, own.to_str().unwrap(), same.to_str().unwrap(), "-m", &format!("i={i}"), "-t", "t"]);
    }
    s.ok(&["put", "lab/ü run 3", folder.to_str().unwrap(), empty.to_str().unwrap(), "-m", "big=18446744073709551615"]);
    s.ok(&["meta", "set", "lab/ü run 4", "note:=\"a\\u0000b\""]);
    s.ok(&["project", "create", "other", "-m", "site=Grenoble"]);
    s.ok(&["put", "other/x", "-m", "n=1"]);
}

fn transfer_json(s: &TestStore, to: &str) -> Value {
    let out = s.ok(&["transfer", "--all", "--to", to, "--json", "--jobs", "3"]);
    serde_json::from_str::<Value>(&out).unwrap()["report"].clone()
}

#[test]
fn a_transfer_killed_20_times_resumes_to_an_exact_copy_without_sending_anything_twice() {
    let Some(dest) = TestStore::on_s3("") else { return };
    let source = TestStore::new();
    varied_source(&source);
    let mut source = source;
    source.env = dest.env.clone();
    let bucket = storage(&dest);
    let arrived =
        || bucket.list(".trove/staging").unwrap().into_iter().filter(|e| e.key.contains("/transfer-")).count();
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ u64::from(std::process::id());
    eprintln!("seed {seed}");
    let total = everything(&source).len();
    // Kills come early at first, then later and later, so that the transfer advances by pieces.
    let mut longest = 40.0_f64;
    let mut interrupted_with_files_waiting = 0;
    let (mut last_committed, mut last_waiting) = (0, 0);
    for round in 0..20 {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        longest *= 1.3;
        let mut child = Command::new(bin())
            .env_remove("TROVE_STORE")
            .envs(source.env.clone())
            .args(["--store", &source.location, "transfer", "--all", "--to", &dest.location, "--jobs", "2"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(seed % longest as u64));
        let _ = child.kill();
        let _ = child.wait();
        for finding in dest.findings() {
            assert_eq!(finding["kind"], "orphan", "round {round}: {finding}");
        }
        let (committed, waiting) = (everything(&dest).len(), arrived());
        eprintln!("round {round}: {committed} of {total} datasets committed, {waiting} files sent and waiting");
        if committed < total && waiting > 0 {
            interrupted_with_files_waiting += 1;
        }
        // A resumed run keeps what arrived before (until its commit takes it into place).
        assert!(committed > last_committed || waiting >= last_waiting, "round {round}: arrived files went away");
        (last_committed, last_waiting) = (committed, waiting);
    }
    assert!(interrupted_with_files_waiting > 0, "no kill landed between the sending and the commit");
    // The run that finishes sends only what never arrived: files found under their transfer names are used.
    let waiting = arrived();
    let committed_before = everything(&dest).len();
    let report = transfer_json(&source, &dest.location);
    eprintln!("after 20 kills: {committed_before} datasets committed, {waiting} files waiting; the last run: {report}");
    assert_eq!(report["files_reused"], waiting, "{report}");
    assert_eq!(everything(&dest), everything(&source), "the destination equals the source");
    assert_eq!(dest.ok(&["ls", "--json"]), source.ok(&["ls", "--json"]), "projects with their metadata");
    assert!(dest.ok(&["verify", "--all"]).contains(": 0 damaged"));
    let again = transfer_json(&source, &dest.location);
    assert_eq!((again["files_sent"].as_u64(), again["committed"].as_u64()), (Some(0), Some(0)), "{again}");
    // What killed runs left half-sent is an orphan, and only that.
    dest.ok(&["gc", "--grace", "0s"]);
    assert!(dest.findings().is_empty(), "{:?}", dest.findings());
    assert_eq!(arrived(), 0);
}

#[test]
fn a_transfer_comes_back_from_s3_and_refuses_a_taken_place() {
    let Some(middle) = TestStore::on_s3("") else { return };
    let source = TestStore::new();
    varied_source(&source);
    let back = TestStore::new();
    let mut from_s3 = TestStore { dir: tempfile::tempdir().unwrap(), inputs: tempfile::tempdir().unwrap(), ..middle };
    from_s3.env.retain(|(k, _)| k != "TROVE_CACHE");
    from_s3.env.push(("TROVE_CACHE".into(), from_s3.dir.path().to_string_lossy().into_owned()));
    let mut source = source;
    source.env = from_s3.env.clone();
    let dry = source.ok(&["transfer", "lab", "--to", &from_s3.location, "--dry-run"]);
    assert!(dry.starts_with("would commit 24 datasets"), "{dry}");
    assert!(everything(&from_s3).is_empty(), "a dry run changes nothing");
    source.ok(&["transfer", "lab", "--to", &from_s3.location, "--verify"]);
    from_s3.ok(&["transfer", "i >= 6", "--to", &back.location, "--verify"]);
    let wanted: Vec<Value> =
        everything(&source).into_iter().filter(|d| d["metadata"]["i"].as_u64() >= Some(6)).collect();
    assert_eq!(everything(&back), wanted);
    // Another dataset at the same place at the destination: refused before anything is sent.
    let other = TestStore::new();
    other.ok(&["put", "lab/ü run 1", "-m", "mine=1"]);
    let err = from_s3.fails(&["transfer", "lab", "--to", &other.location], 1);
    assert!(err.contains("another dataset already holds the place") && err.contains("nothing was sent"), "{err}");
    assert_eq!(everything(&other).len(), 1);
    assert!(std::fs::read_dir(other.root().join(".trove/staging")).map(|d| d.count()).unwrap_or(0) == 0);
}

#[test]
fn a_connection_brings_the_bucket_settings_and_its_secret_by_reference() {
    let Some(s) = TestStore::on_s3("") else { return };
    s.ok(&["put", "lab/a", "-m", "n=1"]);
    let config = tempfile::tempdir().unwrap();
    let value = |name: &str| s.env.iter().find(|(k, _)| k == name).unwrap().1.clone();
    let secret = value("AWS_SECRET_ACCESS_KEY");
    // No AWS variable at all: everything comes from the connection.
    let trove = |args: &[&str], lab_secret: &str| {
        let mut c = Command::new(bin());
        c.env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HOME", config.path())
            .env("TROVE_CONFIG", config.path().join("config.toml"))
            .env("TROVE_CACHE", s.root())
            .env("LAB_S3_SECRET", lab_secret)
            .args(args);
        c.output().unwrap()
    };
    let settings = [
        format!("aws_endpoint={}", value("AWS_ENDPOINT_URL")),
        format!("aws_access_key_id={}", value("AWS_ACCESS_KEY_ID")),
        "aws_region=us-east-1".to_string(),
        "aws_allow_http=true".to_string(),
    ];
    let mut add = vec!["--store", &s.location, "connections", "add", "lab", "--store-secret-env", "LAB_S3_SECRET"];
    for setting in &settings {
        add.extend(["--store-setting", setting.as_str()]);
    }
    let out = trove(&add, "");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let found = trove(&["-c", "lab", "find", "n == 1", "--ids"], &secret);
    assert!(found.status.success(), "{}", String::from_utf8_lossy(&found.stderr));
    assert_eq!(String::from_utf8_lossy(&found.stdout).lines().count(), 1);
    let listed = trove(&["connections", "list"], &secret);
    let listed = String::from_utf8_lossy(&listed.stdout).into_owned();
    assert!(listed.contains("store secret from env:LAB_S3_SECRET") && !listed.contains(&secret), "{listed}");
    assert!(!std::fs::read_to_string(config.path().join("config.toml")).unwrap().contains(&secret));
    let tested = trove(&["connections", "test", "lab"], &secret);
    assert!(tested.status.success(), "{}", String::from_utf8_lossy(&tested.stdout));
    // A wrong secret through the connection: refused, said clearly.
    let refused = trove(&["-c", "lab", "ls"], "wrong");
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("refused access"));
    // A secret given as a plain setting is refused, and nothing is saved.
    let leak = format!("aws_secret_access_key={secret}");
    let out = trove(&["--store", &s.location, "connections", "add", "leaky", "--store-setting", &leak], "");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a secret is never kept in the configuration"));
    assert!(!std::fs::read_to_string(config.path().join("config.toml")).unwrap().contains("leaky"));
}

#[test]
fn gc_removes_what_a_killed_process_left_in_this_machines_scratch_space() {
    let Some(s) = TestStore::on_s3("") else { return };
    s.ok(&["put", "lab/a", "-m", "n=1"]);
    let local = std::fs::read_dir(s.root().join("stores")).unwrap().next().unwrap().unwrap().path();
    // A conversion killed mid-way: its scratch folder, named like every staging key, by a process now gone.
    let left = local.join(".trove/staging/0193f0c2a1b27c3d8e9f0a1b2c3d4e5f.4194301.1.gone-host");
    std::fs::create_dir_all(left.join("half.zarr/c")).unwrap();
    std::fs::write(left.join("half.zarr/c/0"), vec![0u8; 4096]).unwrap();
    let kept = s.ok(&["gc"]);
    assert!(left.exists(), "younger than the grace period: kept ({kept})");
    let out = s.ok(&["gc", "--grace", "0s"]);
    assert!(!left.exists(), "{out}");
    assert!(out.contains("half") || out.contains("gone-host"), "gc says what it removed: {out}");
    assert_eq!(everything(&s).len(), 1);
}

#[test]
fn special_files_and_links_put_into_a_bucket_store_behave_as_on_a_folder() {
    let Some(s) = TestStore::on_s3("") else { return };
    let folder_store = TestStore::new();
    let fifo = s.inputs.path().join("p");
    assert!(Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let err = s.fails(&["put", "lab/d", fifo.to_str().unwrap()], 1);
    assert!(err.contains("named pipe"), "{err}");
    let err = s.fails(&["put", "lab/d", "/dev/zero"], 1);
    assert!(err.contains("character device"), "{err}");
    let target = s.file("target.txt", b"pointed at\n");
    let link = s.inputs.path().join("link.txt");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let on_s3 = s.cmd(&["put", "lab/l", link.to_str().unwrap()]).output().unwrap();
    let on_folder = folder_store.cmd(&["put", "lab/l", link.to_str().unwrap()]).output().unwrap();
    assert_eq!(on_s3.status.code(), on_folder.status.code(), "{}", String::from_utf8_lossy(&on_s3.stderr));
    if on_s3.status.success() {
        assert_eq!(s.show("lab/l")["objects"], folder_store.show("lab/l")["objects"]);
    }
    // Nothing half-done: no dataset from the refused puts, nothing left in the bucket's staging area.
    assert!(everything(&s).iter().all(|d| d["path"] != "d"));
    assert!(storage(&s).list(".trove/staging").unwrap().is_empty());
    assert!(s.findings().is_empty(), "{:?}", s.findings());
}
