//! Merging log records into the catalog.
//!
//! Rows are keyed by dataset id and hold the merged [`DatasetState`]. Visibility is derived: for each
//! `(project, path)`, the live dataset whose location was claimed last (greatest location stamp) is visible
//! and indexed; any other live claimant is kept hidden (two writers on different machines created the same
//! path at once). This is a function of the merged states alone, so it does not depend on replay order.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use trove_model::filter::parse_timestamp;
use trove_model::value::leaves;
use trove_model::{DatasetState, ProjectState, Record, Segment, Stamp};
use uuid::Uuid;

use trove_catalog::CatalogError;

use crate::Result;

/// A dataset row as it was before this segment.
struct Current {
    rid: i64,
    visible: bool,
    project: Option<String>,
    path: Option<String>,
    state: String,
}

/// Merges a segment's records, the first of which is record `first` of the segment as published (see
/// `WriteTx::apply_part`).
pub(crate) fn apply(conn: &Connection, segment: Segment, first: u32) -> Result<()> {
    let header = &segment.header;
    // Merge the segment's records per dataset first (no I/O), then look every touched id up at once.
    let mut incoming: HashMap<Uuid, DatasetState> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    let mut projects: HashMap<String, ProjectState> = HashMap::new();
    for (i, record) in segment.records.into_iter().enumerate() {
        let stamp = || Stamp::new(header.ts, header.writer.clone(), first + i as u32);
        let state = match record {
            Record::Dataset(change) => DatasetState::from_change(change, &stamp()),
            Record::DatasetState(state) => state,
            Record::Project(change) => {
                merge_project(conn, &mut projects, ProjectState::from_change(change, &stamp()))?;
                continue;
            }
            Record::ProjectState(state) => {
                merge_project(conn, &mut projects, state)?;
                continue;
            }
        };
        match incoming.get_mut(&state.id) {
            Some(existing) => existing.merge(&state),
            None => {
                order.push(state.id);
                incoming.insert(state.id, state);
            }
        }
    }
    for state in projects.values() {
        conn.prepare_cached(
            "INSERT INTO project_rows(name, created, updated, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET created = ?2, updated = ?3, state = ?4",
        )?
        .execute(params![state.name, state.created(), state.updated(), to_json(state)?])?;
    }
    let mut current = lookup(conn, &order)?;
    let mut rows = IndexRows::default();
    for id in order {
        if let Some(state) = incoming.remove(&id) {
            write_dataset(conn, &mut rows, current.remove(&id), state)?;
        }
    }
    rows.flush(conn)
}

/// The current rows of many datasets, by id, in a few queries.
fn lookup(conn: &Connection, ids: &[Uuid]) -> Result<HashMap<Uuid, Current>> {
    const CHUNK: usize = 256;
    let mut out = HashMap::new();
    for chunk in ids.chunks(CHUNK) {
        let sql = format!(
            "SELECT id, rid, visible, project, path, state FROM dataset_rows WHERE id IN ({})",
            vec!["?"; chunk.len()].join(",")
        );
        let mut stmt = conn.prepare_cached(&sql)?;
        let mut found = stmt.query(rusqlite::params_from_iter(chunk.iter().map(|id| id.as_bytes().to_vec())))?;
        while let Some(r) = found.next()? {
            let id: Vec<u8> = r.get(0)?;
            let Ok(id) = Uuid::from_slice(&id) else { continue };
            out.insert(
                id,
                Current { rid: r.get(1)?, visible: r.get(2)?, project: r.get(3)?, path: r.get(4)?, state: r.get(5)? },
            );
        }
    }
    Ok(out)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    Ok(serde_json::to_string(value).map_err(|source| CatalogError::BadRow { what: "a state".into(), source })?)
}

fn merge_project(
    conn: &Connection,
    projects: &mut HashMap<String, ProjectState>,
    incoming: ProjectState,
) -> Result<()> {
    if let Some(state) = projects.get_mut(&incoming.name) {
        state.merge(&incoming);
        return Ok(());
    }
    let stored: Option<String> = conn
        .prepare_cached("SELECT state FROM project_rows WHERE name = ?1")?
        .query_row([&incoming.name], |r| r.get(0))
        .optional()?;
    let state = match stored {
        Some(json) => {
            let mut state: ProjectState = serde_json::from_str(&json)
                .map_err(|source| CatalogError::BadRow { what: format!("project {}", incoming.name), source })?;
            state.merge(&incoming);
            state
        }
        None => incoming,
    };
    projects.insert(state.name.clone(), state);
    Ok(())
}

pub(crate) fn parse_state(json: &str, what: &str) -> Result<DatasetState> {
    Ok(serde_json::from_str(json).map_err(|source| CatalogError::BadRow { what: format!("dataset {what}"), source })?)
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

fn write_dataset(
    conn: &Connection,
    rows: &mut IndexRows,
    current: Option<Current>,
    incoming: DatasetState,
) -> Result<()> {
    let (state, old) = match &current {
        Some(cur) => {
            let old = parse_state(&cur.state, &cur.rid.to_string())?;
            let mut state = old.clone();
            state.merge(&incoming);
            (state, Some(old))
        }
        None => (incoming, None),
    };
    let json = to_json(&state)?;
    if let (Some(cur), Some(old)) = (&current, &old) {
        if cur.state == json {
            return Ok(()); // Re-applying what is already merged changes nothing.
        }
        if cur.visible {
            delete_index_rows(conn, rows, cur.rid, old)?;
        }
    }
    let alive = state.is_alive();
    let (project, path) = match &state.at {
        Some(at) => (Some(at.project()), Some(at.path().as_str())),
        None => (None, None),
    };
    let (created, updated) = (state.created(), state.updated());
    let write = |visible: bool| -> rusqlite::Result<i64> {
        match &current {
            Some(cur) => {
                conn.prepare_cached(
                    "UPDATE dataset_rows SET project = ?2, path = ?3, kind = ?4, created = ?5, updated = ?6, alive = ?7,
                     visible = ?8, state = ?9, lineage = ?10, lineage_name = ?11 WHERE rid = ?1",
                )?
                .execute(params![
                    cur.rid,
                    project,
                    path,
                    state.kind,
                    created,
                    updated,
                    alive,
                    visible,
                    json,
                    state.lineage_key(),
                    state.lineage_name()
                ])?;
                Ok(cur.rid)
            }
            None => {
                conn.prepare_cached(
                    "INSERT INTO dataset_rows(id, project, path, kind, created, updated, alive, visible, state, lineage,
                     lineage_name) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                )?
                .execute(params![
                    state.id.as_bytes().as_slice(),
                    project,
                    path,
                    state.kind,
                    created,
                    updated,
                    alive,
                    visible,
                    json,
                    state.lineage_key(),
                    state.lineage_name()
                ])?;
                Ok(conn.last_insert_rowid())
            }
        }
    };
    match write(alive) {
        Ok(rid) => {
            if alive {
                rows.add(rid, &state);
            }
        }
        Err(e) if alive && is_unique_violation(&e) => {
            let rid = write(false)?;
            rows.flush(conn)?;
            claim(conn, rid, &state)?;
        }
        Err(e) => return Err(e.into()),
    }
    if let Some(cur) = current {
        let moved = cur.project.as_deref() != project || cur.path.as_deref() != path;
        if cur.visible
            && (!alive || moved)
            && let (Some(p), Some(q)) = (cur.project, cur.path)
        {
            rows.flush(conn)?;
            promote(conn, &p, &q)?;
        }
    }
    Ok(())
}

/// A live dataset whose path is held by another: the later location claim becomes the visible one.
fn claim(conn: &Connection, rid: i64, state: &DatasetState) -> Result<()> {
    let Some(at) = &state.at else { return Ok(()) };
    let mut rows = IndexRows::default();
    let holder: Option<(i64, String)> = conn
        .prepare_cached("SELECT rid, state FROM dataset_rows WHERE project = ?1 AND path = ?2 AND visible = 1")?
        .query_row(params![at.project(), at.path().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((holder_rid, holder_json)) = holder {
        let holder_state = parse_state(&holder_json, &holder_rid.to_string())?;
        if holder_state.at_stamp() > state.at_stamp() {
            return Ok(());
        }
        conn.prepare_cached("UPDATE dataset_rows SET visible = 0 WHERE rid = ?1")?.execute([holder_rid])?;
        delete_index_rows(conn, &mut rows, holder_rid, &holder_state)?;
    }
    conn.prepare_cached("UPDATE dataset_rows SET visible = 1 WHERE rid = ?1")?.execute([rid])?;
    rows.add(rid, state);
    rows.flush(conn)
}

/// A path was vacated: the best hidden claimant, if any, becomes visible.
fn promote(conn: &Connection, project: &str, path: &str) -> Result<()> {
    let taken: Option<i64> = conn
        .prepare_cached("SELECT rid FROM dataset_rows WHERE project = ?1 AND path = ?2 AND visible = 1")?
        .query_row(params![project, path], |r| r.get(0))
        .optional()?;
    if taken.is_some() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT rid, state FROM dataset_rows WHERE project = ?1 AND path = ?2 AND alive = 1 AND visible = 0",
    )?;
    let mut best: Option<(i64, DatasetState)> = None;
    for row in stmt.query_map(params![project, path], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?)))? {
        let (rid, json) = row?;
        let state = parse_state(&json, &rid.to_string())?;
        if best.as_ref().is_none_or(|(_, b)| state.at_stamp() > b.at_stamp()) {
            best = Some((rid, state));
        }
    }
    if let Some((rid, state)) = best {
        conn.prepare_cached("UPDATE dataset_rows SET visible = 1 WHERE rid = ?1")?.execute([rid])?;
        insert_index_rows(conn, rid, &state)?;
    }
    Ok(())
}

/// Deletes a dataset's index rows now; its `key_stats` decrements wait in `rows` for the next flush.
fn delete_index_rows(conn: &Connection, rows: &mut IndexRows, rid: i64, old: &DatasetState) -> Result<()> {
    let mut tags = conn.prepare_cached("DELETE FROM tag_rows WHERE tag = ?1 AND rid = ?2")?;
    for tag in &old.tags {
        tags.execute(params![tag, rid])?;
    }
    conn.prepare_cached("DELETE FROM object_rows WHERE rid = ?1")?.execute([rid])?;
    let mut meta = conn.prepare_cached(
        "DELETE FROM meta WHERE kid = (SELECT kid FROM keys WHERE key = ?1) AND vtype = ?2 AND val = ?3 AND rid = ?4",
    )?;
    let project = old.at.as_ref().map_or("", |at| at.project());
    for (key, vtype, val, counted) in index_leaves(old) {
        meta.execute(params![key, vtype, val, rid])?;
        if counted {
            rows.stats.count(project, key, vtype, -1);
        }
    }
    Ok(())
}

/// The value type codes of the `meta` table (see schema.rs).
pub(crate) mod vtype {
    pub const NULL: i64 = 0;
    pub const BOOL: i64 = 1;
    pub const NUMBER: i64 = 2;
    pub const STRING: i64 = 3;
    pub const ARRAY: i64 = 4;
    pub const OBJECT: i64 = 5;
    /// An integer above `i64::MAX`: val is the integer less 2^63, so that the rows order exactly.
    pub const BIG: i64 = 6;
    pub const TIME: i64 = 7;
    /// An element of an array: this plus the element's own code.
    pub const ELEMENT: i64 = 10;
    /// The length of an array.
    pub const SIZE: i64 = 20;
    /// Codes below this are the value of a key itself (a leaf, or an object), which `exists` sees.
    pub const VALUES_END: i64 = TIME;
}

/// 2^63: the offset of `vtype::BIG` values.
pub(crate) const BIG_OFFSET: u64 = 1 << 63;

/// The index row of a whole array or object, by its canonical form ([`trove_model::value::canonical_json`]),
/// so that equality is one lookup.
/// Arrays and the empty object keep their canonical text (what `trove sql` shows); a non-empty object, which
/// holds its nested keys' rows too, is its hash, so that nesting never repeats text.
pub(crate) fn whole_value_key(value: &Value) -> rusqlite::types::Value {
    let canonical = trove_model::value::canonical_json(value);
    match value {
        Value::Object(map) if !map.is_empty() => {
            rusqlite::types::Value::Blob(blake3::hash(canonical.as_bytes()).as_bytes()[..16].to_vec())
        }
        _ => rusqlite::types::Value::Text(canonical),
    }
}

/// The rows (type code, value) by which one value is found: one per value, and a second, time-typed row for a
/// string that is an ISO-8601 timestamp.
fn value_rows(value: &Value, out: &mut Vec<(i64, rusqlite::types::Value)>) {
    use rusqlite::types::Value as Sql;
    match value {
        Value::Null => out.push((vtype::NULL, Sql::Integer(0))),
        Value::Bool(b) => out.push((vtype::BOOL, Sql::Integer(i64::from(*b)))),
        Value::Number(n) => out.push(match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => (vtype::NUMBER, Sql::Integer(i)),
            (_, Some(u)) => (vtype::BIG, Sql::Integer((u - BIG_OFFSET) as i64)),
            _ => (vtype::NUMBER, Sql::Real(n.as_f64().unwrap_or(f64::NAN))),
        }),
        Value::String(s) => {
            out.push((vtype::STRING, Sql::Text(s.clone())));
            if let Some(micros) = parse_timestamp(s) {
                out.push((vtype::TIME, Sql::Integer(micros)));
            }
        }
        Value::Array(_) => out.push((vtype::ARRAY, whole_value_key(value))),
        Value::Object(_) => out.push((vtype::OBJECT, whole_value_key(value))),
    }
}

/// One `meta` row of a dataset, and whether `key_stats` counts it (the leaves and their times do; the rows of
/// nested objects, array elements and lengths do not).
type MetaRow = (String, i64, rusqlite::types::Value, bool);

/// The `meta` rows of a dataset: each metadata leaf by its dotted key, type code and comparable value; each
/// nested object whole; each array's distinct elements and its length. Indexing and unindexing both use this,
/// so they always agree.
fn index_leaves(state: &DatasetState) -> Vec<MetaRow> {
    use rusqlite::types::Value as Sql;
    let mut out = Vec::new();
    let mut rows = Vec::new();
    for (key, value) in leaves(&state.meta) {
        rows.clear();
        value_rows(value, &mut rows);
        out.extend(rows.drain(..).map(|(code, val)| (key.clone(), code, val, true)));
        if let Value::Array(items) = value {
            for item in items {
                value_rows(item, &mut rows);
            }
            // One row per distinct element: the primary key is (kid, vtype, val, rid).
            // SQLite's keys equate 2 with 2.0: whole floats become integers before duplicates are dropped.
            for (_, val) in rows.iter_mut() {
                if let Sql::Real(x) = *val
                    && x.fract() == 0.0
                    && x.abs() < 9_223_372_036_854_775_808.0
                {
                    *val = Sql::Integer(x as i64);
                }
            }
            rows.sort_by_key(|(code, val)| (*code, format!("{val:?}")));
            rows.dedup();
            out.extend(rows.drain(..).map(|(code, val)| (key.clone(), vtype::ELEMENT + code, val, false)));
            out.push((key.clone(), vtype::SIZE, Sql::Integer(items.len() as i64), false));
        }
    }
    nested_objects("", &state.meta, &mut out);
    out
}

/// A row for every non-empty object below the top level, whole (empty ones are leaves already).
fn nested_objects(prefix: &str, doc: &serde_json::Map<String, Value>, out: &mut Vec<MetaRow>) {
    for (k, v) in doc {
        if let Value::Object(inner) = v
            && !inner.is_empty()
        {
            let key = if prefix.is_empty() { k.clone() } else { format!("{prefix}.{k}") };
            out.push((key.clone(), vtype::OBJECT, whole_value_key(v), false));
            nested_objects(&key, inner, out);
        }
    }
}

/// Changes to `key_stats`, summed before they are written.
#[derive(Default)]
struct KeyStats(HashMap<(String, String, i64), i64>);

impl KeyStats {
    fn count(&mut self, project: &str, key: String, vtype: i64, delta: i64) {
        *self.0.entry((project.to_string(), key, vtype)).or_default() += delta;
    }

    fn flush(&mut self, conn: &Connection, kids: &mut HashMap<String, i64>) -> Result<()> {
        let mut stmt = conn.prepare_cached(
            "INSERT INTO key_stats(project, kid, vtype, n) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(project, kid, vtype) DO UPDATE SET n = n + excluded.n",
        )?;
        for ((project, key, vtype), delta) in self.0.drain() {
            if delta != 0 {
                let kid = cached_key_id(conn, kids, key)?;
                stmt.execute(params![project, kid, vtype, delta])?;
            }
        }
        conn.prepare_cached("DELETE FROM key_stats WHERE n = 0")?.execute([])?;
        Ok(())
    }
}

fn cached_key_id(conn: &Connection, kids: &mut HashMap<String, i64>, key: String) -> Result<i64> {
    if let Some(kid) = kids.get(&key) {
        return Ok(*kid);
    }
    let kid = key_id(conn, &key)?;
    kids.insert(key, kid);
    Ok(kid)
}

fn insert_index_rows(conn: &Connection, rid: i64, state: &DatasetState) -> Result<()> {
    let mut rows = IndexRows::default();
    rows.add(rid, state);
    rows.flush(conn)
}

/// Index rows waiting to be inserted, many rows a statement: per-statement overhead, not the rows
/// themselves, is most of the cost of small inserts.
#[derive(Default)]
struct IndexRows {
    tags: Vec<(String, i64)>,
    objects: Vec<(i64, String, String, i64, String)>,
    meta: Vec<(String, i64, rusqlite::types::Value, i64)>,
    stats: KeyStats,
}

/// Rows per multi-row INSERT.
const ROWS_PER_INSERT: usize = 128;

impl IndexRows {
    fn add(&mut self, rid: i64, state: &DatasetState) {
        for tag in &state.tags {
            self.tags.push((tag.clone(), rid));
        }
        for (name, m) in &state.objects {
            self.objects.push((rid, name.clone(), m.format.clone(), m.size as i64, m.checksum.clone()));
        }
        let project = state.at.as_ref().map_or("", |at| at.project());
        for (key, vtype, val, counted) in index_leaves(state) {
            if counted {
                self.stats.count(project, key.clone(), vtype, 1);
            }
            self.meta.push((key, vtype, val, rid));
        }
    }

    fn flush(&mut self, conn: &Connection) -> Result<()> {
        // Inserting in key order keeps each B-tree's cursor moving forward.
        self.tags.sort_unstable();
        let mut kids: HashMap<String, i64> = HashMap::new();
        let mut meta: Vec<(i64, i64, rusqlite::types::Value, i64)> = Vec::with_capacity(self.meta.len());
        for (key, vtype, val, rid) in std::mem::take(&mut self.meta) {
            meta.push((cached_key_id(conn, &mut kids, key)?, vtype, val, rid));
        }
        self.stats.flush(conn, &mut kids)?;
        meta.sort_unstable_by_key(|row| (row.0, row.1));
        insert_many(conn, "tag_rows(tag, rid)", 2, &std::mem::take(&mut self.tags), |stmt, at, (tag, rid)| {
            stmt.raw_bind_parameter(at, tag)?;
            stmt.raw_bind_parameter(at + 1, rid)
        })?;
        insert_many(
            conn,
            "object_rows(rid, name, format, size, checksum)",
            5,
            &std::mem::take(&mut self.objects),
            |stmt, at, (rid, name, format, size, checksum)| {
                stmt.raw_bind_parameter(at, rid)?;
                stmt.raw_bind_parameter(at + 1, name)?;
                stmt.raw_bind_parameter(at + 2, format)?;
                stmt.raw_bind_parameter(at + 3, size)?;
                stmt.raw_bind_parameter(at + 4, checksum)
            },
        )?;
        insert_many(conn, "meta(kid, vtype, val, rid)", 4, &meta, |stmt, at, (kid, vtype, val, rid)| {
            stmt.raw_bind_parameter(at, kid)?;
            stmt.raw_bind_parameter(at + 1, vtype)?;
            stmt.raw_bind_parameter(at + 2, val)?;
            stmt.raw_bind_parameter(at + 3, rid)
        })
    }
}

/// The id of a metadata key, registering it on first use.
fn key_id(conn: &Connection, key: &str) -> Result<i64> {
    if let Some(kid) =
        conn.prepare_cached("SELECT kid FROM keys WHERE key = ?1")?.query_row([key], |r| r.get(0)).optional()?
    {
        return Ok(kid);
    }
    conn.prepare_cached("INSERT INTO keys(key) VALUES (?1)")?.execute([key])?;
    Ok(conn.last_insert_rowid())
}

/// Inserts `rows` into `table(columns)`, [`ROWS_PER_INSERT`] rows a statement.
///
/// `OR FAIL`, not the default `OR ABORT`: a constraint error still fails the statement (and the caller rolls
/// the whole transaction back), but SQLite then needs no statement journal, which for a multi-row INSERT
/// copied every page the statement touched (16 KiB each) before changing it: about a third of an ingest's
/// time went to that copying and its allocations (perf, 200,000 datasets).
fn insert_many<T>(
    conn: &Connection,
    table: &str,
    width: usize,
    rows: &[T],
    bind: impl Fn(&mut rusqlite::Statement<'_>, usize, &T) -> rusqlite::Result<()>,
) -> Result<()> {
    let one = format!("({})", vec!["?"; width].join(","));
    for chunk in rows.chunks(ROWS_PER_INSERT) {
        let sql = format!("INSERT OR FAIL INTO {table} VALUES {}", vec![one.as_str(); chunk.len()].join(","));
        let mut stmt = conn.prepare_cached(&sql)?;
        for (i, row) in chunk.iter().enumerate() {
            bind(&mut stmt, 1 + i * width, row)?;
        }
        stmt.raw_execute()?;
    }
    Ok(())
}
