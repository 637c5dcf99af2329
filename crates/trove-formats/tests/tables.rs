//! Table formats end to end: CSV inference and conversion, Parquet partial reads, Arrow IPC, summaries and
//! previews.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchIterator, StringArray,
};
use arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema, TimeUnit, TimestampMicrosecondType};
use arrow::record_batch::RecordBatchReader;
use proptest::prelude::*;
use serde_json::json;
use tempfile::TempDir;
use trove_formats::table::{self, TableSelect};
use trove_formats::{Format, PreviewOptions, WriteOptions};

fn csv() -> &'static dyn Format {
    trove_formats::by_name("csv").unwrap()
}
fn parquet() -> &'static dyn Format {
    trove_formats::by_name("parquet").unwrap()
}
fn arrow_ipc() -> &'static dyn Format {
    trove_formats::by_name("arrow").unwrap()
}

fn write(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, text).unwrap();
    path
}

fn convert(from: &dyn Format, src: &Path, to: &dyn Format, dest: &Path) -> trove_formats::Result<()> {
    trove_formats::convert(from, src, to, dest, &WriteOptions::default())
}

fn read_all(format: &dyn Format, path: &Path, select: &TableSelect) -> (Arc<Schema>, Vec<RecordBatch>) {
    let reader = table::read_table(format, path, select).unwrap();
    let schema = reader.schema();
    let batches = reader.collect::<Result<Vec<_>, _>>().unwrap();
    (schema, batches)
}

fn one_batch(format: &dyn Format, path: &Path, select: &TableSelect) -> RecordBatch {
    let (schema, batches) = read_all(format, path, select);
    arrow::compute::concat_batches(&schema, &batches).unwrap()
}

fn ints(column: &ArrayRef) -> Vec<Option<i64>> {
    column.as_primitive::<Int64Type>().iter().collect()
}

fn preview(format: &dyn Format, path: &Path, options: &PreviewOptions) -> String {
    let mut out = Vec::new();
    format.preview(path, options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

const MIXED: &str = "\
id,x,ok,when,name,day
1,1.5,true,2024-01-01T00:00:00,alpha,2024-01-01
2,,false,2024-01-02 12:30:00,,2024-01-02
,-3e2,TRUE,,\"gamma, with comma\",
4,4,,2024-01-04T06:00:00.250,delta,2024-01-04
";

#[test]
fn csv_to_parquet_infers_types_and_keeps_values() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "mixed.csv", MIXED);
    let dest = dir.path().join("mixed.parquet");
    convert(csv(), &src, parquet(), &dest).unwrap();
    assert_eq!(trove_formats::detect(&dest).unwrap().name(), "parquet");
    assert_eq!(trove_formats::detect(&src).unwrap().name(), "csv");

    let batch = one_batch(parquet(), &dest, &TableSelect::default());
    let types: Vec<DataType> = batch.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        vec![
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
            DataType::Timestamp(TimeUnit::Microsecond, None),
            DataType::Utf8,
            DataType::Date32,
        ]
    );
    assert_eq!(ints(batch.column(0)), vec![Some(1), Some(2), None, Some(4)]);
    let x: Vec<Option<f64>> = batch.column(1).as_primitive::<Float64Type>().iter().collect();
    assert_eq!(x, vec![Some(1.5), None, Some(-300.0), Some(4.0)]);
    let ok: Vec<Option<bool>> = batch.column(2).as_boolean().iter().collect();
    assert_eq!(ok, vec![Some(true), Some(false), Some(true), None]);
    let when: Vec<Option<i64>> = batch.column(3).as_primitive::<TimestampMicrosecondType>().iter().collect();
    let day = 86_400_000_000i64;
    let jan1 = 19_723 * day;
    assert_eq!(when, vec![Some(jan1), Some(jan1 + day + 45_000_000_000), None, Some(jan1 + 3 * day + 21_600_250_000)]);
    let name: Vec<Option<&str>> = batch.column(4).as_string::<i32>().iter().collect();
    assert_eq!(name, vec![Some("alpha"), None, Some("gamma, with comma"), Some("delta")]);
    assert_eq!(batch.column(5).null_count(), 1);
}

#[test]
fn a_late_value_of_another_type_widens_the_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("n,code,t\n");
    for i in 0..200_000 {
        match i {
            150_000 => text.push_str("150000.5,x17,2024-01-01T00:00:00\n"),
            _ => writeln!(text, "{i},{i},2024-01-01").unwrap(),
        }
    }
    let src = write(&dir, "late.csv", &text);
    let dest = dir.path().join("late.parquet");
    convert(csv(), &src, parquet(), &dest).unwrap();
    let batch = one_batch(parquet(), &dest, &TableSelect::default());
    assert_eq!(batch.num_rows(), 200_000);
    let schema = batch.schema();
    assert_eq!(schema.field(0).data_type(), &DataType::Float64);
    assert_eq!(schema.field(1).data_type(), &DataType::Utf8);
    assert_eq!(schema.field(2).data_type(), &DataType::Timestamp(TimeUnit::Microsecond, None));
    let n = batch.column(0).as_primitive::<Float64Type>();
    assert_eq!(n.value(149_999), 149_999.0);
    assert_eq!(n.value(150_000), 150_000.5);
    assert_eq!(n.value(199_999), 199_999.0);
    let code = batch.column(1).as_string::<i32>();
    assert_eq!(code.value(7), "7");
    assert_eq!(code.value(150_000), "x17");
}

#[test]
fn short_rows_are_filled_and_a_long_row_is_an_error_naming_its_physical_line() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "ragged.csv", "a,b\n1,2\n3,4\n5\n7,8\n");
    let dest = dir.path().join("ragged.parquet");
    convert(csv(), &src, parquet(), &dest).unwrap();
    let batch = one_batch(parquet(), &dest, &TableSelect::default());
    assert_eq!(ints(batch.column(1)), [Some(2), Some(4), None, Some(8)]);

    // The third record starts on line 3 but spans two lines (a quoted line break): the long row is on line 5.
    let many = write(&dir, "many.csv", "a,b\n1,2\n\"two\nlines\",4\n3,4,5\n");
    let err = csv().summarise(&many).unwrap_err().to_string();
    assert!(err.starts_with(&format!("{}: line 5 has 3 fields, but the header has 2", many.display())), "{err}");
    let err = convert(csv(), &many, parquet(), &dest).unwrap_err().to_string();
    assert!(err.contains("line 5 has"), "{err}");

    let empty = write(&dir, "empty.csv", "");
    let err = csv().summarise(&empty).unwrap_err().to_string();
    assert!(err.contains("empty file"), "{err}");
}

fn import(src: &Path, csv_options: trove_formats::CsvOptions) -> trove_formats::Result<RecordBatch> {
    let dest = src.with_extension("parquet");
    let read = trove_formats::ReadOptions { csv: csv_options };
    trove_formats::convert_with(csv(), src, &read, parquet(), &dest, &WriteOptions::default())?;
    Ok(one_batch(parquet(), &dest, &TableSelect::default()))
}

fn names_and_types(batch: &RecordBatch) -> Vec<(String, DataType)> {
    batch.schema().fields().iter().map(|f| (f.name().clone(), f.data_type().clone())).collect()
}

#[test]
fn compressed_csv_is_detected_and_read_through_its_decompressor() {
    use std::io::Write as _;
    let dir = tempfile::tempdir().unwrap();
    let text = "station,t,flag\nA1,1.5,NA\n\"B\n2\",2.5,ok\nC3,3.5,ok,extra\n";
    let plain = write(&dir, "obs.csv", &text.replace(",extra", ""));
    let want = import(&plain, Default::default()).unwrap();
    let packed: Vec<(&str, Vec<u8>)> = vec![
        ("gz", {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(text.replace(",extra", "").as_bytes()).unwrap();
            e.finish().unwrap()
        }),
        ("zst", zstd::encode_all(text.replace(",extra", "").as_bytes(), 3).unwrap()),
        ("bz2", {
            let mut e = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
            e.write_all(text.replace(",extra", "").as_bytes()).unwrap();
            e.finish().unwrap()
        }),
    ];
    for (suffix, bytes) in packed {
        let path = dir.path().join(format!("obs.csv.{suffix}"));
        std::fs::write(&path, &bytes).unwrap();
        let (format, _) = trove_formats::detect_with_head(&path).unwrap();
        assert_eq!(format.name(), "csv", "{suffix}");
        assert_eq!(import(&path, Default::default()).unwrap(), want, "{suffix}");
        assert_eq!(csv().summarise(&path).unwrap()["rows"], 3);
        // A truncated file says so, naming it.
        let cut = dir.path().join(format!("cut.csv.{suffix}"));
        std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
        let err = import(&cut, Default::default()).unwrap_err().to_string();
        assert!(err.contains("cut.csv"), "{suffix}: {err}");
    }
    // Errors name physical lines inside compressed files too.
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(text.as_bytes()).unwrap();
    let ragged = dir.path().join("ragged.csv.gz");
    std::fs::write(&ragged, e.finish().unwrap()).unwrap();
    let err = import(&ragged, Default::default()).unwrap_err().to_string();
    assert!(err.contains("line 5 has 4 fields"), "{err}");
}

fn guesses(path: &Path) -> Vec<String> {
    csv().as_table().unwrap().guesses(path, &Default::default()).unwrap().into_iter().map(|n| n.text).collect()
}

#[test]
fn space_aligned_tables_and_files_without_a_header_are_sniffed_and_said() {
    let dir = tempfile::tempdir().unwrap();
    // An instrument log aligned with spaces: one column per field, not one column of whole lines.
    let log =
        write(&dir, "log.txt.csv", "  time    temp   site\n  0.0     21.5   \"north hut\"\n  1.0     21.75  south\n");
    let batch = import(&log, Default::default()).unwrap();
    assert_eq!(
        names_and_types(&batch),
        [
            ("time".to_string(), DataType::Float64),
            ("temp".to_string(), DataType::Float64),
            ("site".to_string(), DataType::Utf8)
        ]
    );
    assert_eq!(batch.column(2).as_string::<i32>().value(0), "north hut");
    assert_eq!(guesses(&log), ["log.txt.csv: its columns are separated by runs of spaces"]);

    // No header line: the first line is data like the rest.
    let bare = write(&dir, "bare.csv", "1,2.5,x\n2,3.5,y\n3,4.5,z\n");
    let batch = import(&bare, Default::default()).unwrap();
    assert_eq!(batch.num_rows(), 3);
    assert_eq!(batch.schema().field(0).name(), "column_0");
    assert_eq!(ints(batch.column(0)), [Some(1), Some(2), Some(3)]);
    assert!(guesses(&bare)[0].contains("no header line"), "{:?}", guesses(&bare));
    // Told, trove believes it.
    let told = import(&bare, trove_formats::CsvOptions { header: Some(true), ..Default::default() }).unwrap();
    assert_eq!(told.schema().field(0).name(), "1");

    // Ordinary headers stay headers, with nothing to say: names over numbers, and text over text.
    for (name, text) in
        [("h1.csv", "id,value\n1,2.5\n2,3\n"), ("h2.csv", "name,city\nann,paris\nbo,rome\n"), ("h3.csv", "a;b\n1;x\n")]
    {
        let path = write(&dir, name, text);
        assert!(guesses(&path).is_empty(), "{name}: {:?}", guesses(&path));
        assert_eq!(import(&path, Default::default()).unwrap().num_rows(), 2.min(text.lines().count() - 1), "{name}");
    }
}

#[test]
fn csv_import_choices_override_what_is_detected() {
    use trove_formats::{ColumnType, CsvOptions};
    let dir = tempfile::tempdir().unwrap();
    // An instrument's export: two preamble lines, `;`-separated, comments between rows, zip codes with
    // leading zeros, "-" for a missing reading and "NA" meaning North America.
    let text = "\
exported by SpectroMax 3.1
2024-05-01
site;zip;reading;region
# calibration run follows
s1;02134;1.5;NA
s2;10001;-;EU
# end
";
    let src = write(&dir, "export.csv", text);
    let options = CsvOptions {
        skip_rows: 2,
        comment: Some(b'#'),
        missing: Some(vec!["-".into()]),
        types: vec![("zip".into(), ColumnType::String)],
        ..Default::default()
    };
    let batch = import(&src, options).unwrap();
    assert_eq!(
        names_and_types(&batch),
        [
            ("site".to_string(), DataType::Utf8),
            ("zip".to_string(), DataType::Utf8),
            ("reading".to_string(), DataType::Float64),
            ("region".to_string(), DataType::Utf8),
        ]
    );
    assert_eq!(batch.num_rows(), 2);
    let zips: Vec<_> = batch.column(1).as_string::<i32>().iter().collect();
    assert_eq!(zips, [Some("02134"), Some("10001")]);
    let regions: Vec<_> = batch.column(3).as_string::<i32>().iter().collect();
    assert_eq!(regions, [Some("NA"), Some("EU")]);
    assert_eq!(batch.column(2).null_count(), 1);

    // No header: columns are numbered from 0, and the first line is data.
    let bare = write(&dir, "bare.csv", "1,2.5\n3,4\n");
    let batch = import(&bare, CsvOptions { header: Some(false), ..Default::default() }).unwrap();
    assert_eq!(
        names_and_types(&batch),
        [("column_0".to_string(), DataType::Int64), ("column_1".to_string(), DataType::Float64)]
    );
    assert_eq!(ints(batch.column(0)), [Some(1), Some(3)]);

    // A delimiter given, and a long row's line counted with the skipped lines.
    let piped = write(&dir, "piped.csv", "junk\na|b\n1|2\n3|4|5\n");
    let err = import(&piped, CsvOptions { skip_rows: 1, delimiter: Some(b'|'), ..Default::default() })
        .unwrap_err()
        .to_string();
    assert!(err.contains("line 4 has 3 fields"), "{err}");

    // A type for a column that is not there names the ones that are; a value that is not of the type
    // chosen is an error, not a silent null.
    let err = import(
        &src,
        CsvOptions { skip_rows: 2, types: vec![("zipcode".into(), ColumnType::Int64)], ..Default::default() },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("no column \"zipcode\"") && err.contains("site, zip, reading, region"), "{err}");
    let err = import(
        &src,
        CsvOptions {
            skip_rows: 2,
            comment: Some(b'#'),
            types: vec![("site".into(), ColumnType::Int64)],
            ..Default::default()
        },
    )
    .unwrap_err()
    .to_string();
    assert!(err.contains("s1"), "{err}");
    assert!("integer".parse::<ColumnType>().unwrap_err().to_string().contains("int64, float64"));
}

#[test]
fn missing_values_as_r_excel_and_pandas_write_them_are_nulls_in_every_column_type() {
    let dir = tempfile::tempdir().unwrap();
    // penguins.csv as R's write.csv leaves it, with Excel's and pandas' spellings of "missing" mixed in.
    let text = "\
species,island,bill_length_mm,body_mass_g,sex,year,measured,seen,note,empty
Adelie,Torgersen,39.1,3750,male,2007,true,2007-11-11,ok,
Adelie,Torgersen,NA,NA,NA,2007,NA,NA,NA,NA
Adelie,Biscoe,#N/A,N/A,NULL,null,#N/A,N/A,,NA
Gentoo,Biscoe,NaN,<NA>,female,2008,false,2008-11-12,None,nan
Gentoo,Dream,46.5,n/a,female,2009,TRUE,2009-11-13,ok,
";
    let src = write(&dir, "penguins.csv", text);
    let dest = dir.path().join("penguins.parquet");
    convert(csv(), &src, parquet(), &dest).unwrap();
    let batch = one_batch(parquet(), &dest, &TableSelect::default());
    let types: Vec<DataType> = batch.schema().fields().iter().map(|f| f.data_type().clone()).collect();
    assert_eq!(
        types,
        [
            DataType::Utf8,
            DataType::Utf8,
            DataType::Float64,
            DataType::Int64,
            DataType::Utf8,
            DataType::Int64,
            DataType::Boolean,
            DataType::Date32,
            DataType::Utf8,
            // No value at all: floats, as pandas reads it.
            DataType::Float64,
        ]
    );
    let nulls: Vec<usize> = batch.columns().iter().map(|c| c.null_count()).collect();
    assert_eq!(nulls, [0, 0, 3, 4, 2, 1, 2, 2, 3, 5]);
    assert_eq!(ints(batch.column(3)), [Some(3750), None, None, None, None]);
    let bills = batch.column(2).as_primitive::<Float64Type>();
    assert_eq!(bills.iter().collect::<Vec<_>>(), [Some(39.1), None, None, None, Some(46.5)]);
    let summary = csv().summarise(&src).unwrap();
    assert_eq!(summary["columns"][2]["type"], "Float64");
    assert_eq!(summary["columns"][2]["nulls"], 3);
}

#[test]
fn csv_reads_selected_columns_and_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("a,b,c\n");
    for i in 0..20_000 {
        writeln!(text, "{i},b{i},{}", i * 2).unwrap();
    }
    let src = write(&dir, "abc.csv", &text);
    let select = TableSelect::default().with_columns(["c", "a"]).with_rows(8_190..8_200);
    let batch = one_batch(csv(), &src, &select);
    assert_eq!(batch.schema().field(0).name(), "c");
    assert_eq!(ints(batch.column(1)), (8_190..8_200).map(Some).collect::<Vec<_>>());
    assert_eq!(ints(batch.column(0)), (8_190..8_200).map(|i| Some(i * 2)).collect::<Vec<_>>());
    let past = one_batch(csv(), &src, &TableSelect::default().with_rows(19_995..30_000));
    assert_eq!(past.num_rows(), 5);

    let tsv = write(&dir, "t.tsv", "x\ty\n1\thello, world\n");
    let batch = one_batch(csv(), &tsv, &TableSelect::default());
    assert_eq!(batch.column(1).as_string::<i32>().value(0), "hello, world");

    // A byte-order mark and Windows line ends, as spreadsheets write them.
    let excel = write(&dir, "excel.csv", "\u{feff}when;n\r\n2024-01-01;1\r\n2024-01-02;2\r\n");
    let batch = one_batch(csv(), &excel, &TableSelect::default().with_columns(["when", "n"]));
    assert_eq!(batch.schema().field(0).data_type(), &DataType::Date32);
    assert_eq!(ints(batch.column(1)), vec![Some(1), Some(2)]);
}

/// A table of 300,000 rows (three row groups): `i` = row, `sq` = row squared or null every 7th, `s` = text.
fn big_parquet() -> &'static Path {
    static FILE: OnceLock<(TempDir, PathBuf)> = OnceLock::new();
    &FILE
        .get_or_init(|| {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("big.parquet");
            let schema = Arc::new(Schema::new(vec![
                Field::new("i", DataType::Int64, false),
                Field::new("sq", DataType::Int64, true),
                Field::new("s", DataType::Utf8, false),
            ]));
            let batches: Vec<_> = (0..300_000i64)
                .step_by(7_000)
                .map(|start| {
                    let rows = start..(start + 7_000).min(300_000);
                    RecordBatch::try_new(
                        schema.clone(),
                        vec![
                            Arc::new(Int64Array::from_iter_values(rows.clone())),
                            Arc::new(Int64Array::from_iter(rows.clone().map(|i| (i % 7 != 0).then_some(i * i)))),
                            Arc::new(StringArray::from_iter_values(rows.map(|i| format!("row {i}")))),
                        ],
                    )
                })
                .collect();
            table::write_parquet(&mut RecordBatchIterator::new(batches, schema), &path).unwrap();
            (dir, path)
        })
        .1
}

#[test]
fn parquet_ranges_cross_row_groups_exactly() {
    let path = big_parquet();
    let summary = parquet().summarise(path).unwrap();
    assert_eq!(summary["row_groups"], 3);
    let edge = 131_072u64;
    let select = TableSelect::default().with_columns(["s", "i"]).with_rows(edge - 3..edge + 3);
    let batch = one_batch(parquet(), path, &select);
    assert_eq!(batch.schema().field(0).name(), "s");
    assert_eq!(ints(batch.column(1)), (edge as i64 - 3..edge as i64 + 3).map(Some).collect::<Vec<_>>());
    assert_eq!(batch.column(0).as_string::<i32>().value(0), format!("row {}", edge - 3));
    // Both edges, the whole middle group.
    let batch = one_batch(parquet(), path, &TableSelect::default().with_rows(edge - 1..2 * edge + 1));
    assert_eq!(batch.num_rows(), edge as usize + 2);
    assert_eq!(ints(batch.column(0))[0], Some(edge as i64 - 1));
    assert_eq!(ints(batch.column(0)).last().copied().flatten(), Some(2 * edge as i64));
    let empty = one_batch(parquet(), path, &TableSelect::default().with_rows(400_000..500_000));
    assert_eq!(empty.num_rows(), 0);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn parquet_reads_exactly_the_rows_and_columns_asked(
        start in 0u64..300_100,
        len in 0u64..20_000,
        columns in proptest::sample::subsequence(vec!["s", "sq", "i"], 1..=3).prop_shuffle(),
    ) {
        let path = big_parquet();
        let select = TableSelect::default().with_columns(columns.clone()).with_rows(start..start + len);
        let batch = one_batch(parquet(), path, &select);
        let end = (start + len).min(300_000);
        let expected_rows = end.saturating_sub(start) as usize;
        prop_assert_eq!(batch.num_rows(), expected_rows);
        let names: Vec<String> = batch.schema().fields().iter().map(|f| f.name().clone()).collect();
        prop_assert_eq!(&names, &columns);
        for (column, name) in batch.columns().iter().zip(&columns) {
            for (k, row) in (start..end).enumerate().step_by(97) {
                let row = row as i64;
                match *name {
                    "i" => prop_assert_eq!(column.as_primitive::<Int64Type>().value(k), row),
                    "sq" => prop_assert_eq!(
                        column.as_primitive::<Int64Type>().is_null(k),
                        row % 7 == 0
                    ),
                    _ => prop_assert_eq!(column.as_string::<i32>().value(k), format!("row {row}")),
                }
            }
        }
    }
}

#[test]
fn unknown_columns_name_the_existing_ones() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "m.csv", MIXED);
    let pq = dir.path().join("m.parquet");
    let ipc = dir.path().join("m.arrow");
    convert(csv(), &src, parquet(), &pq).unwrap();
    convert(csv(), &src, arrow_ipc(), &ipc).unwrap();
    let select = TableSelect::default().with_columns(["id", "nmae"]);
    for (format, path) in [(csv(), &src), (parquet(), &pq), (arrow_ipc(), &ipc)] {
        let err = table::read_table(format, path, &select).err().unwrap().to_string();
        assert_eq!(
            err,
            format!("no column \"nmae\" in {} (its columns: id, x, ok, when, name, day)", path.display()),
            "{}",
            format.name()
        );
    }
}

#[test]
fn summaries_of_each_format() {
    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "m.csv", MIXED);
    let pq = dir.path().join("m.parquet");
    let ipc = dir.path().join("m.arrow");
    convert(csv(), &src, parquet(), &pq).unwrap();
    convert(csv(), &src, arrow_ipc(), &ipc).unwrap();
    let columns = json!([
        {"name": "id", "type": "Int64", "nullable": true, "nulls": 1, "min": 1, "max": 4},
        {"name": "x", "type": "Float64", "nullable": true, "nulls": 1, "min": -300.0, "max": 4.0},
        {"name": "ok", "type": "Boolean", "nullable": true, "nulls": 1, "min": false, "max": true},
        {"name": "when", "type": "Timestamp(µs)", "nullable": true, "nulls": 1,
            "min": "2024-01-01T00:00:00", "max": "2024-01-04T06:00:00.250"},
        {"name": "name", "type": "Utf8", "nullable": true, "nulls": 1, "min": "alpha", "max": "gamma, with comma"},
        {"name": "day", "type": "Date32", "nullable": true, "nulls": 1, "min": "2024-01-01", "max": "2024-01-04"},
    ]);
    // Read from the data, a float column's NaNs are counted; a Parquet footer does not say.
    let mut counted = columns.clone();
    counted[1]["nans"] = json!(0);
    assert_eq!(csv().summarise(&src).unwrap(), json!({"rows": 4, "columns": counted}));
    assert_eq!(arrow_ipc().summarise(&ipc).unwrap(), json!({"rows": 4, "columns": counted}));
    assert_eq!(
        parquet().summarise(&pq).unwrap(),
        json!({"rows": 4, "columns": columns, "row_groups": 1, "compression": "zstd"})
    );
}

#[test]
fn parquet_summary_comes_from_statistics() {
    let summary = parquet().summarise(big_parquet()).unwrap();
    assert_eq!(summary["rows"], 300_000);
    assert_eq!(
        summary["columns"][0],
        json!({"name": "i", "type": "Int64", "nullable": false, "nulls": 0, "min": 0, "max": 299_999})
    );
    assert_eq!(summary["columns"][1]["nulls"], 42_858);
    assert_eq!(summary["columns"][1]["max"], 299_998i64 * 299_998); // 299,999 is a multiple of 7: null
    assert_eq!(summary["columns"][2]["min"], "row 0");
}

#[test]
fn arrow_ipc_round_trip_and_streams() {
    let dir = tempfile::tempdir().unwrap();
    let ipc = dir.path().join("big.arrow");
    convert(parquet(), big_parquet(), arrow_ipc(), &ipc).unwrap();
    assert_eq!(trove_formats::detect(&ipc).unwrap().name(), "arrow");
    let back = dir.path().join("back.parquet");
    convert(arrow_ipc(), &ipc, parquet(), &back).unwrap();
    let original = one_batch(parquet(), big_parquet(), &TableSelect::default());
    assert_eq!(one_batch(arrow_ipc(), &ipc, &TableSelect::default()), original);
    assert_eq!(one_batch(parquet(), &back, &TableSelect::default()), original);
    let part = one_batch(arrow_ipc(), &ipc, &TableSelect::default().with_columns(["sq"]).with_rows(10..20));
    assert_eq!(part, original.project(&[1]).unwrap().slice(10, 10));

    // The IPC stream format reads too, as Hugging Face writes it under `.arrow`.
    let stream = dir.path().join("stream.arrow");
    let mut writer =
        arrow::ipc::writer::StreamWriter::try_new(std::fs::File::create(&stream).unwrap(), &original.schema()).unwrap();
    writer.write(&original.slice(0, 1000)).unwrap();
    writer.write(&original.slice(1000, 1000)).unwrap();
    writer.finish().unwrap();
    drop(writer);
    assert_eq!(trove_formats::detect(&stream).unwrap().name(), "arrow");
    let part = one_batch(arrow_ipc(), &stream, &TableSelect::default().with_columns(["s", "i"]).with_rows(995..1005));
    assert_eq!(part, original.project(&[2, 0]).unwrap().slice(995, 10));
    assert_eq!(arrow_ipc().summarise(&stream).unwrap()["rows"], 2000);
    let text = preview(arrow_ipc(), &stream, &PreviewOptions { head: Some(2), ..Default::default() });
    assert!(text.ends_with("… 1,998 more rows (2,000 in all)\n"), "{text}");
}

#[test]
fn parquet_to_csv_to_parquet_keeps_values() {
    let dir = tempfile::tempdir().unwrap();
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("x", DataType::Float64, true),
        Field::new("b", DataType::Boolean, true),
        Field::new("s", DataType::Utf8, true),
        Field::new("t", DataType::Timestamp(TimeUnit::Microsecond, Some("+00:00".into())), true),
    ]));
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(Int64Array::from(vec![Some(i64::MIN), None, Some(42)])),
            Arc::new(Float64Array::from(vec![Some(1.0), Some(-0.125), Some(1e300)])),
            Arc::new(BooleanArray::from(vec![Some(true), None, Some(false)])),
            Arc::new(StringArray::from(vec![Some("quote \" and, comma"), Some("line\nbreak"), None])),
            Arc::new(
                arrow::array::TimestampMicrosecondArray::from(vec![Some(1), None, Some(1_700_000_000_123_456)])
                    .with_timezone("+00:00"),
            ),
        ],
    )
    .unwrap();
    let first = dir.path().join("first.parquet");
    table::write_parquet(&mut RecordBatchIterator::new([Ok(batch.clone())], schema), &first).unwrap();
    let text = dir.path().join("mid.csv");
    convert(parquet(), &first, csv(), &text).unwrap();
    let csv_text = std::fs::read_to_string(&text).unwrap();
    assert!(csv_text.starts_with("n,x,b,s,t\n"), "{csv_text}");
    assert!(csv_text.contains("2023-11-14T22:13:20.123456Z"), "{csv_text}");
    let last = dir.path().join("last.parquet");
    convert(csv(), &text, parquet(), &last).unwrap();
    assert_eq!(one_batch(parquet(), &last, &TableSelect::default()), batch);
}

#[test]
fn previews_show_header_rows_and_the_rest() {
    let path = big_parquet();
    let text = preview(parquet(), path, &PreviewOptions::default());
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], " i    sq  s");
    assert_eq!(lines[1], "--  ----  ------");
    assert_eq!(lines[2], " 0  null  row 0");
    assert_eq!(lines[3], " 1     1  row 1");
    assert_eq!(lines.len(), 2 + 20 + 1);
    assert_eq!(lines[22], "… 299,980 more rows (300,000 in all)");

    let text =
        preview(parquet(), path, &PreviewOptions { head: Some(2), columns: Some(vec!["s".into()]), slice: None });
    assert_eq!(text, "s\n-----\nrow 0\nrow 1\n… 299,998 more rows (300,000 in all)\n");

    let dir = tempfile::tempdir().unwrap();
    let src = write(&dir, "m.csv", MIXED);
    let text = preview(csv(), &src, &PreviewOptions { head: Some(3), ..Default::default() });
    assert!(text.starts_with("  id"), "{text}");
    assert!(text.contains("gamma, with comma"), "{text}");
    assert!(text.ends_with("… 1 more row (4 in all)\n"), "{text}");
    let text = preview(csv(), &src, &PreviewOptions::default());
    assert!(text.ends_with("(4 rows)\n"), "{text}");
}

#[test]
fn only_tables_read_as_tables() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(&dir, "a.csv", "a\n1\n");
    let npy = trove_formats::by_name("npy").unwrap();
    let err = table::read_table(npy, &path, &TableSelect::default()).err().unwrap().to_string();
    assert!(err.contains("not a table"), "{err}");
}

/// How long the CSV passes take on a big file, and how much memory a conversion needs. Run with
/// `TROVE_CSV_ROWS=10000000 cargo test -p trove-formats --test tables csv_inference_cost -- --ignored --nocapture`.
#[test]
#[ignore]
fn csv_inference_cost() {
    let rows: u64 = std::env::var("TROVE_CSV_ROWS").ok().and_then(|r| r.parse().ok()).unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.csv");
    {
        use std::io::Write;
        let mut out = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        writeln!(out, "id,x,flag,when,name").unwrap();
        for i in 0..rows {
            writeln!(
                out,
                "{i},{}.25,{},2024-01-01T{:02}:{:02}:00,name{}",
                i % 1000,
                i % 2 == 0,
                i / 60 % 24,
                i % 60,
                i % 977
            )
            .unwrap();
        }
    }
    let size = std::fs::metadata(&src).unwrap().len();
    let clock = std::time::Instant::now();
    let reader = table::read_table(csv(), &src, &TableSelect::default()).unwrap();
    let inferred = clock.elapsed();
    let mut parsed = 0;
    for batch in reader {
        parsed += batch.unwrap().num_rows();
    }
    let total = clock.elapsed();
    assert_eq!(parsed as u64, rows);
    let dest = dir.path().join("big.parquet");
    let clock = std::time::Instant::now();
    convert(csv(), &src, parquet(), &dest).unwrap();
    let converted = clock.elapsed();
    let peak = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with("VmHWM")).map(str::to_string))
        .unwrap_or_default();
    eprintln!(
        "{rows} rows, {} MB: inference pass {inferred:?}, parsing pass {:?}, conversion to parquet {converted:?} \
         ({} MB), {peak}",
        size >> 20,
        total - inferred,
        std::fs::metadata(&dest).unwrap().len() >> 20
    );
}
