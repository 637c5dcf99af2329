//! [`Store`]: opening a store, and the one path every write takes (`transact`).
//!
//! A write runs inside the catalog's write transaction, which serialises writers on this machine:
//! catch up on the log, compute the records from the caught-up catalog, publish the data files (streamed
//! into `.trove/staging` beforehand, or copied for `cp`), publish the commit (the moment the write becomes
//! true), move the committed files into their readable places, merge the commit into the catalog, commit
//! the transaction, and only then delete files the commit made obsolete.
//!
//! A commit lists the file moves it makes ([`FileMove`]); a process that dies between publishing the commit
//! and finishing the moves leaves them to the next process that applies the commit ([`redo_moves`]).

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};

use trove_catalog::{Catalog, Reader, WriteTx};
use trove_model::{DatasetState, FileMove, ProjectChange, ProjectState, Record, Segment, SegmentHeader, SegmentKind};
use trove_storage::log::{LOG_VERSION, segment_kind};
use trove_storage::{Clock, Log, LogError, Storage, StoreConfig, Writer};

use crate::catalog_at::{CatalogAt, is_damage, set_catalog_aside};
use crate::error::{Error, Result};
use crate::location::Location;

/// Read connections kept open for reuse (more are opened while more threads read at once).
const MAX_IDLE_READERS: usize = 4;

/// The file that marks a store root.
pub const CONFIG_FILE: &str = "trove.toml";
/// Where data files wait, hashed, until the commit that names them.
pub const STAGING: &str = ".trove/staging";
/// The embedded catalog.
pub const CATALOG_FILE: &str = ".trove/catalog.sqlite";

/// Told when a process must wait (for a lease another process holds), so that a front end can say so.
#[derive(Clone)]
pub struct WaitNotice(pub Arc<dyn Fn(&str) + Send + Sync>);

impl std::fmt::Debug for WaitNotice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitNotice")
    }
}

/// How a store is opened.
#[derive(Debug, Clone, Default)]
pub struct OpenOptions {
    /// Override the store's `durable` setting (scratch work may turn fsync off).
    pub durable: Option<bool>,
    /// Append commits to the log alone and never write the catalog (see [`Store::log_only`]). Stores on
    /// filesystems where SQLite is unsafe are opened so whatever this says.
    pub log_only: bool,
    /// Called with a message when the process waits for a lease held by another.
    pub on_wait: Option<WaitNotice>,
    /// The password of a shared (PostgreSQL) catalog, kept out of `trove.toml`; when `None`, the
    /// `PGPASSWORD` variable's, if set.
    pub catalog_password: Option<String>,
    /// A catalog URL to use instead of the one `trove.toml` records (a named connection's).
    pub catalog_url: Option<String>,
    /// Settings of a store in an object store (a named connection's endpoint, region, keys), by
    /// object_store's names, over what the environment says.
    pub storage_options: Vec<(String, String)>,
}

/// An open trove store: its storage, its log and its catalog. `Send + Sync`; many processes may open the
/// same store at once.
pub struct Store {
    /// Where the store is.
    location: Location,
    /// The folder on this machine with the store's local state: the store folder itself, or for a store in
    /// an object store a cache folder (its SQLite catalog, scratch space).
    pub(crate) root: PathBuf,
    pub(crate) storage: Arc<Storage>,
    pub(crate) log: Log,
    pub(crate) config: StoreConfig,
    pub(crate) catalog: Mutex<Catalog>,
    /// Where the catalog lives.
    catalog_at: CatalogAt,
    writer: Writer,
    clock: Mutex<Clock>,
    /// Where a damaged catalog was moved before it was rebuilt from the log, if that happened.
    set_aside: Mutex<Option<PathBuf>>,
    /// Log segments that cannot be read, by name, with what is wrong: skipped by every catch-up until
    /// `repair` quarantines them, so that one damaged file does not stop the whole store.
    pub(crate) damaged_segments: Mutex<std::collections::BTreeMap<String, String>>,
    /// Why this process writes to the log alone, if it does.
    pub(crate) log_only: Option<String>,
    /// The store's filesystem, when SQLite's locking cannot be trusted on it.
    shared_fs: Option<trove_storage::FsKind>,
    /// Set once `sync` or `compact` opened the catalog for writing on such a filesystem (under a lease).
    catalog_writable: std::sync::atomic::AtomicBool,
    pub(crate) owner: trove_storage::ProcessOwner,
    pub(crate) leases: trove_storage::Leases,
    on_wait: Option<WaitNotice>,
    /// Lineage keys this process is computing (see `compute.rs`).
    pub(crate) in_flight: crate::compute::InFlight,
    /// The thread holding a batch of this store, if one does (see `batch.rs`); other threads wait on
    /// `batch_ended` before they use the catalog.
    pub(crate) batch: Mutex<Option<crate::batch::BatchOwner>>,
    pub(crate) batch_ended: Condvar,
    /// What the open batch has gathered.
    pub(crate) pending: Mutex<Option<crate::batch::Pending>>,
    /// Tells when the log gained segments this process has not merged, so that a catch-up need not list it
    /// (`None`: every catch-up lists).
    log_watch: Option<Mutex<trove_storage::log_watch::LogWatch>>,
    /// Connections for reads, taken by one reading thread at a time, so that a long read holds up neither
    /// this handle's writers nor its other readers.
    readers: Mutex<Vec<Catalog>>,
}

/// What a write will commit: its records, the files copied before the commit, the files moved into place
/// after it, and the files deleted once it is merged.
#[derive(Debug, Default)]
pub(crate) struct Plan {
    pub records: Vec<Record>,
    pub copies: Vec<(String, String)>,
    pub moves: Vec<FileMove>,
    pub cleanup: Vec<String>,
    projects: HashSet<String>,
}

impl Plan {
    /// Creates the project in this commit unless it exists.
    pub fn ensure_project(&mut self, read: &Reader<'_>, project: &str) -> Result<()> {
        if self.projects.contains(project) {
            return Ok(());
        }
        if read.project(project)?.is_none() {
            self.records.push(Record::Project(ProjectChange { project: project.to_string(), ..Default::default() }));
        }
        self.projects.insert(project.to_string());
        Ok(())
    }
}

/// What a catch-up or rebuild did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    pub segments_applied: usize,
    pub datasets: u64,
}

/// What a compaction did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CompactReport {
    pub segments_merged: usize,
    pub checkpoint: Option<String>,
    pub datasets: usize,
}

pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Store {
    /// Creates a new store at `root` (the folder is made if needed) and opens it.
    ///
    /// ```
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = trove::Store::init(dir.path()).unwrap();
    /// assert!(dir.path().join("trove.toml").exists());
    /// # drop(store);
    /// ```
    pub fn init(root: &Path) -> Result<Store> {
        Store::init_with(root, true)
    }

    /// Creates a store, choosing whether its writes are durable (fsync) by default.
    pub fn init_with(root: &Path, durable: bool) -> Result<Store> {
        Store::init_with_catalog(root, durable, "", None)
    }

    /// Creates a store whose catalog is `catalog` (`postgres://…`, or empty for the embedded SQLite file).
    /// A shared catalog is reached (and claimed for this store) before anything is written, so a wrong URL
    /// or an unreachable server leaves no store behind; `trove.toml` records the URL without its password.
    pub fn init_with_catalog(root: &Path, durable: bool, catalog: &str, password: Option<&str>) -> Result<Store> {
        Store::init_at(&Location::from(root), durable, catalog, password)
    }

    /// Creates a store at a folder or an object-store URL (see [`Store::init_with_catalog`]). On an object
    /// store, `trove.toml` is written with a create-only PUT, so of two processes making one store, one wins
    /// and the other is told the store exists.
    pub fn init_at(location: &Location, durable: bool, catalog: &str, password: Option<&str>) -> Result<Store> {
        let mut config = StoreConfig::new(trove_model::time::rfc3339(trove_storage::writer::now_micros()));
        config.log.durable = durable;
        config.store.id = uuid::Uuid::new_v4().to_string();
        let local = location.local_folder()?;
        let catalog_at = CatalogAt::of(&local, catalog, password, &config.store.id)?;
        match location {
            Location::Folder(root) => {
                let config_path = root.join(CONFIG_FILE);
                if config_path.exists() {
                    return Err(Error::AlreadyAStore { path: root.to_path_buf() });
                }
                // A store inside another would be taken for a folder object of the outer one at its next scan.
                let absolute = std::path::absolute(root).map_err(Error::io(root))?;
                if let Some(outer) = absolute.ancestors().skip(1).find(|dir| dir.join(CONFIG_FILE).is_file()) {
                    return Err(Error::Invalid(format!(
                        "{} is inside the trove store {}: a store cannot hold another (choose a folder outside it)",
                        root.display(),
                        outer.display()
                    )));
                }
                if !catalog_at.is_sqlite() {
                    drop(catalog_at.open()?);
                }
                config.catalog.url = catalog_at.recorded_url();
                std::fs::create_dir_all(root.join(".trove/log")).map_err(Error::io(root))?;
                std::fs::write(&config_path, config.to_toml()).map_err(Error::io(&config_path))?;
            }
            Location::Url(url) => {
                let storage = location.storage(durable, &[])?;
                if storage.exists(CONFIG_FILE)? {
                    return Err(Error::AlreadyAStore { path: PathBuf::from(url) });
                }
                if !catalog_at.is_sqlite() {
                    drop(catalog_at.open()?);
                }
                config.catalog.url = catalog_at.recorded_url();
                match storage.put(CONFIG_FILE, config.to_toml(), true) {
                    Err(trove_storage::StorageError::AlreadyExists { .. }) => {
                        return Err(Error::AlreadyAStore { path: PathBuf::from(url) });
                    }
                    other => other?,
                }
            }
        }
        let options = OpenOptions { catalog_password: password.map(str::to_string), ..OpenOptions::default() };
        Store::open_at(location, &options)
    }

    /// Opens the store at `root` and catches its catalog up with the log.
    pub fn open(root: &Path) -> Result<Store> {
        Store::open_with(root, &OpenOptions::default())
    }

    pub fn open_with(root: &Path, options: &OpenOptions) -> Result<Store> {
        Store::open_at(&Location::from(root), options)
    }

    /// Opens the store at a folder or an object-store URL and catches its catalog up with the log.
    pub fn open_at(location: &Location, options: &OpenOptions) -> Result<Store> {
        let (mut config, text) = read_config(location, &options.storage_options)?;
        if let Location::Folder(root) = location {
            if config.store.format_version < trove_storage::config::FORMAT_VERSION {
                config = upgrade_layout(root, &root.join(CONFIG_FILE), &text)?;
            }
            std::fs::create_dir_all(root.join(".trove/log")).map_err(Error::io(root))?;
        }
        let durable = options.durable.unwrap_or(config.log.durable);
        let storage = Arc::new(location.storage(durable, &options.storage_options)?);
        let root = match storage.local_root() {
            Some(root) => root.to_path_buf(),
            None => prepare_local_folder(location, &config)?,
        };
        let writer = Writer::current();
        let owner = trove_storage::ProcessOwner::current(&writer.id);
        let leases = trove_storage::Leases::new(storage.clone(), owner.clone());
        let url = options.catalog_url.as_deref().unwrap_or(&config.catalog.url);
        let catalog_at = CatalogAt::of(&root, url, options.catalog_password.as_deref(), &config.store.id)?;
        // Only SQLite's locking depends on the filesystem; a catalog server keeps its own.
        let shared_fs = trove_storage::filesystem_of(&root).ok().filter(|fs| !fs.sqlite_safe && catalog_at.is_sqlite());
        let log_only = match (options.log_only, shared_fs) {
            (true, _) => Some("--log-only was given".to_string()),
            (false, Some(fs)) => Some(format!("the store is on {fs}, where SQLite's locking cannot be trusted")),
            (false, None) => unwritable_catalog(&root)
                .filter(|_| catalog_at.is_sqlite())
                .map(|file| format!("the catalog file {} cannot be written by this user", file.display())),
        };
        let (catalog, set_aside) = match &log_only {
            None => catalog_at.open().map_err(|e| e.full_disk(&root))?,
            Some(_) => (catalog_at.open_read_only()?, None),
        };
        let log = Log::new(storage.clone());
        // The watch sees this machine's writers only: with a catalog other machines write too, a commit one of
        // them published but did not merge (it died) must be found by listing the log, so every catch-up lists.
        let log_watch = if log_only.is_none() && catalog_at.is_sqlite() { log.watch().map(Mutex::new) } else { None };
        let store = Store {
            log,
            location: match location {
                Location::Folder(_) => Location::Folder(root.clone()),
                Location::Url(url) => Location::Url(url.clone()),
            },
            root,
            storage,
            config,
            catalog: Mutex::new(catalog),
            catalog_at,
            clock: Mutex::new(Clock::default()),
            set_aside: Mutex::new(set_aside),
            damaged_segments: Mutex::default(),
            log_only,
            shared_fs: shared_fs.filter(|_| !options.log_only),
            catalog_writable: std::sync::atomic::AtomicBool::new(false),
            owner,
            leases,
            writer,
            on_wait: options.on_wait.clone(),
            in_flight: Default::default(),
            batch: Mutex::new(None),
            batch_ended: Condvar::new(),
            pending: Mutex::new(None),
            log_watch,
            readers: Mutex::new(Vec::new()),
        };
        store.refresh().map_err(|e| e.full_disk(&store.root))?;
        Ok(store)
    }

    /// Where the catalog lives, for messages: the SQLite file, or the PostgreSQL URL without its password.
    pub fn catalog_location(&self) -> String {
        self.catalog_at.describe()
    }

    /// Whether the catalog is a shared one (PostgreSQL) rather than the embedded file.
    pub fn catalog_is_shared(&self) -> bool {
        !self.catalog_at.is_sqlite()
    }

    /// Why this process appends commits to the log alone, never writing the catalog (`--log-only`, or a
    /// store on a filesystem where SQLite's locking cannot be trusted); `None` when it keeps the catalog up to
    /// date as it writes. A log-only process reads the catalog as it was last brought up to date, so it does
    /// not see other writers' recent commits (nor its own) until a `trove sync`.
    pub fn log_only(&self) -> Option<&str> {
        self.log_only.as_deref()
    }

    /// Whether this process reads a catalog it does not keep up to date (log-only, and not opened for
    /// writing by a `sync`): then commits not merged into it yet must be read from the log.
    pub(crate) fn reads_stale_catalog(&self) -> bool {
        self.log_only.is_some() && !self.catalog_writable.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// How many log segments the catalog has not merged yet (0 right after a catch-up; grows in log-only
    /// mode until a `trove sync`).
    pub fn catalog_lag(&self) -> Result<usize> {
        let names = self.log.list()?;
        let applied = self.read(|r| Ok(r.applied()?))?;
        let damaged = lock(&self.damaged_segments);
        Ok(names.iter().filter(|n| !applied.contains(*n) && !damaged.contains_key(*n)).count())
    }

    /// The id of a dataset created at `project/path` by this write. A log-only writer cannot ask a caught-up
    /// catalog whether another writer created the same path a moment ago, so its new datasets get an id
    /// derived from the path (UUID v8): two such writers creating one path make one dataset whose fields
    /// merge key by key, instead of two datasets competing for the path.
    pub(crate) fn new_dataset_id(&self, project: &str, path: &trove_model::DatasetPath) -> uuid::Uuid {
        if self.log_only.is_none() {
            return uuid::Uuid::now_v7();
        }
        let mut hasher = blake3::Hasher::new();
        hasher.update(b"trove dataset at path\0");
        hasher.update(project.as_bytes());
        hasher.update(b"\0");
        hasher.update(path.as_str().as_bytes());
        let digest = hasher.finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest.as_bytes()[..16]);
        uuid::Uuid::new_v8(bytes)
    }

    /// When the catalog file was damaged on opening: where it was moved. The store rebuilt its catalog from
    /// the log (nothing is lost: the catalog holds nothing the log does not).
    pub fn damaged_catalog(&self) -> Option<PathBuf> {
        lock(&self.set_aside).clone()
    }

    /// The log segments that could not be read (name, what is wrong). Every other commit is applied; these
    /// wait for `repair`, which moves them aside and says what they held.
    pub fn damaged_segments(&self) -> Vec<(String, String)> {
        lock(&self.damaged_segments).iter().map(|(n, e)| (n.clone(), e.clone())).collect()
    }

    /// Forgets the damaged segments seen so far (after `repair` moved them aside).
    pub(crate) fn forget_damaged_segments(&self) {
        lock(&self.damaged_segments).clear();
    }

    /// Runs a catalog operation; if SQLite finds the catalog damaged on the way, the catalog is moved aside,
    /// a new one is made, and the operation runs again on it (the catalog holds nothing the log does not).
    fn rebuilding_damaged_catalog<T>(&self, op: impl Fn() -> Result<T>) -> Result<T> {
        match op() {
            Err(Error::Catalog(e)) if is_damage(&e) && self.log_only.is_none() && self.catalog_at.is_sqlite() => {
                let path = self.root.join(CATALOG_FILE);
                let mut catalog = self.catalog();
                // Closing the damaged catalog first: SQLite must not write to a file that is being moved.
                *catalog = trove_catalog_sqlite::open_in_memory()?;
                let aside = set_catalog_aside(&path)?;
                *catalog = trove_catalog_sqlite::open(&path)?;
                drop(catalog);
                self.with_watch(|w| w.unsettle());
                lock(&self.readers).clear();
                *lock(&self.set_aside) = Some(aside);
                op()
            }
            other => other,
        }
    }

    /// Finds the store for a command: the nearest folder at or above `start` holding `trove.toml`.
    pub fn discover(start: &Path) -> Result<PathBuf> {
        let start = std::fs::canonicalize(start).map_err(Error::io(start))?;
        let mut dir = Some(start.as_path());
        while let Some(d) = dir {
            if d.join(CONFIG_FILE).is_file() {
                return Ok(d.to_path_buf());
            }
            dir = d.parent();
        }
        Err(Error::NoStore { start })
    }

    /// The folder on this machine with the store's local state: the store's root folder, or for a store in
    /// an object store the cache folder that holds this machine's copy of its catalog.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the store is: its folder, or its object-store URL.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The store's settings.
    pub fn config(&self) -> &StoreConfig {
        &self.config
    }

    /// This process's writer identity.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The batch gate, once no other thread than `me` holds a batch (waiting until then).
    pub(crate) fn batch_gate(&self, me: std::thread::ThreadId) -> MutexGuard<'_, Option<crate::batch::BatchOwner>> {
        let gate = lock(&self.batch);
        self.batch_ended
            .wait_while(gate, |owner| owner.as_ref().is_some_and(|o| o.thread != me))
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The catalog connection, once no other thread holds a batch: a batch's held transaction lives on this
    /// connection, and only the batch's own thread may use it meanwhile.
    pub(crate) fn catalog(&self) -> MutexGuard<'_, Catalog> {
        let gate = self.batch_gate(std::thread::current().id());
        let catalog = lock(&self.catalog);
        drop(gate);
        catalog
    }

    /// Runs read-only queries against the (caught-up) catalog.
    ///
    /// The read runs on a connection of its own, over one snapshot, so writes of other threads go on
    /// meanwhile. Inside a batch, the batch's thread reads through the batch's transaction (its own writes
    /// included); a log-only handle reads its one catalog connection.
    pub fn read<T>(&self, f: impl FnOnce(&Reader<'_>) -> Result<T>) -> Result<T> {
        if self.log_only.is_some() || self.in_batch() {
            let catalog = self.catalog();
            return f(&catalog.read());
        }
        let pooled = lock(&self.readers).pop();
        let reader = match pooled {
            Some(reader) => reader,
            None => match self.catalog_at.open_reader()? {
                Some(reader) => reader,
                None => {
                    let catalog = self.catalog();
                    return catalog.snapshot(f);
                }
            },
        };
        let out = reader.snapshot(f);
        let mut pool = lock(&self.readers);
        if pool.len() < MAX_IDLE_READERS {
            pool.push(reader);
        }
        out
    }

    /// Applies any commits other writers published since the catalog last looked. Cheap when there are
    /// none: one listing of the log folder.
    pub fn refresh(&self) -> Result<usize> {
        self.rebuilding_damaged_catalog(|| self.refresh_once())
    }

    fn refresh_once(&self) -> Result<usize> {
        if self.reads_stale_catalog() || self.in_batch() {
            // Log-only: the catalog is read as it is; `trove sync` where the catalog can be written catches up.
            // In a batch: the held transaction keeps other writers out, and sees the store as the batch began.
            return Ok(0);
        }
        if self.log_settled() {
            return Ok(0);
        }
        let names = self.log.list()?;
        {
            let catalog = self.catalog();
            let applied = catalog.read().applied()?;
            if applied.len() == names.len() && names.iter().all(|n| applied.contains(n)) {
                self.with_watch(|w| w.caught_up(&names));
                return Ok(0);
            }
        }
        let mut catalog = self.catalog();
        let mut tx = catalog.write()?;
        let caught = catch_up_counted(&self.log, &self.storage, &mut tx, &self.damaged_segments)?;
        tx.commit()?;
        self.note_caught_up(&caught);
        Ok(caught.applied)
    }

    /// Whether the log watch knows that every segment in the log is merged into the catalog.
    fn log_settled(&self) -> bool {
        self.log_watch.as_ref().is_some_and(|w| lock(w).settled())
    }

    fn with_watch(&self, f: impl FnOnce(&mut trove_storage::log_watch::LogWatch)) {
        if let Some(watch) = &self.log_watch {
            f(&mut lock(watch));
        }
    }

    /// Tells the log watch what a catch-up whose transaction committed did.
    fn note_caught_up(&self, caught: &CaughtUp) {
        self.with_watch(|w| if caught.complete { w.caught_up(&caught.names) } else { w.unsettle() });
    }

    /// Tells the log watch that this process published `name` and merged it into the committed catalog.
    pub(crate) fn note_published(&self, name: &str) {
        self.with_watch(|w| w.published(name));
    }

    /// `trove sync`: catch up with the log.
    pub fn sync(&self) -> Result<SyncReport> {
        let _lease = self.writable_catalog("bring the catalog up to date")?;
        let segments_applied = self.refresh()?;
        Ok(SyncReport { segments_applied, datasets: self.read(|r| Ok(r.count(None)?))? })
    }

    /// `trove sync --full`: empties the catalog and rebuilds it from the log, in one transaction (readers see
    /// the old catalog until the new one is complete).
    pub fn sync_full(&self) -> Result<SyncReport> {
        self.outside_batch("rebuild the catalog")?;
        let _lease = self.writable_catalog("rebuild the catalog")?;
        self.rebuilding_damaged_catalog(|| {
            let mut catalog = self.catalog();
            let mut tx = catalog.write()?;
            tx.clear()?;
            let segments_applied = catch_up(&self.log, &self.storage, &mut tx, &self.damaged_segments)?;
            let datasets = tx.read().count(None)?;
            tx.commit()?;
            Ok(SyncReport { segments_applied, datasets })
        })
    }

    /// Refuses `what` inside a batch, whose records are not in the log yet.
    fn outside_batch(&self, what: &str) -> Result<()> {
        if self.in_batch() {
            return Err(Error::Refused(format!("cannot {what} inside a batch: end the batch first")));
        }
        Ok(())
    }

    /// Runs one write: see the module documentation for the steps. `op` names the operation in the log.
    pub(crate) fn transact<T>(&self, op: &str, f: impl FnOnce(&Reader<'_>, &mut Plan) -> Result<T>) -> Result<T> {
        self.transact_staged(op, &[], f)
    }

    /// [`Store::transact`] for a write whose data was streamed into staging first: if the write fails before
    /// its commit is published, the staged files are removed; after that they belong to the commit.
    pub(crate) fn transact_staged<T>(
        &self,
        op: &str,
        staged: &[String],
        f: impl FnOnce(&Reader<'_>, &mut Plan) -> Result<T>,
    ) -> Result<T> {
        if self.in_batch() {
            let result = self.transact_batched(staged, f);
            if result.is_err() {
                for key in staged {
                    let _ = self.storage.delete(key);
                }
            }
            return result.map_err(|e| e.full_disk(&self.root));
        }
        let mut published = false;
        let result = self.transact_inner(op, &mut published, f);
        if result.is_err() && !published {
            for key in staged {
                let _ = self.storage.delete(key);
            }
        }
        result.map_err(|e| e.full_disk(&self.root))
    }

    fn transact_inner<T>(
        &self,
        op: &str,
        published: &mut bool,
        f: impl FnOnce(&Reader<'_>, &mut Plan) -> Result<T>,
    ) -> Result<T> {
        if self.reads_stale_catalog() {
            return self.transact_log_only(op, published, f);
        }
        let mut catalog = self.catalog();
        let mut tx = catalog.write()?;
        let caught = if self.log_settled() {
            None
        } else {
            Some(catch_up_counted(&self.log, &self.storage, &mut tx, &self.damaged_segments)?)
        };
        let mut plan = Plan::default();
        let out = f(&tx.read(), &mut plan)?;
        if plan.records.is_empty() {
            tx.commit()?;
            if let Some(caught) = &caught {
                self.note_caught_up(caught);
            }
            return Ok(out);
        }
        crate::placement::check(&self.storage, &tx.read(), &plan, true)?;
        let floor = tx.read().max_ts()?;
        let (header, bytes) = self.prepare_commit(op, floor, &mut plan)?;
        let moves = header.moves.clone();
        // Publishing (a write and its fsync) and merging into the still uncommitted catalog transaction run
        // at once; the transaction commits only once the commit is published.
        let (published_as, merged) = std::thread::scope(|scope| {
            let publishing = scope.spawn(|| self.log.publish(&header, bytes));
            let merged =
                tx.apply_unnamed(Segment { header: header.clone(), records: std::mem::take(&mut plan.records) });
            let published_as = publishing.join().unwrap_or_else(|_| {
                Err(LogError::Damaged {
                    segment: "(new)".into(),
                    line: 0,
                    message: "the publishing thread panicked".into(),
                })
            });
            (published_as, merged)
        });
        let name = self.published(published_as, &plan, published)?;
        // The commit is true from here on, so the write has succeeded: what is left is finished here or, if
        // it fails, by the next process to apply the commit, as after a crash. Its files go into place before
        // the catalog lock is released, so no later writer's replacement of the same object can be overtaken
        // by this one's. A commit whose moves did not all finish is not marked applied, so the next catch-up
        // applies it again and finishes them (`redo_moves`).
        let moved = self.move_into_place(&moves);
        let indexed = merged.and_then(|()| {
            if moved {
                // Upkeep for the next scan: the write stands without it.
                let _ = crate::scan::remember_placed(&self.storage, &tx.read(), &moves);
                tx.mark_applied([name.as_str()])?;
            }
            tx.commit()
        });
        drop(catalog);
        if indexed.is_ok() && moved {
            if let Some(caught) = &caught {
                self.note_caught_up(caught);
            }
            self.note_published(&name);
        } else {
            self.with_watch(|w| w.unsettle());
        }
        if indexed.is_ok() && moved {
            self.clean_up(&plan.cleanup);
            let commits_seen = match &caught {
                Some(caught) => Some(caught.commits),
                None => self.log_watch.as_ref().map(|w| lock(w).commits()),
            };
            // Compaction is upkeep: the write stands whether or not it runs.
            let _ = self.maybe_compact_given(commits_seen);
        }
        Ok(out)
    }

    /// [`Store::transact`] for a log-only writer: the records are computed from the catalog as it was last
    /// brought up to date (read, never written), and the commit is published to the log alone. The catalog
    /// lock still serialises this process's own threads.
    fn transact_log_only<T>(
        &self,
        op: &str,
        published: &mut bool,
        f: impl FnOnce(&Reader<'_>, &mut Plan) -> Result<T>,
    ) -> Result<T> {
        let catalog = self.catalog();
        let read = catalog.read();
        let mut plan = Plan::default();
        let out = f(&read, &mut plan)?;
        if plan.records.is_empty() {
            return Ok(out);
        }
        crate::placement::check(&self.storage, &read, &plan, false)?;
        let floor = read.max_ts()?;
        let (header, bytes) = self.prepare_commit(op, floor, &mut plan)?;
        let published_as = self.log.publish(&header, bytes);
        self.published(published_as, &plan, published)?;
        // As in `transact_inner`: the write stands; moves that fail are finished when the commit is applied.
        if self.move_into_place(&header.moves) {
            drop(catalog);
            self.clean_up(&plan.cleanup);
        }
        Ok(out)
    }

    /// The steps before a commit is published: the files a `cp` copies are copied into staging, and the
    /// segment is stamped and encoded.
    fn prepare_commit(&self, op: &str, floor: i64, plan: &mut Plan) -> Result<(SegmentHeader, Vec<u8>)> {
        self.copy_files(&plan.copies)?;
        let mut header = self.header(SegmentKind::Commit, floor, op, plan.records.len());
        header.moves = std::mem::take(&mut plan.moves);
        crate::fault::point("before-commit");
        match trove_storage::log::encode_segment(&header, &plan.records) {
            Ok(bytes) => Ok((header, bytes)),
            Err(e) => {
                self.remove_copies(&plan.copies);
                Err(e.into())
            }
        }
    }

    /// What publishing a commit came to: its name, or (when it failed) the error, after removing the copies
    /// made for it. Sets `published` once the commit is true.
    fn published(
        &self,
        outcome: std::result::Result<String, LogError>,
        plan: &Plan,
        published: &mut bool,
    ) -> Result<String> {
        match outcome {
            Ok(name) => {
                *published = true;
                crate::fault::point("after-commit");
                Ok(name)
            }
            Err(e) => {
                self.remove_copies(&plan.copies);
                Err(e.into())
            }
        }
    }

    /// Moves a commit's files into their readable places (`FileMove`s). Returns whether every move was made;
    /// one that fails leaves its file in staging, where the commit's next application finds it.
    pub(crate) fn move_into_place(&self, moves: &[FileMove]) -> bool {
        let mut all = true;
        for m in moves {
            all &= self.storage.rename(&m.from, &m.to).is_ok();
            crate::fault::point("between-moves");
        }
        crate::fault::point("after-moves");
        all
    }

    /// Deletes the files a merged commit made obsolete. One that cannot be deleted now is an orphan for `gc`.
    pub(crate) fn clean_up(&self, keys: &[String]) {
        for key in keys {
            let _ = self.storage.delete(key);
            crate::fault::point("between-deletes");
        }
    }

    pub(crate) fn remove_copies(&self, copies: &[(String, String)]) {
        for (_, to) in copies {
            let _ = self.storage.delete(to);
        }
    }

    /// Makes sure the catalog can be written for `what`. A `--log-only` process refuses. On a filesystem where
    /// SQLite's locking cannot be trusted, the catalog is opened for writing (with a rollback journal: WAL's
    /// shared memory does not work there) under the `catalog` lease, so that processes on different machines
    /// never write it at once; the lease is returned and held until dropped.
    fn writable_catalog(&self, what: &str) -> Result<Option<trove_storage::Lease>> {
        use std::sync::atomic::Ordering;
        match (&self.log_only, &self.shared_fs) {
            (None, _) => Ok(None),
            (Some(_), Some(_)) => {
                let lease = self.lease("catalog")?;
                if !self.catalog_writable.load(Ordering::SeqCst) {
                    let path = self.root.join(CATALOG_FILE);
                    let catalog = trove_catalog_sqlite::open_journaled(&path, trove_catalog_sqlite::Journal::Rollback)?;
                    *self.catalog() = catalog;
                    self.catalog_writable.store(true, Ordering::SeqCst);
                }
                Ok(Some(lease))
            }
            (Some(reason), None) => Err(Error::LogOnly { what: what.to_string(), reason: reason.clone() }),
        }
    }

    /// Takes the lease `name` (see `trove_storage::leases`), waiting while another process holds it and saying
    /// so through the `on_wait` notice.
    pub(crate) fn lease(&self, name: &str) -> Result<trove_storage::Lease> {
        Ok(self.leases.acquire(name, &mut |holder| self.tell_waiting(holder))?)
    }

    /// Tells the front end (through `OpenOptions::on_wait`) that this process waits for `holder`'s lease.
    pub(crate) fn tell_waiting(&self, holder: &trove_storage::LeaseHolder) {
        if let Some(WaitNotice(f)) = &self.on_wait {
            f(&format!("waiting for {holder}"));
        }
    }

    /// A fresh key in the staging area, named after this process (`<uuid>.<pid>.<start>.<host>`) so that
    /// `trove gc` can tell a live writer's staged data from a dead one's.
    pub(crate) fn staging_key(&self) -> String {
        format!(
            "{STAGING}/{}.{}.{}.{}",
            uuid::Uuid::now_v7().simple(),
            self.owner.pid,
            self.owner.start,
            self.owner.host
        )
    }

    /// A segment header from this writer, stamped by a clock tick past `floor`.
    pub(crate) fn header(&self, kind: SegmentKind, floor: i64, op: &str, records: usize) -> SegmentHeader {
        SegmentHeader {
            trove: kind,
            version: LOG_VERSION,
            ts: lock(&self.clock).tick(floor),
            writer: self.writer.id.clone(),
            host: self.writer.host.clone(),
            pid: self.writer.pid,
            user: self.writer.user.clone(),
            op: op.to_string(),
            records,
            covers: vec![],
            moves: vec![],
            seen: floor,
        }
    }

    /// Copies data files to their new (not yet visible) places before a commit; on failure, removes the
    /// copies already made.
    pub(crate) fn copy_files(&self, copies: &[(String, String)]) -> Result<()> {
        for (i, (from, to)) in copies.iter().enumerate() {
            if let Err(e) = self.storage.copy(from, to) {
                for (_, done) in &copies[..i] {
                    let _ = self.storage.delete(done);
                }
                return Err(e.into());
            }
        }
        Ok(())
    }

    pub(crate) fn maybe_compact(&self) -> Result<()> {
        self.maybe_compact_given(None)
    }

    /// [`Store::maybe_compact`], given how many commits the log held at the write's catch-up, when that is
    /// known: the log is listed again only once it may need compacting (a listing costs as much as the rest
    /// of a small write when the log holds hundreds of commits).
    fn maybe_compact_given(&self, commits_seen: Option<usize>) -> Result<()> {
        if commits_seen.is_some_and(|seen| seen < self.config.log.compact_after) {
            return Ok(());
        }
        let names = self.log.list()?;
        let commits = names.iter().filter(|n| segment_kind(n) == Some(SegmentKind::Commit)).count();
        let checkpoints = names.len() - commits;
        // A write does not wait for another process's compaction: that one will merge these commits too.
        if commits > self.config.log.compact_after
            && let Some(_lease) = self.leases.try_acquire("compact")?
        {
            self.compact_leased(checkpoints >= 8)?;
        }
        Ok(())
    }

    /// Merges log segments into one checkpoint and removes them. With `full`, earlier checkpoints are
    /// merged too (one segment remains); otherwise only commits are (cost proportional to recent work).
    pub fn compact(&self, full: bool) -> Result<CompactReport> {
        self.outside_batch("compact the log")?;
        let _catalog = self.writable_catalog("compact the log")?;
        // Two compactions at once would both merge the same commits: harmless, but wasted work.
        let _lease = self.lease("compact")?;
        self.compact_leased(full)
    }

    fn compact_leased(&self, full: bool) -> Result<CompactReport> {
        let mut catalog = self.catalog();
        let mut tx = catalog.write()?;
        catch_up(&self.log, &self.storage, &mut tx, &self.damaged_segments)?;
        let names = self.log.list()?;
        let inputs: Vec<String> =
            names.into_iter().filter(|n| full || segment_kind(n) == Some(SegmentKind::Commit)).collect();
        if inputs.len() < 2 {
            tx.commit()?;
            return Ok(CompactReport::default());
        }
        let mut replayed = Replayed::default();
        let mut merged = Vec::with_capacity(inputs.len());
        for name in inputs {
            match self.log.read(&name) {
                Ok(segment) => replayed.merge(segment),
                // Another process's compaction removed it after publishing a checkpoint that holds it (its
                // removals run outside the catalog lock): that checkpoint covers it, this one need not.
                Err(LogError::Storage(e)) if e.is_not_found() => continue,
                // A damaged segment stays as it is, outside the checkpoint, until `repair` moves it aside.
                Err(LogError::Damaged { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
            merged.push(name);
        }
        let inputs = merged;
        if inputs.len() < 2 {
            tx.commit()?;
            return Ok(CompactReport::default());
        }
        let Replayed { datasets, projects } = replayed;
        let mut records: Vec<Record> = Vec::with_capacity(projects.len() + datasets.len());
        let mut projects: Vec<ProjectState> = projects.into_values().collect();
        projects.sort_by(|a, b| a.name.cmp(&b.name));
        records.extend(projects.into_iter().map(Record::ProjectState));
        let mut states: Vec<DatasetState> = datasets.into_values().collect();
        states.sort_by_key(|s| s.id);
        let n = states.len();
        records.extend(states.into_iter().map(Record::DatasetState));
        let mut header = self.header(SegmentKind::Checkpoint, tx.read().max_ts()?, "compact", records.len());
        header.covers = inputs.clone();
        let name = self.log.append(&header, &records)?;
        // Everything in the checkpoint is already merged: the catalog only needs to know it has it.
        tx.mark_applied(std::iter::once(name.as_str()).chain(inputs.iter().map(String::as_str)))?;
        tx.commit()?;
        drop(catalog);
        crate::fault::point("after-checkpoint");
        for input in &inputs {
            self.log.remove(input)?;
        }
        Ok(CompactReport { segments_merged: inputs.len(), checkpoint: Some(name), datasets: n })
    }
}

/// Reads and parses `trove.toml` (returning its text too, for an upgrade that keeps its comments).
pub(crate) fn read_config(location: &Location, options: &[(String, String)]) -> Result<(StoreConfig, String)> {
    let text = match location {
        Location::Folder(root) => {
            let path = root.join(CONFIG_FILE);
            match std::fs::read_to_string(&path) {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    return Err(Error::NotAStore { path: root.to_path_buf() });
                }
                Err(e) => return Err(Error::Io { path, source: e }),
            }
        }
        Location::Url(url) => match location.storage(true, options)?.get(CONFIG_FILE) {
            Ok(bytes) => String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::Invalid(format!("{url}/{CONFIG_FILE} is not UTF-8 text")))?,
            Err(e) if e.is_not_found() => return Err(Error::NotAStore { path: PathBuf::from(url) }),
            Err(e) => return Err(e.into()),
        },
    };
    Ok((StoreConfig::parse(&text)?, text))
}

/// Replaces `trove.toml` whole (written aside, then renamed over it; on an object store one PUT), so that a
/// process killed meanwhile leaves the old file.
pub(crate) fn write_config(location: &Location, config: &StoreConfig) -> Result<()> {
    let root = match location {
        Location::Folder(root) => root,
        Location::Url(_) => {
            location.storage(true, &[])?.put(CONFIG_FILE, config.to_toml(), false)?;
            return Ok(());
        }
    };
    let path = root.join(CONFIG_FILE);
    let temporary = root.join(format!(".trove/{CONFIG_FILE}.writing-{}", std::process::id()));
    std::fs::write(&temporary, config.to_toml()).map_err(Error::io(&temporary))?;
    std::fs::rename(&temporary, &path).map_err(Error::io(&path))?;
    Ok(())
}

/// Makes the local folder of a store that is not a folder (see [`Location::local_folder`]) and returns it.
/// It names the store it belongs to; a catalog cached there for another store that had the same URL (one
/// deleted and made again) is removed, to be rebuilt from this store's log.
pub(crate) fn prepare_local_folder(location: &Location, config: &StoreConfig) -> Result<PathBuf> {
    let folder = location.local_folder()?;
    let state = folder.join(".trove");
    std::fs::create_dir_all(&state).map_err(Error::io(&state))?;
    let owner = state.join("store");
    let expected = format!("{location}\n{}\n", config.store.id);
    if std::fs::read_to_string(&owner).ok().as_deref() != Some(expected.as_str()) {
        for suffix in ["", "-wal", "-shm"] {
            let file = folder.join(format!("{CATALOG_FILE}{suffix}"));
            match std::fs::remove_file(&file) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(Error::Io { path: file, source: e }),
                _ => {}
            }
        }
        std::fs::write(&owner, expected).map_err(Error::io(&owner))?;
    }
    Ok(folder)
}

/// Brings a store an older trove wrote to the current layout (see `trove_storage::upgrade`), then records
/// the new format version in `trove.toml` (replaced whole, so a process killed meanwhile leaves the old
/// file, and the next open upgrades again: renaming is idempotent).
fn upgrade_layout(root: &Path, config_path: &Path, text: &str) -> Result<StoreConfig> {
    trove_storage::upgrade::unescape_names(root, &[".trove", CONFIG_FILE]).map_err(Error::io(root))?;
    std::fs::create_dir_all(root.join(".trove")).map_err(Error::io(root))?;
    let upgraded = StoreConfig::upgraded_text(text);
    let temporary = root.join(format!(".trove/{CONFIG_FILE}.upgrading-{}", std::process::id()));
    std::fs::write(&temporary, &upgraded).map_err(Error::io(&temporary))?;
    std::fs::rename(&temporary, config_path).map_err(Error::io(config_path))?;
    Ok(StoreConfig::parse(&upgraded)?)
}

/// The first of the catalog's files (the database, its WAL and its shared-memory index) that exists and
/// cannot be opened for writing. SQLite would open such a catalog read-only and fail at the first write,
/// after a commit is published: a process that finds one works log-only instead, before it touches
/// anything. Journal files a read-only process left as unwritable as the database was are given the
/// database's permissions again once it is writable (by their owner: others cannot, and are told).
fn unwritable_catalog(root: &Path) -> Option<PathBuf> {
    let writable = |file: &Path| {
        !matches!(
            std::fs::OpenOptions::new().write(true).open(file),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem)
        )
    };
    let database = root.join(CATALOG_FILE);
    if !writable(&database) {
        return Some(database);
    }
    let permissions = std::fs::metadata(&database).ok().map(|m| m.permissions());
    for suffix in ["-wal", "-shm"] {
        let journal = PathBuf::from(format!("{}{suffix}", database.display()));
        if writable(&journal) {
            continue;
        }
        let healed = permissions
            .as_ref()
            .is_some_and(|p| std::fs::set_permissions(&journal, p.clone()).is_ok() && writable(&journal));
        if !healed {
            return Some(journal);
        }
    }
    None
}

/// The state segments describe, merged in memory (compaction, and `trove check`'s comparison with the
/// catalog).
#[derive(Debug, Default)]
pub(crate) struct Replayed {
    pub datasets: HashMap<uuid::Uuid, DatasetState>,
    pub projects: HashMap<String, ProjectState>,
}

impl Replayed {
    /// Merges one segment: a change is stamped with its commit's time and writer and its place in the commit.
    pub fn merge(&mut self, segment: Segment) {
        let (ts, writer) = (segment.header.ts, segment.header.writer);
        for (i, record) in segment.records.into_iter().enumerate() {
            let stamp = || trove_model::Stamp::new(ts, writer.clone(), i as u32);
            match record {
                Record::Dataset(c) => merge_into(&mut self.datasets, DatasetState::from_change(c, &stamp())),
                Record::DatasetState(s) => merge_into(&mut self.datasets, s),
                Record::Project(c) => merge_project(&mut self.projects, ProjectState::from_change(c, &stamp())),
                Record::ProjectState(s) => merge_project(&mut self.projects, s),
            }
        }
    }
}

fn merge_into(map: &mut HashMap<uuid::Uuid, DatasetState>, state: DatasetState) {
    match map.get_mut(&state.id) {
        Some(existing) => existing.merge(&state),
        None => {
            map.insert(state.id, state);
        }
    }
}

fn merge_project(map: &mut HashMap<String, ProjectState>, state: ProjectState) {
    match map.get_mut(&state.name) {
        Some(existing) => existing.merge(&state),
        None => {
            map.insert(state.name.clone(), state);
        }
    }
}

/// Applies every segment the catalog has not merged yet. Checkpoints go first, so the commits they cover
/// are skipped rather than read. A segment that vanishes mid-way was compacted by another process: the
/// listing is taken again.
pub(crate) fn catch_up(
    log: &Log,
    storage: &Storage,
    tx: &mut WriteTx<'_>,
    damaged: &Mutex<std::collections::BTreeMap<String, String>>,
) -> Result<usize> {
    Ok(catch_up_counted(log, storage, tx, damaged)?.applied)
}

/// What a catch-up did and saw.
struct CaughtUp {
    /// Segments merged.
    applied: usize,
    /// Commit segments in the log as last listed.
    commits: usize,
    /// The segments listed.
    names: Vec<String>,
    /// Whether every segment listed is merged now (or damaged, and skipped until `repair`).
    complete: bool,
}

/// [`catch_up`], saying what it saw.
fn catch_up_counted(
    log: &Log,
    storage: &Storage,
    tx: &mut WriteTx<'_>,
    damaged: &Mutex<std::collections::BTreeMap<String, String>>,
) -> Result<CaughtUp> {
    let mut total = 0;
    let mut complete = true;
    let mut names = Vec::new();
    'again: for _ in 0..8 {
        names = log.list()?;
        let listed: HashSet<&str> = names.iter().map(String::as_str).collect();
        let mut applied = tx.read().applied()?;
        let gone: Vec<String> = applied.iter().filter(|a| !listed.contains(a.as_str())).cloned().collect();
        tx.forget_applied(gone.iter().map(String::as_str))?;
        let mut pending: Vec<&String> = names.iter().filter(|n| !applied.contains(*n)).collect();
        pending.sort_by_key(|n| (segment_kind(n) != Some(SegmentKind::Checkpoint), n.as_str()));
        for name in pending {
            if applied.contains(name) {
                continue;
            }
            match log.read(name) {
                Ok(segment) => {
                    let (covers, moves) = (segment.header.covers.clone(), segment.header.moves.clone());
                    tx.apply_segment(name, segment)?;
                    if !redo_moves(storage, &tx.read(), &moves)? {
                        // Left unapplied: the next catch-up tries the moves again (and `gc` leaves their
                        // files in staging alone).
                        tx.forget_applied([name.as_str()])?;
                        complete = false;
                    }
                    applied.insert(name.clone());
                    applied.extend(covers);
                    total += 1;
                }
                Err(LogError::Storage(e)) if e.is_not_found() => continue 'again,
                // One damaged segment must not stop the store: every other commit is applied, and this one
                // is named (`damaged_segments`, `check`) until `repair` moves it aside.
                Err(e @ LogError::Damaged { .. }) => {
                    lock(damaged).insert(name.clone(), e.to_string());
                }
                Err(e) => return Err(e.into()),
            }
        }
        let commits = names.iter().filter(|n| segment_kind(n) == Some(SegmentKind::Commit)).count();
        return Ok(CaughtUp { applied: total, commits, names, complete });
    }
    // The log kept changing under the listing: the next catch-up lists it again.
    let commits = names.iter().filter(|n| segment_kind(n) == Some(SegmentKind::Commit)).count();
    Ok(CaughtUp { applied: total, commits, names, complete: false })
}

/// Finishes the file moves of a commit whose writer died before making them: a move is made when its source
/// still exists and the catalog (with the commit merged) still says the object has that checksum at that
/// place. A source whose object was replaced or removed since is left for `gc`. Returns whether every move
/// that is due was made: one that fails (a permission, say) must not stop the catch-up of everything else.
fn redo_moves(storage: &Storage, read: &Reader<'_>, moves: &[FileMove]) -> Result<bool> {
    let mut all = true;
    for m in moves {
        if !storage.exists(&m.from)? {
            continue;
        }
        let Some(row) = read.dataset_by_id(&m.id)? else { continue };
        let current = row.state.at.as_ref().zip(row.state.objects.get(&m.object)).filter(|_| row.state.is_alive());
        if let Some((at, manifest)) = current
            && manifest.checksum == m.checksum
            && crate::view::object_key(at.project(), at.path(), &m.object) == m.to
        {
            all &= storage.rename(&m.from, &m.to).is_ok();
        }
    }
    Ok(all)
}
