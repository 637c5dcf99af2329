//! Stores whose catalog is a PostgreSQL database (scripts/test starts a throwaway server): the README tour
//! answers the same as on SQLite, a store moves between the two without losing an answer, secrets stay out
//! of every file and output, and many writers on "many machines" (processes with separate working folders)
//! lose nothing.

mod common;

use common::machines::everything;
use common::tour::tour;
use common::{TestStore, bin};
use serde_json::json;

#[test]
fn the_readme_tour_answers_the_same_on_sqlite_and_postgres() {
    let Some(pg) = TestStore::on_postgres() else { return };
    let sqlite = TestStore::new();
    let expected = tour(&sqlite);
    let got = tour(&pg);
    for (a, b) in expected.lines().zip(got.lines()) {
        assert_eq!(a, b, "SQLite and PostgreSQL answer differently");
    }
    assert_eq!(expected.lines().count(), got.lines().count());
    // The tour found things (an empty answer would agree too).
    for seen in ["lab/run2  -  big=18446744073709551615", "bulk/r03", "steel", "odd", "rows"] {
        assert!(expected.contains(seen), "{seen} missing from:\n{expected}");
    }
    assert!(pg.ok(&["catalog", "info"]).contains("PostgreSQL"));
}

#[test]
fn a_store_moves_to_postgres_and_back_with_every_answer_intact() {
    let Some(url) = trove_catalog_postgres::testing::fresh_database() else { return };
    let s = TestStore::new();
    let lines: String = (0..10_000)
        .map(|i| {
            let mut line = json!({"path": format!("p{}/r{i:05}", i % 7), "metadata": {"i": i, "t": i as f64 / 3.0, "name": format!("ü{i}")}});
            if i % 1000 == 0 {
                line["tags"] = json!(["x"]);
            }
            format!("{line}\n")
        })
        .collect();
    let jsonl = s.file("in.jsonl", lines.as_bytes());
    s.ok(&["ingest", jsonl.to_str().unwrap(), "--batch", "2500"]);
    let raw = s.file("raw.txt", b"1 2 3\n");
    s.ok(&["put", "p0/raw", raw.to_str().unwrap(), "-m", "kind=input"]);
    s.ok(&["put", "p0/same", raw.to_str().unwrap()]);
    let script = "tr ' ' '\\n' < \"$TROVE_INPUT_0\" > \"$TROVE_OUTPUT/peaks.txt\"";
    s.ok(&["compute", "peaks", "--version", "1", "--input", "p0/raw:raw.txt", "--", "sh", "-c", script]);
    let before = everything(&s);
    assert_eq!(before.len(), 10_003);
    assert!(before.iter().any(|d| d["lineage"]["name"] == "peaks"));

    let out = s.ok(&["catalog", "use", &url]);
    assert!(out.contains("10003 datasets"), "{out}");
    assert!(s.ok(&["catalog", "info"]).contains("PostgreSQL"));
    assert!(s.root().join(".trove/catalog.sqlite").exists(), "kept as a cache");
    assert_eq!(everything(&s), before, "PostgreSQL");
    // Writes go on; the way back rebuilds the SQLite catalog from the log (the old file was a stale cache).
    s.ok(&["put", "p0/later", "-m", "i=-1"]);
    let after = everything(&s);
    s.ok(&["catalog", "use", "sqlite"]);
    assert_eq!(everything(&s), after, "back on SQLite");
    assert!(s.ok(&["catalog", "info"]).contains("SQLite"));
    s.ok(&["catalog", "use", &url, "--remove-sqlite"]);
    assert!(!s.root().join(".trove/catalog.sqlite").exists());
    assert_eq!(everything(&s), after, "PostgreSQL again");
}

#[test]
fn a_wrong_catalog_is_a_clear_error_and_creates_nothing() {
    let Some(server) = trove_catalog_postgres::testing::server() else { return };
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("store");
    for (url, why) in [
        (
            "postgres://postgres@127.0.0.1:1/nowhere",
            "cannot reach the catalog at postgres://postgres@127.0.0.1:1/nowhere",
        ),
        ("mysql://x@y/z", "unknown catalog"),
    ] {
        let out = std::process::Command::new(bin()).arg("init").arg(&root).args(["--catalog", url]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.lines().next().unwrap().contains(why), "{err}");
        assert!(!root.exists(), "{url} left a store behind");
    }
    // A catalog belongs to one store.
    let Some(url) = trove_catalog_postgres::testing::fresh_database() else { return };
    let first = TestStore::with_catalog(&url);
    first.ok(&["put", "lab/a"]);
    let out = std::process::Command::new(bin()).arg("init").arg(&root).args(["--catalog", &url]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("belongs to another store"));
    assert!(!root.exists());
    assert_eq!(first.all().len(), 1, "the first store's catalog is untouched");
    drop(server);
}

#[test]
fn a_password_is_never_written_or_printed() {
    let Some(url) = trove_catalog_postgres::testing::fresh_database() else { return };
    const SECRET: &str = "hunter2-Zq9";
    // The test server trusts every connection, so any password opens it.
    let with_secret = url.replacen("postgres@", &format!("postgres:{SECRET}@"), 1);
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .arg("init")
        .arg(dir.path())
        .args(["--catalog", &with_secret])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let mut printed = String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    for args in
        [&["put", "lab/a", "-m", "t=1"][..], &["catalog", "info", "--json"], &["find", "t == 1"], &["sql", "select 1"]]
    {
        let out = std::process::Command::new(bin())
            .arg("--store")
            .arg(dir.path())
            .args(args)
            .env("PGPASSWORD", SECRET)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        printed += &String::from_utf8_lossy(&out.stdout);
        printed += &String::from_utf8_lossy(&out.stderr);
    }
    // An error names the catalog, not its secret.
    let bad = with_secret.replace("/trove_test_", "/no_such_db_");
    let out = std::process::Command::new(bin())
        .arg("--store")
        .arg(dir.path())
        .args(["catalog", "use", &bad])
        .output()
        .unwrap();
    assert!(!out.status.success());
    printed += &String::from_utf8_lossy(&out.stderr);
    assert!(!printed.contains(SECRET), "{printed}");
    for entry in walk(dir.path()) {
        let bytes = std::fs::read(&entry).unwrap();
        assert!(!String::from_utf8_lossy(&bytes).contains(SECRET), "{} holds the password", entry.display());
    }
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() { out.extend(walk(&path)) } else { out.push(path) }
    }
    out
}

#[test]
fn eight_machines_write_500_datasets_each_into_one_catalog_and_lose_nothing() {
    let Some(s) = TestStore::on_postgres() else { return };
    common::machines::write_at_once_and_lose_nothing(&s, 8, 500);
}
