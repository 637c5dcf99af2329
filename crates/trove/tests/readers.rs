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
