//! trove's catalog: a SQLite index over the metadata log.
//!
//! The catalog is disposable: every row is derived from log segments ([`WriteTx::apply_segment`]) and it
//! remembers which segments it has merged, so catching up reads only new ones. Writers serialise on the
//! SQLite write lock (`BEGIN IMMEDIATE`), which is also what lets one machine's writers resolve paths to ids
//! consistently. WAL mode lets readers run while a writer works.

mod apply;
mod query;
mod read;
mod ridset;
mod scan_cache;
pub mod schema;
mod views;

use std::path::Path;
use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, TransactionBehavior};

pub use query::{FindOptions, Sort, SortKey};
pub use read::{Child, DatasetRow, Reader};
pub use ridset::{Matches, RidSet};
pub use rusqlite::{Error as SqliteError, ErrorCode as SqliteErrorCode};
pub use scan_cache::CachedFile;
pub use views::{KeyUsage, SqlConsole, VIEWS};

/// A catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    #[error("catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("{0}")]
    Refused(String),
    #[error("catalog row for {what} is not valid JSON: {source}")]
    BadRow { what: String, source: serde_json::Error },
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// How the catalog file keeps transactions atomic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journal {
    /// Write-ahead log: readers never block the writer (local disks).
    Wal,
    /// Rollback journal (`DELETE` mode): no shared memory between processes (network filesystems).
    Rollback,
}

/// An open catalog.
pub struct Catalog {
    conn: Connection,
}

/// How long a writer waits for another writer's transaction before giving up.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(600);

impl Catalog {
    /// Opens (creating if needed) the SQLite catalog at `path`. A catalog written by another schema version
    /// is emptied, to be rebuilt from the log by the caller (see [`Catalog::is_empty`]).
    pub fn open(path: &Path) -> Result<Catalog> {
        Catalog::open_journaled(path, Journal::Wal)
    }

    /// [`Catalog::open`] with a chosen journal. WAL needs shared memory between the processes using the file,
    /// which network filesystems do not provide: there the catalog uses a rollback journal.
    pub fn open_journaled(path: &Path, journal: Journal) -> Result<Catalog> {
        let conn = Connection::open(path)?;
        Catalog::setup(conn, journal)
    }

    /// Opens an existing catalog for reading only: nothing is created, migrated or written. `None` when
    /// there is no catalog at `path` or it was written by another schema version (then it knows nothing
    /// useful to this version).
    pub fn open_read_only(path: &Path) -> Result<Option<Catalog>> {
        Catalog::open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    }

    /// Another connection to an existing catalog, for reads only (`query_only`: it can still take part in
    /// WAL), with a smaller page cache than a writer's. `None` as for [`Catalog::open_read_only`].
    pub fn open_reader(path: &Path) -> Result<Option<Catalog>> {
        let Some(catalog) = Catalog::open_existing(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)? else {
            return Ok(None);
        };
        catalog.conn.set_prepared_statement_cache_capacity(64);
        catalog.conn.pragma_update(None, "query_only", true)?;
        catalog.conn.pragma_update(None, "cache_size", -65536)?;
        catalog.conn.pragma_update(None, "temp_store", "MEMORY")?;
        Ok(Some(catalog))
    }

    fn open_existing(path: &Path, mode: rusqlite::OpenFlags) -> Result<Option<Catalog>> {
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
        Ok(Some(Catalog { conn }))
    }

    /// Runs `f` over one snapshot of the catalog: a read transaction, so that a read made of many queries
    /// sees no write land half-way through it.
    pub fn snapshot<T, E: From<CatalogError>>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T, E>) -> Result<T, E> {
        let outer = !self.conn.is_autocommit();
        if !outer {
            self.conn.execute_batch("BEGIN DEFERRED").map_err(CatalogError::from)?;
        }
        let out = f(&self.read());
        if !outer {
            // A read transaction has nothing to keep: ending it cannot lose anything.
            let _ = self.conn.execute_batch("COMMIT");
        }
        out
    }

    /// A catalog in memory (for tests).
    pub fn open_in_memory() -> Result<Catalog> {
        Catalog::setup(Connection::open_in_memory()?, Journal::Wal)
    }

    fn setup(conn: Connection, journal: Journal) -> Result<Catalog> {
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
        Ok(Catalog { conn })
    }

    /// Queries against the catalog as it is now.
    pub fn read(&self) -> Reader<'_> {
        Reader::new(&self.conn)
    }

    /// Starts a write transaction, waiting (up to [`BUSY_TIMEOUT`]) for any other writer to finish. Inside a
    /// held transaction (see [`Catalog::hold`]) it is a savepoint of that one instead: its commit merges into
    /// the held transaction, and dropping it undoes only its own changes.
    pub fn write(&mut self) -> Result<WriteTx<'_>> {
        let tx = if self.conn.is_autocommit() {
            Scope::Transaction(self.conn.transaction_with_behavior(TransactionBehavior::Immediate)?)
        } else {
            Scope::Savepoint(self.conn.savepoint()?)
        };
        Ok(WriteTx { tx })
    }

    /// Opens a write transaction that stays open across calls until [`Catalog::release`]: the catalog's
    /// write lock is held all the while (other writers wait), and every [`Catalog::write`] meanwhile nests in
    /// it. What it changes is seen through this connection at once and by other connections only once
    /// released with `commit`.
    pub fn hold(&mut self) -> Result<()> {
        if !self.conn.is_autocommit() {
            return Err(CatalogError::Refused("a held catalog transaction is open already".into()));
        }
        self.conn.execute_batch("BEGIN IMMEDIATE")?;
        Ok(())
    }

    /// Ends the transaction [`Catalog::hold`] opened: commits it, or rolls every change of it back.
    pub fn release(&mut self, commit: bool) -> Result<()> {
        if self.conn.is_autocommit() {
            return Ok(());
        }
        self.conn.execute_batch(if commit { "COMMIT" } else { "ROLLBACK" })?;
        Ok(())
    }

    /// True when the catalog has merged no segment yet.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.read().applied()?.is_empty())
    }

    /// The underlying connection, for read-only SQL.
    pub fn connection(&self) -> &Connection {
        &self.conn
    }
}

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

/// A write transaction: apply segments, then [`WriteTx::commit`]. Dropping it rolls back.
pub struct WriteTx<'c> {
    tx: Scope<'c>,
}

/// A transaction of its own, or a savepoint nested in a held one (see [`Catalog::hold`]).
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

impl WriteTx<'_> {
    pub fn read(&self) -> Reader<'_> {
        Reader::new(&self.tx)
    }

    /// Merges one segment's records into the catalog and records the segment (and any it covers) as applied.
    pub fn apply_segment(&mut self, name: &str, segment: trove_model::Segment) -> Result<()> {
        self.mark_applied([name])?;
        self.apply_unnamed(segment)
    }

    /// Merges a segment whose name is not known yet (it is being published meanwhile); the caller marks
    /// the name applied once it is.
    pub fn apply_unnamed(&mut self, segment: trove_model::Segment) -> Result<()> {
        self.apply_part(segment, 0)
    }

    /// Merges records that will be published as part of a larger segment, starting at record `first` of it
    /// (under its header): applying a segment's records in parts this way leaves the catalog as applying the
    /// whole segment at once does, since every record is stamped by its place in the segment.
    pub fn apply_part(&mut self, segment: trove_model::Segment, first: u32) -> Result<()> {
        self.mark_applied(segment.header.covers.iter().map(String::as_str))?;
        let mut max_ts = self.read().max_ts()?.max(segment.header.ts);
        for record in &segment.records {
            if let trove_model::Record::DatasetState(s) = record {
                max_ts = max_ts.max(s.max_stamp().ts);
            }
        }
        apply::apply(&self.tx, segment, first)?;
        self.tx.execute("INSERT OR REPLACE INTO info(key, value) VALUES ('max_ts', ?1)", [max_ts.to_string()])?;
        Ok(())
    }

    /// Records segments as applied without reading them.
    pub fn mark_applied<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut stmt = self.tx.prepare_cached("INSERT OR IGNORE INTO applied(segment) VALUES (?1)")?;
        for name in names {
            stmt.execute([name])?;
        }
        Ok(())
    }

    /// Forgets segments that no longer exist in the log (removed after a checkpoint covered them).
    pub fn forget_applied<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let mut stmt = self.tx.prepare_cached("DELETE FROM applied WHERE segment = ?1")?;
        for name in names {
            stmt.execute([name])?;
        }
        Ok(())
    }

    /// Empties every table (for a rebuild from the log inside this same transaction).
    pub fn clear(&self) -> Result<()> {
        self.tx.execute_batch(
            "DELETE FROM applied; DELETE FROM project_rows; DELETE FROM dataset_rows; DELETE FROM tag_rows;
             DELETE FROM object_rows; DELETE FROM meta; DELETE FROM keys; DELETE FROM key_stats; DELETE FROM scan_files;
             DELETE FROM info WHERE key = 'max_ts';",
        )?;
        Ok(())
    }

    pub fn commit(self) -> Result<()> {
        match self.tx {
            Scope::Transaction(tx) => tx.commit()?,
            Scope::Savepoint(sp) => sp.commit()?,
        }
        Ok(())
    }
}
