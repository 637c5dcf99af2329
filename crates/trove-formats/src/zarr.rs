//! Zarr v3 arrays, through the zarrs crate: a folder holding `zarr.json` and one file per chunk.
//!
//! trove writes plain v3 that zarr-python 3 opens: a regular chunk grid, the default chunk key encoding (`/`),
//! the `bytes` codec (little-endian) followed by `zstd` unless asked for no compression, and fill value 0. It
//! reads any array zarrs can decode (bytes, zstd, gzip, crc32c, transpose, sharding; Zarr v2 too).
//!
//! Writes go a block of whole chunks at a time and reads a region at a time; within each, zarrs encodes and
//! decodes the chunks in parallel, and a region touches only the chunks it overlaps.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde_json::{Value, json};
use zarrs::array::builder::ArrayBuilderDataType;
use zarrs::array::codec::{BytesCodec, ZstdCodec};
use zarrs::array::data_type::{
    BoolDataType, Complex64DataType, Complex128DataType, ComplexFloat32DataType, ComplexFloat64DataType,
    Float16DataType, Float32DataType, Float64DataType, Int8DataType, Int16DataType, Int32DataType, Int64DataType,
    UInt8DataType, UInt16DataType, UInt32DataType, UInt64DataType,
};
use zarrs::array::{
    Array, ArrayBuilder, ArrayBytes, ArrayMetadataOptions, ArraySubset, DataType, Endianness, FillValue,
};
use zarrs::filesystem::FilesystemStore;
use zarrs::metadata_ext::data_type::NumpyTimeUnit;

use crate::array::{self, ArrayInfo, ArraySource, DType, RawArray, Region, SLAB_BYTES, Slice, elements, fmt_shape};
use crate::{ArrayFormat, Compression, Format, FormatError, Layout, PreviewOptions, Probe, Result, WriteOptions};

/// The Zarr (v3) format.
pub struct Zarr;

/// The zstd level trove compresses chunks with: most of zstd's ratio on numeric data at several hundred MB/s
/// per core; higher levels cost far more time than they save space.
pub const ZSTD_LEVEL: i32 = 3;

/// The uncompressed size trove aims its default chunks at. A few MiB per chunk is what Zarr's authors advise:
/// small enough that a slice reads little it does not need and that a block holds many chunks to compress in
/// parallel, large enough that per-chunk overhead (a file, a zstd frame) is negligible.
pub const TARGET_CHUNK_BYTES: u64 = 4 << 20;

/// The largest chunk trove writes: zarrs holds a whole chunk in memory to encode or decode it.
pub const MAX_CHUNK_BYTES: u64 = 1 << 30;

impl Format for Zarr {
    fn name(&self) -> &'static str {
        "zarr"
    }
    fn extension(&self) -> &'static str {
        "zarr"
    }
    fn media_type(&self) -> &'static str {
        "application/x-zarr"
    }
    fn layout(&self) -> Layout {
        Layout::Folder
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        if !probe.is_dir {
            return false;
        }
        // A v3 array (a v3 group is a folder of nodes, not one array), or a v2 array.
        let v3_array = std::fs::read(probe.path.join("zarr.json"))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<Value>(&bytes).ok())
            .is_some_and(|meta| meta.get("node_type").and_then(Value::as_str) == Some("array"));
        v3_array || probe.path.join(".zarray").is_file()
    }
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let (array, info) = open(stored)?;
        let zarr_format = match array.metadata() {
            zarrs::array::ArrayMetadata::V2(_) => 2,
            zarrs::array::ArrayMetadata::V3(_) => 3,
        };
        Ok(json!({
            "dtype": info.dtype.name(),
            "shape": info.shape,
            "chunks": info.chunks,
            "compression": info.compression,
            "zarr_format": zarr_format,
        }))
    }
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        array::write_preview(self, stored, options, out)
    }
    fn as_array(&self) -> Option<&dyn ArrayFormat> {
        Some(self)
    }
}

impl ArrayFormat for Zarr {
    fn info(&self, path: &Path) -> Result<ArrayInfo> {
        Ok(open(path)?.1)
    }

    fn read(&self, path: &Path, region: &Region) -> Result<RawArray> {
        let (array, info) = open(path)?;
        region.check_within(&info.shape)?;
        if region.elements() == 0 {
            return RawArray::new(info.dtype, region.shape(), Vec::new());
        }
        let subset = ArraySubset::new_with_ranges(&region.0);
        // zarrs reads and decodes only the chunks the subset overlaps, in parallel.
        let bytes: ArrayBytes<'static> =
            array.retrieve_array_subset(&subset).map_err(|e| zarr_error(path, &format!("reading {region}"), e))?;
        let mut bytes = bytes.into_fixed().map_err(|e| zarr_error(path, "reading", e))?.into_owned();
        array::native_to_le(&mut bytes, info.dtype);
        RawArray::new(info.dtype, region.shape(), bytes)
    }

    fn write(&self, source: &mut dyn ArraySource, dest: &Path, options: &WriteOptions) -> Result<()> {
        let info = source.info().clone();
        let dtype = info.dtype;
        let chunks = match &options.chunks {
            Some(chunks) => check_chunks(chunks, &info.shape, dtype)?,
            None => default_chunks(&info.shape, dtype),
        };
        prepare_folder(dest)?;
        let store = Arc::new(FilesystemStore::new(dest).map_err(|e| zarr_error(dest, "opening the folder", e))?);
        let (data_type, fill) = data_type_of(dtype).map_err(|e| zarr_error(dest, "choosing the data type", e))?;
        let mut builder = ArrayBuilder::new(info.shape.clone(), chunks.clone(), data_type, fill);
        // The spec leaves `endian` out for one-byte types.
        let endian = (dtype.size() > 1).then_some(Endianness::Little);
        builder.array_to_bytes_codec(Arc::new(BytesCodec::new(endian)));
        if options.compression == Compression::Zstd {
            builder.bytes_to_bytes_codecs(vec![Arc::new(ZstdCodec::new(ZSTD_LEVEL, false))]);
        }
        let array = builder.build(store, "/").map_err(|e| zarr_error(dest, "creating the array", e))?;

        let max_elements = (SLAB_BYTES / dtype.size() as u64).max(1);
        let block = array::chunk_block(&info.shape, &chunks, max_elements);
        for region in array::blocks(&info.shape, &block) {
            let raw = source.read(&region)?;
            if raw.dtype != dtype || raw.shape != region.shape() {
                return Err(FormatError::Invalid(format!(
                    "array source gave {} {} for region {region}, expected {dtype} {}",
                    raw.dtype,
                    fmt_shape(&raw.shape),
                    fmt_shape(&region.shape())
                )));
            }
            let mut bytes = raw.bytes;
            array::le_to_native(&mut bytes, dtype);
            // Blocks are whole chunks, so zarrs encodes each chunk once, in parallel, with no read-back (only
            // chunks cut by the array's edge are merged with the fill value).
            array
                .store_array_subset(&ArraySubset::new_with_ranges(&region.0), ArrayBytes::new_flen(bytes))
                .map_err(|e| zarr_error(dest, &format!("writing {region}"), e))?;
        }
        // Metadata last: a folder left by a failed write is not mistaken for a complete array. Without zarrs'
        // own attribute (its version), the same array always gives the same bytes.
        let metadata_options = ArrayMetadataOptions::default().with_include_zarrs_metadata(false);
        array.store_metadata_opt(&metadata_options).map_err(|e| zarr_error(dest, "writing zarr.json", e))
    }
}

fn zarr_error(path: &Path, doing: &str, error: impl std::fmt::Display) -> FormatError {
    FormatError::Zarr(format!("{}: {doing}: {error}", path.display()))
}

/// The files of a stored Zarr array (paths inside its folder) that hold the chunks a read of `slice` (all of
/// it when `None`) touches, given a folder holding the array's metadata alone. A read elsewhere (an object in
/// a bucket) fetches these and the metadata, nothing more: a chunk that is not stored reads as the fill value.
pub fn chunk_files(metadata_folder: &Path, slice: Option<&Slice>) -> Result<Vec<String>> {
    let (array, info) = open(metadata_folder)?;
    let selection = match slice {
        Some(slice) => slice.resolve(&info.shape)?,
        None => array::Selection::full(&info.shape),
    };
    let region = selection.region();
    if region.0.iter().any(|r| r.is_empty()) {
        return Ok(Vec::new());
    }
    let subset = ArraySubset::new_with_ranges(&region.0);
    let chunks = array
        .chunks_in_array_subset(&subset)
        .map_err(|e| zarr_error(metadata_folder, "finding the chunks of a slice", e))?
        .ok_or_else(|| zarr_error(metadata_folder, "finding the chunks of a slice", "the chunk grid cannot say"))?;
    Ok(chunks.indices().into_iter().map(|at| array.chunk_key(&at).as_str().to_string()).collect())
}

/// The names of the files that describe a Zarr array (as opposed to its chunks).
pub const METADATA_FILES: [&str; 5] = ["zarr.json", ".zarray", ".zattrs", ".zgroup", ".zmetadata"];

/// Opens the array in a folder and describes it.
fn open(path: &Path) -> Result<(Array<FilesystemStore>, ArrayInfo)> {
    if !path.is_dir() {
        return Err(FormatError::malformed(path, "not a Zarr array: not a folder"));
    }
    let store = Arc::new(FilesystemStore::new(path).map_err(|e| zarr_error(path, "opening", e))?);
    let array = Array::open(store, "/").map_err(|e| zarr_error(path, "opening the array", e))?;
    let metadata = serde_json::to_value(array.metadata()).map_err(|e| zarr_error(path, "reading metadata", e))?;
    let dtype = dtype_of(array.data_type(), &metadata).ok_or_else(|| {
        FormatError::malformed(
            path,
            format!(
                "unsupported Zarr data type {} (trove reads bool, integers, floats, complex numbers, \
                 numpy.datetime64, numpy.timedelta64 and fixed_length_utf32)",
                array.data_type().name_v3().unwrap_or_default()
            ),
        )
    })?;
    let chunks = metadata
        .pointer("/chunk_grid/configuration/chunk_shape")
        .or_else(|| metadata.get("chunks"))
        .and_then(Value::as_array)
        .and_then(|c| c.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>());
    let info = ArrayInfo { dtype, shape: array.shape().to_vec(), chunks, compression: Some(compression_of(&metadata)) };
    Ok((array, info))
}

/// The zarrs data type and fill value trove writes for an element type: numbers by their Zarr v3 names, times
/// and fixed-width text by the extension types zarr-python 3 writes for numpy's (`numpy.datetime64`,
/// `numpy.timedelta64`, `fixed_length_utf32`), whose fill value is NaT or the empty string.
fn data_type_of(dtype: DType) -> std::result::Result<(ArrayBuilderDataType, FillValue), String> {
    use std::num::{NonZeroU32, NonZeroU64};
    let time_unit = |unit: array::TimeUnit| -> std::result::Result<(NumpyTimeUnit, NonZeroU32), String> {
        let code = serde_json::from_value(json!(unit.code)).map_err(|e| format!("time unit {}: {e}", unit.code))?;
        Ok((code, NonZeroU32::new(unit.scale).ok_or("a zero time scale")?))
    };
    let nat = || FillValue::from(i64::MIN);
    Ok(match dtype {
        DType::DateTime64(unit) => {
            let (code, scale) = time_unit(unit)?;
            (zarrs::array::data_type::numpy_datetime64(code, scale).into(), nat())
        }
        DType::TimeDelta64(unit) => {
            let (code, scale) = time_unit(unit)?;
            (zarrs::array::data_type::numpy_timedelta64(code, scale).into(), nat())
        }
        DType::Utf32(n) => {
            let bytes = NonZeroU64::new(4 * u64::from(n)).ok_or("a zero-width string type")?;
            let data_type = zarrs::array::data_type::fixed_length_utf32(bytes).map_err(|e| e.to_string())?;
            (data_type.into(), FillValue::from(vec![0u8; dtype.size()]))
        }
        numeric => (numeric.name().into_owned().into(), FillValue::from(vec![0u8; numeric.size()])),
    })
}

/// The trove element type of a zarrs data type, if trove has one. Times and fixed-width text are read from the
/// array's metadata (their unit and width live there): a v3 `data_type` object, or a v2 numpy type string.
fn dtype_of(data_type: &DataType, metadata: &Value) -> Option<DType> {
    let d = data_type;
    let v3 = metadata.get("data_type");
    let config = |key: &str| v3.and_then(|t| t.pointer(&format!("/configuration/{key}")));
    match v3.and_then(|t| t.get("name").or(Some(t))).and_then(Value::as_str) {
        Some(name @ ("numpy.datetime64" | "numpy.timedelta64")) => {
            let code = config("unit")?.as_str()?;
            let scale = config("scale_factor").and_then(Value::as_u64).unwrap_or(1);
            let unit = array::TimeUnit::parse(&format!("[{scale}{code}]"))
                .or_else(|| (code == "generic").then_some(array::TimeUnit { code: "generic", scale: 1 }))?;
            return Some(if name == "numpy.datetime64" { DType::DateTime64(unit) } else { DType::TimeDelta64(unit) });
        }
        Some("fixed_length_utf32") => {
            let chars = config("length_bytes")?.as_u64()? / 4;
            return Some(DType::Utf32(u32::try_from(chars).ok().filter(|&n| n > 0)?));
        }
        _ => {}
    }
    // Zarr v2 keeps numpy's type string.
    if let Some(descr) = metadata.get("dtype").and_then(Value::as_str)
        && let Some((dtype @ (DType::DateTime64(_) | DType::TimeDelta64(_) | DType::Utf32(_)), _)) =
            DType::from_numpy_descr(descr)
    {
        return Some(dtype);
    }
    Some(if d.is::<BoolDataType>() {
        DType::Bool
    } else if d.is::<Int8DataType>() {
        DType::I8
    } else if d.is::<Int16DataType>() {
        DType::I16
    } else if d.is::<Int32DataType>() {
        DType::I32
    } else if d.is::<Int64DataType>() {
        DType::I64
    } else if d.is::<UInt8DataType>() {
        DType::U8
    } else if d.is::<UInt16DataType>() {
        DType::U16
    } else if d.is::<UInt32DataType>() {
        DType::U32
    } else if d.is::<UInt64DataType>() {
        DType::U64
    } else if d.is::<Float16DataType>() {
        DType::F16
    } else if d.is::<Float32DataType>() {
        DType::F32
    } else if d.is::<Float64DataType>() {
        DType::F64
    } else if d.is::<Complex64DataType>() || d.is::<ComplexFloat32DataType>() {
        DType::C64
    } else if d.is::<Complex128DataType>() || d.is::<ComplexFloat64DataType>() {
        DType::C128
    } else {
        return None;
    })
}

/// The compression codecs of an array's metadata, joined with `+` (`zstd`, `gzip`, `none`), looking inside
/// sharding. Codecs that only lay bytes out or check them (bytes, transpose, crc32c) are not compression.
fn compression_of(metadata: &Value) -> String {
    fn collect(codecs: &[Value], names: &mut Vec<String>) {
        for codec in codecs {
            let name = codec.get("name").and_then(Value::as_str).unwrap_or_default();
            match name {
                "sharding_indexed" => {
                    if let Some(inner) = codec.pointer("/configuration/codecs").and_then(Value::as_array) {
                        collect(inner, names);
                    }
                }
                "bytes" | "transpose" | "crc32c" | "" => {}
                other if !names.iter().any(|n| n == other) => names.push(other.to_string()),
                _ => {}
            }
        }
    }
    let mut names = Vec::new();
    if let Some(codecs) = metadata.get("codecs").and_then(Value::as_array) {
        collect(codecs, &mut names);
    } else if let Some(id) = metadata.pointer("/compressor/id").and_then(Value::as_str) {
        names.push(id.to_string());
    }
    if names.is_empty() { "none".to_string() } else { names.join("+") }
}

/// The default chunk shape: the whole array, halved along its longest chunk axis until a chunk holds at most
/// [`TARGET_CHUNK_BYTES`]. Halving the longest axis keeps chunks near-cubic, so slices along any axis touch
/// few chunks; a 10^8-element float64 vector gets 256 chunks of 3 MiB, a 10^4 x 10^4 one 625 x 625 chunks.
pub fn default_chunks(shape: &[u64], dtype: DType) -> Vec<u64> {
    let target = (TARGET_CHUNK_BYTES / dtype.size() as u64).max(1);
    let mut chunks: Vec<u64> = shape.iter().map(|&n| n.max(1)).collect();
    while elements(&chunks) > target {
        let (axis, &longest) = chunks.iter().enumerate().rev().max_by_key(|&(_, &n)| n).unwrap_or((0, &1));
        if longest <= 1 {
            break;
        }
        chunks[axis] = longest.div_ceil(2);
    }
    chunks
}

/// Checks a chunk shape asked for (`--chunks`): one size of at least 1 per axis. A size beyond its axis is cut
/// to the axis (a chunk larger than the array only costs memory).
pub fn check_chunks(chunks: &[u64], shape: &[u64], dtype: DType) -> Result<Vec<u64>> {
    if chunks.len() != shape.len() {
        return Err(FormatError::Invalid(format!(
            "--chunks {} has {} sizes but the array has {} axes (shape {})",
            join(chunks),
            chunks.len(),
            shape.len(),
            fmt_shape(shape)
        )));
    }
    if let Some(axis) = chunks.iter().position(|&c| c == 0) {
        return Err(FormatError::Invalid(format!(
            "--chunks {}: chunk sizes must be at least 1, axis {axis} has 0",
            join(chunks)
        )));
    }
    let chunks: Vec<u64> = chunks.iter().zip(shape).map(|(&c, &n)| c.min(n.max(1))).collect();
    let bytes = elements(&chunks).saturating_mul(dtype.size() as u64);
    if bytes > MAX_CHUNK_BYTES {
        return Err(FormatError::Invalid(format!(
            "--chunks {}: a chunk would hold {} MiB of {dtype}; at most {} MiB",
            join(&chunks),
            bytes >> 20,
            MAX_CHUNK_BYTES >> 20
        )));
    }
    Ok(chunks)
}

fn join(values: &[u64]) -> String {
    values.iter().map(u64::to_string).collect::<Vec<_>>().join(",")
}

/// Makes `dest` an empty folder to write an array into; an error if something is already there.
fn prepare_folder(dest: &Path) -> Result<()> {
    if dest.exists() {
        let mut entries = std::fs::read_dir(dest).map_err(FormatError::io(dest))?;
        if entries.next().is_some() {
            return Err(FormatError::Invalid(format!(
                "{}: cannot write a Zarr array into a folder that is not empty",
                dest.display()
            )));
        }
        return Ok(());
    }
    std::fs::create_dir_all(dest).map_err(FormatError::io(dest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_chunks_are_a_few_mib() {
        assert_eq!(default_chunks(&[100_000_000], DType::F64), vec![390_625]);
        assert_eq!(default_chunks(&[10_000, 10_000], DType::F64), vec![625, 625]);
        assert_eq!(default_chunks(&[1000, 1000], DType::F64), vec![500, 1000]);
        assert_eq!(default_chunks(&[10, 0], DType::U8), vec![10, 1]);
        assert_eq!(default_chunks(&[], DType::U8), Vec::<u64>::new());
        for shape in [vec![3u64, 5_000_000], vec![7, 300, 300, 3]] {
            let c = default_chunks(&shape, DType::F32);
            assert!(elements(&c) * 4 <= TARGET_CHUNK_BYTES);
            assert!(elements(&c) * 4 > TARGET_CHUNK_BYTES / 4, "{c:?}");
        }
    }

    #[test]
    fn chunk_checks() {
        assert_eq!(check_chunks(&[1000, 1000], &[500, 5000], DType::F64).unwrap(), vec![500, 1000]);
        let err = check_chunks(&[1000, 1000], &[10, 20, 30], DType::F64).unwrap_err().to_string();
        assert_eq!(err, "--chunks 1000,1000 has 2 sizes but the array has 3 axes (shape (10, 20, 30))");
        let err = check_chunks(&[10, 0], &[10, 20], DType::F64).unwrap_err().to_string();
        assert_eq!(err, "--chunks 10,0: chunk sizes must be at least 1, axis 1 has 0");
        let err = check_chunks(&[100_000, 100_000], &[100_000, 100_000], DType::U8).unwrap_err().to_string();
        assert!(err.contains("at most 1024 MiB"), "{err}");
    }

    #[test]
    fn names_compression() {
        let v3 = json!({"codecs": [{"name": "bytes"}, {"name": "zstd", "configuration": {"level": 0}}]});
        assert_eq!(compression_of(&v3), "zstd");
        let sharded = json!({"codecs": [{"name": "sharding_indexed", "configuration": {"codecs": [{"name": "bytes"}, {"name": "gzip"}]}}]});
        assert_eq!(compression_of(&sharded), "gzip");
        assert_eq!(compression_of(&json!({"codecs": [{"name": "bytes"}]})), "none");
        assert_eq!(compression_of(&json!({"compressor": {"id": "zlib"}})), "zlib");
        assert_eq!(compression_of(&json!({"compressor": null})), "none");
    }
}
