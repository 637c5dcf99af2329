//! Tables: what to read of one, and the summaries and previews all table formats share. (Table helper's module.)

use std::ops::Range;

/// Which part of a table to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TableSelect {
    /// Only these columns, in this order (default: all).
    pub columns: Option<Vec<String>>,
    /// Only these rows (default: all).
    pub rows: Option<Range<u64>>,
}
