//! Tables: what to read of one, and the summaries and previews all table formats share.
//!
//! Every table format streams [`RecordBatch`]es; the pieces here work on such streams, so a summary or a
//! preview of a table larger than memory holds only a batch or two at a time.

use std::io::Write;
use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, make_array};
use arrow::compute;
use arrow::datatypes::{
    DataType, Field, FieldRef, Float16Type, Float32Type, Float64Type, Int32Type, Int64Type, Schema, SchemaRef,
    UInt64Type,
};
use arrow::error::ArrowError;
use arrow::record_batch::{RecordBatch, RecordBatchReader};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Map, Value};

use crate::{Format, FormatError, Result, WriteOptions};

/// Which part of a table to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSelect {
    /// Only these columns, in this order (default: all).
    pub columns: Option<Vec<String>>,
    /// Only these rows (default: all).
    pub rows: Option<Range<u64>>,
}

impl TableSelect {
    /// Only these columns, in this order.
    pub fn with_columns<I, S>(mut self, columns: I) -> TableSelect
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.columns = Some(columns.into_iter().map(Into::into).collect());
        self
    }

    /// Only these rows (counted from 0; a range past the end yields the rows that exist).
    pub fn with_rows(mut self, rows: Range<u64>) -> TableSelect {
        self.rows = Some(rows);
        self
    }
}

/// Rows shown by a preview when no `head` is given: about a screenful.
pub const DEFAULT_HEAD: usize = 20;

/// Streams (part of) the table at `path`, stored in `format`. Fails if the format does not hold tables.
pub fn read_table(format: &dyn Format, path: &Path, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>> {
    let Some(table) = format.as_table() else {
        return Err(FormatError::Invalid(format!(
            "{} is {} data, not a table (tables are parquet, csv or arrow)",
            path.display(),
            format.name()
        )));
    };
    table.read(path, select)
}

/// Writes a stream of record batches as a Parquet file at `dest`, the way trove stores tables.
pub fn write_parquet(batches: &mut dyn RecordBatchReader, dest: &Path) -> Result<()> {
    use crate::TableFormat;
    crate::parquet::Parquet.write(batches, dest, &WriteOptions::default())
}

/// Turns an error from a batch stream returned by [`crate::TableFormat::read`] back into the
/// [`FormatError`] it carries (a bad line of a CSV file, say), so its message names the file and place.
pub fn from_arrow(error: ArrowError) -> FormatError {
    match error {
        ArrowError::ExternalError(inner) => match inner.downcast::<FormatError>() {
            Ok(format_error) => *format_error,
            Err(other) => FormatError::Arrow(ArrowError::ExternalError(other)),
        },
        other => FormatError::Arrow(other),
    }
}

/// Wraps a [`FormatError`] to travel through a [`RecordBatchReader`], whose items can only hold an
/// [`ArrowError`]; [`from_arrow`] unwraps it again.
pub(crate) fn to_arrow(error: FormatError) -> ArrowError {
    ArrowError::ExternalError(Box::new(error))
}

/// The positions of the named columns in `schema`, in the order asked; `None` when all are wanted.
pub(crate) fn column_indices(schema: &Schema, columns: Option<&[String]>, path: &Path) -> Result<Option<Vec<usize>>> {
    let Some(columns) = columns else {
        return Ok(None);
    };
    columns
        .iter()
        .map(|name| schema.index_of(name).map_err(|_| unknown_column(schema, name, path)))
        .collect::<Result<Vec<usize>>>()
        .map(Some)
}

fn unknown_column(schema: &Schema, name: &str, path: &Path) -> FormatError {
    // A table can have thousands of columns; the first few are enough to spot a typo.
    const LISTED: usize = 40;
    let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    let mut listed = names.iter().take(LISTED).copied().collect::<Vec<_>>().join(", ");
    if names.len() > LISTED {
        listed.push_str(&format!(", … ({} in all)", names.len()));
    }
    if names.is_empty() {
        listed = "none".to_string();
    }
    FormatError::Invalid(format!("no column {name:?} in {} (its columns: {listed})", path.display()))
}

/// A batch stream cut down to some columns and a window of rows, for sources that cannot skip inside the
/// file themselves. It stops pulling from the source once the window is full.
pub(crate) struct Window<I> {
    inner: I,
    schema: SchemaRef,
    projection: Option<Vec<usize>>,
    skip: u64,
    remaining: Option<u64>,
}

impl<I> Window<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
{
    /// Keeps columns `projection` (positions in `source`, in that order) of rows `skip..skip + limit`.
    pub(crate) fn new(
        inner: I,
        source: &Schema,
        projection: Option<Vec<usize>>,
        skip: u64,
        limit: Option<u64>,
    ) -> Result<Window<I>> {
        let schema = match &projection {
            Some(projection) => Arc::new(source.project(projection)?),
            None => Arc::new(source.clone()),
        };
        Ok(Window { inner, schema, projection, skip, remaining: limit })
    }
}

impl<I> Iterator for Window<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
{
    type Item = std::result::Result<RecordBatch, ArrowError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.remaining == Some(0) {
                return None;
            }
            let batch = match self.inner.next()? {
                Ok(batch) => batch,
                Err(e) => return Some(Err(e)),
            };
            let rows = batch.num_rows() as u64;
            if self.skip >= rows {
                self.skip -= rows;
                continue;
            }
            let offset = std::mem::take(&mut self.skip);
            let mut len = rows - offset;
            if let Some(remaining) = &mut self.remaining {
                len = len.min(*remaining);
                *remaining -= len;
            }
            let batch = batch.slice(offset as usize, len as usize);
            return Some(match &self.projection {
                Some(projection) => batch.project(projection),
                None => Ok(batch),
            });
        }
    }
}

impl<I> RecordBatchReader for Window<I>
where
    I: Iterator<Item = std::result::Result<RecordBatch, ArrowError>>,
{
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}

/// The least and greatest value seen in a column, in a form that compares the way the column's type does.
#[derive(Debug, Clone, PartialEq)]
enum Bounds {
    /// No value seen yet (none at all, or only nulls).
    Empty,
    /// Not known: the type has no order trove summarises, or a part of the column had no statistics.
    Unknown,
    Int(i64, i64),
    UInt(u64, u64),
    Float(f64, f64),
    Bool(bool, bool),
    Text(String, String),
    /// Dates, times, timestamps and durations, as their underlying integers.
    Temporal(i64, i64),
}

impl Bounds {
    fn merge(self, other: Bounds) -> Bounds {
        use Bounds::*;
        match (self, other) {
            (Unknown, _) | (_, Unknown) => Unknown,
            (Empty, b) | (b, Empty) => b,
            (Int(a, b), Int(c, d)) => Int(a.min(c), b.max(d)),
            (UInt(a, b), UInt(c, d)) => UInt(a.min(c), b.max(d)),
            (Float(a, b), Float(c, d)) => Float(a.min(c), b.max(d)),
            (Bool(a, b), Bool(c, d)) => Bool(a & c, b | d),
            (Text(a, b), Text(c, d)) => Text(a.min(c), b.max(d)),
            (Temporal(a, b), Temporal(c, d)) => Temporal(a.min(c), b.max(d)),
            // Parts of one column always have one kind; anything else is a bug we would rather not guess at.
            _ => Unknown,
        }
    }
}

/// Rebuilds an array's data under another type with the same memory layout (Date32 as Int32, a timestamp
/// in one zone as the same instants in another, ...).
fn retype(array: &dyn Array, to: DataType) -> Result<ArrayRef> {
    let data = array.to_data().into_builder().data_type(to).build()?;
    Ok(make_array(data))
}

/// The bounds of the non-null values of one array; unknown when they cannot be worked out, for a summary
/// should not fail over one exotic column.
fn bounds_of(array: &dyn Array) -> Bounds {
    try_bounds_of(array).unwrap_or(Bounds::Unknown)
}

fn try_bounds_of(array: &dyn Array) -> Result<Bounds> {
    if let DataType::Dictionary(_, values) = array.data_type() {
        // The values of a dictionary column are what users see, so they are what the summary orders.
        let plain = compute::cast(array, values)?;
        return try_bounds_of(plain.as_ref());
    }
    if array.null_count() == array.len() {
        return Ok(Bounds::Empty);
    }
    let bounds = match array.data_type() {
        DataType::Null => Bounds::Empty,
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => {
            let wide = compute::cast(array, &DataType::Int64)?;
            let values = wide.as_primitive::<Int64Type>();
            match (compute::min(values), compute::max(values)) {
                (Some(lo), Some(hi)) => Bounds::Int(lo, hi),
                _ => Bounds::Empty,
            }
        }
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            let wide = compute::cast(array, &DataType::UInt64)?;
            let values = wide.as_primitive::<UInt64Type>();
            match (compute::min(values), compute::max(values)) {
                (Some(lo), Some(hi)) => Bounds::UInt(lo, hi),
                _ => Bounds::Empty,
            }
        }
        DataType::Float16
        | DataType::Float32
        | DataType::Float64
        | DataType::Decimal32(..)
        | DataType::Decimal64(..)
        | DataType::Decimal128(..)
        | DataType::Decimal256(..) => {
            let wide = compute::cast(array, &DataType::Float64)?;
            // NaN has no place in an order of numbers; like Parquet's statistics, the bounds leave it out.
            let mut bounds = Bounds::Empty;
            for v in wide.as_primitive::<Float64Type>().iter().flatten().filter(|v| !v.is_nan()) {
                bounds = bounds.merge(Bounds::Float(v, v));
            }
            bounds
        }
        DataType::Boolean => {
            let values = array.as_boolean();
            match (compute::min_boolean(values), compute::max_boolean(values)) {
                (Some(lo), Some(hi)) => Bounds::Bool(lo, hi),
                _ => Bounds::Empty,
            }
        }
        DataType::Utf8 => {
            text_bounds(compute::min_string(array.as_string::<i32>()), compute::max_string(array.as_string::<i32>()))
        }
        DataType::LargeUtf8 => {
            text_bounds(compute::min_string(array.as_string::<i64>()), compute::max_string(array.as_string::<i64>()))
        }
        DataType::Utf8View => text_bounds(
            compute::min_string_view(array.as_string_view()),
            compute::max_string_view(array.as_string_view()),
        ),
        DataType::Date32 | DataType::Time32(_) => {
            let values = retype(array, DataType::Int32)?;
            let values = values.as_primitive::<Int32Type>();
            match (compute::min(values), compute::max(values)) {
                (Some(lo), Some(hi)) => Bounds::Temporal(lo.into(), hi.into()),
                _ => Bounds::Empty,
            }
        }
        DataType::Date64 | DataType::Time64(_) | DataType::Timestamp(..) | DataType::Duration(_) => {
            let values = retype(array, DataType::Int64)?;
            let values = values.as_primitive::<Int64Type>();
            match (compute::min(values), compute::max(values)) {
                (Some(lo), Some(hi)) => Bounds::Temporal(lo, hi),
                _ => Bounds::Empty,
            }
        }
        _ => Bounds::Unknown,
    };
    Ok(bounds)
}

fn is_float(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Float16 | DataType::Float32 | DataType::Float64)
}

/// The NaN values of a float array (0 for any other).
fn count_nans(values: &dyn Array) -> u64 {
    let count = |it: &mut dyn Iterator<Item = bool>| it.filter(|nan| *nan).count() as u64;
    match values.data_type() {
        DataType::Float16 => count(&mut values.as_primitive::<Float16Type>().iter().flatten().map(|v| v.is_nan())),
        DataType::Float32 => count(&mut values.as_primitive::<Float32Type>().iter().flatten().map(|v| v.is_nan())),
        DataType::Float64 => count(&mut values.as_primitive::<Float64Type>().iter().flatten().map(|v| v.is_nan())),
        _ => 0,
    }
}

fn text_bounds(lo: Option<&str>, hi: Option<&str>) -> Bounds {
    match (lo, hi) {
        (Some(lo), Some(hi)) => Bounds::Text(lo.to_string(), hi.to_string()),
        _ => Bounds::Empty,
    }
}

/// Longest text kept as a minimum or maximum in a summary, in characters: summaries live in manifests, and a
/// column of long texts should not make them long. (Parquet truncates its statistics at 64 bytes likewise.)
const SUMMARY_TEXT_CHARS: usize = 64;

/// Running statistics of one column: its null count and its least and greatest values.
#[derive(Debug, Clone)]
pub struct ColumnStats {
    field: FieldRef,
    nulls: Option<u64>,
    /// NaN values of a float column, when counted (a Parquet footer does not say).
    nans: Option<u64>,
    bounds: Bounds,
}

impl ColumnStats {
    /// Statistics of an empty column.
    pub fn new(field: FieldRef) -> ColumnStats {
        let nans = is_float(field.data_type()).then_some(0);
        ColumnStats { field, nulls: Some(0), nans, bounds: Bounds::Empty }
    }

    /// Counts the nulls of one more piece of the column and widens the bounds by its values.
    pub fn add(&mut self, values: &dyn Array) {
        self.nulls = self.nulls.map(|n| n + values.logical_null_count() as u64);
        if let Some(n) = self.nans.as_mut() {
            *n += count_nans(values);
        }
        if self.bounds != Bounds::Unknown {
            self.bounds = std::mem::replace(&mut self.bounds, Bounds::Empty).merge(bounds_of(values));
        }
    }

    /// Widens the bounds by known least and greatest values of parts of the column (one per row group of a
    /// Parquet file, say): by the least of `mins` and the greatest of `maxes`.
    pub fn add_bounds(&mut self, mins: &dyn Array, maxes: &dyn Array) {
        let lo = bounds_of(mins);
        let hi = bounds_of(maxes);
        let part = match (lo, hi) {
            (Bounds::Int(lo, _), Bounds::Int(_, hi)) => Bounds::Int(lo, hi),
            (Bounds::UInt(lo, _), Bounds::UInt(_, hi)) => Bounds::UInt(lo, hi),
            (Bounds::Float(lo, _), Bounds::Float(_, hi)) => Bounds::Float(lo, hi),
            (Bounds::Bool(lo, _), Bounds::Bool(_, hi)) => Bounds::Bool(lo, hi),
            (Bounds::Text(lo, _), Bounds::Text(_, hi)) => Bounds::Text(lo, hi),
            (Bounds::Temporal(lo, _), Bounds::Temporal(_, hi)) => Bounds::Temporal(lo, hi),
            (Bounds::Empty, Bounds::Empty) => Bounds::Empty,
            _ => Bounds::Unknown,
        };
        self.bounds = std::mem::replace(&mut self.bounds, Bounds::Empty).merge(part);
    }

    /// Sets the null count directly (`None`: not known).
    pub fn set_nulls(&mut self, nulls: Option<u64>) {
        self.nulls = nulls;
    }

    /// Sets the NaN count directly (`None`: not known, and left out of the summary).
    pub fn set_nans(&mut self, nans: Option<u64>) {
        self.nans = nans.filter(|_| is_float(self.field.data_type()));
    }

    /// The column's name.
    pub fn name(&self) -> &str {
        self.field.name()
    }

    /// Drops the bounds: they cannot be known (a part of the column had no statistics).
    pub fn forget_bounds(&mut self) {
        self.bounds = Bounds::Unknown;
    }

    /// The summary of the column: `{"name", "type", "nullable", "nulls", "min", "max"}`. `nulls` is null when
    /// not known; `min` and `max` are left out when there are no values or they are not known. Numbers and
    /// booleans are JSON numbers and booleans, everything else strings (dates and times in ISO 8601).
    pub fn to_json(&self) -> Value {
        let mut column = Map::new();
        column.insert("name".into(), self.field.name().as_str().into());
        column.insert("type".into(), self.field.data_type().to_string().into());
        column.insert("nullable".into(), self.field.is_nullable().into());
        column.insert("nulls".into(), self.nulls.map_or(Value::Null, Value::from));
        if let Some(nans) = self.nans {
            column.insert("nans".into(), nans.into());
        }
        let (min, max) = match &self.bounds {
            Bounds::Empty | Bounds::Unknown => (None, None),
            Bounds::Int(lo, hi) => (Some(Value::from(*lo)), Some(Value::from(*hi))),
            Bounds::UInt(lo, hi) => (Some(Value::from(*lo)), Some(Value::from(*hi))),
            Bounds::Float(lo, hi) => (Some(float_json(*lo)), Some(float_json(*hi))),
            Bounds::Bool(lo, hi) => (Some(Value::from(*lo)), Some(Value::from(*hi))),
            Bounds::Text(lo, hi) => (Some(Value::from(clip(lo))), Some(Value::from(clip(hi)))),
            Bounds::Temporal(lo, hi) => {
                (temporal_json(self.field.data_type(), *lo), temporal_json(self.field.data_type(), *hi))
            }
        };
        if let (Some(min), Some(max)) = (min, max) {
            column.insert("min".into(), min);
            column.insert("max".into(), max);
        }
        Value::Object(column)
    }
}

/// A float as JSON: a number, or "inf" / "-inf", which JSON numbers cannot hold. Zero is `0` whatever its
/// sign (Parquet writers record a minimum of zero as -0.0, as the format asks).
pub(crate) fn float_json(v: f64) -> Value {
    let v = if v == 0.0 { 0.0 } else { v };
    match serde_json::Number::from_f64(v) {
        Some(n) => Value::Number(n),
        None if v > 0.0 => "inf".into(),
        None => "-inf".into(),
    }
}

fn clip(text: &str) -> String {
    match text.char_indices().nth(SUMMARY_TEXT_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// A date, time, timestamp or duration, from its underlying integer, as the text arrow shows for it (ISO 8601).
fn temporal_json(data_type: &DataType, value: i64) -> Option<Value> {
    let data_type = match data_type {
        DataType::Dictionary(_, values) => values.as_ref(),
        other => other,
    };
    let raw: ArrayRef = match data_type {
        DataType::Date32 | DataType::Time32(_) => {
            Arc::new(arrow::array::Int32Array::from(vec![i32::try_from(value).ok()?]))
        }
        _ => Arc::new(arrow::array::Int64Array::from(vec![value])),
    };
    let array = retype(raw.as_ref(), displayable_type(data_type)).ok()?;
    let formatter = ArrayFormatter::try_new(array.as_ref(), &FormatOptions::default()).ok()?;
    formatter.value(0).try_to_string().ok().map(Value::from)
}

/// Running statistics of a whole table: its row count and [`ColumnStats`] for every column.
#[derive(Debug, Clone)]
pub struct TableStats {
    rows: u64,
    columns: Vec<ColumnStats>,
}

impl TableStats {
    /// Statistics of an empty table with this schema.
    pub fn new(schema: &Schema) -> TableStats {
        TableStats { rows: 0, columns: schema.fields().iter().map(|f| ColumnStats::new(f.clone())).collect() }
    }

    /// Counts one more batch of rows.
    pub fn add(&mut self, batch: &RecordBatch) {
        self.rows += batch.num_rows() as u64;
        for (stats, column) in self.columns.iter_mut().zip(batch.columns()) {
            stats.add(column.as_ref());
        }
    }

    /// Sets the row count directly (when it is known without counting, as in a Parquet footer).
    pub fn set_rows(&mut self, rows: u64) {
        self.rows = rows;
    }

    /// The statistics of each column, in schema order.
    pub fn columns_mut(&mut self) -> &mut [ColumnStats] {
        &mut self.columns
    }

    /// The summary: `{"rows": n, "columns": [...]}` (see [`ColumnStats::to_json`]). A map, so a format can add
    /// its own keys.
    pub fn to_json(&self) -> Map<String, Value> {
        let mut summary = Map::new();
        summary.insert("rows".into(), self.rows.into());
        summary.insert("columns".into(), self.columns.iter().map(ColumnStats::to_json).collect::<Vec<_>>().into());
        summary
    }
}

/// Reads a whole batch stream and summarises it: rows, schema, nulls, minimum and maximum per column.
pub fn summarise_batches(batches: &mut dyn RecordBatchReader) -> Result<Map<String, Value>> {
    let mut stats = TableStats::new(&batches.schema());
    for batch in batches {
        stats.add(&batch.map_err(from_arrow)?);
    }
    Ok(stats.to_json())
}

/// The type arrow can display for a column: a timestamp in a named zone (`Europe/Paris`) becomes the same
/// instants at offset `+00:00`, because naming zones needs a zone database this build does not carry.
fn displayable_type(data_type: &DataType) -> DataType {
    match data_type {
        DataType::Timestamp(unit, Some(zone)) if !(zone.starts_with('+') || zone.starts_with('-')) => {
            DataType::Timestamp(*unit, Some("+00:00".into()))
        }
        other => other.clone(),
    }
}

/// A batch whose values arrow can display and write as text (see `displayable_type`).
pub(crate) fn displayable(batch: &RecordBatch) -> Result<RecordBatch> {
    let schema = batch.schema();
    if schema.fields().iter().all(|f| &displayable_type(f.data_type()) == f.data_type()) {
        return Ok(batch.clone());
    }
    let mut fields = Vec::with_capacity(schema.fields().len());
    let mut columns = Vec::with_capacity(schema.fields().len());
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        let data_type = displayable_type(field.data_type());
        if &data_type == field.data_type() {
            fields.push(field.clone());
            columns.push(column.clone());
        } else {
            fields.push(Arc::new(field.as_ref().clone().with_data_type(data_type.clone())));
            columns.push(retype(column.as_ref(), data_type)?);
        }
    }
    let schema = Schema::new_with_metadata(fields, schema.metadata().clone());
    Ok(RecordBatch::try_new(Arc::new(schema), columns)?)
}

/// Longest cell shown by a preview, in characters; longer ones end in "…".
const PREVIEW_CELL_CHARS: usize = 40;

/// Reads the first `head` rows of the chosen columns through `table` and writes them with
/// [`write_preview`]; `total_rows` is the row count of the whole table.
pub(crate) fn preview_table(
    table: &dyn crate::TableFormat,
    path: &Path,
    options: &crate::PreviewOptions,
    total_rows: u64,
    out: &mut dyn Write,
) -> Result<()> {
    preview_with(|select| table.read(path, select), options, total_rows, out)
}

/// [`preview_table`] through any reader of a selection.
pub(crate) fn preview_with(
    read: impl FnOnce(&TableSelect) -> Result<Box<dyn RecordBatchReader + Send>>,
    options: &crate::PreviewOptions,
    total_rows: u64,
    out: &mut dyn Write,
) -> Result<()> {
    let head = options.head.unwrap_or(DEFAULT_HEAD) as u64;
    let select = TableSelect { columns: options.columns.clone(), rows: Some(0..head) };
    let reader = read(&select)?;
    let schema = reader.schema();
    let batches = reader.collect::<std::result::Result<Vec<_>, _>>().map_err(from_arrow)?;
    write_preview(out, &schema, &batches, total_rows)
}

/// Writes rows as an aligned text table: a header, a rule, one line per row (numbers right-aligned, nulls as
/// `null`), then how many rows there are: "… 9,999,980 more rows (10,000,000 in all)" when `total_rows` is
/// more than were shown, else "(3 rows)".
pub fn write_preview(out: &mut dyn Write, schema: &Schema, batches: &[RecordBatch], total_rows: u64) -> Result<()> {
    let fields = schema.fields();
    let mut cells: Vec<Vec<String>> = fields.iter().map(|f| vec![f.name().clone()]).collect();
    let options = FormatOptions::default().with_null("null").with_display_error(true);
    let mut shown = 0u64;
    for batch in batches {
        let batch = displayable(batch)?;
        for (cells, column) in cells.iter_mut().zip(batch.columns()) {
            let formatter = ArrayFormatter::try_new(column.as_ref(), &options)?;
            for row in 0..batch.num_rows() {
                cells.push(cell_text(&formatter.value(row).to_string()));
            }
        }
        shown += batch.num_rows() as u64;
    }
    let widths: Vec<usize> =
        cells.iter().map(|column| column.iter().map(|c| c.chars().count()).max().unwrap_or(0)).collect();
    let right: Vec<bool> = fields.iter().map(|f| is_numeric(f.data_type())).collect();
    let line_count = shown as usize + 1;
    let mut text = String::new();
    for line in 0..=line_count {
        let mut row = String::new();
        for (col, column) in cells.iter().enumerate() {
            if col > 0 {
                row.push_str("  ");
            }
            let width = widths[col];
            if line == 1 {
                row.push_str(&"-".repeat(width));
                continue;
            }
            let cell = column.get(if line == 0 { 0 } else { line - 1 }).map_or("", String::as_str);
            let pad = width.saturating_sub(cell.chars().count());
            if right[col] {
                row.push_str(&" ".repeat(pad));
                row.push_str(cell);
            } else {
                row.push_str(cell);
                row.push_str(&" ".repeat(pad));
            }
        }
        text.push_str(row.trim_end());
        text.push('\n');
    }
    if shown < total_rows {
        text.push_str(&format!(
            "… {} more {} ({} in all)\n",
            thousands(total_rows - shown),
            if total_rows - shown == 1 { "row" } else { "rows" },
            thousands(total_rows)
        ));
    } else {
        text.push_str(&match shown {
            0 => "(no rows)\n".to_string(),
            1 => "(1 row)\n".to_string(),
            n => format!("({} rows)\n", thousands(n)),
        });
    }
    out.write_all(text.as_bytes()).map_err(|source| FormatError::Io { path: "<output>".into(), source })
}

/// One cell on one line: control characters escaped so rows stay rows, long texts cut short.
fn cell_text(value: &str) -> String {
    let mut cell = String::new();
    for (count, c) in value.chars().enumerate() {
        if count == PREVIEW_CELL_CHARS {
            cell.push('…');
            break;
        }
        match c {
            '\n' => cell.push_str("\\n"),
            '\r' => cell.push_str("\\r"),
            '\t' => cell.push_str("\\t"),
            c if c.is_control() => cell.push('�'),
            c => cell.push(c),
        }
    }
    cell
}

fn is_numeric(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, values) => is_numeric(values),
        other => other.is_numeric(),
    }
}

/// `1234567` as "1,234,567".
pub(crate) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The fields of `schema` that cannot be written as text (lists, structs, maps, unions), for CSV's sake.
pub(crate) fn nested_fields(schema: &Schema) -> Vec<&Field> {
    schema.fields().iter().map(AsRef::as_ref).filter(|f| f.data_type().is_nested()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{BooleanArray, Float64Array, Int64Array, StringArray, TimestampMicrosecondArray};
    use serde_json::json;

    fn batch() -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("n", DataType::Int64, true),
            Field::new("x", DataType::Float64, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("s", DataType::Utf8, true),
            Field::new("t", DataType::Timestamp(arrow::datatypes::TimeUnit::Microsecond, Some("UTC".into())), true),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new(Int64Array::from(vec![Some(3), None, Some(-7)])),
                Arc::new(Float64Array::from(vec![Some(f64::NAN), Some(2.5), Some(-1.0)])),
                Arc::new(BooleanArray::from(vec![Some(true), Some(true), None])),
                Arc::new(StringArray::from(vec![Some("pear"), Some("apple"), None])),
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(0), Some(86_400_000_000), None]).with_timezone("UTC"),
                ),
            ],
        )
        .unwrap()
    }

    #[test]
    fn stats_merge_across_batches() {
        let batch = batch();
        let mut stats = TableStats::new(&batch.schema());
        stats.add(&batch.slice(0, 1));
        stats.add(&batch.slice(1, 2));
        let summary = Value::Object(stats.to_json());
        assert_eq!(summary["rows"], 3);
        let columns = &summary["columns"];
        assert_eq!(
            columns[0],
            json!({"name": "n", "type": "Int64", "nullable": true, "nulls": 1, "min": -7, "max": 3})
        );
        assert_eq!(columns[1]["min"], -1.0);
        assert_eq!(columns[1]["max"], 2.5);
        assert_eq!(columns[2]["min"], true);
        assert_eq!(columns[3]["min"], "apple");
        assert_eq!(columns[3]["max"], "pear");
        assert_eq!(columns[4]["min"], "1970-01-01T00:00:00Z");
        assert_eq!(columns[4]["max"], "1970-01-02T00:00:00Z");
        assert_eq!(columns[4]["nulls"], 1);
    }

    #[test]
    fn long_texts_are_clipped_in_summaries() {
        let long = "x".repeat(100);
        assert_eq!(clip(&long).chars().count(), SUMMARY_TEXT_CHARS + 1);
        assert_eq!(clip("short"), "short");
    }

    #[test]
    fn window_slices_and_projects() {
        let batch = batch();
        let batches = vec![Ok(batch.slice(0, 2)), Ok(batch.slice(2, 1))];
        let window = Window::new(batches.into_iter(), &batch.schema(), Some(vec![3, 0]), 1, Some(5)).unwrap();
        assert_eq!(window.schema().field(0).name(), "s");
        let out: Vec<RecordBatch> = window.collect::<std::result::Result<_, _>>().unwrap();
        let rows: usize = out.iter().map(RecordBatch::num_rows).sum();
        assert_eq!(rows, 2);
        assert_eq!(out[0].column(1).as_primitive::<Int64Type>().value(0), 0);
    }

    #[test]
    fn preview_aligns_and_counts() {
        let batch = batch();
        let mut out = Vec::new();
        write_preview(&mut out, &batch.schema(), std::slice::from_ref(&batch), 1_234_567).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "   n     x  b     s      t", "{text}");
        assert_eq!(lines[1], "----  ----  ----  -----  --------------------", "{text}");
        assert_eq!(lines[4], "  -7  -1.0  null  null   null", "{text}");
        assert!(text.contains("null"), "{text}");
        assert!(text.contains("1970-01-02T00:00:00Z"), "{text}");
        assert_eq!(lines.last().unwrap(), &"… 1,234,564 more rows (1,234,567 in all)");
    }

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(10_000_000), "10,000,000");
    }

    #[test]
    fn unknown_columns_are_named_with_the_existing_ones() {
        let batch = batch();
        let err = column_indices(&batch.schema(), Some(&["nope".to_string()]), Path::new("t.parquet")).unwrap_err();
        assert_eq!(err.to_string(), "no column \"nope\" in t.parquet (its columns: n, x, b, s, t)");
    }
}
