//! `trove sync --scan`: recording in the log what people did to the data folders outside trove (datreant's
//! promise: the folders are the data, and a folder moved with `mv` is still the same dataset).
//!
//! A scan runs in three steps:
//!
//! 1. **Walk** (no lock held): every folder of the data tree is read on several threads and every file
//!    stat'ed (size, modification time, inode). The scan cache (`scan_files` in the catalog, loaded in one
//!    query) gives the checksum of each file whose three are unchanged; only new or changed files are hashed,
//!    in parallel. The walk is compared with a snapshot of the catalog, and the manifests of what will become
//!    new objects or new versions are built (format detection and summaries, as `put` does).
//! 2. **Compare** (inside [`Store::transact`], so with the catalog caught up and the write lock held): the
//!    walk is compared again if the catalog changed meanwhile, and every finding is checked against the disk
//!    once more (a file trove replaced meanwhile, a folder a `trove mv` moved): what changed since the walk is
//!    left for the next scan.
//! 3. **Record**: one commit holds every finding, with no file moves (the files are already in place); the
//!    cache rows are written in the same transaction. A scan that finds nothing writes no commit.
//!
//! What a folder is decides what its entries are. In the folder of a live dataset, entries named like its
//! objects are compared with their manifests (a different checksum is a new version, flagged `edited`),
//! other files are new objects, and other folders are new folder objects, unless a folder below them looks
//! like a dataset. A folder that holds files no live dataset owns is matched against the datasets whose every
//! object file is gone ("vanished"): all of one's objects there with equal checksums means it was moved (same
//! id, new path; extra files become new objects). Failing that, against the live datasets: the same files
//! means it was copied (a new dataset recording its origin). Failing that, it is a new dataset. Vanished
//! datasets nothing matched were removed. A dataset with only some object files gone is left to `trove
//! check` (it may be damage) and reported as missing.
//!
//! Content alone never decides which of several vanished datasets with the same objects a folder is: the
//! folder that holds the very files trove last saw (the same inode, size and modification time, which a
//! hand `mv` keeps and a copy does not; `put`, `mv` and `cp` remember them in the scan cache) is the moved
//! one, else the one that kept the dataset's name; failing both, the folder is reported and not recorded,
//! and none of those datasets is removed. Hidden folders (a name starting with a dot) are not scanned, and
//! datasets inside them are left as they are.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use serde::de::IgnoredAny;
use serde::{Deserialize, Serialize};
use serde_json::json;
use trove_catalog::{CachedFile, Reader};
use trove_model::name::{validate_name, validate_project};
use trove_model::record::folder_listing;
use trove_model::{
    DatasetChange, DatasetPath, DatasetState, FileEntry, FileMove, Location, ObjectManifest, Record, Stamp,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::objects::{file_manifest, hex};
use crate::store::{CONFIG_FILE, Plan, Store};
use crate::view::object_key;

/// What a scan is doing, for a progress display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ScanPhase {
    /// Reading folders: `done` folders read of `total` found so far.
    Walking,
    /// Hashing new and changed files: `done` bytes of `total`.
    Hashing,
    /// Detecting formats of new objects and versions: `done` of `total`.
    Describing,
    /// Comparing with the caught-up catalog and committing.
    Recording,
}

/// Progress of a scan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanProgress {
    pub phase: ScanPhase,
    pub done: u64,
    pub total: u64,
}

/// A dataset found at a new path: same id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MovedDataset {
    pub id: Uuid,
    /// `PROJECT/PATH` before and after.
    pub from: String,
    pub to: String,
}

/// A copy of a dataset found at a new path: a new dataset that records its origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CopiedDataset {
    pub id: Uuid,
    pub source: Uuid,
    pub from: String,
    pub to: String,
}

/// A dataset whose folder is gone.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RemovedDataset {
    pub id: Uuid,
    pub path: String,
}

/// A folder of files no dataset owned, recorded as a new dataset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CreatedDataset {
    pub id: Uuid,
    pub path: String,
    pub objects: usize,
}

/// Something in the data folders the scan did not record, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SkippedEntry {
    /// The path relative to the store root, as it is on disk.
    pub path: String,
    pub reason: String,
}

/// What a scan found and recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScanReport {
    pub moved: Vec<MovedDataset>,
    pub copied: Vec<CopiedDataset>,
    pub removed: Vec<RemovedDataset>,
    pub created: Vec<CreatedDataset>,
    /// Projects created for new top-level folders.
    pub projects: Vec<String>,
    /// New objects (`PROJECT/PATH:OBJECT`) of datasets that existed or were moved or copied.
    pub objects_added: Vec<String>,
    /// Objects found changed in place: recorded as new versions flagged `edited`.
    pub objects_changed: Vec<String>,
    /// Objects whose file is gone while the rest of their dataset is there: not recorded (`trove check`).
    pub missing: Vec<String>,
    pub skipped: Vec<SkippedEntry>,
    /// Folders read and files seen.
    pub folders: u64,
    pub files: u64,
    /// Files hashed (new or changed since the last scan) and their bytes.
    pub files_hashed: u64,
    pub bytes_hashed: u64,
    /// Whether a commit was written (a scan that finds nothing writes none).
    pub committed: bool,
    /// How long the scan took, in milliseconds.
    pub millis: u64,
}

impl ScanReport {
    /// How many changes the scan recorded.
    pub fn changes(&self) -> usize {
        self.moved.len()
            + self.copied.len()
            + self.removed.len()
            + self.created.len()
            + self.projects.len()
            + self.objects_added.len()
            + self.objects_changed.len()
    }
}

/// How long after its last modification a file's checksum may be cached: a file written again within the
/// same timestamp tick would keep its size and modification time. Timestamps without a fraction of a second
/// come from a filesystem that keeps whole (or even two) seconds.
fn settled(stat: &FileStat, hashing_started_ns: i64) -> bool {
    let margin = if stat.mtime_ns % 1_000_000_000 == 0 { 2_000_000_000 } else { 20_000_000 };
    stat.mtime_ns.saturating_add(margin) < hashing_started_ns
}

fn now_ns() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as i64).unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------------------
// The walk

/// What identifies a file's content without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStat {
    size: u64,
    mtime_ns: i64,
    ino: u64,
}

impl FileStat {
    fn of(meta: &std::fs::Metadata) -> FileStat {
        FileStat { size: meta.len(), mtime_ns: meta.mtime() * 1_000_000_000 + meta.mtime_nsec(), ino: meta.ino() }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum EntryKind {
    File(FileStat),
    /// A folder; hidden folders are not read by the walk (only when a folder object holds one).
    Dir,
    /// A symbolic link or a special file, with what it is.
    Other(&'static str),
}

#[derive(Debug, Clone)]
struct Entry {
    /// The name on disk.
    name: String,
    kind: EntryKind,
}

/// The data tree as the walk found it: every folder's entries, by the folder's path relative to the root
/// (`""` is the root), sorted by name.
#[derive(Debug, Default)]
struct Walked {
    root: PathBuf,
    folders: HashMap<String, Vec<Entry>>,
    /// Entries whose name is not UTF-8 (they cannot be named in the log).
    unnamed: Vec<SkippedEntry>,
}

fn join_key(parent: &str, name: &str) -> String {
    if parent.is_empty() { name.to_string() } else { format!("{parent}/{name}") }
}

fn is_hidden(name: &str) -> bool {
    name.starts_with('.')
}

/// Reads one folder: its entries (sorted), and names that are not UTF-8. A folder that vanished meanwhile is
/// empty. At the root, trove's own files and hidden entries are left out.
fn read_folder(root: &Path, key: &str) -> Result<(Vec<Entry>, Vec<SkippedEntry>)> {
    let dir = if key.is_empty() { root.to_path_buf() } else { root.join(key) };
    let mut entries = Vec::new();
    let mut unnamed = Vec::new();
    let listing = match std::fs::read_dir(&dir) {
        Ok(l) => l,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok((entries, unnamed));
        }
        Err(e) => return Err(Error::Io { path: dir, source: e }),
    };
    for entry in listing {
        let entry = entry.map_err(Error::io(&dir))?;
        let name = match entry.file_name().into_string() {
            Ok(name) => name,
            Err(raw) => {
                unnamed.push(SkippedEntry {
                    path: join_key(key, &raw.to_string_lossy()),
                    reason: "its name is not UTF-8, so the log cannot name it".into(),
                });
                continue;
            }
        };
        // A copy trove was making when it was killed (an orphan for `trove gc`), not data.
        if (key.is_empty() && (is_hidden(&name) || name == CONFIG_FILE)) || name.contains(".trove-part-") {
            continue;
        }
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(Error::Io { path: entry.path(), source: e }),
        };
        let kind = if file_type.is_dir() {
            EntryKind::Dir
        } else if file_type.is_file() {
            match entry.metadata() {
                Ok(meta) => EntryKind::File(FileStat::of(&meta)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                Err(e) => return Err(Error::Io { path: entry.path(), source: e }),
            }
        } else if file_type.is_symlink() {
            EntryKind::Other("a symbolic link (scans do not follow links)")
        } else {
            EntryKind::Other("neither a file nor a folder")
        };
        entries.push(Entry { name, kind });
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    Ok((entries, unnamed))
}

/// Runs `work` on every item on up to `threads` threads, reporting the summed `weight` of the items done
/// every 20 ms; the first error stops every thread. Results come back with their item's index.
fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    threads: usize,
    work: impl Fn(&T) -> Result<Option<R>> + Sync,
    weight: impl Fn(&T) -> u64 + Sync,
    report: &mut dyn FnMut(u64),
) -> Result<Vec<(usize, R)>> {
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let done = AtomicU64::new(0);
    let failed = AtomicBool::new(false);
    let finished = AtomicUsize::new(0);
    type Part<R> = Result<Vec<(usize, R)>>;
    let parts: Vec<Part<R>> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Part<R> {
                    let mut out = Vec::new();
                    let outcome = (|| {
                        while !failed.load(Ordering::Relaxed) {
                            let i = next.fetch_add(1, Ordering::Relaxed);
                            let Some(item) = items.get(i) else { break };
                            match work(item) {
                                Ok(Some(r)) => out.push((i, r)),
                                Ok(None) => {}
                                Err(e) => {
                                    failed.store(true, Ordering::Relaxed);
                                    return Err(e);
                                }
                            }
                            done.fetch_add(weight(item), Ordering::Relaxed);
                        }
                        Ok(())
                    })();
                    finished.fetch_add(1, Ordering::Relaxed);
                    outcome.map(|()| out)
                })
            })
            .collect();
        while finished.load(Ordering::Relaxed) < threads {
            report(done.load(Ordering::Relaxed));
            std::thread::sleep(Duration::from_millis(20));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(Error::Invalid("a scan thread panicked".into()))))
            .collect()
    });
    let mut out = Vec::new();
    for part in parts {
        out.extend(part?);
    }
    Ok(out)
}

/// Folders waiting to be read, shared by the walking threads.
#[derive(Default)]
struct WalkQueue {
    pending: Vec<String>,
    busy: usize,
    failed: bool,
}

/// Reads every folder below `root` (except hidden ones) on several threads.
fn walk(root: &Path, progress: &mut dyn FnMut(ScanProgress)) -> Result<Walked> {
    let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(2, 8) * 2;
    let queue = Mutex::new(WalkQueue { pending: vec![String::new()], ..Default::default() });
    let wake = Condvar::new();
    let read = AtomicU64::new(0);
    let found = AtomicU64::new(1);
    let finished = AtomicUsize::new(0);
    let lock = || queue.lock().unwrap_or_else(|p| p.into_inner());
    type Part = Result<(Vec<(String, Vec<Entry>)>, Vec<SkippedEntry>)>;
    let parts: Vec<Part> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| -> Part {
                    let mut folders = Vec::new();
                    let mut unnamed = Vec::new();
                    let outcome = (|| loop {
                        let key = {
                            let mut q = lock();
                            loop {
                                if q.failed {
                                    return Ok(());
                                }
                                if let Some(key) = q.pending.pop() {
                                    q.busy += 1;
                                    break key;
                                }
                                if q.busy == 0 {
                                    return Ok(());
                                }
                                q = wake.wait(q).unwrap_or_else(|p| p.into_inner());
                            }
                        };
                        let result = read_folder(root, &key);
                        let mut q = lock();
                        q.busy -= 1;
                        match result {
                            Ok((entries, names)) => {
                                for e in &entries {
                                    if e.kind == EntryKind::Dir && !is_hidden(&e.name) {
                                        q.pending.push(join_key(&key, &e.name));
                                        found.fetch_add(1, Ordering::Relaxed);
                                    }
                                }
                                folders.push((key, entries));
                                unnamed.extend(names);
                                read.fetch_add(1, Ordering::Relaxed);
                                wake.notify_all();
                            }
                            Err(e) => {
                                q.failed = true;
                                wake.notify_all();
                                return Err(e);
                            }
                        }
                    })();
                    finished.fetch_add(1, Ordering::Relaxed);
                    outcome.map(|()| (folders, unnamed))
                })
            })
            .collect();
        while finished.load(Ordering::Relaxed) < threads {
            progress(ScanProgress {
                phase: ScanPhase::Walking,
                done: read.load(Ordering::Relaxed),
                total: found.load(Ordering::Relaxed),
            });
            std::thread::sleep(Duration::from_millis(20));
        }
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or_else(|_| Err(Error::Invalid("a scan walking thread panicked".into()))))
            .collect()
    });
    let mut walked = Walked { root: root.to_path_buf(), ..Default::default() };
    for part in parts {
        let (folders, unnamed) = part?;
        walked.folders.extend(folders);
        walked.unnamed.extend(unnamed);
    }
    progress(ScanProgress {
        phase: ScanPhase::Walking,
        done: walked.folders.len() as u64,
        total: walked.folders.len() as u64,
    });
    Ok(walked)
}

impl Walked {
    /// A folder's entries: as walked, or read now (a hidden folder inside a folder object).
    fn entries(&self, key: &str) -> Result<Cow<'_, [Entry]>> {
        match self.folders.get(key) {
            Some(entries) => Ok(Cow::Borrowed(entries.as_slice())),
            None => Ok(Cow::Owned(read_folder(&self.root, key)?.0)),
        }
    }

    /// The entry at a path, if the walk saw one.
    fn entry(&self, key: &str) -> Option<&Entry> {
        let (parent, name) = key.rsplit_once('/').unwrap_or(("", key));
        let entries = self.folders.get(parent)?;
        entries.binary_search_by(|e| e.name.as_str().cmp(name)).ok().map(|i| &entries[i])
    }
}

// ---------------------------------------------------------------------------------------------------------
// Checksums

/// The checksums of the files a scan looks at: from the cache when a file's size, modification time and
/// inode are what the cache holds, else hashed (and then cached).
struct Sums {
    root: PathBuf,
    cache: HashMap<String, CachedFile>,
    /// This scan's checksums, with the stat they belong to.
    known: HashMap<String, (FileStat, String)>,
    /// Cache rows to write: files hashed whose content had settled.
    fresh: BTreeMap<String, CachedFile>,
    files_hashed: u64,
    bytes_hashed: u64,
    /// Whether the walk found a file for every cache row (then no row is to be forgotten).
    all_cached_seen: bool,
}

/// One file hashed: its checksum, and whether the file stayed as it was stat'ed and had settled.
struct Hashed {
    checksum: String,
    cacheable: bool,
}

fn hash_one(root: &Path, key: &str, stat: &FileStat) -> Result<Option<Hashed>> {
    let path = root.join(key);
    let started = now_ns();
    let (size, hash) = match trove_storage::storage::hash_file(&path) {
        Ok(h) => h,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::Io { path, source: e }),
    };
    let unchanged = std::fs::symlink_metadata(&path).is_ok_and(|m| FileStat::of(&m) == *stat);
    Ok(Some(Hashed { checksum: hex(hash), cacheable: unchanged && size == stat.size && settled(stat, started) }))
}

impl Sums {
    fn new(root: &Path, cache: HashMap<String, CachedFile>) -> Sums {
        Sums {
            root: root.to_path_buf(),
            cache,
            known: HashMap::new(),
            fresh: BTreeMap::new(),
            files_hashed: 0,
            bytes_hashed: 0,
            all_cached_seen: false,
        }
    }

    /// The cached checksum of a file with this stat. Rows without one only say where trove placed a file
    /// ([`remember_placed`]).
    fn cached(&self, key: &str, stat: &FileStat) -> Option<&str> {
        self.cache
            .get(key)
            .filter(|c| c.size == stat.size && c.mtime_ns == stat.mtime_ns && c.ino == stat.ino)
            .map(|c| c.checksum.as_str())
            .filter(|sum| !sum.is_empty())
    }

    fn remember(&mut self, key: String, stat: FileStat, hashed: Hashed) -> String {
        self.files_hashed += 1;
        self.bytes_hashed += stat.size;
        if hashed.cacheable {
            self.fresh.insert(
                key.clone(),
                CachedFile {
                    size: stat.size,
                    mtime_ns: stat.mtime_ns,
                    ino: stat.ino,
                    checksum: hashed.checksum.clone(),
                },
            );
        }
        self.known.insert(key, (stat, hashed.checksum.clone()));
        hashed.checksum
    }

    /// The checksum of a file with this stat; `None` when it vanished before it could be hashed.
    /// Whether a file with this stat holds `checksum` (`None` when it vanished before it could be hashed),
    /// without copying a checksum the cache answers with.
    fn holds(&mut self, key: &str, stat: &FileStat, checksum: &str) -> Result<Option<bool>> {
        if self.known.is_empty()
            && let Some(sum) = self.cached(key, stat)
        {
            return Ok(Some(sum == checksum));
        }
        Ok(self.get(key, stat)?.map(|sum| sum == checksum))
    }

    fn get(&mut self, key: &str, stat: &FileStat) -> Result<Option<String>> {
        if let Some((known_stat, sum)) = self.known.get(key)
            && known_stat == stat
        {
            return Ok(Some(sum.clone()));
        }
        if let Some(sum) = self.cached(key, stat) {
            return Ok(Some(sum.to_string()));
        }
        Ok(hash_one(&self.root, key, stat)?.map(|h| self.remember(key.to_string(), *stat, h)))
    }

    /// Hashes, on several threads, every file among `files` the cache does not answer for.
    /// Files in hidden folders are left to be hashed when a folder object needs them.
    fn hash_all(&mut self, walked: &Walked, progress: &mut dyn FnMut(ScanProgress)) -> Result<()> {
        let mut todo: Vec<(String, FileStat)> = Vec::new();
        let mut cached_and_seen = 0;
        let mut key = String::new();
        for (folder, entries) in &walked.folders {
            let hidden_folder = folder.split('/').any(is_hidden);
            for entry in entries {
                let EntryKind::File(stat) = entry.kind else { continue };
                key.clear();
                key.push_str(folder);
                if !folder.is_empty() {
                    key.push('/');
                }
                key.push_str(&entry.name);
                if self.cache.contains_key(key.as_str()) {
                    cached_and_seen += 1;
                    if self.cached(&key, &stat).is_some() {
                        continue;
                    }
                }
                if !hidden_folder && !is_hidden(&entry.name) {
                    todo.push((key.clone(), stat));
                }
            }
        }
        self.all_cached_seen = cached_and_seen == self.cache.len();
        if todo.is_empty() {
            return Ok(());
        }
        // Large files first, so that the last thread to finish is not the one that drew the largest file.
        todo.sort_by_key(|(_, stat)| std::cmp::Reverse(stat.size));
        let total: u64 = todo.iter().map(|(_, s)| s.size).sum();
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 16);
        let root = self.root.clone();
        let parts = in_parallel(
            &todo,
            threads,
            |(key, stat)| hash_one(&root, key, stat),
            |(_, stat)| stat.size,
            &mut |done| progress(ScanProgress { phase: ScanPhase::Hashing, done, total }),
        )?;
        progress(ScanProgress { phase: ScanPhase::Hashing, done: total, total });
        let mut todo: Vec<Option<(String, FileStat)>> = todo.into_iter().map(Some).collect();
        for (i, hashed) in parts {
            if let Some((key, stat)) = todo[i].take() {
                self.remember(key, stat, hashed);
            }
        }
        Ok(())
    }

    /// Cache rows of files the walk no longer found.
    fn gone<'a>(&'a self, walked: &'a Walked) -> Vec<&'a str> {
        if self.all_cached_seen {
            return Vec::new();
        }
        self.cache
            .keys()
            .filter(|k| {
                !matches!(walked.entry(k).map(|e| &e.kind), Some(EntryKind::File(_)))
                    && !self.known.contains_key(k.as_str())
            })
            .map(String::as_str)
            .collect()
    }
}

/// Remembers the files a commit's moves just put in place (inode, size and modification time, in the scan
/// cache without a checksum: a file written a moment ago has not settled), so that a scan can tell a folder
/// moved by hand, which keeps its files, from a copy of the same content. Local stores only. The rows are
/// written on the reader of the write transaction, so they commit with it.
pub(crate) fn remember_placed(storage: &trove_storage::Storage, read: &Reader<'_>, moves: &[FileMove]) -> Result<()> {
    if storage.local_root().is_none() {
        return Ok(());
    }
    let mut rows: Vec<(String, CachedFile)> = Vec::new();
    for m in moves {
        let mut pending = vec![m.to.clone()];
        while let Some(key) = pending.pop() {
            let Some(path) = storage.local_path(&key) else { continue };
            let Ok(meta) = std::fs::symlink_metadata(&path) else { continue };
            if meta.is_file() {
                let stat = FileStat::of(&meta);
                rows.push((
                    key,
                    CachedFile { size: stat.size, mtime_ns: stat.mtime_ns, ino: stat.ino, checksum: String::new() },
                ));
            } else if meta.is_dir() {
                let listing = std::fs::read_dir(&path).map_err(Error::io(&path))?;
                for entry in listing.flatten() {
                    if let Ok(name) = entry.file_name().into_string() {
                        pending.push(join_key(&key, &name));
                    }
                }
            }
        }
    }
    read.record_scan(rows.iter().map(|(k, c)| (k.as_str(), c)), std::iter::empty())?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------------------
// Names on disk

/// The trove name an entry on disk stands for, or why it cannot be one. Names are kept on disk as they are
/// (`trove_storage::storage::path_of`), so this is the name rule alone.
fn trove_name(disk: &str, project: bool) -> std::result::Result<String, String> {
    let valid = if project { validate_project(disk) } else { validate_name(disk) };
    valid.map(|()| disk.to_string()).map_err(|e| format!("not a valid trove name ({e})"))
}

// ---------------------------------------------------------------------------------------------------------
// The catalog, as a scan compares with it

/// What a scan needs of a dataset: where it is and its objects' checksums, read from the catalog's JSON
/// without building the rest (metadata, summaries), which a no-op scan of many datasets never looks at.
#[derive(Debug, Clone, Deserialize)]
struct Known {
    id: Uuid,
    #[serde(default)]
    alive: Option<bool>,
    #[serde(default)]
    at: Option<Location>,
    #[serde(default)]
    objects: BTreeMap<String, KnownObject>,
    /// Explicit stamps, among them the tombstones of removed objects (`o:NAME`).
    #[serde(default)]
    stamps: BTreeMap<String, Stamp>,
}

#[derive(Debug, Clone, Deserialize)]
struct KnownObject {
    checksum: String,
    /// A folder object's files, by their paths inside it.
    #[serde(default)]
    files: Option<BTreeMap<String, IgnoredAny>>,
}

impl KnownObject {
    fn is_folder(&self) -> bool {
        self.files.is_some()
    }
}

impl Known {
    fn is_alive(&self) -> bool {
        self.alive == Some(true) && self.at.is_some()
    }
}

/// The datasets a scan compares the walk with, read in one pass over the catalog.
struct Snapshot {
    /// Live datasets by `(project, path)`.
    live: HashMap<(String, String), Known>,
    /// Deleted datasets by their last location.
    dead: HashMap<(String, String), Vec<Known>>,
    projects: HashSet<String>,
    /// What the catalog had merged: when it is the same inside the transaction, so is everything else.
    version: (i64, usize),
}

impl Snapshot {
    fn version(read: &Reader<'_>) -> Result<(i64, usize)> {
        Ok((read.max_ts()?, read.applied()?.len()))
    }

    fn load(read: &Reader<'_>) -> Result<Snapshot> {
        let mut live = HashMap::new();
        let mut dead: HashMap<(String, String), Vec<Known>> = HashMap::new();
        read.all_states_json(|visible, json| {
            let state: Known = serde_json::from_str(json)
                .map_err(|source| trove_catalog::CatalogError::BadRow { what: "a dataset".into(), source })?;
            let Some(at) = state.at.clone() else { return Ok(()) };
            let key = (at.project().to_string(), at.path().as_str().to_string());
            if !state.is_alive() {
                dead.entry(key).or_default().push(state);
            } else if visible {
                live.insert(key, state);
            }
            Ok(())
        })?;
        let projects = read.projects()?.into_iter().map(|p| p.name).collect();
        Ok(Snapshot { live, dead, projects, version: Snapshot::version(read)? })
    }
}

// ---------------------------------------------------------------------------------------------------------
// Comparing the walk with the catalog

/// An entry of the data tree that is, or will become, an object: its files and their checksums.
#[derive(Debug, Clone)]
struct Found {
    name: String,
    /// The path on disk, relative to the root.
    key: String,
    checksum: String,
    /// For a folder: every file in it, by its path inside the folder.
    files: Option<BTreeMap<String, FileEntry>>,
    /// The stat of every file it was computed from (for a file, itself), to check it is still so.
    stats: Vec<(String, FileStat)>,
}

/// What became of a folder that held files no live dataset owned.
#[derive(Debug, Clone)]
enum How {
    Moved(Known),
    /// Copied from this dataset, now at this location.
    Copied(Known, Location),
    New,
}

/// One finding of the comparison.
#[derive(Debug, Clone)]
enum Item {
    Changed { id: Uuid, at: Location, object: Found },
    Added { id: Uuid, at: Location, object: Found },
    Dataset { how: How, at: Location, key: String, matched: Vec<Found>, extra: Vec<Found> },
    Removed { state: Known },
}

/// What the comparison found.
#[derive(Debug, Default)]
struct Outcome {
    items: Vec<Item>,
    projects: Vec<String>,
    missing: Vec<String>,
    skipped: Vec<SkippedEntry>,
}

/// A folder's entries that could be objects of a dataset there, and its folders that are (above) live
/// datasets' folders, with their paths.
type FolderContent = (Vec<Candidate>, Vec<(String, DatasetPath)>);

/// An entry of a folder that could be an object of a dataset there.
#[derive(Debug, Clone)]
struct Candidate {
    name: String,
    key: String,
    kind: EntryKind,
}

/// The project and dataset path a folder of the data tree stands for, when every name in it is valid.
fn decode_location(key: &str) -> Option<Location> {
    let mut parts = key.split('/');
    let project = trove_name(parts.next()?, true).ok()?;
    let names: Vec<String> = parts.map(|p| trove_name(p, false)).collect::<std::result::Result<_, _>>().ok()?;
    Some(Location(project, DatasetPath::parse(&names.join("/")).ok()?))
}

/// The last name of a dataset's path.
fn state_name(state: &Known) -> &str {
    state.at.as_ref().map_or("", |at| at.path().name())
}

fn reference(at: &Location, object: &str) -> String {
    format!("{}/{}:{object}", at.project(), at.path())
}

fn place(at: &Location) -> String {
    format!("{}/{}", at.project(), at.path())
}

/// Compares the walk with a snapshot of the catalog.
struct Classifier<'a> {
    snap: &'a Snapshot,
    walk: &'a Walked,
    sums: &'a mut Sums,
    by_id: HashMap<Uuid, &'a Known>,
    vanished: HashSet<Uuid>,
    /// `(project, path)` of every live dataset that is still there, and of every folder above one.
    structure: HashSet<(String, String)>,
    /// Live datasets (vanished or not) by the name and checksum of each of their objects.
    index: HashMap<(String, String), Vec<Uuid>>,
    object_names: HashSet<String>,
    /// Vanished datasets already matched by a folder, and where they went.
    claimed: HashMap<Uuid, Location>,
    /// Vanished datasets some folder matches exactly (the same objects, nothing more): only that folder
    /// may take them, not one holding more files that is met first.
    exact_home: HashMap<Uuid, String>,
    /// The files vanished datasets had when trove last saw them, by `(inode, size, modification time)`
    /// (from the scan cache): a folder moved by hand keeps them.
    identities: HashMap<(u64, u64, i64), Vec<Uuid>>,
    /// Folders that hold the same objects as several vanished datasets, none of which can be told to be
    /// the one: they are not recorded, and those datasets are not removed.
    ambiguous: HashMap<String, Vec<Uuid>>,
    held: HashSet<Uuid>,
    found: HashMap<String, Option<Found>>,
    may_match: HashMap<String, bool>,
    has_files: HashMap<String, bool>,
    out: Outcome,
}

/// A dataset that matches a folder's content.
struct Match {
    id: Uuid,
    /// All of the folder's entries are its objects (and no more).
    exact: bool,
}

impl<'a> Classifier<'a> {
    fn new(snap: &'a Snapshot, walk: &'a Walked, sums: &'a mut Sums) -> Classifier<'a> {
        let mut by_id = HashMap::new();
        let mut index: HashMap<(String, String), Vec<Uuid>> = HashMap::new();
        let mut object_names = HashSet::new();
        for state in snap.live.values() {
            by_id.insert(state.id, state);
            for (name, m) in &state.objects {
                index.entry((name.clone(), m.checksum.clone())).or_default().push(state.id);
                object_names.insert(name.clone());
            }
        }
        Classifier {
            snap,
            walk,
            sums,
            by_id,
            vanished: HashSet::new(),
            structure: HashSet::new(),
            index,
            object_names,
            claimed: HashMap::new(),
            exact_home: HashMap::new(),
            identities: HashMap::new(),
            ambiguous: HashMap::new(),
            held: HashSet::new(),
            found: HashMap::new(),
            may_match: HashMap::new(),
            has_files: HashMap::new(),
            out: Outcome::default(),
        }
    }

    fn skip(&mut self, path: &str, reason: impl Into<String>) {
        self.out.skipped.push(SkippedEntry { path: path.to_string(), reason: reason.into() });
    }

    fn run(mut self) -> Result<Outcome> {
        self.out.skipped.extend(self.walk.unnamed.iter().cloned());
        let mut live: Vec<&Known> = self.snap.live.values().collect();
        live.sort_by(|a, b| a.at.cmp(&b.at));
        for state in &live {
            let Some(at) = &state.at else { continue };
            // The walk does not read hidden folders, so it cannot tell what became of a dataset in one.
            if state.objects.is_empty() || at.path().as_str().split('/').any(is_hidden) {
                continue;
            }
            let folder = self.walk.folders.get(&place(at));
            let absent: Vec<&String> = state
                .objects
                .keys()
                .filter(|name| {
                    folder.is_none_or(|entries| entries.binary_search_by(|e| e.name.as_str().cmp(name)).is_err())
                })
                .collect();
            if absent.len() == state.objects.len() {
                self.vanished.insert(state.id);
            } else {
                self.out.missing.extend(absent.into_iter().map(|name| reference(at, name)));
            }
        }
        for state in &live {
            let Some(at) = &state.at else { continue };
            if self.vanished.contains(&state.id) {
                continue;
            }
            self.structure.insert((at.project().to_string(), at.path().as_str().to_string()));
            for ancestor in at.path().ancestors() {
                self.structure.insert((at.project().to_string(), ancestor.as_str().to_string()));
            }
        }
        self.recall_identities();
        self.find_exact_homes()?;
        let walk = self.walk;
        for entry in walk.entries("")?.iter() {
            match &entry.kind {
                EntryKind::File(_) => self.skip(&entry.name, "a file at the store root belongs to no project"),
                EntryKind::Other(what) => self.skip(&entry.name, *what),
                EntryKind::Dir => match trove_name(&entry.name, true) {
                    Err(why) => self.skip(&entry.name, why),
                    Ok(project) => {
                        if !self.snap.projects.contains(&project) {
                            self.out.projects.push(project.clone());
                        }
                        self.project_folder(&entry.name, &project)?;
                    }
                },
            }
        }
        // Vanished datasets no folder matched were removed.
        let mut removed: Vec<&Known> = self
            .vanished
            .iter()
            .filter(|id| !self.claimed.contains_key(id) && !self.held.contains(id))
            .filter_map(|id| self.by_id.get(id).copied())
            .collect();
        removed.sort_by(|a, b| a.at.cmp(&b.at));
        for state in removed {
            self.out.items.push(Item::Removed { state: state.clone() });
        }
        Ok(self.out)
    }

    /// What the scan cache remembers of the files of vanished datasets, at their last places.
    fn recall_identities(&mut self) {
        for id in &self.vanished {
            let Some(state) = self.by_id.get(id) else { continue };
            let Some(at) = &state.at else { continue };
            for (name, object) in &state.objects {
                let key = object_key(at.project(), at.path(), name);
                let keys: Vec<String> = match &object.files {
                    None => vec![key],
                    Some(files) => files.keys().map(|inner| format!("{key}/{inner}")).collect(),
                };
                for key in keys {
                    if let Some(c) = self.sums.cache.get(&key) {
                        self.identities.entry((c.ino, c.size, c.mtime_ns)).or_default().push(*id);
                    }
                }
            }
        }
    }

    /// How surely a folder holding a vanished dataset's objects is that dataset: 2 when it holds the very
    /// files trove last saw (a hand `mv` keeps inodes; a copy does not), 1 when it kept the dataset's name,
    /// else 0.
    fn evidence(&mut self, id: Uuid, at: &Location, content: &[Candidate]) -> Result<u8> {
        if !self.identities.is_empty() {
            for c in content {
                let stats: Vec<FileStat> = match &c.kind {
                    EntryKind::File(stat) => vec![*stat],
                    EntryKind::Dir => {
                        self.files_below(&c.key)?.unwrap_or_default().into_iter().map(|(_, s)| s).collect()
                    }
                    EntryKind::Other(_) => continue,
                };
                let known = |s: &FileStat| {
                    self.identities.get(&(s.ino, s.size, s.mtime_ns)).is_some_and(|ids| ids.contains(&id))
                };
                if stats.iter().any(known) {
                    return Ok(2);
                }
            }
        }
        Ok(u8::from(self.by_id.get(&id).is_some_and(|state| at.path().name() == state_name(state))))
    }

    /// Of vanished datasets whose objects a folder holds alike, the one it is, with the evidence: the only
    /// one, or the one with the strongest evidence, if no other has as much and it has some. Content alone
    /// never picks among several.
    fn pick(&mut self, at: &Location, content: &[Candidate], ids: &[Uuid]) -> Result<Option<(Uuid, u8)>> {
        let mut scored = Vec::with_capacity(ids.len());
        for id in ids {
            scored.push((*id, self.evidence(*id, at, content)?));
        }
        let best = scored.iter().map(|(_, e)| *e).max().unwrap_or(0);
        let top: Vec<(Uuid, u8)> = scored.into_iter().filter(|(_, e)| *e == best).collect();
        Ok(match top.as_slice() {
            [one] if best > 0 || ids.len() == 1 => Some(*one),
            _ => None,
        })
    }

    /// Finds, for each vanished dataset, a folder holding exactly its objects (the names first, then the
    /// checksums), if there is one. A folder several vanished datasets match alike, with nothing to tell
    /// which it is, is marked ambiguous.
    fn find_exact_homes(&mut self) -> Result<()> {
        let mut by_names: HashMap<Vec<String>, Vec<Uuid>> = HashMap::new();
        for id in &self.vanished {
            if let Some(state) = self.by_id.get(id) {
                by_names.entry(state.objects.keys().cloned().collect()).or_default().push(*id);
            }
        }
        if by_names.is_empty() {
            return Ok(());
        }
        let walk = self.walk;
        let mut homes: HashMap<Uuid, Vec<(u8, String)>> = HashMap::new();
        let mut ambiguous: Vec<(String, Vec<Uuid>)> = Vec::new();
        let mut keys: Vec<&String> = walk.folders.keys().filter(|k| k.contains('/')).collect();
        keys.sort();
        for key in keys {
            let Some(at) = decode_location(key) else { continue };
            if self.live_at(at.project(), at.path()).is_some() {
                continue;
            }
            let mut content: Vec<Candidate> = Vec::new();
            for entry in &walk.folders[key] {
                if is_hidden(&entry.name) || matches!(entry.kind, EntryKind::Other(_)) {
                    continue;
                }
                let Ok(name) = trove_name(&entry.name, false) else { continue };
                content.push(Candidate { name, key: join_key(key, &entry.name), kind: entry.kind.clone() });
            }
            content.sort_by(|a, b| a.name.cmp(&b.name));
            let names: Vec<String> = content.iter().map(|c| c.name.clone()).collect();
            let Some(ids) = by_names.get(&names) else { continue };
            let mut alike = Vec::new();
            for id in ids {
                let state = self.by_id[id];
                let mut same = true;
                for c in &content {
                    let found = self.object(c)?;
                    if found.is_none_or(|f| state.objects.get(&c.name).is_none_or(|m| m.checksum != f.checksum)) {
                        same = false;
                        break;
                    }
                }
                if same {
                    alike.push(*id);
                }
            }
            alike.sort();
            match self.pick(&at, &content, &alike)? {
                Some((id, evidence)) => homes.entry(id).or_default().push((evidence, key.clone())),
                None if alike.len() > 1 => ambiguous.push((key.clone(), alike)),
                None => {}
            }
        }
        // Of several folders, the one with the strongest evidence, else the first in path order (the others
        // are copies).
        for (id, mut candidates) in homes {
            candidates.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            if let Some((_, key)) = candidates.into_iter().next() {
                self.exact_home.insert(id, key);
            }
        }
        // An ambiguous folder whose rivals but one have a home elsewhere is that one's home.
        for (key, ids) in ambiguous {
            let open: Vec<Uuid> = ids.into_iter().filter(|id| !self.exact_home.contains_key(id)).collect();
            if let [one] = open.as_slice() {
                self.exact_home.insert(*one, key);
            } else if !open.is_empty() {
                for id in &open {
                    self.exact_home.insert(*id, key.clone());
                    self.held.insert(*id);
                }
                self.ambiguous.insert(key, open);
            }
        }
        Ok(())
    }

    /// Leaves a folder that holds what several vanished datasets held alike unrecorded, and says why.
    fn skip_ambiguous(&mut self, key: &str, ids: &[Uuid]) {
        self.held.extend(ids.iter().copied());
        let mut places: Vec<String> =
            ids.iter().filter_map(|id| self.by_id.get(id).and_then(|s| s.at.as_ref()).map(place)).collect();
        places.sort();
        self.skip(
            key,
            format!(
                "it holds the same objects as {} datasets whose folders are gone ({}), and nothing tells which \
                 one it is, so neither is recorded: `trove rm` those that were deleted and scan again",
                places.len(),
                places.join(", ")
            ),
        );
    }

    fn project_folder(&mut self, key: &str, project: &str) -> Result<()> {
        for entry in Walked::entries(self.walk, key)?.iter() {
            if is_hidden(&entry.name) {
                continue;
            }
            let child = join_key(key, &entry.name);
            let name = match trove_name(&entry.name, false) {
                Ok(n) => n,
                Err(why) => {
                    self.skip(&child, why);
                    continue;
                }
            };
            match &entry.kind {
                EntryKind::Dir => {
                    let path = DatasetPath::parse(&name)?;
                    self.folder(&child, project, &path)?;
                }
                EntryKind::File(_) => self.skip(
                    &child,
                    format!("a file directly in a project folder belongs to no dataset (move it into {project}/PATH/)"),
                ),
                EntryKind::Other(what) => self.skip(&child, *what),
            }
        }
        Ok(())
    }

    fn live_at(&self, project: &str, path: &DatasetPath) -> Option<&'a Known> {
        let snap: &'a Snapshot = self.snap;
        snap.live.get(&(project.to_string(), path.as_str().to_string())).filter(|s| !self.vanished.contains(&s.id))
    }

    fn is_structure(&self, project: &str, path: &DatasetPath) -> bool {
        self.structure.contains(&(project.to_string(), path.as_str().to_string()))
    }

    /// A folder below a project.
    fn folder(&mut self, key: &str, project: &str, path: &DatasetPath) -> Result<()> {
        match self.live_at(project, path) {
            Some(state) => self.dataset_folder(key, project, path, state),
            None => self.unowned_folder(key, project, path),
        }
    }

    /// The folder of a live dataset that is still there.
    fn dataset_folder(&mut self, key: &str, project: &str, path: &DatasetPath, state: &'a Known) -> Result<()> {
        let at = Location(project.to_string(), path.clone());
        let entries = Walked::entries(self.walk, key)?;
        for entry in entries.iter() {
            if is_hidden(&entry.name) {
                continue;
            }
            let child = join_key(key, &entry.name);
            let name = match trove_name(&entry.name, false) {
                Ok(n) => n,
                Err(why) => {
                    self.skip(&child, why);
                    continue;
                }
            };
            if let Some(manifest) = state.objects.get(&name) {
                self.compare(state.id, &at, &name, manifest, &child, &entry.kind)?;
                continue;
            }
            let child_path = path.join(&DatasetPath::parse(&name)?);
            match &entry.kind {
                EntryKind::Dir if self.is_structure(project, &child_path) => {
                    self.folder(&child, project, &child_path)?;
                    continue;
                }
                EntryKind::Dir if !self.subtree_has_files(&child)? => continue,
                EntryKind::Other(what) => {
                    self.skip(&child, *what);
                    continue;
                }
                _ => {}
            }
            if let Some(why) = self.removed_object_leftover(state, &name, &child, &entry.kind)? {
                self.skip(&child, why);
                continue;
            }
            if entry.kind == EntryKind::Dir && self.subtree_may_match(&child)? {
                self.unowned_folder(&child, project, &child_path)?;
                continue;
            }
            let candidate = Candidate { name: name.clone(), key: child.clone(), kind: entry.kind.clone() };
            if let Some(object) = self.object(&candidate)? {
                self.out.items.push(Item::Added { id: state.id, at: at.clone(), object });
            }
        }
        Ok(())
    }

    /// A file or folder in a live dataset's folder, named like an object the dataset removed: left by a
    /// `trove rm` of that object that did not finish deleting, if nothing in it is newer than the removal.
    fn removed_object_leftover(
        &mut self,
        state: &Known,
        name: &str,
        key: &str,
        kind: &EntryKind,
    ) -> Result<Option<String>> {
        let Some(removed) = state.stamps.get(&format!("o:{name}")).filter(|_| !state.objects.contains_key(name)) else {
            return Ok(None);
        };
        let removal_ns = removed.ts.saturating_mul(1000);
        let newest = match kind {
            EntryKind::File(stat) => Some(stat.mtime_ns),
            EntryKind::Dir => {
                self.files_below(key)?.map(|files| files.iter().map(|(_, s)| s.mtime_ns).max().unwrap_or(0))
            }
            EntryKind::Other(_) => None,
        };
        Ok(newest.filter(|t| *t < removal_ns).map(|_| {
            format!("left behind by the removal of object {name} (`trove gc` removes it); a new file of that name would be newer")
        }))
    }

    /// Compares a dataset's object with what is on disk.
    fn compare(
        &mut self,
        id: Uuid,
        at: &Location,
        name: &str,
        manifest: &KnownObject,
        key: &str,
        kind: &EntryKind,
    ) -> Result<()> {
        if let EntryKind::Other(what) = kind {
            self.skip(key, format!("object {} is now {what}", reference(at, name)));
            return Ok(());
        }
        if let (EntryKind::File(stat), false) = (kind, manifest.is_folder())
            && self.sums.holds(key, stat, &manifest.checksum)?.is_none_or(|same| same)
        {
            return Ok(());
        }
        let candidate = Candidate { name: name.to_string(), key: key.to_string(), kind: kind.clone() };
        if let Some(object) = self.object(&candidate)?
            && (object.checksum != manifest.checksum || object.files.is_some() != manifest.is_folder())
        {
            self.out.items.push(Item::Changed { id, at: at.clone(), object });
        }
        Ok(())
    }

    /// Every file below a folder (hidden ones too, as a folder object holds them), with its stat; `None` if
    /// it holds a link or a special file (reported).
    fn files_below(&mut self, key: &str) -> Result<Option<Vec<(String, FileStat)>>> {
        let mut out = Vec::new();
        let mut pending = vec![key.to_string()];
        while let Some(folder) = pending.pop() {
            for entry in Walked::entries(self.walk, &folder)?.iter() {
                let child = join_key(&folder, &entry.name);
                match &entry.kind {
                    EntryKind::File(stat) => out.push((child, *stat)),
                    EntryKind::Dir => pending.push(child),
                    EntryKind::Other(what) => {
                        self.skip(&child, format!("{what}, inside folder {key}: the folder is not recorded"));
                        return Ok(None);
                    }
                }
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Some(out))
    }

    /// An entry as an object: a file with its checksum, or a folder with its listing. `None` when it cannot
    /// be one (reported) or it vanished during the scan.
    fn object(&mut self, candidate: &Candidate) -> Result<Option<Found>> {
        if let Some(found) = self.found.get(&candidate.key) {
            return Ok(found.clone().map(|mut f| {
                f.name = candidate.name.clone();
                f
            }));
        }
        let found = match &candidate.kind {
            EntryKind::File(stat) => self.sums.get(&candidate.key, stat)?.map(|checksum| Found {
                name: candidate.name.clone(),
                key: candidate.key.clone(),
                checksum,
                files: None,
                stats: vec![(candidate.key.clone(), *stat)],
            }),
            EntryKind::Dir => match self.files_below(&candidate.key)? {
                None => None,
                Some(stats) => {
                    let mut files = BTreeMap::new();
                    let mut complete = true;
                    for (key, stat) in &stats {
                        match self.sums.get(key, stat)? {
                            Some(checksum) => {
                                let inner = key[candidate.key.len() + 1..].to_string();
                                files.insert(inner, FileEntry { size: stat.size, checksum });
                            }
                            None => complete = false,
                        }
                    }
                    complete.then(|| Found {
                        name: candidate.name.clone(),
                        key: candidate.key.clone(),
                        checksum: hex(blake3::hash(folder_listing(&files).as_bytes())),
                        files: Some(files),
                        stats,
                    })
                }
            },
            EntryKind::Other(_) => None,
        };
        self.found.insert(candidate.key.clone(), found.clone());
        Ok(found)
    }

    fn subtree_has_files(&mut self, key: &str) -> Result<bool> {
        if let Some(has) = self.has_files.get(key) {
            return Ok(*has);
        }
        let mut has = false;
        for entry in Walked::entries(self.walk, key)?.iter() {
            has = match entry.kind {
                EntryKind::File(_) => true,
                EntryKind::Dir => self.subtree_has_files(&join_key(key, &entry.name))?,
                EntryKind::Other(_) => false,
            };
            if has {
                break;
            }
        }
        self.has_files.insert(key.to_string(), has);
        Ok(has)
    }

    /// The entries of a folder that could be objects of a dataset there: files, and folders holding files
    /// that are not (above) a live dataset's folder. Also gives those other folders.
    fn candidates(&mut self, key: &str, project: &str, path: &DatasetPath) -> Result<FolderContent> {
        let mut content = Vec::new();
        let mut known = Vec::new();
        for entry in Walked::entries(self.walk, key)?.iter() {
            if is_hidden(&entry.name) {
                continue;
            }
            let child = join_key(key, &entry.name);
            let name = match trove_name(&entry.name, false) {
                Ok(n) => n,
                Err(why) => {
                    self.skip(&child, why);
                    continue;
                }
            };
            match &entry.kind {
                EntryKind::Other(what) => self.skip(&child, *what),
                EntryKind::File(_) => content.push(Candidate { name, key: child, kind: entry.kind.clone() }),
                EntryKind::Dir => {
                    let child_path = path.join(&DatasetPath::parse(&name)?);
                    if self.is_structure(project, &child_path) {
                        known.push((child, child_path));
                    } else if self.subtree_has_files(&child)? {
                        content.push(Candidate { name, key: child, kind: EntryKind::Dir });
                    }
                }
            }
        }
        Ok((content, known))
    }

    /// The datasets whose every object is among a folder's entries (name and checksum); for a copy, every
    /// file of the folder must also be one of the dataset's objects.
    fn matches(&mut self, here: Option<&String>, content: &[Candidate]) -> Result<(Vec<Match>, Vec<Match>)> {
        let mut hits: HashMap<Uuid, (usize, usize)> = HashMap::new();
        for candidate in content {
            if !self.object_names.contains(&candidate.name) {
                continue;
            }
            let Some(found) = self.object(candidate)? else { continue };
            if let Some(ids) = self.index.get(&(candidate.name.clone(), found.checksum)) {
                for id in ids {
                    let hit = hits.entry(*id).or_default();
                    hit.0 += 1;
                    if matches!(candidate.kind, EntryKind::File(_)) {
                        hit.1 += 1;
                    }
                }
            }
        }
        let files = content.iter().filter(|c| matches!(c.kind, EntryKind::File(_))).count();
        let (mut moved, mut copied) = (Vec::new(), Vec::new());
        for (id, (all, file_hits)) in hits {
            let Some(state) = self.by_id.get(&id) else { continue };
            if all != state.objects.len() {
                continue;
            }
            let m = Match { id, exact: all == content.len() };
            if self.vanished.contains(&id) && !self.claimed.contains_key(&id) {
                let home_elsewhere = self.exact_home.get(&id).is_some_and(|home| Some(home) != here);
                if !home_elsewhere {
                    moved.push(m);
                }
            } else if file_hits == files {
                copied.push(m);
            }
        }
        let by_id = &self.by_id;
        let order = |a: &Match, b: &Match| {
            let (sa, sb) = (by_id[&a.id], by_id[&b.id]);
            b.exact.cmp(&a.exact).then(sb.objects.len().cmp(&sa.objects.len())).then(sa.at.cmp(&sb.at))
        };
        moved.sort_by(order);
        copied.sort_by(order);
        Ok((moved, copied))
    }

    /// Whether a folder, or one below it, holds what looks like a dataset (moved or copied).
    fn subtree_may_match(&mut self, key: &str) -> Result<bool> {
        if let Some(m) = self.may_match.get(key) {
            return Ok(*m);
        }
        let mut content = Vec::new();
        let mut dirs = Vec::new();
        for entry in Walked::entries(self.walk, key)?.iter() {
            if is_hidden(&entry.name) {
                continue;
            }
            let Ok(name) = trove_name(&entry.name, false) else { continue };
            let child = join_key(key, &entry.name);
            match &entry.kind {
                EntryKind::File(_) => content.push(Candidate { name, key: child, kind: entry.kind.clone() }),
                EntryKind::Dir => {
                    dirs.push(child.clone());
                    content.push(Candidate { name, key: child, kind: EntryKind::Dir });
                }
                EntryKind::Other(_) => {}
            }
        }
        let (moved, copied) = self.matches(Some(&key.to_string()), &content)?;
        let mut found = !moved.is_empty() || !copied.is_empty();
        for dir in dirs {
            if found {
                break;
            }
            found = self.subtree_may_match(&dir)?;
        }
        self.may_match.insert(key.to_string(), found);
        Ok(found)
    }

    /// A folder that is not the folder of a live dataset still there: it holds a moved or copied dataset, a
    /// new dataset (files no dataset owns), or only folders.
    fn unowned_folder(&mut self, key: &str, project: &str, path: &DatasetPath) -> Result<()> {
        let at = Location(project.to_string(), path.clone());
        let (content, known) = self.candidates(key, project, path)?;
        if !content.is_empty() {
            if let Some(why) = self.removed_dataset_leftover(&at, &content)? {
                self.skip(key, why);
            } else {
                self.unowned_content(key, &at, content)?;
            }
        }
        for (child, child_path) in known {
            self.folder(&child, project, &child_path)?;
        }
        Ok(())
    }

    fn unowned_content(&mut self, key: &str, at: &Location, content: Vec<Candidate>) -> Result<()> {
        if let Some(ids) = self.ambiguous.get(key).cloned() {
            self.skip_ambiguous(key, &ids);
            return Ok(());
        }
        let (moved, copied) = self.matches(Some(&key.to_string()), &content)?;
        let moved = match moved.first() {
            None => None,
            Some(first) => {
                let objects_of = |id: &Uuid| -> Vec<(&String, &String)> {
                    self.by_id[id].objects.iter().map(|(n, o)| (n, &o.checksum)).collect()
                };
                let rivals: Vec<Uuid> = moved
                    .iter()
                    .filter(|m| m.exact == first.exact && objects_of(&m.id) == objects_of(&first.id))
                    .map(|m| m.id)
                    .collect();
                match self.pick(at, &content, &rivals)? {
                    Some((id, _)) => Some(id),
                    None => {
                        self.skip_ambiguous(key, &rivals);
                        return Ok(());
                    }
                }
            }
        };
        let how = if let Some(id) = moved {
            let state = self.by_id[&id];
            self.claimed.insert(id, at.clone());
            How::Moved(state.clone())
        } else if let Some(m) = copied.first() {
            let state = self.by_id[&m.id];
            let now_at = self.claimed.get(&m.id).cloned().or_else(|| state.at.clone());
            match now_at {
                Some(from) => How::Copied(state.clone(), from),
                None => How::New,
            }
        } else if content.iter().any(|c| matches!(c.kind, EntryKind::File(_))) {
            How::New
        } else {
            // Only folders: each is looked at on its own.
            for c in content {
                let child_path = at.path().join(&DatasetPath::parse(&c.name)?);
                self.unowned_folder(&c.key, at.project(), &child_path)?;
            }
            return Ok(());
        };
        let objects = match &how {
            How::Moved(s) | How::Copied(s, _) => Some(&s.objects),
            How::New => None,
        }
        .cloned()
        .unwrap_or_default();
        let (mut matched, mut extra, mut below) = (Vec::new(), Vec::new(), Vec::new());
        for c in content {
            let known = objects.get(&c.name);
            if known.is_none() && c.kind == EntryKind::Dir && self.subtree_may_match(&c.key)? {
                below.push(c);
                continue;
            }
            let Some(found) = self.object(&c)? else { continue };
            match known {
                Some(m) if m.checksum == found.checksum => matched.push(found),
                _ => extra.push(found),
            }
        }
        self.out.items.push(Item::Dataset { how, at: at.clone(), key: key.to_string(), matched, extra });
        for c in below {
            let child_path = at.path().join(&DatasetPath::parse(&c.name)?);
            self.unowned_folder(&c.key, at.project(), &child_path)?;
        }
        Ok(())
    }

    /// A folder at the place of a deleted dataset, holding only files of its last objects: what a `trove rm`
    /// that is still deleting (or was killed while deleting) leaves. It is an orphan for `trove gc`.
    fn removed_dataset_leftover(&mut self, at: &Location, content: &[Candidate]) -> Result<Option<String>> {
        let snap: &'a Snapshot = self.snap;
        let Some(dead) = snap.dead.get(&(at.project().to_string(), at.path().as_str().to_string())) else {
            return Ok(None);
        };
        for state in dead {
            let removed_names: HashSet<&str> = state.stamps.keys().filter_map(|k| k.strip_prefix("o:")).collect();
            let mut all = true;
            for c in content {
                let same = match state.objects.get(&c.name) {
                    Some(m) => self.object(c)?.is_some_and(|f| f.checksum == m.checksum),
                    // A removal that cleared the dataset's objects (see `write::removal`) kept only their names.
                    None => removed_names.contains(c.name.as_str()) && state.objects.is_empty(),
                };
                if !same {
                    all = false;
                    break;
                }
            }
            if all {
                return Ok(Some(format!(
                    "left behind by the removal of dataset {} ({}): `trove gc` removes it",
                    place(at),
                    state.id
                )));
            }
        }
        Ok(None)
    }
}

// ---------------------------------------------------------------------------------------------------------
// Checking again inside the transaction

fn stat_now(root: &Path, key: &str) -> Option<FileStat> {
    std::fs::symlink_metadata(root.join(key)).ok().filter(|m| m.is_file()).map(|m| FileStat::of(&m))
}

fn absent_now(root: &Path, key: &str) -> bool {
    matches!(std::fs::symlink_metadata(root.join(key)), Err(e) if e.kind() == std::io::ErrorKind::NotFound)
}

/// Whether an object's files are still exactly as the walk found them (a folder: the same files).
fn unchanged(root: &Path, found: &Found) -> bool {
    if found.files.is_none() {
        return found.stats.iter().all(|(key, stat)| stat_now(root, key).as_ref() == Some(stat));
    }
    let mut now = Vec::new();
    let mut pending = vec![found.key.clone()];
    while let Some(folder) = pending.pop() {
        let Ok((entries, unnamed)) = read_folder(root, &folder) else { return false };
        if !unnamed.is_empty() {
            return false;
        }
        for entry in entries {
            let child = join_key(&folder, &entry.name);
            match entry.kind {
                EntryKind::File(stat) => now.push((child, stat)),
                EntryKind::Dir => pending.push(child),
                EntryKind::Other(_) => return false,
            }
        }
    }
    now.sort_by(|a, b| a.0.cmp(&b.0));
    now == found.stats
}

/// Everything the catalog holds of a dataset the scan found moved, copied or removed.
fn full_state(read: &Reader<'_>, known: &Known) -> Result<DatasetState> {
    Ok(read
        .dataset_by_id(&known.id)?
        .ok_or_else(|| Error::NotFound { what: format!("dataset {} in the catalog", known.id) })?
        .state)
}

fn dataset_files_absent(root: &Path, state: &DatasetState) -> bool {
    let Some(at) = &state.at else { return true };
    state.objects.keys().all(|name| absent_now(root, &object_key(at.project(), at.path(), name)))
}

// ---------------------------------------------------------------------------------------------------------
// The store's side

/// Manifests built for a scan, by path and checksum.
type Manifests = HashMap<(String, String), ObjectManifest>;

impl Store {
    /// `trove sync --scan`: records in the log what was done to the data folders outside trove (see the
    /// module documentation). One commit, or none when nothing changed.
    pub fn scan(&self, progress: &mut dyn FnMut(ScanProgress)) -> Result<ScanReport> {
        if let Some(reason) = self.log_only() {
            return Err(Error::Invalid(format!(
                "cannot scan the data folders in log-only mode ({reason}): a scan compares them with an up-to-date catalog; run it without --log-only"
            )));
        }
        let started = std::time::Instant::now();
        let root = self.scan_root("sync --scan")?;
        self.refresh()?;
        let (snapshot, cache) = self.read(|r| Ok((Snapshot::load(r)?, r.scan_cache()?)))?;
        let walked = walk(&root, progress)?;
        let mut sums = Sums::new(&root, cache);
        sums.hash_all(&walked, progress)?;
        let outcome = Classifier::new(&snapshot, &walked, &mut sums).run()?;
        let mut manifests = self.describe(&outcome, progress)?;
        progress(ScanProgress { phase: ScanPhase::Recording, done: 0, total: 0 });
        let mut report = ScanReport {
            folders: walked.folders.len() as u64,
            files: walked.folders.values().flatten().filter(|e| matches!(e.kind, EntryKind::File(_))).count() as u64,
            ..Default::default()
        };
        self.transact("scan", |read, plan| {
            let fresh;
            let (snap, outcome) = if Snapshot::version(read)? == snapshot.version {
                (&snapshot, outcome)
            } else {
                fresh = Snapshot::load(read)?;
                let outcome = Classifier::new(&fresh, &walked, &mut sums).run()?;
                (&fresh, outcome)
            };
            let _ = snap;
            self.record(read, plan, outcome, &mut manifests, &mut report)?;
            read.record_scan(sums.fresh.iter().map(|(k, c)| (k.as_str(), c)), sums.gone(&walked))?;
            report.committed = !plan.records.is_empty();
            Ok(())
        })?;
        report.files_hashed = sums.files_hashed;
        report.bytes_hashed = sums.bytes_hashed;
        report.millis = started.elapsed().as_millis() as u64;
        Ok(report)
    }

    /// The local folder a scan or watch works on.
    pub(crate) fn scan_root(&self, what: &str) -> Result<PathBuf> {
        self.storage.local_root().map(Path::to_path_buf).ok_or_else(|| {
            Error::Invalid(format!(
                "`trove {what}` reads the data folders of a store on a local disk; {} is not one",
                self.storage.url()
            ))
        })
    }

    /// Builds, on several threads, the manifests of what the comparison found new or changed.
    fn describe(&self, outcome: &Outcome, progress: &mut dyn FnMut(ScanProgress)) -> Result<Manifests> {
        let mut wanted: Vec<&Found> = Vec::new();
        for item in &outcome.items {
            match item {
                Item::Changed { object, .. } | Item::Added { object, .. } => wanted.push(object),
                Item::Dataset { extra, .. } => wanted.extend(extra),
                Item::Removed { .. } => {}
            }
        }
        if wanted.is_empty() {
            return Ok(Manifests::new());
        }
        let total = wanted.len() as u64;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()).clamp(1, 8);
        let parts = in_parallel(
            &wanted,
            threads,
            |found| Ok(Some(((found.key.clone(), found.checksum.clone()), self.manifest_of(found)?))),
            |_| 1,
            &mut |done| progress(ScanProgress { phase: ScanPhase::Describing, done, total }),
        )?;
        Ok(parts.into_iter().map(|(_, manifest)| manifest).collect())
    }

    /// The manifest of a file or folder found in place, built as `put` builds it. A file its format handler
    /// cannot read (a damaged Parquet file, say) is described as a plain file rather than failing the scan.
    fn manifest_of(&self, found: &Found) -> Result<ObjectManifest> {
        let root = self.scan_root("sync --scan")?;
        let path = root.join(&found.key);
        let described = (|| match &found.files {
            Some(files) => {
                let format = trove_formats::detect(&path)?;
                let format = if format.layout() == trove_formats::Layout::Folder { format } else { folder_format()? };
                self.folder_manifest(format, &path, files.clone())
            }
            None => {
                let (format, head) = trove_formats::detect_with_head(&path)?;
                let size = found.stats.first().map_or(0, |(_, s)| s.size);
                file_manifest(format, &path, &head, size, found.checksum.clone())
            }
        })();
        let mut manifest = match described {
            Ok(m) => m,
            Err(Error::Format(_)) => match &found.files {
                Some(files) => self.folder_manifest(folder_format()?, &path, files.clone())?,
                None => {
                    let size = found.stats.first().map_or(0, |(_, s)| s.size);
                    let raw = trove_formats::by_name("file")
                        .ok_or_else(|| Error::Invalid("the plain file format handler is missing".into()))?;
                    file_manifest(raw, &path, &[], size, found.checksum.clone())?
                }
            },
            Err(e) => return Err(e),
        };
        // The manifest must describe the bytes that were hashed, whatever the handler read meanwhile.
        manifest.checksum = found.checksum.clone();
        Ok(manifest)
    }

    /// Turns the comparison's findings into records, checking each against the disk once more.
    fn record(
        &self,
        read: &Reader<'_>,
        plan: &mut Plan,
        outcome: Outcome,
        manifests: &mut Manifests,
        report: &mut ScanReport,
    ) -> Result<()> {
        let root = self.scan_root("sync --scan")?;
        let edited = trove_model::time::rfc3339(trove_storage::writer::now_micros());
        let mut changes: BTreeMap<Uuid, DatasetChange> = BTreeMap::new();
        let mut new_records: Vec<DatasetChange> = Vec::new();
        let mut manifest = |found: &Found| -> Result<ObjectManifest> {
            let key = (found.key.clone(), found.checksum.clone());
            if let Some(m) = manifests.get(&key) {
                return Ok(m.clone());
            }
            let m = self.manifest_of(found)?;
            manifests.insert(key, m.clone());
            Ok(m)
        };
        let deferred = |report: &mut ScanReport, path: &str| {
            report.skipped.push(SkippedEntry {
                path: path.to_string(),
                reason: "changed while the scan ran: the next scan looks again".into(),
            });
        };
        for project in &outcome.projects {
            plan.ensure_project(read, project)?;
            report.projects.push(project.clone());
        }
        for item in outcome.items {
            match item {
                Item::Changed { id, at, object } => {
                    if !unchanged(&root, &object) {
                        deferred(report, &object.key);
                        continue;
                    }
                    let mut m = manifest(&object)?;
                    m.edited = Some(edited.clone());
                    let change = changes.entry(id).or_insert_with(|| DatasetChange { id, ..Default::default() });
                    change.objects.insert(object.name.clone(), Some(m));
                    report.objects_changed.push(reference(&at, &object.name));
                }
                Item::Added { id, at, object } => {
                    if !unchanged(&root, &object) {
                        deferred(report, &object.key);
                        continue;
                    }
                    let m = manifest(&object)?;
                    let change = changes.entry(id).or_insert_with(|| DatasetChange { id, ..Default::default() });
                    change.objects.insert(object.name.clone(), Some(m));
                    report.objects_added.push(reference(&at, &object.name));
                }
                Item::Dataset { how, at, key, matched, extra } => {
                    let still = matched.iter().chain(&extra).all(|f| unchanged(&root, f))
                        && match &how {
                            How::Moved(state) => state.objects.keys().all(|name| match &state.at {
                                Some(old) => absent_now(&root, &object_key(old.project(), old.path(), name)),
                                None => true,
                            }),
                            _ => true,
                        };
                    if !still {
                        deferred(report, &key);
                        continue;
                    }
                    plan.ensure_project(read, at.project())?;
                    let mut objects = BTreeMap::new();
                    for found in &extra {
                        objects.insert(found.name.clone(), Some(manifest(found)?));
                    }
                    match how {
                        How::Moved(state) => {
                            for found in &extra {
                                report.objects_added.push(reference(&at, &found.name));
                            }
                            report.moved.push(MovedDataset {
                                id: state.id,
                                from: state.at.as_ref().map(place).unwrap_or_default(),
                                to: place(&at),
                            });
                            let change = changes
                                .entry(state.id)
                                .or_insert_with(|| DatasetChange { id: state.id, ..Default::default() });
                            change.at = Some(at);
                            change.objects.extend(objects);
                        }
                        How::Copied(source, from) => {
                            let source = full_state(read, &source)?;
                            for found in &extra {
                                report.objects_added.push(reference(&at, &found.name));
                            }
                            let id = self.new_dataset_id(at.project(), at.path());
                            let mut all: BTreeMap<String, Option<ObjectManifest>> =
                                source.objects.iter().map(|(n, m)| (n.clone(), Some(m.clone()))).collect();
                            all.extend(objects);
                            report.copied.push(CopiedDataset {
                                id,
                                source: source.id,
                                from: place(&from),
                                to: place(&at),
                            });
                            new_records.push(DatasetChange {
                                id,
                                alive: Some(true),
                                at: Some(at),
                                kind: source.kind.clone(),
                                meta: source.meta.clone(),
                                tags: source.tags.iter().map(|t| (t.clone(), true)).collect(),
                                objects: all,
                                lineage: source.lineage.clone(),
                                origin: Some(
                                    json!({"id": source.id.to_string(), "ref": place(&from), "found_by": "scan"}),
                                ),
                                ..Default::default()
                            });
                        }
                        How::New => {
                            let id = self.new_dataset_id(at.project(), at.path());
                            report.created.push(CreatedDataset { id, path: place(&at), objects: objects.len() });
                            new_records.push(DatasetChange {
                                id,
                                alive: Some(true),
                                at: Some(at),
                                objects,
                                ..Default::default()
                            });
                        }
                    }
                }
                Item::Removed { state } => {
                    let state = full_state(read, &state)?;
                    if !dataset_files_absent(&root, &state) {
                        if let Some(at) = &state.at {
                            deferred(report, &place(at));
                        }
                        continue;
                    }
                    report
                        .removed
                        .push(RemovedDataset { id: state.id, path: state.at.as_ref().map(place).unwrap_or_default() });
                    plan.records.push(Record::Dataset(crate::write::removal(&state)));
                }
            }
        }
        plan.records.extend(changes.into_values().map(Record::Dataset));
        plan.records.extend(new_records.into_iter().map(Record::Dataset));
        report.missing = outcome.missing;
        report.skipped.extend(outcome.skipped);
        report.skipped.sort_by(|a, b| a.path.cmp(&b.path));
        report.skipped.dedup();
        Ok(())
    }
}

fn folder_format() -> Result<&'static dyn trove_formats::Format> {
    trove_formats::by_name("folder").ok_or_else(|| Error::Invalid("the folder format handler is missing".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use trove_model::Stamp;

    fn manifest(checksum: &str) -> ObjectManifest {
        ObjectManifest {
            format: "file".into(),
            size: 1,
            checksum: checksum.into(),
            media_type: None,
            summary: None,
            files: None,
            edited: None,
        }
    }

    fn dataset(id: u128, path: &str, objects: &[(&str, &str)]) -> DatasetState {
        DatasetState::from_change(
            DatasetChange {
                id: Uuid::from_u128(id),
                alive: Some(true),
                at: Some(Location("p".into(), DatasetPath::parse(path).unwrap())),
                objects: objects.iter().map(|(n, c)| (n.to_string(), Some(manifest(c)))).collect(),
                ..Default::default()
            },
            &Stamp::new(1, "w", 0),
        )
    }

    fn snapshot(states: Vec<DatasetState>) -> Snapshot {
        Snapshot {
            live: states
                .into_iter()
                .map(|s| serde_json::from_value::<Known>(serde_json::to_value(&s).unwrap()).unwrap())
                .map(|s| {
                    let at = s.at.clone().unwrap();
                    ((at.project().to_string(), at.path().as_str().to_string()), s)
                })
                .collect(),
            dead: HashMap::new(),
            projects: ["p".to_string()].into(),
            version: (0, 0),
        }
    }

    /// A walk of files by path; each file's checksum is given (as if cached).
    fn walked(files: &[(&str, &str)]) -> (Walked, Sums) {
        let mut walk = Walked { root: PathBuf::from("/nonexistent-scan-test-root"), ..Default::default() };
        let mut sums = Sums::new(&walk.root.clone(), HashMap::new());
        walk.folders.insert(String::new(), Vec::new());
        for (i, (path, checksum)) in files.iter().enumerate() {
            let stat = FileStat { size: 1, mtime_ns: 1, ino: i as u64 };
            sums.known.insert(path.to_string(), (stat, checksum.to_string()));
            let parts: Vec<&str> = path.split('/').collect();
            for depth in 0..parts.len() {
                let parent = parts[..depth].join("/");
                let kind = if depth + 1 == parts.len() { EntryKind::File(stat) } else { EntryKind::Dir };
                let entries = walk.folders.entry(parent).or_default();
                if !entries.iter().any(|e| e.name == parts[depth]) {
                    entries.push(Entry { name: parts[depth].to_string(), kind });
                    entries.sort_by(|a, b| a.name.cmp(&b.name));
                }
            }
        }
        (walk, sums)
    }

    fn summary(outcome: &Outcome) -> Vec<String> {
        outcome
            .items
            .iter()
            .map(|item| match item {
                Item::Changed { at, object, .. } => format!("changed {}", reference(at, &object.name)),
                Item::Added { at, object, .. } => format!("added {}", reference(at, &object.name)),
                Item::Dataset { how, at, extra, .. } => {
                    let extra: Vec<&str> = extra.iter().map(|f| f.name.as_str()).collect();
                    match how {
                        How::Moved(s) => format!("moved {} -> {} +{extra:?}", place(s.at.as_ref().unwrap()), place(at)),
                        How::Copied(s, from) => {
                            format!("copied {} {} -> {} +{extra:?}", s.id.as_u128(), place(from), place(at))
                        }
                        How::New => format!("new {} {extra:?}", place(at)),
                    }
                }
                Item::Removed { state } => format!("removed {}", place(state.at.as_ref().unwrap())),
            })
            .collect()
    }

    fn classify(states: Vec<DatasetState>, files: &[(&str, &str)]) -> Outcome {
        let snap = snapshot(states);
        let (walk, mut sums) = walked(files);
        Classifier::new(&snap, &walk, &mut sums).run().unwrap()
    }

    #[test]
    fn a_moved_tree_keeps_its_ids_and_extra_files_become_objects() {
        let outcome = classify(
            vec![dataset(1, "a", &[("v.csv", "h1")]), dataset(2, "a/c", &[("w.csv", "h2")])],
            &[("p/b/v.csv", "h1"), ("p/b/notes.txt", "h3"), ("p/b/c/w.csv", "h2")],
        );
        assert_eq!(summary(&outcome), ["moved p/a -> p/b +[\"notes.txt\"]", "moved p/a/c -> p/b/c +[]"]);
    }

    #[test]
    fn copies_removals_new_datasets_and_edits_are_told_apart() {
        let outcome = classify(
            vec![
                dataset(1, "a", &[("v.csv", "h1"), ("w.csv", "h2")]),
                dataset(2, "gone", &[("x.csv", "h4")]),
                dataset(3, "damaged", &[("y.csv", "h5"), ("z.csv", "h6")]),
            ],
            &[
                ("p/a/v.csv", "h1"),
                ("p/a/w.csv", "h2-edited"),
                ("p/a/new.txt", "h7"),
                ("p/copy/v.csv", "h1"),
                ("p/copy/w.csv", "h2"),
                ("p/fresh/r/data.bin", "h8"),
                ("p/damaged/y.csv", "h5"),
            ],
        );
        assert_eq!(
            summary(&outcome),
            [
                "added p/a:new.txt",
                "changed p/a:w.csv",
                "copied 1 p/a -> p/copy +[]",
                "new p/fresh/r [\"data.bin\"]",
                "removed p/gone"
            ]
        );
        assert_eq!(outcome.missing, ["p/damaged:z.csv"]);
    }

    #[test]
    fn an_exact_match_wins_over_a_superset_and_a_second_match_is_a_copy() {
        let outcome = classify(
            vec![dataset(1, "a", &[("v.csv", "h1")])],
            &[("p/a2/v.csv", "h1"), ("p/a2/more.txt", "h9"), ("p/b/v.csv", "h1")],
        );
        // `p/b` holds exactly a's files: it is the move; `p/a2` (a superset) is not a copy of it either,
        // since one of its files is none of a's objects: it is new.
        assert_eq!(summary(&outcome), ["new p/a2 [\"more.txt\", \"v.csv\"]", "moved p/a -> p/b +[]"]);
    }

    #[test]
    fn a_moved_child_identical_to_another_dataset_is_still_the_moved_child() {
        // `c` (moved along with `a`) holds the same file as `b`, which stayed; `b2` is a copy of `b`, met first.
        let outcome = classify(
            vec![
                dataset(1, "a", &[("v.csv", "h1")]),
                dataset(2, "a/c", &[("w.csv", "h2")]),
                dataset(3, "b", &[("w.csv", "h2")]),
            ],
            &[("p/b/w.csv", "h2"), ("p/b2/w.csv", "h2"), ("p/z/v.csv", "h1"), ("p/z/c/w.csv", "h2")],
        );
        assert_eq!(summary(&outcome), ["copied 3 p/b -> p/b2 +[]", "moved p/a -> p/z +[]", "moved p/a/c -> p/z/c +[]"]);
    }

    fn skipped(outcome: &Outcome) -> Vec<&str> {
        outcome.skipped.iter().map(|s| s.path.as_str()).collect()
    }

    #[test]
    fn content_alone_never_picks_among_identical_vanished_datasets() {
        // Three datasets alike: `h1` deleted by hand, `h2` moved to `h2moved`, `h3` untouched.
        let states =
            || vec![dataset(1, "h1", &[("a", "x")]), dataset(2, "h2", &[("a", "x")]), dataset(3, "h3", &[("a", "x")])];
        let files = [("p/h2moved/a", "x"), ("p/h3/a", "x")];
        let outcome = classify(states(), &files);
        assert_eq!(summary(&outcome), Vec::<String>::new());
        assert_eq!(skipped(&outcome), ["p/h2moved"]);
        assert!(outcome.skipped[0].reason.contains("p/h1, p/h2"), "{:?}", outcome.skipped);

        // The same with the file's identity remembered (its inode in the walk is 0): it is `h2`, moved.
        let snap = snapshot(states());
        let (walk, mut sums) = walked(&files);
        let row = CachedFile { size: 1, mtime_ns: 1, ino: 0, checksum: String::new() };
        sums.cache.insert("p/h2/a".into(), row.clone());
        // A copy's file has another inode: remembered for `h1`, it does not make `h2moved` the copy's.
        sums.cache.insert("p/h1/a".into(), CachedFile { ino: 7, ..row });
        let outcome = Classifier::new(&snap, &walk, &mut sums).run().unwrap();
        assert_eq!(summary(&outcome), ["moved p/h2 -> p/h2moved +[]", "removed p/h1"]);
        assert!(outcome.skipped.is_empty(), "{:?}", outcome.skipped);
    }

    #[test]
    fn identical_vanished_datasets_in_a_larger_folder_are_not_picked_by_content() {
        let states = vec![dataset(1, "h1", &[("a", "x")]), dataset(2, "h2", &[("a", "x")])];
        let outcome = classify(states, &[("p/moved/a", "x"), ("p/moved/new", "y")]);
        assert_eq!(summary(&outcome), Vec::<String>::new());
        assert_eq!(skipped(&outcome), ["p/moved"]);
    }

    #[test]
    fn the_name_a_folder_kept_tells_identical_datasets_apart() {
        let states = vec![dataset(1, "a/c", &[("f", "x")]), dataset(2, "b/d", &[("f", "x")])];
        let outcome = classify(states, &[("p/z/c/f", "x")]);
        assert_eq!(summary(&outcome), ["moved p/a/c -> p/z/c +[]", "removed p/b/d"]);
    }

    #[test]
    fn datasets_in_hidden_folders_are_left_as_they_are() {
        let outcome = classify(vec![dataset(1, ".hidden", &[("a", "x")]), dataset(2, "d/.h", &[("a", "y")])], &[]);
        assert_eq!(summary(&outcome), Vec::<String>::new());
        assert!(outcome.missing.is_empty());
    }

    #[test]
    fn a_folder_inside_a_dataset_is_a_folder_object_unless_a_dataset_lies_below() {
        let outcome = classify(
            vec![dataset(1, "a", &[("v.csv", "h1")]), dataset(2, "gone", &[("w.csv", "h2")])],
            &[("p/a/v.csv", "h1"), ("p/a/frames/0.bin", "h3"), ("p/a/sub/deeper/w.csv", "h2")],
        );
        assert_eq!(summary(&outcome), ["added p/a:frames", "moved p/gone -> p/a/sub/deeper +[]"]);
    }

    #[test]
    fn names_on_disk_are_the_names_themselves() {
        assert_eq!(trove_name("v.csv", false).unwrap(), "v.csv");
        assert_eq!(trove_name("x~y#1", false).unwrap(), "x~y#1");
        assert_eq!(trove_name("café 50%", false).unwrap(), "café 50%");
        assert_eq!(trove_name("x%7Ey", false).unwrap(), "x%7Ey");
        assert!(trove_name("a:b", false).unwrap_err().contains("not a valid trove name"));
        assert!(trove_name("trove.toml", true).is_err());
    }

    #[test]
    fn racy_files_are_not_cached() {
        let stat = FileStat { size: 1, mtime_ns: 5_000_000_123, ino: 1 };
        assert!(!settled(&stat, 5_010_000_000));
        assert!(settled(&stat, 5_100_000_000));
        let coarse = FileStat { mtime_ns: 5_000_000_000, ..stat };
        assert!(!settled(&coarse, 6_000_000_000));
    }
}
