//! Where a store's catalog lives: the embedded SQLite file `.trove/catalog.sqlite`, or a PostgreSQL database
//! that `trove.toml` names (`[catalog] url`). The log is the truth for both, so a store moves between them by
//! rebuilding the new catalog from the log ([`use_catalog`]): no migration scripts.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use trove_catalog::{Catalog, Failure};
use trove_storage::Log;

use crate::error::{Error, Result};
use crate::location::Location;
use crate::store::{CATALOG_FILE, CONFIG_FILE};

/// The variable a PostgreSQL password is read from when none is given (libpq's own convention).
pub const PASSWORD_VARIABLE: &str = "PGPASSWORD";

/// A catalog's place.
#[derive(Clone)]
pub(crate) enum CatalogAt {
    Sqlite { path: PathBuf },
    Postgres { url: String, password: Option<String>, store_id: String },
}

impl std::fmt::Debug for CatalogAt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.describe())
    }
}

impl CatalogAt {
    /// The catalog `url` names (empty: the SQLite file under `root`) for the store `store_id`.
    pub(crate) fn of(root: &Path, url: &str, password: Option<&str>, store_id: &str) -> Result<CatalogAt> {
        if url.is_empty() || url == "sqlite" {
            return Ok(CatalogAt::Sqlite { path: root.join(CATALOG_FILE) });
        }
        if !trove_catalog_postgres::is_postgres_url(url) {
            return Err(Error::Invalid(format!(
                "unknown catalog {url:?}: give postgres://USER@HOST[:PORT]/DATABASE, or sqlite for the embedded file"
            )));
        }
        if store_id.is_empty() {
            return Err(Error::Invalid(format!(
                "{CONFIG_FILE} names a shared catalog but no store id: run `trove catalog use` again to record one"
            )));
        }
        let password = password.map(str::to_string).or_else(|| std::env::var(PASSWORD_VARIABLE).ok());
        Ok(CatalogAt::Postgres { url: url.to_string(), password, store_id: store_id.to_string() })
    }

    pub(crate) fn is_sqlite(&self) -> bool {
        matches!(self, CatalogAt::Sqlite { .. })
    }

    /// What `trove.toml` records: the URL without its password (empty for the SQLite file).
    pub(crate) fn recorded_url(&self) -> String {
        match self {
            CatalogAt::Sqlite { .. } => String::new(),
            CatalogAt::Postgres { url, .. } => trove_catalog_postgres::redacted(url),
        }
    }

    /// For messages: the file, or the URL without its password.
    pub(crate) fn describe(&self) -> String {
        match self {
            CatalogAt::Sqlite { path } => format!("SQLite file {}", path.display()),
            CatalogAt::Postgres { url, .. } => format!("PostgreSQL {}", trove_catalog_postgres::redacted(url)),
        }
    }

    /// Opens the catalog for writing. A SQLite file that SQLite finds damaged is moved aside
    /// (`catalog.sqlite.damaged-<time>`) and a new one made, to be filled from the log: where it went is
    /// returned.
    pub(crate) fn open(&self) -> Result<(Catalog, Option<PathBuf>)> {
        match self {
            CatalogAt::Sqlite { path } => match trove_catalog_sqlite::open(path) {
                Ok(c) => Ok((c, None)),
                Err(e) if is_damage(&e) => {
                    let aside = set_catalog_aside(path)?;
                    Ok((trove_catalog_sqlite::open(path)?, Some(aside)))
                }
                Err(e) => Err(e.into()),
            },
            CatalogAt::Postgres { url, password, store_id } => {
                Ok((trove_catalog_postgres::open(url, password.as_deref(), store_id)?, None))
            }
        }
    }

    /// Another connection for reads; `None` when there is no catalog to read yet.
    pub(crate) fn open_reader(&self) -> Result<Option<Catalog>> {
        match self {
            CatalogAt::Sqlite { path } => Ok(trove_catalog_sqlite::open_reader(path)?),
            CatalogAt::Postgres { url, password, .. } => {
                Ok(Some(trove_catalog_postgres::connect(url, password.as_deref())?))
            }
        }
    }

    /// The catalog for a log-only process: the store's SQLite catalog opened read-only (or an empty one in
    /// memory when there is none this version can read: a log-only process never creates or migrates it);
    /// a PostgreSQL catalog as it is (the process only reads it).
    pub(crate) fn open_read_only(&self) -> Result<Catalog> {
        match self {
            CatalogAt::Sqlite { path } => match trove_catalog_sqlite::open_read_only(path) {
                Ok(Some(catalog)) => Ok(catalog),
                Ok(None) => Ok(trove_catalog_sqlite::open_in_memory()?),
                Err(e) if is_damage(&e) => Ok(trove_catalog_sqlite::open_in_memory()?),
                Err(e) => Err(e.into()),
            },
            CatalogAt::Postgres { .. } => Ok(self.open()?.0),
        }
    }
}

pub(crate) fn is_damage(e: &trove_catalog::CatalogError) -> bool {
    e.failure() == Some(Failure::Damaged)
}

/// Moves a damaged catalog file aside (`catalog.sqlite.damaged-<time>`), with its journal files, and says
/// where it went.
pub(crate) fn set_catalog_aside(path: &Path) -> Result<PathBuf> {
    let aside = path.with_extension(format!("sqlite.damaged-{}", trove_storage::writer::now_micros()));
    std::fs::rename(path, &aside).map_err(Error::io(path))?;
    for suffix in ["-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    Ok(aside)
}

/// What [`use_catalog`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogSwitch {
    /// The catalog now in use, for messages (no password).
    pub catalog: String,
    /// Log segments merged into it.
    pub segments_applied: usize,
    /// Datasets it holds.
    pub datasets: u64,
    /// The SQLite file removed on request, if one was.
    pub removed: Option<PathBuf>,
}

/// Points the store at `root` to another catalog (`url`: `postgres://…`, or `sqlite`/empty for the embedded
/// file): the new catalog is rebuilt from the log in one transaction, then `trove.toml` records it (the
/// moment the switch becomes true). The old catalog is not read, so a store whose server is gone (a team
/// store copied to a laptop) can switch too. A SQLite file left behind is kept as a cache (it catches up if
/// the store switches back), or removed when `remove_sqlite` asks.
pub fn use_catalog(
    location: &Location,
    url: &str,
    password: Option<&str>,
    remove_sqlite: bool,
) -> Result<CatalogSwitch> {
    let (mut config, _) = crate::store::read_config(location, &[])?;
    if config.store.format_version < trove_storage::config::FORMAT_VERSION {
        // Older layouts are upgraded by a normal open first.
        drop(crate::Store::open_at(location, &crate::OpenOptions::default())?);
        return use_catalog(location, url, password, remove_sqlite);
    }
    let root = &match location {
        Location::Folder(root) => root.clone(),
        Location::Url(_) => crate::store::prepare_local_folder(location, &config)?,
    };
    if config.store.id.is_empty() {
        config.store.id = uuid::Uuid::new_v4().to_string();
    }
    let target = CatalogAt::of(root, url, password, &config.store.id)?;
    let storage = Arc::new(location.storage(config.log.durable, &[])?);
    let log = Log::new(storage.clone());
    let (mut catalog, _) = target.open()?;
    let damaged = std::sync::Mutex::new(std::collections::BTreeMap::new());
    let (segments_applied, datasets) = {
        let mut tx = catalog.write()?;
        tx.clear()?;
        let applied = crate::store::catch_up(&log, &storage, &mut tx, &damaged)?;
        let datasets = tx.read().count(None)?;
        tx.commit()?;
        (applied, datasets)
    };
    drop(catalog);
    config.catalog.url = target.recorded_url();
    crate::store::write_config(location, &config)?;
    let sqlite = root.join(CATALOG_FILE);
    let removed = if remove_sqlite && !target.is_sqlite() && sqlite.exists() {
        std::fs::remove_file(&sqlite).map_err(Error::io(&sqlite))?;
        for suffix in ["-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", sqlite.display()));
        }
        Some(sqlite)
    } else {
        None
    };
    Ok(CatalogSwitch { catalog: target.describe(), segments_applied, datasets, removed })
}
