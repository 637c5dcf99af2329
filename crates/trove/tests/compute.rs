//! `Store::get_or_compute` from Rust: exact and loose matches, single flight between threads, failures that
//! leave nothing, log-only processes, inputs named by content, and lineage trees.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use arrow::array::{Float64Array, RecordBatch};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatchIterator;
use ndarray::{ArrayD, IxDyn};
use serde_json::json;
use trove::model::lineage::{Input, Lineage};
use trove::model::{DatasetPath, Ref};
use trove::{
    ComputeOptions, ComputeOutput, DatasetEdit, Error, FileImport, Loose, OpenOptions, Outcome, Presence, Query, Store,
    TableSelect, WriteOptions,
};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    (dir, store)
}

fn write_text(out: &mut ComputeOutput, name: &str, text: &str) -> Result<(), std::io::Error> {
    std::fs::write(out.file(name).map_err(std::io::Error::other)?, text)
}

fn nothing(_: &mut ComputeOutput) -> Result<(), std::io::Error> {
    panic!("computed although the result exists")
}

#[test]
fn computes_once_and_loads_tables_and_arrays_back() {
    let (_dir, store) = store();
    let lineage = Lineage::new("spectrum", "1").with_config("bins", json!(3));
    let computed = store
        .get_or_compute(&lineage, |out| -> trove::Result<()> {
            let schema = Arc::new(Schema::new(vec![Field::new("power", DataType::Float64, false)]));
            let column = Arc::new(Float64Array::from(vec![0.5, 1.5, 2.5]));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![column]).map_err(|e| Error::Invalid(e.to_string()))?;
            out.put_table("spectrum.parquet", &mut RecordBatchIterator::new(vec![Ok(batch)], schema))?;
            out.put_array("grid.npy", &ArrayD::<f64>::zeros(IxDyn(&[2, 3])), &WriteOptions::default())?;
            out.set_meta("quality.score", json!(0.9));
            out.add_tag("fresh");
            Ok(())
        })
        .unwrap();
    assert_eq!(computed.outcome, Outcome::Computed);
    assert_eq!(computed.reference.to_string(), format!("derived/spectrum/{}", &lineage.key()[..16]));
    assert_eq!(computed.key, lineage.key());
    let found = store.get_or_compute(&lineage, nothing).unwrap();
    assert_eq!((&found.outcome, &found.reference, found.id), (&Outcome::Found, &computed.reference, computed.id));
    let rows: usize = store
        .read_table(&found.object("spectrum.parquet"), &TableSelect::default())
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(rows, 3);
    assert_eq!(store.read_array::<f64>(&found.object("grid.npy"), None).unwrap().shape(), [2, 3]);
    let state = store.dataset_for(&found.reference).unwrap();
    assert_eq!(state.meta["quality"]["score"], json!(0.9));
    assert!(state.tags.contains("fresh"));
    assert_eq!(state.kind.as_deref(), Some("derived"));
    // The same lineage, config given as 3.0: the same key, found.
    let same = Lineage::new("spectrum", "1").with_config("bins", json!(3.0));
    assert_eq!(store.get_or_compute(&same, nothing).unwrap().outcome, Outcome::Found);
    let named = Query { lineage_name: Some("spectrum".into()), ..Query::default() };
    assert_eq!(store.count(&named).unwrap(), 1);
    assert!(store.check().unwrap().findings.is_empty());
}

#[test]
fn threads_asking_at_once_compute_once() {
    let (_dir, store) = store();
    let store = Arc::new(store);
    let runs = Arc::new(AtomicUsize::new(0));
    let lineage = Lineage::new("slow", "1");
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let (store, runs, lineage) = (store.clone(), runs.clone(), lineage.clone());
            std::thread::spawn(move || {
                store
                    .get_or_compute(&lineage, |out| {
                        runs.fetch_add(1, Ordering::SeqCst);
                        std::thread::sleep(std::time::Duration::from_millis(300));
                        write_text(out, "r.txt", "done")
                    })
                    .unwrap()
            })
        })
        .collect();
    let results: Vec<_> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    assert_eq!(runs.load(Ordering::SeqCst), 1);
    assert!(results.iter().all(|r| r.reference == results[0].reference && r.id == results[0].id));
    assert_eq!(results.iter().filter(|r| r.outcome == Outcome::Computed).count(), 1);
}

#[test]
fn a_failure_stores_nothing_is_recorded_and_the_next_call_computes() {
    let (dir, store) = store();
    let lineage = Lineage::new("flaky", "1");
    let err = store
        .get_or_compute(&lineage, |out| {
            write_text(out, "half.txt", "half")?;
            Err(std::io::Error::other("the detector map is corrupt"))
        })
        .unwrap_err();
    assert!(matches!(err, Error::ComputeFailed { .. }), "{err}");
    assert!(err.to_string().contains("the detector map is corrupt; nothing was stored"), "{err}");
    let key = lineage.key();
    let failure = store.compute_failure(&key).unwrap().unwrap();
    assert!(failure["error"].as_str().unwrap().contains("corrupt"));
    assert!(store.lookup_derived(&lineage, &key, &Loose::default()).unwrap().is_none());
    // Nothing left in staging, nothing for check to report.
    let staging = std::fs::read_dir(dir.path().join(trove::STAGING)).map_or(0, |d| d.count());
    assert_eq!(staging, 0);
    assert!(store.check().unwrap().findings.is_empty());
    // Writing nothing is a failure too.
    let err = store.get_or_compute(&lineage, |_| Ok::<(), std::io::Error>(())).unwrap_err();
    assert!(err.to_string().contains("wrote nothing"), "{err}");
    let ok = store
        .get_or_compute(&lineage, |out| {
            out.set_kind("calibration");
            write_text(out, "whole.txt", "whole")
        })
        .unwrap();
    assert_eq!(ok.outcome, Outcome::Computed);
    assert_eq!(store.dataset_for(&ok.reference).unwrap().kind.as_deref(), Some("calibration"));
    assert!(store.compute_failure(&key).unwrap().is_none());
}

#[test]
fn loose_matches_report_differences_and_exact_keys_are_stored() {
    let (_dir, store) = store();
    let v1 = Lineage::new("fit", "1").with_config("tol", json!(0.1)).with_config("seed", json!(7));
    let first = store.get_or_compute(&v1, |out| write_text(out, "fit.txt", "v1")).unwrap();
    let v2 = Lineage::new("fit", "2").with_config("tol", json!(0.2)).with_config("seed", json!(7));
    let loose = ComputeOptions { loose: Loose { config: vec!["tol".into()], version: true }, ..Default::default() };
    let found = store.get_or_compute_with(&v2, &loose, nothing).unwrap();
    assert_eq!(found.reference, first.reference);
    let Outcome::Loose(differences) = &found.outcome else { panic!("{:?}", found.outcome) };
    let said: Vec<String> = differences.iter().map(ToString::to_string).collect();
    assert_eq!(said, ["version 2 here, 1 there", "config tol = 0.2 here, 0.1 there"]);
    // Only the version allowed: tol differs too, so v2 is computed and stored under its own exact key.
    let version_only = ComputeOptions { loose: Loose { config: vec![], version: true }, ..Default::default() };
    let computed = store.get_or_compute_with(&v2, &version_only, |out| write_text(out, "fit.txt", "v2")).unwrap();
    assert_eq!((computed.outcome, computed.key.as_str()), (Outcome::Computed, v2.key().as_str()));
    // Loose matching prefers an exact match when there is one.
    assert_eq!(store.get_or_compute_with(&v2, &loose, nothing).unwrap().outcome, Outcome::Found);
}

#[test]
fn results_go_where_asked_and_never_over_other_data() {
    let (_dir, store) = store();
    let taken = DatasetPath::parse("results/r1").unwrap();
    store.put("lab", &taken, &DatasetEdit::default(), &[]).unwrap();
    let lineage = Lineage::new("step", "1");
    let at =
        |path: &DatasetPath| ComputeOptions { project: "lab".into(), path: Some(path.clone()), ..Default::default() };
    let err = store.get_or_compute_with(&lineage, &at(&taken), |out| write_text(out, "a.txt", "a")).unwrap_err();
    assert!(err.to_string().contains("lab/results/r1"), "{err}");
    let free = DatasetPath::parse("results/r2").unwrap();
    let done = store.get_or_compute_with(&lineage, &at(&free), |out| write_text(out, "a.txt", "a")).unwrap();
    assert_eq!(done.reference.to_string(), "lab/results/r2");
    // Found wherever it is stored, whatever project is asked for.
    let elsewhere = ComputeOptions { project: "other".into(), ..Default::default() };
    assert_eq!(store.get_or_compute_with(&lineage, &elsewhere, nothing).unwrap().reference, done.reference);
}

#[test]
fn inputs_are_named_by_content_and_their_presence_is_tracked() {
    let (dir, store) = store();
    let raw = dir.path().join("..").join(format!("raw-{}.txt", std::process::id()));
    std::fs::write(&raw, "1 2 3").unwrap();
    let raw_path = DatasetPath::parse("raw").unwrap();
    store.put("run1", &raw_path, &DatasetEdit::default(), &[FileImport::new(&raw).unwrap()]).unwrap();
    std::fs::remove_file(&raw).unwrap();
    let object_ref = Ref::parse(&format!("run1/raw:raw-{}.txt", std::process::id())).unwrap();
    let object_input = store.lineage_input(&object_ref).unwrap();
    assert!(matches!(&object_input, Input::Object { checksum, .. } if checksum.starts_with("blake3:")));
    let dataset_input = store.lineage_input(&Ref::parse("run1/raw").unwrap()).unwrap();
    assert!(matches!(&dataset_input, Input::Dataset { objects, .. } if objects.len() == 1));

    let peaks = Lineage::new("peaks", "1").with_input(object_input);
    let p = store.get_or_compute(&peaks, |out| write_text(out, "peaks.txt", "1\n2\n3")).unwrap();
    // A derived input enters by its lineage.
    let derived_input = store.lineage_input(&p.reference).unwrap();
    assert!(matches!(&derived_input, Input::Derived { lineage, .. } if lineage.key() == peaks.key()));
    let hits = Lineage::new("hits", "1").with_input(derived_input);
    let h = store.get_or_compute(&hits, |out| write_text(out, "hits.txt", "3")).unwrap();

    let tree = store.lineage_tree(&h.reference).unwrap();
    assert_eq!(tree.key, hits.key());
    assert_eq!(tree.inputs[0].presence, Presence::Present { at: p.reference.to_string() });
    let inner = tree.inputs[0].tree.as_ref().unwrap();
    assert_eq!(inner.inputs[0].presence, Presence::Present { at: object_ref.to_string() });
    // Other bytes under the same name: the content used is gone from where it was found.
    let other = dir.path().join("..").join(format!("other-{}.txt", std::process::id()));
    std::fs::write(&other, "4 5 6").unwrap();
    let name = object_ref.object.clone().unwrap();
    store.put("run1", &raw_path, &DatasetEdit::default(), &[FileImport::new(&other).unwrap().named(name)]).unwrap();
    std::fs::remove_file(&other).unwrap();
    let tree = store.lineage_tree(&h.reference).unwrap();
    let inner = tree.inputs[0].tree.as_ref().unwrap();
    assert_eq!(inner.inputs[0].presence, Presence::Changed { at: object_ref.to_string() });
    // The raw data is removed: missing. The derived input is removed: missing too.
    store.remove(&Ref::parse("run1/raw").unwrap(), false).unwrap();
    store.remove(&p.reference, false).unwrap();
    let tree = store.lineage_tree(&h.reference).unwrap();
    assert_eq!(tree.inputs[0].presence, Presence::Missing);
    assert_eq!(tree.inputs[0].tree.as_ref().unwrap().inputs[0].presence, Presence::Missing);
}

#[test]
fn a_log_only_process_finds_results_not_yet_in_the_catalog() {
    let (dir, store) = store();
    drop(store);
    let log_only = OpenOptions { log_only: true, durable: Some(false), ..Default::default() };
    let a = Store::open_with(dir.path(), &log_only).unwrap();
    let lineage = Lineage::new("job", "1").with_config("n", json!(1));
    let made = a.get_or_compute(&lineage, |out| write_text(out, "out.txt", "x")).unwrap();
    assert_eq!(made.outcome, Outcome::Computed);
    // Another log-only process: the catalog on disk does not list the result yet, the log does.
    let b = Store::open_with(dir.path(), &log_only).unwrap();
    assert!(b.catalog_lag().unwrap() > 0);
    let found = b.get_or_compute(&lineage, nothing).unwrap();
    assert_eq!((found.outcome, found.reference), (Outcome::Found, made.reference.clone()));
    // Once synced, the catalog lists it and a normal process finds it there.
    drop((a, b));
    let synced = Store::open(dir.path()).unwrap();
    assert_eq!(synced.catalog_lag().unwrap(), 0);
    assert_eq!(synced.get_or_compute(&lineage, nothing).unwrap().reference, made.reference);
}

#[test]
fn a_code_folder_is_hashed_by_its_files() {
    let dir = tempfile::tempdir().unwrap();
    let code = dir.path().join("pkg");
    std::fs::create_dir_all(code.join("sub")).unwrap();
    std::fs::write(code.join("main.py"), "print(1)").unwrap();
    std::fs::write(code.join("sub/util.py"), "x = 1").unwrap();
    let before = trove::code_checksum(&code).unwrap();
    assert!(before.starts_with("blake3:"));
    // Renaming the folder is not a change; editing a file inside it, or adding one, is.
    let renamed = dir.path().join("pkg2");
    std::fs::rename(&code, &renamed).unwrap();
    assert_eq!(trove::code_checksum(&renamed).unwrap(), before);
    std::fs::write(renamed.join("sub/util.py"), "x = 2").unwrap();
    let edited = trove::code_checksum(&renamed).unwrap();
    assert_ne!(edited, before);
    std::fs::write(renamed.join("new.py"), "").unwrap();
    assert_ne!(trove::code_checksum(&renamed).unwrap(), edited);
    let single = trove::code_checksum(&renamed.join("main.py")).unwrap();
    assert_eq!(single, format!("blake3:{}", blake3::hash(b"print(1)").to_hex()));
    let err = trove::code_checksum(&dir.path().join("missing.py")).unwrap_err();
    assert!(err.to_string().contains("missing.py"), "{err}");
}
