//! The Rust API for data objects: tables from record-batch streams, arrays from and to `ndarray`, slices
//! that touch only their chunks, and readers that never see half of a replaced object.

use std::sync::Arc;

use arrow::array::{Array, Float64Array, Int64Array, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatchIterator;
use ndarray::{ArrayD, IxDyn};
use num_complex::Complex;
use trove::model::{DatasetPath, Ref};
use trove::{Compression, Slice, Store, TableSelect, WriteOptions};

fn store() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::init_with(dir.path(), false).unwrap();
    (dir, store)
}

fn path(p: &str) -> DatasetPath {
    DatasetPath::parse(p).unwrap()
}

fn r(s: &str) -> Ref {
    Ref::parse(s).unwrap()
}

/// `batches` batches of `rows` rows each: id, value, label.
fn table(batches: usize, rows: usize) -> RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, ArrowError>>> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("value", DataType::Float64, true),
        Field::new("label", DataType::Utf8, false),
    ]));
    let mut out = Vec::new();
    for b in 0..batches {
        let ids: Vec<i64> = (0..rows).map(|i| (b * rows + i) as i64).collect();
        let values: Vec<Option<f64>> = ids.iter().map(|&i| (i % 7 != 0).then_some(i as f64 / 2.0)).collect();
        let labels: Vec<String> = ids.iter().map(|i| format!("row-{i}")).collect();
        out.push(Ok(RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from(ids)),
                Arc::new(Float64Array::from(values)),
                Arc::new(StringArray::from(labels)),
            ],
        )
        .unwrap()));
    }
    RecordBatchIterator::new(out.into_iter(), schema)
}

#[test]
fn tables_stream_in_and_come_back_by_columns_and_row_ranges() {
    let (_dir, store) = store();
    let mut input = table(30, 10_000);
    let outcome = store.put_table("lab", &path("runs/1"), "t.parquet", &mut input).unwrap();
    let summary = outcome.objects[0].1.summary.clone().unwrap();
    assert_eq!(summary["rows"], 300_000);

    let select = TableSelect { columns: Some(vec!["label".into(), "id".into()]), rows: Some(123_456..123_460) };
    let batches: Vec<RecordBatch> =
        store.read_table(&r("lab/runs/1:t.parquet"), &select).unwrap().map(|b| b.unwrap()).collect();
    let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
    assert_eq!(rows, 4);
    let first = &batches[0];
    assert_eq!(first.schema().fields().iter().map(|f| f.name().as_str()).collect::<Vec<_>>(), ["label", "id"]);
    let ids = first.column(1).as_any().downcast_ref::<Int64Array>().unwrap();
    assert_eq!(ids.value(0), 123_456);

    let all: usize = store
        .read_table(&r("lab/runs/1:t.parquet"), &TableSelect::default())
        .unwrap()
        .map(|b| b.unwrap().num_rows())
        .sum();
    assert_eq!(all, 300_000);
    let nulls: usize = store
        .read_table(&r("lab/runs/1:t.parquet"), &TableSelect { columns: Some(vec!["value".into()]), rows: None })
        .unwrap()
        .map(|b| b.unwrap().column(0).null_count())
        .sum();
    assert_eq!(nulls, 300_000_usize.div_ceil(7));
    let err =
        store.read_table(&r("lab/runs/1:t.parquet"), &TableSelect { columns: Some(vec!["nope".into()]), rows: None });
    assert!(err.err().unwrap().to_string().contains("nope"));
}

#[test]
fn arrays_of_every_common_type_round_trip_as_npy_and_zarr() {
    let (_dir, store) = store();
    let p = path("a");
    macro_rules! round_trip {
        ($t:ty, $make:expr) => {{
            let array: ArrayD<$t> = ArrayD::from_shape_fn(IxDyn(&[6, 5]), |ix| $make(ix[0] * 5 + ix[1]));
            for name in ["x.npy", "x.zarr"] {
                store.put_array("lab", &p, name, &array, &WriteOptions::default()).unwrap();
                let back: ArrayD<$t> = store.read_array(&r(&format!("lab/a:{name}")), None).unwrap();
                assert_eq!(back, array, "{} as {name}", stringify!($t));
            }
        }};
    }
    round_trip!(bool, |i: usize| i.is_multiple_of(3));
    round_trip!(i8, |i: usize| i as i8 - 10);
    round_trip!(i16, |i: usize| i as i16 * -300);
    round_trip!(i32, |i: usize| i as i32 * 70_000);
    round_trip!(i64, |i: usize| i as i64 * -(1 << 40));
    round_trip!(u8, |i: usize| i as u8);
    round_trip!(u16, |i: usize| i as u16 * 1000);
    round_trip!(u32, |i: usize| i as u32 * 100_000);
    round_trip!(u64, |i: usize| i as u64 * (1 << 50));
    round_trip!(f32, |i: usize| i as f32 / 3.0);
    round_trip!(f64, |i: usize| i as f64 / 7.0);
    round_trip!(Complex<f32>, |i: usize| Complex::new(i as f32, -(i as f32)));
    round_trip!(Complex<f64>, |i: usize| Complex::new(i as f64 / 2.0, 1.0));

    let wrong = store.read_array::<i32>(&r("lab/a:x.zarr"), None).unwrap_err().to_string();
    assert!(wrong.contains("complex128") && wrong.contains("int32"), "{wrong}");
    let bad_name = store.put_array("lab", &p, "x.bin", &ArrayD::<f64>::zeros(IxDyn(&[2])), &WriteOptions::default());
    assert!(bad_name.unwrap_err().to_string().contains(".zarr"));
}

#[test]
fn a_slice_reads_only_the_chunks_it_needs() {
    let (dir, store) = store();
    let array: ArrayD<f64> = ArrayD::from_shape_fn(IxDyn(&[100, 100]), |ix| (ix[0] * 1000 + ix[1]) as f64);
    let options = WriteOptions { chunks: Some(vec![10, 10]), compression: Compression::Zstd };
    let outcome = store.put_array("lab", &path("z"), "f.zarr", &array, &options).unwrap();
    assert_eq!(outcome.objects[0].1.files.as_ref().unwrap().len(), 101, "100 chunks and zarr.json");
    // Remove every chunk but the ones of rows 20..30 × columns 0..20: a slice inside them still reads.
    let folder = dir.path().join("lab/z/f.zarr");
    for entry in trove_storage_walk(&folder) {
        let rel = entry.strip_prefix(&folder).unwrap().to_string_lossy().replace('\\', "/");
        if rel != "zarr.json" && !rel.starts_with("c/2/0") && !rel.starts_with("c/2/1") {
            std::fs::remove_file(&entry).unwrap();
        }
    }
    let slice = Slice::parse("20:30:3, 5:15").unwrap();
    let part: ArrayD<f64> = store.read_array(&r("lab/z:f.zarr"), Some(&slice)).unwrap();
    assert_eq!(part.shape(), &[4, 10]);
    assert_eq!(part[[1, 0]], 23_005.0);
    let row = store.read_array::<f64>(&r("lab/z:f.zarr"), Some(&Slice::parse("25, 0:3").unwrap())).unwrap();
    assert_eq!(row.shape(), &[3]);
    assert_eq!(row[[2]], 25_002.0);
}

fn trove_storage_walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let p = entry.unwrap().path();
        if p.is_dir() { out.extend(trove_storage_walk(&p)) } else { out.push(p) }
    }
    out
}

/// One thread replaces a Zarr array over and over while another reads it whole: every read is one
/// version, all of one value, never a mixture.
#[test]
fn readers_never_see_half_of_a_replaced_folder_object() {
    let (dir, store) = store();
    let options = WriteOptions { chunks: Some(vec![8, 8]), compression: Compression::None };
    let make = |v: f64| ArrayD::<f64>::from_elem(IxDyn(&[64, 64]), v);
    store.put_array("lab", &path("z"), "f.zarr", &make(0.0), &options).unwrap();
    let reader = Store::open(dir.path()).unwrap();
    std::thread::scope(|scope| {
        let writer = scope.spawn(|| {
            for v in 1..=15 {
                store.put_array("lab", &path("z"), "f.zarr", &make(v as f64), &options).unwrap();
            }
        });
        let mut reads = 0;
        while !writer.is_finished() || reads < 5 {
            let a: ArrayD<f64> = reader.read_array(&r("lab/z:f.zarr"), None).unwrap();
            let first = a[[0, 0]];
            assert!(a.iter().all(|&x| x == first), "a read mixed two versions");
            reads += 1;
        }
        writer.join().unwrap();
    });
}
