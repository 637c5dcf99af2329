//! Reads of part of an object in a bucket fetch only the bytes they need (scripts/test starts the S3 server):
//! a Parquet column reads the footer and that column's chunks, a 1% Zarr slice reads the metadata and the
//! chunks it touches. What comes back equals the same read from a folder store. The figures are printed
//! (`docs/performance.md` quotes them); they are byte counts, not times, so the assertions are exact.

use std::sync::Arc;

use arrow::array::{Float64Array, Int64Array, RecordBatch, RecordBatchIterator};
use arrow::datatypes::{DataType, Field, Schema};
use ndarray::{ArrayD, IxDyn};
use trove::model::{DatasetPath, Ref};
use trove::{Location, OpenOptions, Slice, Store, TableSelect, WriteOptions};

fn table(rows: i64) -> RecordBatchIterator<std::vec::IntoIter<Result<RecordBatch, arrow::error::ArrowError>>> {
    let names = ["t", "a", "b", "c", "d"];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, if *n == "t" { DataType::Int64 } else { DataType::Float64 }, false))
            .collect::<Vec<_>>(),
    ));
    let mut batches = Vec::new();
    for start in (0..rows).step_by(100_000) {
        let ids: Vec<i64> = (start..(start + 100_000).min(rows)).collect();
        let mut columns: Vec<Arc<dyn arrow::array::Array>> = vec![Arc::new(Int64Array::from(ids.clone()))];
        for k in 1..5 {
            // Values that do not compress away, so that each column is a real share of the file.
            let values: Vec<f64> = ids.iter().map(|i| ((i * 7919 + k * 104_729) % 1_000_003) as f64 / 7.0).collect();
            columns.push(Arc::new(Float64Array::from(values)));
        }
        batches.push(Ok(RecordBatch::try_new(schema.clone(), columns).unwrap()));
    }
    RecordBatchIterator::new(batches.into_iter(), schema)
}

#[test]
fn parts_of_objects_in_a_bucket_cost_only_their_bytes() {
    let Some((url, env)) = trove_storage::testing::s3_location() else { return };
    let cache = tempfile::tempdir().unwrap();
    // SAFETY: the only test of this binary, and no other thread runs yet: nothing reads the environment
    // while it changes.
    unsafe {
        for (name, value) in &env {
            std::env::set_var(name, value);
        }
        std::env::set_var("TROVE_CACHE", cache.path());
    }
    let folder = tempfile::tempdir().unwrap();
    let local = Store::init_with(folder.path(), false).unwrap();
    let remote = Store::init_at(&Location::Url(url.clone()), false, "", None).unwrap();
    let path = DatasetPath::parse("runs/ü1").unwrap();
    let field = ArrayD::from_shape_fn(IxDyn(&[1000, 1000]), |ix| (ix[0] * 1000 + ix[1]) as f64 / 3.0);
    let options = WriteOptions { chunks: Some(vec![100, 100]), ..Default::default() };
    for store in [&local, &remote] {
        store.put_table("lab", &path, "t.parquet", &mut table(500_000)).unwrap();
        store.put_array("lab", &path, "field.zarr", &field, &options).unwrap();
    }
    let table_ref = Ref::parse("lab/runs/ü1:t.parquet").unwrap();
    let array_ref = Ref::parse("lab/runs/ü1:field.zarr").unwrap();
    let size = |r: &Ref| remote.object_info(r).unwrap().manifest.size;

    // A fresh handle: nothing fetched yet.
    let reader = Store::open_at(&Location::Url(url.clone()), &OpenOptions::default()).unwrap();
    let base = reader.bytes_fetched();
    let select = TableSelect::default().with_columns(["b"]);
    let column: Vec<RecordBatch> = reader.read_table(&table_ref, &select).unwrap().map(|b| b.unwrap()).collect();
    let expected: Vec<RecordBatch> = local.read_table(&table_ref, &select).unwrap().map(|b| b.unwrap()).collect();
    assert_eq!(column, expected);
    let parquet_fetched = reader.bytes_fetched() - base;
    let parquet_size = size(&table_ref);
    println!("Parquet: one column of five: {parquet_fetched} bytes fetched of {parquet_size}");
    assert!(parquet_fetched * 3 < parquet_size, "{parquet_fetched} of {parquet_size}");

    let base = reader.bytes_fetched();
    let slice = Slice::parse("200:300, 500:600").unwrap();
    let part = reader.read_array::<f64>(&array_ref, Some(&slice)).unwrap();
    assert_eq!(part, local.read_array::<f64>(&array_ref, Some(&slice)).unwrap());
    assert_eq!(part[[0, 0]], (200 * 1000 + 500) as f64 / 3.0);
    let zarr_fetched = reader.bytes_fetched() - base;
    let zarr_size = size(&array_ref);
    println!("Zarr: a 1% slice: {zarr_fetched} bytes fetched of {zarr_size}");
    assert!(zarr_fetched * 20 < zarr_size, "{zarr_fetched} of {zarr_size}");

    // A slice across chunk edges, steps and a dropped axis, as a preview and as an export.
    let odd = Slice::parse("95:305:7, 999").unwrap();
    assert_eq!(
        reader.read_array::<f64>(&array_ref, Some(&odd)).unwrap(),
        local.read_array::<f64>(&array_ref, Some(&odd)).unwrap()
    );
    let mut shown = Vec::new();
    let preview = trove::PreviewOptions { slice: Some(odd), ..Default::default() };
    reader.preview(&array_ref, &preview, &mut shown).unwrap();
    let mut expected = Vec::new();
    local.preview(&array_ref, &preview, &mut expected).unwrap();
    assert_eq!(String::from_utf8(shown).unwrap(), String::from_utf8(expected).unwrap());
    let (mut a, mut b) = (Vec::new(), Vec::new());
    let head =
        trove::PreviewOptions { head: Some(3), columns: Some(vec!["d".into(), "t".into()]), ..Default::default() };
    reader.preview(&table_ref, &head, &mut a).unwrap();
    local.preview(&table_ref, &head, &mut b).unwrap();
    assert_eq!(String::from_utf8(a).unwrap(), String::from_utf8(b).unwrap());
}
