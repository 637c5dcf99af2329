//! A long-lived handle skips listing the log while it knows nothing new is there (`LogWatch`); every way a
//! segment can appear must still reach it: another handle's commit, a log-only writer's, a segment copied in
//! by hand, and a compaction.

use serde_json::json;
use trove::model::{DatasetPath, Ref};
use trove::{DatasetEdit, OpenOptions, Store};

fn open(root: &std::path::Path, log_only: bool) -> Store {
    Store::open_with(root, &OpenOptions { durable: Some(false), log_only, ..Default::default() }).unwrap()
}

fn put(store: &Store, path: &str, v: i64) {
    let edit = DatasetEdit { meta: vec![("v".into(), json!(v))], ..Default::default() };
    store.put("lab", &DatasetPath::parse(path).unwrap(), &edit, &[]).unwrap();
}

/// What a reader of the long-lived handle sees: it brings its catalog up to date first, as every front end
/// does before a read.
fn value(store: &Store, path: &str) -> Option<serde_json::Value> {
    store.refresh().unwrap();
    store.dataset("lab", &DatasetPath::parse(path).unwrap()).unwrap().map(|s| s.meta["v"].clone())
}

#[test]
fn a_long_lived_handle_sees_every_way_a_commit_arrives() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let long_lived = Store::init_with(root, false).unwrap();
    for i in 0..30 {
        // Its own writes, one after another, with reads between: the watch stays settled.
        put(&long_lived, &format!("own/{i}"), i);
        assert_eq!(value(&long_lived, &format!("own/{i}")), Some(json!(i)));
        // Another handle (as another process): its commit unsettles the watch.
        let other = open(root, false);
        put(&other, "shared", i);
        assert_eq!(value(&long_lived, "shared"), Some(json!(i)), "round {i}: another handle's commit unseen");
        // A log-only writer leaves the catalog alone: only the log says what it did.
        let log_only = open(root, true);
        put(&log_only, &format!("log-only/{i}"), i);
        assert_eq!(value(&long_lived, &format!("log-only/{i}")), Some(json!(i)), "round {i}: log-only commit unseen");
        // An edit computed by the long-lived handle must start from what the others wrote.
        long_lived
            .edit(
                &Ref::parse("lab/shared").unwrap(),
                &DatasetEdit { meta: vec![("seen".into(), json!(i))], ..Default::default() },
            )
            .unwrap();
    }
    // A segment copied in by hand (a log synced from elsewhere) is seen as well.
    let source = tempfile::tempdir().unwrap();
    let elsewhere = Store::init_with(source.path(), false).unwrap();
    put(&elsewhere, "from-elsewhere", 7);
    for entry in std::fs::read_dir(source.path().join(".trove/log")).unwrap().flatten() {
        let name = entry.file_name();
        std::fs::copy(entry.path(), root.join(".trove/log").join(&name)).unwrap();
    }
    assert_eq!(value(&long_lived, "from-elsewhere"), Some(json!(7)));
    // Compactions by another handle, then by this one: nothing is lost and the catalog equals a rebuild.
    open(root, false).compact(true).unwrap();
    put(&long_lived, "after-compaction", 1);
    long_lived.compact(false).unwrap();
    let before: Vec<_> = (0..30).map(|i| value(&long_lived, &format!("own/{i}"))).collect();
    long_lived.sync_full().unwrap();
    let after: Vec<_> = (0..30).map(|i| value(&long_lived, &format!("own/{i}"))).collect();
    assert_eq!(before, after);
    assert_eq!(value(&long_lived, "after-compaction"), Some(json!(1)));
    let shared = long_lived.dataset("lab", &DatasetPath::parse("shared").unwrap()).unwrap().unwrap();
    assert_eq!((shared.meta["v"].clone(), shared.meta["seen"].clone()), (json!(29), json!(29)));
    assert!(long_lived.check().unwrap().findings.is_empty());
}
