//! Queries over the catalog.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use trove_model::{DatasetState, ProjectState};

use crate::apply::parse_state;
use crate::{CatalogError, Result};

/// A dataset as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    pub rid: i64,
    pub visible: bool,
    pub state: DatasetState,
}

/// One entry directly below a path: a dataset, an implicit folder (a prefix of deeper datasets), or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    /// The full path inside the project.
    pub path: String,
    pub dataset: Option<DatasetRow>,
    pub has_children: bool,
}

/// Read-only queries, on a catalog or inside a write transaction.
pub struct Reader<'c> {
    conn: &'c Connection,
}

/// The half-open range of paths strictly below `prefix` (all paths when `prefix` is empty).
/// `/` is followed by `0` in byte order, so `[p/, p0)` holds exactly the descendants of `p`.
fn below(prefix: &str) -> (String, String) {
    if prefix.is_empty() {
        (String::new(), "\u{10FFFF}".to_string())
    } else {
        (format!("{prefix}/"), format!("{prefix}0"))
    }
}

impl<'c> Reader<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Reader<'c> {
        Reader { conn }
    }

    fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, bool, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    }

    fn to_row((rid, visible, json): (i64, bool, String)) -> Result<DatasetRow> {
        Ok(DatasetRow { rid, visible, state: parse_state(&json, &rid.to_string())? })
    }

    /// The visible dataset at a path.
    pub fn dataset_at(&self, project: &str, path: &str) -> Result<Option<DatasetRow>> {
        self.conn
            .prepare_cached(
                "SELECT rid, visible, state FROM datasets WHERE project = ?1 AND path = ?2 AND visible = 1",
            )?
            .query_row(params![project, path], Self::row)
            .optional()?
            .map(Self::to_row)
            .transpose()
    }

    /// A dataset by id, live or not.
    pub fn dataset_by_id(&self, id: &uuid::Uuid) -> Result<Option<DatasetRow>> {
        self.conn
            .prepare_cached("SELECT rid, visible, state FROM datasets WHERE id = ?1")?
            .query_row([id.to_string()], Self::row)
            .optional()?
            .map(Self::to_row)
            .transpose()
    }

    /// Whether any visible dataset lies strictly below `prefix` (or anywhere in the project when empty).
    pub fn has_descendants(&self, project: &str, prefix: &str) -> Result<bool> {
        let (lo, hi) = below(prefix);
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM datasets WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3 LIMIT 1",
            )?
            .query_row(params![project, lo, hi], |_| Ok(()))
            .optional()?
            .is_some())
    }

    fn first_path(&self, project: &str, from: &str, inclusive: bool, to: &str) -> Result<Option<String>> {
        let sql = if inclusive {
            "SELECT path FROM datasets WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3 ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM datasets WHERE project = ?1 AND visible = 1 AND path > ?2 AND path < ?3 ORDER BY path LIMIT 1"
        };
        Ok(self.conn.prepare_cached(sql)?.query_row(params![project, from, to], |r| r.get(0)).optional()?)
    }

    /// What lies directly below `prefix`: one entry per child name, in byte order. Costs a few index seeks
    /// per child, not a scan of the subtree.
    pub fn children(&self, project: &str, prefix: &str) -> Result<Vec<Child>> {
        let (lo, hi) = below(prefix);
        let mut out = Vec::new();
        let mut cursor = lo.clone();
        while let Some(found) = self.first_path(project, &cursor, true, &hi)? {
            let rest = &found[lo.len()..];
            let name = rest.split('/').next().unwrap_or(rest).to_string();
            let child_path = format!("{lo}{name}");
            let dataset = if found == child_path { self.dataset_at(project, &child_path)? } else { None };
            let has_children = self.has_descendants(project, &child_path)?;
            out.push(Child { name, path: child_path.clone(), dataset, has_children });
            // Next sibling: names that sort between `c` and `c/` (like `c-x`) first, else after `c0`.
            cursor = match self.first_path(project, &child_path, false, &format!("{child_path}/"))? {
                Some(sibling) => sibling,
                None => format!("{child_path}0"),
            };
        }
        Ok(out)
    }

    /// Every visible dataset strictly below `prefix` (the whole project when empty), in path order.
    pub fn descendants(
        &self,
        project: &str,
        prefix: &str,
        mut each: impl FnMut(DatasetRow) -> Result<()>,
    ) -> Result<()> {
        let (lo, hi) = below(prefix);
        let mut stmt = self.conn.prepare_cached(
            "SELECT rid, visible, state FROM datasets WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3
             ORDER BY path",
        )?;
        let mut rows = stmt.query(params![project, lo, hi])?;
        while let Some(r) = rows.next()? {
            each(Self::to_row(Self::row(r)?)?)?;
        }
        Ok(())
    }

    /// Every dataset row, visible or not, live or not, by id (for comparing catalogs).
    pub fn all_rows(&self, mut each: impl FnMut(DatasetRow) -> Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached("SELECT rid, visible, state FROM datasets ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(Self::to_row(Self::row(r)?)?)?;
        }
        Ok(())
    }

    /// The number of visible datasets in a project (all projects when `None`).
    pub fn count(&self, project: Option<&str>) -> Result<u64> {
        let n: i64 = match project {
            Some(p) => self
                .conn
                .prepare_cached("SELECT count(*) FROM datasets WHERE project = ?1 AND visible = 1")?
                .query_row([p], |r| r.get(0))?,
            None => self
                .conn
                .prepare_cached("SELECT count(*) FROM datasets WHERE visible = 1")?
                .query_row([], |r| r.get(0))?,
        };
        Ok(n as u64)
    }

    pub fn projects(&self) -> Result<Vec<ProjectState>> {
        let mut stmt = self.conn.prepare_cached("SELECT name, state FROM projects ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
        let mut out = Vec::new();
        for row in rows {
            let (name, json) = row?;
            out.push(
                serde_json::from_str(&json)
                    .map_err(|source| CatalogError::BadRow { what: format!("project {name}"), source })?,
            );
        }
        Ok(out)
    }

    pub fn project(&self, name: &str) -> Result<Option<ProjectState>> {
        let json: Option<String> = self
            .conn
            .prepare_cached("SELECT state FROM projects WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            serde_json::from_str(&j).map_err(|source| CatalogError::BadRow { what: format!("project {name}"), source })
        })
        .transpose()
    }

    /// The names of the segments merged so far.
    pub fn applied(&self) -> Result<HashSet<String>> {
        let mut stmt = self.conn.prepare_cached("SELECT segment FROM applied")?;
        let rows = stmt.query_map([], |r| r.get::<_, String>(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The greatest timestamp merged so far (the floor for the next commit's clock).
    pub fn max_ts(&self) -> Result<i64> {
        let v: Option<String> = self
            .conn
            .prepare_cached("SELECT value FROM info WHERE key = 'max_ts'")?
            .query_row([], |r| r.get(0))
            .optional()?;
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }
}
