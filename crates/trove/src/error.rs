//! The library's error type. Every message's first line says what was wrong and, where it can, where.

use std::path::PathBuf;

/// Anything a store operation can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("no trove store found in {} or any parent folder (run `trove init`, or pass --store / set TROVE_STORE)", start.display())]
    NoStore { start: PathBuf },
    #[error("{} is not a trove store (no trove.toml)", path.display())]
    NotAStore { path: PathBuf },
    #[error("{} is already a trove store", path.display())]
    AlreadyAStore { path: PathBuf },
    #[error("{what} not found")]
    NotFound { what: String },
    #[error("{what} already exists")]
    Exists { what: String },
    #[error("{0}")]
    Invalid(String),
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
    Format(#[from] trove_formats::FormatError),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Error {
        let path = path.into();
        move |source| Error::Io { path, source }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
