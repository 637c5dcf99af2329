//! Merging log records into the catalog.
//!
//! Rows are keyed by dataset id and hold the merged [`DatasetState`]. Visibility is derived: for each
//! `(project, path)`, the live dataset whose location was claimed last (greatest location stamp) is visible
//! and indexed; any other live claimant is kept hidden (two writers on different machines created the same
//! path at once). This is a function of the merged states alone, so it does not depend on replay order.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use trove_catalog::index::{
    IndexValue, index_rows, merge_segment, merge_stored_project, state_json, whole_value_bytes,
};
use trove_model::{DatasetState, Segment};
use uuid::Uuid;

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
    // Merge the segment's records per dataset first (no I/O), then look every touched id up at once.
    let merged = merge_segment(segment, first);
    for incoming in merged.projects {
        let stored: Option<String> = conn
            .prepare_cached("SELECT state FROM project_rows WHERE name = ?1")?
            .query_row([&incoming.name], |r| r.get(0))
            .optional()?;
        let state = merge_stored_project(stored.as_deref(), incoming)?;
        conn.prepare_cached(
            "INSERT INTO project_rows(name, created, updated, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET created = ?2, updated = ?3, state = ?4",
        )?
        .execute(params![state.name, state.created(), state.updated(), state_json(&state)?])?;
    }
    let ids: Vec<Uuid> = merged.datasets.iter().map(|s| s.id).collect();
    let mut current = lookup(conn, &ids)?;
    let mut rows = IndexRows::default();
    for state in merged.datasets {
        write_dataset(conn, &mut rows, current.remove(&state.id), state)?;
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
    let json = state_json(&state)?;
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

pub(crate) use trove_catalog::index::vtype;

/// 2^63: the offset of `vtype::BIG` values.
pub(crate) const BIG_OFFSET: u64 = 1 << 63;

/// The SQLite value of an array or object whole (see [`whole_value_bytes`]).
pub(crate) fn whole_value_key(value: &Value) -> rusqlite::types::Value {
    match whole_value_bytes(value) {
        Ok(hash) => rusqlite::types::Value::Blob(hash.to_vec()),
        Err(text) => rusqlite::types::Value::Text(text),
    }
}

/// How SQLite stores an index row's value: integers above `i64::MAX` move to their own type, less 2^63, so
/// that every value fits SQLite's integers and the rows order exactly.
fn encode(code: i64, value: IndexValue<'_>) -> (i64, rusqlite::types::Value) {
    use rusqlite::types::Value as Sql;
    match value {
        IndexValue::Null => (code, Sql::Integer(0)),
        IndexValue::Bool(b) => (code, Sql::Integer(i64::from(b))),
        IndexValue::Int(i) | IndexValue::Time(i) => (code, Sql::Integer(i)),
        IndexValue::UInt(u) => (code - vtype::NUMBER + vtype::BIG, Sql::Integer((u - BIG_OFFSET) as i64)),
        IndexValue::Float(x) => (code, Sql::Real(x)),
        IndexValue::Str(s) => (code, Sql::Text(s.to_string())),
        IndexValue::Whole(v) => (code, whole_value_key(v)),
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
    let mut out: Vec<MetaRow> = Vec::new();
    let mut elements: Vec<(i64, Sql)> = Vec::new();
    let mut element_key: Option<String> = None;
    let flush = |key: Option<String>, elements: &mut Vec<(i64, Sql)>, out: &mut Vec<MetaRow>| {
        // One row per distinct element: the primary key is (kid, vtype, val, rid).
        // SQLite's keys equate 2 with 2.0: whole floats become integers before duplicates are dropped.
        for (_, val) in elements.iter_mut() {
            if let Sql::Real(x) = *val
                && x.fract() == 0.0
                && x.abs() < 9_223_372_036_854_775_808.0
            {
                *val = Sql::Integer(x as i64);
            }
        }
        elements.sort_by_key(|(code, val)| (*code, format!("{val:?}")));
        elements.dedup();
        if let Some(key) = key {
            out.extend(elements.drain(..).map(|(code, val)| (key.clone(), code, val, false)));
        }
    };
    for row in index_rows(&state.meta) {
        let (code, val) = encode(row.code, row.value);
        let is_element = (vtype::ELEMENT..vtype::SIZE).contains(&row.code);
        if is_element {
            if element_key.as_deref() != Some(row.key.as_str()) {
                flush(element_key.take(), &mut elements, &mut out);
                element_key = Some(row.key.clone());
            }
            elements.push((code, val));
        } else {
            out.push((row.key, code, val, row.counted));
        }
    }
    flush(element_key.take(), &mut elements, &mut out);
    out
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

pub(crate) fn parse_state(json: &str, what: &str) -> Result<DatasetState> {
    Ok(trove_catalog::index::parse_state(json, what)?)
}
