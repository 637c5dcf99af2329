//! `trove check` names every kind of disagreement between log, catalog and files, and `trove gc` removes
//! only orphans.

mod common;

use common::TestStore;
use serde_json::Value;

fn findings(s: &TestStore) -> Vec<Value> {
    let out = s.cmd(&["check", "--json"]).output().unwrap();
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn kinds(s: &TestStore) -> Vec<(String, String)> {
    findings(s)
        .into_iter()
        .filter(|f| f.get("kind").is_some())
        .map(|f| (f["kind"].as_str().unwrap().to_string(), f["subject"].as_str().unwrap().to_string()))
        .collect()
}

#[test]
fn check_reports_each_disagreement_and_gc_touches_only_orphans() {
    let s = TestStore::new();
    let a = s.file("a.txt", b"alpha\n");
    let b = s.file("b.txt", b"bravo\n");
    s.ok(&["put", "p/one", a.to_str().unwrap(), b.to_str().unwrap()]);
    s.ok(&["put", "p/two", a.to_str().unwrap()]);
    let clean = s.ok(&["check"]);
    assert!(clean.contains("log, catalog and files agree"), "{clean}");

    // A deleted object file, a grown one, a file nobody put there, staged data of a dead writer.
    std::fs::remove_file(s.root().join("p/one/a.txt")).unwrap();
    std::fs::write(s.root().join("p/one/b.txt"), b"bravo, longer\n").unwrap();
    std::fs::write(s.root().join("p/two/stray.txt"), b"?").unwrap();
    std::fs::create_dir_all(s.root().join(".trove/staging")).unwrap();
    std::fs::write(s.root().join(".trove/staging/0192.999999.1.elsewhere"), b"half").unwrap();
    let err = s.fails(&["check"], 1);
    assert!(err.lines().next().unwrap().contains("4 findings"), "{err}");
    let found = kinds(&s);
    for expected in [
        ("missing", "p/one:a.txt"),
        ("size-mismatch", "p/one:b.txt"),
        ("unknown", "p/two/stray.txt"),
        ("orphan", ".trove/staging/0192.999999.1.elsewhere"),
    ] {
        assert!(
            found.iter().any(|(k, subject)| k == expected.0 && subject == expected.1),
            "{expected:?} not in {found:?}"
        );
    }

    // gc removes the orphan only; the damage stays for a person (or verify, or sync --scan) to judge.
    let gc = s.ok(&["gc", "--grace", "0"]);
    assert!(gc.contains("removed .trove/staging/0192.999999.1.elsewhere"), "{gc}");
    assert!(s.root().join("p/two/stray.txt").exists());
    assert_eq!(kinds(&s).len(), 3);

    // A segment removed behind trove's back: the catalog has rows the log does not.
    let store = TestStore::new();
    store.ok(&["put", "q/x", a.to_str().unwrap()]);
    store.ok(&["put", "q/y", b.to_str().unwrap()]);
    let last = store.segments().pop().unwrap();
    std::fs::remove_file(store.root().join(".trove/log").join(&last)).unwrap();
    std::fs::remove_file(store.root().join("q/y/b.txt")).unwrap();
    let found = kinds(&store);
    assert!(found.iter().any(|(k, _)| k == "catalog-not-in-log"), "{found:?}");
    // Rebuilding the catalog from the log makes them agree again.
    store.ok(&["sync", "--full"]);
    store.ok(&["check"]);
}
