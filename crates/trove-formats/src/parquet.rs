//! Parquet: the stored form of tables. trove writes it zstd-compressed, with statistics and a page index, in
//! row groups small enough that reading a few rows or columns of a big table touches little of the file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::Array;
use arrow::record_batch::RecordBatchReader;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::statistics::StatisticsConverter;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelector,
};
use parquet::basic::{Compression as Codec, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, ParquetMetaData};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use serde_json::Value;

use crate::RangeRead;
use crate::table::{self, TableStats, Window};
use crate::{
    Compression, Format, FormatError, Layout, PreviewOptions, Probe, Result, TableFormat, TableSelect, WriteOptions,
};

/// The Parquet format.
pub struct Parquet;

/// Most rows in one row group of the Parquet files trove writes.
///
/// A row group is the unit a reader skips or fetches whole when it wants a range of rows, and the unit the
/// writer holds in memory before flushing. The parquet crate's default (1Mi rows) makes both large: a
/// 100-row read of a ten-column table would decode ~80 MB. 128Ki rows keeps a row group of ten 8-byte
/// columns near 10 MB before compression, a sensible unit of I/O, while a 10^7-row table still has only ~80
/// row groups, so footers and per-group overheads stay small. Pages (1 MB) and the page index narrow reads
/// inside a group further.
pub const ROW_GROUP_ROWS: usize = 128 * 1024;

/// Most bytes in one row group, so that tables of long texts still flush (and free) their buffers often.
const ROW_GROUP_BYTES: usize = 128 * 1024 * 1024;

/// zstd level 3: zstd's own default, most of the ratio of higher levels at several times their speed.
const ZSTD_LEVEL: i32 = 3;

/// Rows per record batch when reading.
const BATCH_ROWS: usize = 8192;

const MAGIC: &[u8] = b"PAR1";

impl Format for Parquet {
    fn name(&self) -> &'static str {
        "parquet"
    }
    fn extension(&self) -> &'static str {
        "parquet"
    }
    fn media_type(&self) -> &'static str {
        "application/vnd.apache.parquet"
    }
    fn layout(&self) -> Layout {
        Layout::File
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        !probe.is_dir && probe.head.starts_with(MAGIC)
    }

    /// Rows, schema, nulls and bounds per column, from the footer alone: no data is read.
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let (_, metadata) = open(stored, false)?;
        let schema = metadata.schema();
        let parquet_schema = metadata.parquet_schema();
        let file = metadata.metadata();
        let groups = file.row_groups();
        let mut stats = TableStats::new(schema);
        stats.set_rows(u64::try_from(file.file_metadata().num_rows()).unwrap_or(0));
        let group_rows: Vec<u64> = groups.iter().map(|g| u64::try_from(g.num_rows()).unwrap_or(0)).collect();
        for (column, field) in stats.columns_mut().iter_mut().zip(schema.fields()) {
            // The footer's statistics do not count NaNs.
            column.set_nans(None);
            // Nested columns have no single statistic; their bounds and nulls stay unknown.
            let converter = match StatisticsConverter::try_new(field.name(), schema, parquet_schema) {
                Ok(converter) if converter.parquet_column_index().is_some() => converter,
                _ => {
                    column.set_nulls(None);
                    column.forget_bounds();
                    continue;
                }
            };
            let (Ok(mins), Ok(maxes), Ok(nulls)) = (
                converter.row_group_mins(groups),
                converter.row_group_maxes(groups),
                converter.row_group_null_counts(groups),
            ) else {
                // Statistics this reader cannot decode are statistics the summary goes without.
                column.set_nulls(None);
                column.forget_bounds();
                continue;
            };
            column.set_nulls((nulls.null_count() == 0).then(|| nulls.values().iter().sum()));
            // A row group with values but no min or max (written without statistics) leaves the column's
            // bounds unknown; one that holds only nulls has none to give.
            let complete = (0..groups.len()).all(|g| {
                (mins.is_valid(g) && maxes.is_valid(g)) || (nulls.is_valid(g) && nulls.value(g) == group_rows[g])
            });
            if complete {
                column.add_bounds(mins.as_ref(), maxes.as_ref());
            } else {
                column.forget_bounds();
            }
        }
        let mut summary = stats.to_json();
        pandas_index(file, &mut summary);
        summary.insert("row_groups".into(), groups.len().into());
        summary.insert("compression".into(), compression(file).map_or(Value::Null, Value::from));
        Ok(Value::Object(summary))
    }

    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let (_, metadata) = open(stored, false)?;
        let rows = u64::try_from(metadata.metadata().file_metadata().num_rows()).unwrap_or(0);
        table::preview_table(self, stored, options, rows, out)
    }

    fn as_table(&self) -> Option<&dyn TableFormat> {
        Some(self)
    }
}

impl TableFormat for Parquet {
    /// Reads only the row groups (and, through the page index, the pages) that hold the rows asked for, and
    /// only the columns asked for.
    fn read(&self, path: &Path, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>> {
        let (file, metadata) = open(path, select.rows.is_some())?;
        read_from(file, metadata, path, select)
    }

    /// Streams batches into a new Parquet file, holding at most one row group in memory.
    fn write(&self, batches: &mut dyn RecordBatchReader, dest: &Path, options: &WriteOptions) -> Result<()> {
        let written = write_file(batches, dest, options);
        if written.is_err() {
            // A half-written file is no use to anyone; the error says what went wrong.
            let _ = std::fs::remove_file(dest);
        }
        written
    }
}

/// Reads a Parquet object by byte ranges (an object in a bucket): the footer, then only the column chunks
/// (and pages) of the columns and rows asked for. `name` is said in errors.
pub fn read_ranged(
    source: Arc<dyn RangeRead>,
    name: &Path,
    select: &TableSelect,
) -> Result<Box<dyn RecordBatchReader + Send>> {
    let ranges = Ranges::new(source);
    let metadata = load_metadata(&ranges, name, select.rows.is_some())?;
    read_from(ranges, metadata, name, select)
}

/// [`Format::preview`] of a Parquet object read by byte ranges.
pub fn preview_ranged(
    source: Arc<dyn RangeRead>,
    name: &Path,
    options: &crate::PreviewOptions,
    out: &mut dyn Write,
) -> Result<()> {
    let ranges = Ranges::new(source);
    // The page index lets the first rows be read without the rest of their row group.
    let metadata = load_metadata(&ranges, name, true)?;
    let rows = u64::try_from(metadata.metadata().file_metadata().num_rows()).unwrap_or(0);
    table::preview_with(|select| read_from(ranges, metadata, name, select), options, rows, out)
}

/// The columns and rows `select` asks for, from a Parquet source whose footer was read.
fn read_from<R: ChunkReader + 'static>(
    file: R,
    metadata: ArrowReaderMetadata,
    path: &Path,
    select: &TableSelect,
) -> Result<Box<dyn RecordBatchReader + Send>> {
    {
        let schema = metadata.schema().clone();
        let wanted = table::column_indices(&schema, select.columns.as_deref(), path)?;
        let mut builder =
            ParquetRecordBatchReaderBuilder::new_with_metadata(file, metadata.clone()).with_batch_size(BATCH_ROWS);
        // Parquet reads the chosen columns in file order; `order` puts them back in the order asked for.
        let mut order = None;
        if let Some(wanted) = &wanted {
            let mut roots = wanted.clone();
            roots.sort_unstable();
            roots.dedup();
            builder = builder.with_projection(ProjectionMask::roots(metadata.parquet_schema(), roots.iter().copied()));
            let positions: Vec<usize> = wanted.iter().map(|i| roots.partition_point(|r| r < i)).collect();
            if !positions.iter().copied().eq(0..roots.len()) {
                order = Some(positions);
            }
        }
        if let Some(rows) = &select.rows {
            let (groups, selection) = plan_rows(metadata.metadata(), rows);
            builder = builder.with_row_groups(groups).with_row_selection(selection);
        }
        let reader = builder.build().map_err(|e| unreadable(path, e))?;
        let reader: Box<dyn RecordBatchReader + Send> = match order {
            None => Box::new(reader),
            Some(order) => {
                let schema = reader.schema();
                Box::new(Window::new(reader, &schema, Some(order), 0, None)?)
            }
        };
        Ok(Box::new(KeepMetadata::new(reader, schema.metadata())))
    }
}

/// A [`RangeRead`] as Parquet's reader takes it. Parquet reads a page's header through a reader, then the
/// page's bytes: the window fetched for the header is kept, so that the page (and often the next header)
/// is served from it rather than fetched again.
struct Ranges {
    source: Arc<dyn RangeRead>,
    /// The last window fetched: where it starts, and its bytes.
    window: Arc<std::sync::Mutex<(u64, bytes::Bytes)>>,
}

impl Ranges {
    fn new(source: Arc<dyn RangeRead>) -> Ranges {
        Ranges { source, window: Default::default() }
    }
}

/// Reads `start..end` of `source`, using what `window` holds of it and keeping what was fetched.
fn read_through(
    source: &dyn RangeRead,
    window: &std::sync::Mutex<(u64, bytes::Bytes)>,
    start: u64,
    end: u64,
) -> std::io::Result<bytes::Bytes> {
    let mut held = window.lock().unwrap_or_else(|p| p.into_inner());
    let (at, bytes) = &*held;
    let held_end = at + bytes.len() as u64;
    if start >= *at && end <= held_end {
        return Ok(bytes.slice((start - at) as usize..(end - at) as usize));
    }
    if start >= *at && start < held_end {
        // The front is held: fetch the rest only.
        let mut joined = Vec::with_capacity((end - start) as usize);
        joined.extend_from_slice(&bytes[(start - at) as usize..]);
        joined.extend_from_slice(&source.read_range(held_end..end)?);
        let joined = bytes::Bytes::from(joined);
        *held = (start, joined.clone());
        return Ok(joined);
    }
    let fetched = source.read_range(start..end)?;
    *held = (start, fetched.clone());
    Ok(fetched)
}

impl Length for Ranges {
    fn len(&self) -> u64 {
        self.source.size()
    }
}

impl ChunkReader for Ranges {
    type T = RangeReader;

    /// A reader from `start` on, fetching a window at a time (Parquet reads page headers this way).
    fn get_read(&self, start: u64) -> parquet::errors::Result<RangeReader> {
        Ok(RangeReader { source: self.source.clone(), window: self.window.clone(), next: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<bytes::Bytes> {
        let end = start.saturating_add(length as u64).min(self.source.size());
        read_through(self.source.as_ref(), &self.window, start.min(end), end)
            .map_err(|e| ParquetError::External(Box::new(e)))
    }
}

/// Sequential reads over a [`RangeRead`], [`RANGE_WINDOW`] bytes a request.
struct RangeReader {
    source: Arc<dyn RangeRead>,
    window: Arc<std::sync::Mutex<(u64, bytes::Bytes)>>,
    next: u64,
}

/// How much one sequential read of a ranged source fetches at a time.
const RANGE_WINDOW: u64 = 64 * 1024;

impl std::io::Read for RangeReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        let size = self.source.size();
        if self.next >= size || out.is_empty() {
            return Ok(0);
        }
        let held = {
            let held = self.window.lock().unwrap_or_else(|p| p.into_inner());
            let held_end = held.0 + held.1.len() as u64;
            (self.next >= held.0 && self.next < held_end).then(|| held.1.slice((self.next - held.0) as usize..))
        };
        let available = match held {
            Some(bytes) => bytes,
            None => {
                let end = self.next.saturating_add(RANGE_WINDOW).min(size);
                read_through(self.source.as_ref(), &self.window, self.next, end)?
            }
        };
        let n = out.len().min(available.len());
        out[..n].copy_from_slice(&available[..n]);
        self.next += n as u64;
        Ok(n)
    }
}

/// The batches of a Parquet reader under a schema carrying the file's key-value metadata, which the reader's
/// own schema drops: pandas keeps what Arrow types cannot say there (nullable integers, the index), and a
/// table read back without it comes out changed (`Int64` with nulls as `float64`).
struct KeepMetadata {
    inner: Box<dyn RecordBatchReader + Send>,
    schema: arrow::datatypes::SchemaRef,
}

impl KeepMetadata {
    fn new(inner: Box<dyn RecordBatchReader + Send>, metadata: &std::collections::HashMap<String, String>) -> Self {
        let schema = inner.schema();
        let schema = std::sync::Arc::new(schema.as_ref().clone().with_metadata(metadata.clone()));
        KeepMetadata { inner, schema }
    }
}

impl Iterator for KeepMetadata {
    type Item = std::result::Result<arrow::record_batch::RecordBatch, arrow::error::ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        self.inner.next().map(|batch| batch.and_then(|b| b.with_schema(self.schema.clone())))
    }
}

impl RecordBatchReader for KeepMetadata {
    fn schema(&self) -> arrow::datatypes::SchemaRef {
        self.schema.clone()
    }
}

/// Columns past which a table counts as very wide (see `write_file`).
const WIDE_COLUMNS: usize = 2000;

fn write_file(batches: &mut dyn RecordBatchReader, dest: &Path, options: &WriteOptions) -> Result<()> {
    let codec = match options.compression {
        Compression::Zstd => Codec::ZSTD(ZstdLevel::try_new(ZSTD_LEVEL)?),
        Compression::None => Codec::UNCOMPRESSED,
    };
    let wide = batches.schema().fields().len() > WIDE_COLUMNS;
    let properties = WriterProperties::builder()
        .set_dictionary_enabled(!wide)
        .set_compression(codec)
        .set_max_row_group_row_count(Some(ROW_GROUP_ROWS))
        .set_max_row_group_bytes(Some(ROW_GROUP_BYTES))
        .set_statistics_enabled(EnabledStatistics::Page)
        .build();
    let file = File::create(dest).map_err(FormatError::io(dest))?;
    let cannot = |e: ParquetError| FormatError::Invalid(format!("cannot write {} as Parquet: {e}", dest.display()));
    if wide {
        let out = write_column_by_column(batches, BufWriter::new(file), properties, &cannot)?;
        return out.into_inner().map(drop).map_err(|e| FormatError::io(dest)(e.into_error()));
    }
    let mut writer = ArrowWriter::try_new(BufWriter::new(file), batches.schema(), Some(properties)).map_err(cannot)?;
    for batch in batches {
        writer.write(&batch.map_err(table::from_arrow)?).map_err(cannot)?;
    }
    let out = writer.into_inner().map_err(cannot)?;
    out.into_inner().map_err(|e| FormatError::io(dest)(e.into_error()))?;
    Ok(())
}

/// Writes a very wide table one column at a time. `ArrowWriter` keeps a writer for every column of the row
/// group at once, each with its own encoders, buffers and compression context (about 17 KB a column with
/// zstd: 100,000 columns took 1.9 GB for 600 KB of data). Here a row group's batches are held as they are
/// (bounded by `ROW_GROUP_ROWS` and `ROW_GROUP_BYTES`, so by the data) and each column is encoded, closed
/// and appended before the next one's writer exists.
#[allow(deprecated)] // `get_column_writers` is the one way to make the writers of a single column.
fn write_column_by_column<W: Write + Send>(
    batches: &mut dyn RecordBatchReader,
    out: W,
    mut properties: WriterProperties,
    cannot: &dyn Fn(ParquetError) -> FormatError,
) -> Result<W> {
    use parquet::arrow::arrow_writer::{compute_leaves, get_column_writers};
    use parquet::arrow::{ArrowSchemaConverter, add_encoded_arrow_schema_to_metadata};
    use parquet::file::writer::SerializedFileWriter;

    let schema = batches.schema();
    add_encoded_arrow_schema_to_metadata(&schema, &mut properties);
    let properties = std::sync::Arc::new(properties);
    let converter = ArrowSchemaConverter::new().with_coerce_types(properties.coerce_types());
    let descriptor = converter.convert(&schema).map_err(cannot)?;
    let mut writer =
        SerializedFileWriter::new(out, descriptor.root_schema_ptr(), properties.clone()).map_err(cannot)?;
    drop(descriptor);
    let mut group: Vec<arrow::record_batch::RecordBatch> = Vec::new();
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut batches = batches.peekable();
    while let Some(batch) = batches.next() {
        let batch = batch.map_err(table::from_arrow)?;
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        group.push(batch);
        if rows < ROW_GROUP_ROWS && bytes < ROW_GROUP_BYTES && batches.peek().is_some() {
            continue;
        }
        let mut row_group = writer.next_row_group().map_err(cannot)?;
        for (i, field) in schema.fields().iter().enumerate() {
            let single = std::sync::Arc::new(arrow::datatypes::Schema::new(vec![field.clone()]));
            let mut columns = get_column_writers(&converter.convert(&single).map_err(cannot)?, &properties, &single)
                .map_err(cannot)?;
            for batch in &group {
                let leaves = compute_leaves(field, batch.column(i)).map_err(cannot)?;
                for (column, leaf) in columns.iter_mut().zip(&leaves) {
                    column.write(leaf).map_err(cannot)?;
                }
            }
            for column in columns {
                column.close().map_err(cannot)?.append_to_row_group(&mut row_group).map_err(cannot)?;
            }
        }
        row_group.close().map_err(cannot)?;
        group.clear();
        (rows, bytes) = (0, 0);
    }
    writer.into_inner().map_err(cannot)
}

/// A table pandas wrote keeps its index as columns (`__index_level_0__`) or as a range, named in the
/// `pandas` footer metadata: the summary lists those columns under `index`, not among the columns.
fn pandas_index(file: &ParquetMetaData, summary: &mut serde_json::Map<String, Value>) {
    let Some(text) = file
        .file_metadata()
        .key_value_metadata()
        .and_then(|kv| kv.iter().find(|e| e.key == "pandas"))
        .and_then(|e| e.value.as_deref())
    else {
        return;
    };
    let Ok(pandas) = serde_json::from_str::<Value>(text) else { return };
    let Some(indexes) = pandas.get("index_columns").and_then(Value::as_array).filter(|i| !i.is_empty()) else {
        return;
    };
    let Some(Value::Array(columns)) = summary.get_mut("columns") else { return };
    let mut index = Vec::new();
    for entry in indexes {
        match entry {
            Value::String(name) => {
                if let Some(at) = columns.iter().position(|c| c["name"] == *name) {
                    index.push(columns.remove(at));
                }
            }
            // A RangeIndex: start, stop, step (and a name), no column.
            Value::Object(range) => index.push(Value::Object(range.clone())),
            _ => {}
        }
    }
    summary.insert("index".into(), Value::Array(index));
}

/// Opens a Parquet file and reads its footer (and, for reads of some rows, its page index).
fn open(path: &Path, page_index: bool) -> Result<(File, ArrowReaderMetadata)> {
    let file = File::open(path).map_err(FormatError::io(path))?;
    let metadata = load_metadata(&file, path, page_index)?;
    Ok((file, metadata))
}

/// Reads a Parquet source's footer (and, for reads of some rows, its page index).
fn load_metadata<R: ChunkReader>(source: &R, path: &Path, page_index: bool) -> Result<ArrowReaderMetadata> {
    // The page index lets a read of some rows skip pages inside a row group; a file may not have one.
    let policy = if page_index { PageIndexPolicy::Optional } else { PageIndexPolicy::Skip };
    let options = ArrowReaderOptions::new().with_page_index_policy(policy);
    ArrowReaderMetadata::load(source, options).map_err(|e| unreadable(path, e))
}

fn unreadable(path: &Path, e: ParquetError) -> FormatError {
    match e {
        ParquetError::ArrowError(message) => FormatError::malformed(path, message),
        other => FormatError::malformed(path, format!("not a readable Parquet file: {other}")),
    }
}

/// The row groups that hold `rows`, and which of their rows to keep (counted over those groups only).
fn plan_rows(metadata: &ParquetMetaData, rows: &Range<u64>) -> (Vec<usize>, RowSelection) {
    let mut groups = Vec::new();
    let mut selectors = Vec::new();
    let mut group_start = 0u64;
    for (index, group) in metadata.row_groups().iter().enumerate() {
        let start = group_start;
        let end = start + u64::try_from(group.num_rows()).unwrap_or(0);
        group_start = end;
        let (from, to) = (rows.start.max(start), rows.end.min(end));
        if from >= to {
            continue;
        }
        groups.push(index);
        if from > start {
            selectors.push(RowSelector::skip((from - start) as usize));
        }
        selectors.push(RowSelector::select((to - from) as usize));
        if end > to {
            selectors.push(RowSelector::skip((end - to) as usize));
        }
    }
    (groups, RowSelection::from(selectors))
}

/// The compression of the file's column chunks: one name (`zstd`, `snappy`, `none`, ...), several joined by
/// `+` when chunks differ, `None` for a file without row groups.
fn compression(metadata: &ParquetMetaData) -> Option<String> {
    let mut names: Vec<&str> = Vec::new();
    for column in metadata.row_groups().iter().flat_map(|g| g.columns()) {
        let name = match column.compression() {
            Codec::UNCOMPRESSED => "none",
            Codec::SNAPPY => "snappy",
            Codec::GZIP(_) => "gzip",
            Codec::LZO => "lzo",
            Codec::BROTLI(_) => "brotli",
            Codec::LZ4 => "lz4",
            Codec::ZSTD(_) => "zstd",
            Codec::LZ4_RAW => "lz4_raw",
        };
        if !names.contains(&name) {
            names.push(name);
        }
    }
    (!names.is_empty()).then(|| names.join("+"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, RecordBatch, RecordBatchIterator, StringArray};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    fn numbers(path: &Path, rows: i64, batch: i64) {
        let schema =
            Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false), Field::new("s", DataType::Utf8, true)]));
        let batches: Vec<_> = (0..rows)
            .step_by(batch as usize)
            .map(|start| {
                let end = (start + batch).min(rows);
                RecordBatch::try_new(
                    schema.clone(),
                    vec![
                        Arc::new(Int64Array::from_iter_values(start..end)),
                        Arc::new(StringArray::from_iter((start..end).map(|i| (i % 3 != 0).then(|| format!("s{i}"))))),
                    ],
                )
            })
            .collect();
        let mut reader = RecordBatchIterator::new(batches, schema);
        Parquet.write(&mut reader, path, &WriteOptions::default()).unwrap();
    }

    #[test]
    fn ranges_read_only_their_row_groups() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        let rows = ROW_GROUP_ROWS as i64 * 2 + 10;
        numbers(&path, rows, 10_000);
        let (_, metadata) = open(&path, false).unwrap();
        assert_eq!(metadata.metadata().num_row_groups(), 3);
        let edge = ROW_GROUP_ROWS as u64;
        let (groups, _) = plan_rows(metadata.metadata(), &(edge - 5..edge + 5));
        assert_eq!(groups, vec![0, 1]);
        let (groups, _) = plan_rows(metadata.metadata(), &(edge * 2 + 1..edge * 2 + 3));
        assert_eq!(groups, vec![2]);
        let select = TableSelect::default().with_columns(["i"]).with_rows(edge - 5..edge + 5);
        let values: Vec<i64> = Parquet
            .read(&path, &select)
            .unwrap()
            .flat_map(|b| b.unwrap().column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(values, (edge as i64 - 5..edge as i64 + 5).collect::<Vec<_>>());
    }

    /// A table wider than `WIDE_COLUMNS`, with nulls, strings, a struct (two leaves) and a list.
    fn wide_batches(batches: usize, rows: usize) -> (Arc<Schema>, Vec<RecordBatch>) {
        use arrow::array::{ArrayRef, ListArray, StructArray};
        use arrow::datatypes::Fields;
        let inner = Fields::from(vec![Field::new("x", DataType::Int64, true), Field::new("y", DataType::Utf8, true)]);
        let mut fields = vec![
            Field::new("s", DataType::Utf8, true),
            Field::new("st", DataType::Struct(inner.clone()), true),
            Field::new_list("l", Field::new_list_field(DataType::Int64, true), true),
        ];
        fields.extend((0..WIDE_COLUMNS).map(|i| Field::new(format!("c{i}"), DataType::Int64, true)));
        let schema = Arc::new(Schema::new(fields));
        let batches = (0..batches)
            .map(|b| {
                let base = (b * rows) as i64;
                let ints = |k: i64| -> ArrayRef {
                    Arc::new(Int64Array::from_iter(
                        (0..rows as i64).map(|r| ((r + k) % 4 != 0).then_some(base + r * k)),
                    ))
                };
                let mut columns: Vec<ArrayRef> = vec![
                    Arc::new(StringArray::from_iter((0..rows).map(|r| (r % 3 != 0).then(|| format!("é{base}-{r}"))))),
                    Arc::new(StructArray::new(
                        inner.clone(),
                        vec![ints(1), Arc::new(StringArray::from_iter_values((0..rows).map(|r| format!("{r}"))))],
                        None,
                    )),
                    Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                        (0..rows as i64).map(|r| (r % 2 == 0).then(|| vec![Some(r), None, Some(base)])),
                    )),
                ];
                columns.extend((0..WIDE_COLUMNS as i64).map(ints));
                RecordBatch::try_new(schema.clone(), columns).unwrap()
            })
            .collect();
        (schema, batches)
    }

    #[test]
    fn a_very_wide_table_written_column_by_column_reads_back_the_same() {
        let dir = tempfile::tempdir().unwrap();
        for (n, rows) in [(3, 7), (0, 0)] {
            let path = dir.path().join(format!("wide{n}.parquet"));
            let (schema, batches) = wide_batches(n, rows);
            let mut reader = RecordBatchIterator::new(batches.clone().into_iter().map(Ok), schema.clone());
            Parquet.write(&mut reader, &path, &WriteOptions::default()).unwrap();
            let back: Vec<RecordBatch> =
                Parquet.read(&path, &TableSelect::default()).unwrap().map(|b| b.unwrap()).collect();
            let read_schema = back.first().map(|b| b.schema()).unwrap_or_else(|| schema.clone());
            assert_eq!(read_schema.fields(), schema.fields());
            let want = arrow::compute::concat_batches(&schema, &batches).unwrap();
            let got = arrow::compute::concat_batches(&schema, &back).unwrap();
            assert_eq!(got, want, "{n} batches of {rows} rows");
            assert_eq!(Parquet.summarise(&path).unwrap()["rows"], (n * rows) as u64);
        }
    }

    #[test]
    fn pandas_index_signed_zero_and_nans_in_summaries() {
        use arrow::array::Float64Array;
        use parquet::file::metadata::KeyValue;
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(Schema::new(vec![
            Field::new("x", DataType::Float64, true),
            Field::new("__index_level_0__", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Float64Array::from(vec![-0.0, 0.0, f64::NAN, 1.5])),
                Arc::new(Int64Array::from(vec![10, 11, 12, 13])),
            ],
        )
        .unwrap();
        let cases = [
            (r#"{"index_columns": ["__index_level_0__"], "columns": []}"#, "__index_level_0__"),
            (r#"{"index_columns": [{"kind": "range", "name": null, "start": 0, "stop": 4, "step": 1}]}"#, "range"),
        ];
        for (i, (pandas, index)) in cases.into_iter().enumerate() {
            let path = dir.path().join(format!("pandas{i}.parquet"));
            let properties = WriterProperties::builder()
                .set_key_value_metadata(Some(vec![KeyValue::new("pandas".into(), pandas.to_string())]))
                .build();
            let mut writer =
                ArrowWriter::try_new(File::create(&path).unwrap(), schema.clone(), Some(properties)).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
            let summary = Parquet.summarise(&path).unwrap();
            let columns = summary["columns"].as_array().unwrap();
            let x = &columns[0];
            assert_eq!(x["min"].to_string(), "0.0", "{summary}");
            assert_eq!(x["max"], 1.5);
            // A footer does not count NaNs: the summary says nothing rather than 0.
            assert!(x.get("nans").is_none(), "{summary}");
            if index == "range" {
                assert_eq!(columns.len(), 2);
                assert_eq!(summary["index"][0]["kind"], "range");
            } else {
                assert_eq!(columns.len(), 1, "{summary}");
                assert_eq!(summary["index"][0]["name"], index);
                assert_eq!(summary["index"][0]["min"], 10);
            }
        }
        // A summary read from the data counts them.
        let mut reader = RecordBatchIterator::new(vec![Ok(batch)], schema);
        let summary = table::summarise_batches(&mut reader).unwrap();
        assert_eq!(summary["columns"][0]["nans"], 1);
        assert_eq!(summary["columns"][0]["nulls"], 0);
        assert_eq!(summary["columns"][0]["min"].to_string(), "0.0");
        assert!(summary["columns"][1].get("nans").is_none());
    }

    #[test]
    fn footer_summary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.parquet");
        numbers(&path, 300_000, 50_000);
        let summary = Parquet.summarise(&path).unwrap();
        assert_eq!(summary["rows"], 300_000);
        assert_eq!(summary["row_groups"], 3);
        assert_eq!(summary["compression"], "zstd");
        assert_eq!(summary["columns"][0]["min"], 0);
        assert_eq!(summary["columns"][0]["max"], 299_999);
        assert_eq!(summary["columns"][0]["nullable"], false);
        assert_eq!(summary["columns"][1]["nulls"], 100_000);
        assert_eq!(summary["columns"][1]["min"], "s1");
    }
}
