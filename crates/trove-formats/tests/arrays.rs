//! The array formats end to end: npy and Zarr v3 round trips for every dtype, numpy's exact bytes, slices,
//! chunk-limited reads, errors and previews.

use std::path::{Path, PathBuf};

use ndarray::{ArrayD, Axis, IxDyn};
use num_complex::Complex;
use serde_json::json;
use tempfile::TempDir;
use trove_formats::array::{Element, read_array, write_array};
use trove_formats::npy::Npy;
use trove_formats::zarr::Zarr;
use trove_formats::{ArrayFormat, Compression, Format, PreviewOptions, Region, Slice, WriteOptions, convert, detect};

fn arr<T: Clone>(shape: &[usize], values: Vec<T>) -> ArrayD<T> {
    ArrayD::from_shape_vec(IxDyn(shape), values).unwrap()
}

fn zarr_options(chunks: Option<Vec<u64>>, compression: Compression) -> WriteOptions {
    WriteOptions { chunks, compression }
}

/// ndarray -> npy -> zarr -> npy: the same values, and the two npy files are the same bytes.
fn round_trip<T: Element + PartialEq>(dir: &Path, values: Vec<T>) {
    let name = T::DTYPE.name();
    let n = values.len();
    let a = arr(&[n / 6, 2, 3], values);
    let npy = dir.join(format!("{name}.npy"));
    let zarr = dir.join(format!("{name}.zarr"));
    let back = dir.join(format!("{name}-back.npy"));
    write_array(&Npy, &a, &npy, &WriteOptions::default()).unwrap();
    convert(&Npy, &npy, &Zarr, &zarr, &zarr_options(Some(vec![2, 2, 2]), Compression::Zstd)).unwrap();
    convert(&Zarr, &zarr, &Npy, &back, &WriteOptions::default()).unwrap();
    assert_eq!(read_array::<T>(&Npy, &npy, None).unwrap(), a, "{name} npy");
    assert_eq!(read_array::<T>(&Zarr, &zarr, None).unwrap(), a, "{name} zarr");
    assert_eq!(std::fs::read(&npy).unwrap(), std::fs::read(&back).unwrap(), "{name} npy bytes");
    assert_eq!(Zarr.info(&zarr).unwrap().dtype, T::DTYPE);
}

#[test]
fn every_dtype_round_trips_through_npy_and_zarr() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let ints = |k: i64| (0..12).map(move |i| (i - 6) * k).collect::<Vec<i64>>();
    round_trip(d, (0..12).map(|i| i % 3 == 0).collect());
    round_trip(d, ints(20).into_iter().map(|v| v as i8).collect());
    round_trip(d, ints(5000).into_iter().map(|v| v as i16).collect());
    round_trip(d, ints(300_000_000).into_iter().map(|v| v as i32).collect());
    round_trip(d, ints(i64::MAX / 7));
    round_trip(d, (0..12).map(|i| 255 - i as u8).collect());
    round_trip(d, (0..12).map(|i| 65535 - i as u16).collect());
    round_trip(d, (0..12).map(|i| u32::MAX - i).collect());
    round_trip(d, (0..12).map(|i| u64::MAX - i).collect());
    round_trip(d, (0..12).map(|i| i as f32 * 0.1 - 0.5).collect());
    round_trip(d, (0..12).map(|i| (i as f64).sqrt() * -1e300).collect());
    round_trip(d, (0..12).map(|i| Complex::new(i as f32, -(i as f32) / 3.0)).collect());
    round_trip(d, (0..12).map(|i| Complex::new(1.0 / (i as f64 + 1.0), i as f64)).collect());
}

/// datetime64, timedelta64 and unicode npy files become Zarr v3 with zarr-python's extension types and come
/// back as the same npy (a big-endian one as its little-endian twin); a slice and a preview read them too.
#[test]
fn times_and_text_round_trip_through_zarr() {
    let dir = TempDir::new().unwrap();
    let d = dir.path();
    let times: Vec<u8> =
        [0i64, i64::MIN, i64::MAX, -1, 1_704_067_200_123_456_789, 7].iter().flat_map(|t| t.to_le_bytes()).collect();
    let text: Vec<u8> = ["é", "naïve", "", "🙂\0x", "abc", "\0\0\0"]
        .iter()
        .flat_map(|w| {
            let mut units: Vec<u32> = w.chars().map(|c| c as u32).collect();
            units.resize(5, 0);
            units
        })
        .flat_map(|u| u.to_le_bytes())
        .collect();
    let big: Vec<u8> = times.chunks(8).flat_map(|c| c.iter().rev().copied().collect::<Vec<u8>>()).collect();
    let cases = [
        ("'<M8[ns]'", "datetime64[ns]", &times, &times),
        ("'<m8[10s]'", "timedelta64[10s]", &times, &times),
        ("'>M8[D]'", ">M8[D]", &big, &times),
        ("'<U5'", "<U5", &text, &text),
    ];
    for (i, (descr, name, bytes, little)) in cases.into_iter().enumerate() {
        let src = d.join(format!("src{i}.npy"));
        npy_file(&src, 1, &format!("{{'descr': {descr}, 'fortran_order': False, 'shape': (2, 3), }}"), bytes);
        assert_eq!(Npy.summarise(&src).unwrap()["dtype"], name);
        let z = d.join(format!("z{i}.zarr"));
        let options = WriteOptions { chunks: Some(vec![1, 2]), ..Default::default() };
        convert(&Npy, &src, &Zarr, &z, &options).unwrap();
        let back = d.join(format!("back{i}.npy"));
        convert(&Zarr, &z, &Npy, &back, &WriteOptions::default()).unwrap();
        let le_descr = descr.replace('>', "<");
        let le_name = Npy.summarise(&back).unwrap()["dtype"].clone();
        let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(z.join("zarr.json")).unwrap()).unwrap();
        assert_eq!(Zarr.summarise(&z).unwrap()["dtype"], le_name, "{meta:#}");
        let data = &std::fs::read(&back).unwrap()[128..];
        assert_eq!(data, &little[..], "{le_descr}");
        let region = Region(vec![1..2, 0..3]);
        assert_eq!(Zarr.read(&z, &region).unwrap().bytes, Npy.read(&src, &region).unwrap().bytes);
        let mut preview = Vec::new();
        Zarr.preview(&z, &PreviewOptions::default(), &mut preview).unwrap();
        let preview = String::from_utf8(preview).unwrap();
        match i {
            0 => assert!(preview.contains("NaT") && preview.contains("'2024-01-01T00:00:00.123456789'"), "{preview}"),
            1 => assert!(preview.contains("NaT") && preview.contains("-1 10s"), "{preview}"),
            2 => assert!(preview.contains("'1970-01-08'") && preview.contains("'1969-12-31'"), "{preview}"),
            _ => assert!(
                preview.contains("'naïve'") && preview.contains("''") && preview.contains("'🙂\\0x'"),
                "{preview}"
            ),
        }
    }
    let meta = std::fs::read_to_string(d.join("z0.zarr/zarr.json")).unwrap();
    assert!(meta.contains("numpy.datetime64") && meta.contains("\"NaT\""), "{meta}");
    let meta = std::fs::read_to_string(d.join("z3.zarr/zarr.json")).unwrap();
    assert!(meta.contains("fixed_length_utf32"), "{meta}");
}

/// A 1-d float64 npy file exactly as `numpy.save(np.array([1., 2., 3.]))` writes it (numpy 2.x).
fn numpy_f64_123() -> Vec<u8> {
    let mut bytes = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    bytes.extend_from_slice(b"{'descr': '<f8', 'fortran_order': False, 'shape': (3,), }");
    bytes.resize(127, b' ');
    bytes.push(b'\n');
    for v in [1.0f64, 2.0, 3.0] {
        bytes.extend_from_slice(&v.to_le_bytes());
    }
    bytes
}

#[test]
fn npy_writer_writes_what_numpy_writes() {
    let dir = TempDir::new().unwrap();
    let ours = dir.path().join("a.npy");
    write_array(&Npy, &arr(&[3], vec![1.0f64, 2.0, 3.0]), &ours, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&ours).unwrap(), numpy_f64_123());

    // And a numpy file read and written again (through Zarr) comes back byte for byte.
    let theirs = dir.path().join("numpy.npy");
    std::fs::write(&theirs, numpy_f64_123()).unwrap();
    let zarr = dir.path().join("a.zarr");
    let again = dir.path().join("again.npy");
    convert(&Npy, &theirs, &Zarr, &zarr, &WriteOptions::default()).unwrap();
    convert(&Zarr, &zarr, &Npy, &again, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), numpy_f64_123());
}

/// An npy file with a hand-written header of any version.
fn npy_file(path: &Path, major: u8, dict: &str, data: &[u8]) {
    let prefix = if major == 1 { 10 } else { 12 };
    let mut header = dict.to_string();
    while !(prefix + header.len() + 1).is_multiple_of(64) {
        header.push(' ');
    }
    header.push('\n');
    let mut bytes = b"\x93NUMPY".to_vec();
    bytes.extend_from_slice(&[major, 0]);
    if major == 1 {
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
    } else {
        bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
    }
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn reads_big_endian_fortran_and_later_versions() {
    let dir = TempDir::new().unwrap();
    let expected = arr(&[2, 3], vec![0i32, 1, 2, 10, 11, 12]);

    let big = dir.path().join("big.npy");
    let data: Vec<u8> = expected.iter().flat_map(|v| v.to_be_bytes()).collect();
    npy_file(&big, 1, "{'descr': '>i4', 'fortran_order': False, 'shape': (2, 3), }", &data);
    assert_eq!(read_array::<i32>(&Npy, &big, None).unwrap(), expected);
    let part = Npy.read(&big, &Region(vec![1..2, 1..3])).unwrap();
    assert_eq!(part.bytes, [11i32, 12].iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>());

    let fortran = dir.path().join("fortran.npy");
    let data: Vec<u8> = expected.t().iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_file(&fortran, 2, "{'descr': '<i4', 'fortran_order': True, 'shape': (2, 3), }", &data);
    assert_eq!(read_array::<i32>(&Npy, &fortran, None).unwrap(), expected);
    let column = read_array::<i32>(&Npy, &fortran, Some(&Slice::parse(":, 1").unwrap())).unwrap();
    assert_eq!(column, arr(&[2], vec![1, 11]));
    assert_eq!(
        Npy.summarise(&fortran).unwrap(),
        json!({"dtype": "int32", "shape": [2, 3], "order": "F", "itemsize": 4})
    );

    let v3 = dir.path().join("v3.npy");
    let data: Vec<u8> = [1.5f64, -2.5].iter().flat_map(|v| v.to_be_bytes()).collect();
    npy_file(&v3, 3, "{'descr': '>f8', 'fortran_order': False, 'shape': (2,)}", &data);
    assert_eq!(read_array::<f64>(&Npy, &v3, None).unwrap(), arr(&[2], vec![1.5, -2.5]));

    // Converting a big-endian file gives numpy's little-endian C-order file of the same values.
    let out = dir.path().join("out.npy");
    convert(&Npy, &big, &Npy, &out, &WriteOptions::default()).unwrap();
    let mut expected_bytes = b"\x93NUMPY\x01\x00\x76\x00".to_vec();
    expected_bytes.extend_from_slice(b"{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }");
    expected_bytes.resize(127, b' ');
    expected_bytes.push(b'\n');
    expected_bytes.extend(expected.iter().flat_map(|v| v.to_le_bytes()));
    assert_eq!(std::fs::read(&out).unwrap(), expected_bytes);
}

#[test]
fn broken_npy_files_say_what_is_wrong() {
    let dir = TempDir::new().unwrap();
    let p = dir.path().join("x.npy");
    npy_file(&p, 1, "{'descr': '<f8', 'fortran_order': False, 'shape': (4,), }", &[0u8; 16]);
    let err = Npy.info(&p).unwrap_err().to_string();
    assert!(err.contains("x.npy: truncated npy file: the header promises 32 bytes"), "{err}");
    npy_file(&p, 1, "{'descr': '|S5', 'fortran_order': False, 'shape': (1,), }", &[0u8; 5]);
    let err = Npy.info(&p).unwrap_err().to_string();
    assert!(err.contains("|S5 elements cannot be previewed or converted"), "{err}");
    assert_eq!(Npy.summarise(&p).unwrap(), json!({"dtype": "|S5", "shape": [1], "order": "C", "itemsize": 5}));
    std::fs::write(&p, b"hello").unwrap();
    let err = Npy.info(&p).unwrap_err().to_string();
    assert!(err.contains("not an npy file"), "{err}");
}

/// Picks `indices[axis]` along every axis, then drops the `dropped` axes (which must have one index each).
fn pick(a: &ArrayD<i64>, indices: &[Vec<usize>], dropped: &[usize]) -> ArrayD<i64> {
    let mut out = a.clone();
    for (axis, idx) in indices.iter().enumerate() {
        out = out.select(Axis(axis), idx);
    }
    for &axis in dropped.iter().rev() {
        out = out.index_axis_move(Axis(axis), 0);
    }
    out
}

#[test]
fn slices_read_the_same_from_npy_and_zarr() {
    let dir = TempDir::new().unwrap();
    let a = arr(&[6, 5, 4], (0..120i64).collect());
    let npy = dir.path().join("a.npy");
    let zarr = dir.path().join("a.zarr");
    write_array(&Npy, &a, &npy, &WriteOptions::default()).unwrap();
    write_array(&Zarr, &a, &zarr, &zarr_options(Some(vec![4, 2, 3]), Compression::Zstd)).unwrap();
    // (slice, the indices it picks along each axis, the axes it drops)
    type Case = (&'static str, Vec<Vec<usize>>, Vec<usize>);
    let cases: Vec<Case> = vec![
        ("0:5, :, 3", vec![vec![0, 1, 2, 3, 4], vec![0, 1, 2, 3, 4], vec![3]], vec![2]),
        ("-2:", vec![vec![4, 5], (0..5).collect(), (0..4).collect()], vec![]),
        ("::2", vec![vec![0, 2, 4], (0..5).collect(), (0..4).collect()], vec![]),
        ("1:4, ::-2, -1", vec![vec![1, 2, 3], vec![4, 2, 0], vec![3]], vec![2]),
        ("..., 0", vec![(0..6).collect(), (0..5).collect(), vec![0]], vec![2]),
        ("-1, 1, ...", vec![vec![5], vec![1], (0..4).collect()], vec![0, 1]),
        ("::-1, 4:1:-2, 1:100", vec![vec![5, 4, 3, 2, 1, 0], vec![4, 2], vec![1, 2, 3]], vec![]),
        ("2, 3, 1", vec![vec![2], vec![3], vec![1]], vec![0, 1, 2]),
        ("5:2", vec![vec![], (0..5).collect(), (0..4).collect()], vec![]),
        ("", vec![(0..6).collect(), (0..5).collect(), (0..4).collect()], vec![]),
    ];
    for (text, indices, dropped) in cases {
        let slice = Slice::parse(text).unwrap();
        let expected = pick(&a, &indices, &dropped);
        assert_eq!(read_array::<i64>(&Npy, &npy, Some(&slice)).unwrap(), expected, "npy {text:?}");
        assert_eq!(read_array::<i64>(&Zarr, &zarr, Some(&slice)).unwrap(), expected, "zarr {text:?}");
    }
    let err = read_array::<i64>(&Zarr, &zarr, Some(&Slice::parse("6").unwrap())).unwrap_err().to_string();
    assert_eq!(err, "index 6 is out of bounds for axis 0 with size 6");
    let err = Zarr.read(&zarr, &Region(vec![0..7, 0..5, 0..4])).unwrap_err().to_string();
    assert_eq!(err, "region [0:7, 0:5, 0:4] is outside an array of shape (6, 5, 4)");
}

#[test]
fn a_region_reads_only_the_chunks_it_overlaps() {
    let dir = TempDir::new().unwrap();
    let zarr = dir.path().join("a.zarr");
    let a = arr(&[100, 100], (0..10_000i32).map(|v| v + 1).collect());
    write_array(&Zarr, &a, &zarr, &zarr_options(Some(vec![10, 10]), Compression::Zstd)).unwrap();
    assert!(zarr.join("c/9/9").is_file());
    // Break every chunk outside rows 20..30 and columns 0..20.
    for i in 0..10 {
        for j in 0..10 {
            if i != 2 || j > 1 {
                std::fs::write(zarr.join(format!("c/{i}/{j}")), b"not zstd").unwrap();
            }
        }
    }
    let part = read_array::<i32>(&Zarr, &zarr, Some(&Slice::parse("21:29, 3:17").unwrap())).unwrap();
    assert_eq!(part, a.slice(ndarray::s![21..29, 3..17]).into_dyn().to_owned());
    assert!(read_array::<i32>(&Zarr, &zarr, None).is_err());
}

#[test]
fn zarr_metadata_is_plain_v3() {
    let dir = TempDir::new().unwrap();
    let zarr = dir.path().join("a.zarr");
    let a = arr(&[30, 7], (0..210u16).collect());
    write_array(&Zarr, &a, &zarr, &zarr_options(Some(vec![8, 7]), Compression::Zstd)).unwrap();
    let meta: serde_json::Value = serde_json::from_slice(&std::fs::read(zarr.join("zarr.json")).unwrap()).unwrap();
    assert_eq!(meta["zarr_format"], 3);
    assert_eq!(meta["node_type"], "array");
    assert_eq!(meta["data_type"], "uint16");
    assert_eq!(meta["chunk_grid"], json!({"name": "regular", "configuration": {"chunk_shape": [8, 7]}}));
    assert_eq!(meta["chunk_key_encoding"], json!({"name": "default", "configuration": {"separator": "/"}}));
    assert_eq!(meta["codecs"][0], json!({"name": "bytes", "configuration": {"endian": "little"}}));
    assert_eq!(meta["codecs"][1]["name"], "zstd");
    assert_eq!(meta["fill_value"], 0);
    assert!(meta.get("attributes").is_none_or(|a| a.get("_zarrs").is_none()), "{meta}");
    assert_eq!(
        Zarr.summarise(&zarr).unwrap(),
        json!({"dtype": "uint16", "shape": [30, 7], "chunks": [8, 7], "compression": "zstd", "zarr_format": 3})
    );
    assert_eq!(detect(&zarr).unwrap().name(), "zarr");

    let raw = dir.path().join("raw.zarr");
    write_array(&Zarr, &a, &raw, &zarr_options(Some(vec![8, 7]), Compression::None)).unwrap();
    assert_eq!(Zarr.summarise(&raw).unwrap()["compression"], "none");
    // Uncompressed chunks are the elements as they are, edge chunks padded to full size.
    assert_eq!(std::fs::read(raw.join("c/0/0")).unwrap().len(), 8 * 7 * 2);
    assert_eq!(std::fs::read(raw.join("c/3/0")).unwrap().len(), 8 * 7 * 2);
    assert_eq!(read_array::<u16>(&Zarr, &raw, None).unwrap(), a);

    // Writing into a folder that holds something else is refused.
    let err = write_array(&Zarr, &a, &raw, &WriteOptions::default()).unwrap_err().to_string();
    assert!(err.contains("folder that is not empty"), "{err}");
}

#[test]
fn chunk_options_are_checked() {
    let dir = TempDir::new().unwrap();
    let a = arr(&[10, 20], vec![0.0f64; 200]);
    let err = write_array(&Zarr, &a, &dir.path().join("a"), &zarr_options(Some(vec![5]), Compression::Zstd))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--chunks 5 has 1 sizes but the array has 2 axes (shape (10, 20))");
    let err = write_array(&Zarr, &a, &dir.path().join("b"), &zarr_options(Some(vec![5, 0]), Compression::Zstd))
        .unwrap_err()
        .to_string();
    assert_eq!(err, "--chunks 5,0: chunk sizes must be at least 1, axis 1 has 0");
    let zarr = dir.path().join("c");
    write_array(&Zarr, &a, &zarr, &zarr_options(Some(vec![4, 1000]), Compression::Zstd)).unwrap();
    assert_eq!(Zarr.info(&zarr).unwrap().chunks, Some(vec![4, 20]));
}

#[test]
fn typed_reads_check_the_dtype_and_format() {
    let dir = TempDir::new().unwrap();
    let npy = dir.path().join("a.npy");
    write_array(&Npy, &arr(&[2], vec![1.0f64, 2.0]), &npy, &WriteOptions::default()).unwrap();
    let err = read_array::<i32>(&Npy, &npy, None).unwrap_err().to_string();
    assert_eq!(err, "the array holds float64, not int32");
    let csv = trove_formats::by_name("csv").unwrap();
    let err = read_array::<f64>(csv, &npy, None).unwrap_err().to_string();
    assert_eq!(err, "csv is not an array format (array formats: npy, zarr)");
    assert_eq!(detect(&npy).unwrap().name(), "npy");
    assert_eq!(Npy.summarise(&npy).unwrap(), json!({"dtype": "float64", "shape": [2], "order": "C", "itemsize": 8}));
}

#[test]
fn edge_shapes_round_trip() {
    let dir = TempDir::new().unwrap();
    let scalar = arr(&[], vec![7.25f32]);
    let empty = arr(&[0, 3], Vec::<i16>::new());
    for (i, format) in [&Npy as &dyn Format, &Zarr].into_iter().enumerate() {
        let p = dir.path().join(format!("s{i}"));
        write_array(format, &scalar, &p, &WriteOptions::default()).unwrap();
        assert_eq!(read_array::<f32>(format, &p, None).unwrap(), scalar);
        let p = dir.path().join(format!("e{i}"));
        write_array(format, &empty, &p, &WriteOptions::default()).unwrap();
        assert_eq!(read_array::<i16>(format, &p, None).unwrap(), empty);
    }
    // A transposed (non-standard layout) array is written in its logical order.
    let t = arr(&[2, 3], (0..6u8).collect()).reversed_axes();
    let p = dir.path().join("t.zarr");
    write_array(&Zarr, &t, &p, &WriteOptions::default()).unwrap();
    assert_eq!(read_array::<u8>(&Zarr, &p, None).unwrap(), t);
}

fn preview(format: &dyn Format, path: &Path, head: Option<usize>, slice: Option<&str>) -> String {
    let options = PreviewOptions { head, columns: None, slice: slice.map(|s| Slice::parse(s).unwrap()) };
    let mut out = Vec::new();
    format.preview(path, &options, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn previews_show_dtype_shape_and_a_corner() {
    let dir = TempDir::new().unwrap();
    let npy = dir.path().join("a.npy");
    write_array(&Npy, &arr(&[2, 3], vec![1.5f64, -2.0, 3.0, 4.0, 5.0, 60.0]), &npy, &WriteOptions::default()).unwrap();
    assert_eq!(
        preview(&Npy, &npy, None, None),
        "dtype: float64  shape: (2, 3)\n[[ 1.5, -2.0,  3.0],\n [ 4.0,  5.0, 60.0]]\n"
    );
    assert_eq!(preview(&Npy, &npy, Some(1), None), "dtype: float64  shape: (2, 3)\n[[ 1.5, -2.0,  3.0],\n …]\n");
    assert_eq!(
        preview(&Npy, &npy, None, Some(":, -1")),
        "dtype: float64  shape: (2, 3)\nslice: :, -1  → shape: (2,)\n[ 3.0, 60.0]\n"
    );

    let zarr = dir.path().join("big.zarr");
    let big = arr(&[100, 100, 100], (0..1_000_000i32).collect());
    write_array(&Zarr, &big, &zarr, &zarr_options(Some(vec![50, 50, 50]), Compression::Zstd)).unwrap();
    let text = preview(&Zarr, &zarr, Some(2), None);
    let expected = "dtype: int32  shape: (100, 100, 100)  chunks: (50, 50, 50)  compression: zstd\n\
        [[[    0,     1,     2,     3,     4,     5,     6,     7, …],\n  \
        [  100,   101,   102,   103,   104,   105,   106,   107, …],\n  \
        [  200,   201,   202,   203,   204,   205,   206,   207, …],\n  \
        …],\n\n \
        [[10000, 10001, 10002, 10003, 10004, 10005, 10006, 10007, …],\n  \
        [10100, 10101, 10102, 10103, 10104, 10105, 10106, 10107, …],\n  \
        [10200, 10201, 10202, 10203, 10204, 10205, 10206, 10207, …],\n  \
        …],\n\n \
        …]\n";
    assert_eq!(text, expected);
    let text = preview(&Zarr, &zarr, None, Some("7, 8, 9"));
    assert!(text.ends_with("slice: 7, 8, 9  → shape: ()\n70809\n"), "{text}");
}

#[test]
fn streams_arrays_larger_than_one_block() {
    // 72 MB: more than one block of SLAB_BYTES, so writers and readers go through several.
    let dir = TempDir::new().unwrap();
    let rows = 1500usize;
    let cols = 6000usize;
    let a = ArrayD::from_shape_fn(IxDyn(&[rows, cols]), |i| (i[0] * cols + i[1]) as f64);
    let npy = dir.path().join("a.npy");
    let zarr = dir.path().join("a.zarr");
    let back = dir.path().join("b.npy");
    write_array(&Npy, &a, &npy, &WriteOptions::default()).unwrap();
    convert(&Npy, &npy, &Zarr, &zarr, &WriteOptions::default()).unwrap();
    convert(&Zarr, &zarr, &Npy, &back, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&npy).unwrap(), std::fs::read(&back).unwrap());
    assert_eq!(Zarr.info(&zarr).unwrap().chunks, Some(vec![375, 750]));
    let part = read_array::<f64>(&Zarr, &zarr, Some(&Slice::parse("100:1400:3, -5:").unwrap())).unwrap();
    assert_eq!(part, a.slice(ndarray::s![100..1400;3, cols - 5..]).into_dyn().to_owned());
    assert_eq!(read_array::<f64>(&Zarr, &zarr, None).unwrap(), a);
}

/// zarr-python 3 and numpy read what trove writes, and trove reads what they write. Runs where python3 has
/// numpy and zarr 3: `$TROVE_TEST_PYTHON` (scripts/test points it at the venv it makes), else `python3`.
/// Elsewhere it says loudly that it did not run, and with `CI` set it fails.
#[test]
fn python_reads_and_writes_the_same_arrays() {
    let python = std::env::var("TROVE_TEST_PYTHON").unwrap_or_else(|_| "python3".into());
    let python_ready = std::process::Command::new(&python)
        .args(["-c", "import numpy, zarr; assert int(zarr.__version__.split('.')[0]) >= 3"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !python_ready {
        let message = format!("NOT RUN: {python} lacks numpy and zarr 3 (scripts/test makes a venv with them)");
        assert!(std::env::var_os("CI").is_none(), "{message}");
        eprintln!("\n#### python_reads_and_writes_the_same_arrays {message}\n");
        return;
    }
    let dir = TempDir::new().unwrap();
    let d: PathBuf = dir.path().to_path_buf();
    let a = ArrayD::from_shape_fn(IxDyn(&[37, 11]), |i| Complex::new(i[0] as f64 - 0.5, i[1] as f64 * 2.0));
    write_array(&Zarr, &a, &d.join("t.zarr"), &zarr_options(Some(vec![8, 4]), Compression::Zstd)).unwrap();
    write_array(&Npy, &a, &d.join("t.npy"), &WriteOptions::default()).unwrap();
    let b = arr(&[5, 4], (0..20i16).collect());
    write_array(&Zarr, &b, &d.join("u.zarr"), &zarr_options(None, Compression::None)).unwrap();
    let script = r#"
import sys, numpy as np, zarr
d = sys.argv[1]
a = (np.arange(37)[:, None] - 0.5) + 1j * (np.arange(11)[None, :] * 2.0)
z = zarr.open_array(d + "/t.zarr", mode="r")
assert z.dtype == np.complex128 and z.shape == (37, 11) and z.chunks == (8, 4), (z.dtype, z.shape, z.chunks)
assert np.array_equal(z[:], a)
assert np.array_equal(np.load(d + "/t.npy"), a)
np.save(d + "/numpy.npy", a)
assert open(d + "/numpy.npy", "rb").read() == open(d + "/t.npy", "rb").read()
assert np.array_equal(zarr.open_array(d + "/u.zarr", mode="r")[:], np.arange(20, dtype="i2").reshape(5, 4))
for name, compressors in [("py-zstd", "auto"), ("py-none", None)]:
    w = zarr.create_array(d + "/" + name + ".zarr", shape=(9, 7), chunks=(4, 3), dtype="float32",
                          compressors=compressors)
    w[:] = np.arange(63, dtype="f4").reshape(9, 7)
w = zarr.create_array(d + "/py-gzip.zarr", shape=(9, 7), chunks=(4, 3), dtype="int64",
                      compressors=zarr.codecs.GzipCodec())
w[:] = np.arange(63).reshape(9, 7)
"#;
    let out = std::process::Command::new(&python).args(["-c", script, d.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let expected = arr(&[9, 7], (0..63).map(|v| v as f32).collect());
    for name in ["py-zstd", "py-none"] {
        let p = d.join(format!("{name}.zarr"));
        assert_eq!(detect(&p).unwrap().name(), "zarr");
        assert_eq!(read_array::<f32>(&Zarr, &p, None).unwrap(), expected, "{name}");
    }
    assert_eq!(Zarr.summarise(&d.join("py-none.zarr")).unwrap()["compression"], "none");
    let g = read_array::<i64>(&Zarr, &d.join("py-gzip.zarr"), Some(&Slice::parse("-1, ::3").unwrap())).unwrap();
    assert_eq!(g, arr(&[3], vec![56i64, 59, 62]));
    let again = d.join("again.npy");
    convert(&Npy, &d.join("numpy.npy"), &Zarr, &d.join("n.zarr"), &WriteOptions::default()).unwrap();
    convert(&Zarr, &d.join("n.zarr"), &Npy, &again, &WriteOptions::default()).unwrap();
    assert_eq!(std::fs::read(&again).unwrap(), std::fs::read(d.join("numpy.npy")).unwrap());
}

/// An array source that makes its values as asked, so the array is never in memory at once.
struct Counting(trove_formats::ArrayInfo);

impl trove_formats::ArraySource for Counting {
    fn info(&self) -> &trove_formats::ArrayInfo {
        &self.0
    }
    fn read(&mut self, region: &Region) -> trove_formats::Result<trove_formats::RawArray> {
        // One-dimensional: element i holds i as float64.
        let r = &region.0[0];
        let bytes = (r.start..r.end).flat_map(|i| (i as f64).to_le_bytes()).collect();
        trove_formats::RawArray::new(self.0.dtype, region.shape(), bytes)
    }
}

/// Peak resident memory since the last reset, in MiB (Linux).
fn peak_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").parse::<u64>().ok());
    kib.unwrap_or(0) / 1024
}

fn reset_peak() {
    // Writing 5 to clear_refs resets the peak resident set size.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The benchmark's shape: put a 10^8-element float64 array (800 MB) as Zarr, convert it to npy, read it whole
/// and read a 1% slice, printing time and peak memory of each step. Run by hand:
/// `cargo test -p trove-formats --release --test arrays -- --ignored --nocapture`.
#[test]
#[ignore]
fn benchmark_a_100_million_element_array() {
    let n = 100_000_000u64;
    let dir = TempDir::new().unwrap();
    let zarr = dir.path().join("big.zarr");
    let npy = dir.path().join("big.npy");
    let mut source = Counting(trove_formats::ArrayInfo::new(trove_formats::DType::F64, vec![n]));
    let step = |what: &str, f: &mut dyn FnMut()| {
        reset_peak();
        let start = std::time::Instant::now();
        f();
        eprintln!("{what}: {:.2?}, peak {} MiB", start.elapsed(), peak_mib());
    };
    step("write zarr (streamed)", &mut || Zarr.write(&mut source, &zarr, &WriteOptions::default()).unwrap());
    step("zarr -> npy (streamed)", &mut || convert(&Zarr, &zarr, &Npy, &npy, &WriteOptions::default()).unwrap());
    step("npy -> zarr (streamed)", &mut || {
        convert(&Npy, &npy, &Zarr, &dir.path().join("again.zarr"), &WriteOptions::default()).unwrap()
    });
    step("read zarr whole", &mut || assert_eq!(read_array::<f64>(&Zarr, &zarr, None).unwrap().len() as u64, n));
    let slice = Slice::parse("50000000:51000000").unwrap();
    step("read 1% slice", &mut || {
        let part = read_array::<f64>(&Zarr, &zarr, Some(&slice)).unwrap();
        assert_eq!(part[[0]], 5e7);
    });
    let strided = Slice::parse("::100").unwrap();
    step("read every 100th (1%)", &mut || {
        assert_eq!(read_array::<f64>(&Zarr, &zarr, Some(&strided)).unwrap().len(), 1_000_000)
    });
}
