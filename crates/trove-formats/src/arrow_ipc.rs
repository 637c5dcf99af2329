//! Arrow IPC: the Arrow file format (`ARROW1`, also Feather v2) and, for reading, the Arrow stream format.
//! trove writes the file format uncompressed, the form every Arrow implementation reads.

use std::fs::File;
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::Path;

use arrow::error::ArrowError;
use arrow::ipc::reader::{FileReader, StreamReader};
use arrow::ipc::writer::FileWriter;
use arrow::record_batch::RecordBatchReader;
use serde_json::Value;

use crate::table::{self, Window};
use crate::{Format, FormatError, PreviewOptions, Probe, Result, TableFormat, TableSelect, WriteOptions};

/// The Arrow IPC format.
pub struct ArrowIpc;

const FILE_MAGIC: &[u8] = b"ARROW1";
/// How an IPC stream (and each message of a file) starts since Arrow 0.15.
const CONTINUATION: &[u8] = &[0xff; 4];
/// Extensions under which Arrow IPC streams are found (Hugging Face datasets write streams as `.arrow`).
const STREAM_EXTENSIONS: &[&str] = &["arrow", "arrows", "ipc", "feather"];

impl Format for ArrowIpc {
    fn name(&self) -> &'static str {
        "arrow"
    }
    fn extension(&self) -> &'static str {
        "arrow"
    }
    fn media_type(&self) -> &'static str {
        "application/vnd.apache.arrow.file"
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        if probe.is_dir {
            return false;
        }
        probe.head.starts_with(FILE_MAGIC)
            || (probe.head.starts_with(CONTINUATION)
                && probe.extension().is_some_and(|e| STREAM_EXTENSIONS.contains(&e.as_str())))
    }

    /// Rows, schema, nulls and bounds per column, from one streamed pass over the data.
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let mut batches = self.read(stored, &TableSelect::default())?;
        Ok(Value::Object(table::summarise_batches(&mut *batches)?))
    }

    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let rows = match batch_rows(stored)? {
            Some(rows) => rows.iter().sum(),
            // A stream has no index of its batches: count them.
            None => {
                let mut total = 0u64;
                for batch in open_stream(stored)? {
                    total += batch.map_err(|e| unreadable(stored, e))?.num_rows() as u64;
                }
                total
            }
        };
        table::preview_table(self, stored, options, rows, out)
    }

    fn as_table(&self) -> Option<&dyn TableFormat> {
        Some(self)
    }
}

impl TableFormat for ArrowIpc {
    /// Reads the file format from the first batch that holds rows asked for (found through the footer),
    /// the stream format from its start; either stops after the last row asked for.
    fn read(&self, path: &Path, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>> {
        let (skip, limit) = match &select.rows {
            Some(rows) => (rows.start, Some(rows.end.saturating_sub(rows.start))),
            None => (0, None),
        };
        let Some(counts) = batch_rows(path)? else {
            let reader = open_stream(path)?;
            let schema = reader.schema();
            let projection = table::column_indices(&schema, select.columns.as_deref(), path)?;
            let batches = reader.map(errors_naming(path));
            return Ok(Box::new(Window::new(batches, &schema, projection, skip, limit)?));
        };
        let file = File::open(path).map_err(FormatError::io(path))?;
        let mut reader = FileReader::try_new_buffered(file, None).map_err(|e| unreadable(path, e))?;
        let schema = reader.schema();
        let projection = table::column_indices(&schema, select.columns.as_deref(), path)?;
        // Jump over whole batches before the first row asked for: their row counts are in the footer.
        let (mut first, mut before) = (0usize, 0u64);
        while first < counts.len() && before + counts[first] <= skip {
            before += counts[first];
            first += 1;
        }
        let limit = if first < counts.len() {
            reader.set_index(first).map_err(|e| unreadable(path, e))?;
            limit
        } else {
            Some(0)
        };
        let batches = reader.map(errors_naming(path));
        Ok(Box::new(Window::new(batches, &schema, projection, skip - before, limit)?))
    }

    /// Writes the Arrow IPC file format, uncompressed, one IPC batch per incoming batch.
    fn write(&self, batches: &mut dyn RecordBatchReader, dest: &Path, _options: &WriteOptions) -> Result<()> {
        let written = write_file(batches, dest);
        if written.is_err() {
            // A half-written file is no use to anyone; the error says what went wrong.
            let _ = std::fs::remove_file(dest);
        }
        written
    }
}

fn write_file(batches: &mut dyn RecordBatchReader, dest: &Path) -> Result<()> {
    let file = File::create(dest).map_err(FormatError::io(dest))?;
    let cannot = |e: ArrowError| FormatError::Invalid(format!("cannot write {} as Arrow IPC: {e}", dest.display()));
    let mut writer = FileWriter::try_new(BufWriter::new(file), &batches.schema()).map_err(cannot)?;
    for batch in batches {
        writer.write(&batch.map_err(table::from_arrow)?).map_err(cannot)?;
    }
    writer.finish().map_err(cannot)?;
    let out = writer.into_inner().map_err(cannot)?;
    out.into_inner().map_err(|e| FormatError::io(dest)(e.into_error()))?;
    Ok(())
}

fn open_stream(path: &Path) -> Result<StreamReader<BufReader<File>>> {
    let file = File::open(path).map_err(FormatError::io(path))?;
    StreamReader::try_new_buffered(file, None).map_err(|e| unreadable(path, e))
}

fn unreadable(path: &Path, e: ArrowError) -> FormatError {
    match e {
        ArrowError::IoError(_, source) => FormatError::Io { path: path.to_path_buf(), source },
        other => FormatError::malformed(path, format!("not a readable Arrow IPC file: {other}")),
    }
}

/// Maps a batch error to one that names the file (kept inside the ArrowError the stream must carry).
fn errors_naming(
    path: &Path,
) -> impl FnMut(
    std::result::Result<arrow::record_batch::RecordBatch, ArrowError>,
) -> std::result::Result<arrow::record_batch::RecordBatch, ArrowError>
+ Send
+ 'static {
    let path = path.to_path_buf();
    move |batch| batch.map_err(|e| table::to_arrow(unreadable(&path, e)))
}

/// Largest message header trove reads while counting rows; real ones are a few hundred bytes.
const MAX_MESSAGE_HEADER: usize = 64 * 1024 * 1024;

/// The row count of each batch of an Arrow IPC file, from its footer and the batches' message headers
/// alone (no data is read); `None` when the file is an IPC stream, which has no footer.
fn batch_rows(path: &Path) -> Result<Option<Vec<u64>>> {
    let mut file = File::open(path).map_err(FormatError::io(path))?;
    let mut magic = [0u8; 6];
    let len = file.metadata().map_err(FormatError::io(path))?.len();
    if len < 6 || file.read_exact(&mut magic).is_err() || magic != FILE_MAGIC {
        return Ok(None);
    }
    let bad = |what: &str| FormatError::malformed(path, format!("not a readable Arrow IPC file: {what}"));
    let mut tail = [0u8; 10];
    file.seek(SeekFrom::End(-10)).map_err(|_| bad("too short for a footer"))?;
    file.read_exact(&mut tail).map_err(FormatError::io(path))?;
    let footer_len = arrow::ipc::reader::read_footer_length(tail).map_err(|e| unreadable(path, e))?;
    if footer_len as u64 + 10 > len {
        return Err(bad("footer longer than the file"));
    }
    let mut footer = vec![0u8; footer_len];
    file.seek(SeekFrom::End(-10 - footer_len as i64)).map_err(FormatError::io(path))?;
    file.read_exact(&mut footer).map_err(FormatError::io(path))?;
    let footer = arrow::ipc::root_as_footer(&footer).map_err(|e| bad(&format!("broken footer ({e})")))?;
    let mut rows = Vec::new();
    for block in footer.recordBatches().into_iter().flatten() {
        let header_len = usize::try_from(block.metaDataLength()).map_err(|_| bad("negative message length"))?;
        if !(8..=MAX_MESSAGE_HEADER).contains(&header_len) {
            return Err(bad("implausible message length"));
        }
        let offset = u64::try_from(block.offset()).map_err(|_| bad("negative batch offset"))?;
        let mut header = vec![0u8; header_len];
        file.seek(SeekFrom::Start(offset)).map_err(FormatError::io(path))?;
        file.read_exact(&mut header).map_err(FormatError::io(path))?;
        // A message is [continuation marker,] a little-endian length, then the flatbuffer.
        let start = if header.starts_with(CONTINUATION) { 8 } else { 4 };
        let size = i32::from_le_bytes([header[start - 4], header[start - 3], header[start - 2], header[start - 1]]);
        let end = usize::try_from(size).ok().map(|s| start + s).filter(|&end| end <= header.len());
        let end = end.ok_or_else(|| bad("message longer than its block"))?;
        let message =
            arrow::ipc::root_as_message(&header[start..end]).map_err(|e| bad(&format!("broken message ({e})")))?;
        let batch = message.header_as_record_batch().ok_or_else(|| bad("a block that is not a record batch"))?;
        rows.push(u64::try_from(batch.length()).map_err(|_| bad("negative row count"))?);
    }
    Ok(Some(rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use arrow::array::{AsArray, Int64Array, RecordBatch, RecordBatchIterator};
    use arrow::datatypes::{DataType, Field, Int64Type, Schema};

    #[test]
    fn batch_rows_come_from_the_footer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.arrow");
        let schema = Arc::new(Schema::new(vec![Field::new("i", DataType::Int64, false)]));
        let batches: Vec<_> = [0..3i64, 3..10, 10..11]
            .into_iter()
            .map(|r| RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from_iter_values(r))]))
            .collect();
        ArrowIpc.write(&mut RecordBatchIterator::new(batches, schema), &path, &WriteOptions::default()).unwrap();
        assert_eq!(batch_rows(&path).unwrap(), Some(vec![3, 7, 1]));
        let values: Vec<i64> = ArrowIpc
            .read(&path, &TableSelect::default().with_rows(4..11))
            .unwrap()
            .flat_map(|b| b.unwrap().column(0).as_primitive::<Int64Type>().values().to_vec())
            .collect();
        assert_eq!(values, (4..11).collect::<Vec<_>>());
        let none = ArrowIpc.read(&path, &TableSelect::default().with_rows(11..20)).unwrap();
        assert_eq!(none.map(|b| b.unwrap().num_rows()).sum::<usize>(), 0);
    }
}
