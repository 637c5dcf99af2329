//! The catalog's lookups. Every method reads all its rows before it calls back, so that a callback may query
//! the catalog again on the same connection.

use std::collections::{HashMap, HashSet};

use postgres::Row;
use trove_catalog::index::{parse_project, parse_state};
use trove_catalog::{CachedFile, CatalogRead, DatasetRow, FindOptions, KeyUsage, Matches, RidSet, below};
use trove_model::ProjectState;
use trove_model::filter::Filter;

use crate::{Pg, Result};

/// Rows per page when a whole subtree or table is walked.
const PAGE: i64 = 2000;

fn dataset_row(r: &Row) -> Result<DatasetRow> {
    let rid: i64 = r.get(0);
    Ok(DatasetRow { rid, visible: r.get(1), state: parse_state(r.get(2), &rid.to_string())? })
}

fn dataset_rows(rows: Vec<Row>) -> Result<Vec<DatasetRow>> {
    rows.iter().map(dataset_row).collect()
}

impl Pg {
    fn visible_where(&self, column: &'static str, value: &str) -> Result<Vec<DatasetRow>> {
        let sql = format!(
            "SELECT rid, visible, state FROM dataset_rows WHERE {column} = $1 AND visible ORDER BY created, rid"
        );
        dataset_rows(self.query(&sql, &[&value])?)
    }

    /// The row ids `sql` (selecting one column of row ids) returns, as one array: a row per id would cost
    /// the client a message and an allocation each (100,000 ids: 60 ms against 5).
    pub(crate) fn rid_set(&self, sql: &str, params: &[&(dyn postgres::types::ToSql + Sync)]) -> Result<RidSet> {
        let all = format!("SELECT ARRAY({sql})");
        let rids: Vec<i64> = self.query(&all, params)?.first().map(|row| row.get(0)).unwrap_or_default();
        Ok(rids.into_iter().collect())
    }

    pub(crate) fn universe_of(&self, project: Option<&str>) -> Result<RidSet> {
        match project {
            Some(p) => self.rid_set("SELECT rid FROM dataset_rows WHERE visible AND project = $1", &[&p]),
            None => self.rid_set("SELECT rid FROM dataset_rows WHERE visible", &[]),
        }
    }
}

impl CatalogRead for Pg {
    fn dataset_at(&self, project: &str, path: &str) -> trove_catalog::Result<Option<DatasetRow>> {
        let row = self.query_opt(
            "SELECT rid, visible, state FROM dataset_rows WHERE project = $1 AND path = $2 AND visible",
            &[&project, &path],
        )?;
        Ok(row.as_ref().map(dataset_row).transpose()?)
    }

    fn with_lineage(&self, key: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
        Ok(self.visible_where("lineage", key)?)
    }

    fn with_lineage_name(&self, name: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
        Ok(self.visible_where("lineage_name", name)?)
    }

    fn rids_with_lineage_name(&self, name: &str, project: Option<&str>) -> trove_catalog::Result<RidSet> {
        Ok(self.rid_set(
            "SELECT rid FROM dataset_rows WHERE lineage_name = $1 AND visible AND ($2::text IS NULL OR project = $2)",
            &[&name, &project],
        )?)
    }

    fn objects_with_checksum(&self, checksum: &str) -> trove_catalog::Result<Vec<(String, String, String)>> {
        let rows = self.query(
            "SELECT d.project, d.path, o.name FROM object_rows o JOIN dataset_rows d ON d.rid = o.rid
             WHERE o.checksum = $1 AND d.visible ORDER BY d.project, d.path, o.name",
            &[&checksum],
        )?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
    }

    fn dataset_by_id(&self, id: &uuid::Uuid) -> trove_catalog::Result<Option<DatasetRow>> {
        let row = self.query_opt("SELECT rid, visible, state FROM dataset_rows WHERE id = $1", &[id])?;
        Ok(row.as_ref().map(dataset_row).transpose()?)
    }

    fn deleted_at(&self, project: &str, path: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
        Ok(dataset_rows(self.query(
            "SELECT rid, visible, state FROM dataset_rows WHERE project = $1 AND path = $2 AND NOT alive
             ORDER BY created, rid",
            &[&project, &path],
        )?)?)
    }

    fn has_descendants(&self, project: &str, prefix: &str) -> trove_catalog::Result<bool> {
        let (lo, hi) = below(prefix);
        Ok(self
            .query_opt(
                "SELECT 1 FROM dataset_rows WHERE project = $1 AND visible AND path >= $2 AND path < $3 LIMIT 1",
                &[&project, &lo, &hi],
            )?
            .is_some())
    }

    fn first_path(
        &self,
        project: &str,
        from: &str,
        inclusive: bool,
        to: &str,
    ) -> trove_catalog::Result<Option<String>> {
        let sql = if inclusive {
            "SELECT path FROM dataset_rows WHERE project = $1 AND visible AND path >= $2 AND path < $3 ORDER BY path LIMIT 1"
        } else {
            "SELECT path FROM dataset_rows WHERE project = $1 AND visible AND path > $2 AND path < $3 ORDER BY path LIMIT 1"
        };
        Ok(self.query_opt(sql, &[&project, &from, &to])?.map(|r| r.get(0)))
    }

    fn each_descendant(
        &self,
        project: &str,
        prefix: &str,
        each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>,
    ) -> trove_catalog::Result<()> {
        let (mut lo, hi) = below(prefix);
        let mut inclusive = true;
        loop {
            let sql = if inclusive {
                "SELECT rid, visible, state, path FROM dataset_rows WHERE project = $1 AND visible AND path >= $2
                 AND path < $3 ORDER BY path LIMIT $4"
            } else {
                "SELECT rid, visible, state, path FROM dataset_rows WHERE project = $1 AND visible AND path > $2
                 AND path < $3 ORDER BY path LIMIT $4"
            };
            let rows = self.query(sql, &[&project, &lo, &hi, &PAGE])?;
            let full = rows.len() as i64 == PAGE;
            let last: Option<String> = rows.last().map(|r| r.get(3));
            for r in &rows {
                each(dataset_row(r)?)?;
            }
            match last {
                Some(path) if full => {
                    lo = path;
                    inclusive = false;
                }
                _ => return Ok(()),
            }
        }
    }

    fn each_row(&self, each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>) -> trove_catalog::Result<()> {
        let mut after = uuid::Uuid::nil();
        let mut first = true;
        loop {
            let rows = self.query(
                "SELECT rid, visible, state, id FROM dataset_rows WHERE id > $1 OR $2 ORDER BY id LIMIT $3",
                &[&after, &first, &PAGE],
            )?;
            first = false;
            let full = rows.len() as i64 == PAGE;
            if let Some(r) = rows.last() {
                after = r.get(3);
            }
            for r in &rows {
                each(dataset_row(r)?)?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn each_state_json(
        &self,
        each: &mut dyn FnMut(bool, &str) -> trove_catalog::Result<()>,
    ) -> trove_catalog::Result<()> {
        let mut after = 0i64;
        loop {
            let rows = self.query(
                "SELECT rid, visible, state FROM dataset_rows WHERE rid > $1 ORDER BY rid LIMIT $2",
                &[&after, &PAGE],
            )?;
            let full = rows.len() as i64 == PAGE;
            if let Some(r) = rows.last() {
                after = r.get(0);
            }
            for r in &rows {
                each(r.get(1), r.get(2))?;
            }
            if !full {
                return Ok(());
            }
        }
    }

    fn count(&self, project: Option<&str>) -> trove_catalog::Result<u64> {
        let n: i64 = match project {
            Some(p) => self.query("SELECT count(*) FROM dataset_rows WHERE project = $1 AND visible", &[&p])?[0].get(0),
            None => self.query("SELECT count(*) FROM dataset_rows WHERE visible", &[])?[0].get(0),
        };
        Ok(n as u64)
    }

    fn projects(&self) -> trove_catalog::Result<Vec<ProjectState>> {
        let rows = self.query("SELECT name, state FROM project_rows ORDER BY name", &[])?;
        rows.iter().map(|r| parse_project(r.get(1), r.get(0))).collect()
    }

    fn project(&self, name: &str) -> trove_catalog::Result<Option<ProjectState>> {
        let row = self.query_opt("SELECT state FROM project_rows WHERE name = $1", &[&name])?;
        row.map(|r| parse_project(r.get(0), name)).transpose()
    }

    fn applied(&self) -> trove_catalog::Result<HashSet<String>> {
        Ok(self.query("SELECT segment FROM applied", &[])?.iter().map(|r| r.get(0)).collect())
    }

    fn max_ts(&self) -> trove_catalog::Result<i64> {
        let v: Option<String> = self.query_opt("SELECT value FROM info WHERE key = 'max_ts'", &[])?.map(|r| r.get(0));
        Ok(v.and_then(|v| v.parse().ok()).unwrap_or(0))
    }

    fn matching(&self, filter: &Filter, project: Option<&str>) -> trove_catalog::Result<Matches> {
        trove_catalog::plan::evaluate(self, filter, project)
    }

    fn universe(&self, project: Option<&str>) -> trove_catalog::Result<RidSet> {
        Ok(self.universe_of(project)?)
    }

    fn each_in_order(
        &self,
        set: &Matches,
        options: &FindOptions,
        each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
    ) -> trove_catalog::Result<()> {
        trove_catalog::ordered(self, set, options, each)
    }

    fn datasets_by_rids(&self, rids: &[i64]) -> trove_catalog::Result<Vec<DatasetRow>> {
        let list = rids.to_vec();
        let rows = self.query("SELECT rid, visible, state FROM dataset_rows WHERE rid = ANY($1)", &[&list])?;
        let mut by_rid: HashMap<i64, DatasetRow> = HashMap::with_capacity(rows.len());
        for r in &rows {
            let row = dataset_row(r)?;
            by_rid.insert(row.rid, row);
        }
        Ok(rids.iter().filter_map(|rid| by_rid.remove(rid)).collect())
    }

    fn location_by_rid(&self, rid: i64) -> trove_catalog::Result<Option<(String, String)>> {
        Ok(self
            .query_opt("SELECT project, path FROM dataset_rows WHERE rid = $1 AND project IS NOT NULL", &[&rid])?
            .map(|r| (r.get(0), r.get(1))))
    }

    fn key_usage(&self, project: Option<&str>) -> trove_catalog::Result<Vec<KeyUsage>> {
        Ok(crate::console::key_usage(self, project)?)
    }

    fn scan_cache(&self) -> trove_catalog::Result<HashMap<String, CachedFile>> {
        let rows = self.query("SELECT key, size, mtime_ns, ino, checksum FROM scan_files", &[])?;
        Ok(rows
            .iter()
            .map(|r| {
                let file = CachedFile {
                    size: r.get::<_, i64>(1) as u64,
                    mtime_ns: r.get(2),
                    ino: r.get::<_, i64>(3) as u64,
                    checksum: r.get(4),
                };
                (r.get(0), file)
            })
            .collect())
    }

    fn record_scan_files(&self, found: &[(&str, &CachedFile)], gone: &[&str]) -> trove_catalog::Result<()> {
        if !found.is_empty() {
            let keys: Vec<&str> = found.iter().map(|(k, _)| *k).collect();
            let sizes: Vec<i64> = found.iter().map(|(_, f)| f.size as i64).collect();
            let mtimes: Vec<i64> = found.iter().map(|(_, f)| f.mtime_ns).collect();
            let inos: Vec<i64> = found.iter().map(|(_, f)| f.ino as i64).collect();
            let sums: Vec<&str> = found.iter().map(|(_, f)| f.checksum.as_str()).collect();
            self.execute(
                "INSERT INTO scan_files(key, size, mtime_ns, ino, checksum)
                 SELECT DISTINCT ON (k) k, s, m, i, c FROM unnest($1::text[], $2::int8[], $3::int8[], $4::int8[], $5::text[])
                     WITH ORDINALITY AS t(k, s, m, i, c, o) ORDER BY k, o DESC
                 ON CONFLICT (key) DO UPDATE SET size = excluded.size, mtime_ns = excluded.mtime_ns, ino = excluded.ino,
                     checksum = excluded.checksum",
                &[&keys, &sizes, &mtimes, &inos, &sums],
            )?;
        }
        if !gone.is_empty() {
            let gone: Vec<&str> = gone.to_vec();
            self.execute("DELETE FROM scan_files WHERE key = ANY($1)", &[&gone])?;
        }
        Ok(())
    }
}
