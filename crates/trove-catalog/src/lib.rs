//! trove's catalog seam: what the rest of trove may ask of a catalog, whichever engine keeps it.
//!
//! A catalog is a disposable index over the metadata log: every row is derived from log segments and it
//! remembers which segments it has merged, so catching up reads only new ones. An engine (SQLite in
//! `trove-catalog-sqlite`, PostgreSQL in `trove-catalog-postgres`) implements three small object-safe
//! traits: [`Backend`] (a connection: transactions, more connections, SQL), [`CatalogRead`] (the lookups
//! and filter execution) and [`CatalogWrite`] (merging segments). Callers use the wrappers [`Catalog`],
//! [`Reader`] and [`WriteTx`], which add the generic conveniences and the logic every engine shares (the
//! walk of a folder's children, the clock floor a commit raises), as object_store's `ObjectStoreExt` sits
//! over `ObjectStore`. [`conformance`] is the suite every engine runs.
//!
//! Row ids (`rid`) are the catalog's own: positive integers it assigns, dense enough for a bitmap
//! ([`RidSet`]). They mean nothing outside one catalog and are never stored elsewhere.

#[cfg(feature = "conformance")]
pub mod conformance;
mod find;
pub mod index;
pub mod plan;
mod ridset;
mod rows;

use std::collections::{HashMap, HashSet};

use trove_model::filter::Filter;
use trove_model::{ProjectState, Segment};

pub use find::{FindOptions, OrderedRows, Pager, Sort, SortKey, ordered};
pub use ridset::{Matches, RidSet};
pub use rows::{CachedFile, Child, DatasetRow, KeyUsage};

/// How an engine failed, as far as a front end needs to know (exit codes, HTTP status, hints).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The catalog's own data is damaged (a corrupt SQLite file): rebuild it from the log.
    Damaged,
    /// The disk holding the catalog is full.
    DiskFull,
    /// The engine reported an I/O error (which may be a full disk it did not name).
    Io,
    /// The catalog's server could not be reached, or the connection to it was lost.
    Unreachable,
    /// Any other failure of the engine (a constraint, a bug, a refused statement).
    Other,
}

/// A catalog operation failed.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// The engine failed; `failure` says how.
    #[error("catalog: {source}")]
    Engine { failure: Failure, source: Box<dyn std::error::Error + Send + Sync> },
    /// The request itself was refused (invalid SQL for `trove sql`, a second held transaction).
    #[error("{0}")]
    Refused(String),
    #[error("catalog row for {what} is not valid JSON: {source}")]
    BadRow { what: String, source: serde_json::Error },
}

impl CatalogError {
    /// How the engine failed, when it did.
    pub fn failure(&self) -> Option<Failure> {
        match self {
            CatalogError::Engine { failure, .. } => Some(*failure),
            _ => None,
        }
    }
}

pub type Result<T, E = CatalogError> = std::result::Result<T, E>;

/// The lookups and filter execution of one connection or transaction. Callbacks are `&mut dyn FnMut` so
/// that the trait stays object-safe; [`Reader`] offers them with closures.
pub trait CatalogRead {
    /// The visible dataset at a path.
    fn dataset_at(&self, project: &str, path: &str) -> Result<Option<DatasetRow>>;
    /// The visible datasets carrying the lineage `key`, oldest first.
    fn with_lineage(&self, key: &str) -> Result<Vec<DatasetRow>>;
    /// The visible datasets whose lineage is called `name` (what was computed), oldest first.
    fn with_lineage_name(&self, name: &str) -> Result<Vec<DatasetRow>>;
    /// The row ids of the visible datasets (of `project`, when given) whose lineage is called `name`.
    fn rids_with_lineage_name(&self, name: &str, project: Option<&str>) -> Result<RidSet>;
    /// Where objects with this checksum are: `(project, path, object name)` of visible datasets, in order.
    fn objects_with_checksum(&self, checksum: &str) -> Result<Vec<(String, String, String)>>;
    /// A dataset by id, live or not.
    fn dataset_by_id(&self, id: &uuid::Uuid) -> Result<Option<DatasetRow>>;
    /// The deleted datasets whose last location was `project/path`, oldest first.
    fn deleted_at(&self, project: &str, path: &str) -> Result<Vec<DatasetRow>>;
    /// Whether any visible dataset lies strictly below `prefix` (or anywhere in the project when empty).
    fn has_descendants(&self, project: &str, prefix: &str) -> Result<bool>;
    /// The least visible path of `project` in `[from, to)` (`(from, to)` when not `inclusive`), byte order.
    fn first_path(&self, project: &str, from: &str, inclusive: bool, to: &str) -> Result<Option<String>>;
    /// Every visible dataset strictly below `prefix` (the whole project when empty), in path order.
    fn each_descendant(
        &self,
        project: &str,
        prefix: &str,
        each: &mut dyn FnMut(DatasetRow) -> Result<()>,
    ) -> Result<()>;
    /// Every dataset row, visible or not, live or not, in id order (for comparing catalogs).
    fn each_row(&self, each: &mut dyn FnMut(DatasetRow) -> Result<()>) -> Result<()>;
    /// Every dataset row's visibility and state as JSON, unparsed, in no particular order.
    fn each_state_json(&self, each: &mut dyn FnMut(bool, &str) -> Result<()>) -> Result<()>;
    /// The number of visible datasets in a project (all projects when `None`).
    fn count(&self, project: Option<&str>) -> Result<u64>;
    fn projects(&self) -> Result<Vec<ProjectState>>;
    fn project(&self, name: &str) -> Result<Option<ProjectState>>;
    /// The names of the segments merged so far.
    fn applied(&self) -> Result<HashSet<String>>;
    /// The greatest timestamp merged so far (the floor for the next commit's clock).
    fn max_ts(&self) -> Result<i64>;
    /// The visible datasets (of `project`, when given) that match `filter`; exactly those
    /// [`Filter::matches`] accepts.
    fn matching(&self, filter: &Filter, project: Option<&str>) -> Result<Matches>;
    /// Every visible dataset (of `project`, when given).
    fn universe(&self, project: Option<&str>) -> Result<RidSet>;
    /// The row ids of `set` in the order and window `options` ask for, until `each` returns false.
    fn each_in_order(
        &self,
        set: &Matches,
        options: &FindOptions,
        each: &mut dyn FnMut(i64) -> Result<bool>,
    ) -> Result<()>;
    /// The datasets in these rows, in the order given (rows that hold none are left out): one round trip
    /// for a page of results.
    fn datasets_by_rids(&self, rids: &[i64]) -> Result<Vec<DatasetRow>>;
    /// The project and path of the dataset in row `rid`, without reading its state.
    fn location_by_rid(&self, rid: i64) -> Result<Option<(String, String)>>;
    /// Every metadata key in use (in `project`, or anywhere), in key order.
    fn key_usage(&self, project: Option<&str>) -> Result<Vec<KeyUsage>>;
    /// Every file the last scans hashed, by its path relative to the store root.
    fn scan_cache(&self) -> Result<HashMap<String, CachedFile>>;
    /// Stores what a scan hashed and forgets files it no longer found. This writes: call it on the reader
    /// of a write transaction, so that the rows commit or roll back with the scan's commit.
    fn record_scan_files(&self, found: &[(&str, &CachedFile)], gone: &[&str]) -> Result<()>;
}

/// A write transaction of one engine. Dropping it without [`CatalogWrite::commit`] rolls it back.
pub trait CatalogWrite {
    /// Reads inside the transaction (its own changes included).
    fn read(&self) -> &dyn CatalogRead;
    /// Merges records that are (or will be published as) part of a segment, starting at record `first` of
    /// it: every record is stamped by its place in the segment, so applying in parts equals applying whole.
    fn apply_records(&mut self, segment: Segment, first: u32) -> Result<()>;
    /// Raises the greatest timestamp merged (never lowers it).
    fn raise_max_ts(&mut self, ts: i64) -> Result<()>;
    /// Records segments as applied without reading them.
    fn mark_applied(&mut self, names: &[&str]) -> Result<()>;
    /// Forgets segments that no longer exist in the log (removed after a checkpoint covered them).
    fn forget_applied(&mut self, names: &[&str]) -> Result<()>;
    /// Empties every table (for a rebuild from the log inside this same transaction).
    fn clear(&mut self) -> Result<()>;
    fn commit(self: Box<Self>) -> Result<()>;
}

/// One connection to a catalog.
pub trait Backend: Send {
    fn read(&self) -> &dyn CatalogRead;
    /// Starts a read snapshot, unless a transaction is open already (then reads see it): true when one
    /// was started, to be passed to [`Backend::end_snapshot`].
    fn begin_snapshot(&self) -> Result<bool>;
    fn end_snapshot(&self, began: bool);
    /// Starts a write transaction, waiting for other writers; inside a held transaction
    /// ([`Backend::hold`]) a savepoint of it.
    fn write(&mut self) -> Result<Box<dyn CatalogWrite + '_>>;
    /// Opens a write transaction that stays open across calls until [`Backend::release`]: other writers
    /// wait, and every [`Backend::write`] meanwhile nests in it.
    fn hold(&mut self) -> Result<()>;
    /// Ends the transaction [`Backend::hold`] opened: commits it, or rolls every change of it back.
    fn release(&mut self, commit: bool) -> Result<()>;
    /// Another connection to the same catalog, for reads only; `None` when there is none to open (the
    /// catalog does not exist yet, or lives in this connection's memory).
    fn open_reader(&self) -> Result<Option<Catalog>>;
    /// A read-only SQL console over the documented views.
    fn sql_console(&self) -> Result<Box<dyn SqlConsole>>;
}

/// Receives the column names and one row of a SQL result; returns false to stop the query.
pub type SqlRowSink<'a> = dyn FnMut(&[String], Vec<serde_json::Value>) -> Result<bool> + 'a;

/// Read-only SQL over the documented views (`datasets`, `tags`, `objects`, `metadata`, `projects`).
pub trait SqlConsole {
    /// Runs one read-only statement; `each` receives the column names and each row as JSON values
    /// (numbers, text, `null`; bytes as hex) and stops the query by returning false. Returns the column
    /// names. A statement that would write is refused before it runs.
    fn query(&mut self, sql: &str, each: &mut SqlRowSink<'_>) -> Result<Vec<String>>;
}

/// An open catalog, of whichever engine.
pub struct Catalog {
    backend: Box<dyn Backend>,
}

impl Catalog {
    pub fn new(backend: impl Backend + 'static) -> Catalog {
        Catalog { backend: Box::new(backend) }
    }

    /// Queries against the catalog as it is now.
    pub fn read(&self) -> Reader<'_> {
        Reader { inner: self.backend.read() }
    }

    /// Runs `f` over one snapshot of the catalog, so that a read made of many queries sees no write land
    /// half-way through it.
    pub fn snapshot<T, E: From<CatalogError>>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T, E>) -> Result<T, E> {
        let began = self.backend.begin_snapshot()?;
        let out = f(&self.read());
        self.backend.end_snapshot(began);
        out
    }

    /// Starts a write transaction (see [`Backend::write`]).
    pub fn write(&mut self) -> Result<WriteTx<'_>> {
        Ok(WriteTx { inner: self.backend.write()? })
    }

    /// See [`Backend::hold`].
    pub fn hold(&mut self) -> Result<()> {
        self.backend.hold()
    }

    /// See [`Backend::release`].
    pub fn release(&mut self, commit: bool) -> Result<()> {
        self.backend.release(commit)
    }

    /// True when the catalog has merged no segment yet.
    pub fn is_empty(&self) -> Result<bool> {
        Ok(self.read().applied()?.is_empty())
    }

    /// See [`Backend::open_reader`].
    pub fn open_reader(&self) -> Result<Option<Catalog>> {
        self.backend.open_reader()
    }

    /// See [`Backend::sql_console`].
    pub fn sql_console(&self) -> Result<Box<dyn SqlConsole>> {
        self.backend.sql_console()
    }
}

/// Read-only queries, on a catalog or inside a write transaction: [`CatalogRead`] with closures, and the
/// logic every engine shares.
#[derive(Clone, Copy)]
pub struct Reader<'c> {
    inner: &'c dyn CatalogRead,
}

impl<'c> std::ops::Deref for Reader<'c> {
    type Target = dyn CatalogRead + 'c;
    fn deref(&self) -> &Self::Target {
        self.inner
    }
}

/// The half-open range of paths strictly below `prefix` (all paths when `prefix` is empty).
/// `/` is followed by `0` in byte order, so `[p/, p0)` holds exactly the descendants of `p`.
pub fn below(prefix: &str) -> (String, String) {
    if prefix.is_empty() {
        (String::new(), "\u{10FFFF}".to_string())
    } else {
        (format!("{prefix}/"), format!("{prefix}0"))
    }
}

impl<'c> Reader<'c> {
    pub fn new(inner: &'c dyn CatalogRead) -> Reader<'c> {
        Reader { inner }
    }

    /// What lies directly below `prefix`: one entry per child name, in byte order. Costs a few index seeks
    /// per child, not a scan of the subtree.
    pub fn children(&self, project: &str, prefix: &str) -> Result<Vec<Child>> {
        let (lo, hi) = below(prefix);
        let mut out = Vec::new();
        let mut seen: HashSet<String> = HashSet::new();
        // Names like `c-x` sort between `c` and `c/…`, so the walk can come back into the subtree of a child
        // already listed: it then jumps past that subtree (`c0`).
        let mut cursor = (lo.clone(), true);
        while let Some(found) = self.inner.first_path(project, &cursor.0, cursor.1, &hi)? {
            let rest = &found[lo.len()..];
            let name = rest.split('/').next().unwrap_or(rest).to_string();
            let child_path = format!("{lo}{name}");
            if seen.contains(&name) {
                cursor = (format!("{child_path}0"), true);
                continue;
            }
            let is_dataset = found == child_path;
            let dataset = if is_dataset { self.inner.dataset_at(project, &child_path)? } else { None };
            let has_children = self.inner.has_descendants(project, &child_path)?;
            cursor = if is_dataset { (child_path.clone(), false) } else { (format!("{child_path}0"), true) };
            seen.insert(name.clone());
            out.push(Child { name, path: child_path, dataset, has_children });
        }
        // Path order puts `a!` (a path) before `a/…` (whose name `a` sorts first): list by name.
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// Every visible dataset strictly below `prefix` (the whole project when empty), in path order.
    pub fn descendants(
        &self,
        project: &str,
        prefix: &str,
        mut each: impl FnMut(DatasetRow) -> Result<()>,
    ) -> Result<()> {
        self.inner.each_descendant(project, prefix, &mut each)
    }

    /// Every dataset row, visible or not, live or not, by id (for comparing catalogs).
    pub fn all_rows(&self, mut each: impl FnMut(DatasetRow) -> Result<()>) -> Result<()> {
        self.inner.each_row(&mut each)
    }

    /// Every dataset row's visibility and state as the JSON the catalog stores, unparsed (for a caller that
    /// reads a few fields of every dataset and can skip the rest cheaply).
    pub fn all_states_json(&self, mut each: impl FnMut(bool, &str) -> Result<()>) -> Result<()> {
        self.inner.each_state_json(&mut each)
    }

    /// How many datasets `matches` holds (of `project`, the scope it was computed in).
    pub fn count_matches(&self, matches: &Matches, project: Option<&str>) -> Result<u64> {
        if !matches.complement {
            return Ok(matches.set.len());
        }
        Ok(self.inner.count(project)?.saturating_sub(matches.set.len()))
    }

    /// The row ids `matches` holds, listed.
    pub fn matching_rids(&self, matches: &Matches, project: Option<&str>) -> Result<RidSet> {
        if !matches.complement {
            return Ok(matches.set.clone());
        }
        let mut all = self.inner.universe(project)?;
        all.difference_with(&matches.set);
        Ok(all)
    }

    /// Calls `each` with the row ids of `set` in the order and window `options` ask for; stops early when
    /// `each` returns false.
    pub fn in_order(
        &self,
        set: &Matches,
        options: &FindOptions,
        mut each: impl FnMut(i64) -> Result<bool>,
    ) -> Result<()> {
        self.inner.each_in_order(set, options, &mut each)
    }

    /// The dataset in row `rid`.
    pub fn dataset_by_rid(&self, rid: i64) -> Result<Option<DatasetRow>> {
        Ok(self.inner.datasets_by_rids(&[rid])?.pop())
    }

    /// See [`CatalogRead::record_scan_files`].
    pub fn record_scan<'k>(
        &self,
        found: impl IntoIterator<Item = (&'k str, &'k CachedFile)>,
        gone: impl IntoIterator<Item = &'k str>,
    ) -> Result<()> {
        let found: Vec<(&str, &CachedFile)> = found.into_iter().collect();
        let gone: Vec<&str> = gone.into_iter().collect();
        self.inner.record_scan_files(&found, &gone)
    }
}

/// A write transaction: apply segments, then [`WriteTx::commit`]. Dropping it rolls back.
pub struct WriteTx<'c> {
    inner: Box<dyn CatalogWrite + 'c>,
}

impl WriteTx<'_> {
    pub fn read(&self) -> Reader<'_> {
        Reader { inner: self.inner.read() }
    }

    /// Merges one segment's records into the catalog and records the segment (and any it covers) as applied.
    pub fn apply_segment(&mut self, name: &str, segment: Segment) -> Result<()> {
        self.inner.mark_applied(&[name])?;
        self.apply_unnamed(segment)
    }

    /// Merges a segment whose name is not known yet (it is being published meanwhile); the caller marks
    /// the name applied once it is.
    pub fn apply_unnamed(&mut self, segment: Segment) -> Result<()> {
        self.apply_part(segment, 0)
    }

    /// Merges records that will be published as part of a larger segment, starting at record `first` of it
    /// (under its header): applying a segment's records in parts this way leaves the catalog as applying the
    /// whole segment at once does, since every record is stamped by its place in the segment.
    pub fn apply_part(&mut self, segment: Segment, first: u32) -> Result<()> {
        let covers: Vec<&str> = segment.header.covers.iter().map(String::as_str).collect();
        self.inner.mark_applied(&covers)?;
        let mut max_ts = segment.header.ts;
        for record in &segment.records {
            if let trove_model::Record::DatasetState(s) = record {
                max_ts = max_ts.max(s.max_stamp().ts);
            }
        }
        self.inner.apply_records(segment, first)?;
        self.inner.raise_max_ts(max_ts)
    }

    /// Records segments as applied without reading them.
    pub fn mark_applied<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let names: Vec<&str> = names.into_iter().collect();
        self.inner.mark_applied(&names)
    }

    /// Forgets segments that no longer exist in the log (removed after a checkpoint covered them).
    pub fn forget_applied<'a>(&mut self, names: impl IntoIterator<Item = &'a str>) -> Result<()> {
        let names: Vec<&str> = names.into_iter().collect();
        self.inner.forget_applied(&names)
    }

    /// Empties every table (for a rebuild from the log inside this same transaction).
    pub fn clear(&mut self) -> Result<()> {
        self.inner.clear()
    }

    pub fn commit(self) -> Result<()> {
        self.inner.commit()
    }
}
