//! The one error type of the format handlers.

use std::path::{Path, PathBuf};

pub type Result<T, E = FormatError> = std::result::Result<T, E>;

/// What went wrong reading, writing or converting data. The message names the file and, where it can, the
/// place inside it.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    /// The data is not what its format promises (a broken header, a bad value on a line, ...).
    #[error("{}: {message}", path.display())]
    Malformed { path: PathBuf, message: String },
    /// A request that cannot be met (an unknown column, a slice out of bounds, an impossible conversion).
    #[error("{0}")]
    Invalid(String),
    #[error("arrow: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("parquet: {0}")]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error("zarr: {0}")]
    Zarr(String),
}

impl FormatError {
    /// A closure for `map_err` that names the file an I/O error happened on.
    pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> FormatError + '_ {
        move |source| FormatError::Io { path: path.to_path_buf(), source }
    }

    /// A malformed-data error at `path`.
    pub fn malformed(path: &Path, message: impl Into<String>) -> FormatError {
        FormatError::Malformed { path: path.to_path_buf(), message: message.into() }
    }
}
