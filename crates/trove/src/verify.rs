//! `trove verify`: every object's bytes hashed again and compared with the manifest the log recorded.
//!
//! The objects in scope are listed from the (caught-up) catalog, and their files looked at (sizes, and the
//! listing of each folder object's folder) on all cores. Then everything is hashed with BLAKE3 by one worker
//! per core: small files whole, one per worker, and big files cut into the subtrees of BLAKE3's own hash
//! tree, each read (positioned reads, in parallel) and hashed by whichever worker is free, then joined into
//! the file's hash. So many small files keep every core busy, and so does one 10 GB file, with no reader
//! thread in the way; on a parallel filesystem the reads of one file also go out side by side.
//!
//! A folder object (a Zarr array, a folder of files) is checked file by file; files missing from it or that
//! its manifest does not list are damage too, and its checksum is recomputed from what was found.
//!
//! Damage found in an object that another writer replaced, moved or removed while it was being read is not
//! damage: such objects are looked up again once the catalog has caught up, and checked again as they are.

use std::collections::BTreeMap;
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use blake3::hazmat::{ChainingValue, HasherExt, Mode, left_subtree_len, merge_subtrees_non_root, merge_subtrees_root};
use serde::Serialize;
use trove_model::record::folder_listing;
use trove_model::{DatasetState, FileEntry, ObjectManifest, Ref};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::view::object_key;
use trove_storage::Storage;

/// The size of the pieces a big file is hashed in: a power of two, so that every piece is a whole subtree
/// of the BLAKE3 tree. Files bigger than one piece are split.
const PIECE: u64 = 4 << 20;
/// How often the progress callback is called while hashing goes on.
const PROGRESS_EVERY: Duration = Duration::from_millis(100);

/// Which objects `verify` checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifyScope {
    /// Every object of every live dataset in the store.
    All,
    /// The objects of a project, of a dataset and every dataset below it (or of the datasets below an
    /// implicit folder), or one object (`PROJECT/PATH:OBJECT`).
    Ref(Ref),
}

/// What is wrong with an object, or with one file of a folder object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DamageKind {
    /// The object's file (or folder) is not there.
    Missing,
    /// The file's size is not the manifest's (found before hashing; the checksum found is reported too).
    SizeMismatch,
    /// Same size, other bytes: the hash caught it.
    ChecksumMismatch,
    /// A file the folder object's manifest lists is not in the folder.
    FileMissing,
    /// A file in the folder that the manifest does not list.
    FileExtra,
    /// A file of the folder whose size or checksum is not the manifest's.
    FileChanged,
    /// The file or folder could not be read (an I/O error, a folder where a file should be, ...).
    Unreadable,
}

impl DamageKind {
    /// The word used in reports.
    pub fn word(self) -> &'static str {
        match self {
            DamageKind::Missing => "missing",
            DamageKind::SizeMismatch => "size mismatch",
            DamageKind::ChecksumMismatch => "checksum mismatch",
            DamageKind::FileMissing => "file missing",
            DamageKind::FileExtra => "extra file",
            DamageKind::FileChanged => "file changed",
            DamageKind::Unreadable => "unreadable",
        }
    }
}

/// One thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Damage {
    pub kind: DamageKind,
    /// For a folder object: the file concerned, by its path inside the folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The absolute path of the file (or folder) concerned.
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected_size: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found_size: Option<u64>,
    /// The checksum the manifest records (`blake3:<hex>`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expected: Option<String>,
    /// The checksum of the bytes found.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub found: Option<String>,
    /// For [`DamageKind::Unreadable`]: why.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl std::fmt::Display for Damage {
    /// In plain words, without the path: `checksum mismatch (expected blake3:…, found blake3:…)`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let file = self.file.as_deref().unwrap_or("");
        let expected = self.expected.as_deref().unwrap_or("?");
        let found = self.found.as_deref().unwrap_or("?");
        let bytes = |n: Option<u64>| n.map_or_else(|| "?".to_string(), |n| format!("{n} bytes"));
        let sizes = || {
            format!(
                "size mismatch (expected {}, {expected}; found {}, {found})",
                bytes(self.expected_size),
                bytes(self.found_size)
            )
        };
        match self.kind {
            DamageKind::Missing => write!(f, "missing (expected {}, {expected})", bytes(self.expected_size)),
            DamageKind::SizeMismatch => f.write_str(&sizes()),
            DamageKind::ChecksumMismatch => write!(f, "checksum mismatch (expected {expected}, found {found})"),
            DamageKind::FileMissing => {
                write!(f, "file {file} missing (expected {}, {expected})", bytes(self.expected_size))
            }
            DamageKind::FileExtra => {
                write!(f, "extra file {file}, not in the manifest ({}, {found})", bytes(self.found_size))
            }
            DamageKind::FileChanged if self.expected_size != self.found_size => {
                write!(f, "file {file} changed: {}", sizes())
            }
            DamageKind::FileChanged => {
                write!(f, "file {file} changed: checksum mismatch (expected {expected}, found {found})")
            }
            DamageKind::Unreadable => {
                let what = if file.is_empty() { String::new() } else { format!("file {file} ") };
                write!(f, "{what}unreadable ({})", self.error.as_deref().unwrap_or("unknown error"))
            }
        }
    }
}

/// An object with something wrong, and everything wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedObject {
    /// `PROJECT/PATH:OBJECT`.
    pub reference: String,
    /// The dataset's id.
    pub id: Uuid,
    /// The object's name.
    pub object: String,
    pub format: String,
    /// The absolute path of the object's file or folder.
    pub path: String,
    pub folder: bool,
    /// The object's checksum in its manifest.
    pub expected: String,
    /// The object's checksum computed from what was found (for a folder: from the files found, extra ones
    /// included); `None` when nothing could be read.
    pub found: Option<String>,
    pub damage: Vec<Damage>,
}

/// What `verify` checked and found.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct VerifyReport {
    /// The damaged objects, by reference.
    pub damaged: Vec<DamagedObject>,
    /// Objects checked.
    pub objects: u64,
    /// Files hashed (a folder object has many).
    pub files: u64,
    /// Bytes hashed.
    pub bytes: u64,
    /// Wall-clock time of the whole check.
    pub seconds: f64,
}

impl VerifyReport {
    /// True when every object's bytes match its manifest.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// One object to check: where its bytes are and what the log says they are.
#[derive(Debug, Clone)]
struct ObjectJob {
    reference: String,
    id: Uuid,
    name: String,
    manifest: ObjectManifest,
    /// The local path, or on an object store the object's URL (for reports).
    path: PathBuf,
    /// The storage key.
    key: String,
}

/// What is at an object's path before anything is hashed.
enum Survey {
    /// A file, of this size.
    File(u64),
    /// A folder: every file in it, by its path inside it, with its size.
    Folder(BTreeMap<String, u64>),
    Missing,
    Unreadable(String),
}

/// One file to hash: an object's own file, or a file in (or expected in) a folder object.
struct FileJob {
    object: usize,
    /// The file's path inside its folder object; `None` for a single-file object.
    relative: Option<String>,
    path: PathBuf,
    /// The file's storage key (what an object store reads).
    key: String,
    /// The size seen when the object was surveyed (the manifest's for a listed file that was not there).
    size: u64,
}

/// A unit of work: a whole (small) file, or one piece of a big one.
#[derive(Debug, Clone, Copy)]
struct Task {
    file: usize,
    /// `None`: the whole file. `Some((offset, len))`: one BLAKE3 subtree of it.
    piece: Option<(u64, u64)>,
}

impl Task {
    fn len(&self, files: &[FileJob]) -> u64 {
        self.piece.map_or(files[self.file].size, |(_, len)| len)
    }
}

/// What reading one file found.
#[derive(Debug, Clone)]
enum Found {
    Missing,
    Bytes { size: u64, checksum: String },
    Unreadable(String),
}

/// What reading one piece of a big file found.
enum PieceFound {
    Hashed(ChainingValue),
    /// The file is not the size it was surveyed at (it is being written to, or was replaced).
    Resized,
    Missing,
    Unreadable(String),
}

enum Outcome {
    Whole(Found),
    Piece(PieceFound),
}

impl Store {
    /// Hashes the objects in `scope` again and compares them with their manifests. `progress` is called
    /// now and then, from the calling thread, with the bytes hashed so far and the bytes to hash.
    ///
    /// ```
    /// # use trove::{FileImport, Store, VerifyScope, DatasetEdit};
    /// # use trove_model::DatasetPath;
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = Store::init(dir.path()).unwrap();
    /// let file = dir.path().join("v.txt");
    /// std::fs::write(&file, "hello").unwrap();
    /// let path = DatasetPath::parse("r1").unwrap();
    /// store.put("lab", &path, &DatasetEdit::default(), &[FileImport::new(&file).unwrap()]).unwrap();
    /// let report = store.verify(&VerifyScope::All, &mut |_, _| {}).unwrap();
    /// assert_eq!((report.objects, report.bytes), (1, 5));
    /// assert!(report.is_clean());
    /// ```
    pub fn verify(&self, scope: &VerifyScope, progress: &mut dyn FnMut(u64, u64)) -> Result<VerifyReport> {
        let started = Instant::now();
        self.refresh()?;
        let datasets = self.read(|read| datasets_in_scope(read, scope))?;
        let mut jobs = Vec::new();
        for (state, only) in &datasets {
            for name in state.objects.keys().filter(|name| only.as_ref().is_none_or(|o| o == *name)) {
                jobs.push(self.object_job(state, name)?);
            }
        }
        drop(datasets);
        let mut report = VerifyReport { objects: jobs.len() as u64, ..Default::default() };
        let damaged = check_objects(&self.remote(), &jobs, &mut report, progress);
        report.damaged = if damaged.is_empty() { damaged } else { self.confirm(damaged, &mut report)? };
        report.damaged.sort_by(|a, b| a.reference.cmp(&b.reference));
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The storage to read objects through when they are not on a local disk.
    fn remote(&self) -> Option<&Storage> {
        self.storage.local_root().is_none().then_some(&*self.storage)
    }

    fn object_job(&self, state: &DatasetState, name: &str) -> Result<ObjectJob> {
        let at = state.at.as_ref().ok_or_else(|| Error::Invalid(format!("dataset {} has no location", state.id)))?;
        let manifest = state
            .objects
            .get(name)
            .ok_or_else(|| Error::NotFound { what: format!("object {}/{}:{name}", at.project(), at.path()) })?;
        let key = object_key(at.project(), at.path(), name);
        let path = self.storage.local_path(&key).unwrap_or_else(|| PathBuf::from(self.storage.locate(&key)));
        Ok(ObjectJob {
            reference: format!("{}/{}:{name}", at.project(), at.path()),
            id: state.id,
            name: name.to_string(),
            manifest: manifest.clone(),
            path,
            key,
        })
    }

    /// Damage found in an object that another writer replaced, moved or removed meanwhile is not damage: the
    /// catalog catches up, objects that are gone are dropped and objects that changed are checked again as
    /// they are now.
    fn confirm(&self, damaged: Vec<DamagedObject>, report: &mut VerifyReport) -> Result<Vec<DamagedObject>> {
        self.refresh()?;
        let mut confirmed = Vec::new();
        let mut again = Vec::new();
        for object in damaged {
            let now = self.read(|read| Ok(read.dataset_by_id(&object.id)?))?.map(|row| row.state);
            let Some(state) = now.filter(|s| s.is_alive() && s.objects.contains_key(&object.object)) else {
                continue;
            };
            let job = self.object_job(&state, &object.object)?;
            if job.manifest.checksum == object.expected && job.path.display().to_string() == object.path {
                confirmed.push(object);
            } else {
                again.push(job);
            }
        }
        if !again.is_empty() {
            let mut recheck = VerifyReport::default();
            confirmed.extend(check_objects(&self.remote(), &again, &mut recheck, &mut |_, _| {}));
            report.files += recheck.files;
            report.bytes += recheck.bytes;
        }
        Ok(confirmed)
    }
}

/// The live datasets a scope covers, in path order, each with the one object to check when the scope names
/// one (`None`: all of them).
pub(crate) fn datasets_in_scope(
    read: &trove_catalog::Reader<'_>,
    scope: &VerifyScope,
) -> Result<Vec<(DatasetState, Option<String>)>> {
    let mut datasets: Vec<(DatasetState, Option<String>)> = Vec::new();
    let below = |project: &str, prefix: &str, datasets: &mut Vec<(DatasetState, Option<String>)>| -> Result<()> {
        read.descendants(project, prefix, |row| {
            datasets.push((row.state, None));
            Ok(())
        })?;
        Ok(())
    };
    let r = match scope {
        VerifyScope::All => {
            for project in read.projects()? {
                below(&project.name, "", &mut datasets)?;
            }
            return Ok(datasets);
        }
        VerifyScope::Ref(r) => r,
    };
    if read.project(&r.project)?.is_none() {
        return Err(Error::NotFound { what: format!("project {}", r.project) });
    }
    let Some(path) = &r.path else {
        below(&r.project, "", &mut datasets)?;
        return Ok(datasets);
    };
    let own = read.dataset_at(&r.project, path.as_str())?;
    if let Some(object) = &r.object {
        let row = own.ok_or_else(|| Error::NotFound { what: format!("dataset {}", r.without_object()) })?;
        if !row.state.objects.contains_key(object) {
            return Err(Error::NotFound { what: format!("object {r}") });
        }
        return Ok(vec![(row.state, Some(object.clone()))]);
    }
    datasets.extend(own.map(|row| (row.state, None)));
    below(&r.project, path.as_str(), &mut datasets)?;
    if datasets.is_empty() {
        return Err(Error::NotFound { what: format!("dataset {r}") });
    }
    Ok(datasets)
}

/// Checks objects, returns the damaged ones and adds the files and bytes hashed to `report`.
fn check_objects(
    remote: &Option<&Storage>,
    jobs: &[ObjectJob],
    report: &mut VerifyReport,
    progress: &mut dyn FnMut(u64, u64),
) -> Vec<DamagedObject> {
    let surveys = in_parallel(
        jobs,
        |job, _| match remote {
            Some(storage) => survey_stored(storage, job),
            None => survey(job),
        },
        &mut || {},
    );

    let mut files: Vec<FileJob> = Vec::new();
    for (i, (job, survey)) in jobs.iter().zip(&surveys).enumerate() {
        let file = |relative: Option<&String>, size: u64| FileJob {
            object: i,
            relative: relative.cloned(),
            path: relative.map_or_else(|| job.path.clone(), |r| job.path.join(r)),
            key: relative.map_or_else(|| job.key.clone(), |r| format!("{}/{r}", job.key)),
            size,
        };
        match (survey, &job.manifest.files) {
            (Survey::File(size), None) => files.push(file(None, *size)),
            (Survey::Folder(found), Some(listed)) => {
                for (relative, entry) in listed {
                    files.push(file(Some(relative), found.get(relative).copied().unwrap_or(entry.size)));
                }
                for (relative, &size) in found.iter().filter(|(r, _)| !listed.contains_key(*r)) {
                    files.push(file(Some(relative), size));
                }
            }
            _ => {}
        }
    }
    // Big files become pieces; the biggest work is handed out first, so that small files fill the gaps.
    let mut tasks: Vec<Task> = Vec::new();
    for (f, file) in files.iter().enumerate() {
        // An object store is read in order, one request an object.
        if file.size > PIECE && remote.is_none() {
            let mut pieces = Vec::new();
            subtrees(0, file.size, &mut pieces);
            tasks.extend(pieces.into_iter().map(|piece| Task { file: f, piece: Some(piece) }));
        } else {
            tasks.push(Task { file: f, piece: None });
        }
    }
    tasks.sort_by_key(|t| std::cmp::Reverse(t.len(&files)));
    let total: u64 = tasks.iter().map(|t| t.len(&files)).sum();
    let done = AtomicU64::new(0);
    let outcomes = in_parallel(
        &tasks,
        |task, buffer| {
            let file = &files[task.file];
            match task.piece {
                None if remote.is_some() => Outcome::Whole(hash_stored(remote, &file.key, &done)),
                None => Outcome::Whole(hash_whole(&file.path, buffer, &done)),
                Some((offset, len)) => Outcome::Piece(hash_piece(&file.path, file.size, offset, len, buffer, &done)),
            }
        },
        &mut || progress(done.load(Ordering::Relaxed).min(total), total),
    );
    progress(done.load(Ordering::Relaxed).min(total), total);

    let found = join_pieces(&files, &tasks, outcomes, &done);
    let mut by_object: Vec<Vec<(Option<String>, Found)>> = vec![Vec::new(); jobs.len()];
    for (file, found) in files.into_iter().zip(found) {
        if let Found::Bytes { size, .. } = &found {
            report.files += 1;
            report.bytes += size;
        }
        by_object[file.object].push((file.relative, found));
    }
    jobs.iter()
        .zip(surveys)
        .zip(by_object)
        .filter_map(|((job, survey), found)| match (&job.manifest.files, survey) {
            (None, Survey::File(_)) => judge_file(job, found.into_iter().next().map_or(Found::Missing, |(_, f)| f)),
            (Some(listed), Survey::Folder(_)) => judge_folder(job, listed, found),
            (_, Survey::Missing) => whole_object_damage(job, DamageKind::Missing, None),
            (_, Survey::Unreadable(error)) => whole_object_damage(job, DamageKind::Unreadable, Some(error)),
            (None, Survey::Folder(_)) => {
                whole_object_damage(job, DamageKind::Unreadable, Some("a folder is where the file should be".into()))
            }
            (Some(_), Survey::File(_)) => {
                whole_object_damage(job, DamageKind::Unreadable, Some("a file is where the folder should be".into()))
            }
        })
        .collect()
}

/// What is at an object's path: a file and its size, or a folder and its files.
fn survey(job: &ObjectJob) -> Survey {
    let metadata = match std::fs::metadata(&job.path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Survey::Missing,
        Err(e) => return Survey::Unreadable(e.to_string()),
    };
    if metadata.is_file() {
        return Survey::File(metadata.len());
    }
    if !metadata.is_dir() {
        return Survey::Unreadable("neither a file nor a folder".into());
    }
    match trove_formats::folder::files(&job.path) {
        Ok(files) => Survey::Folder(files.into_iter().map(|f| (f.relative, f.size)).collect()),
        Err(e) => Survey::Unreadable(e.to_string()),
    }
}

/// What is at an object's key in an object store: an object and its size, or the objects below it (a folder
/// object's files).
fn survey_stored(storage: &Storage, job: &ObjectJob) -> Survey {
    match storage.head(&job.key) {
        Ok(Some(entry)) => return Survey::File(entry.size),
        Ok(None) => {}
        Err(e) => return Survey::Unreadable(e.to_string()),
    }
    match storage.list(&job.key) {
        Ok(entries) if entries.is_empty() => Survey::Missing,
        Ok(entries) => Survey::Folder(
            entries
                .into_iter()
                .filter_map(|e| Some((e.key.strip_prefix(&format!("{}/", job.key))?.to_string(), e.size)))
                .collect(),
        ),
        Err(e) => Survey::Unreadable(e.to_string()),
    }
}

/// Hashes a stored object as it streams in; `done` counts its bytes.
fn hash_stored(remote: &Option<&Storage>, key: &str, done: &AtomicU64) -> Found {
    let Some(storage) = remote else { return Found::Unreadable("no storage to read from".into()) };
    let mut counter = CountingSink(done);
    match storage.get_stream(key, &mut counter) {
        Ok((size, hash)) => Found::Bytes { size, checksum: checksum(hash) },
        Err(e) if e.is_not_found() => Found::Missing,
        Err(e) => Found::Unreadable(e.to_string()),
    }
}

/// A writer that keeps nothing and counts what passes.
struct CountingSink<'a>(&'a AtomicU64);

impl std::io::Write for CountingSink<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// The pieces of `[offset, offset + len)`, a subtree of the BLAKE3 tree, in order: itself when it is at most
/// [`PIECE`] long, else its left subtree's pieces (the largest power-of-two number of chunks shorter than it)
/// and then its right subtree's.
fn subtrees(offset: u64, len: u64, out: &mut Vec<(u64, u64)>) {
    if len <= PIECE {
        out.push((offset, len));
        return;
    }
    let left = left_subtree_len(len);
    subtrees(offset, left, out);
    subtrees(offset + left, len - left, out);
}

/// The chaining value of a subtree `len` bytes long from the chaining values of its pieces, in order.
fn join_subtree(len: u64, pieces: &mut impl Iterator<Item = ChainingValue>) -> Option<ChainingValue> {
    if len <= PIECE {
        return pieces.next();
    }
    let left = left_subtree_len(len);
    let l = join_subtree(left, pieces)?;
    let r = join_subtree(len - left, pieces)?;
    Some(merge_subtrees_non_root(&l, &r, Mode::Hash))
}

/// What was found of each file: the whole-file result, or the hash joined from its pieces. A file whose
/// pieces did not all read the size it was surveyed at changed meanwhile: it is hashed again, whole.
fn join_pieces(files: &[FileJob], tasks: &[Task], outcomes: Vec<Outcome>, done: &AtomicU64) -> Vec<Found> {
    let mut whole: Vec<Option<Found>> = vec![None; files.len()];
    let mut pieces: Vec<Vec<(u64, PieceFound)>> = (0..files.len()).map(|_| Vec::new()).collect();
    for (task, outcome) in tasks.iter().zip(outcomes) {
        match outcome {
            Outcome::Whole(found) => whole[task.file] = Some(found),
            Outcome::Piece(found) => pieces[task.file].push((task.piece.map_or(0, |(offset, _)| offset), found)),
        }
    }
    let mut buffer = Vec::new();
    files
        .iter()
        .zip(whole)
        .zip(pieces)
        .map(|((file, whole), mut pieces)| {
            if let Some(found) = whole {
                return found;
            }
            pieces.sort_by_key(|(offset, _)| *offset);
            let mut cvs = Vec::with_capacity(pieces.len());
            for (_, piece) in pieces {
                match piece {
                    PieceFound::Hashed(cv) => cvs.push(cv),
                    PieceFound::Missing => return Found::Missing,
                    PieceFound::Unreadable(error) => return Found::Unreadable(error),
                    PieceFound::Resized => return hash_whole(&file.path, &mut buffer, done),
                }
            }
            let left = left_subtree_len(file.size);
            let mut cvs = cvs.into_iter();
            match (join_subtree(left, &mut cvs), join_subtree(file.size - left, &mut cvs)) {
                (Some(l), Some(r)) => {
                    Found::Bytes { size: file.size, checksum: checksum(merge_subtrees_root(&l, &r, Mode::Hash)) }
                }
                // Fewer pieces than the file's tree has: cannot happen, as the pieces came from that tree.
                _ => hash_whole(&file.path, &mut buffer, done),
            }
        })
        .collect()
}

fn checksum(hash: blake3::Hash) -> String {
    format!("blake3:{}", hash.to_hex())
}

fn damage(kind: DamageKind, path: &Path) -> Damage {
    Damage {
        kind,
        file: None,
        path: path.display().to_string(),
        expected_size: None,
        found_size: None,
        expected: None,
        found: None,
        error: None,
    }
}

fn damaged_object(job: &ObjectJob, found: Option<String>, damage: Vec<Damage>) -> DamagedObject {
    DamagedObject {
        reference: job.reference.clone(),
        id: job.id,
        object: job.name.clone(),
        format: job.manifest.format.clone(),
        path: job.path.display().to_string(),
        folder: job.manifest.is_folder(),
        expected: job.manifest.checksum.clone(),
        found,
        damage,
    }
}

/// The object's file or folder as a whole is missing or cannot be read.
fn whole_object_damage(job: &ObjectJob, kind: DamageKind, error: Option<String>) -> Option<DamagedObject> {
    let mut d = damage(kind, &job.path);
    d.expected_size = Some(job.manifest.size);
    d.expected = Some(job.manifest.checksum.clone());
    d.error = error;
    Some(damaged_object(job, None, vec![d]))
}

/// A single-file object against its manifest: sizes first, then checksums.
fn judge_file(job: &ObjectJob, found: Found) -> Option<DamagedObject> {
    let m = &job.manifest;
    match found {
        Found::Missing => whole_object_damage(job, DamageKind::Missing, None),
        Found::Unreadable(error) => whole_object_damage(job, DamageKind::Unreadable, Some(error)),
        Found::Bytes { size, checksum } => {
            if size == m.size && checksum == m.checksum {
                return None;
            }
            let kind = if size != m.size { DamageKind::SizeMismatch } else { DamageKind::ChecksumMismatch };
            let mut d = damage(kind, &job.path);
            d.expected_size = Some(m.size);
            d.expected = Some(m.checksum.clone());
            d.found_size = Some(size);
            d.found = Some(checksum.clone());
            Some(damaged_object(job, Some(checksum), vec![d]))
        }
    }
}

/// A folder object against its manifest: each listed file, the files it does not list, and the checksum of
/// the listing of what was found.
fn judge_folder(
    job: &ObjectJob,
    listed: &BTreeMap<String, FileEntry>,
    found: Vec<(Option<String>, Found)>,
) -> Option<DamagedObject> {
    let mut damages = Vec::new();
    let mut seen: BTreeMap<String, FileEntry> = BTreeMap::new();
    for (relative, found) in found {
        let relative = relative.unwrap_or_default();
        let mut d = damage(DamageKind::FileChanged, &job.path.join(&relative));
        d.file = Some(relative.clone());
        match listed.get(&relative) {
            Some(entry) => {
                d.expected_size = Some(entry.size);
                d.expected = Some(entry.checksum.clone());
            }
            None => d.kind = DamageKind::FileExtra,
        }
        match found {
            Found::Missing => d.kind = DamageKind::FileMissing,
            Found::Unreadable(error) => {
                d.kind = DamageKind::Unreadable;
                d.error = Some(error);
            }
            Found::Bytes { size, checksum } => {
                d.found_size = Some(size);
                d.found = Some(checksum.clone());
                seen.insert(relative.clone(), FileEntry { size, checksum });
                if d.kind == DamageKind::FileChanged && d.expected_size == d.found_size && d.expected == d.found {
                    continue;
                }
            }
        }
        damages.push(d);
    }
    let m = &job.manifest;
    let found_checksum = checksum(blake3::hash(folder_listing(&seen).as_bytes()));
    if damages.is_empty() && found_checksum != m.checksum {
        // Every file is as listed, yet the listing does not hash to the object's checksum: the manifest
        // disagrees with itself.
        let mut d = damage(DamageKind::ChecksumMismatch, &job.path);
        d.expected = Some(m.checksum.clone());
        d.found = Some(found_checksum.clone());
        damages.push(d);
    }
    if damages.is_empty() {
        return None;
    }
    damages.sort_by(|a, b| a.file.cmp(&b.file));
    Some(damaged_object(job, Some(found_checksum), damages))
}

/// Hashes a whole file, reading it in order; `done` counts the bytes as they are hashed.
fn hash_whole(path: &Path, buffer: &mut Vec<u8>, done: &AtomicU64) -> Found {
    let unreadable = |e: std::io::Error| Found::Unreadable(e.to_string());
    let mut file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Found::Missing,
        Err(e) => return unreadable(e),
    };
    match file.metadata() {
        Ok(m) if !m.is_file() => return Found::Unreadable("not a regular file".into()),
        Ok(_) => {}
        Err(e) => return unreadable(e),
    }
    buffer.resize(PIECE as usize, 0);
    let mut hasher = blake3::Hasher::new();
    let mut size = 0u64;
    loop {
        let n = match file.read(buffer) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return unreadable(e),
        };
        hasher.update(&buffer[..n]);
        size += n as u64;
        done.fetch_add(n as u64, Ordering::Relaxed);
    }
    Found::Bytes { size, checksum: checksum(hasher.finalize()) }
}

/// Hashes the piece `[offset, offset + len)` of a file surveyed at `size` bytes: the chaining value of that
/// subtree. The last piece also checks that the file did not grow.
fn hash_piece(path: &Path, size: u64, offset: u64, len: u64, buffer: &mut Vec<u8>, done: &AtomicU64) -> PieceFound {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return PieceFound::Missing,
        Err(e) => return PieceFound::Unreadable(e.to_string()),
    };
    let last = offset + len == size;
    // One byte more on the last piece: reading it means the file grew.
    buffer.resize(len as usize + usize::from(last), 0);
    let mut filled = 0;
    while filled < buffer.len() {
        match file.read_at(&mut buffer[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return PieceFound::Unreadable(e.to_string()),
        }
    }
    if filled as u64 != len {
        return PieceFound::Resized;
    }
    let mut hasher = blake3::Hasher::new();
    hasher.set_input_offset(offset);
    hasher.update(&buffer[..filled]);
    done.fetch_add(len, Ordering::Relaxed);
    PieceFound::Hashed(hasher.finalize_non_root())
}

/// Runs `work` over `items` on one worker per core (each with its own scratch buffer) and returns the
/// results in the items' order. `tick` runs on the calling thread every [`PROGRESS_EVERY`] meanwhile.
pub(crate) fn in_parallel<T: Sync, R: Send>(
    items: &[T],
    work: impl Fn(&T, &mut Vec<u8>) -> R + Sync,
    tick: &mut dyn FnMut(),
) -> Vec<R> {
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get()).min(items.len());
    let next = AtomicUsize::new(0);
    let mut results: Vec<Option<R>> = (0..items.len()).map(|_| None).collect();
    std::thread::scope(|scope| {
        let (tx, rx) = mpsc::channel::<(usize, R)>();
        for _ in 0..workers {
            let (tx, next, work) = (tx.clone(), &next, &work);
            scope.spawn(move || {
                let mut buffer = Vec::new();
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if tx.send((i, work(item, &mut buffer))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        let mut last_tick = Instant::now();
        loop {
            match rx.recv_timeout(PROGRESS_EVERY) {
                Ok((i, r)) => results[i] = Some(r),
                Err(mpsc::RecvTimeoutError::Timeout) => {}
                Err(mpsc::RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= PROGRESS_EVERY {
                tick();
                last_tick = Instant::now();
            }
        }
    });
    // Every index below `items.len()` was taken by exactly one worker, which sent its result (a worker
    // that panicked has already propagated its panic out of the scope).
    results.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DatasetEdit, FileImport};
    use trove_model::DatasetPath;

    /// A single-file object job for `path`, whose manifest says `content`.
    fn job_for(path: &Path, content: &[u8]) -> ObjectJob {
        ObjectJob {
            reference: "lab/r:big".into(),
            id: Uuid::nil(),
            name: "big".into(),
            manifest: ObjectManifest {
                format: "file".into(),
                size: content.len() as u64,
                checksum: checksum(blake3::hash(content)),
                media_type: None,
                summary: None,
                files: None,
                edited: None,
            },
            path: path.to_path_buf(),
            key: "lab/r/big".into(),
        }
    }

    #[test]
    fn big_files_hashed_in_pieces_give_blake3_hashes() {
        let dir = tempfile::tempdir().unwrap();
        let piece = PIECE as usize;
        // Just over one piece, whole pieces, and lengths off the chunk and piece boundaries.
        for (i, len) in [piece + 1, 2 * piece, 3 * piece + 12_345, 5 * piece - 1000].into_iter().enumerate() {
            let content: Vec<u8> = (0..len).map(|b| (b * 31 % 253) as u8).collect();
            let path = dir.path().join(format!("big{i}"));
            std::fs::write(&path, &content).unwrap();
            let mut report = VerifyReport::default();
            let mut calls = 0;
            let damaged = check_objects(&None, &[job_for(&path, &content)], &mut report, &mut |done, total| {
                calls += 1;
                assert!(done <= total);
            });
            assert!(damaged.is_empty(), "{len} bytes: {damaged:?}");
            assert_eq!((report.files, report.bytes), (1, len as u64));
            assert!(calls >= 1);
            // One flipped byte in a middle piece changes the joined hash.
            let mut flipped = content.clone();
            flipped[len / 2] ^= 1;
            std::fs::write(&path, &flipped).unwrap();
            let damaged = check_objects(&None, &[job_for(&path, &content)], &mut report, &mut |_, _| {});
            assert_eq!(damaged.len(), 1);
            assert_eq!(damaged[0].damage[0].kind, DamageKind::ChecksumMismatch);
            assert_eq!(damaged[0].found, Some(checksum(blake3::hash(&flipped))));
        }
    }

    #[test]
    fn a_file_that_changes_size_while_read_is_hashed_again_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("growing");
        let content = vec![7u8; 3 * PIECE as usize];
        std::fs::write(&path, &content).unwrap();
        let files = [FileJob { object: 0, relative: None, path: path.clone(), key: String::new(), size: 2 * PIECE }];
        let mut pieces = Vec::new();
        subtrees(0, 2 * PIECE, &mut pieces);
        let tasks: Vec<Task> = pieces.iter().map(|&p| Task { file: 0, piece: Some(p) }).collect();
        let done = AtomicU64::new(0);
        let outcomes = tasks
            .iter()
            .map(|t| {
                let (offset, len) = t.piece.unwrap();
                Outcome::Piece(hash_piece(&path, 2 * PIECE, offset, len, &mut Vec::new(), &done))
            })
            .collect();
        let found = join_pieces(&files, &tasks, outcomes, &done);
        assert!(
            matches!(&found[0], Found::Bytes { size, checksum: c } if *size == content.len() as u64 && *c == checksum(blake3::hash(&content))),
            "{found:?}"
        );
        assert!(matches!(hash_whole(&dir.path().join("absent"), &mut Vec::new(), &done), Found::Missing));
        assert!(matches!(hash_whole(dir.path(), &mut Vec::new(), &done), Found::Unreadable(_)));
    }

    #[test]
    fn parallel_results_keep_the_items_order() {
        let items: Vec<u64> = (0..1000).collect();
        let squares = in_parallel(&items, |&i, _| i * i, &mut || {});
        assert_eq!(squares, items.iter().map(|i| i * i).collect::<Vec<_>>());
        assert!(in_parallel(&[] as &[u8], |_, _| (), &mut || {}).is_empty());
    }

    /// An object replaced by another writer while it was being hashed looks damaged against the manifest
    /// the check started with; once the catalog has caught up it is checked again as it now is.
    #[test]
    fn an_object_replaced_meanwhile_is_checked_again_not_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::init_with(&dir.path().join("store"), false).unwrap();
        let source = dir.path().join("v.txt");
        let path = DatasetPath::parse("r1").unwrap();
        std::fs::write(&source, "first").unwrap();
        store.put("lab", &path, &DatasetEdit::default(), &[FileImport::new(&source).unwrap()]).unwrap();
        let before = store.dataset("lab", &path).unwrap().unwrap();
        std::fs::write(&source, "second, longer").unwrap();
        store.put("lab", &path, &DatasetEdit::default(), &[FileImport::new(&source).unwrap()]).unwrap();

        let stale = vec![store.object_job(&before, "v.txt").unwrap()];
        let mut report = VerifyReport::default();
        let damaged = check_objects(&None, &stale, &mut report, &mut |_, _| {});
        assert_eq!(damaged.len(), 1);
        assert_eq!(damaged[0].damage[0].kind, DamageKind::SizeMismatch);
        assert!(store.confirm(damaged, &mut report).unwrap().is_empty());

        // Real damage stays damage.
        std::fs::write(store.root().join("lab/r1/v.txt"), "second, LONGER").unwrap();
        let report = store.verify(&VerifyScope::All, &mut |_, _| {}).unwrap();
        assert_eq!(report.damaged.len(), 1);
        assert_eq!(report.damaged[0].damage[0].kind, DamageKind::ChecksumMismatch);
        // A removed object is not damage either.
        let damaged = report.damaged.clone();
        store.remove(&Ref::parse("lab/r1:v.txt").unwrap(), false).unwrap();
        let mut report = VerifyReport::default();
        assert!(store.confirm(damaged, &mut report).unwrap().is_empty());
    }
}
