//! trove's data model: names, references, typed values, log records and the rules that merge them.
//!
//! This crate does no I/O. Everything above it (storage, catalog, library, front ends) speaks these types.

pub mod filter;
pub mod lineage;
pub mod name;
pub mod record;
pub mod reference;
pub mod stamp;
pub mod state;
pub mod time;
pub mod value;

pub use lineage::{Input, Lineage, LineageError};
pub use name::{DatasetPath, NameError};
pub use record::{
    DatasetChange, FileEntry, FileMove, Location, ObjectManifest, ProjectChange, Record, Segment, SegmentHeader,
    SegmentKind,
};
pub use reference::{Ref, RefError};
pub use stamp::Stamp;
pub use state::{DatasetState, ProjectState};
