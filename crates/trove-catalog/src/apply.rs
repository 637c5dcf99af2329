//! Merging log records into the catalog.
//!
//! Rows are keyed by dataset id and hold the merged [`DatasetState`]. Visibility is derived: for each
//! `(project, path)`, the live dataset whose location was claimed last (greatest location stamp) is visible
//! and indexed; any other live claimant is kept hidden (two writers on different machines created the same
//! path at once). This is a function of the merged states alone, so it does not depend on replay order.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;
use trove_model::value::leaves;
use trove_model::{DatasetState, ProjectState, Record, Segment, Stamp};
use uuid::Uuid;

use crate::{CatalogError, Result};

struct Pending {
    exists: bool,
    state: DatasetState,
}

pub(crate) fn apply(conn: &Connection, segment: &Segment) -> Result<()> {
    let header = &segment.header;
    let mut datasets: HashMap<Uuid, Pending> = HashMap::new();
    let mut order: Vec<Uuid> = Vec::new();
    let mut projects: HashMap<String, ProjectState> = HashMap::new();
    for (i, record) in segment.records.iter().enumerate() {
        let stamp = || Stamp::new(header.ts, header.writer.clone(), i as u32);
        match record {
            Record::Dataset(change) => {
                let incoming = DatasetState::from_change(change.clone(), &stamp());
                merge_dataset(conn, &mut datasets, &mut order, incoming)?;
            }
            Record::DatasetState(state) => merge_dataset(conn, &mut datasets, &mut order, state.clone())?,
            Record::Project(change) => {
                merge_project(conn, &mut projects, ProjectState::from_change(change.clone(), &stamp()))?;
            }
            Record::ProjectState(state) => merge_project(conn, &mut projects, state.clone())?,
        }
    }
    for state in projects.values() {
        conn.prepare_cached(
            "INSERT INTO projects(name, created, updated, state) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(name) DO UPDATE SET created = ?2, updated = ?3, state = ?4",
        )?
        .execute(params![state.name, state.created(), state.updated(), to_json(state)?])?;
    }
    for id in order {
        if let Some(pending) = datasets.remove(&id) {
            write_dataset(conn, pending)?;
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|source| CatalogError::BadRow { what: "a state".into(), source })
}

fn merge_dataset(
    conn: &Connection,
    datasets: &mut HashMap<Uuid, Pending>,
    order: &mut Vec<Uuid>,
    incoming: DatasetState,
) -> Result<()> {
    if let Some(pending) = datasets.get_mut(&incoming.id) {
        pending.state.merge(&incoming);
        return Ok(());
    }
    let id = incoming.id;
    let stored: Option<String> = conn
        .prepare_cached("SELECT state FROM datasets WHERE id = ?1")?
        .query_row([id.to_string()], |r| r.get(0))
        .optional()?;
    let pending = match stored {
        Some(json) => {
            let mut state = parse_state(&json, &id.to_string())?;
            state.merge(&incoming);
            Pending { exists: true, state }
        }
        None => Pending { exists: false, state: incoming },
    };
    datasets.insert(id, pending);
    order.push(id);
    Ok(())
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
        .prepare_cached("SELECT state FROM projects WHERE name = ?1")?
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
    serde_json::from_str(json).map_err(|source| CatalogError::BadRow { what: format!("dataset {what}"), source })
}

struct Current {
    rid: i64,
    visible: bool,
    project: Option<String>,
    path: Option<String>,
    state: String,
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

const UPSERT: &str = "INSERT INTO datasets(id, project, path, kind, created, updated, alive, visible, state, rid)
    VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
    ON CONFLICT(rid) DO UPDATE SET project = ?2, path = ?3, kind = ?4, created = ?5, updated = ?6,
        alive = ?7, visible = ?8, state = ?9
    RETURNING rid";

fn write_dataset(conn: &Connection, pending: Pending) -> Result<()> {
    let state = pending.state;
    let id = state.id.to_string();
    let json = to_json(&state)?;
    let current: Option<Current> = if pending.exists {
        conn.prepare_cached("SELECT rid, visible, project, path, state FROM datasets WHERE id = ?1")?
            .query_row([&id], |r| {
                Ok(Current {
                    rid: r.get(0)?,
                    visible: r.get(1)?,
                    project: r.get(2)?,
                    path: r.get(3)?,
                    state: r.get(4)?,
                })
            })
            .optional()?
    } else {
        None
    };
    if let Some(cur) = &current {
        if cur.state == json {
            return Ok(()); // Re-applying what is already merged changes nothing.
        }
        if cur.visible {
            delete_index_rows(conn, cur.rid)?;
        }
    }
    let alive = state.is_alive();
    let (project, path) = match &state.at {
        Some(at) => (Some(at.project().to_string()), Some(at.path().as_str().to_string())),
        None => (None, None),
    };
    let (created, updated, cur_rid) = (state.created(), state.updated(), current.as_ref().map(|c| c.rid));
    let run = |visible: bool| -> rusqlite::Result<i64> {
        conn.prepare_cached(UPSERT)?
            .query_row(params![id, project, path, state.kind, created, updated, alive, visible, json, cur_rid], |r| {
                r.get(0)
            })
    };
    match run(alive) {
        Ok(rid) => {
            if alive {
                insert_index_rows(conn, rid, &state)?;
            }
        }
        Err(e) if alive && is_unique_violation(&e) => {
            let rid = run(false)?;
            claim(conn, rid, &state)?;
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(cur) = current {
        let moved = cur.project != project || cur.path != path;
        if cur.visible
            && (!alive || moved)
            && let (Some(p), Some(q)) = (cur.project, cur.path)
        {
            promote(conn, &p, &q)?;
        }
    }
    Ok(())
}

/// A live dataset whose path is held by another: the later location claim becomes the visible one.
fn claim(conn: &Connection, rid: i64, state: &DatasetState) -> Result<()> {
    let Some(at) = &state.at else { return Ok(()) };
    let holder: Option<(i64, String)> = conn
        .prepare_cached("SELECT rid, state FROM datasets WHERE project = ?1 AND path = ?2 AND visible = 1")?
        .query_row(params![at.project(), at.path().as_str()], |r| Ok((r.get(0)?, r.get(1)?)))
        .optional()?;
    if let Some((holder_rid, holder_json)) = holder {
        let holder_state = parse_state(&holder_json, &holder_rid.to_string())?;
        if holder_state.at_stamp() > state.at_stamp() {
            return Ok(());
        }
        conn.prepare_cached("UPDATE datasets SET visible = 0 WHERE rid = ?1")?.execute([holder_rid])?;
        delete_index_rows(conn, holder_rid)?;
    }
    conn.prepare_cached("UPDATE datasets SET visible = 1 WHERE rid = ?1")?.execute([rid])?;
    insert_index_rows(conn, rid, state)
}

/// A path was vacated: the best hidden claimant, if any, becomes visible.
fn promote(conn: &Connection, project: &str, path: &str) -> Result<()> {
    let taken: Option<i64> = conn
        .prepare_cached("SELECT rid FROM datasets WHERE project = ?1 AND path = ?2 AND visible = 1")?
        .query_row(params![project, path], |r| r.get(0))
        .optional()?;
    if taken.is_some() {
        return Ok(());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT rid, state FROM datasets WHERE project = ?1 AND path = ?2 AND alive = 1 AND visible = 0",
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
        conn.prepare_cached("UPDATE datasets SET visible = 1 WHERE rid = ?1")?.execute([rid])?;
        insert_index_rows(conn, rid, &state)?;
    }
    Ok(())
}

fn delete_index_rows(conn: &Connection, rid: i64) -> Result<()> {
    conn.prepare_cached("DELETE FROM tags WHERE rid = ?1")?.execute([rid])?;
    conn.prepare_cached("DELETE FROM objects WHERE rid = ?1")?.execute([rid])?;
    conn.prepare_cached("DELETE FROM meta WHERE rid = ?1")?.execute([rid])?;
    Ok(())
}

fn insert_index_rows(conn: &Connection, rid: i64, state: &DatasetState) -> Result<()> {
    let mut tags = conn.prepare_cached("INSERT INTO tags(rid, tag) VALUES (?1, ?2)")?;
    for tag in &state.tags {
        tags.execute(params![rid, tag])?;
    }
    let mut objects =
        conn.prepare_cached("INSERT INTO objects(rid, name, format, size, checksum) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (name, m) in &state.objects {
        objects.execute(params![rid, name, m.format, m.size as i64, m.checksum])?;
    }
    let mut meta = conn.prepare_cached("INSERT INTO meta(rid, key, vtype, num, txt) VALUES (?1, ?2, ?3, ?4, ?5)")?;
    for (key, value) in leaves(&state.meta) {
        let (vtype, num, txt): (i64, Option<f64>, Option<String>) = match value {
            Value::Null => (0, None, None),
            Value::Bool(b) => (1, Some(if *b { 1.0 } else { 0.0 }), None),
            Value::Number(n) => (2, n.as_f64(), None),
            Value::String(s) => (3, None, Some(s.clone())),
            Value::Array(_) => (4, None, Some(value.to_string())),
            Value::Object(_) => (5, None, None),
        };
        meta.execute(params![rid, key, vtype, num, txt])?;
    }
    Ok(())
}
