//! trove: a catalog and store for scientific data.
//!
//! Data stays in open formats at readable paths under the store root; metadata is an append-only log in
//! `.trove/log` (the truth) and a SQLite catalog (a disposable index over it).
//!
//! ```
//! use trove::{DatasetEdit, Store};
//! use trove_model::DatasetPath;
//!
//! let dir = tempfile::tempdir().unwrap();
//! let store = Store::init(dir.path()).unwrap();
//! let edit = DatasetEdit { meta: vec![("temperature".into(), 300.into())], ..Default::default() };
//! store.put("lab", &DatasetPath::parse("runs/1").unwrap(), &edit, &[]).unwrap();
//! let ds = store.dataset("lab", &DatasetPath::parse("runs/1").unwrap()).unwrap().unwrap();
//! assert_eq!(ds.meta["temperature"], 300);
//! ```

mod batch;
mod catalog_at;
mod check;
mod compute;
mod connections;
mod error;
mod export;
mod fault;
mod history;
mod lineage;
mod location;
mod objects;
mod placement;
mod query;
mod repair;
mod scan;
mod store;
mod transfer;
mod verify;
mod view;
mod watch;
mod write;

pub use batch::BatchReport;
pub use catalog_at::{CatalogSwitch, PASSWORD_VARIABLE, use_catalog};
pub use check::{CheckReport, DEFAULT_GC_GRACE, Finding, FindingKind, GcReport};
pub use compute::{
    ComputeOptions, ComputeOutput, Computed, DEFAULT_PROJECT, DERIVED_KIND, KeepWaiting, Loose, Outcome,
};
pub use connections::{CONFIG_VARIABLE, Connection, ConnectionTest, Connections, SecretRef};
pub use error::{Error, Result};
pub use history::{CHECKPOINT_NOTE, Change, HistoryChange, HistoryEntry, LostTo};
pub use lineage::{InputNode, LineageTree, Presence, code_checksum};
pub use location::{CACHE_VARIABLE, Location};
pub use objects::{FileImport, ObjectInfo, ZARR_THRESHOLD_BYTES};
pub use query::SqlConsole;
pub use query::{Query, key_usage_json};
pub use repair::{QUARANTINE, Quarantined, RepairReport};
pub use scan::{
    CopiedDataset, CreatedDataset, MovedDataset, RemovedDataset, ScanPhase, ScanProgress, ScanReport, SkippedEntry,
};
pub use store::{CATALOG_FILE, CONFIG_FILE, CompactReport, OpenOptions, STAGING, Store, SyncReport, WaitNotice};
pub use transfer::{TransferOptions, TransferReport, TransferSelection};
pub use trove_catalog::{CatalogError, Child, Failure as CatalogFailure, FindOptions, KeyUsage, RidSet, Sort, SortKey};
/// The format handlers, re-exported for their table and array helpers and the `Element` trait.
pub use trove_formats as formats;
pub use trove_formats::{Compression, PreviewOptions, Slice, TableSelect, WriteOptions};
pub use verify::{Damage, DamageKind, DamagedObject, VerifyReport, VerifyScope};
pub use view::{Target, object_key};
pub use write::{DatasetEdit, INGEST_BATCH, IngestLine, IngestReport, PutOutcome};

/// The model types, re-exported so that users of the library need one dependency.
pub use trove_model as model;
