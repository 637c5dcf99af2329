//! A long-lived library handle reading objects that other writers replace.

use trove::model::{DatasetPath, Ref};
use trove::{DatasetEdit, FileImport, Store};

#[test]
fn a_stale_handle_exports_the_replaced_object_instead_of_failing() {
    let dir = tempfile::tempdir().unwrap();
    let inputs = tempfile::tempdir().unwrap();
    let v1 = inputs.path().join("data.txt");
    std::fs::write(&v1, b"first").unwrap();
    let reader = Store::init_with(dir.path(), false).unwrap();
    let path = DatasetPath::parse("d").unwrap();
    reader.put("p", &path, &DatasetEdit::default(), &[FileImport::new(&v1).unwrap()]).unwrap();

    // Another handle (as another process would) replaces the object; the reader's catalog has not seen it.
    let writer = Store::open(dir.path()).unwrap();
    std::fs::write(&v1, b"second version").unwrap();
    writer.put("p", &path, &DatasetEdit::default(), &[FileImport::new(&v1).unwrap()]).unwrap();

    let out = inputs.path().join("out.txt");
    let n = reader.export_object(&Ref::parse("p/d:data.txt").unwrap(), &out).unwrap();
    assert_eq!(n, 14);
    assert_eq!(std::fs::read(&out).unwrap(), b"second version");

    // Real damage is still reported, and leaves no output behind.
    std::fs::write(dir.path().join("p/d/data.txt"), b"second versioN").unwrap();
    let bad = inputs.path().join("bad.txt");
    let e = reader.export_object(&Ref::parse("p/d:data.txt").unwrap(), &bad).unwrap_err();
    assert!(matches!(e, trove::Error::Damaged { .. }), "{e}");
    assert!(!bad.exists());
}

/// A long streamed `find` in one thread and writes in another run at once: reads have connections of their
/// own, and each read sees one snapshot (the find lists exactly the datasets there were when it began).
#[test]
fn a_long_find_and_writes_run_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};

    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::init_with(dir.path(), false).unwrap());
    for i in 0..50 {
        let edit = DatasetEdit { meta: vec![("i".into(), serde_json::json!(i))], ..Default::default() };
        store.put("p", &DatasetPath::parse(&format!("before/{i}")).unwrap(), &edit, &[]).unwrap();
    }
    let finding = Arc::new(AtomicBool::new(false));
    let writes_done = Arc::new(AtomicBool::new(false));
    let reader = {
        let (store, finding, writes_done) = (store.clone(), finding.clone(), writes_done.clone());
        std::thread::spawn(move || {
            let mut seen = 0;
            let mut overlapped = false;
            store
                .find(&trove::Query::new(trove::model::filter::Filter::True), |_| {
                    finding.store(true, Ordering::SeqCst);
                    seen += 1;
                    // Hold the find open until the writer is done (or long enough to show it is blocked).
                    for _ in 0..200 {
                        if writes_done.load(Ordering::SeqCst) {
                            overlapped = true;
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(5));
                    }
                    Ok(true)
                })
                .unwrap();
            (seen, overlapped)
        })
    };
    while !finding.load(Ordering::SeqCst) {
        std::thread::yield_now();
    }
    for i in 0..5 {
        store.put("p", &DatasetPath::parse(&format!("during/{i}")).unwrap(), &DatasetEdit::default(), &[]).unwrap();
    }
    writes_done.store(true, Ordering::SeqCst);
    let (seen, overlapped) = reader.join().unwrap();
    assert!(overlapped, "the writes waited for the find to end");
    assert_eq!(seen, 50, "the find saw writes made after it began");
    assert_eq!(store.count(&trove::Query::new(trove::model::filter::Filter::True)).unwrap(), 55);
}
