//! [`Location`]: where a store is, a folder on this machine or an object-store URL, and the folder on this
//! machine that holds a URL store's local state (its cached SQLite catalog, scratch space for conversions).

use std::path::{Path, PathBuf};

use trove_storage::Storage;

use crate::error::{Error, Result};

/// Where a store lives.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Location {
    /// A folder on this machine (or a shared filesystem).
    Folder(PathBuf),
    /// An object store: `s3://bucket/prefix`, `gs://…`, `az://…`, `memory://name` (this process only).
    Url(String),
}

/// The variable naming where a URL store's local state is kept (default: `$XDG_CACHE_HOME/trove`, else
/// `~/.cache/trove`).
pub const CACHE_VARIABLE: &str = "TROVE_CACHE";

impl Location {
    /// A store location as a user writes it: `SCHEME://…` is a URL (one trove cannot keep a store at is
    /// refused when it is opened, rather than taken for a folder of that name), `file://PATH` and anything
    /// else a folder path.
    pub fn parse(text: &str) -> Location {
        if let Some(path) = text.strip_prefix("file://") {
            return Location::Folder(PathBuf::from(path));
        }
        let looks_like_url = text.split_once("://").is_some_and(|(scheme, _)| {
            scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
                && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c))
        });
        if looks_like_url {
            Location::Url(text.trim_end_matches('/').to_string())
        } else {
            Location::Folder(PathBuf::from(text))
        }
    }

    /// The folder, for a folder store.
    pub fn folder(&self) -> Option<&Path> {
        match self {
            Location::Folder(path) => Some(path),
            Location::Url(_) => None,
        }
    }

    /// Whether the store is in an object store.
    pub fn is_url(&self) -> bool {
        matches!(self, Location::Url(_))
    }

    /// The folder on this machine that holds the store's local state: the store folder itself, or for a
    /// URL store a cache folder named by a hash of the URL (the same on every run, its own for every store).
    pub fn local_folder(&self) -> Result<PathBuf> {
        match self {
            Location::Folder(path) => Ok(path.clone()),
            Location::Url(url) => {
                let digest = blake3::hash(url.as_bytes()).to_hex();
                Ok(cache_home()?.join("stores").join(&digest[..32]))
            }
        }
    }

    /// Opens the store's storage. `durable` applies to a folder (object stores are durable on return).
    pub fn storage(&self, durable: bool, options: &[(String, String)]) -> Result<Storage> {
        match self {
            Location::Folder(path) => Ok(Storage::local(path, durable)?),
            Location::Url(url) => Ok(Storage::open_url(url, options)?),
        }
    }
}

impl std::fmt::Display for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Location::Folder(path) => write!(f, "{}", path.display()),
            Location::Url(url) => f.write_str(url),
        }
    }
}

impl From<&Path> for Location {
    fn from(path: &Path) -> Location {
        Location::Folder(path.to_path_buf())
    }
}

impl From<PathBuf> for Location {
    fn from(path: PathBuf) -> Location {
        Location::Folder(path)
    }
}

/// Where trove keeps per-machine state of stores that are not folders.
fn cache_home() -> Result<PathBuf> {
    let from_env = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty()).map(PathBuf::from);
    if let Some(dir) = from_env(CACHE_VARIABLE) {
        return Ok(dir);
    }
    if let Some(dir) = from_env("XDG_CACHE_HOME") {
        return Ok(dir.join("trove"));
    }
    match from_env("HOME") {
        Some(home) => Ok(home.join(".cache/trove")),
        None => Err(Error::Invalid(format!(
            "no folder for this machine's copy of the catalog: set {CACHE_VARIABLE}, XDG_CACHE_HOME or HOME"
        ))),
    }
}
