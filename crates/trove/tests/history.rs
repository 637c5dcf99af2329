//! `Store::history` (`trove log`): each change of a dataset in stamp order and in plain words, the history of
//! a deleted dataset, last-writer-wins losers told apart from changes merely superseded, and the merged state
//! a checkpoint leaves after compaction.

use std::sync::Arc;

use serde_json::json;
use trove::model::{DatasetChange, DatasetPath, Record, Ref, SegmentHeader, SegmentKind};
use trove::{CHECKPOINT_NOTE, Change, DatasetEdit, FileImport, HistoryEntry, Store};
use trove_storage::log::LOG_VERSION;
use trove_storage::{Log, Storage};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(&dir.path().join("store"), false).unwrap();
    (dir, store)
}

fn r(s: &str) -> Ref {
    Ref::parse(s).unwrap()
}

fn path(p: &str) -> DatasetPath {
    DatasetPath::parse(p).unwrap()
}

/// Each entry's op and change words.
fn words(entries: &[HistoryEntry]) -> Vec<(String, Vec<String>)> {
    entries.iter().map(|e| (e.op.clone(), e.changes.iter().map(|c| c.words.clone()).collect())).collect()
}

fn file(dir: &tempfile::TempDir, name: &str, content: &[u8]) -> FileImport {
    let p = dir.path().join(name);
    std::fs::write(&p, content).unwrap();
    FileImport::new(p).unwrap()
}

#[test]
fn every_change_is_listed_in_order_in_plain_words() {
    let (dir, store) = store();
    let first = file(&dir, "notes.txt", b"first version\n");
    let edit = DatasetEdit {
        kind: Some("measurement".into()),
        meta: vec![("temperature".into(), json!(300))],
        tags_add: vec!["raw".into()],
        ..Default::default()
    };
    store.put("lab", &path("r1"), &edit, &[first]).unwrap();
    store
        .edit(&r("lab/r1"), &DatasetEdit { meta: vec![("temperature".into(), json!(305))], ..Default::default() })
        .unwrap();
    store
        .edit(
            &r("lab/r1"),
            &DatasetEdit { tags_add: vec!["calibrated".into()], tags_rm: vec!["raw".into()], ..Default::default() },
        )
        .unwrap();
    store.edit(&r("lab/r1"), &DatasetEdit { unset: vec!["temperature".into()], ..Default::default() }).unwrap();
    let second = file(&dir, "notes.txt", b"second version\n");
    store.put("lab", &path("r1"), &DatasetEdit::default(), &[second]).unwrap();
    let other = file(&dir, "other.txt", b"x");
    store.put("lab", &path("r1"), &DatasetEdit::default(), &[other]).unwrap();
    store.remove(&r("lab/r1:other.txt"), false).unwrap();

    let entries = store.history(&r("lab/r1")).unwrap();
    let checksum = |content: &[u8]| format!("blake3:{}", blake3::hash(content).to_hex());
    assert_eq!(
        words(&entries),
        [
            (
                "put".to_string(),
                vec![
                    "created at lab/r1".to_string(),
                    "kind = measurement".into(),
                    "set temperature = 300".into(),
                    "tag +raw".into(),
                    format!("object notes.txt put (text, 14 bytes, {})", checksum(b"first version\n")),
                ]
            ),
            ("edit".into(), vec!["set temperature = 305".into()]),
            ("edit".into(), vec!["tag +calibrated".into(), "tag -raw".into()]),
            ("edit".into(), vec!["unset temperature".into()]),
            ("put".into(), vec![format!("object notes.txt put (text, 15 bytes, {})", checksum(b"second version\n"))]),
            ("put".into(), vec![format!("object other.txt put (text, 1 bytes, {})", checksum(b"x"))]),
            ("rm".into(), vec!["object other.txt removed".into()]),
        ]
    );
    // Stamp order, one writer (this process), its identity on every entry.
    assert!(entries.windows(2).all(|w| (w[0].ts, w[0].seq) < (w[1].ts, w[1].seq)));
    let me = store.writer();
    assert!(entries.iter().all(|e| e.writer == me.id && e.host == me.host && e.pid == me.pid && !e.checkpoint));
    assert!(entries.iter().all(|e| e.segment.ends_with(".commit.jsonl") && e.time.ends_with('Z')));
    // Replaced values were superseded (by this same writer): nothing lost.
    let first_set = &entries[0].changes[2];
    assert!(first_set.superseded && first_set.lost_to.is_none());
    assert!(entries[1].changes[0].superseded, "305 stayed until the unset, which superseded it");
    assert!(!entries[3].changes[0].superseded, "the unset is in effect");
    assert_eq!(entries[0].changes[2].change, Change::Set { key: "temperature".into(), value: json!(300) });
    // The JSON form names the change and carries its fields.
    let value = serde_json::to_value(&entries[0]).unwrap();
    assert_eq!(value["op"], "put");
    assert_eq!(
        value["changes"][2],
        json!({"change": "set", "key": "temperature", "value": 300, "words": "set temperature = 300", "superseded": true})
    );
    // One object's history.
    let notes = store.history(&r("lab/r1:notes.txt")).unwrap();
    assert_eq!(notes.len(), 2);
    assert!(notes.iter().all(|e| e.changes.len() == 1 && e.op == "put"));
    assert!(store.history(&r("lab/r1:never.txt")).is_err());
}

#[test]
fn a_deleted_dataset_still_has_its_history() {
    let (_dir, store) = store();
    let edit = DatasetEdit { meta: vec![("t".into(), json!(1))], ..Default::default() };
    store.put("lab", &path("gone"), &edit, &[]).unwrap();
    store.remove(&r("lab/gone"), false).unwrap();
    let entries = store.history(&r("lab/gone")).unwrap();
    assert_eq!(
        words(&entries),
        [
            ("put".to_string(), vec!["created at lab/gone".to_string(), "set t = 1".into()]),
            ("rm".into(), vec!["deleted".into()])
        ]
    );
    // A new dataset at the same path: its own history, not the deleted one's.
    store.put("lab", &path("gone"), &DatasetEdit::default(), &[]).unwrap();
    let entries = store.history(&r("lab/gone")).unwrap();
    assert_eq!(words(&entries), [("put".to_string(), vec!["created at lab/gone".to_string()])]);
    // Neither live nor deleted there, or not a dataset at all: clear errors.
    let e = store.history(&r("lab/never")).unwrap_err().to_string();
    assert!(e.contains("lab/never") && e.contains("not found"), "{e}");
    let e = store.history(&r("lab")).unwrap_err().to_string();
    assert!(e.contains("names a project"), "{e}");
}

/// A commit written by hand, as another writer (another machine) would: one change setting `k`.
fn commit_by(log: &Log, writer: &str, ts: i64, seen: i64, change: DatasetChange) {
    let header = SegmentHeader {
        trove: SegmentKind::Commit,
        version: LOG_VERSION,
        ts,
        writer: writer.into(),
        host: format!("node-{writer}"),
        pid: 7,
        user: "someone".into(),
        op: "edit".into(),
        records: 1,
        covers: vec![],
        moves: vec![],
        seen,
    };
    log.append(&header, &[Record::Dataset(change)]).unwrap();
}

/// Two writers set `k` on one dataset: A at ts 100 (seen 50), B at ts 200 (seen `b_seen`).
fn two_writers(b_seen: i64) -> (tempfile::TempDir, Store, Vec<HistoryEntry>) {
    let (dir, store) = store();
    store.put("lab", &path("r1"), &DatasetEdit::default(), &[]).unwrap();
    let id = store.dataset("lab", &path("r1")).unwrap().unwrap().id;
    let log = Log::new(Arc::new(Storage::local(store.root(), false).unwrap()));
    let set = |v: i64| DatasetChange { id, meta: json!({"k": v}).as_object().unwrap().clone(), ..Default::default() };
    commit_by(&log, "aaaaaaaaaaaa", 100, 50, set(1));
    commit_by(&log, "bbbbbbbbbbbb", 200, b_seen, set(2));
    let entries = store.history(&r("lab/r1")).unwrap();
    (dir, store, entries)
}

#[test]
fn a_concurrent_change_that_lost_is_marked_with_the_winner() {
    let (_dir, store, entries) = two_writers(50);
    // Last writer wins: B's value is the dataset's.
    assert_eq!(store.dataset("lab", &path("r1")).unwrap().unwrap().meta["k"], 2);
    let a = entries.iter().find(|e| e.writer == "aaaaaaaaaaaa").unwrap();
    let b = entries.iter().find(|e| e.writer == "bbbbbbbbbbbb").unwrap();
    assert_eq!(a.changes[0].words, "set k = 1");
    let lost = a.changes[0].lost_to.as_ref().expect("A's change lost to B");
    assert_eq!((lost.writer.as_str(), lost.host.as_str(), lost.ts), ("bbbbbbbbbbbb", "node-bbbbbbbbbbbb", 200));
    assert_eq!(lost.time, trove::model::time::rfc3339(200));
    assert!(!a.changes[0].superseded);
    assert!(b.changes[0].lost_to.is_none() && !b.changes[0].superseded, "B's change is in effect");
    assert_eq!(a.who(), "someone@node-aaaaaaaaaaaa pid 7, writer aaaaaaaaaaaa");
    let value = serde_json::to_value(a).unwrap();
    assert_eq!(value["changes"][0]["lost_to"]["writer"], "bbbbbbbbbbbb");
}

#[test]
fn a_change_the_winner_had_seen_was_merely_superseded() {
    let (_dir, store, entries) = two_writers(150);
    assert_eq!(store.dataset("lab", &path("r1")).unwrap().unwrap().meta["k"], 2);
    let a = entries.iter().find(|e| e.writer == "aaaaaaaaaaaa").unwrap();
    assert!(a.changes[0].lost_to.is_none());
    assert!(a.changes[0].superseded);
    let value = serde_json::to_value(a).unwrap();
    assert_eq!(value["changes"][0]["superseded"], true);
    assert!(value["changes"][0].get("lost_to").is_none());
}

#[test]
fn after_compaction_the_merged_state_stands_for_earlier_history() {
    let (_dir, store) = store();
    let edit = DatasetEdit {
        meta: vec![("temperature".into(), json!(300))],
        tags_add: vec!["raw".into()],
        ..Default::default()
    };
    store.put("lab", &path("r1"), &edit, &[]).unwrap();
    store
        .edit(&r("lab/r1"), &DatasetEdit { meta: vec![("temperature".into(), json!(305))], ..Default::default() })
        .unwrap();
    store.edit(&r("lab/r1"), &DatasetEdit { tags_rm: vec!["raw".into()], ..Default::default() }).unwrap();
    let report = store.compact(true).unwrap();
    assert!(report.checkpoint.is_some());
    store.edit(&r("lab/r1"), &DatasetEdit { meta: vec![("pressure".into(), json!(2))], ..Default::default() }).unwrap();

    let entries = store.history(&r("lab/r1")).unwrap();
    assert_eq!(entries.len(), 2, "{:#?}", words(&entries));
    let checkpoint = &entries[0];
    assert!(checkpoint.checkpoint);
    assert_eq!(checkpoint.op, "compact");
    assert_eq!(checkpoint.note.as_deref(), Some(CHECKPOINT_NOTE));
    assert!(checkpoint.segment.ends_with(".checkpoint.jsonl"));
    let lines: Vec<&str> = checkpoint.changes.iter().map(|c| c.words.as_str()).collect();
    assert_eq!(lines, ["at lab/r1", "set temperature = 305", "tag -raw"]);
    assert_eq!(words(&entries[1..]), [("edit".to_string(), vec!["set pressure = 2".to_string()])]);
}
