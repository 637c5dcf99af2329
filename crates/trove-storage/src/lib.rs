//! trove's storage layer: one abstraction over `object_store` ([`Storage`]), the append-only metadata log
//! ([`Log`]), the store settings file ([`StoreConfig`]) and writer identity ([`Writer`], [`Clock`]).
//!
//! It knows nothing of the catalog: the layers above read segments from here and hand them to it.

pub mod config;
pub mod log;
pub mod storage;
pub mod writer;

pub use config::{ConfigError, StoreConfig};
pub use log::{Log, LogError};
pub use storage::{Entry, Storage, StorageError};
pub use writer::{Clock, Writer};
