//! Data objects through the real binary: tables converted and previewed, arrays as npy and Zarr, folders
//! as objects, media types by content, conversions on the way out, and the errors of each.

mod common;

use std::path::Path;

use common::TestStore;

const CSV: &str = "id,temperature,ok,when,material\n\
                   1,300.5,true,2024-01-01T12:00:00,steel\n\
                   2,,false,2024-01-02T12:00:00,copper\n\
                   3,310.25,true,2024-01-03T12:00:00,\n";

/// A little-endian float64 `.npy` file, as numpy writes it.
fn npy_f64(shape: &[usize], values: &[f64]) -> Vec<u8> {
    let shape_text = match shape {
        [n] => format!("({n},)"),
        dims => format!("({})", dims.iter().map(|d| d.to_string()).collect::<Vec<_>>().join(", ")),
    };
    let mut header = format!("{{'descr': '<f8', 'fortran_order': False, 'shape': {shape_text}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    for v in values {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn object<'a>(show: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    show["objects"].as_array().unwrap().iter().find(|o| o["name"] == name).unwrap_or_else(|| panic!("{show:#}"))
}

#[test]
fn csv_becomes_parquet_with_a_summary_a_preview_and_conversions_out() {
    let s = TestStore::new();
    let csv = s.file("runs.csv", CSV.as_bytes());
    let out = s.ok(&["put", "lab/t", csv.to_str().unwrap(), "--as", "parquet"]);
    assert!(out.contains("runs.parquet\tparquet"), "{out}");
    let show = s.show("lab/t");
    let o = object(&show, "runs.parquet");
    assert_eq!(o["format"], "parquet");
    assert_eq!(o["summary"]["rows"], 3, "{o:#}");
    let columns = o["summary"]["columns"].as_array().unwrap();
    let temperature = columns.iter().find(|c| c["name"] == "temperature").unwrap();
    assert_eq!(temperature["nulls"], 1, "{temperature}");
    assert_eq!(temperature["min"], 300.5, "{temperature}");
    // The stored file is a real Parquet file at the readable path.
    let located = s.ok(&["locate", "lab/t:runs.parquet"]);
    assert!(std::fs::read(located.trim()).unwrap().starts_with(b"PAR1"));
    assert!(s.ok(&["find", "@format == \"parquet\"", "--ids"]).lines().count() == 1);

    let preview = s.ok(&["cat", "lab/t:runs.parquet", "--head", "2", "--columns", "material,id"]);
    assert!(preview.contains("steel") && preview.contains("copper"), "{preview}");
    assert!(!preview.contains("300.5") && !preview.contains("2024-01-03"), "{preview}");

    let back = s.inputs.path().join("back.csv");
    s.ok(&["get", "lab/t:runs.parquet", "--as", "csv", "-o", back.to_str().unwrap()]);
    let text = std::fs::read_to_string(&back).unwrap();
    assert!(text.starts_with("id,temperature,ok,when,material\n"), "{text}");
    assert!(text.contains("steel") && text.contains("310.25"), "{text}");
    let to_stdout = s.ok(&["get", "lab/t:runs.parquet", "--as", "csv", "-o", "-"]);
    assert_eq!(to_stdout, text);
    let arrow = s.inputs.path().join("t.arrow");
    s.ok(&["get", "lab/t:runs.parquet", "--as", "arrow", "-o", arrow.to_str().unwrap()]);
    assert!(std::fs::read(&arrow).unwrap().starts_with(b"ARROW1"));
    // Stored as it is, an Arrow file is a table too.
    s.ok(&["put", "lab/t", arrow.to_str().unwrap()]);
    assert_eq!(object(&s.show("lab/t"), "t.arrow")["summary"]["rows"], 3);
    // Nothing was left in staging, and no export left a part file.
    assert_eq!(std::fs::read_dir(s.root().join(".trove/staging")).map(|d| d.count()).unwrap_or(0), 0);
    let parts = std::fs::read_dir(s.inputs.path())
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name().to_string_lossy().contains(".trove-part"));
    assert_eq!(parts.count(), 0);
}

#[test]
fn npy_is_kept_byte_for_byte_and_zarr_is_chunked_sliced_and_converted_back() {
    let s = TestStore::new();
    let values: Vec<f64> = (0..20).map(|i| i as f64 * 0.5).collect();
    let bytes = npy_f64(&[4, 5], &values);
    let npy = s.file("field.npy", &bytes);
    s.ok(&["put", "lab/a", npy.to_str().unwrap()]);
    let o = object(&s.show("lab/a"), "field.npy").clone();
    assert_eq!(o["format"], "npy");
    assert_eq!(o["summary"]["shape"], serde_json::json!([4, 5]), "{o:#}");
    let back = s.inputs.path().join("back.npy");
    s.ok(&["get", "lab/a:field.npy", "-o", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), bytes);

    s.ok(&["put", "lab/z", npy.to_str().unwrap(), "--as", "zarr", "--chunks", "2,2"]);
    let o = object(&s.show("lab/z"), "field.zarr").clone();
    assert_eq!(o["format"], "zarr");
    assert_eq!(o["summary"]["chunks"], serde_json::json!([2, 2]), "{o:#}");
    assert!(o["files"].as_u64().unwrap() >= 2, "{o:#}");
    let folder = s.ok(&["locate", "lab/z:field.zarr"]);
    assert!(Path::new(folder.trim()).join("zarr.json").is_file());

    let slice = s.ok(&["cat", "lab/z:field.zarr", "--slice", "1, 1:3"]);
    assert!(slice.contains("3") && slice.contains("3.5"), "{slice}");
    let back = s.inputs.path().join("from-zarr.npy");
    s.ok(&["get", "lab/z:field.zarr", "--as", "npy", "-o", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), bytes);
    // The folder as it is: every file, verified.
    let copy = s.inputs.path().join("copy.zarr");
    s.ok(&["get", "lab/z:field.zarr", "-o", copy.to_str().unwrap()]);
    assert!(copy.join("zarr.json").is_file());

    // A slice to a file: rows 1..3 of the 4×5 array, columns 2 and 4.
    let part = s.inputs.path().join("part.npy");
    s.ok(&["get", "lab/z:field.zarr", "--slice", "1:3, 2::2", "-o", part.to_str().unwrap()]);
    assert_eq!(std::fs::read(&part).unwrap(), npy_f64(&[2, 2], &[3.5, 4.5, 6.0, 7.0]));
    let err = s.fails(&["get", "lab/z:field.zarr", "--slice", "9", "-o", part.to_str().unwrap()], 1);
    assert!(err.contains("out of bounds"), "{err}");
    let err = s.fails(&["cat", "lab/z:field.zarr", "--slice", "0:x"], 1);
    assert!(err.starts_with("error: invalid slice"), "{err}");
    let err = s.fails(&["get", "lab/z:field.zarr", "-o", "-"], 1);
    assert!(err.contains("folder"), "{err}");
}

#[test]
fn folders_are_objects_that_move_copy_and_get_replaced_whole() {
    let s = TestStore::new();
    let dir = s.inputs.path().join("raw");
    std::fs::create_dir_all(dir.join("frames/deep")).unwrap();
    std::fs::write(dir.join("frames/0001.tif"), b"II*\0frame-1").unwrap();
    std::fs::write(dir.join("frames/deep/notes.txt"), b"deep").unwrap();
    std::fs::write(dir.join("README"), b"instrument run").unwrap();
    s.ok(&["put", "lab/run", dir.to_str().unwrap()]);
    let o = object(&s.show("lab/run"), "raw").clone();
    assert_eq!((o["format"].as_str(), o["files"].as_u64()), (Some("folder"), Some(3)), "{o:#}");
    let stored = s.root().join("lab/run/raw");
    assert_eq!(std::fs::read(stored.join("frames/deep/notes.txt")).unwrap(), b"deep");

    // Replacing the folder swaps it whole: the old file that the new version lacks is gone.
    std::fs::remove_file(dir.join("README")).unwrap();
    std::fs::write(dir.join("frames/0002.tif"), b"II*\0frame-2").unwrap();
    s.ok(&["put", "lab/run", dir.to_str().unwrap()]);
    assert!(!stored.join("README").exists() && stored.join("frames/0002.tif").is_file());

    s.ok(&["mv", "lab/run", "lab/moved"]);
    assert!(s.root().join("lab/moved/raw/frames/0002.tif").is_file() && !stored.exists());
    s.ok(&["cp", "lab/moved", "lab/copy"]);
    assert!(s.root().join("lab/copy/raw/frames/deep/notes.txt").is_file());
    let out = s.inputs.path().join("out");
    s.ok(&["get", "lab/copy:raw", "-o", out.to_str().unwrap()]);
    assert_eq!(std::fs::read(out.join("frames/0001.tif")).unwrap(), b"II*\0frame-1");
    s.ok(&["rm", "lab/copy:raw"]);
    assert!(!s.root().join("lab/copy/raw").exists());
    // The catalog rebuilt from the log agrees.
    s.ok(&["sync", "--full"]);
    assert_eq!(object(&s.show("lab/moved"), "raw")["files"], 3);
    // A damaged file inside a folder object is caught on the way out.
    std::fs::write(s.root().join("lab/moved/raw/frames/0001.tif"), b"tampered").unwrap();
    let err = s.fails(&["get", "lab/moved:raw", "-o", s.inputs.path().join("o2").to_str().unwrap()], 1);
    assert!(err.contains("damaged") && err.contains("frames/0001.tif"), "{err}");
}

#[test]
fn media_types_come_from_content_and_reflink_falls_back_to_copy() {
    let s = TestStore::new();
    let png = s.file("picture.dat", b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR");
    let text = s.file("notes", b"just words\n");
    s.ok(&["put", "lab/m", png.to_str().unwrap(), text.to_str().unwrap(), "--reflink"]);
    let show = s.show("lab/m");
    assert_eq!(object(&show, "picture.dat")["media_type"], "image/png");
    assert_eq!(object(&show, "picture.dat")["format"], "image");
    assert_eq!(object(&show, "notes")["media_type"], "text/plain");
    assert_eq!(s.ok(&["cat", "lab/m:notes"]), "just words\n");
    assert!(s.ok(&["cat", "lab/m:picture.dat"]).starts_with("binary file, 16 bytes"));
}

#[test]
fn conversion_errors_are_clear_and_store_nothing() {
    let s = TestStore::new();
    let csv = s.file("runs.csv", CSV.as_bytes());
    let c = csv.to_str().unwrap();
    let err = s.fails(&["put", "lab/t", c, "--as", "zarr"], 1);
    assert!(err.starts_with("error: cannot convert csv to zarr"), "{err}");
    let err = s.fails(&["put", "lab/t", c, "--as", "hdf9"], 1);
    assert!(err.starts_with("error: unknown format \"hdf9\""), "{err}");
    let err = s.fails(&["put", "lab/t", c, "--chunks", "10"], 1);
    assert!(err.contains("--as zarr"), "{err}");
    let ragged = s.file("ragged.csv", b"a,b\n1,2\n3,4,5\n");
    let err = s.fails(&["put", "lab/t", ragged.to_str().unwrap(), "--as", "parquet"], 1);
    assert!(err.starts_with("error: ") && err.contains("ragged.csv"), "{err}");
    let npy = s.file("v.npy", &npy_f64(&[3], &[1.0, 2.0, 3.0]));
    let err = s.fails(&["put", "lab/t", npy.to_str().unwrap(), "--as", "zarr", "--chunks", "2,2"], 1);
    assert!(err.starts_with("error: ") && err.contains("chunk"), "{err}");
    assert!(s.fails(&["show", "lab/t"], 1).contains("not found"));
    assert_eq!(std::fs::read_dir(s.root().join(".trove/staging")).map(|d| d.count()).unwrap_or(0), 0);
    s.ok(&["put", "lab/t", c]);
    let err = s.fails(&["cat", "lab/t"], 1);
    assert!(err.contains("PROJECT/PATH:OBJECT"), "{err}");
    let err = s.fails(&["cat", "lab/t:runs.csv", "--columns", "nope"], 1);
    assert!(err.contains("nope"), "{err}");
}

/// A device or pipe given as `-o` is written into, never renamed over (as root, renaming over `/dev/null`
/// would replace it). Tested with a FIFO and a reader on its other end.
#[test]
fn exports_write_into_pipes_and_devices() {
    let s = TestStore::new();
    let csv = s.file("runs.csv", CSV.as_bytes());
    s.ok(&["put", "lab/t", csv.to_str().unwrap()]);
    for extra in [&[][..], &["--as", "parquet"][..]] {
        let fifo = s.inputs.path().join(format!("pipe{}", extra.len()));
        assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
        let reader = {
            let fifo = fifo.clone();
            std::thread::spawn(move || std::fs::read(fifo).unwrap())
        };
        let mut args = vec!["get", "lab/t:runs.csv", "-o", fifo.to_str().unwrap()];
        args.extend_from_slice(extra);
        s.ok(&args);
        let got = reader.join().unwrap();
        if extra.is_empty() {
            assert_eq!(got, CSV.as_bytes());
        } else {
            assert!(got.starts_with(b"PAR1"));
        }
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(std::os::unix::fs::FileTypeExt::is_fifo(&kind), "the pipe was replaced");
    }
}

#[test]
fn csv_reading_choices_on_the_command_line() {
    let s = TestStore::new();
    let csv = s.file("zips.csv", b"# exported 2024-05-01\nsite\tzip\treading\ns1\t02134\t-\ns2\t10001\t2.5\n");
    let c = csv.to_str().unwrap();
    let err = s.fails(&["put", "lab/z", c, "--na", "-"], 1);
    assert!(err.starts_with("error: --na, --delimiter") && err.contains("--as parquet"), "{err}");
    let err = s.fails(&["put", "lab/z", c, "--as", "parquet", "--dtype", "zip"], 1);
    assert!(err.contains("COLUMN=TYPE"), "{err}");
    let err = s.fails(&["put", "lab/z", c, "--as", "parquet", "--dtype", "zip=integer"], 1);
    assert!(err.contains("unknown column type \"integer\""), "{err}");
    let err = s.fails(&["put", "lab/z", c, "--as", "parquet", "--delimiter", "::"], 1);
    assert!(err.contains("one ASCII character"), "{err}");
    assert!(s.fails(&["show", "lab/z"], 1).contains("not found"));
    s.ok(&[
        "put",
        "lab/z",
        c,
        "--as",
        "parquet",
        "--comment",
        "#",
        "--delimiter",
        "tab",
        "--dtype",
        "zip=string",
        "--na",
        "-",
    ]);
    let shown = s.show("lab/z:zips.parquet");
    let columns = &shown["summary"]["columns"];
    assert_eq!(columns[1]["name"], "zip");
    assert_eq!(columns[1]["type"], "Utf8");
    assert_eq!(columns[1]["min"], "02134");
    assert_eq!(columns[2]["type"], "Float64");
    assert_eq!(columns[2]["nulls"], 1);
}

#[test]
fn a_gzipped_csv_converts_and_keeps_its_format_word() {
    let s = TestStore::new();
    // Made with the system's gzip, as a lab's pipeline would.
    let plain = s.file("runs.csv", b"step,energy\n1,-3.5\n2,NA\n");
    let status = std::process::Command::new("gzip").arg("-k").arg(&plain).status();
    if !status.is_ok_and(|s| s.success()) {
        eprintln!("SKIPPED: no gzip on this machine");
        assert!(std::env::var_os("CI").is_none(), "gzip is needed under CI");
        return;
    }
    let gz = plain.with_extension("csv.gz");
    s.ok(&["put", "lab/g", gz.to_str().unwrap(), "--as", "parquet"]);
    let shown = s.show("lab/g:runs.parquet");
    assert_eq!(shown["summary"]["rows"], 2);
    assert_eq!(shown["summary"]["columns"][1]["type"], "Float64");
    assert_eq!(shown["summary"]["columns"][1]["nulls"], 1);
    s.ok(&["put", "lab/g", gz.to_str().unwrap()]);
    let kept = s.show("lab/g:runs.csv.gz");
    assert_eq!(kept["format"], "csv");
    assert!(s.ok(&["cat", "lab/g:runs.csv.gz"]).contains("-3.5"));
}

#[test]
fn what_a_csv_import_guessed_is_said_on_stderr() {
    let s = TestStore::new();
    // Short rows (and a quoted line break, and a comment) are filled with nulls, and counted on stderr.
    let ragged = s.file("ragged.csv", b"a,b,c\n1,2,3\n4,5\n# 7\n\"x\ny\",8,9\n10\n");
    let out = s.cmd(&["put", "lab/r", ragged.to_str().unwrap(), "--as", "parquet", "--comment", "#"]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("note: ragged.csv: 2 rows have fewer fields than the header; the missing cells are nulls"),
        "{said}"
    );
    assert!(!said.contains("--delimiter"), "{said}");
    assert_eq!(s.show("lab/r:ragged.parquet")["summary"]["rows"], 4);
    let bare = s.file("counts.csv", b"1,2.5\n2,3.5\n");
    let out = s.cmd(&["put", "lab/c", bare.to_str().unwrap(), "--as", "parquet"]).output().unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("note: counts.csv: no header line") && said.contains("--header"), "{said}");
    assert_eq!(s.show("lab/c:counts.parquet")["summary"]["columns"][0]["name"], "column_0");
    let out = s.cmd(&["put", "lab/d", bare.to_str().unwrap(), "--as", "parquet", "--header"]).output().unwrap();
    assert!(out.status.success() && out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
    assert_eq!(s.show("lab/d:counts.parquet")["summary"]["columns"][0]["name"], "1");
}

/// An `.npy` with any header dict and data, as numpy writes it (version 1.0, padded to 64 bytes).
fn npy_raw(descr: &str, shape: &str, data: &[u8]) -> Vec<u8> {
    let mut header = format!("{{'descr': {descr}, 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend_from_slice(&(header.len() as u16).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out
}

/// Every valid npy can be kept: float16 is an array like float32 (sliced, previewed, converted to Zarr);
/// datetimes, strings, bytes, records and objects are stored byte for byte with a summary naming the dtype
/// as numpy prints it, and slicing them says why not.
#[test]
fn every_numpy_dtype_is_stored_byte_for_byte_with_its_dtype() {
    let s = TestStore::new();
    // float16: 1.0, 2.5, -0.0, 65504 (the largest), in little-endian half precision.
    let halves: Vec<u8> = [0x3c00u16, 0x4100, 0x8000, 0x7bff].iter().flat_map(|h| h.to_le_bytes()).collect();
    let f2 = npy_raw("'<f2'", "(2, 2)", &halves);
    let path = s.file("half.npy", &f2);
    s.ok(&["put", "lab/h", path.to_str().unwrap()]);
    let o = object(&s.show("lab/h"), "half.npy").clone();
    assert_eq!(o["summary"]["dtype"], "float16", "{o:#}");
    assert!(s.ok(&["cat", "lab/h:half.npy"]).contains("65504.0"));
    let part = s.inputs.path().join("row.npy");
    s.ok(&["get", "lab/h:half.npy", "--slice", "1", "-o", part.to_str().unwrap()]);
    assert_eq!(std::fs::read(&part).unwrap(), npy_raw("'<f2'", "(2,)", &halves[4..]));
    s.ok(&["put", "lab/hz", path.to_str().unwrap(), "--as", "zarr"]);
    assert_eq!(object(&s.show("lab/hz"), "half.zarr")["summary"]["dtype"], "float16");
    let back = s.inputs.path().join("half-back.npy");
    s.ok(&["get", "lab/hz:half.zarr", "--as", "npy", "-o", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), f2);

    let ns: Vec<u8> = [0i64, 1_700_000_000_000_000_000, i64::MIN].iter().flat_map(|t| t.to_le_bytes()).collect();
    let text: Vec<u8> = "abcdeé\0\0\0\0".chars().flat_map(|c| (c as u32).to_le_bytes()).collect();
    let cases: Vec<(&str, Vec<u8>, &str, serde_json::Value)> = vec![
        ("dates.npy", npy_raw("'<M8[ns]'", "(3,)", &ns), "datetime64[ns]", serde_json::json!(8)),
        ("spans.npy", npy_raw("'<m8[s]'", "(3,)", &ns), "timedelta64[s]", serde_json::json!(8)),
        ("names.npy", npy_raw("'<U5'", "(2,)", &text), "<U5", serde_json::json!(20)),
        ("raw.npy", npy_raw("'|S3'", "(2,)", b"ab\0xyz"), "|S3", serde_json::json!(3)),
        ("big.npy", npy_raw("'>f8'", "(1,)", &2.5f64.to_be_bytes()), ">f8", serde_json::json!(8)),
        (
            "records.npy",
            npy_raw("[('x', '<f4'), ('y', '<i8', (2,))]", "(1,)", &[0u8; 20]),
            "[('x', '<f4'), ('y', '<i8', (2,))]",
            serde_json::json!(20),
        ),
        // An object array's data is a pickle; trove keeps it and never unpickles it.
        ("objects.npy", npy_raw("'|O'", "(2,)", b"\x80\x04\x95junk-pickle."), "object", serde_json::Value::Null),
    ];
    for (name, bytes, dtype, itemsize) in &cases {
        let path = s.file(name, bytes);
        let r = format!("lab/{}", name.trim_end_matches(".npy"));
        s.ok(&["put", &r, path.to_str().unwrap()]);
        let o = object(&s.show(&r), name).clone();
        assert_eq!(o["format"], "npy", "{o:#}");
        assert_eq!(o["summary"]["dtype"], *dtype, "{o:#}");
        assert_eq!(o["summary"]["itemsize"], *itemsize, "{o:#}");
        let back = s.inputs.path().join(format!("back-{name}"));
        s.ok(&["get", &format!("{r}:{name}"), "-o", back.to_str().unwrap()]);
        assert_eq!(&std::fs::read(&back).unwrap(), bytes, "{name}");
    }
    // >f8 is an array (read in its byte order). Every fixed-size dtype is sliced byte for byte into an npy of
    // the same dtype (its last element here); previews and conversions say why they cannot show the others.
    assert!(s.ok(&["cat", "lab/big:big.npy"]).contains("2.5"));
    let descrs = ["'<M8[ns]'", "'<m8[s]'", "'<U5'", "'|S3'", "'>f8'", "[('x', '<f4'), ('y', '<i8', (2,))]"];
    for ((name, bytes, _, itemsize), descr) in cases.iter().zip(descrs) {
        let r = format!("lab/{}:{name}", name.trim_end_matches(".npy"));
        s.ok(&["get", &r, "--slice", "-1:", "-o", part.to_str().unwrap()]);
        let size = itemsize.as_u64().unwrap() as usize;
        assert_eq!(std::fs::read(&part).unwrap(), npy_raw(descr, "(1,)", &bytes[bytes.len() - size..]), "{name}");
    }
    s.ok(&["get", "lab/dates:dates.npy", "--slice", "::-2", "-o", part.to_str().unwrap()]);
    let reversed: Vec<u8> = [ns[16..24].to_vec(), ns[..8].to_vec()].concat();
    assert_eq!(std::fs::read(&part).unwrap(), npy_raw("'<M8[ns]'", "(2,)", &reversed));
    // Times and text are arrays too: previewed as numpy prints them and converted to Zarr; bytes and records
    // say why not.
    let shown = s.ok(&["cat", "lab/dates:dates.npy"]);
    assert!(shown.contains("'1970-01-01T00:00:00.000000000'") && shown.contains("NaT"), "{shown}");
    assert!(s.ok(&["cat", "lab/names:names.npy", "--slice", "::-1"]).contains("'é', 'abcde']"));
    s.ok(&["put", "lab/dz", s.inputs.path().join("dates.npy").to_str().unwrap(), "--as", "zarr"]);
    assert_eq!(object(&s.show("lab/dz"), "dates.zarr")["summary"]["dtype"], "datetime64[ns]");
    let back = s.inputs.path().join("dates-back.npy");
    s.ok(&["get", "lab/dz:dates.zarr", "--as", "npy", "-o", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), cases[0].1);
    let err = s.fails(&["cat", "lab/raw:raw.npy"], 1);
    assert!(err.contains("|S3 elements cannot be previewed or converted") && err.contains("byte for byte"), "{err}");
    let err = s.fails(&["get", "lab/objects:objects.npy", "--slice", "0", "-o", part.to_str().unwrap()], 1);
    assert!(err.contains("pickled Python objects"), "{err}");
    let err = s.fails(&["put", "lab/oz", s.inputs.path().join("objects.npy").to_str().unwrap(), "--as", "zarr"], 1);
    assert!(err.contains("pickled Python objects"), "{err}");
    // A truncated record array is refused at put, naming what the header promised.
    let short = s.file("short.npy", &npy_raw("[('x', '<f4')]", "(4,)", &[0u8; 8]));
    let err = s.fails(&["put", "lab/short", short.to_str().unwrap()], 1);
    assert!(err.contains("truncated npy file") && err.contains("[('x', '<f4')]"), "{err}");
    let bad = s.file("bad.npy", &npy_raw("'<Q9'", "(1,)", &[0u8; 9]));
    assert!(s.fails(&["put", "lab/bad", bad.to_str().unwrap(), "--as", "zarr"], 1).contains("not a numpy type string"));
}

/// A FITS header block: 80-character cards, `END`, padded with spaces to 2880 bytes.
fn fits_header(cards: &[&str]) -> Vec<u8> {
    let mut out = Vec::new();
    for card in cards.iter().chain(["END"].iter()) {
        out.extend_from_slice(format!("{card:<80}").as_bytes());
    }
    out.resize(out.len().div_ceil(2880) * 2880, b' ');
    out
}

fn padded(mut data: Vec<u8>) -> Vec<u8> {
    data.resize(data.len().div_ceil(2880) * 2880, 0);
    data
}

/// numpy's `.npz`, FITS, netCDF classic, netCDF-4, images and JSON get summaries `show` prints and `find`
/// can ask about; a compressed FITS keeps its format word.
#[test]
fn science_files_npz_images_and_json_are_summarised() {
    use std::io::Write as _;
    let s = TestStore::new();
    // An npz as numpy.savez_compressed writes it: one deflated member, one stored, and a non-array member.
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.start_file("temperature.npy", deflated).unwrap();
    zip.write_all(&npy_f64(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])).unwrap();
    let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    zip.start_file("names.npy", stored).unwrap();
    zip.write_all(&npy_raw("'<U2'", "(1,)", &[b'a', 0, 0, 0, b'b', 0, 0, 0])).unwrap();
    zip.start_file("notes.txt", stored).unwrap();
    zip.write_all(b"hello").unwrap();
    let npz = s.file("run.npz", &zip.finish().unwrap().into_inner());
    s.ok(&["put", "lab/npz", npz.to_str().unwrap()]);
    let o = object(&s.show("lab/npz"), "run.npz").clone();
    assert_eq!(o["format"], "npz", "{o:#}");
    assert_eq!(o["summary"]["compressed"], true);
    let members = o["summary"]["members"].as_array().unwrap();
    assert_eq!(
        members[0],
        serde_json::json!({"name": "temperature", "dtype": "float64", "shape": [2, 3], "order": "C", "itemsize": 8})
    );
    assert_eq!(members[1]["dtype"], "<U2");
    assert_eq!(members[2], serde_json::json!({"name": "notes.txt", "size": 5}));
    assert!(s.ok(&["cat", "lab/npz:run.npz"]).contains("temperature  float64  [2,3]"));
    let back = s.inputs.path().join("back.npz");
    s.ok(&["get", "lab/npz:run.npz", "-o", back.to_str().unwrap()]);
    assert_eq!(std::fs::read(&back).unwrap(), std::fs::read(&npz).unwrap());

    // FITS: a 2×3 int16 primary image and a binary table extension.
    let mut fits = fits_header(&[
        "SIMPLE  =                    T",
        "BITPIX  =                   16",
        "NAXIS   =                    2",
        "NAXIS1  =                    3",
        "NAXIS2  =                    2",
        "OBJECT  = 'M31 ''core'''       / the target",
        "EXPTIME =               1.5D+1",
    ]);
    fits.extend(padded(vec![0u8; 12]));
    fits.extend(fits_header(&[
        "XTENSION= 'BINTABLE'",
        "BITPIX  =                    8",
        "NAXIS   =                    2",
        "NAXIS1  =                   12",
        "NAXIS2  =                    2",
        "PCOUNT  =                    0",
        "GCOUNT  =                    1",
        "TFIELDS =                    2",
        "TTYPE1  = 'flux'",
        "TFORM1  = '1D'",
        "TUNIT1  = 'Jy'",
        "TTYPE2  = 'id'",
        "TFORM2  = '1J'",
        "EXTNAME = 'CATALOG'",
    ]));
    fits.extend(padded(vec![0u8; 24]));
    let path = s.file("sky.fits", &fits);
    s.ok(&["put", "lab/fits", path.to_str().unwrap()]);
    let o = object(&s.show("lab/fits"), "sky.fits").clone();
    assert_eq!(o["format"], "fits");
    let hdus = o["summary"]["hdus"].as_array().unwrap();
    assert_eq!(hdus[0]["type"], "PRIMARY");
    assert_eq!(hdus[0]["shape"], serde_json::json!([2, 3]));
    assert_eq!(hdus[0]["bitpix"], 16);
    assert_eq!(hdus[0]["header"]["OBJECT"], "M31 'core'");
    assert_eq!(hdus[0]["header"]["EXPTIME"], 15.0);
    assert_eq!(hdus[1]["type"], "BINTABLE");
    assert_eq!(hdus[1]["name"], "CATALOG");
    assert_eq!(hdus[1]["rows"], 2);
    assert_eq!(hdus[1]["columns"][0], serde_json::json!({"name": "flux", "format": "1D", "unit": "Jy"}));
    // Compressed, it keeps its word and its summary.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&fits).unwrap();
    let path = s.file("sky.fits.gz", &gz.finish().unwrap());
    s.ok(&["put", "lab/fitsgz", path.to_str().unwrap()]);
    let o = object(&s.show("lab/fitsgz"), "sky.fits.gz").clone();
    assert_eq!(o["format"], "fits", "{o:#}");
    assert_eq!(o["summary"]["hdus"][1]["name"], "CATALOG");

    // netCDF classic: dimension time (unlimited, 2 records) and x (3); a float64 variable t(time, x) with a
    // units attribute; a global title.
    let mut nc = b"CDF\x01".to_vec();
    let int = |v: &mut Vec<u8>, n: i32| v.extend_from_slice(&n.to_be_bytes());
    let name = |v: &mut Vec<u8>, s: &str| {
        v.extend_from_slice(&(s.len() as i32).to_be_bytes());
        v.extend_from_slice(s.as_bytes());
        v.resize(v.len().div_ceil(4) * 4, 0);
    };
    int(&mut nc, 2); // records
    int(&mut nc, 0x0A);
    int(&mut nc, 2);
    name(&mut nc, "time");
    int(&mut nc, 0);
    name(&mut nc, "x");
    int(&mut nc, 3);
    int(&mut nc, 0x0C);
    int(&mut nc, 1);
    name(&mut nc, "title");
    int(&mut nc, 2);
    int(&mut nc, 5);
    nc.extend_from_slice(b"runs\0\0\0\0");
    int(&mut nc, 0x0B);
    int(&mut nc, 1);
    name(&mut nc, "t");
    int(&mut nc, 2);
    int(&mut nc, 0);
    int(&mut nc, 1);
    int(&mut nc, 0x0C);
    int(&mut nc, 1);
    name(&mut nc, "units");
    int(&mut nc, 2);
    int(&mut nc, 1);
    nc.extend_from_slice(b"K\0\0\0");
    int(&mut nc, 6);
    int(&mut nc, 24);
    let begin = nc.len() as i32 + 4;
    int(&mut nc, begin);
    nc.extend_from_slice(&[0u8; 48]);
    let path = s.file("run.nc", &nc);
    s.ok(&["put", "lab/nc", path.to_str().unwrap()]);
    let o = object(&s.show("lab/nc"), "run.nc").clone();
    assert_eq!(o["format"], "netcdf");
    let summary = &o["summary"];
    assert_eq!(summary["netcdf"], "classic", "{summary:#}");
    assert_eq!(summary["dimensions"], serde_json::json!({"time": 2, "x": 3}));
    assert_eq!(summary["unlimited"], serde_json::json!(["time"]));
    assert_eq!(summary["records"], 2);
    assert_eq!(summary["attributes"]["title"], "runs");
    assert_eq!(
        summary["variables"][0],
        serde_json::json!({"name": "t", "dtype": "float64", "dimensions": ["time", "x"], "shape": [2, 3], "attributes": {"units": "K"}})
    );
    // netCDF-4 is HDF5 underneath; its `_NCProperties` attribute says which.
    let mut h5 = b"\x89HDF\r\n\x1a\n\x02\x08\x08\x00".to_vec();
    h5.extend_from_slice(&[0u8; 100]);
    h5.extend_from_slice(b"_NCProperties\0version=2,netcdf=4.9.2");
    let path = s.file("run4.nc", &h5);
    s.ok(&["put", "lab/nc4", path.to_str().unwrap()]);
    assert_eq!(object(&s.show("lab/nc4"), "run4.nc")["format"], "netcdf");
    let plain = s.file("plain.h5", &h5[..112]);
    s.ok(&["put", "lab/h5", plain.to_str().unwrap()]);
    assert_eq!(object(&s.show("lab/h5"), "plain.h5")["format"], "hdf5");

    // Images: a PNG's IHDR (RGBA 640×480) and a GIF; JSON's top-level keys.
    let mut png = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    png.extend_from_slice(&640u32.to_be_bytes());
    png.extend_from_slice(&480u32.to_be_bytes());
    png.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    let path = s.file("frame.png", &png);
    s.ok(&["put", "lab/img", path.to_str().unwrap()]);
    let o = object(&s.show("lab/img"), "frame.png").clone();
    assert_eq!(o["summary"], serde_json::json!({"width": 640, "height": 480, "mode": "RGBA", "bit_depth": 8}), "{o:#}");
    let gif = s.file("anim.gif", b"GIF89a\x20\x00\x10\x00\x00\x00\x00;");
    s.ok(&["put", "lab/img", gif.to_str().unwrap()]);
    assert_eq!(object(&s.show("lab/img"), "anim.gif")["summary"]["width"], 32);
    let json_file =
        s.file("params.json", "{\"α\": 1, \"seed\": 12345678901234567891, \"deep\": {\"x\": [1]}}".as_bytes());
    s.ok(&["put", "lab/json", json_file.to_str().unwrap()]);
    let o = object(&s.show("lab/json"), "params.json").clone();
    assert_eq!(o["summary"]["key_count"], 3, "{o:#}");
    assert!(o["summary"]["keys"].as_array().unwrap().contains(&serde_json::json!("α")));
    // A file that only claims to be one of these is stored with no summary, never refused.
    let fake = s.file("fake.fits", b"SIMPLE  = not really");
    s.ok(&["put", "lab/fake", fake.to_str().unwrap()]);
    assert!(object(&s.show("lab/fake"), "fake.fits")["summary"].is_null());
    let fake = s.file("fake.json", b"{\"a\": ");
    s.ok(&["put", "lab/fake", fake.to_str().unwrap()]);
    assert!(object(&s.show("lab/fake"), "fake.json")["summary"].is_null());
    // find asks by format (the file that only claims to be FITS counts: its name and magic say so), and
    // SQL reaches into the summaries.
    assert_eq!(s.ok(&["find", "--ids", "@format == 'fits'"]).lines().count(), 3);
    let sql = "SELECT path FROM objects WHERE json_extract(summary, '$.hdus[1].name') = 'CATALOG' ORDER BY path";
    let out = s.ok(&["sql", sql]);
    assert!(out.contains("fits") && out.contains("fitsgz") && !out.contains("fake"), "{out}");
}
