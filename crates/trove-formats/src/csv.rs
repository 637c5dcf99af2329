//! CSV: comma- (or tab- or semicolon-) separated text with a header row. Reading infers each column's type
//! (integer, float, boolean, date, timestamp, else text); writing puts timestamps in ISO 8601.
//!
//! # Type inference
//!
//! A column's type must hold every value in it, or a conversion fails part-way (or, worse, a value that
//! does not fit would have to be dropped). Inferring from a prefix of the file and restarting when a later
//! value does not fit only works when whoever consumes the batches can start over, and a reader handed to a
//! Parquet writer cannot un-write what it wrote. So [`Csv`]'s `read` first makes one streamed pass over the
//! file (or over the columns selected) to infer the types, then a second pass that parses. The first pass
//! tokenises with arrow's CSV reader, exactly as the second does, and tests each value with the very
//! parsers the second pass will use, so the second pass cannot fail on a value's type; columns already
//! known to be text are skipped, and the pass ends early once every column is text.
//!
//! The price, measured with `csv_inference_cost` in `tests/tables.rs` on 10^7 rows of five columns (459 MB;
//! integers, floats, booleans, timestamps, texts; two shared cores, dependencies at opt-level 1): the
//! inference pass took 9.5 s, the parsing pass 9.2 s, the whole conversion to Parquet 29 s, in 27 MB of
//! memory at most. A third of a conversion buys types that never depend on where in a file the first odd
//! value sits, and readers that never fail half-way on one.

use std::collections::HashMap;
use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::timezone::Tz;
use arrow::array::{AsArray, RecordBatch};
use arrow::compute::kernels::cast_utils::{Parser, string_to_datetime};
use arrow::csv::reader::{BufReader as CsvReader, Format as CsvDialect};
use arrow::csv::{ReaderBuilder, WriterBuilder};
use arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema, SchemaRef, TimeUnit};
use arrow::error::ArrowError;
use arrow::record_batch::RecordBatchReader;
use serde_json::Value;

use crate::table::{self, DEFAULT_HEAD};
use crate::{
    ColumnType, CsvOptions, Format, FormatError, PreviewOptions, Probe, ReadNote, ReadOptions, Result, TableFormat,
    TableSelect, WriteOptions,
};

/// The CSV format.
pub struct Csv;

/// Rows per record batch when reading, for tables of ordinary width.
const BATCH_ROWS: usize = 8192;

/// Values (rows × columns) per record batch at most: the reader reserves room for every field of a batch
/// up front (8 bytes each), so a wide table gets fewer rows a batch and memory follows the data, not a fixed
/// per-column reservation (100,000 columns × 8192 rows once asked for 6.5 GB).
const BATCH_VALUES: usize = 1 << 21;

/// How much of a file's start is looked at to find its delimiter.
const SNIFF_BYTES: u64 = 64 * 1024;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// The cells read as missing, in every column type: pandas' default `na_values` (what R and Excel write
/// for a missing value, too), and the empty cell.
pub const MISSING: &[&str] = &[
    "", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A", "NA",
    "NULL", "NaN", "None", "n/a", "nan", "null",
];

/// How a CSV file's bytes are packed: as they are, or compressed whole (`.csv.gz`, `.csv.zst`, `.csv.bz2`),
/// which every pass reads through a decompressor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Packing {
    Plain,
    Gzip,
    Zstd,
    Bzip2,
}

/// The name endings of compressed single files.
pub const COMPRESSED_SUFFIXES: &[&str] = &["gz", "zst", "zstd", "bz2"];

impl Packing {
    /// From the file's first bytes (its magic number), whatever its name says.
    fn of(head: &[u8]) -> Packing {
        if head.starts_with(&[0x1f, 0x8b]) {
            Packing::Gzip
        } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
            Packing::Zstd
        } else if head.starts_with(b"BZh") {
            Packing::Bzip2
        } else {
            Packing::Plain
        }
    }

    /// The file's text from byte `skip` on (plain files seek there; compressed ones decompress past it).
    fn open(self, path: &Path, skip: u64) -> std::io::Result<Box<dyn BufRead + Send>> {
        const BUFFER: usize = 1 << 20;
        let mut file = File::open(path)?;
        let mut reader: Box<dyn BufRead + Send> = match self {
            Packing::Plain => {
                file.seek(SeekFrom::Start(skip))?;
                return Ok(Box::new(BufReader::with_capacity(BUFFER, file)));
            }
            Packing::Gzip => {
                Box::new(BufReader::with_capacity(BUFFER, flate2::read::MultiGzDecoder::new(BufReader::new(file))))
            }
            Packing::Zstd => Box::new(BufReader::with_capacity(BUFFER, zstd::stream::read::Decoder::new(file)?)),
            Packing::Bzip2 => {
                Box::new(BufReader::with_capacity(BUFFER, bzip2::read::MultiBzDecoder::new(BufReader::new(file))))
            }
        };
        std::io::copy(&mut (&mut reader).take(skip), &mut std::io::sink())?;
        Ok(reader)
    }
}

/// The extension a file's name gives its content: `csv` for `runs.csv` and for `runs.csv.gz`.
pub(crate) fn inner_extension(path: &Path) -> Option<String> {
    let outer = path.extension()?.to_str()?.to_ascii_lowercase();
    if COMPRESSED_SUFFIXES.contains(&outer.as_str()) {
        let stem = Path::new(path.file_stem()?);
        return stem.extension()?.to_str().map(str::to_ascii_lowercase);
    }
    Some(outer)
}

/// Whether a file's first bytes are those of a gzip, zstd or bzip2 stream.
pub(crate) fn is_compressed(head: &[u8]) -> bool {
    !matches!(Packing::of(head), Packing::Plain)
}

/// A file's bytes, decompressed when its magic number says gzip, zstd or bzip2.
pub(crate) fn open_decompressed(path: &Path) -> std::io::Result<Box<dyn BufRead + Send>> {
    let mut magic = Vec::new();
    File::open(path)?.take(4).read_to_end(&mut magic)?;
    Packing::of(&magic).open(path, 0)
}

/// [`MISSING`] as the whole-cell pattern arrow's reader takes.
fn missing_pattern() -> &'static regex::Regex {
    static PATTERN: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    PATTERN.get_or_init(|| pattern_of(MISSING))
}

/// A pattern matching exactly these cells, and the empty one.
fn pattern_of<S: AsRef<str>>(tokens: &[S]) -> regex::Regex {
    let mut escaped: Vec<String> = tokens.iter().map(|t| regex::escape(t.as_ref())).collect();
    escaped.push(String::new());
    // Escaped literals joined by `|` always make a valid pattern.
    regex::Regex::new(&format!("^(?:{})$", escaped.join("|"))).unwrap_or_else(|_| unreachable!("escaped literals"))
}

fn data_type_of(column_type: ColumnType) -> DataType {
    match column_type {
        ColumnType::Int64 => DataType::Int64,
        ColumnType::Float64 => DataType::Float64,
        ColumnType::String => DataType::Utf8,
        ColumnType::Date => DataType::Date32,
        ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        ColumnType::Bool => DataType::Boolean,
    }
}

impl Format for Csv {
    fn name(&self) -> &'static str {
        "csv"
    }
    fn extension(&self) -> &'static str {
        "csv"
    }
    fn media_type(&self) -> &'static str {
        "text/csv"
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        !probe.is_dir && inner_extension(probe.path).is_some_and(|e| e == "csv" || e == "tsv")
    }

    /// Rows, inferred schema, nulls and bounds per column, from streamed passes over the file.
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let mut batches = self.read(stored, &TableSelect::default())?;
        Ok(Value::Object(table::summarise_batches(&mut *batches)?))
    }

    /// Types the shown rows from those rows alone (a preview should not wait for a whole-file inference),
    /// and counts the rest without parsing them.
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let source = Source::open(stored)?;
        let head = options.head.unwrap_or(DEFAULT_HEAD) as u64;
        let select = TableSelect { columns: options.columns.clone(), rows: Some(0..head) };
        let reader = source.batches(&select, Some(0..head))?;
        let schema = reader.schema();
        let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(table::from_arrow)?;
        let total = source.count_rows()?;
        table::write_preview(out, &schema, &batches, total)
    }

    fn as_table(&self) -> Option<&dyn TableFormat> {
        Some(self)
    }
}

impl TableFormat for Csv {
    /// Infers the selected columns' types over the whole file (see the module documentation), then streams
    /// them; rows before the range asked for are tokenised but not parsed.
    fn read(&self, path: &Path, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>> {
        let source = Source::open(path)?;
        Ok(Box::new(source.batches(select, None)?))
    }

    fn read_source(&self, path: &Path, options: &ReadOptions) -> Result<Box<dyn RecordBatchReader + Send>> {
        let source = Source::open_with(path, &options.csv)?;
        Ok(Box::new(source.batches(&TableSelect::default(), None)?))
    }

    fn guesses(&self, path: &Path, options: &ReadOptions) -> Result<Vec<ReadNote>> {
        let source = Source::open_with(path, &options.csv)?;
        let mut notes: Vec<ReadNote> =
            source.guesses.iter().map(|g| ReadNote { text: g.clone(), guessed: true }).collect();
        let short = source.short_rows()?;
        if short > 0 {
            let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            let rows = if short == 1 { "row has" } else { "rows have" };
            notes.push(ReadNote {
                text: format!(
                    "{name}: {short} {rows} fewer fields than the header; the missing cells are nulls (as pandas reads them)"
                ),
                guessed: false,
            });
        }
        Ok(notes)
    }

    /// Writes a header and one line per row, comma-separated; nulls are empty cells, timestamps ISO 8601.
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
    let schema = batches.schema();
    if let Some(field) = table::nested_fields(&schema).first() {
        return Err(FormatError::Invalid(format!(
            "cannot write column {:?} ({}) as CSV: a CSV cell holds one value, not a list or record",
            field.name(),
            field.data_type()
        )));
    }
    let file = File::create(dest).map_err(FormatError::io(dest))?;
    let cannot = |e: ArrowError| match e {
        ArrowError::IoError(_, source) => FormatError::Io { path: dest.to_path_buf(), source },
        other => FormatError::Invalid(format!("cannot write {} as CSV: {other}", dest.display())),
    };
    let mut writer = WriterBuilder::new().with_header(true).build(BufWriter::new(file));
    // An empty batch first, so that even a table without rows gets its header line.
    writer.write(&table::displayable(&RecordBatch::new_empty(schema))?).map_err(cannot)?;
    for batch in batches {
        writer.write(&table::displayable(&batch.map_err(table::from_arrow)?)?).map_err(cannot)?;
    }
    writer.into_inner().into_inner().map_err(|e| FormatError::io(dest)(e.into_error()))?;
    Ok(())
}

/// A CSV file, with what its first lines tell (where the data starts, the delimiter, the column names) and
/// how it is to be read.
struct Source {
    path: PathBuf,
    packing: Packing,
    /// Bytes before the header (or the first row): a byte-order mark, and the lines skipped.
    skip: u64,
    /// Lines skipped before the header.
    skipped_lines: u64,
    delimiter: u8,
    /// Fields are separated by runs of spaces or tabs (read through [`Collapse`], then as tab-separated).
    spaces: bool,
    header: bool,
    comment: Option<u8>,
    missing: regex::Regex,
    /// What was guessed rather than told or certain, for the front end to say.
    guesses: Vec<String>,
    names: Vec<String>,
    /// Types chosen instead of inferred, by column position.
    chosen: HashMap<usize, DataType>,
}

impl Source {
    fn open(path: &Path) -> Result<Source> {
        Source::open_with(path, &CsvOptions::default())
    }

    fn open_with(path: &Path, options: &CsvOptions) -> Result<Source> {
        let mut magic = Vec::new();
        let file = File::open(path).map_err(FormatError::io(path))?;
        file.take(4).read_to_end(&mut magic).map_err(FormatError::io(path))?;
        let packing = Packing::of(&magic);
        let unreadable = |e: std::io::Error| match packing {
            Packing::Plain => FormatError::Io { path: path.to_path_buf(), source: e },
            _ => FormatError::malformed(path, format!("cannot decompress: {e}")),
        };
        let mut reader = packing.open(path, 0).map_err(unreadable)?;
        let mut skip = 0;
        if reader.fill_buf().map_err(unreadable)?.starts_with(BOM) {
            reader.consume(BOM.len());
            skip = BOM.len() as u64;
        }
        let mut line = Vec::new();
        for _ in 0..options.skip_rows {
            line.clear();
            let n = reader.read_until(b'\n', &mut line).map_err(unreadable)?;
            if n == 0 {
                return Err(FormatError::malformed(
                    path,
                    format!("cannot skip {} lines: the file has fewer", options.skip_rows),
                ));
            }
            skip += n as u64;
        }
        let mut start = Vec::new();
        reader.take(SNIFF_BYTES).read_to_end(&mut start).map_err(unreadable)?;
        let tab_named = inner_extension(path).is_some_and(|e| e == "tsv");
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let mut guesses = Vec::new();
        let (delimiter, spaces) = match options.delimiter {
            Some(d) => (d, false),
            None if tab_named => (b'\t', false),
            None => match sniff_delimiter(&start) {
                Some(d) => (d, false),
                None if spaced_columns(&start) => {
                    guesses.push(format!("{name}: its columns are separated by runs of spaces"));
                    (b'\t', true)
                }
                None => (b',', false),
            },
        };
        let missing = match &options.missing {
            None => missing_pattern().clone(),
            Some(tokens) => pattern_of(tokens),
        };
        let mut source = Source {
            path: path.to_path_buf(),
            packing,
            skip,
            skipped_lines: options.skip_rows,
            delimiter,
            spaces,
            header: options.header.unwrap_or(true),
            comment: options.comment,
            missing,
            guesses,
            names: Vec::new(),
            chosen: HashMap::new(),
        };
        if options.header.is_none() && !source.has_header()? {
            source.header = false;
            source.guesses.push(format!(
                "{name}: no header line (its first line holds values like the lines below): columns are named column_0, column_1, ..."
            ));
        }
        let (first, _) = source.dialect().infer_schema(source.body()?, Some(0)).map_err(|e| source.error(e))?;
        if first.fields().is_empty() {
            return Err(FormatError::malformed(path, "empty file: a CSV table needs a header line naming its columns"));
        }
        source.names = if source.header {
            unique_names(first.fields().iter().map(|f| f.name().as_str()))
        } else {
            (0..first.fields().len()).map(|i| format!("column_{i}")).collect()
        };
        for (name, column_type) in &options.types {
            let position = source.names.iter().position(|n| n == name).ok_or_else(|| {
                FormatError::Invalid(format!(
                    "{}: no column {name:?} to type (its columns: {})",
                    path.display(),
                    source.names.join(", ")
                ))
            })?;
            source.chosen.insert(position, data_type_of(*column_type));
        }
        Ok(source)
    }

    fn dialect(&self) -> CsvDialect {
        let dialect = CsvDialect::default()
            .with_header(self.header)
            .with_delimiter(self.delimiter)
            .with_null_regex(self.missing.clone())
            .with_truncated_rows(true);
        match self.comment {
            Some(c) => dialect.with_comment(c),
            None => dialect,
        }
    }

    fn lines(&self) -> Lines {
        Lines {
            path: self.path.clone(),
            packing: self.packing,
            spaces: self.spaces,
            skip: self.skip,
            skipped_lines: self.skipped_lines,
            delimiter: self.delimiter,
            header: self.header,
        }
    }

    /// The file's text from its header on, in large reads: the passes over a file are sequential and the
    /// tokeniser is fast.
    /// How many records (after the header) have fewer fields than there are columns: arrow fills them with
    /// nulls, and the front end says so.
    fn short_rows(&self) -> Result<u64> {
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(self.header)
            .flexible(true)
            .delimiter(self.delimiter)
            .comment(self.comment)
            .from_reader(self.body()?);
        let mut row = ::csv::ByteRecord::new();
        let mut short = 0;
        // A file that does not parse here was refused (or read) by arrow already: what parsed is counted.
        while reader.read_byte_record(&mut row).unwrap_or(false) {
            if row.len() < self.names.len() {
                short += 1;
            }
        }
        Ok(short)
    }

    fn body(&self) -> Result<Box<dyn BufRead + Send>> {
        self.lines().text().map_err(FormatError::io(&self.path))
    }

    /// Whether the first record names the columns, by type evidence (as pandas' and csvkit's sniffers
    /// decide): not when every column whose values below are all numbers, booleans or dates has such a
    /// value in the first record too, and there is at least one such column.
    fn has_header(&self) -> Result<bool> {
        const SAMPLE: usize = 50;
        let mut reader = ::csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .comment(self.comment)
            .from_reader(self.body()?);
        let mut rows: Vec<::csv::StringRecord> = Vec::new();
        for record in reader.records().take(SAMPLE) {
            match record {
                Ok(r) => rows.push(r),
                // Not text, or not well-formed: the reading passes say what is wrong.
                Err(_) => return Ok(true),
            }
        }
        let Some((first, below)) = rows.split_first() else { return Ok(true) };
        if below.is_empty() {
            return Ok(true);
        }
        let utc: Tz = UTC.parse()?;
        let (mut typed, mut fitting) = (0, 0);
        for (column, cell) in first.iter().enumerate() {
            let mut guess = Guess::default();
            for value in below.iter().filter_map(|r| r.get(column)).filter(|v| !self.missing.is_match(v)) {
                guess.update(value, &utc);
            }
            if matches!(guess.kind, Kind::Empty | Kind::Text) {
                continue;
            }
            typed += 1;
            let mut with_first = guess;
            if !self.missing.is_match(cell) {
                with_first.update(cell, &utc);
            }
            if with_first.kind == guess.kind || (guess.kind == Kind::Int && with_first.kind == Kind::Float) {
                fitting += 1;
            }
        }
        Ok(!(typed > 0 && fitting == typed))
    }

    /// Every column as text, as the file has it.
    fn text_schema(&self) -> Schema {
        Schema::new(self.names.iter().map(|n| Field::new(n, DataType::Utf8, true)).collect::<Vec<_>>())
    }

    fn builder(&self, schema: Schema) -> ReaderBuilder {
        let rows = (BATCH_VALUES / self.names.len().max(1)).clamp(1, BATCH_ROWS);
        // Short rows are filled with nulls, as pandas does.
        let builder = ReaderBuilder::new(Arc::new(schema))
            .with_format(self.dialect())
            .with_batch_size(rows)
            .with_truncated_rows(true);
        match self.comment {
            Some(c) => builder.with_comment(c),
            None => builder,
        }
    }

    /// Typed batches of the selected columns and rows. Types are inferred from the rows in `infer_rows`
    /// (all rows when `None`), which must include every row selected.
    fn batches(&self, select: &TableSelect, infer_rows: Option<Range<u64>>) -> Result<CsvBatches> {
        let text = self.text_schema();
        let wanted = table::column_indices(&text, select.columns.as_deref(), &self.path)?;
        let wanted = wanted.unwrap_or_else(|| (0..self.names.len()).collect());
        let mut inferred = wanted.clone();
        inferred.sort_unstable();
        inferred.dedup();
        let guessed: Vec<usize> = inferred.iter().copied().filter(|c| !self.chosen.contains_key(c)).collect();
        let mut guesses = self.infer(&guessed, infer_rows)?.into_iter();
        let types: Vec<DataType> = inferred
            .iter()
            .map(|c| self.chosen.get(c).cloned().or_else(|| guesses.next()).unwrap_or(DataType::Utf8))
            .collect();
        let mut fields: Vec<Field> = text.fields().iter().map(|f| f.as_ref().clone()).collect();
        for (&column, data_type) in inferred.iter().zip(types) {
            fields[column] = Field::new(&self.names[column], data_type, true);
        }
        let schema = Schema::new(fields);
        let projected = Arc::new(schema.project(&wanted)?);
        let mut builder = self.builder(schema).with_projection(wanted);
        if let Some(rows) = &select.rows {
            builder = builder.with_bounds(bound(rows.start), bound(rows.end.max(rows.start)));
        }
        let inner = builder.build_buffered(self.body()?).map_err(|e| self.error(e))?;
        Ok(CsvBatches { inner, schema: projected, lines: self.lines() })
    }

    /// The type of each of `columns` (positions, ascending): the narrowest that every value in `rows`
    /// parses as.
    fn infer(&self, columns: &[usize], rows: Option<Range<u64>>) -> Result<Vec<DataType>> {
        let mut guesses = vec![Guess::default(); columns.len()];
        if columns.is_empty() {
            return Ok(Vec::new());
        }
        let utc: Tz = UTC.parse()?;
        let mut builder = self.builder(self.text_schema()).with_projection(columns.to_vec());
        if let Some(rows) = &rows {
            builder = builder.with_bounds(bound(rows.start), bound(rows.end.max(rows.start)));
        }
        let reader = builder.build_buffered(self.body()?).map_err(|e| self.error(e))?;
        for batch in reader {
            let batch = batch.map_err(|e| self.error(e))?;
            for (guess, column) in guesses.iter_mut().zip(batch.columns()) {
                if guess.kind == Kind::Text {
                    continue;
                }
                for value in column.as_string::<i32>().iter().flatten() {
                    guess.update(value, &utc);
                    if guess.kind == Kind::Text {
                        break;
                    }
                }
            }
            // Nothing more to learn; the parsing pass still checks every line's shape.
            if guesses.iter().all(|g| g.kind == Kind::Text) {
                break;
            }
        }
        Ok(guesses.iter().map(Guess::data_type).collect())
    }

    /// The number of data rows, by tokenising the file without parsing any value.
    fn count_rows(&self) -> Result<u64> {
        let reader = self.builder(self.text_schema()).with_projection(Vec::new());
        let reader = reader.build_buffered(self.body()?).map_err(|e| self.error(e))?;
        let mut rows = 0u64;
        for batch in reader {
            rows += batch.map_err(|e| self.error(e))?.num_rows() as u64;
        }
        Ok(rows)
    }

    fn error(&self, e: ArrowError) -> FormatError {
        csv_error(&self.lines(), e)
    }
}

/// A row number as the CSV reader's bounds take it; the reader adds one for the header, so stay below the top.
fn bound(row: u64) -> usize {
    usize::try_from(row).unwrap_or(usize::MAX).min(usize::MAX / 2)
}

/// The delimiter of a CSV file: whichever of comma, tab, semicolon and bar occurs most (outside quotes) in
/// its first line; `None` when none does.
fn sniff_delimiter(start: &[u8]) -> Option<u8> {
    const CANDIDATES: [u8; 4] = [b',', b'\t', b';', b'|'];
    let mut counts = [0usize; 4];
    let mut quoted = false;
    for &byte in start {
        match byte {
            b'"' => quoted = !quoted,
            b'\n' | b'\r' if !quoted => break,
            _ if !quoted => {
                if let Some(i) = CANDIDATES.iter().position(|&c| c == byte) {
                    counts[i] += 1;
                }
            }
            _ => {}
        }
    }
    let best = (0..CANDIDATES.len()).fold(0, |best, i| if counts[i] > counts[best] { i } else { best });
    (counts[best] > 0).then_some(CANDIDATES[best])
}

/// Whether the first lines split on runs of spaces (outside quotes) into the same number, two or more, of
/// fields, as a table printed for people does (`np.savetxt`, fixed-width instrument logs).
fn spaced_columns(start: &[u8]) -> bool {
    // The last line of the sample may be cut short.
    let whole = match start.iter().rposition(|&b| b == b'\n') {
        Some(end) => &start[..=end],
        None => start,
    };
    let mut collapsed = Vec::new();
    if Collapse::new(whole).read_to_end(&mut collapsed).is_err() {
        return false;
    }
    let mut widths = collapsed.split(|&b| b == b'\n').filter(|l| !l.is_empty() && l != b"\r").take(20).map(|line| {
        let mut quoted = false;
        1 + line
            .iter()
            .filter(|&&b| {
                if b == b'"' {
                    quoted = !quoted;
                }
                b == b'\t' && !quoted
            })
            .count()
    });
    match widths.next() {
        Some(first) if first > 1 => widths.all(|w| w == first),
        _ => false,
    }
}

/// Turns runs of spaces and tabs between fields into one tab, and drops them at the ends of lines, outside
/// quotes: a table aligned with spaces becomes a tab-separated one.
struct Collapse<R> {
    inner: R,
    quoted: bool,
    at_line_start: bool,
    separator_due: bool,
    out: Vec<u8>,
    at: usize,
}

impl<R: BufRead> Collapse<R> {
    fn new(inner: R) -> Collapse<R> {
        Collapse { inner, quoted: false, at_line_start: true, separator_due: false, out: Vec::new(), at: 0 }
    }
}

impl<R: BufRead> Read for Collapse<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.out.len() {
            self.out.clear();
            self.at = 0;
            let chunk = self.inner.fill_buf()?;
            if chunk.is_empty() {
                return Ok(0);
            }
            for &b in chunk {
                if self.quoted {
                    self.out.push(b);
                    self.quoted = b != b'"';
                    continue;
                }
                match b {
                    b' ' | b'\t' => self.separator_due = !self.at_line_start,
                    b'\n' | b'\r' => {
                        self.separator_due = false;
                        self.at_line_start = true;
                        self.out.push(b);
                    }
                    _ => {
                        if self.separator_due {
                            self.out.push(b'\t');
                            self.separator_due = false;
                        }
                        self.quoted = b == b'"';
                        self.at_line_start = false;
                        self.out.push(b);
                    }
                }
            }
            let n = chunk.len();
            self.inner.consume(n);
        }
        let n = buf.len().min(self.out.len() - self.at);
        buf[..n].copy_from_slice(&self.out[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

fn unique_names<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut unique: Vec<String> = Vec::new();
    for (i, name) in names.enumerate() {
        let base = if name.is_empty() { format!("column_{}", i + 1) } else { name.to_string() };
        let mut candidate = base.clone();
        let mut n = 2;
        while unique.contains(&candidate) {
            candidate = format!("{base}_{n}");
            n += 1;
        }
        unique.push(candidate);
    }
    unique
}

/// Typed batches from a CSV file; errors name the file and line.
struct CsvBatches {
    inner: CsvReader<Box<dyn BufRead + Send>>,
    schema: SchemaRef,
    lines: Lines,
}

impl Iterator for CsvBatches {
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        Some(self.inner.next()?.map_err(|e| table::to_arrow(csv_error(&self.lines, e))))
    }
}

impl RecordBatchReader for CsvBatches {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// Where a CSV file's records are: enough to turn arrow's record numbers into the lines an editor shows.
#[derive(Debug, Clone)]
struct Lines {
    path: PathBuf,
    packing: Packing,
    spaces: bool,
    /// Bytes before the header: a byte-order mark and skipped lines.
    skip: u64,
    skipped_lines: u64,
    delimiter: u8,
    /// Whether the first record is a header (arrow counts it as record 1 then).
    header: bool,
}

impl Lines {
    /// The file's text from its header on (runs of spaces turned into tabs when they separate the fields).
    fn text(&self) -> std::io::Result<Box<dyn BufRead + Send>> {
        let text = self.packing.open(&self.path, self.skip)?;
        if self.spaces { Ok(Box::new(BufReader::with_capacity(1 << 20, Collapse::new(text)))) } else { Ok(text) }
    }

    /// The physical line (from 1) where record `record` (from 1, the header) starts: quoted fields may hold
    /// line breaks, so the two differ. Read again only when an error needs it.
    fn physical(&self, record: u64) -> Option<u64> {
        // Without a header arrow still counts from 1 at the first record.
        let record = if self.header { record } else { record.max(1) };
        let body = self.text().ok()?;
        let mut reader =
            ::csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(self.delimiter).from_reader(body);
        let mut row = ::csv::ByteRecord::new();
        for _ in 0..record {
            if !reader.read_byte_record(&mut row).ok()? {
                return None;
            }
        }
        row.position().map(|p| p.line() + self.skipped_lines)
    }
}

/// An error of arrow's CSV reader, reworded to say which line of which file is wrong.
fn csv_error(lines: &Lines, e: ArrowError) -> FormatError {
    let path = &lines.path;
    let text = match e {
        ArrowError::IoError(_, source) => return FormatError::Io { path: path.to_path_buf(), source },
        ArrowError::ExternalError(_) => return table::from_arrow(e),
        ArrowError::CsvError(text) | ArrowError::ParseError(text) => text,
        other => other.to_string(),
    };
    // arrow numbers records ("line 3" is the third, counting the header), not lines.
    let text = match text.split_once("line ").and_then(|(before, rest)| {
        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
        let record: u64 = rest[..digits].parse().ok()?;
        Some((before, record, &rest[digits..]))
    }) {
        Some((before, record, after)) => {
            let line = lines.physical(record).unwrap_or(record);
            format!("{before}line {line}{after}")
        }
        None => text,
    };
    // "incorrect number of fields for line 3, expected 2 got more than 2": only long rows (short ones are
    // filled with nulls).
    let ragged = text.strip_prefix("incorrect number of fields for line ").and_then(|rest| {
        let (line, rest) = rest.split_once(", expected ")?;
        let (expected, got) = rest.split_once(" got ")?;
        let fields = if got == "1" { "field" } else { "fields" };
        Some(format!("line {line} has {got} {fields}, but the header has {expected}"))
    });
    FormatError::malformed(path, ragged.unwrap_or(text))
}

/// What the values of a column seen so far could all be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Kind {
    /// No value yet (nothing, or only empty cells).
    #[default]
    Empty,
    Bool,
    Int,
    Float,
    Date,
    Timestamp,
    Text,
}

/// The inferred type of one column, and what its timestamps need: fractional digits (for the unit), whether
/// any carries a zone offset, whether any lies outside what nanoseconds since 1970 can count.
#[derive(Debug, Clone, Copy, Default)]
struct Guess {
    kind: Kind,
    fraction_digits: usize,
    offset: bool,
    beyond_nanoseconds: bool,
}

impl Guess {
    fn update(&mut self, value: &str, utc: &Tz) {
        // Most values are of the kind already guessed, so that kind's parser alone is tried first.
        let fits = match self.kind {
            Kind::Int => Int64Type::parse(value).is_some(),
            Kind::Float => {
                Float64Type::parse(value).is_some() && (!integral(value) || Int64Type::parse(value).is_some())
            }
            Kind::Bool => is_bool(value),
            Kind::Date => is_date(value),
            Kind::Timestamp => is_timestamp(value, utc) || is_date(value),
            Kind::Empty | Kind::Text => false,
        };
        let kind = if fits { self.kind } else { kind_of(value, utc) };
        if matches!(kind, Kind::Date | Kind::Timestamp) {
            self.note_time(value);
        }
        self.kind = join(self.kind, kind);
    }

    fn note_time(&mut self, value: &str) {
        let bytes = value.as_bytes();
        // Nanoseconds since 1970 in an i64 reach from 1677-09-21 to 2262-04-11; years inside 1678..=2261
        // are safely in range.
        let year = value.get(..4).and_then(|y| y.parse::<u32>().ok());
        if !year.is_some_and(|y| (1678..=2261).contains(&y)) {
            self.beyond_nanoseconds = true;
        }
        if bytes.len() > 10 {
            let time = &bytes[10..];
            if let Some(dot) = time.iter().position(|&b| b == b'.') {
                let digits = time[dot + 1..].iter().take_while(|b| b.is_ascii_digit()).count();
                self.fraction_digits = self.fraction_digits.max(digits);
            }
            if time.iter().any(|&b| matches!(b, b'+' | b'-' | b'Z' | b'z')) {
                self.offset = true;
            }
        }
    }

    fn data_type(&self) -> DataType {
        match self.kind {
            // A column without a single value is all missing: floats, as pandas reads it.
            Kind::Empty => DataType::Float64,
            Kind::Text => DataType::Utf8,
            Kind::Bool => DataType::Boolean,
            Kind::Int => DataType::Int64,
            Kind::Float => DataType::Float64,
            Kind::Date => DataType::Date32,
            Kind::Timestamp => {
                // Microseconds unless a value has finer digits and every value fits in nanoseconds.
                let unit = if self.fraction_digits > 6 && !self.beyond_nanoseconds {
                    TimeUnit::Nanosecond
                } else {
                    TimeUnit::Microsecond
                };
                // Times with offsets are instants: stored in UTC, marked as such. (Times without an offset in
                // the same column are taken as UTC.)
                DataType::Timestamp(unit, self.offset.then(|| UTC.into()))
            }
        }
    }
}

/// The zone of timestamps read with an offset: UTC, spelled the way arrow parses without a zone database.
const UTC: &str = "+00:00";

/// The narrowest kind of one (non-empty) value, tested with the parsers arrow's CSV reader uses.
fn kind_of(value: &str, utc: &Tz) -> Kind {
    if is_bool(value) {
        Kind::Bool
    } else if Int64Type::parse(value).is_some() {
        Kind::Int
    } else if integral(value) {
        // Too big for 64 bits: kept as text, digit for digit, rather than rounded to a float.
        Kind::Text
    } else if Float64Type::parse(value).is_some() {
        Kind::Float
    } else if is_date(value) {
        Kind::Date
    } else if is_timestamp(value, utc) {
        Kind::Timestamp
    } else {
        Kind::Text
    }
}

fn is_bool(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
}

/// Whether a value starts like an ISO 8601 date (`2024-01-31`), before any parser is tried.
fn dated(bytes: &[u8]) -> bool {
    bytes.len() >= 10 && bytes[4] == b'-' && bytes[7] == b'-' && bytes[..4].iter().all(u8::is_ascii_digit)
}

/// A date alone, `2024-01-31`. (Arrow's date parser also takes the date out of a timestamp; such a value
/// belongs to a timestamp column.)
fn is_date(value: &str) -> bool {
    value.len() == 10 && dated(value.as_bytes()) && Date32Type::parse(value).is_some()
}

/// A date and time, with or without fraction and offset, as arrow's CSV reader parses it.
fn is_timestamp(value: &str, utc: &Tz) -> bool {
    value.len() > 10 && dated(value.as_bytes()) && string_to_datetime(utc, value).is_ok()
}

/// Whether a value is an integer (an optional sign, digits), whatever its size.
fn integral(value: &str) -> bool {
    let digits = value.trim().strip_prefix(['-', '+']).unwrap_or(value.trim());
    !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The kind that holds values of both kinds.
fn join(a: Kind, b: Kind) -> Kind {
    use Kind::*;
    match (a, b) {
        (Empty, k) | (k, Empty) => k,
        (a, b) if a == b => a,
        (Int, Float) | (Float, Int) => Float,
        (Date, Timestamp) | (Timestamp, Date) => Timestamp,
        _ => Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn infer(values: &[&str]) -> DataType {
        let utc: Tz = UTC.parse().unwrap();
        let mut guess = Guess::default();
        for v in values {
            guess.update(v, &utc);
        }
        guess.data_type()
    }

    #[test]
    fn kinds() {
        assert_eq!(infer(&["1", "-2", "+3"]), DataType::Int64);
        assert_eq!(infer(&["1", "2.5", "1e3", "NaN"]), DataType::Float64);
        assert_eq!(infer(&["true", "FALSE"]), DataType::Boolean);
        assert_eq!(infer(&["1", "true"]), DataType::Utf8);
        assert_eq!(infer(&["2024-01-01", "2024-02-29"]), DataType::Date32);
        assert_eq!(infer(&["2024-02-30"]), DataType::Utf8);
        assert_eq!(
            infer(&["2024-01-01T00:00:00", "2024-01-01 10:00:00.5"]),
            DataType::Timestamp(TimeUnit::Microsecond, None)
        );
        assert_eq!(infer(&["2024-01-01", "2024-01-01T00:00:00"]), DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(
            infer(&["2024-01-01T00:00:00Z", "2024-01-01T00:00:00"]),
            DataType::Timestamp(TimeUnit::Microsecond, Some(UTC.into()))
        );
        assert_eq!(infer(&["2024-01-01T00:00:00.123456789"]), DataType::Timestamp(TimeUnit::Nanosecond, None));
        assert_eq!(infer(&["1500-01-01T00:00:00.123456789"]), DataType::Timestamp(TimeUnit::Microsecond, None));
        assert_eq!(infer(&["12345678901234567890123"]), DataType::Utf8);
        assert_eq!(infer(&[]), DataType::Float64);
        assert_eq!(infer(&["x", "1"]), DataType::Utf8);
    }

    #[test]
    fn delimiters() {
        assert_eq!(sniff_delimiter(b"a,b,c\n1,2,3"), Some(b','));
        assert_eq!(sniff_delimiter(b"a\tb\tc\n"), Some(b'\t'));
        assert_eq!(sniff_delimiter(b"a;b;\"c,d\"\n"), Some(b';'));
        assert_eq!(sniff_delimiter(b"a|b|c\n"), Some(b'|'));
        assert_eq!(sniff_delimiter(b"single"), None);
        assert!(spaced_columns(b"  t   x    y\n  1   2.5  3\n  2   3.5  4\n"));
        assert!(!spaced_columns(b"city\nNew York\n"));
        assert!(!spaced_columns(b"single\n"));
        let mut collapsed = String::new();
        Collapse::new(&b"  t   x \"a  b\"\n  1\t 2  \"q\"  \n"[..]).read_to_string(&mut collapsed).unwrap();
        assert_eq!(collapsed, "t\tx\t\"a  b\"\n1\t2\t\"q\"\n");
    }

    #[test]
    fn names() {
        assert_eq!(unique_names(["a", "", "a", "a"].into_iter()), vec!["a", "column_2", "a_2", "a_3"]);
    }

    #[test]
    fn ragged_error_wording_names_the_physical_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.csv");
        std::fs::write(&path, "a,b\n\"multi\nline\",1\n\"x\",2\n").unwrap();
        let lines = Lines {
            path: path.clone(),
            packing: Packing::Plain,
            spaces: false,
            skip: 0,
            skipped_lines: 0,
            delimiter: b',',
            header: true,
        };
        let e =
            csv_error(&lines, ArrowError::CsvError("incorrect number of fields for line 3, expected 2 got 1".into()));
        assert_eq!(e.to_string(), format!("{}: line 4 has 1 field, but the header has 2", path.display()));
    }
}
