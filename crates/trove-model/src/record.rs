//! The records of the metadata log. A commit is a header and a list of records; a checkpoint is a header and
//! the merged states that replace the commits it covers.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::name::DatasetPath;
use crate::state::{DatasetState, ProjectState};

/// Where a dataset lives: its project and path.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Location(pub String, pub DatasetPath);

impl Location {
    pub fn project(&self) -> &str {
        &self.0
    }
    pub fn path(&self) -> &DatasetPath {
        &self.1
    }
}

/// What the log knows of one stored object. The object's file lives at `<project>/<path>/<name>`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectManifest {
    /// The format word: `parquet`, `npy`, `zarr`, `json`, `csv`, `text`, `file`, ...
    pub format: String,
    pub size: u64,
    /// `blake3:<hex>` of the file's bytes.
    pub checksum: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// Format-specific summary (schema and rows for tables, dtype and shape for arrays).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<Value>,
    /// For an object stored as a folder (a Zarr array, a folder of files): every file in it, by its path
    /// inside the folder. The object's checksum is then [`folder_checksum`] of this listing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<BTreeMap<String, FileEntry>>,
    /// Set when this version was not written through trove but found changed in place by `trove sync
    /// --scan` or `trove watch`: the time (RFC 3339) it was found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub edited: Option<String>,
}

impl ObjectManifest {
    /// Whether the object is stored as a folder rather than one file.
    pub fn is_folder(&self) -> bool {
        self.files.is_some()
    }
}

/// One file inside a folder object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub size: u64,
    /// `blake3:<hex>` of the file's bytes.
    pub checksum: String,
}

/// The text whose BLAKE3 hash is a folder object's checksum: one line per file, in path order,
/// `<checksum> <size> <path>`. Any change to a file, a name or the set of files changes it.
///
/// ```
/// use std::collections::BTreeMap;
/// use trove_model::record::{FileEntry, folder_listing};
/// let files = BTreeMap::from([("c/0".to_string(), FileEntry { size: 3, checksum: "blake3:ab".into() })]);
/// assert_eq!(folder_listing(&files), "blake3:ab 3 c/0\n");
/// ```
pub fn folder_listing(files: &BTreeMap<String, FileEntry>) -> String {
    let mut text = String::new();
    for (path, entry) in files {
        text.push_str(&format!("{} {} {path}\n", entry.checksum, entry.size));
    }
    text
}

/// A change to one dataset: every field that is present is set; absent fields are left as they are.
/// All fields of one change share one stamp.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct DatasetChange {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Top-level metadata keys set to these values.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    /// Top-level metadata keys removed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
    /// Tags added (`true`) or removed (`false`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, bool>,
    /// Objects put (a manifest) or removed (`null`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, Option<ObjectManifest>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Value>,
    /// Where a copy came from (`{"id": ..., "ref": ...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Value>,
}

/// A change to one project's metadata (creating it if needed).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct ProjectChange {
    pub project: String,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unset: Vec<String>,
}

/// One line of a log segment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Record {
    #[serde(rename = "ds")]
    Dataset(DatasetChange),
    #[serde(rename = "project")]
    Project(ProjectChange),
    /// A merged dataset state, as written by checkpoints.
    #[serde(rename = "ds_state")]
    DatasetState(DatasetState),
    /// A merged project state, as written by checkpoints.
    #[serde(rename = "project_state")]
    ProjectState(ProjectState),
}

/// The first line of every segment: who wrote it, when, and how many records follow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SegmentHeader {
    /// `commit` or `checkpoint`.
    pub trove: SegmentKind,
    /// Log format version.
    pub version: u32,
    /// Microseconds since the epoch; the stamp time of every change in a commit.
    pub ts: i64,
    pub writer: String,
    pub host: String,
    pub pid: u32,
    #[serde(default)]
    pub user: String,
    /// What made it (`put`, `ingest`, `mv`, ...), for `trove log`.
    #[serde(default)]
    pub op: String,
    pub records: usize,
    /// For checkpoints: the segments whose content this one replaces.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub covers: Vec<String>,
    /// Data files this commit puts into place (see [`FileMove`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub moves: Vec<FileMove>,
    /// The newest stamp time the writer had seen when it computed this commit (its catalog's). A change with
    /// an older stamp to the same field that this commit overrides, but that is newer than `seen`, was made
    /// concurrently: it lost by last-writer-wins without its writer or this one seeing the other (`trove log`
    /// shows it). 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seen: i64,
}

fn is_zero(v: &i64) -> bool {
    *v == 0
}

/// A data file a commit moves into its readable place: from the staging area (a put) or from the old
/// location (a mv). The writer moves it right after publishing the commit; if the writer dies first, the
/// next process that applies the commit finishes the move, when the object still has this checksum at this
/// place. So a reader never sees a file the log does not describe, and a committed file is never lost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileMove {
    pub from: String,
    pub to: String,
    /// The dataset and object the file belongs to.
    pub id: Uuid,
    pub object: String,
    pub checksum: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SegmentKind {
    Commit,
    Checkpoint,
}

/// A whole segment, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    pub header: SegmentHeader,
    pub records: Vec<Record>,
}
