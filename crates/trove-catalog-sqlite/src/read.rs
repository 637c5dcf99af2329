//! Queries over the catalog.

use std::collections::HashSet;

use rusqlite::{Connection, OptionalExtension, params};
use trove_model::ProjectState;

use crate::apply::parse_state;
use trove_catalog::{CatalogError, DatasetRow, RidSet, below};

use crate::Result;

/// The catalog's queries on one connection (or transaction).
pub(crate) struct Queries<'c> {
    pub(crate) conn: &'c Connection,
}

impl<'c> Queries<'c> {
    pub(crate) fn new(conn: &'c Connection) -> Queries<'c> {
        Queries { conn }
    }

    pub(crate) fn row(r: &rusqlite::Row<'_>) -> rusqlite::Result<(i64, bool, String)> {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    }

    pub(crate) fn to_row((rid, visible, json): (i64, bool, String)) -> Result<DatasetRow> {
        Ok(DatasetRow { rid, visible, state: parse_state(&json, &rid.to_string())? })
    }

    /// The visible dataset at a path.
    pub fn dataset_at(&self, project: &str, path: &str) -> Result<Option<DatasetRow>> {
        self.conn
            .prepare_cached(
                "SELECT rid, visible, state FROM dataset_rows WHERE project = ?1 AND path = ?2 AND visible = 1",
            )?
            .query_row(params![project, path], Self::row)
            .optional()?
            .map(Self::to_row)
            .transpose()
    }

    /// The visible datasets whose indexed `column` (a name from this crate, never from input) equals `value`.
    pub(crate) fn visible_where(&self, column: &'static str, value: &str) -> Result<Vec<DatasetRow>> {
        let sql = format!(
            "SELECT rid, visible, state FROM dataset_rows WHERE {column} = ?1 AND visible = 1 ORDER BY created, rid"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([value], Self::row)?;
        rows.map(|row| Self::to_row(row?)).collect()
    }

    /// The row ids of the visible datasets (of `project`, when given) whose lineage is called `name`.
    pub fn rids_with_lineage_name(&self, name: &str, project: Option<&str>) -> Result<RidSet> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rid FROM dataset_rows WHERE lineage_name = ?1 AND visible = 1 AND (?2 IS NULL OR project = ?2)",
        )?;
        let mut rows = stmt.query(params![name, project])?;
        let mut set = RidSet::new();
        while let Some(row) = rows.next()? {
            set.insert(row.get(0)?);
        }
        Ok(set)
    }

    /// Where objects with this checksum are: `(project, path, object name)` of visible datasets. Objects
    /// have no index by checksum (it would slow every write for a rare question): this reads the table.
    pub fn objects_with_checksum(&self, checksum: &str) -> Result<Vec<(String, String, String)>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT d.project, d.path, o.name FROM object_rows o JOIN dataset_rows d ON d.rid = o.rid
             WHERE o.checksum = ?1 AND d.visible = 1 ORDER BY d.project, d.path, o.name",
        )?;
        let rows = stmt.query_map([checksum], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// A dataset by id, live or not.
    pub fn dataset_by_id(&self, id: &uuid::Uuid) -> Result<Option<DatasetRow>> {
        self.conn
            .prepare_cached("SELECT rid, visible, state FROM dataset_rows WHERE id = ?1")?
            .query_row([id.as_bytes().as_slice()], Self::row)
            .optional()?
            .map(Self::to_row)
            .transpose()
    }

    /// The deleted datasets whose last location was `project/path`, oldest first: a deleted row keeps where
    /// it was, so that `trove log` of a removed dataset still finds it. Deleted rows have no index of their
    /// own (only live ones are looked up often): this reads the table.
    pub fn deleted_at(&self, project: &str, path: &str) -> Result<Vec<DatasetRow>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rid, visible, state FROM dataset_rows WHERE project = ?1 AND path = ?2 AND alive = 0 ORDER BY created, rid",
        )?;
        let rows = stmt.query_map(params![project, path], Self::row)?;
        rows.map(|row| Self::to_row(row?)).collect()
    }

    /// Whether any visible dataset lies strictly below `prefix` (or anywhere in the project when empty).
    pub fn has_descendants(&self, project: &str, prefix: &str) -> Result<bool> {
        let (lo, hi) = below(prefix);
        Ok(self
            .conn
            .prepare_cached(
                "SELECT 1 FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3 LIMIT 1",
            )?
            .query_row(params![project, lo, hi], |_| Ok(()))
            .optional()?
            .is_some())
    }

    pub(crate) fn first_path(&self, project: &str, from: &str, inclusive: bool, to: &str) -> Result<Option<String>> {
        let sql = if inclusive {
            "SELECT path FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3 ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path > ?2 AND path < ?3 ORDER BY path LIMIT 1"
        };
        Ok(self.conn.prepare_cached(sql)?.query_row(params![project, from, to], |r| r.get(0)).optional()?)
    }

    /// Every visible dataset strictly below `prefix` (the whole project when empty), in path order.
    pub fn descendants(
        &self,
        project: &str,
        prefix: &str,
        each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>,
    ) -> Result<()> {
        let (lo, hi) = below(prefix);
        let mut stmt = self.conn.prepare_cached(
            "SELECT rid, visible, state FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3
             ORDER BY path",
        )?;
        let mut rows = stmt.query(params![project, lo, hi])?;
        while let Some(r) = rows.next()? {
            each(Self::to_row(Self::row(r)?)?)?;
        }
        Ok(())
    }

    /// Every dataset row, visible or not, live or not, by id (for comparing catalogs).
    pub fn all_rows(&self, each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached("SELECT rid, visible, state FROM dataset_rows ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(Self::to_row(Self::row(r)?)?)?;
        }
        Ok(())
    }

    /// Every dataset row's visibility and state as the JSON the catalog stores, unparsed (for a caller that
    /// reads a few fields of every dataset and can skip the rest cheaply).
    pub fn all_states_json(&self, each: &mut dyn FnMut(bool, &str) -> trove_catalog::Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached("SELECT visible, state FROM dataset_rows")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let visible: bool = r.get(0)?;
            let json = r.get_ref(1)?.as_str().map_err(rusqlite::Error::from)?;
            each(visible, json)?;
        }
        Ok(())
    }

    /// The number of visible datasets in a project (all projects when `None`).
    pub fn count(&self, project: Option<&str>) -> Result<u64> {
        let n: i64 = match project {
            Some(p) => self
                .conn
                .prepare_cached("SELECT count(*) FROM dataset_rows WHERE project = ?1 AND visible = 1")?
                .query_row([p], |r| r.get(0))?,
            None => self
                .conn
                .prepare_cached("SELECT count(*) FROM dataset_rows WHERE visible = 1")?
                .query_row([], |r| r.get(0))?,
        };
        Ok(n as u64)
    }

    pub fn projects(&self) -> Result<Vec<ProjectState>> {
        let mut stmt = self.conn.prepare_cached("SELECT name, state FROM project_rows ORDER BY name")?;
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
            .prepare_cached("SELECT state FROM project_rows WHERE name = ?1")?
            .query_row([name], |r| r.get(0))
            .optional()?;
        json.map(|j| {
            Ok(serde_json::from_str(&j)
                .map_err(|source| CatalogError::BadRow { what: format!("project {name}"), source })?)
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

#[cfg(test)]
mod tests {
    use trove_model::{DatasetChange, DatasetPath, Location, Record};

    use trove_catalog::conformance::segment;

    /// The index tables hold exactly the visible datasets' tags, objects and metadata leaves, through
    /// creates, updates, moves onto a taken path and deletes.
    #[test]
    fn index_rows_follow_the_visible_states() {
        use trove_model::ObjectManifest;
        // A file, so that a second connection can read the index tables the seam does not show.
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("catalog.sqlite");
        let mut c = crate::open(&file).unwrap();
        let inspect = rusqlite::Connection::open(&file).unwrap();
        let seg = segment;
        let change = |id: u128, path: Option<&str>| DatasetChange {
            id: uuid::Uuid::from_u128(id),
            alive: path.map(|_| true),
            at: path.map(|p| Location("p".into(), DatasetPath::parse(p).unwrap())),
            ..Default::default()
        };
        let mut a = change(1, Some("a"));
        a.meta = serde_json::json!({"t": 300, "s": {"m": "steel", "ok": true}, "xs": [1, 2], "n": null})
            .as_object()
            .unwrap()
            .clone();
        a.tags = [("x".to_string(), true), ("y".to_string(), true)].into();
        let manifest = ObjectManifest {
            format: "csv".into(),
            size: 3,
            checksum: "blake3:00".into(),
            media_type: None,
            summary: None,
            files: None,
            edited: None,
        };
        a.objects = [("f.csv".to_string(), Some(manifest))].into();
        let mut b = change(2, Some("b"));
        b.meta = serde_json::json!({"t": 1.5}).as_object().unwrap().clone();
        let mut tx = c.write().unwrap();
        tx.apply_segment("1", seg(1, vec![Record::Dataset(a), Record::Dataset(b)])).unwrap();
        tx.commit().unwrap();
        type IndexSnapshot = (Vec<(String, i64, String)>, Vec<(String, i64)>, i64);
        let rows = |_: &trove_catalog::Catalog| -> IndexSnapshot {
            let conn = &inspect;
            let mut meta: Vec<(String, i64, String)> = conn
                .prepare("SELECT k.key, m.vtype, quote(m.val) FROM meta m JOIN keys k USING (kid) ORDER BY 1, 3")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            meta.sort();
            let tags = conn
                .prepare("SELECT tag, rid FROM tag_rows ORDER BY 1, 2")
                .unwrap()
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            let objects = conn.query_row("SELECT count(*) FROM object_rows", [], |r| r.get(0)).unwrap();
            (meta, tags, objects)
        };
        let (meta, tags, objects) = rows(&c);
        let expect =
            |v: &[(&str, i64, &str)]| v.iter().map(|(k, t, q)| (k.to_string(), *t, q.to_string())).collect::<Vec<_>>();
        assert_eq!(
            meta,
            expect(&[
                ("n", 0, "0"),
                // A nested object whole (its hash), an array whole, its elements and its length.
                ("s", 5, "X'AEFADC0C74F8E4F6DAD17DC1876D4226'"),
                ("s.m", 3, "'steel'"),
                ("s.ok", 1, "1"),
                ("t", 2, "1.5"),
                ("t", 2, "300"),
                ("xs", 4, "'[1,2]'"),
                ("xs", 12, "1"),
                ("xs", 12, "2"),
                ("xs", 20, "2"),
            ])
        );
        assert_eq!(tags.len(), 2);
        assert_eq!(objects, 1);
        // Update a (drop a key, a tag), move b onto a's path later (b wins, a is hidden), then delete b.
        let mut upd = change(1, None);
        upd.unset = vec!["s".into(), "xs".into(), "n".into()];
        upd.tags = [("y".to_string(), false)].into();
        let mut tx = c.write().unwrap();
        tx.apply_segment("2", seg(2, vec![Record::Dataset(upd)])).unwrap();
        tx.commit().unwrap();
        let (meta, tags, _) = rows(&c);
        assert_eq!(meta, expect(&[("t", 2, "1.5"), ("t", 2, "300")]));
        assert_eq!(tags.iter().map(|t| t.0.as_str()).collect::<Vec<_>>(), ["x"]);
        let mut tx = c.write().unwrap();
        tx.apply_segment("3", seg(3, vec![Record::Dataset(change(2, Some("a")))])).unwrap();
        tx.commit().unwrap();
        let (meta, tags, objects) = rows(&c);
        assert_eq!(meta, expect(&[("t", 2, "1.5")]), "only b is visible at a");
        assert!(tags.is_empty() && objects == 0);
        let mut gone = change(2, None);
        gone.alive = Some(false);
        let mut tx = c.write().unwrap();
        tx.apply_segment("4", seg(4, vec![Record::Dataset(gone)])).unwrap();
        tx.commit().unwrap();
        let (meta, tags, objects) = rows(&c);
        assert_eq!(meta, expect(&[("t", 2, "300")]), "a is visible again");
        assert_eq!((tags.len(), objects), (1, 1));
    }
}
