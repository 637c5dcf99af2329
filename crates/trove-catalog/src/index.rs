//! What a catalog indexes of a dataset, whichever engine stores it: the merge of a segment's records per
//! dataset, and the index rows of a dataset's metadata. Engines encode these rows their own way (SQLite in
//! one polymorphic column, PostgreSQL in a number and a bytes column) but index the same things, so their
//! answers agree.

use std::collections::HashMap;

use serde_json::{Map, Value};
use trove_model::filter::parse_timestamp;
use trove_model::value::leaves;
use trove_model::{DatasetState, ProjectState, Record, Segment, Stamp};
use uuid::Uuid;

/// The value type codes of the index rows (the `vtype` column of both engines).
pub mod vtype {
    pub const NULL: i64 = 0;
    pub const BOOL: i64 = 1;
    pub const NUMBER: i64 = 2;
    pub const STRING: i64 = 3;
    pub const ARRAY: i64 = 4;
    pub const OBJECT: i64 = 5;
    /// An integer above `i64::MAX`, for an engine whose numbers stop there (SQLite).
    pub const BIG: i64 = 6;
    pub const TIME: i64 = 7;
    /// An element of an array: this plus the element's own code.
    pub const ELEMENT: i64 = 10;
    /// The length of an array.
    pub const SIZE: i64 = 20;
    /// Codes below this are the value of a key itself (a leaf, or an object), which `exists` sees.
    pub const VALUES_END: i64 = TIME;
}

/// One indexed value.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum IndexValue<'a> {
    Null,
    Bool(bool),
    Int(i64),
    /// An integer above `i64::MAX`.
    UInt(u64),
    Float(f64),
    Str(&'a str),
    /// Microseconds since the epoch, of a string that is an ISO-8601 timestamp.
    Time(i64),
    /// An array or object whole (see [`whole_value_bytes`]).
    Whole(&'a Value),
}

/// One index row of a dataset: a key, a type code, a value, and whether `key_stats` counts it (the leaves and
/// their times are counted; nested objects, array elements and lengths are not).
#[derive(Clone, Debug, PartialEq)]
pub struct IndexRow<'a> {
    pub key: String,
    pub code: i64,
    pub value: IndexValue<'a>,
    pub counted: bool,
}

/// The rows by which one value is found: one per value, and a second, time-typed row for a string that is
/// an ISO-8601 timestamp.
fn value_rows<'a>(value: &'a Value, out: &mut Vec<(i64, IndexValue<'a>)>) {
    match value {
        Value::Null => out.push((vtype::NULL, IndexValue::Null)),
        Value::Bool(b) => out.push((vtype::BOOL, IndexValue::Bool(*b))),
        Value::Number(n) => out.push((
            vtype::NUMBER,
            match (n.as_i64(), n.as_u64()) {
                (Some(i), _) => IndexValue::Int(i),
                (_, Some(u)) => IndexValue::UInt(u),
                _ => IndexValue::Float(n.as_f64().unwrap_or(f64::NAN)),
            },
        )),
        Value::String(s) => {
            out.push((vtype::STRING, IndexValue::Str(s)));
            if let Some(micros) = parse_timestamp(s) {
                out.push((vtype::TIME, IndexValue::Time(micros)));
            }
        }
        Value::Array(_) => out.push((vtype::ARRAY, IndexValue::Whole(value))),
        Value::Object(_) => out.push((vtype::OBJECT, IndexValue::Whole(value))),
    }
}

/// The index rows of a dataset's metadata: each leaf by its dotted key, type code and value; each nested
/// object whole; each array's elements and its length. Indexing and unindexing both use this, so they
/// always agree.
pub fn index_rows(meta: &Map<String, Value>) -> Vec<IndexRow<'_>> {
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for (key, value) in leaves(meta) {
        value_rows(value, &mut rows);
        out.extend(rows.drain(..).map(|(code, value)| IndexRow { key: key.clone(), code, value, counted: true }));
        if let Value::Array(items) = value {
            for item in items {
                value_rows(item, &mut rows);
            }
            out.extend(rows.drain(..).map(|(code, value)| IndexRow {
                key: key.clone(),
                code: vtype::ELEMENT + code,
                value,
                counted: false,
            }));
            out.push(IndexRow {
                key: key.clone(),
                code: vtype::SIZE,
                value: IndexValue::Int(i64::try_from(items.len()).unwrap_or(i64::MAX)),
                counted: false,
            });
        }
    }
    nested_objects("", meta, &mut out);
    out
}

/// A row for every non-empty object below the top level, whole (empty ones are leaves already).
fn nested_objects<'a>(prefix: &str, doc: &'a Map<String, Value>, out: &mut Vec<IndexRow<'a>>) {
    for (k, v) in doc {
        if let Value::Object(inner) = v
            && !inner.is_empty()
        {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            out.push(IndexRow { key: key.clone(), code: vtype::OBJECT, value: IndexValue::Whole(v), counted: false });
            nested_objects(&key, inner, out);
        }
    }
}

/// The indexed form of an array or object whole, by its canonical form
/// ([`trove_model::value::canonical_json`]), so that equality is one lookup: arrays and the empty object keep
/// their canonical text (what `trove sql` shows); a non-empty object, which holds its nested keys' rows too,
/// is the first 16 bytes of its hash, so that nesting never repeats text. `Err` holds the text, `Ok` the hash.
pub fn whole_value_bytes(value: &Value) -> Result<[u8; 16], String> {
    let canonical = trove_model::value::canonical_json(value);
    match value {
        Value::Object(map) if !map.is_empty() => {
            let mut hash = [0u8; 16];
            hash.copy_from_slice(&blake3::hash(canonical.as_bytes()).as_bytes()[..16]);
            Ok(hash)
        }
        _ => Err(canonical),
    }
}

/// A segment's records merged per dataset and per project (no I/O): what an engine then merges with the
/// rows it holds.
#[derive(Debug, Default)]
pub struct MergedSegment {
    /// One merged state per dataset, in the order the segment first names them.
    pub datasets: Vec<DatasetState>,
    /// One merged state per project, in the order the segment first names them.
    pub projects: Vec<ProjectState>,
}

/// Merges a segment's records, the first of which is record `first` of the segment as published: every
/// change is stamped with its commit's time and writer and its place in the commit.
pub fn merge_segment(segment: Segment, first: u32) -> MergedSegment {
    let header = &segment.header;
    let mut datasets: Vec<DatasetState> = Vec::new();
    let mut at: HashMap<Uuid, usize> = HashMap::new();
    let mut projects: Vec<ProjectState> = Vec::new();
    for (i, record) in segment.records.into_iter().enumerate() {
        let stamp = || Stamp::new(header.ts, header.writer.clone(), first + i as u32);
        let state = match record {
            Record::Dataset(change) => DatasetState::from_change(change, &stamp()),
            Record::DatasetState(state) => state,
            Record::Project(change) => {
                merge_project(&mut projects, ProjectState::from_change(change, &stamp()));
                continue;
            }
            Record::ProjectState(state) => {
                merge_project(&mut projects, state);
                continue;
            }
        };
        match at.get(&state.id) {
            Some(&i) => datasets[i].merge(&state),
            None => {
                at.insert(state.id, datasets.len());
                datasets.push(state);
            }
        }
    }
    MergedSegment { datasets, projects }
}

fn merge_project(projects: &mut Vec<ProjectState>, incoming: ProjectState) {
    match projects.iter_mut().find(|p| p.name == incoming.name) {
        Some(state) => state.merge(&incoming),
        None => projects.push(incoming),
    }
}

/// A state as the JSON both engines store.
pub fn state_json<T: serde::Serialize>(value: &T) -> crate::Result<String> {
    serde_json::to_string(value).map_err(|source| crate::CatalogError::BadRow { what: "a state".into(), source })
}

/// A stored dataset state, read back.
pub fn parse_state(json: &str, what: &str) -> crate::Result<DatasetState> {
    serde_json::from_str(json).map_err(|source| crate::CatalogError::BadRow { what: format!("dataset {what}"), source })
}

/// A stored project state, read back.
pub fn parse_project(json: &str, name: &str) -> crate::Result<ProjectState> {
    serde_json::from_str(json).map_err(|source| crate::CatalogError::BadRow { what: format!("project {name}"), source })
}

fn type_name(code: i64) -> &'static str {
    match code {
        vtype::NULL => "null",
        vtype::BOOL => "boolean",
        vtype::NUMBER | vtype::BIG => "number",
        vtype::STRING => "string",
        vtype::ARRAY => "array",
        _ => "object",
    }
}

/// `trove schema`'s answer from an engine's counts: `(key id, key, type code, count)` rows in key order
/// (from `key_stats`, kept as data is written), and `ends(key id, type code)`, the least and greatest value of
/// one key and type (numbers as JSON numbers, times as microseconds).
pub fn key_usage(
    counts: Vec<(i64, String, i64, u64)>,
    ends: &mut dyn FnMut(i64, i64) -> crate::Result<Option<(Value, Value)>>,
) -> crate::Result<Vec<crate::KeyUsage>> {
    let mut out: Vec<(i64, crate::KeyUsage)> = Vec::new();
    for (kid, key, code, n) in counts {
        if out.last().is_none_or(|(k, _)| *k != kid) {
            out.push((kid, crate::KeyUsage { key, types: vec![], times: 0, numbers: None, time_range: None }));
        }
        let Some((_, usage)) = out.last_mut() else { continue };
        match code {
            vtype::TIME => {
                usage.times = n;
                usage.time_range = ends(kid, code)?.and_then(|(a, b)| Some((a.as_i64()?, b.as_i64()?)));
            }
            vtype::BIG => {
                // Integers above i64::MAX: counted with the numbers, and the greatest of them when present.
                match usage.types.iter_mut().find(|(name, _)| *name == "number") {
                    Some((_, count)) => *count += n,
                    None => usage.types.push(("number", n)),
                }
                if let Some((low, high)) = ends(kid, code)? {
                    usage.numbers = Some(match usage.numbers.take() {
                        Some((least, _)) => (least, high),
                        None => (low, high),
                    });
                }
            }
            _ => {
                usage.types.push((type_name(code), n));
                if code == vtype::NUMBER {
                    usage.numbers = ends(kid, code)?;
                }
            }
        }
    }
    Ok(out.into_iter().map(|(_, u)| u).filter(|u| u.count() > 0).collect())
}

/// A project's incoming state merged into the one a catalog stores (as JSON), if it stores one.
pub fn merge_stored_project(stored: Option<&str>, incoming: ProjectState) -> crate::Result<ProjectState> {
    match stored {
        Some(json) => {
            let mut state = parse_project(json, &incoming.name)?;
            state.merge(&incoming);
            Ok(state)
        }
        None => Ok(incoming),
    }
}
