//! trove's storage layer: one abstraction over `object_store` ([`Storage`]), the append-only metadata log
//! ([`Log`]), the store settings file ([`StoreConfig`]) and writer identity ([`Writer`], [`Clock`]).
//!
//! It knows nothing of the catalog: the layers above read segments from here and hand them to it.

pub mod config;
pub mod filesystem;
pub mod leases;
pub mod log;
pub mod log_watch;
pub mod process;
pub mod storage;
pub mod testing;
pub mod upgrade;
pub mod writer;

pub use config::{ConfigError, StoreConfig};
pub use filesystem::{FsKind, filesystem_of};
pub use leases::{HolderState, Lease, LeaseError, LeaseHolder, Leases};
pub use log::{Log, LogError};
pub use process::{Liveness, ProcessOwner};
pub use storage::{Entry, Storage, StorageError};
pub use writer::{Clock, Writer};
