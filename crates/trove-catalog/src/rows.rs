//! What a catalog answers with.

use serde_json::Value;
use trove_model::DatasetState;

/// A dataset as the catalog holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRow {
    /// The catalog's row id (see the crate docs).
    pub rid: i64,
    pub visible: bool,
    pub state: DatasetState,
}

/// One entry directly below a path: a dataset, an implicit folder (a prefix of deeper datasets), or both.
#[derive(Debug, Clone, PartialEq)]
pub struct Child {
    pub name: String,
    /// The full path inside the project.
    pub path: String,
    pub dataset: Option<DatasetRow>,
    pub has_children: bool,
}

/// One metadata key in use: how many leaves of each type it has, and the range of its numbers and times.
#[derive(Clone, Debug, PartialEq)]
pub struct KeyUsage {
    /// The dotted key.
    pub key: String,
    /// `(type name, count)` for `null boolean number string array object`, the types present only.
    pub types: Vec<(&'static str, u64)>,
    /// How many of its strings are ISO-8601 timestamps.
    pub times: u64,
    /// The least and greatest number, when it has numbers.
    pub numbers: Option<(Value, Value)>,
    /// The earliest and latest timestamp (microseconds), when it has any.
    pub time_range: Option<(i64, i64)>,
}

impl KeyUsage {
    /// The number of datasets with the key (each has one leaf per key).
    pub fn count(&self) -> u64 {
        self.types.iter().map(|(_, n)| n).sum()
    }
}

/// What a scan found in one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedFile {
    pub size: u64,
    /// Modification time, nanoseconds since the epoch.
    pub mtime_ns: i64,
    pub ino: u64,
    /// `blake3:<hex>` of the bytes it held.
    pub checksum: String,
}
