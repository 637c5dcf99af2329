//! Batches: many writes, one commit, all or nothing; the catalog ends equal to a rebuild from the log.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use trove::model::{DatasetPath, Ref};
use trove::{DatasetEdit, FileImport, OpenOptions, Store};

fn open(root: &Path) -> Store {
    Store::open_with(root, &OpenOptions { durable: Some(false), ..Default::default() }).unwrap()
}

fn path(p: &str) -> DatasetPath {
    DatasetPath::parse(p).unwrap()
}

fn meta(pairs: &[(&str, Value)]) -> DatasetEdit {
    DatasetEdit { meta: pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect(), ..Default::default() }
}

fn segments(root: &Path) -> usize {
    std::fs::read_dir(root.join(".trove/log")).unwrap().count()
}

/// Every dataset of every project, as the catalog has it.
fn states(store: &Store) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for project in store.projects().unwrap() {
        store
            .descendants(&project.name, None, |state| {
                let at = state.at.as_ref().unwrap();
                out.insert(format!("{}/{}", at.project(), at.path()), serde_json::to_value(state).unwrap());
                Ok(())
            })
            .unwrap();
    }
    out
}

fn assert_catalog_equals_rebuild(store: &Store) {
    let before = states(store);
    store.sync_full().unwrap();
    assert_eq!(states(store), before, "the catalog differs from a rebuild from the log");
}

#[test]
fn a_batch_is_one_commit_and_the_catalog_equals_a_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    for i in 0..20 {
        store.put("lab", &path(&format!("runs/{i}")), &meta(&[("i", json!(i))]), &[]).unwrap();
    }
    let before = segments(dir.path());
    store.begin_batch().unwrap();
    for i in 0..20 {
        let r = Ref::parse(&format!("lab/runs/{i}")).unwrap();
        store.edit(&r, &meta(&[("status", json!("done")), ("big", json!(u64::MAX - i))])).unwrap();
        // The batch's own reads see its writes at once.
        assert_eq!(store.dataset("lab", &path(&format!("runs/{i}"))).unwrap().unwrap().meta["status"], "done");
    }
    // A dataset created, edited twice and re-edited in one batch; a Unicode name; NUL in a value.
    let edit = DatasetEdit { tags_add: vec!["β-batch".into()], ..meta(&[("note", json!("a\u{0}b"))]) };
    store.put("lab", &path("ünï/ςode"), &edit, &[]).unwrap();
    store.edit(&Ref::parse("lab/ünï/ςode").unwrap(), &meta(&[("note", json!("second"))])).unwrap();
    store.remove(&Ref::parse("lab/runs/19").unwrap(), false).unwrap();
    store.create_project("other", &[("owner".into(), json!("ada"))]).unwrap();
    assert_eq!(segments(dir.path()), before, "nothing is published before the batch ends");
    let report = store.end_batch(true).unwrap();
    assert!(report.commit.is_some());
    assert_eq!(segments(dir.path()), before + 1, "one batch, one commit");

    let reopened = open(dir.path());
    for i in 0..19 {
        let state = reopened.dataset("lab", &path(&format!("runs/{i}"))).unwrap().unwrap();
        assert_eq!(state.meta["status"], "done");
        assert_eq!(state.meta["big"], json!(u64::MAX - i));
    }
    assert!(reopened.dataset("lab", &path("runs/19")).unwrap().is_none());
    let unicode = reopened.dataset("lab", &path("ünï/ςode")).unwrap().unwrap();
    assert_eq!(unicode.meta["note"], "second");
    assert!(unicode.tags.contains("β-batch"));
    assert_catalog_equals_rebuild(&store);
    assert_catalog_equals_rebuild(&reopened);
}

#[test]
fn a_batch_ended_without_committing_writes_nothing_and_leaves_no_files() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    store.put("lab", &path("keep"), &meta(&[("v", json!(1))]), &[]).unwrap();
    let data = dir.path().join("../outside.bin");
    std::fs::write(&data, b"same bytes").unwrap();
    let before_states = states(&store);
    let before_segments = segments(dir.path());

    store.begin_batch().unwrap();
    store.edit(&Ref::parse("lab/keep").unwrap(), &meta(&[("v", json!(2))])).unwrap();
    store.put("lab", &path("new"), &DatasetEdit::default(), &[FileImport::new(&data).unwrap()]).unwrap();
    store.put("lab", &path("twin"), &DatasetEdit::default(), &[FileImport::new(&data).unwrap()]).unwrap();
    store.end_batch(false).unwrap();

    assert_eq!(states(&store), before_states);
    assert_eq!(segments(dir.path()), before_segments);
    let staging = dir.path().join(trove::STAGING);
    let left: Vec<_> = std::fs::read_dir(&staging).map(|d| d.flatten().collect()).unwrap_or_default();
    assert!(left.is_empty(), "staged files left behind: {left:?}");
    assert!(!dir.path().join("lab/new").exists());
    assert_eq!(states(&open(dir.path())), before_states);
}

#[test]
fn files_put_in_a_batch_move_into_place_when_it_commits() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("same.txt");
    std::fs::write(&file, b"identical contents").unwrap();
    store.begin_batch().unwrap();
    for i in 0..3 {
        store.put("lab", &path(&format!("d{i}")), &DatasetEdit::default(), &[FileImport::new(&file).unwrap()]).unwrap();
    }
    // The same object replaced twice in one batch would leave the end's moves and deletions to undo each
    // other: refused, and the batch goes on.
    let again = store.put("lab", &path("d0"), &DatasetEdit::default(), &[FileImport::new(&file).unwrap()]);
    let message = again.unwrap_err().to_string();
    assert!(message.contains("earlier in this batch"), "{message}");
    store.end_batch(true).unwrap();
    for i in 0..3 {
        let placed = dir.path().join(format!("lab/d{i}/same.txt"));
        assert_eq!(std::fs::read(&placed).unwrap(), b"identical contents");
    }
    let report = store.check().unwrap();
    assert!(report.findings.is_empty(), "{:?}", report.findings);
    assert_catalog_equals_rebuild(&store);
}

#[test]
fn a_failed_write_inside_a_batch_leaves_the_rest_of_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    store.begin_batch().unwrap();
    store.put("lab", &path("a"), &meta(&[("v", json!(1))]), &[]).unwrap();
    assert!(store.edit(&Ref::parse("lab/missing").unwrap(), &meta(&[("v", json!(2))])).is_err());
    assert!(store.put("lab", &path("b"), &meta(&[("$bad", json!(1))]), &[]).is_err());
    store.put("lab", &path("c"), &meta(&[("v", json!(3))]), &[]).unwrap();
    store.end_batch(true).unwrap();
    let reopened = open(dir.path());
    assert_eq!(reopened.dataset("lab", &path("a")).unwrap().unwrap().meta["v"], 1);
    assert_eq!(reopened.dataset("lab", &path("c")).unwrap().unwrap().meta["v"], 3);
    assert!(reopened.dataset("lab", &path("missing")).unwrap().is_none());
    assert_catalog_equals_rebuild(&reopened);
}

#[test]
fn nested_batches_join_the_outer_one_and_an_inner_rollback_undoes_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    store.begin_batch().unwrap();
    store.put("lab", &path("outer"), &DatasetEdit::default(), &[]).unwrap();
    store.begin_batch().unwrap();
    store.put("lab", &path("inner"), &DatasetEdit::default(), &[]).unwrap();
    store.end_batch(true).unwrap();
    assert_eq!(segments(dir.path()), 0, "an inner batch publishes nothing");
    store.end_batch(true).unwrap();
    assert!(store.dataset("lab", &path("inner")).unwrap().is_some());

    store.begin_batch().unwrap();
    store.put("lab", &path("x"), &DatasetEdit::default(), &[]).unwrap();
    store.begin_batch().unwrap();
    store.end_batch(false).unwrap();
    let err = store.end_batch(true).unwrap_err();
    assert!(err.to_string().contains("inner batch"), "{err}");
    assert!(store.dataset("lab", &path("x")).unwrap().is_none());
    assert!(store.end_batch(true).is_err(), "no batch is open any more");
}

/// Readers in other threads see the store as it was before the batch (they do not wait for it); writers
/// wait for it to end, and then see all of it.
#[test]
fn other_threads_see_nothing_of_a_batch_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(Store::init_with(dir.path(), false).unwrap());
    store.put("lab", &path("seed"), &DatasetEdit::default(), &[]).unwrap();
    store.begin_batch().unwrap();
    for i in 0..50 {
        store.put("lab", &path(&format!("b/{i}")), &meta(&[("i", json!(i))]), &[]).unwrap();
    }
    let reader = {
        let store = store.clone();
        std::thread::spawn(move || {
            let mut n = 0;
            store
                .descendants("lab", Some(&path("b")), |_| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        })
    };
    let writer = {
        let store = store.clone();
        std::thread::spawn(move || store.put("lab", &path("after"), &DatasetEdit::default(), &[]).unwrap())
    };
    std::thread::sleep(std::time::Duration::from_millis(50));
    store.end_batch(true).unwrap();
    assert_eq!(reader.join().unwrap(), 0, "a reader saw part of a batch before it ended");
    writer.join().unwrap();
    assert!(store.dataset("lab", &path("after")).unwrap().is_some());
    assert_catalog_equals_rebuild(&store);
}

#[test]
fn another_process_sees_nothing_of_a_batch_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    store.put("lab", &path("a"), &meta(&[("v", json!(0))]), &[]).unwrap();
    store.begin_batch().unwrap();
    store.edit(&Ref::parse("lab/a").unwrap(), &meta(&[("v", json!(1))])).unwrap();
    // A second handle has its own catalog connection, like another process: it reads the catalog as it was.
    let other = open(dir.path());
    assert_eq!(other.dataset("lab", &path("a")).unwrap().unwrap().meta["v"], 0);
    store.end_batch(true).unwrap();
    other.refresh().unwrap();
    assert_eq!(other.dataset("lab", &path("a")).unwrap().unwrap().meta["v"], 1);
}
