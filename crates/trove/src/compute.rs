//! Derived data: get-or-compute under a lineage key (SPEC section 8).
//!
//! A result is a dataset carrying its [`Lineage`], stored by default at `<project>/<name>/<first 16 hex digits of
//! the key>`. Asking for a lineage looks its key up first. On a miss the computation runs under the lease
//! `compute/<key>` (and, between threads of one process, a lock per key), so that however many threads and
//! processes ask at once, one computes and the others wait, then find its result. A lease whose process died
//! is taken over at once, so a killed computation is simply run again by the next caller.
//!
//! The computation writes into an empty folder in the staging area; each file or folder it leaves there
//! becomes an object, committed in one commit with the lineage. A failure (an error, or nothing written)
//! commits nothing, removes what was written and records what went wrong in `.trove/compute/<key>.failed.json`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use arrow::record_batch::RecordBatchReader;
use ndarray::ArrayD;
use serde_json::{Value, json};
use trove_catalog::{DatasetRow, Reader};
use trove_formats::WriteOptions;
use trove_formats::array::Element;
use trove_model::lineage::{Difference, Lineage};
use trove_model::name::{validate_name, validate_project};
use trove_model::{DatasetPath, DatasetState, ObjectManifest, Ref};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::objects::{Staged, array_format_for};
use crate::store::{Replayed, Store};
use crate::write::DatasetEdit;

/// The project results go to when none is chosen.
pub const DEFAULT_PROJECT: &str = "derived";

/// The kind a result gets unless the computation sets one.
pub const DERIVED_KIND: &str = "derived";

/// Where failed computations are recorded, one file per lineage key.
const FAILURES: &str = ".trove/compute";

/// Where a result goes and how loosely existing data may match.
#[derive(Debug, Clone)]
pub struct ComputeOptions {
    /// The project a new result is stored in. Existing results are found in any project.
    pub project: String,
    /// The dataset path of a new result (default `<name>/<first 16 hex digits of the key>`).
    pub path: Option<DatasetPath>,
    pub loose: Loose,
    /// Asked between polls while another process computes the same key: false stops the wait
    /// ([`Error::Interrupted`]; nothing was computed here).
    pub keep_waiting: KeepWaiting,
}

/// A front end's way to stop a wait (Ctrl-C); by default the wait goes on until the result appears.
#[derive(Clone, Default)]
pub struct KeepWaiting(pub Option<Arc<dyn Fn() -> bool + Send + Sync>>);

impl std::fmt::Debug for KeepWaiting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() { "KeepWaiting(callback)" } else { "KeepWaiting(always)" })
    }
}

impl KeepWaiting {
    fn go_on(&self) -> bool {
        self.0.as_ref().is_none_or(|f| f())
    }
}

impl Default for ComputeOptions {
    fn default() -> Self {
        ComputeOptions {
            project: DEFAULT_PROJECT.to_string(),
            path: None,
            loose: Loose::default(),
            keep_waiting: KeepWaiting::default(),
        }
    }
}

/// Loose matching (strax's `fuzzy_for`): existing data whose lineage differs from the one asked for only in
/// these config keys, or only in its version, is taken instead of computing. A result is always stored under
/// its exact key, never under a loose one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Loose {
    /// Top-level config keys whose values may differ (or be set on one side only).
    pub config: Vec<String>,
    /// Whether the version may differ.
    pub version: bool,
}

impl Loose {
    pub fn is_empty(&self) -> bool {
        self.config.is_empty() && !self.version
    }

    fn allows(&self, difference: &Difference) -> bool {
        match difference {
            Difference::Version { .. } => self.version,
            Difference::Config { key, .. } => self.config.contains(key),
            Difference::Name { .. } | Difference::Inputs | Difference::Code => false,
        }
    }
}

/// How a [`Computed`] result was obtained.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Data with exactly this lineage existed (or another process computed it while this one waited).
    Found,
    /// This call ran the computation and stored its result.
    Computed,
    /// Data whose lineage differs only where [`Loose`] allows: the differences, ours against theirs.
    Loose(Vec<Difference>),
}

/// The result of [`Store::get_or_compute`]: where the data is and what it holds.
#[derive(Debug, Clone)]
pub struct Computed {
    /// `PROJECT/PATH` of the dataset.
    pub reference: Ref,
    pub id: Uuid,
    /// The lineage key of the data returned (for a loose match, that data's own key).
    pub key: String,
    pub objects: BTreeMap<String, ObjectManifest>,
    pub outcome: Outcome,
}

impl Computed {
    /// A reference to one of the result's objects, for `read_table`, `read_array` and the like.
    pub fn object(&self, name: &str) -> Ref {
        Ref { object: Some(name.to_string()), ..self.reference.clone() }
    }

    fn from_state(state: &DatasetState, outcome: Outcome) -> Option<Computed> {
        let at = state.at.as_ref()?;
        Some(Computed {
            reference: Ref::dataset(at.project(), at.path().clone()),
            id: state.id,
            key: state.lineage_key().unwrap_or_default().to_string(),
            objects: state.objects.clone(),
            outcome,
        })
    }
}

/// Where a computation writes its result: an empty folder (each file or folder left in it becomes an
/// object named after it), plus the metadata, kind and tags the result dataset gets.
#[derive(Debug)]
pub struct ComputeOutput {
    dir: PathBuf,
    meta: Vec<(String, Value)>,
    kind: Option<String>,
    tags: Vec<String>,
}

impl ComputeOutput {
    /// The folder to write into (what `trove compute` passes to its command as `$TROVE_OUTPUT`).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The path of a file named `name` in the output folder (checked as an object name).
    pub fn file(&self, name: &str) -> Result<PathBuf> {
        validate_name(name)?;
        Ok(self.dir.join(name))
    }

    /// Writes a table as a Parquet object.
    pub fn put_table(&mut self, name: &str, batches: &mut dyn RecordBatchReader) -> Result<()> {
        Ok(trove_formats::table::write_parquet(batches, &self.file(name)?)?)
    }

    /// Writes an n-d array as an object, as `.npy` or as a Zarr array (`.zarr`) by its name.
    pub fn put_array<T: Element>(&mut self, name: &str, array: &ArrayD<T>, options: &WriteOptions) -> Result<()> {
        let format = array_format_for(name)?;
        Ok(trove_formats::array::write_array(format, array, &self.file(name)?, options)?)
    }

    /// Sets a metadata key (dotted keys reach into nested objects) on the result dataset.
    pub fn set_meta(&mut self, key: impl Into<String>, value: Value) {
        self.meta.push((key.into(), value));
    }

    /// Sets the result dataset's kind (default `derived`).
    pub fn set_kind(&mut self, kind: impl Into<String>) {
        self.kind = Some(kind.into());
    }

    /// Tags the result dataset.
    pub fn add_tag(&mut self, tag: impl Into<String>) {
        self.tags.push(tag.into());
    }
}

/// One lock per lineage key being computed by this process, so that its threads queue for the key rather
/// than each taking the lease (a lease is per process).
#[derive(Debug, Default)]
pub(crate) struct InFlight(Mutex<HashMap<String, Arc<Mutex<()>>>>);

impl InFlight {
    fn lock_for(&self, key: &str) -> Arc<Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        map.entry(key.to_string()).or_default().clone()
    }

    fn release(&self, key: &str, lock: Arc<Mutex<()>>) {
        let mut map = self.0.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        drop(lock);
        if map.get(key).is_some_and(|l| Arc::strong_count(l) == 1) {
            map.remove(key);
        }
    }
}

/// Why a computation failed when it returned no error of its own.
#[derive(Debug, thiserror::Error)]
#[error("the computation wrote nothing (no files in its output folder and no metadata)")]
struct NothingWritten;

impl Store {
    /// Loads the data derived with `lineage`, or computes it once and stores it (in project `derived`).
    /// See [`Store::get_or_compute_with`].
    ///
    /// ```
    /// use trove::model::lineage::Lineage;
    /// use trove::{Outcome, Store};
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::init(dir.path()).unwrap();
    /// let lineage = Lineage::new("squares", "1").with_config("n", 4.into());
    /// let first = store
    ///     .get_or_compute(&lineage, |out| -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    ///         std::fs::write(out.file("squares.txt")?, "0 1 4 9")?;
    ///         Ok(())
    ///     })
    ///     .unwrap();
    /// assert_eq!(first.outcome, Outcome::Computed);
    /// let again = store.get_or_compute(&lineage, |_| -> Result<(), std::io::Error> { unreachable!() }).unwrap();
    /// assert_eq!((again.outcome, again.reference), (Outcome::Found, first.reference));
    /// ```
    pub fn get_or_compute<E>(
        &self,
        lineage: &Lineage,
        compute: impl FnOnce(&mut ComputeOutput) -> std::result::Result<(), E>,
    ) -> Result<Computed>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.get_or_compute_with(lineage, &ComputeOptions::default(), compute)
    }

    /// Loads the data derived with `lineage` if it exists (exactly, or as `options.loose` allows), or runs
    /// `compute` once and stores what it wrote as a dataset carrying the lineage. Any number of threads and
    /// processes asking for one key at once run `compute` once; the others wait and get its result. When
    /// `compute` fails, nothing is stored and the error is returned as [`Error::ComputeFailed`].
    pub fn get_or_compute_with<E>(
        &self,
        lineage: &Lineage,
        options: &ComputeOptions,
        compute: impl FnOnce(&mut ComputeOutput) -> std::result::Result<(), E>,
    ) -> Result<Computed>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        lineage.validate().map_err(|e| Error::Invalid(e.to_string()))?;
        validate_project(&options.project)?;
        let key = lineage.key();
        if let Some(found) = self.lookup_derived(lineage, &key, &options.loose)? {
            return Ok(found);
        }
        let local = self.in_flight.lock_for(&key);
        let result = {
            let _turn = local.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            self.compute_leased(lineage, &key, options, compute)
        };
        self.in_flight.release(&key, local);
        result
    }

    fn compute_leased<E>(
        &self,
        lineage: &Lineage,
        key: &str,
        options: &ComputeOptions,
        compute: impl FnOnce(&mut ComputeOutput) -> std::result::Result<(), E>,
    ) -> Result<Computed>
    where
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let lease = match self.compute_lease(lineage, key, options)? {
            Ok(lease) => lease,
            Err(found) => return Ok(found),
        };
        let path = self.result_path(lineage, key, options)?;
        let dir_key = self.staging_key();
        let dir = self.staging_path(&dir_key)?;
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir)).map_err(|e| e.full_disk(&self.root))?;
        let mut output = ComputeOutput { dir: dir.clone(), meta: Vec::new(), kind: None, tags: Vec::new() };
        let staged = match compute(&mut output) {
            Ok(()) => self.stage_output(&dir_key, &output).and_then(|staged| {
                if staged.is_empty() && output.meta.is_empty() {
                    let source = Box::new(NothingWritten);
                    return Err(Error::ComputeFailed { name: lineage.name.clone(), key: key.to_string(), source });
                }
                Ok(staged)
            }),
            Err(e) => Err(Error::ComputeFailed { name: lineage.name.clone(), key: key.to_string(), source: e.into() }),
        };
        let staged = match staged {
            Ok(staged) => staged,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                self.record_failure(lineage, key, &e);
                return Err(e);
            }
        };
        if lease.is_lost() {
            // This process stalled past the lease's expiry and another may have computed meanwhile.
            if let Some(found) = self.lookup_derived(lineage, key, &Loose::default())? {
                self.unstage(&staged);
                let _ = std::fs::remove_dir_all(&dir);
                return Ok(found);
            }
        }
        let edit = DatasetEdit {
            kind: Some(output.kind.take().unwrap_or_else(|| DERIVED_KIND.to_string())),
            meta: std::mem::take(&mut output.meta),
            tags_add: std::mem::take(&mut output.tags),
            lineage: Some(lineage.to_json()),
            ..Default::default()
        };
        let put = self.put_staged(&options.project, &path, &edit, staged);
        let _ = std::fs::remove_dir_all(&dir);
        let put = put?;
        self.clear_failure(key);
        Ok(Computed {
            reference: Ref::dataset(options.project.clone(), path),
            id: put.id,
            key: key.to_string(),
            objects: put.objects.into_iter().collect(),
            outcome: Outcome::Computed,
        })
    }

    /// Takes the lease `compute/<key>`, or, while another process holds it, looks for its result between
    /// polls: waiters take the result the moment it is committed rather than queueing for the lease one by
    /// one. A lease whose process died (or that expired) is taken over. Returns the result if it appears first.
    fn compute_lease(
        &self,
        lineage: &Lineage,
        key: &str,
        options: &ComputeOptions,
    ) -> Result<std::result::Result<trove_storage::Lease, Computed>> {
        let loose = &options.loose;
        let mut on_wait = |holder: &trove_storage::LeaseHolder| self.tell_waiting(holder);
        let mut give_up = |holder: &trove_storage::LeaseHolder| {
            if !options.keep_waiting.go_on() {
                let what = format!("stopped waiting for {holder} to compute {} (lineage {})", lineage.name, &key[..16]);
                return Some(Err(Error::Interrupted { what }));
            }
            self.lookup_derived(lineage, key, loose).transpose()
        };
        match self.leases.acquire_unless(&format!("compute/{key}"), &mut on_wait, &mut give_up)? {
            // Whoever held it before may have stored the result just before releasing it.
            Ok(lease) => Ok(self.lookup_derived(lineage, key, loose)?.map_or(Ok(lease), Err)),
            Err(found) => Ok(Err(found?)),
        }
    }

    /// The stored data with lineage `key`, or else (when `loose` allows) the newest data of the same name whose
    /// lineage differs only where allowed.
    pub fn lookup_derived(&self, lineage: &Lineage, key: &str, loose: &Loose) -> Result<Option<Computed>> {
        self.refresh()?;
        let exact = self.derived_states(|r| r.with_lineage(key), |s| s.lineage_key() == Some(key))?;
        if let Some(found) = exact.iter().find_map(|s| Computed::from_state(s, Outcome::Found)) {
            return Ok(Some(found));
        }
        if loose.is_empty() {
            return Ok(None);
        }
        let name = lineage.name.as_str();
        let mut same_name = self.derived_states(|r| r.with_lineage_name(name), |s| s.lineage_name() == Some(name))?;
        same_name.sort_by_key(|s| std::cmp::Reverse(s.updated()));
        for state in same_name {
            let Some(theirs) = state.lineage.as_ref().and_then(|l| Lineage::from_json(l).ok()) else { continue };
            let differences = lineage.differences(&theirs);
            if !differences.is_empty() && differences.iter().all(|d| loose.allows(d)) {
                return Ok(Computed::from_state(&state, Outcome::Loose(differences)));
            }
        }
        Ok(None)
    }

    /// The live datasets the catalog lists (`from_catalog`), and, for a process that reads a catalog it does not
    /// keep up to date (log-only), those that commits not merged into it yet make so (`wanted`).
    fn derived_states(
        &self,
        from_catalog: impl FnOnce(&Reader<'_>) -> trove_catalog::Result<Vec<DatasetRow>>,
        wanted: impl Fn(&DatasetState) -> bool,
    ) -> Result<Vec<DatasetState>> {
        let listed: Vec<DatasetState> = self.read(|r| Ok(from_catalog(r)?))?.into_iter().map(|row| row.state).collect();
        if !self.reads_stale_catalog() {
            return Ok(listed);
        }
        let mut listed = listed;
        let mut changed = Vec::new();
        for (id, newer) in self.replay_unmerged()?.datasets {
            let base = match listed.iter().position(|s| s.id == id) {
                Some(i) => Some(listed.remove(i)),
                // A dataset the catalog does not list can match only through what the pending commits say.
                None if wanted(&newer) => self.read(|r| Ok(r.dataset_by_id(&id)?))?.map(|row| row.state),
                None => continue,
            };
            let mut state = base.unwrap_or_else(|| newer.clone());
            state.merge(&newer);
            if state.is_alive() && state.at.is_some() && wanted(&state) {
                changed.push(state);
            }
        }
        listed.extend(changed);
        Ok(listed)
    }

    /// Every log segment the catalog has not merged, merged in memory.
    fn replay_unmerged(&self) -> Result<Replayed> {
        let applied = self.read(|r| Ok(r.applied()?))?;
        let mut replayed = Replayed::default();
        for name in self.log.list()?.into_iter().filter(|n| !applied.contains(n)) {
            match self.log.read(&name) {
                Ok(segment) => replayed.merge(segment),
                // Compacted away meanwhile: its checkpoint is listed too, or will be on the next look.
                Err(trove_storage::LogError::Storage(e)) if e.is_not_found() => {}
                // Skipped like every catch-up skips it, until `repair` moves it aside.
                Err(trove_storage::LogError::Damaged { .. }) => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(replayed)
    }

    /// Where a new result for `lineage` goes: the path asked for, which must be free, or
    /// `<name>/<16 hex digits of the key>` (the whole key in the unlikely case another dataset holds that).
    fn result_path(&self, lineage: &Lineage, key: &str, options: &ComputeOptions) -> Result<DatasetPath> {
        let project = &options.project;
        let taken = |path: &DatasetPath| -> Result<Option<DatasetState>> {
            Ok(self.dataset(project, path)?.filter(|s| s.lineage_key() != Some(key)))
        };
        if let Some(path) = &options.path {
            if taken(path)?.is_some() {
                return Err(Error::Exists {
                    what: format!(
                        "dataset {project}/{path} (it holds other data: choose another path for this result)"
                    ),
                });
            }
            return Ok(path.clone());
        }
        let short = DatasetPath::parse(&format!("{}/{}", lineage.name, &key[..16]))?;
        if taken(&short)?.is_none() {
            return Ok(short);
        }
        Ok(DatasetPath::parse(&format!("{}/{key}", lineage.name))?)
    }

    /// Each file or folder a computation left in its output folder, as a staged object.
    fn stage_output(&self, dir_key: &str, output: &ComputeOutput) -> Result<Vec<Staged>> {
        let dir = &output.dir;
        let mut names = Vec::new();
        for entry in std::fs::read_dir(dir).map_err(Error::io(dir))? {
            let entry = entry.map_err(Error::io(dir))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|n| Error::Invalid(format!("output {}: the file name {n:?} is not UTF-8", path.display())))?;
            validate_name(&name)
                .map_err(|e| Error::Invalid(format!("output {}: not usable as an object name: {e}", path.display())))?;
            let kind = entry.file_type().map_err(Error::io(&path))?;
            if !kind.is_file() && !kind.is_dir() {
                return Err(Error::Invalid(format!(
                    "output {}: only files and folders can be stored (this is a symbolic link or a special file)",
                    path.display()
                )));
            }
            names.push((name, path));
        }
        names.sort();
        let mut staged = Vec::with_capacity(names.len());
        for (name, path) in names {
            let key = format!("{dir_key}/{name}");
            let manifest = trove_formats::detect(&path)
                .map_err(Error::from)
                .and_then(|format| self.manifest_of_staged(format, &key));
            match manifest {
                Ok(manifest) => staged.push(Staged { name, key, manifest, guesses: Vec::new() }),
                Err(e) => return Err(e.full_disk(&self.root)),
            }
        }
        Ok(staged)
    }

    fn failure_key(key: &str) -> String {
        format!("{FAILURES}/{key}.failed.json")
    }

    /// Notes a failed computation for the next attempt to report. Best effort: the failure itself is what the
    /// caller gets back.
    fn record_failure(&self, lineage: &Lineage, key: &str, error: &Error) {
        let record = json!({
            "lineage": lineage.to_json(),
            "error": error.to_string(),
            "at": trove_model::time::rfc3339(trove_storage::writer::now_micros()),
            "host": self.owner.host,
            "pid": self.owner.pid,
            "writer": self.writer().id,
        });
        let _ = self.storage.put(&Store::failure_key(key), record.to_string().into_bytes(), false);
    }

    fn clear_failure(&self, key: &str) {
        let _ = self.storage.delete(&Store::failure_key(key));
    }

    /// The record of the last failed attempt to compute lineage `key`, if the last attempt failed.
    pub fn compute_failure(&self, key: &str) -> Result<Option<Value>> {
        match self.storage.get(&Store::failure_key(key)) {
            Ok(bytes) => Ok(serde_json::from_slice(&bytes).ok()),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}
