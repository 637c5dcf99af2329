//! Fault injection for crash tests: `TROVE_FAULT=<point>` makes the process abort at that point, as if it
//! had been killed there (no destructors, no flushing). The points are named where they are placed:
//! `before-commit`, `after-commit` (the commit is published, its files not yet moved), `between-moves` (after
//! the first file move), `after-moves` (files moved, the catalog not yet updated), `between-deletes` (after
//! the first file a commit made obsolete was deleted) and `after-checkpoint` (a compaction's checkpoint is
//! published, the segments it merged not yet removed).

use std::sync::OnceLock;

pub(crate) fn point(name: &str) {
    static FAULT: OnceLock<Option<String>> = OnceLock::new();
    if FAULT.get_or_init(|| std::env::var("TROVE_FAULT").ok()).as_deref() == Some(name) {
        std::process::abort();
    }
}
