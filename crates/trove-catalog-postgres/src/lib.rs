//! trove's shared catalog engine: the catalog seam ([`trove_catalog`]) over a PostgreSQL database, so that
//! many writers on many machines keep one catalog.
//!
//! The database holds one store's catalog, in the schema `trove`; the store's id is recorded there and a
//! catalog of another store is refused. Writers serialise on a transaction-level advisory lock, as SQLite's
//! writers do on its write lock: resolving a path to a dataset is then the same on every machine. Readers
//! never wait for writers (MVCC); a snapshot is a `REPEATABLE READ` read-only transaction.
//!
//! The catalog is disposable like every catalog: `trove sync --full` rebuilds it from the log, and a machine
//! catches up by the segments it has not applied (the `applied` table is shared, so each segment is applied
//! once, by whichever machine gets there first).

mod apply;
mod console;
mod probe;
mod read;
mod schema;
pub mod testing;

use std::cell::{Cell, RefCell, RefMut};
use std::collections::HashMap;
use std::str::FromStr;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};
use trove_catalog::{Backend, Catalog, CatalogError, CatalogRead, CatalogWrite, Failure};
use trove_model::Segment;

/// The advisory lock every writer of a catalog takes for its transaction (one catalog per database).
const WRITE_LOCK: i64 = 0x7472_6f76_6563_6174; // "trovecat"

/// What this crate's functions fail with inside, until it crosses the seam as a [`CatalogError`].
#[derive(Debug)]
pub(crate) enum Error {
    Pg(postgres::Error),
    Catalog(CatalogError),
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
        Error::Pg(e)
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
            Error::Pg(e) => {
                let failure = failure_of(&e);
                let message = match e.as_db_error() {
                    Some(db) => format!("PostgreSQL: {} (SQLSTATE {})", db.message(), db.code().code()),
                    None => match std::error::Error::source(&e) {
                        Some(cause) => format!("PostgreSQL: {e}: {cause}"),
                        None => format!("PostgreSQL: {e}"),
                    },
                };
                CatalogError::Engine { failure, source: message.into() }
            }
        }
    }
}

fn failure_of(e: &postgres::Error) -> Failure {
    if e.is_closed() {
        return Failure::Unreachable;
    }
    match e.code().map(|c| c.code()) {
        Some("53100") => Failure::DiskFull,
        Some("58030") => Failure::Io,
        Some("XX001" | "XX002") => Failure::Damaged,
        Some(code) if code.starts_with("08") || code.starts_with("57P") => Failure::Unreachable,
        Some(_) => Failure::Other,
        // No server answer at all: it could not be reached, or the connection broke.
        None => Failure::Unreachable,
    }
}

pub(crate) type Result<T, E = Error> = std::result::Result<T, E>;

/// A catalog URL without its password (if any), for messages and for `trove.toml`.
pub fn redacted(url: &str) -> String {
    let mut out = match url.split_once("://") {
        Some((scheme, rest)) => {
            let (authority, tail) = match rest.find(['/', '?']) {
                Some(i) => rest.split_at(i),
                None => (rest, ""),
            };
            match authority.rsplit_once('@') {
                Some((userinfo, host)) => {
                    let user = userinfo.split(':').next().unwrap_or("");
                    format!("{scheme}://{user}@{host}{tail}")
                }
                None => url.to_string(),
            }
        }
        None => url.to_string(),
    };
    // A password may also come as a query parameter: it is left out.
    if let Some((base, query)) = out.split_once('?') {
        let kept: Vec<&str> = query.split('&').filter(|p| !p.starts_with("password=")).collect();
        out = if kept.is_empty() { base.to_string() } else { format!("{base}?{}", kept.join("&")) };
    }
    out
}

/// Whether a catalog URL names PostgreSQL.
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// Opens (creating its tables if needed) the catalog of the store `store_id` in the PostgreSQL database at
/// `url`. A catalog written by another schema version is emptied, to be rebuilt from the log by the caller
/// (see [`Catalog::is_empty`]); a catalog that belongs to another store is refused. `password`, when given,
/// is used instead of one in the URL (secrets stay out of `trove.toml`).
pub fn open(url: &str, password: Option<&str>, store_id: &str) -> trove_catalog::Result<Catalog> {
    let pg = Pg::connect(url, password)?;
    schema::set_up(&pg, store_id, url)?;
    Ok(Catalog::new(PgCatalog { pg }))
}

/// Another connection to a catalog [`open`] set up already (for reads: nothing is created or checked).
pub fn connect(url: &str, password: Option<&str>) -> trove_catalog::Result<Catalog> {
    Ok(Catalog::new(PgCatalog { pg: Pg::connect(url, password)? }))
}

/// The state of the connection's transaction.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct TxState {
    /// A transaction is open.
    open: bool,
    /// It was opened by [`Backend::hold`] and stays open until released.
    held: bool,
    /// Savepoints open inside it.
    savepoints: u32,
}

/// One connection, with the statements it prepared.
pub(crate) struct Pg {
    client: RefCell<Client>,
    statements: RefCell<HashMap<String, Statement>>,
    config: postgres::Config,
    password: Option<String>,
    url: String,
    tx: Cell<TxState>,
}

impl Pg {
    fn connect(url: &str, password: Option<&str>) -> trove_catalog::Result<Pg> {
        let mut config = postgres::Config::from_str(url)
            .map_err(|e| CatalogError::Refused(format!("invalid PostgreSQL catalog URL {}: {e}", redacted(url))))?;
        if let Some(password) = password {
            config.password(password);
        }
        config.options("-c search_path=trove");
        config.application_name("trove");
        config.connect_timeout(std::time::Duration::from_secs(10));
        let client = config.connect(NoTls).map_err(|e| {
            let failure = failure_of(&e);
            let why = CatalogError::from(Error::Pg(e));
            CatalogError::Engine {
                failure,
                source: format!("cannot reach the catalog at {}: {why}", redacted(url)).into(),
            }
        })?;
        Ok(Pg {
            client: RefCell::new(client),
            statements: RefCell::default(),
            config,
            password: password.map(str::to_string),
            url: url.to_string(),
            tx: Cell::new(TxState::default()),
        })
    }

    /// The connection, connected again first if the server dropped it while no transaction was open (a
    /// server restart between two commands of a long-lived handle).
    fn client(&self) -> Result<RefMut<'_, Client>> {
        let mut client = self.client.borrow_mut();
        if client.is_closed() && !self.tx.get().open {
            *client = self.config.connect(NoTls)?;
            self.statements.borrow_mut().clear();
        }
        Ok(client)
    }

    fn statement(&self, client: &mut Client, sql: &str) -> Result<Statement> {
        if let Some(stmt) = self.statements.borrow().get(sql) {
            return Ok(stmt.clone());
        }
        let stmt = client.prepare(sql)?;
        self.statements.borrow_mut().insert(sql.to_string(), stmt.clone());
        Ok(stmt)
    }

    /// Runs a query and returns its rows (all of them: callers never hold the connection while they run
    /// callbacks, which may query again).
    pub(crate) fn query(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let mut client = self.client()?;
        let stmt = self.statement(&mut client, sql)?;
        Ok(client.query(&stmt, params)?)
    }

    pub(crate) fn query_opt(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Option<Row>> {
        let mut client = self.client()?;
        let stmt = self.statement(&mut client, sql)?;
        Ok(client.query_opt(&stmt, params)?)
    }

    pub(crate) fn execute(&self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<u64> {
        let mut client = self.client()?;
        let stmt = self.statement(&mut client, sql)?;
        Ok(client.execute(&stmt, params)?)
    }

    pub(crate) fn batch(&self, sql: &str) -> Result<()> {
        Ok(self.client()?.batch_execute(sql)?)
    }

    /// Streams `data` into `COPY … FROM STDIN` (text format).
    pub(crate) fn copy_in(&self, sql: &str, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let mut client = self.client()?;
        let mut writer = client.copy_in(sql)?;
        writer
            .write_all(data)
            .map_err(|e| CatalogError::Engine { failure: Failure::Unreachable, source: Box::new(e) })?;
        writer.finish()?;
        Ok(())
    }

    /// Starts a write: a transaction holding the write lock, or a savepoint inside the open one.
    fn begin_write(&self) -> Result<Option<u32>> {
        let mut state = self.tx.get();
        if state.open {
            state.savepoints += 1;
            self.batch(&format!("SAVEPOINT trove_{}", state.savepoints))?;
            self.tx.set(state);
            return Ok(Some(state.savepoints));
        }
        self.batch(&format!("BEGIN; SELECT pg_advisory_xact_lock({WRITE_LOCK})"))?;
        self.tx.set(TxState { open: true, held: false, savepoints: 0 });
        Ok(None)
    }

    /// Ends a write [`Pg::begin_write`] started.
    fn end_write(&self, savepoint: Option<u32>, commit: bool) -> Result<()> {
        let mut state = self.tx.get();
        match savepoint {
            Some(n) => {
                state.savepoints = n - 1;
                self.tx.set(state);
                if commit {
                    self.batch(&format!("RELEASE SAVEPOINT trove_{n}"))
                } else {
                    self.batch(&format!("ROLLBACK TO SAVEPOINT trove_{n}; RELEASE SAVEPOINT trove_{n}"))
                }
            }
            None => {
                self.tx.set(TxState::default());
                self.batch(if commit { "COMMIT" } else { "ROLLBACK" })
            }
        }
    }

    pub(crate) fn forget_statements(&self) {
        self.statements.borrow_mut().clear();
    }

    /// Another connection to the same database.
    fn another(&self) -> trove_catalog::Result<Pg> {
        Pg::connect(&self.url, self.password.as_deref())
    }
}

/// One connection to a PostgreSQL catalog.
struct PgCatalog {
    pg: Pg,
}

impl Backend for PgCatalog {
    fn read(&self) -> &dyn CatalogRead {
        &self.pg
    }

    fn begin_snapshot(&self) -> trove_catalog::Result<bool> {
        if self.pg.tx.get().open {
            return Ok(false);
        }
        self.pg.batch("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")?;
        self.pg.tx.set(TxState { open: true, held: false, savepoints: 0 });
        Ok(true)
    }

    fn end_snapshot(&self, began: bool) {
        if began {
            self.pg.tx.set(TxState::default());
            // A read-only transaction has nothing to keep: ending it cannot lose anything.
            let _ = self.pg.batch("COMMIT");
        }
    }

    fn write(&mut self) -> trove_catalog::Result<Box<dyn CatalogWrite + '_>> {
        let savepoint = self.pg.begin_write()?;
        Ok(Box::new(PgWrite { pg: &self.pg, savepoint, done: false }))
    }

    fn hold(&mut self) -> trove_catalog::Result<()> {
        if self.pg.tx.get().open {
            return Err(CatalogError::Refused("a held catalog transaction is open already".into()));
        }
        self.pg.begin_write()?;
        self.pg.tx.set(TxState { open: true, held: true, savepoints: 0 });
        Ok(())
    }

    fn release(&mut self, commit: bool) -> trove_catalog::Result<()> {
        if !self.pg.tx.get().held {
            return Ok(());
        }
        Ok(self.pg.end_write(None, commit)?)
    }

    fn open_reader(&self) -> trove_catalog::Result<Option<Catalog>> {
        Ok(Some(Catalog::new(PgCatalog { pg: self.pg.another()? })))
    }

    fn sql_console(&self) -> trove_catalog::Result<Box<dyn trove_catalog::SqlConsole>> {
        Ok(Box::new(console::PgConsole::new(self.pg.another()?)))
    }
}

/// A write transaction (or a savepoint of the held one).
struct PgWrite<'c> {
    pg: &'c Pg,
    savepoint: Option<u32>,
    done: bool,
}

impl Drop for PgWrite<'_> {
    fn drop(&mut self) {
        if !self.done {
            // Rolling back loses nothing the log does not hold; a broken connection rolls back by itself.
            let _ = self.pg.end_write(self.savepoint, false);
        }
    }
}

impl CatalogWrite for PgWrite<'_> {
    fn read(&self) -> &dyn CatalogRead {
        self.pg
    }

    fn apply_records(&mut self, segment: Segment, first: u32) -> trove_catalog::Result<()> {
        Ok(apply::apply(self.pg, segment, first)?)
    }

    fn raise_max_ts(&mut self, ts: i64) -> trove_catalog::Result<()> {
        self.pg.execute(
            "INSERT INTO info(key, value) VALUES ('max_ts', $1) ON CONFLICT (key) DO UPDATE
             SET value = greatest(info.value::bigint, excluded.value::bigint)::text",
            &[&ts.to_string()],
        )?;
        Ok(())
    }

    fn mark_applied(&mut self, names: &[&str]) -> trove_catalog::Result<()> {
        if names.is_empty() {
            return Ok(());
        }
        let names: Vec<&str> = names.to_vec();
        self.pg.execute("INSERT INTO applied(segment) SELECT unnest($1::text[]) ON CONFLICT DO NOTHING", &[&names])?;
        Ok(())
    }

    fn forget_applied(&mut self, names: &[&str]) -> trove_catalog::Result<()> {
        let names: Vec<&str> = names.to_vec();
        self.pg.execute("DELETE FROM applied WHERE segment = ANY($1)", &[&names])?;
        Ok(())
    }

    fn clear(&mut self) -> trove_catalog::Result<()> {
        self.pg.batch(
            "TRUNCATE applied, project_rows, dataset_rows, tag_rows, object_rows, meta, keys, key_stats, scan_files
             RESTART IDENTITY; DELETE FROM info WHERE key = 'max_ts';",
        )?;
        Ok(())
    }

    fn commit(mut self: Box<Self>) -> trove_catalog::Result<()> {
        self.done = true;
        Ok(self.pg.end_write(self.savepoint, true)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_leave_in_a_url() {
        assert_eq!(redacted("postgres://ann:s3cret@db:5432/lab"), "postgres://ann@db:5432/lab");
        assert_eq!(redacted("postgresql://ann@db/lab?password=x&sslmode=off"), "postgresql://ann@db/lab?sslmode=off");
        assert_eq!(redacted("postgresql://db/lab?password=x"), "postgresql://db/lab");
        assert_eq!(redacted("postgres://db/lab"), "postgres://db/lab");
        assert_eq!(redacted("postgres://a:b:c@h/d"), "postgres://a@h/d");
    }
}
