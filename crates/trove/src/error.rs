//! The library's error type. Every message's first line says what was wrong and, where it can, where.

use std::path::PathBuf;

/// Anything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no trove store found in {} or any parent folder", start.display())]
    NoStore { start: PathBuf },
    #[error("{} is not a trove store (no trove.toml)", path.display())]
    NotAStore { path: PathBuf },
    #[error("{} is already a trove store", path.display())]
    AlreadyAStore { path: PathBuf },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Exists { what: String },
    /// Input that is not valid: a value, a name, a request that cannot mean anything.
    #[error("{0}")]
    Invalid(String),
    /// The reference names another kind of thing than the operation takes (a project where it takes a
    /// dataset, a dataset where it takes an object, a table where it takes an array).
    #[error("{0}")]
    Mismatch(String),
    /// What is named has datasets in or below it, which the operation would take too: the caller must ask
    /// for that (the CLI's `-r`, Python's `recursive=True`).
    #[error("{0}")]
    NeedsRecursive(String),
    /// The operation needs what this store does not have (a local disk).
    #[error("{0}")]
    Unsupported(String),
    /// Refused in this handle's present state (inside a batch, or with no batch open), or because the store
    /// kept changing under the operation: it may succeed later.
    #[error("{0}")]
    Refused(String),
    /// This process writes to the log alone, and `what` needs the catalog written.
    #[error("cannot {what} in log-only mode ({reason})")]
    LogOnly { what: String, reason: String },
    /// The caller asked a long operation to stop (Ctrl-C); what it had committed stays, and `what` says how
    /// far it got.
    #[error("interrupted: {what}")]
    Interrupted { what: String },
    /// A file whose name cannot be an object's name, imported without another name.
    #[error("{}: not usable as an object name: {message}", path.display())]
    ObjectName { path: PathBuf, message: String },
    #[error(transparent)]
    Name(#[from] trove_model::NameError),
    #[error(transparent)]
    Ref(#[from] trove_model::RefError),
    #[error(transparent)]
    Value(#[from] trove_model::value::ValueError),
    #[error("{path}, line {line}: {message}")]
    Ingest { path: String, line: usize, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("no space left on the device holding {}: nothing was changed (free some space and retry)", path.display())]
    NoSpace { path: PathBuf, source: Box<Error> },
    #[error("object {what} is damaged: expected {expected}, read {found}")]
    Damaged { what: String, expected: String, found: String },
    #[error(transparent)]
    Storage(#[from] trove_storage::StorageError),
    #[error(transparent)]
    Log(#[from] trove_storage::LogError),
    #[error(transparent)]
    Catalog(#[from] trove_catalog::CatalogError),
    #[error(transparent)]
    Config(#[from] trove_storage::ConfigError),
    #[error(transparent)]
    Lease(#[from] trove_storage::LeaseError),
    #[error(transparent)]
    Format(#[from] trove_formats::FormatError),
    #[error("computing {name} (lineage {}) failed: {source}; nothing was stored", &key[..key.len().min(16)])]
    ComputeFailed { name: String, key: String, source: Box<dyn std::error::Error + Send + Sync> },
}

impl Error {
    /// Recognises a full disk (or an exhausted quota) behind an error from a write under `root`, which SQLite
    /// reports only as a "disk I/O error", and names it: [`Error::NoSpace`]. Other errors pass unchanged.
    pub(crate) fn full_disk(self, root: &std::path::Path) -> Error {
        const ENOSPC: i32 = 28;
        const EDQUOT: i32 = 122;
        let mut says_full = false;
        let mut io_failure = false;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&self);
        while let Some(e) = cause {
            if let Some(io) = e.downcast_ref::<std::io::Error>() {
                says_full |= matches!(io.raw_os_error(), Some(ENOSPC | EDQUOT));
            }
            // `Error::Catalog` is transparent: its source chain skips the `CatalogError` itself.
            let catalog = match e.downcast_ref::<Error>() {
                Some(Error::Catalog(c)) => Some(c),
                _ => e.downcast_ref::<trove_catalog::CatalogError>(),
            };
            if let Some(catalog) = catalog {
                match catalog.failure() {
                    Some(trove_catalog::Failure::DiskFull) => says_full = true,
                    Some(trove_catalog::Failure::Io) => io_failure = true,
                    _ => {}
                }
            }
            cause = e.source();
        }
        // SQLite reports a failed write as a plain I/O error: judge by the space left.
        if io_failure && !says_full {
            says_full = trove_storage::storage::free_space(root).is_ok_and(|free| free < 1 << 20);
        }
        if says_full { Error::NoSpace { path: root.to_path_buf(), source: Box::new(self) } } else { self }
    }

    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
