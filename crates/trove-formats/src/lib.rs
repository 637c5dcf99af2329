//! trove's format handlers: how each kind of data object is detected, imported, summarised, converted and
//! previewed. Tables (Parquet, CSV, Arrow IPC), n-d arrays (npy, Zarr v3), and any other file or folder.
//!
//! Everything here works on local paths and knows nothing of stores, logs or catalogs: the facade stages a
//! handler's output, hashes it and commits it.
//!
//! # Adding a format
//!
//! Write one module with a type that implements [`Format`] (and [`TableFormat`] when its data is a table, or
//! [`ArrayFormat`] when it is an n-d array), and list it in [`handlers`]. Conversions to and from every other
//! table or array format, `cat`, `get --as` and the summaries then work with no other change.
//!
//! ```
//! let csv = trove_formats::by_name("csv").unwrap();
//! assert_eq!(csv.extension(), "csv");
//! assert!(csv.as_table().is_some());
//! ```

mod error;

pub mod array;
pub mod arrow_ipc;
pub mod csv;
pub mod file;
pub mod folder;
pub mod media;
pub mod npy;
mod npz;
pub mod parquet;
mod science;
pub mod table;
pub mod zarr;

use std::io::{Read, Write};
use std::path::Path;

use ::arrow::record_batch::RecordBatchReader;
use serde_json::Value;

pub use array::{ArrayInfo, ArraySource, DType, RawArray, Region, Slice};
pub use csv::COMPRESSED_SUFFIXES;

pub use error::{FormatError, Result};
pub use table::TableSelect;

/// How a format's stored form sits on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// One file.
    File,
    /// A folder of files (a Zarr array, a folder object).
    Folder,
}

/// What detection looks at: the name, the first bytes of a file, and whether it is a folder.
#[derive(Debug, Clone, Copy)]
pub struct Probe<'a> {
    pub path: &'a Path,
    /// Up to [`PROBE_BYTES`] from the start of a file (empty for a folder).
    pub head: &'a [u8],
    pub is_dir: bool,
}

/// How many leading bytes [`detect`] reads.
pub const PROBE_BYTES: usize = 4096;

impl Probe<'_> {
    /// The lower-cased extension of the name, if it has one.
    pub fn extension(&self) -> Option<String> {
        self.path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase)
    }
}

/// Compression of a chunked array's chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Compression {
    #[default]
    Zstd,
    None,
}

impl std::str::FromStr for Compression {
    type Err = FormatError;
    fn from_str(s: &str) -> Result<Compression> {
        match s {
            "zstd" => Ok(Compression::Zstd),
            "none" => Ok(Compression::None),
            other => Err(FormatError::Invalid(format!("unknown compression {other:?} (zstd or none)"))),
        }
    }
}

/// Choices for writing a stored form.
#[derive(Debug, Clone, Default)]
pub struct WriteOptions {
    /// The chunk shape of a chunked array (default: chosen from its shape and element size).
    pub chunks: Option<Vec<u64>>,
    pub compression: Compression,
}

/// How a source is read when it is converted into a stored form (`put --as`).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReadOptions {
    pub csv: CsvOptions,
}

/// How a CSV file is read when it is imported; each choice left at its default is detected.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CsvOptions {
    /// The field separator (default: sniffed from the first lines: `,` `;` `|` tab, or runs of spaces).
    pub delimiter: Option<u8>,
    /// Whether the first line names the columns (default: decided by type evidence, as pandas and csvkit
    /// sniff). Without one, the columns are named `column_0`, `column_1`, ...
    pub header: Option<bool>,
    /// Lines skipped before the header (or the first row).
    pub skip_rows: u64,
    /// Lines starting with this byte are left out.
    pub comment: Option<u8>,
    /// The cells read as missing instead of [`csv::MISSING`]; the empty cell is missing whatever is given.
    pub missing: Option<Vec<String>>,
    /// Column types chosen instead of inferred, by column name.
    pub types: Vec<(String, ColumnType)>,
}

/// A column type a CSV import can be told to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnType {
    Int64,
    Float64,
    String,
    Date,
    Timestamp,
    Bool,
}

impl std::str::FromStr for ColumnType {
    type Err = FormatError;

    fn from_str(s: &str) -> Result<ColumnType> {
        Ok(match s {
            "int64" => ColumnType::Int64,
            "float64" => ColumnType::Float64,
            "string" => ColumnType::String,
            "date" => ColumnType::Date,
            "timestamp" => ColumnType::Timestamp,
            "bool" => ColumnType::Bool,
            other => {
                return Err(FormatError::Invalid(format!(
                    "unknown column type {other:?}: use int64, float64, string, date, timestamp or bool"
                )));
            }
        })
    }
}

/// What `cat` shows.
#[derive(Debug, Clone, Default)]
pub struct PreviewOptions {
    /// Rows of a table, or elements along the first axis of an array (default: a screenful).
    pub head: Option<usize>,
    /// Only these columns of a table.
    pub columns: Option<Vec<String>>,
    /// Only this part of an array.
    pub slice: Option<Slice>,
}

/// The bytes of a stored object read by range, from somewhere that is not a local file (an object in a
/// bucket): what lets a Parquet read fetch only the footer and the column chunks it needs.
pub trait RangeRead: Send + Sync {
    /// The object's size in bytes.
    fn size(&self) -> u64;
    /// The bytes of `range` (clamped to the object's end).
    fn read_range(&self, range: std::ops::Range<u64>) -> std::io::Result<bytes::Bytes>;
}

/// One format: detection, summary and preview. Tables and arrays also implement [`TableFormat`] or
/// [`ArrayFormat`], through which every conversion between formats runs.
pub trait Format: Send + Sync {
    /// The word recorded in object manifests and matched by `@format` (`parquet`, `npy`, `zarr`, ...).
    fn name(&self) -> &'static str;
    /// The file extension of the stored form, without the dot.
    fn extension(&self) -> &'static str;
    /// The media type of the stored form.
    fn media_type(&self) -> &'static str;
    fn layout(&self) -> Layout {
        Layout::File
    }
    /// Whether a file or folder is in this format.
    fn detect(&self, probe: &Probe<'_>) -> bool;
    /// The summary recorded in the manifest of a stored object (schema and row count, dtype and shape, ...).
    fn summarise(&self, stored: &Path) -> Result<Value>;
    /// Writes a readable preview of a stored object.
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()>;
    fn as_table(&self) -> Option<&dyn TableFormat> {
        None
    }
    fn as_array(&self) -> Option<&dyn ArrayFormat> {
        None
    }
}

/// Something reading a source decided or did on its own, for the front end to say.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadNote {
    /// One sentence, naming the file.
    pub text: String,
    /// A guess (a separator, a header) that reading options could decide otherwise.
    pub guessed: bool,
}

/// A format whose data is a table.
pub trait TableFormat: Send + Sync {
    /// Streams the stored table as record batches: all or some columns, all rows or a range of them.
    fn read(&self, path: &Path, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>>;
    /// Streams a whole source file to be converted, read as `options` say (only CSV has choices).
    fn read_source(&self, path: &Path, options: &ReadOptions) -> Result<Box<dyn RecordBatchReader + Send>> {
        let _ = options;
        self.read(path, &TableSelect::default())
    }
    /// What reading a source file (as `options` say) had to guess or fill in, one sentence each, for the front
    /// end to show: a separator or a missing header found by sniffing, short rows filled with nulls.
    fn guesses(&self, path: &Path, options: &ReadOptions) -> Result<Vec<ReadNote>> {
        let _ = (path, options);
        Ok(Vec::new())
    }
    /// Writes a stream of record batches as a new file at `dest`. Memory stays bounded by a few batches.
    fn write(&self, batches: &mut dyn RecordBatchReader, dest: &Path, options: &WriteOptions) -> Result<()>;
}

/// A format whose data is an n-d array.
pub trait ArrayFormat: Send + Sync {
    /// Element type, shape and chunking, without reading the data.
    fn info(&self, path: &Path) -> Result<ArrayInfo>;
    /// Reads one rectangular region, touching only the bytes (or chunks) it needs.
    fn read(&self, path: &Path, region: &Region) -> Result<RawArray>;
    /// Writes an array as a new file or folder at `dest`, pulling it from `source` a slab at a time.
    fn write(&self, source: &mut dyn ArraySource, dest: &Path, options: &WriteOptions) -> Result<()>;
}

/// Every format trove knows, most specific first; [`file::RawFile`] (anything) comes last.
pub fn handlers() -> &'static [&'static dyn Format] {
    &[
        &parquet::Parquet,
        &arrow_ipc::ArrowIpc,
        &npy::Npy,
        &npz::Npz,
        &zarr::Zarr,
        &csv::Csv,
        &folder::Folder,
        &file::RawFile,
    ]
}

/// The handler for a format word. A word that no handler claims (`json`, `text`, `image`, ...) is a plain
/// file to trove, so it gets [`file::RawFile`]; `None` only for words that cannot be a stored format.
pub fn by_name(name: &str) -> Option<&'static dyn Format> {
    handlers().iter().copied().find(|h| h.name() == name).or_else(|| {
        let word_like = !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        word_like.then_some(&file::RawFile as &dyn Format)
    })
}

/// The handler for a format word given by a user (`--as`): only formats trove can write.
pub fn target(name: &str) -> Result<&'static dyn Format> {
    handlers()
        .iter()
        .copied()
        .find(|h| h.name() == name && (h.as_table().is_some() || h.as_array().is_some()))
        .ok_or_else(|| {
            let known: Vec<&str> = handlers()
                .iter()
                .filter(|h| h.as_table().is_some() || h.as_array().is_some())
                .map(|h| h.name())
                .collect();
            FormatError::Invalid(format!("unknown format {name:?} (one of: {})", known.join(", ")))
        })
}

/// Detects the format of a local file or folder from its name and first bytes.
pub fn detect(path: &Path) -> Result<&'static dyn Format> {
    Ok(detect_with_head(path)?.0)
}

/// [`detect`], also giving back the first bytes it read (empty for a folder), for callers that sniff them
/// further (a plain file's media type) without reading the file again.
pub fn detect_with_head(path: &Path) -> Result<(&'static dyn Format, Vec<u8>)> {
    let meta = std::fs::metadata(path).map_err(FormatError::io(path))?;
    refuse_special(path, &meta)?;
    let mut head = Vec::new();
    if meta.is_file() {
        let file = std::fs::File::open(path).map_err(FormatError::io(path))?;
        file.take(PROBE_BYTES as u64).read_to_end(&mut head).map_err(FormatError::io(path))?;
    }
    let probe = Probe { path, head: &head, is_dir: meta.is_dir() };
    let format = handlers().iter().copied().find(|h| h.detect(&probe)).unwrap_or(&file::RawFile);
    Ok((format, head))
}

/// Refuses what is neither a regular file nor a folder, before anything opens it: opening a FIFO waits for
/// a writer forever, and a device such as `/dev/zero` never ends.
pub fn refuse_special(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::FileTypeExt;
    let t = meta.file_type();
    let kind = if t.is_file() || t.is_dir() {
        return Ok(());
    } else if t.is_fifo() {
        "a named pipe (FIFO)"
    } else if t.is_socket() {
        "a socket"
    } else if t.is_char_device() {
        "a character device"
    } else if t.is_block_device() {
        "a block device"
    } else {
        "neither a file nor a folder"
    };
    Err(FormatError::malformed(path, format!("{kind}: only regular files and folders can be stored")))
}

/// Rewrites the object at `src` (in format `from`) as format `to` at `dest`. Tables convert to tables and
/// arrays to arrays, streamed, so memory does not grow with the object.
pub fn convert(from: &dyn Format, src: &Path, to: &dyn Format, dest: &Path, options: &WriteOptions) -> Result<()> {
    convert_with(from, src, &ReadOptions::default(), to, dest, options)
}

/// [`convert`], reading the source as `read` says.
pub fn convert_with(
    from: &dyn Format,
    src: &Path,
    read: &ReadOptions,
    to: &dyn Format,
    dest: &Path,
    options: &WriteOptions,
) -> Result<()> {
    if let (Some(reader), Some(writer)) = (from.as_table(), to.as_table()) {
        let mut batches = reader.read_source(src, read)?;
        return writer.write(&mut *batches, dest, options);
    }
    if let (Some(reader), Some(writer)) = (from.as_array(), to.as_array()) {
        let mut source = array::FormatSource::open(reader, src)?;
        return writer.write(&mut source, dest, options);
    }
    Err(FormatError::Invalid(format!(
        "cannot convert {} to {}: {}",
        from.name(),
        to.name(),
        match (from.as_table().is_some(), from.as_array().is_some()) {
            (true, _) => "a table converts only to table formats (parquet, csv, arrow)",
            (_, true) => "an array converts only to array formats (npy, zarr)",
            _ => "only tables and arrays can be converted",
        }
    )))
}
