//! `trove transfer`: copies datasets between two stores (folder → bucket, bucket → folder, bucket → bucket)
//! with their ids, metadata, tags, lineage and objects.
//!
//! The destination's commit comes after its data, as for every write. Each file is streamed into the
//! destination's staging area under a name derived from (source store, dataset, object, checksum), and the
//! upload is completed (a single PUT sent, a multipart upload completed, a local file renamed into place)
//! only once its bytes are known to have the manifest's checksum: a file found under that name on a later
//! run is whole and right, and is not sent again. Datasets are committed in
//! batches as [`DatasetState`] records, the same CRDT states the log merges, so that what the destination
//! already knew of a dataset merges exactly; each object the merged state takes from the source is moved
//! from its transfer name into place by the commit. A transfer killed anywhere leaves whole commits and
//! staged files: run again, it commits what is missing and sends only what never arrived.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use trove_model::{DatasetState, FileMove, Record};

use crate::error::{Error, Result};
use crate::query::Query;
use crate::store::{STAGING, Store};
use crate::verify::VerifyScope;
use crate::view::object_key;

/// Datasets a transfer commits at a time.
const COMMIT_BATCH: usize = 500;

/// Which datasets a transfer takes.
#[derive(Debug, Clone)]
pub enum TransferSelection {
    /// What a reference names: a project, a dataset and everything below it, the datasets below a folder.
    Scope(VerifyScope),
    /// The datasets a query finds.
    Query(Query),
}

/// How a transfer runs.
#[derive(Debug, Clone)]
pub struct TransferOptions {
    /// Files sent at once.
    pub jobs: usize,
    /// Hash every transferred object again at the destination once it is committed.
    pub verify: bool,
    /// Say what would be sent and committed; change nothing.
    pub dry_run: bool,
}

impl Default for TransferOptions {
    fn default() -> TransferOptions {
        TransferOptions { jobs: 4, verify: false, dry_run: false }
    }
}

/// What a transfer did (or, dry, would do).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct TransferReport {
    /// Datasets selected at the source.
    pub selected: u64,
    /// Datasets committed at the destination.
    pub committed: u64,
    /// Datasets the destination already had exactly as the source has them.
    pub unchanged: u64,
    /// Files sent, and their bytes.
    pub files_sent: u64,
    pub bytes_sent: u64,
    /// Files a previous run had sent already (found whole under their transfer names).
    pub files_reused: u64,
    /// Objects hashed again at the destination (with `verify`).
    pub verified: u64,
    pub seconds: f64,
}

/// One file to bring to the destination.
#[derive(Debug, Clone)]
struct FileJob {
    /// Where it is at the source.
    source_key: String,
    /// Its transfer name at the destination.
    staged_key: String,
    size: u64,
    checksum: String,
}

/// One dataset to commit, and the objects its commit moves into place.
struct Planned {
    state: DatasetState,
    moves: Vec<FileMove>,
}

impl Store {
    /// Copies the datasets `selection` names to the store `to`. `progress` is called now and then with the
    /// bytes sent so far and the bytes to send.
    pub fn transfer(
        &self,
        selection: &TransferSelection,
        to: &Store,
        options: &TransferOptions,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<TransferReport> {
        let started = Instant::now();
        if self.config().store.id == to.config().store.id && !self.config().store.id.is_empty() {
            return Err(Error::Invalid(format!(
                "{} and {} are the same store: a transfer copies between two stores",
                self.location(),
                to.location()
            )));
        }
        self.refresh()?;
        to.refresh()?;
        let selected = self.selected(selection)?;
        let mut report = TransferReport { selected: selected.len() as u64, ..Default::default() };
        let (planned, files) = self.plan_transfer(&selected, to, &mut report)?;
        if options.dry_run {
            report.files_sent = files.len() as u64;
            report.bytes_sent = files.iter().map(|f| f.size).sum();
            report.committed = planned.len() as u64;
            report.seconds = started.elapsed().as_secs_f64();
            return Ok(report);
        }
        self.send(to, &files, options.jobs.max(1), &mut report, progress)?;
        let projects: BTreeSet<String> =
            planned.iter().filter_map(|p| p.state.at.as_ref().map(|at| at.project().to_string())).collect();
        let mut project_states = Vec::new();
        for name in &projects {
            if let Some(state) = self.read(|r| Ok(r.project(name)?))? {
                project_states.push(state);
            }
        }
        let mut first = true;
        for batch in planned.chunks(COMMIT_BATCH) {
            to.transact("transfer", |_, plan| {
                if first {
                    plan.records.extend(project_states.iter().cloned().map(Record::ProjectState));
                }
                for p in batch {
                    plan.records.push(Record::DatasetState(p.state.clone()));
                    plan.moves.extend(p.moves.iter().cloned());
                }
                Ok(())
            })?;
            first = false;
            report.committed += batch.len() as u64;
        }
        if options.verify {
            for p in &planned {
                let Some(at) = &p.state.at else { continue };
                let r = trove_model::Ref::parse(&format!("{}/{}", at.project(), at.path()))?;
                let checked = to.verify(&VerifyScope::Ref(r), &mut |_, _| {})?;
                if let Some(damaged) = checked.damaged.first() {
                    return Err(Error::Damaged {
                        what: format!("{} at {}", damaged.reference, to.location()),
                        expected: damaged.expected.clone(),
                        found: damaged.found.clone().unwrap_or_else(|| "nothing readable".into()),
                    });
                }
                report.verified += checked.objects;
            }
        }
        report.seconds = started.elapsed().as_secs_f64();
        Ok(report)
    }

    /// The live datasets a selection names, in path order.
    fn selected(&self, selection: &TransferSelection) -> Result<Vec<DatasetState>> {
        match selection {
            TransferSelection::Scope(scope) => {
                if let VerifyScope::Ref(r) = scope
                    && r.object.is_some()
                {
                    return Err(Error::Mismatch(format!(
                        "{r} names an object: a transfer copies whole datasets (name {})",
                        r.without_object()
                    )));
                }
                let found = self.read(|read| crate::verify::datasets_in_scope(read, scope))?;
                Ok(found.into_iter().map(|(state, _)| state).collect())
            }
            TransferSelection::Query(query) => {
                let mut found = Vec::new();
                self.find(query, |state| {
                    found.push(state);
                    Ok(true)
                })?;
                Ok(found)
            }
        }
    }

    /// What the destination lacks: the datasets to commit (as the merge of both sides will be) with the
    /// moves of the objects the source brings, and the files to send. Refuses before anything is sent when a
    /// dataset's place at the destination belongs to another dataset.
    fn plan_transfer(
        &self,
        selected: &[DatasetState],
        to: &Store,
        report: &mut TransferReport,
    ) -> Result<(Vec<Planned>, Vec<FileJob>)> {
        let source_id = self.config().store.id.clone();
        let mut planned = Vec::new();
        let mut files = Vec::new();
        let mut conflicts = Vec::new();
        for state in selected {
            let Some(at) = &state.at else { continue };
            let (project, path) = (at.project(), at.path());
            let there = to.read(|r| Ok(r.dataset_by_id(&state.id)?))?.map(|row| row.state);
            if there.as_ref() == Some(state) {
                report.unchanged += 1;
                continue;
            }
            if let Some(other) = to.read(|r| Ok(r.dataset_at(project, path.as_str())?))?
                && other.state.id != state.id
            {
                conflicts.push(format!("{project}/{path} (dataset {} there)", other.state.id));
                continue;
            }
            let mut merged = there.clone().unwrap_or_else(|| state.clone());
            merged.merge(state);
            let mut moves = Vec::new();
            if let Some(merged_at) = merged.at.as_ref().filter(|_| merged.is_alive()) {
                for (name, manifest) in &merged.objects {
                    let theirs = state.objects.get(name).filter(|m| m.checksum == manifest.checksum);
                    let already = there.as_ref().and_then(|t| t.objects.get(name)).is_some_and(|m| {
                        m.checksum == manifest.checksum && there.as_ref().and_then(|t| t.at.as_ref()) == Some(merged_at)
                    });
                    let Some(manifest) = theirs.filter(|_| !already) else { continue };
                    let staged = transfer_key(&source_id, state, name, &manifest.checksum);
                    let source = object_key(project, path, name);
                    match &manifest.files {
                        None => files.push(FileJob {
                            source_key: source,
                            staged_key: staged.clone(),
                            size: manifest.size,
                            checksum: manifest.checksum.clone(),
                        }),
                        Some(listed) => files.extend(listed.iter().map(|(relative, entry)| FileJob {
                            source_key: format!("{source}/{relative}"),
                            staged_key: format!("{staged}/{relative}"),
                            size: entry.size,
                            checksum: entry.checksum.clone(),
                        })),
                    }
                    if manifest.files.as_ref().is_some_and(BTreeMap::is_empty) {
                        // An empty folder object has no file to send: its folder is made at the destination.
                        to.storage.ensure_folder(&staged)?;
                    }
                    moves.push(FileMove {
                        from: staged,
                        to: object_key(merged_at.project(), merged_at.path(), name),
                        id: state.id,
                        object: name.clone(),
                        checksum: manifest.checksum.clone(),
                    });
                }
            }
            planned.push(Planned { state: state.clone(), moves });
        }
        if !conflicts.is_empty() {
            return Err(Error::Invalid(format!(
                "at {}, another dataset already holds the place of {} selected dataset(s): {}{}; nothing was sent",
                to.location(),
                conflicts.len(),
                conflicts.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
                if conflicts.len() > 5 { ", …" } else { "" }
            )));
        }
        Ok((planned, files))
    }

    /// Sends the files the destination does not hold under their transfer names yet, `jobs` at a time.
    fn send(
        &self,
        to: &Store,
        files: &[FileJob],
        jobs: usize,
        report: &mut TransferReport,
        progress: &(dyn Fn(u64, u64) + Sync),
    ) -> Result<()> {
        let total: u64 = files.iter().map(|f| f.size).sum();
        let done = AtomicU64::new(0);
        let next = AtomicU64::new(0);
        let outcome: Mutex<(u64, u64, u64, Option<Error>)> = Mutex::new((0, 0, 0, None));
        std::thread::scope(|scope| {
            for _ in 0..jobs.min(files.len().max(1)) {
                scope.spawn(|| {
                    loop {
                        if crate::store::lock(&outcome).3.is_some() {
                            return;
                        }
                        let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                        let Some(file) = files.get(i) else { return };
                        let sent = self.send_one(to, file);
                        let mut o = crate::store::lock(&outcome);
                        match sent {
                            Ok(true) => {
                                o.0 += 1;
                                o.1 += file.size;
                            }
                            Ok(false) => o.2 += 1,
                            Err(e) => {
                                o.3.get_or_insert(e);
                            }
                        }
                        drop(o);
                        done.fetch_add(file.size, Ordering::Relaxed);
                        progress(done.load(Ordering::Relaxed), total);
                    }
                });
            }
        });
        let (sent, bytes, reused, error) = outcome.into_inner().unwrap_or_else(|p| p.into_inner());
        report.files_sent += sent;
        report.bytes_sent += bytes;
        report.files_reused += reused;
        match error {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    /// Brings one file to its transfer name at `to`; `false` when it was there already. The upload appears
    /// there only if its bytes have the manifest's checksum, so a file found under that name is whole and
    /// right.
    fn send_one(&self, to: &Store, file: &FileJob) -> Result<bool> {
        if to.storage.head(&file.staged_key)?.is_some_and(|e| e.size == file.size) {
            return Ok(false);
        }
        let expected =
            file.checksum.strip_prefix("blake3:").and_then(|hex| blake3::Hash::from_hex(hex).ok()).ok_or_else(
                || Error::Invalid(format!("{}: unreadable checksum {:?}", file.source_key, file.checksum)),
            )?;
        let sent = match self.storage.local_path(&file.source_key) {
            Some(path) => {
                let mut source = std::fs::File::open(&path).map_err(Error::io(&path))?;
                to.storage.put_stream_checked(&file.staged_key, &mut source, Some(expected)).map(|_| ())
            }
            None => self.stream_between(&file.source_key, to, &file.staged_key, expected),
        };
        match sent {
            Ok(()) => Ok(true),
            Err(trove_storage::StorageError::Changed { expected, found, .. }) => Err(Error::Damaged {
                what: format!("{} (as read from {})", file.source_key, self.location()),
                expected: format!("blake3:{expected}"),
                found: format!("blake3:{found}"),
            }),
            Err(e) => Err(e.into()),
        }
    }

    /// Streams an object of this store into `key` at `to` through a pipe: one thread downloads, the calling
    /// thread uploads, and the upload completes only if its bytes have the `expected` hash.
    fn stream_between(
        &self,
        source: &str,
        to: &Store,
        key: &str,
        expected: blake3::Hash,
    ) -> std::result::Result<(), trove_storage::StorageError> {
        let (mut reader, mut writer) =
            std::io::pipe().map_err(|e| trove_storage::StorageError::Io { path: key.into(), source: e })?;
        std::thread::scope(|scope| {
            let download = scope.spawn(move || {
                let got = self.storage.get_stream(source, &mut writer);
                drop(writer);
                got
            });
            let uploaded = to.storage.put_stream_checked(key, &mut reader, Some(expected));
            // An upload that failed stops reading: the download then fails on the closed pipe, and ends.
            drop(reader);
            let downloaded = download.join().unwrap_or_else(|_| {
                Err(trove_storage::StorageError::Io {
                    path: source.into(),
                    source: std::io::Error::other("the download thread panicked"),
                })
            });
            uploaded?;
            downloaded.map(|_| ())
        })
    }
}

/// The destination name of an object (or a folder object's root) in transit: in the staging area, derived
/// from what it is, so that every run of the same transfer finds it.
fn transfer_key(source_store: &str, state: &DatasetState, object: &str, checksum: &str) -> String {
    let mut hasher = blake3::Hasher::new();
    for part in [source_store, &state.id.to_string(), object, checksum] {
        hasher.update(part.as_bytes());
        hasher.update(b"\0");
    }
    format!("{STAGING}/transfer-{}", &hasher.finalize().to_hex()[..32])
}
