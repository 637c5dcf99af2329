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
    pub(crate) conn: &'c Connection,
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
                "SELECT rid, visible, state FROM dataset_rows WHERE project = ?1 AND path = ?2 AND visible = 1",
            )?
            .query_row(params![project, path], Self::row)
            .optional()?
            .map(Self::to_row)
            .transpose()
    }

    /// The visible datasets carrying the lineage `key`, oldest first.
    pub fn with_lineage(&self, key: &str) -> Result<Vec<DatasetRow>> {
        self.visible_where("lineage", key)
    }

    /// The visible datasets whose lineage is called `name` (what was computed), oldest first.
    pub fn with_lineage_name(&self, name: &str) -> Result<Vec<DatasetRow>> {
        self.visible_where("lineage_name", name)
    }

    /// The visible datasets whose indexed `column` (a name from this crate, never from input) equals `value`.
    fn visible_where(&self, column: &'static str, value: &str) -> Result<Vec<DatasetRow>> {
        let sql = format!(
            "SELECT rid, visible, state FROM dataset_rows WHERE {column} = ?1 AND visible = 1 ORDER BY created, rid"
        );
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([value], Self::row)?;
        rows.map(|row| Self::to_row(row?)).collect()
    }

    /// The row ids of the visible datasets (of `project`, when given) whose lineage is called `name`.
    pub fn rids_with_lineage_name(&self, name: &str, project: Option<&str>) -> Result<crate::RidSet> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT rid FROM dataset_rows WHERE lineage_name = ?1 AND visible = 1 AND (?2 IS NULL OR project = ?2)",
        )?;
        let mut rows = stmt.query(params![name, project])?;
        let mut set = crate::RidSet::new();
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

    fn first_path(&self, project: &str, from: &str, inclusive: bool, to: &str) -> Result<Option<String>> {
        let sql = if inclusive {
            "SELECT path FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path >= ?2 AND path < ?3 ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM dataset_rows WHERE project = ?1 AND visible = 1 AND path > ?2 AND path < ?3 ORDER BY path LIMIT 1"
        };
        Ok(self.conn.prepare_cached(sql)?.query_row(params![project, from, to], |r| r.get(0)).optional()?)
    }

    /// What lies directly below `prefix`: one entry per child name, in byte order. Costs a few index seeks
    /// per child, not a scan of the subtree.
    pub fn children(&self, project: &str, prefix: &str) -> Result<Vec<Child>> {
        let (lo, hi) = below(prefix);
        let mut out = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        // Names like `c-x` sort between `c` and `c/…`, so the walk can come back into the subtree of a child
        // already listed: it then jumps past that subtree (`c0`).
        let mut cursor = (lo.clone(), true);
        while let Some(found) = self.first_path(project, &cursor.0, cursor.1, &hi)? {
            let rest = &found[lo.len()..];
            let name = rest.split('/').next().unwrap_or(rest).to_string();
            let child_path = format!("{lo}{name}");
            if seen.contains(&name) {
                cursor = (format!("{child_path}0"), true);
                continue;
            }
            let is_dataset = found == child_path;
            let dataset = if is_dataset { self.dataset_at(project, &child_path)? } else { None };
            let has_children = self.has_descendants(project, &child_path)?;
            cursor = if is_dataset { (child_path.clone(), false) } else { (format!("{child_path}0"), true) };
            seen.insert(name.clone());
            out.push(Child { name, path: child_path, dataset, has_children });
        }
        // Path order puts `a!` (a path) before `a/…` (whose name `a` sorts first): list by name.
        out.sort_by(|a, b| a.name.cmp(&b.name));
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
    pub fn all_rows(&self, mut each: impl FnMut(DatasetRow) -> Result<()>) -> Result<()> {
        let mut stmt = self.conn.prepare_cached("SELECT rid, visible, state FROM dataset_rows ORDER BY id")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            each(Self::to_row(Self::row(r)?)?)?;
        }
        Ok(())
    }

    /// Every dataset row's visibility and state as the JSON the catalog stores, unparsed (for a caller that
    /// reads a few fields of every dataset and can skip the rest cheaply).
    pub fn all_states_json(&self, mut each: impl FnMut(bool, &str) -> Result<()>) -> Result<()> {
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

#[cfg(test)]
mod tests {
    use trove_model::{DatasetChange, DatasetPath, Location, Record, Segment, SegmentHeader, SegmentKind};

    use crate::Catalog;

    /// A commit of one test writer at time `ts`.
    fn segment(ts: i64, records: Vec<Record>) -> Segment {
        let header = SegmentHeader {
            trove: SegmentKind::Commit,
            version: 1,
            ts,
            writer: "w".into(),
            host: "h".into(),
            pid: 1,
            user: String::new(),
            op: "test".into(),
            records: records.len(),
            covers: vec![],
            moves: vec![],
            seen: 0,
        };
        Segment { header, records }
    }

    fn catalog_with(paths: &[&str]) -> Catalog {
        let records = paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                Record::Dataset(DatasetChange {
                    id: uuid::Uuid::from_u128(i as u128 + 1),
                    alive: Some(true),
                    at: Some(Location("p".into(), DatasetPath::parse(p).unwrap())),
                    ..Default::default()
                })
            })
            .collect::<Vec<_>>();
        let mut c = Catalog::open_in_memory().unwrap();
        let mut tx = c.write().unwrap();
        tx.apply_segment("s", segment(1, records)).unwrap();
        tx.commit().unwrap();
        c
    }

    #[test]
    fn children_skip_subtrees_but_not_siblings_that_sort_inside_them() {
        // `c-x` and `c!` sort between `c` and `c/…`; `c0` right after the subtree.
        let c = catalog_with(&["c", "c/deep/er", "c-x", "c!", "c0", "a/b", "z"]);
        let kids = c.read().children("p", "").unwrap();
        let names: Vec<(&str, bool, bool)> =
            kids.iter().map(|k| (k.name.as_str(), k.dataset.is_some(), k.has_children)).collect();
        assert_eq!(
            names,
            [
                ("a", false, true),
                ("c", true, true),
                ("c!", true, false),
                ("c-x", true, false),
                ("c0", true, false),
                ("z", true, false)
            ]
        );
        let below_c: Vec<String> = c.read().children("p", "c").unwrap().into_iter().map(|k| k.path).collect();
        assert_eq!(below_c, ["c/deep"]);
        let mut all = Vec::new();
        c.read()
            .descendants("p", "c", |row| {
                all.push(row.state.at.unwrap().path().to_string());
                Ok(())
            })
            .unwrap();
        assert_eq!(all, ["c/deep/er"]);
        assert_eq!(c.read().count(Some("p")).unwrap(), 7);
        assert!(c.read().has_descendants("p", "a").unwrap());
        assert!(!c.read().has_descendants("p", "z").unwrap());
    }

    proptest::proptest! {
        #[test]
        fn children_match_a_plain_computation(paths in proptest::collection::btree_set("[a!.~-]{1,2}(/[a!-]{1,2}){0,2}", 1..25)) {
            let paths: Vec<&str> = paths.iter().map(String::as_str).filter(|p| p.split('/').all(|s| s != "." && s != "..")).collect();
            proptest::prop_assume!(!paths.is_empty());
            let c = catalog_with(&paths);
            for prefix in std::iter::once("").chain(paths.iter().copied()) {
                let lo = if prefix.is_empty() { String::new() } else { format!("{prefix}/") };
                let mut expected: Vec<(String, bool, bool)> = Vec::new();
                let mut names: std::collections::BTreeSet<Vec<u8>> = Default::default();
                for p in &paths {
                    if let Some(rest) = p.strip_prefix(lo.as_str()) {
                        names.insert(rest.split('/').next().unwrap().as_bytes().to_vec());
                    }
                }
                for name in names {
                    let name = String::from_utf8(name).unwrap();
                    let full = format!("{lo}{name}");
                    let has = paths.iter().any(|p| p.starts_with(&format!("{full}/")));
                    expected.push((name, paths.contains(&full.as_str()), has));
                }
                let got: Vec<(String, bool, bool)> = c.read().children("p", prefix).unwrap().into_iter().map(|k| (k.name, k.dataset.is_some(), k.has_children)).collect();
                proptest::prop_assert_eq!(got, expected, "below {:?}", prefix);
            }
        }
    }

    /// The index tables hold exactly the visible datasets' tags, objects and metadata leaves, through
    /// creates, updates, moves onto a taken path and deletes.
    #[test]
    fn index_rows_follow_the_visible_states() {
        use trove_model::ObjectManifest;
        let mut c = Catalog::open_in_memory().unwrap();
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
        let rows = |c: &Catalog| -> IndexSnapshot {
            let conn = c.connection();
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

    #[test]
    fn reapplying_a_segment_changes_nothing() {
        let c = catalog_with(&["x", "y"]);
        let applied = c.read().applied().unwrap();
        assert_eq!(applied.len(), 1);
        assert_eq!(c.read().max_ts().unwrap(), 1);
    }
}
