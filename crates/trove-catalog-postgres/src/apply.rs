//! Merging log records into the catalog: the same rules as the SQLite engine's (rows keyed by dataset id
//! hold the merged state; for each `(project, path)` the live dataset whose location was claimed last is
//! visible and indexed, any other live claimant is kept hidden), in fewer round trips: rows of many
//! datasets are looked up, created and indexed a statement (or a `COPY`) at a time.

use std::collections::HashMap;
use std::fmt::Write as _;

use trove_catalog::index::{
    IndexValue, index_rows, merge_segment, merge_stored_project, parse_state, state_json, vtype, whole_value_bytes,
};
use trove_model::{DatasetState, Segment};
use uuid::Uuid;

use crate::{Pg, Result};

/// A dataset row as it was before this segment.
struct Current {
    rid: i64,
    visible: bool,
    project: Option<String>,
    path: Option<String>,
    state: String,
}

pub(crate) fn apply(pg: &Pg, segment: Segment, first: u32) -> Result<()> {
    let merged = merge_segment(segment, first);
    for incoming in merged.projects {
        let stored = pg.query_opt("SELECT state FROM project_rows WHERE name = $1", &[&incoming.name])?;
        let state = merge_stored_project(stored.as_ref().map(|r| r.get::<_, &str>(0)), incoming)?;
        pg.execute(
            "INSERT INTO project_rows(name, created, updated, state) VALUES ($1, $2, $3, $4)
             ON CONFLICT (name) DO UPDATE SET created = $2, updated = $3, state = $4",
            &[&state.name, &state.created(), &state.updated(), &state_json(&state)?],
        )?;
    }
    let ids: Vec<Uuid> = merged.datasets.iter().map(|s| s.id).collect();
    let mut current = lookup(pg, &ids)?;
    let mut rows = IndexRows::default();
    let mut fresh = Vec::new();
    // Once a claim or a promotion changed other rows' visibility, rows looked up before may be stale.
    let mut disturbed = false;
    for state in merged.datasets {
        let cur = match current.remove(&state.id) {
            Some(_) if disturbed => lookup(pg, &[state.id])?.remove(&state.id),
            cur => cur,
        };
        match cur {
            Some(cur) => disturbed |= update(pg, &mut rows, cur, state)?,
            None => fresh.push(state),
        }
    }
    insert_fresh(pg, &mut rows, fresh)?;
    rows.flush(pg)
}

/// The current rows of many datasets, by id, in one query.
fn lookup(pg: &Pg, ids: &[Uuid]) -> Result<HashMap<Uuid, Current>> {
    let mut out = HashMap::new();
    if ids.is_empty() {
        return Ok(out);
    }
    let ids = ids.to_vec();
    for r in pg.query("SELECT id, rid, visible, project, path, state FROM dataset_rows WHERE id = ANY($1)", &[&ids])? {
        out.insert(
            r.get(0),
            Current { rid: r.get(1), visible: r.get(2), project: r.get(3), path: r.get(4), state: r.get(5) },
        );
    }
    Ok(out)
}

/// The columns of a dataset row, from its state.
struct Columns {
    json: String,
    alive: bool,
    project: Option<String>,
    path: Option<String>,
}

fn columns(state: &DatasetState) -> Result<Columns> {
    let (project, path) = match &state.at {
        Some(at) => (Some(at.project().to_string()), Some(at.path().as_str().to_string())),
        None => (None, None),
    };
    Ok(Columns { json: state_json(state)?, alive: state.is_alive(), project, path })
}

/// Merges a dataset that has a row. Returns whether other rows' visibility may have changed.
fn update(pg: &Pg, rows: &mut IndexRows, cur: Current, incoming: DatasetState) -> Result<bool> {
    let old = parse_state(&cur.state, &cur.rid.to_string())?;
    let mut state = old.clone();
    state.merge(&incoming);
    let c = columns(&state)?;
    if c.json == cur.state {
        return Ok(false); // Re-applying what is already merged changes nothing.
    }
    if cur.visible {
        rows.remove(cur.rid, &old);
    }
    let moved = cur.project != c.project || cur.path != c.path;
    // A dataset that stays where it was visible keeps its path; one that arrives must ask who holds it.
    let taken = c.alive && (moved || !cur.visible) && holder(pg, &c, Some(cur.rid))?.is_some();
    let visible = c.alive && !taken;
    pg.execute(
        "UPDATE dataset_rows SET project = $2, path = $3, kind = $4, created = $5, updated = $6, alive = $7,
         visible = $8, state = $9, lineage = $10, lineage_name = $11 WHERE rid = $1",
        &[
            &cur.rid,
            &c.project,
            &c.path,
            &state.kind,
            &state.created(),
            &state.updated(),
            &c.alive,
            &visible,
            &c.json,
            &state.lineage_key(),
            &state.lineage_name(),
        ],
    )?;
    if visible {
        rows.add(cur.rid, &state);
    }
    let mut disturbed = false;
    if taken {
        rows.flush(pg)?;
        claim(pg, rows, cur.rid, &state, &c)?;
        disturbed = true;
    }
    if cur.visible
        && (!c.alive || moved)
        && let (Some(p), Some(q)) = (&cur.project, &cur.path)
    {
        rows.flush(pg)?;
        promote(pg, rows, p, q)?;
        disturbed = true;
    }
    Ok(disturbed)
}

/// The visible dataset at a row's path other than `except`, with its state.
fn holder(pg: &Pg, c: &Columns, except: Option<i64>) -> Result<Option<(i64, DatasetState)>> {
    let (Some(project), Some(path)) = (&c.project, &c.path) else { return Ok(None) };
    let row = pg.query_opt(
        "SELECT rid, state FROM dataset_rows WHERE project = $1 AND path = $2 AND visible AND rid <> $3",
        &[project, path, &except.unwrap_or(0)],
    )?;
    row.map(|r| {
        let rid: i64 = r.get(0);
        Ok((rid, parse_state(r.get(1), &rid.to_string())?))
    })
    .transpose()
}

/// Creates the rows of datasets the catalog has not seen, many a statement; a live one whose path is held
/// already is made hidden, then claims the path (the later location claim wins).
fn insert_fresh(pg: &Pg, rows: &mut IndexRows, fresh: Vec<DatasetState>) -> Result<()> {
    const CHUNK: usize = 2000;
    let mut all: Vec<(DatasetState, Columns)> = Vec::with_capacity(fresh.len());
    for state in fresh {
        let c = columns(&state)?;
        all.push((state, c));
    }
    for chunk in all.chunks(CHUNK) {
        let ids: Vec<Uuid> = chunk.iter().map(|(s, _)| s.id).collect();
        let projects: Vec<Option<&str>> = chunk.iter().map(|(_, c)| c.project.as_deref()).collect();
        let paths: Vec<Option<&str>> = chunk.iter().map(|(_, c)| c.path.as_deref()).collect();
        let kinds: Vec<Option<&str>> = chunk.iter().map(|(s, _)| s.kind.as_deref()).collect();
        let created: Vec<i64> = chunk.iter().map(|(s, _)| s.created()).collect();
        let updated: Vec<i64> = chunk.iter().map(|(s, _)| s.updated()).collect();
        let alive: Vec<bool> = chunk.iter().map(|(_, c)| c.alive).collect();
        let states: Vec<&str> = chunk.iter().map(|(_, c)| c.json.as_str()).collect();
        let lineage: Vec<Option<&str>> = chunk.iter().map(|(s, _)| s.lineage_key()).collect();
        let lineage_name: Vec<Option<&str>> = chunk.iter().map(|(s, _)| s.lineage_name()).collect();
        let inserted = pg.query(
            "INSERT INTO dataset_rows(id, project, path, kind, created, updated, alive, visible, state, lineage,
             lineage_name)
             SELECT i, p, q, k, c, u, a, a, s, l, n FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[],
                 $5::int8[], $6::int8[], $7::bool[], $8::text[], $9::text[], $10::text[]) AS t(i, p, q, k, c, u, a, s, l, n)
             ON CONFLICT (project, path) WHERE visible DO NOTHING
             RETURNING id, rid",
            &[&ids, &projects, &paths, &kinds, &created, &updated, &alive, &states, &lineage, &lineage_name],
        )?;
        let mut rid_of: HashMap<Uuid, i64> = inserted.iter().map(|r| (r.get(0), r.get(1))).collect();
        for (state, c) in chunk {
            match rid_of.remove(&state.id) {
                Some(rid) => {
                    if c.alive {
                        rows.add(rid, state);
                    }
                }
                None => {
                    // Its path is held: in hidden, then the later claim wins.
                    let row = pg.query(
                        "INSERT INTO dataset_rows(id, project, path, kind, created, updated, alive, visible, state,
                         lineage, lineage_name) VALUES ($1, $2, $3, $4, $5, $6, $7, false, $8, $9, $10) RETURNING rid",
                        &[
                            &state.id,
                            &c.project,
                            &c.path,
                            &state.kind,
                            &state.created(),
                            &state.updated(),
                            &c.alive,
                            &c.json,
                            &state.lineage_key(),
                            &state.lineage_name(),
                        ],
                    )?;
                    let rid: i64 = row[0].get(0);
                    rows.flush(pg)?;
                    claim(pg, rows, rid, state, c)?;
                }
            }
        }
    }
    Ok(())
}

/// A live dataset whose path is held by another: the later location claim becomes the visible one.
fn claim(pg: &Pg, rows: &mut IndexRows, rid: i64, state: &DatasetState, c: &Columns) -> Result<()> {
    if let Some((holder_rid, holder_state)) = holder(pg, c, Some(rid))? {
        if holder_state.at_stamp() > state.at_stamp() {
            return Ok(());
        }
        pg.execute("UPDATE dataset_rows SET visible = false WHERE rid = $1", &[&holder_rid])?;
        rows.remove(holder_rid, &holder_state);
    }
    pg.execute("UPDATE dataset_rows SET visible = true WHERE rid = $1", &[&rid])?;
    rows.add(rid, state);
    rows.flush(pg)
}

/// A path was vacated: the best hidden claimant, if any, becomes visible.
fn promote(pg: &Pg, rows: &mut IndexRows, project: &str, path: &str) -> Result<()> {
    if pg
        .query_opt("SELECT 1 FROM dataset_rows WHERE project = $1 AND path = $2 AND visible", &[&project, &path])?
        .is_some()
    {
        return Ok(());
    }
    let mut best: Option<(i64, DatasetState)> = None;
    for r in pg.query(
        "SELECT rid, state FROM dataset_rows WHERE project = $1 AND path = $2 AND alive AND NOT visible",
        &[&project, &path],
    )? {
        let rid: i64 = r.get(0);
        let state = parse_state(r.get(1), &rid.to_string())?;
        if best.as_ref().is_none_or(|(_, b)| state.at_stamp() > b.at_stamp()) {
            best = Some((rid, state));
        }
    }
    if let Some((rid, state)) = best {
        pg.execute("UPDATE dataset_rows SET visible = true WHERE rid = $1", &[&rid])?;
        rows.add(rid, &state);
        rows.flush(pg)?;
    }
    Ok(())
}

/// The exact decimal value of a float, for a `numeric` column: every float is a finite decimal, and
/// comparing it exactly with integers past 2^53 needs all its digits.
pub(crate) fn exact_decimal(x: f64) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity".into() } else { "-Infinity".into() };
    }
    // 1074 fractional digits hold the smallest subnormal exactly; Rust's fixed-precision formatting is exact.
    let mut text = format!("{x:.1074}");
    while text.ends_with('0') {
        text.pop();
    }
    if text.ends_with('.') {
        text.pop();
    }
    if text == "-0" { "0".into() } else { text }
}

/// How one index value is stored: in `num` (as exact decimal text) or in `str` (bytes).
pub(crate) enum Stored {
    Num(String),
    Bytes(Vec<u8>),
}

pub(crate) fn store_value(value: IndexValue<'_>) -> Stored {
    match value {
        IndexValue::Null => Stored::Num("0".into()),
        IndexValue::Bool(b) => Stored::Num(if b { "1" } else { "0" }.into()),
        IndexValue::Int(i) | IndexValue::Time(i) => Stored::Num(i.to_string()),
        IndexValue::UInt(u) => Stored::Num(u.to_string()),
        IndexValue::Float(x) => Stored::Num(exact_decimal(x)),
        IndexValue::Str(s) => Stored::Bytes(s.as_bytes().to_vec()),
        IndexValue::Whole(v) => Stored::Bytes(match whole_value_bytes(v) {
            Ok(hash) => hash.to_vec(),
            Err(text) => text.into_bytes(),
        }),
    }
}

/// Index rows waiting to be written: deletions by row first, then insertions by `COPY`.
#[derive(Default)]
struct IndexRows {
    removed: Vec<i64>,
    tags: Vec<(String, i64)>,
    objects: Vec<(i64, String, String, i64, String)>,
    meta: Vec<(Vec<u8>, i64, Stored, i64)>,
    /// Changes to `key_stats` by (project, key, type code).
    stats: HashMap<(String, Vec<u8>, i64), i64>,
}

impl IndexRows {
    fn add(&mut self, rid: i64, state: &DatasetState) {
        for tag in &state.tags {
            self.tags.push((tag.clone(), rid));
        }
        for (name, m) in &state.objects {
            self.objects.push((rid, name.clone(), m.format.clone(), m.size as i64, m.checksum.clone()));
        }
        let project = state.at.as_ref().map_or("", |at| at.project());
        for row in index_rows(&state.meta) {
            let key = row.key.into_bytes();
            if row.counted {
                *self.stats.entry((project.to_string(), key.clone(), row.code)).or_default() += 1;
            }
            self.meta.push((key, row.code, store_value(row.value), rid));
        }
    }

    /// Unindexes a dataset (its rows go at the next flush, before any insertion).
    fn remove(&mut self, rid: i64, old: &DatasetState) {
        self.removed.push(rid);
        let project = old.at.as_ref().map_or("", |at| at.project());
        for row in index_rows(&old.meta) {
            if row.counted {
                *self.stats.entry((project.to_string(), row.key.into_bytes(), row.code)).or_default() -= 1;
            }
        }
    }

    fn flush(&mut self, pg: &Pg) -> Result<()> {
        if !self.removed.is_empty() {
            let removed = std::mem::take(&mut self.removed);
            pg.execute("DELETE FROM tag_rows WHERE rid = ANY($1)", &[&removed])?;
            pg.execute("DELETE FROM object_rows WHERE rid = ANY($1)", &[&removed])?;
            pg.execute("DELETE FROM meta WHERE rid = ANY($1)", &[&removed])?;
        }
        let mut keys: Vec<Vec<u8>> = self.meta.iter().map(|m| m.0.clone()).collect();
        keys.extend(self.stats.keys().map(|k| k.1.clone()));
        let kids = key_ids(pg, keys)?;
        if !self.stats.is_empty() {
            let mut projects = Vec::new();
            let mut kid_list = Vec::new();
            let mut codes = Vec::new();
            let mut deltas = Vec::new();
            for ((project, key, code), delta) in self.stats.drain() {
                if delta != 0 {
                    projects.push(project);
                    kid_list.push(kids[&key]);
                    codes.push(code as i16);
                    deltas.push(delta);
                }
            }
            pg.execute(
                "INSERT INTO key_stats(project, kid, vtype, n) SELECT * FROM unnest($1::text[], $2::int4[], $3::int2[], $4::int8[])
                 ON CONFLICT (project, kid, vtype) DO UPDATE SET n = key_stats.n + excluded.n",
                &[&projects, &kid_list, &codes, &deltas],
            )?;
            pg.execute("DELETE FROM key_stats WHERE n = 0", &[])?;
        }
        let mut data = String::new();
        for (tag, rid) in self.tags.drain(..) {
            let _ = writeln!(data, "{}\t{rid}", copy_text(&tag));
        }
        if !data.is_empty() {
            pg.copy_in("COPY tag_rows (tag, rid) FROM STDIN", data.as_bytes())?;
        }
        data.clear();
        for (rid, name, format, size, checksum) in self.objects.drain(..) {
            let _ =
                writeln!(data, "{rid}\t{}\t{}\t{size}\t{}", copy_text(&name), copy_text(&format), copy_text(&checksum));
        }
        if !data.is_empty() {
            pg.copy_in("COPY object_rows (rid, name, format, size, checksum) FROM STDIN", data.as_bytes())?;
        }
        data.clear();
        for (key, code, stored, rid) in self.meta.drain(..) {
            let kid = kids[&key];
            match stored {
                Stored::Num(n) => {
                    let _ = writeln!(data, "{kid}\t{code}\t{n}\t\\N\t{rid}");
                }
                Stored::Bytes(b) => {
                    let _ = write!(data, "{kid}\t{code}\t\\N\t\\\\x");
                    for byte in b {
                        let _ = write!(data, "{byte:02x}");
                    }
                    let _ = writeln!(data, "\t{rid}");
                }
            }
        }
        if !data.is_empty() {
            pg.copy_in("COPY meta (kid, vtype, num, str, rid) FROM STDIN", data.as_bytes())?;
        }
        Ok(())
    }
}

/// The ids of metadata keys, registering those seen for the first time: two statements for any number.
fn key_ids(pg: &Pg, mut keys: Vec<Vec<u8>>) -> Result<HashMap<Vec<u8>, i32>> {
    keys.sort_unstable();
    keys.dedup();
    let mut out: HashMap<Vec<u8>, i32> = HashMap::with_capacity(keys.len());
    if keys.is_empty() {
        return Ok(out);
    }
    for r in pg.query("SELECT key, kid FROM keys WHERE key = ANY($1)", &[&keys])? {
        out.insert(r.get(0), r.get(1));
    }
    let missing: Vec<&Vec<u8>> = keys.iter().filter(|k| !out.contains_key(*k)).collect();
    if !missing.is_empty() {
        for r in pg.query("INSERT INTO keys(key) SELECT unnest($1::bytea[]) RETURNING key, kid", &[&missing])? {
            out.insert(r.get(0), r.get(1));
        }
    }
    Ok(out)
}

/// A text field of `COPY … FROM STDIN` (text format): backslashes and the separators escaped.
pub(crate) fn copy_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
    out
}

/// The codes of index rows that hold a value in `num` (the others hold `str`).
pub(crate) fn numeric_code(code: i64) -> bool {
    let own = if (vtype::ELEMENT..vtype::SIZE).contains(&code) { code - vtype::ELEMENT } else { code };
    matches!(own, vtype::NULL | vtype::BOOL | vtype::NUMBER | vtype::BIG | vtype::TIME) || code == vtype::SIZE
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_become_their_exact_decimals() {
        assert_eq!(exact_decimal(1.5), "1.5");
        assert_eq!(exact_decimal(-0.0), "0");
        assert_eq!(exact_decimal(1e20), "100000000000000000000");
        assert_eq!(exact_decimal(2f64.powi(60)), "1152921504606846976");
        assert_eq!(exact_decimal(0.1), "0.1000000000000000055511151231257827021181583404541015625");
        assert!(exact_decimal(f64::MIN_POSITIVE / 4.0).len() > 300);
        assert_eq!(exact_decimal(f64::INFINITY), "Infinity");
    }

    #[test]
    fn copy_fields_escape_their_separators() {
        assert_eq!(copy_text("a\tb\\c\nd"), "a\\tb\\\\c\\nd");
    }
}
