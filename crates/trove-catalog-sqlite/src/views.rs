//! What the catalog tells about itself: the metadata keys in use (`trove schema`) and read-only SQL over
//! documented views (`trove sql`).

use std::path::Path;

use rusqlite::types::ValueRef;
use rusqlite::{Connection, OpenFlags, params};
use serde_json::{Value, json};

use crate::apply::vtype;
use crate::query::Executor;
use trove_catalog::{CatalogError, KeyUsage};

use crate::Result;
use crate::read::Queries;

fn sql_to_json(v: ValueRef<'_>) -> Value {
    match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => json!(i),
        ValueRef::Real(x) => json!(x),
        ValueRef::Text(t) => Value::String(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => Value::String(b.iter().map(|x| format!("{x:02x}")).collect()),
    }
}

impl Queries<'_> {
    /// Every metadata key in use (in `project`, or anywhere), in key order. Counts come from `key_stats`,
    /// kept as data is written; ranges from the ends of the `meta` index. Nothing reads all the metadata.
    pub fn key_usage(&self, project: Option<&str>) -> Result<Vec<KeyUsage>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT k.kid, k.key, s.vtype, sum(s.n) FROM key_stats s JOIN keys k ON k.kid = s.kid
             WHERE ?1 IS NULL OR s.project = ?1 GROUP BY s.kid, s.vtype HAVING sum(s.n) > 0 ORDER BY k.key, s.vtype",
        )?;
        let rows = stmt
            .query_map([project], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?, r.get::<_, i64>(2)?, r.get(3)?))
            })?
            .collect::<rusqlite::Result<Vec<(i64, String, i64, i64)>>>()?;
        let executor = Executor { conn: self.conn, project };
        // Within one project of several, the ends of a key's range are the first and last of its index rows
        // that belong to the project.
        let scope = match project {
            Some(_) => executor.project_datasets()?,
            None => None,
        };
        let counts = rows.into_iter().map(|(kid, key, code, n)| (kid, key, code, n as u64)).collect();
        let mut ends = |kid: i64, code: i64| -> trove_catalog::Result<Option<(Value, Value)>> {
            let ends = self.ends(kid, code, scope.as_ref())?;
            if code != vtype::BIG {
                return Ok(ends);
            }
            // Stored less 2^63.
            let big = |v: Value| v.as_i64().map_or(Value::Null, |i| json!(i as u64 + crate::apply::BIG_OFFSET));
            Ok(ends.map(|(low, high)| (big(low), big(high))))
        };
        Ok(trove_catalog::index::key_usage(counts, &mut ends)?)
    }

    /// The least and greatest value of one key and type, among `scope` when given.
    fn ends(&self, kid: i64, code: i64, scope: Option<&trove_catalog::RidSet>) -> Result<Option<(Value, Value)>> {
        let first = |dir: &str| -> Result<Option<Value>> {
            let sql = format!("SELECT val, rid FROM meta WHERE kid = ?1 AND vtype = ?2 ORDER BY val {dir}");
            let mut stmt = self.conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![kid, code])?;
            while let Some(row) = rows.next()? {
                if scope.is_none_or(|s| s.contains(row.get(1).unwrap_or(-1))) {
                    return Ok(Some(sql_to_json(row.get_ref(0)?)));
                }
            }
            Ok(None)
        };
        Ok(first("ASC")?.zip(first("DESC")?))
    }
}

/// The views `trove sql` offers, documented in the README. They hide the index's internal encoding (row ids,
/// key ids, type codes, the UUID's bytes) behind plain columns.
pub const VIEWS: &str = r#"
CREATE VIEW IF NOT EXISTS datasets AS
SELECT {id} AS id, project, path, kind,
       strftime('%Y-%m-%dT%H:%M:%fZ', created / 1e6, 'unixepoch') AS created,
       strftime('%Y-%m-%dT%H:%M:%fZ', updated / 1e6, 'unixepoch') AS updated,
       lineage,
       coalesce(json_extract(state, '$.meta'), '{}') AS metadata,
       rid
FROM dataset_rows WHERE visible = 1;

CREATE VIEW IF NOT EXISTS tags AS
SELECT d.id, d.project, d.path, t.tag FROM tag_rows t JOIN datasets d ON d.rid = t.rid;

CREATE VIEW IF NOT EXISTS objects AS
SELECT d.id, d.project, d.path, o.name, o.format, o.size, o.checksum,
       json_extract(j.value, '$.media_type') AS media_type,
       json_extract(j.value, '$.summary.rows') AS rows,
       json_extract(j.value, '$.summary.columns') AS columns,
       json_extract(j.value, '$.summary.dtype') AS dtype,
       json_extract(j.value, '$.summary.shape') AS shape,
       json_extract(j.value, '$.summary') AS summary
FROM object_rows o JOIN datasets d ON d.rid = o.rid
JOIN dataset_rows s ON s.rid = o.rid, json_each(s.state, '$.objects') j
WHERE j.key = o.name;

CREATE VIEW IF NOT EXISTS metadata AS
SELECT d.id, d.project, d.path, k.key,
       CASE m.vtype WHEN 0 THEN 'null' WHEN 1 THEN 'boolean' WHEN 2 THEN 'number' WHEN 3 THEN 'string'
                    WHEN 4 THEN 'array' WHEN 5 THEN 'object' ELSE 'number' END AS type,
       CASE m.vtype WHEN 0 THEN NULL WHEN 6 THEN {big} ELSE m.val END AS value
FROM meta m JOIN keys k ON k.kid = m.kid JOIN datasets d ON d.rid = m.rid
WHERE m.vtype < 7 AND typeof(m.val) <> 'blob';

CREATE VIEW IF NOT EXISTS projects AS
SELECT name, strftime('%Y-%m-%dT%H:%M:%fZ', created / 1e6, 'unixepoch') AS created,
       coalesce(json_extract(state, '$.meta'), '{}') AS metadata
FROM project_rows;
"#;

/// The decimal text of a `vtype::BIG` row's integer (val + 2^63, beyond SQLite's integers), in plain SQL:
/// 2^63 = 9223372036 * 10^9 + 854775808, added in two halves with a carry.
pub(crate) const BIG_TEXT: &str = "((m.val / 1000000000 + 9223372036 + (m.val % 1000000000 + 854775808) / 1000000000) \
     || printf('%09d', (m.val % 1000000000 + 854775808) % 1000000000))";

/// A read-only connection to a catalog file with the documented views: what `trove sql` runs on.
pub(crate) struct SqliteConsole {
    conn: Connection,
}

impl SqliteConsole {
    /// Opens the catalog at `path` read-only. Writes are refused three times over: the file is opened
    /// read-only, `query_only` is set, and a statement that would write is rejected before it runs.
    pub(crate) fn open(path: &Path) -> Result<SqliteConsole> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(crate::BUSY_TIMEOUT)?;
        crate::register_functions(&conn)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(SqliteConsole { conn })
    }

    fn run(&self, sql: &str, each: &mut trove_catalog::SqlRowSink<'_>) -> Result<Vec<String>> {
        // Whatever SQLite cannot prepare (a syntax error, an unknown table) is the query's fault.
        let mut stmt = self.conn.prepare(sql).map_err(|e| CatalogError::Refused(format!("invalid SQL: {e}")))?;
        if !stmt.readonly() {
            return Err(crate::Error::from(CatalogError::Refused(format!(
                "trove sql runs read-only queries; this statement would change the catalog: {}",
                sql.trim()
            ))));
        }
        let names: Vec<String> = stmt.column_names().map(str::to_string).collect();
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let values = (0..names.len()).map(|i| row.get_ref(i).map(sql_to_json)).collect::<rusqlite::Result<_>>()?;
            if !each(&names, values)? {
                break;
            }
        }
        Ok(names)
    }
}

impl trove_catalog::SqlConsole for SqliteConsole {
    fn query(&mut self, sql: &str, each: &mut trove_catalog::SqlRowSink<'_>) -> trove_catalog::Result<Vec<String>> {
        Ok(self.run(sql, each)?)
    }
}
