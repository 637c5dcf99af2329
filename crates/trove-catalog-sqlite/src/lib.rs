//! trove's embedded catalog engine: the catalog seam ([`trove_catalog`]) over one SQLite file.
//!
//! Writers serialise on the SQLite write lock (`BEGIN IMMEDIATE`), which is also what lets one machine's
//! writers resolve paths to ids consistently. WAL mode lets readers run while a writer works; on a network
//! filesystem (no shared memory between machines) the file uses a rollback journal instead.

mod apply;
mod query;
mod read;
mod scan_cache;
pub mod schema;
mod views;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};
use trove_catalog::{
    Backend, CachedFile, Catalog, CatalogError, CatalogRead, CatalogWrite, DatasetRow, Failure, FindOptions, KeyUsage,
    Matches, RidSet,
};
use trove_model::filter::Filter;
use trove_model::{ProjectState, Segment};

use crate::read::Queries;
pub use views::VIEWS;

/// What this crate's functions fail with inside: SQLite's errors and the seam's, until they cross the seam
/// as a [`CatalogError`].
#[derive(Debug)]
pub(crate) enum Error {
    Sqlite(rusqlite::Error),
    Catalog(CatalogError),
}

impl From<rusqlite::Error> for Error {
    fn from(e: rusqlite::Error) -> Error {
        Error::Sqlite(e)
    }
}

impl From<CatalogError> for Error {
    fn from(e: CatalogError) -> Error {
        Error::Catalog(e)
    }
}

impl From<Error> for CatalogError {
    fn from(e: Error) -> CatalogError {
        match e {
            Error::Catalog(e) => e,
            Error::Sqlite(e) => {
                use rusqlite::ErrorCode as Code;
                let failure = match e.sqlite_error_code() {
                    Some(Code::NotADatabase | Code::DatabaseCorrupt) => Failure::Damaged,
                    Some(Code::DiskFull) => Failure::DiskFull,
                    Some(Code::SystemIoFailure) => Failure::Io,
                    Some(Code::CannotOpen) => Failure::Unreachable,
                    _ => Failure::Other,
                };
                CatalogError::Engine { failure, source: Box::new(e) }
            }
        }
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// How the catalog file keeps transactions atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: readers never block the writer (local disks).
    Wal,
    /// Rollback journal (`DELETE` mode): no shared memory between processes (network filesystems).
    Rollback,
}

/// How long a writer waits for another writer's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

/// One connection to a SQLite catalog.
pub struct SqliteCatalog {
    conn: Connection,
    /// The file, for more connections (`None` in memory).
    path: Option<PathBuf>,
}

/// Opens (creating if needed) the SQLite catalog at `path`. A catalog written by another schema version is
/// emptied, to be rebuilt from the log by the caller (see [`Catalog::is_empty`]).
pub fn open(path: &Path) -> trove_catalog::Result<Catalog> {
    open_journaled(path, Journal::Wal)
}

/// [`open`] with a chosen journal. WAL needs shared memory between the processes using the file, which
/// network filesystems do not provide: there the catalog uses a rollback journal.
pub fn open_journaled(path: &Path, journal: Journal) -> trove_catalog::Result<Catalog> {
    let conn = Connection::open(path).map_err(Error::from)?;
    Ok(Catalog::new(SqliteCatalog::setup(conn, Some(path.to_path_buf()), journal)?))
}

/// Opens an existing catalog for reading only: nothing is created, migrated or written. `None` when there
/// is no catalog at `path` or it was written by another schema version (then it knows nothing useful to
/// this version).
pub fn open_read_only(path: &Path) -> trove_catalog::Result<Option<Catalog>> {
    Ok(SqliteCatalog::open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?.map(Catalog::new))
}

/// Another connection to an existing catalog, for reads only (`query_only`: it can still take part in WAL),
/// with a smaller page cache than a writer's. `None` as for [`open_read_only`].
pub fn open_reader(path: &Path) -> trove_catalog::Result<Option<Catalog>> {
    Ok(SqliteCatalog::open_reader(path)?.map(Catalog::new))
}

/// A catalog in memory (for tests, and for a process that cannot read the store's).
pub fn open_in_memory() -> trove_catalog::Result<Catalog> {
    let conn = Connection::open_in_memory().map_err(Error::from)?;
    Ok(Catalog::new(SqliteCatalog::setup(conn, None, Journal::Wal)?))
}

impl SqliteCatalog {
    fn open_reader(path: &Path) -> Result<Option<SqliteCatalog>> {
        let Some(catalog) = SqliteCatalog::open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)? else {
            return Ok(None);
        };
        catalog.conn.set_prepared_statement_cache_capacity(64);
        catalog.conn.pragma_update(None, "query_only", true)?;
        catalog.conn.pragma_update(None, "cache_size", -65536)?;
        catalog.conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(Some(catalog))
    }

    fn open_existing(path: &Path, mode: rusqlite::OpenFlags) -> Result<Option<SqliteCatalog>> {
        use rusqlite::OpenFlags;
        if !path.exists() {
            return Ok(None);
        }
        let conn =
            Connection::open_with_flags(path, mode | OpenFlags::SQLITE_OPEN_URI | OpenFlags::SQLITE_OPEN_NO_MUTEX)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        register_functions(&conn)?;
        if schema_version(&conn)?.as_deref() != Some(&schema::SCHEMA_VERSION.to_string()) {
            return Ok(None);
        }
        Ok(Some(SqliteCatalog { conn, path: Some(path.to_path_buf()) }))
    }

    fn setup(conn: Connection, path: Option<PathBuf>, journal: Journal) -> Result<SqliteCatalog> {
        conn.busy_timeout(BUSY_TIMEOUT)?;
        register_functions(&conn)?;
        conn.set_prepared_statement_cache_capacity(64);
        // Takes effect when the file is new: larger pages mean shallower B-trees and fewer page splits.
        conn.pragma_update(None, "page_size", 16384)?;
        // WAL: readers never block the writer. NORMAL sync: a crash may lose the last transactions, which
        // the next catch-up re-applies from the log (the log is the truth).
        let mode = match journal {
            Journal::Wal => "WAL",
            Journal::Rollback => "DELETE",
        };
        conn.pragma_update(None, "journal_mode", mode)?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        // 256 MiB at most, used only as pages are read: a bulk write into a catalog of 10^6 datasets inserts
        // index rows all over a B-tree of several hundred MB, and 64 MiB made it re-read evicted pages (ingest of
        // 10^6: 78 s -> 70 s; 512 MiB gave no more).
        conn.pragma_update(None, "cache_size", -262144)?;
        conn.pragma_update(None, "temp_store", "MEMORY")?;
        // After a large ingest the WAL is checkpointed; keep the file from staying at its largest size.
        conn.pragma_update(None, "journal_size_limit", 16 * 1024 * 1024)?;
        let version = schema_version(&conn)?;
        if version.as_deref().is_some_and(|v| v != schema::SCHEMA_VERSION.to_string()) {
            drop_everything(&conn)?;
        }
        if version.as_deref() != Some(&schema::SCHEMA_VERSION.to_string()) {
            // The documented views are part of the file, in plain SQL: any SQLite client reads them.
            let views = views::VIEWS.replace("{id}", query::ID_TEXT).replace("{big}", views::BIG_TEXT);
            conn.execute_batch(&format!(
                "BEGIN IMMEDIATE; {} {views} INSERT OR REPLACE INTO info(key, value) VALUES ('schema_version', '{}'); COMMIT;",
                schema::SCHEMA,
                schema::SCHEMA_VERSION
            ))?;
        }
        Ok(SqliteCatalog { conn, path })
    }

    fn queries(&self) -> Queries<'_> {
        Queries::new(&self.conn)
    }
}

impl Backend for SqliteCatalog {
    fn read(&self) -> &dyn CatalogRead {
        self
    }

    fn begin_snapshot(&self) -> trove_catalog::Result<bool> {
        if !self.conn.is_autocommit() {
            return Ok(false);
        }
        self.conn.execute_batch("BEGIN DEFERRED").map_err(Error::from)?;
        Ok(true)
    }

    fn end_snapshot(&self, began: bool) {
        if began {
            // A read transaction has nothing to keep: ending it cannot lose anything.
            let _ = self.conn.execute_batch("COMMIT");
        }
    }

    fn write(&mut self) -> trove_catalog::Result<Box<dyn CatalogWrite + '_>> {
        let tx = if self.conn.is_autocommit() {
            Scope::Transaction(
                self.conn.transaction_with_behavior(TransactionBehavior::Immediate).map_err(Error::from)?,
            )
        } else {
            Scope::Savepoint(self.conn.savepoint().map_err(Error::from)?)
        };
        Ok(Box::new(SqliteWrite { tx }))
    }

    fn hold(&mut self) -> trove_catalog::Result<()> {
        if !self.conn.is_autocommit() {
            return Err(CatalogError::Refused("a held catalog transaction is open already".into()));
        }
        self.conn.execute_batch("BEGIN IMMEDIATE").map_err(Error::from)?;
        Ok(())
    }

    fn release(&mut self, commit: bool) -> trove_catalog::Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" }).map_err(Error::from)?;
        Ok(())
    }

    fn open_reader(&self) -> trove_catalog::Result<Option<Catalog>> {
        match &self.path {
            Some(path) => open_reader(path),
            None => Ok(None),
        }
    }

    fn sql_console(&self) -> trove_catalog::Result<Box<dyn trove_catalog::SqlConsole>> {
        let path = self
            .path
            .as_deref()
            .ok_or_else(|| CatalogError::Refused("an in-memory catalog has no SQL console".into()))?;
        Ok(Box::new(views::SqliteConsole::open(path)?))
    }
}

/// A write transaction: its own, or a savepoint nested in a held one (see [`Backend::hold`]).
struct SqliteWrite<'c> {
    tx: Scope<'c>,
}

enum Scope<'c> {
    Transaction(rusqlite::Transaction<'c>),
    Savepoint(rusqlite::Savepoint<'c>),
}

impl std::ops::Deref for Scope<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        match self {
            Scope::Transaction(tx) => tx,
            Scope::Savepoint(sp) => sp,
        }
    }
}

impl SqliteWrite<'_> {
    fn queries(&self) -> Queries<'_> {
        Queries::new(&self.tx)
    }
}

impl CatalogWrite for SqliteWrite<'_> {
    fn read(&self) -> &dyn CatalogRead {
        self
    }

    fn apply_records(&mut self, segment: Segment, first: u32) -> trove_catalog::Result<()> {
        Ok(apply::apply(&self.tx, segment, first)?)
    }

    fn raise_max_ts(&mut self, ts: i64) -> trove_catalog::Result<()> {
        let ts = self.queries().max_ts()?.max(ts);
        self.tx
            .execute("INSERT OR REPLACE INTO info(key, value) VALUES ('max_ts', ?1)", [ts.to_string()])
            .map_err(Error::from)?;
        Ok(())
    }

    fn mark_applied(&mut self, names: &[&str]) -> trove_catalog::Result<()> {
        let mut stmt =
            self.tx.prepare_cached("INSERT OR IGNORE INTO applied(segment) VALUES (?1)").map_err(Error::from)?;
        for name in names {
            stmt.execute([name]).map_err(Error::from)?;
        }
        Ok(())
    }

    fn forget_applied(&mut self, names: &[&str]) -> trove_catalog::Result<()> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM applied WHERE segment = ?1").map_err(Error::from)?;
        for name in names {
            stmt.execute([name]).map_err(Error::from)?;
        }
        Ok(())
    }

    fn clear(&mut self) -> trove_catalog::Result<()> {
        self.tx
            .execute_batch(
                "DELETE FROM applied; DELETE FROM project_rows; DELETE FROM dataset_rows; DELETE FROM tag_rows;
                 DELETE FROM object_rows; DELETE FROM meta; DELETE FROM keys; DELETE FROM key_stats; DELETE FROM scan_files;
                 DELETE FROM info WHERE key = 'max_ts';",
            )
            .map_err(Error::from)?;
        Ok(())
    }

    fn commit(self: Box<Self>) -> trove_catalog::Result<()> {
        match self.tx {
            Scope::Transaction(tx) => tx.commit().map_err(Error::from)?,
            Scope::Savepoint(sp) => sp.commit().map_err(Error::from)?,
        }
        Ok(())
    }
}

/// [`CatalogRead`] for a type with a `queries()`: every method is the same query on its connection.
macro_rules! read_through_queries {
    ($type:ty) => {
        impl CatalogRead for $type {
            fn dataset_at(&self, project: &str, path: &str) -> trove_catalog::Result<Option<DatasetRow>> {
                Ok(self.queries().dataset_at(project, path)?)
            }
            fn with_lineage(&self, key: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
                Ok(self.queries().visible_where("lineage", key)?)
            }
            fn with_lineage_name(&self, name: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
                Ok(self.queries().visible_where("lineage_name", name)?)
            }
            fn rids_with_lineage_name(&self, name: &str, project: Option<&str>) -> trove_catalog::Result<RidSet> {
                Ok(self.queries().rids_with_lineage_name(name, project)?)
            }
            fn objects_with_checksum(&self, checksum: &str) -> trove_catalog::Result<Vec<(String, String, String)>> {
                Ok(self.queries().objects_with_checksum(checksum)?)
            }
            fn dataset_by_id(&self, id: &uuid::Uuid) -> trove_catalog::Result<Option<DatasetRow>> {
                Ok(self.queries().dataset_by_id(id)?)
            }
            fn deleted_at(&self, project: &str, path: &str) -> trove_catalog::Result<Vec<DatasetRow>> {
                Ok(self.queries().deleted_at(project, path)?)
            }
            fn has_descendants(&self, project: &str, prefix: &str) -> trove_catalog::Result<bool> {
                Ok(self.queries().has_descendants(project, prefix)?)
            }
            fn first_path(
                &self,
                project: &str,
                from: &str,
                inclusive: bool,
                to: &str,
            ) -> trove_catalog::Result<Option<String>> {
                Ok(self.queries().first_path(project, from, inclusive, to)?)
            }
            fn each_descendant(
                &self,
                project: &str,
                prefix: &str,
                each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>,
            ) -> trove_catalog::Result<()> {
                Ok(self.queries().descendants(project, prefix, each)?)
            }
            fn each_row(
                &self,
                each: &mut dyn FnMut(DatasetRow) -> trove_catalog::Result<()>,
            ) -> trove_catalog::Result<()> {
                Ok(self.queries().all_rows(each)?)
            }
            fn each_state_json(
                &self,
                each: &mut dyn FnMut(bool, &str) -> trove_catalog::Result<()>,
            ) -> trove_catalog::Result<()> {
                Ok(self.queries().all_states_json(each)?)
            }
            fn count(&self, project: Option<&str>) -> trove_catalog::Result<u64> {
                Ok(self.queries().count(project)?)
            }
            fn projects(&self) -> trove_catalog::Result<Vec<ProjectState>> {
                Ok(self.queries().projects()?)
            }
            fn project(&self, name: &str) -> trove_catalog::Result<Option<ProjectState>> {
                Ok(self.queries().project(name)?)
            }
            fn applied(&self) -> trove_catalog::Result<HashSet<String>> {
                Ok(self.queries().applied()?)
            }
            fn max_ts(&self) -> trove_catalog::Result<i64> {
                Ok(self.queries().max_ts()?)
            }
            fn matching(&self, filter: &Filter, project: Option<&str>) -> trove_catalog::Result<Matches> {
                self.queries().matching(filter, project)
            }
            fn universe(&self, project: Option<&str>) -> trove_catalog::Result<RidSet> {
                Ok(self.queries().universe(project)?)
            }
            fn each_in_order(
                &self,
                set: &Matches,
                options: &FindOptions,
                each: &mut dyn FnMut(i64) -> trove_catalog::Result<bool>,
            ) -> trove_catalog::Result<()> {
                self.queries().in_order(set, options, each)
            }
            fn datasets_by_rids(&self, rids: &[i64]) -> trove_catalog::Result<Vec<DatasetRow>> {
                Ok(self.queries().datasets_by_rids(rids)?)
            }
            fn location_by_rid(&self, rid: i64) -> trove_catalog::Result<Option<(String, String)>> {
                Ok(self.queries().location_by_rid(rid)?)
            }
            fn key_usage(&self, project: Option<&str>) -> trove_catalog::Result<Vec<KeyUsage>> {
                Ok(self.queries().key_usage(project)?)
            }
            fn scan_cache(&self) -> trove_catalog::Result<HashMap<String, CachedFile>> {
                Ok(self.queries().scan_cache()?)
            }
            fn record_scan_files(&self, found: &[(&str, &CachedFile)], gone: &[&str]) -> trove_catalog::Result<()> {
                Ok(self.queries().record_scan(found, gone)?)
            }
        }
    };
}

read_through_queries!(SqliteCatalog);
read_through_queries!(SqliteWrite<'_>);

/// The schema version a catalog file was written with; `None` for a new (empty) file.
fn schema_version(conn: &Connection) -> Result<Option<String>> {
    Ok(conn.query_row("SELECT value FROM info WHERE key = 'schema_version'", [], |r| r.get(0)).optional().or_else(
        |e| match e {
            rusqlite::Error::SqliteFailure(_, Some(ref m)) if m.contains("no such table") => Ok(None),
            e => Err(e),
        },
    )?)
}

/// Drops every view and table of an older catalog (whatever its tables were called), to be built again from the
/// log: the catalog is disposable.
fn drop_everything(conn: &Connection) -> Result<()> {
    let objects: Vec<(String, String)> = conn
        .prepare("SELECT type, name FROM sqlite_master WHERE type IN ('view', 'table') AND name NOT LIKE 'sqlite_%' ORDER BY type = 'table'")?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<_>>()?;
    let mut sql = String::from("BEGIN IMMEDIATE;");
    for (kind, name) in objects {
        let kind = if kind == "view" { "VIEW" } else { "TABLE" };
        sql.push_str(&format!(" DROP {kind} IF EXISTS \"{}\";", name.replace('"', "\"\"")));
    }
    sql.push_str(" COMMIT;");
    conn.execute_batch(&sql)?;
    Ok(())
}

/// SQL functions the catalog's queries use.
pub(crate) fn register_functions(conn: &Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    // `trove_time(text)`: the microseconds of an ISO-8601 timestamp, or NULL (filters compare times).
    conn.create_scalar_function(
        "trove_time",
        1,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            Ok(match ctx.get_raw(0) {
                rusqlite::types::ValueRef::Text(t) => {
                    std::str::from_utf8(t).ok().and_then(trove_model::filter::parse_timestamp)
                }
                _ => None,
            })
        },
    )?;
    // `trove_glob(pattern, text)` and `trove_regex(pattern, text)`: the filter language's own matching, for the
    // strings SQLite's GLOB cannot judge (it stops at a NUL) and for regular expressions, which it lacks.
    conn.create_scalar_function(
        "trove_glob",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let pattern = ctx.get::<String>(0)?;
            Ok(match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => {
                    std::str::from_utf8(t).is_ok_and(|t| trove_model::filter::glob_matches(&pattern, t))
                }
                _ => false,
            })
        },
    )?;
    conn.create_scalar_function(
        "trove_regex",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |ctx| {
            let re = ctx.get_or_create_aux(0, |v| -> std::result::Result<regex::Regex, rusqlite::Error> {
                let pattern = v.as_str().map_err(|e| rusqlite::Error::UserFunctionError(e.into()))?;
                trove_model::filter::compile_regex(pattern).map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
            })?;
            Ok(match ctx.get_raw(1) {
                rusqlite::types::ValueRef::Text(t) => std::str::from_utf8(t).is_ok_and(|t| re.is_match(t)),
                _ => false,
            })
        },
    )
}
