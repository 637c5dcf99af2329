//! `trove check` and `trove gc`: every disagreement between the log, the catalog and the files, and the
//! removal of what crashes leave behind.
//!
//! `check` replays the whole log in memory (the truth), compares it with the catalog row by row, and walks
//! the data folders comparing them with the objects the log names. What it finds falls in two groups:
//!
//! - **orphans**, which a killed process or an interrupted clean-up leaves and which hold nothing the log
//!   names: staged data never committed, temporary files, files of deleted datasets and objects, segments a
//!   checkpoint already merged, stale leases. `trove gc` removes them (files only once older than a grace
//!   period, and never a live writer's staged data).
//! - **damage and drift**: a missing object file, a size that differs from the manifest, a file no object
//!   names (a hand edit: `trove sync --scan` adopts it), catalog rows the log does not back or that differ
//!   from it, damaged segments, two datasets claiming one path. These need a person, `sync --full` or
//!   `sync --scan`; `gc` never touches them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Serialize;
use trove_model::{DatasetState, ObjectManifest, SegmentKind};
use trove_storage::log::{LOG_PREFIX, segment_kind};

use crate::error::{Error, Result};
use crate::store::{CATALOG_FILE, CONFIG_FILE, Replayed, STAGING, Store};
use crate::view::object_key;

/// What kind of disagreement a [`Finding`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FindingKind {
    /// Left by a crash or an interrupted clean-up; holds nothing the log names. `gc` removes it.
    Orphan,
    /// A live object whose file (or a file of whose folder) is not there.
    Missing,
    /// An object file whose size is not the manifest's.
    SizeMismatch,
    /// A file in the data folders that no object names (a hand edit: `sync --scan` adopts it).
    Unknown,
    /// A catalog row (dataset or project) that the log does not contain.
    CatalogNotInLog,
    /// A dataset or project in the log that the catalog lacks.
    LogNotInCatalog,
    /// A catalog row whose state differs from the log's.
    CatalogDiffers,
    /// The catalog has not merged every segment yet (log-only writers; `trove sync` catches up).
    CatalogBehind,
    /// A log segment that cannot be read.
    DamagedSegment,
    /// Two live datasets claim one path; the later location wins, the other is hidden.
    PathConflict,
}

impl FindingKind {
    /// The word used in reports.
    pub fn word(self) -> &'static str {
        match self {
            FindingKind::Orphan => "orphan",
            FindingKind::Missing => "missing",
            FindingKind::SizeMismatch => "size mismatch",
            FindingKind::Unknown => "unknown file",
            FindingKind::CatalogNotInLog => "catalog row not in the log",
            FindingKind::LogNotInCatalog => "not in the catalog",
            FindingKind::CatalogDiffers => "catalog differs from the log",
            FindingKind::CatalogBehind => "catalog behind the log",
            FindingKind::DamagedSegment => "damaged segment",
            FindingKind::PathConflict => "path conflict",
        }
    }
}

/// One disagreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub kind: FindingKind,
    /// What it concerns: `PROJECT/PATH:OBJECT`, a dataset id, a segment name, or a store-relative path.
    pub subject: String,
    /// The file or folder concerned, relative to the store root, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// In plain words: what was expected and what was found.
    pub detail: String,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}: {}", self.kind.word(), self.subject, self.detail)
    }
}

/// What `trove check` found, and what it looked at.
#[derive(Debug, Clone, Default, Serialize)]
pub struct CheckReport {
    pub findings: Vec<Finding>,
    pub segments: usize,
    pub datasets: usize,
    pub objects: usize,
    pub files: u64,
}

impl CheckReport {
    /// True when log, catalog and files agree.
    pub fn is_clean(&self) -> bool {
        self.findings.is_empty()
    }

    /// True when everything found is an orphan (what a crash may leave; `gc` removes it).
    pub fn only_orphans(&self) -> bool {
        self.findings.iter().all(|f| f.kind == FindingKind::Orphan)
    }

    /// How many findings of each kind.
    pub fn counts(&self) -> BTreeMap<FindingKind, usize> {
        let mut counts = BTreeMap::new();
        for f in &self.findings {
            *counts.entry(f.kind).or_insert(0) += 1;
        }
        counts
    }
}

/// What `trove gc` removed and what it left.
#[derive(Debug, Clone, Default, Serialize)]
pub struct GcReport {
    /// Store-relative paths removed.
    pub removed: Vec<String>,
    pub bytes: u64,
    /// Orphans left in place, with why (younger than the grace period, a live writer's).
    pub kept: Vec<(String, String)>,
    /// Empty folders removed from the data tree.
    pub folders: usize,
}

/// How long an orphaned file must have been left alone before `gc` removes it, unless told otherwise: long
/// enough that no writer still busy with it (streaming a large import, waiting for the catalog) is robbed.
pub const DEFAULT_GC_GRACE: Duration = Duration::from_secs(3600);

/// An orphan `gc` may remove, as `check` found it.
struct Removable {
    key: String,
    /// Segments merged into a checkpoint are removed at once: the checkpoint holds all they say.
    immediate: bool,
    /// A storage key (a lease file), not a path found on disk.
    by_key: bool,
}

impl Store {
    /// `trove check`: every disagreement between log, catalog and files. See the module documentation.
    pub fn check(&self) -> Result<CheckReport> {
        Ok(self.audit()?.0)
    }

    /// `trove gc`: removes the orphans `check` finds, files only when untouched for `grace`, never a live
    /// writer's staged data, then folders of the data tree left empty.
    pub fn gc(&self, grace: Duration) -> Result<GcReport> {
        let (_, removable) = self.audit()?;
        let tree = self.tree()?;
        let mut report = GcReport::default();
        let now = SystemTime::now();
        for r in removable {
            if !r.immediate {
                if let Some(owner) = staging_owner(&r.key)
                    && owner_alive_here(&owner, &self.writer().host)
                {
                    report.kept.push((r.key, format!("staged by a live writer (pid {})", owner.0)));
                    continue;
                }
                let newest = tree.newest(&r.key);
                let age = newest.and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
                if age < grace {
                    report.kept.push((r.key, format!("younger than the grace period ({} s old)", age.as_secs())));
                    continue;
                }
            }
            if r.by_key {
                self.storage.delete(&r.key)?;
                report.removed.push(r.key);
                continue;
            }
            let bytes = tree.total_size(&r.key);
            let Tree::Disk(root) = &tree else {
                self.storage.delete(&r.key)?;
                report.bytes += bytes;
                report.removed.push(r.key);
                continue;
            };
            let path = root.join(&r.key);
            // Orphans are removed as the local files they are: some (a killed publish's `name#1`) have names
            // the storage layer does not accept as keys.
            let removed = match std::fs::symlink_metadata(&path) {
                Ok(m) if m.is_dir() => std::fs::remove_dir_all(&path),
                Ok(_) => std::fs::remove_file(&path),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(e) => Err(e),
            };
            removed.map_err(Error::io(&path))?;
            report.bytes += bytes;
            report.removed.push(r.key);
        }
        let objects = self.read(|read| {
            let mut keys = HashSet::new();
            read.all_rows(|row| {
                if row.state.is_alive()
                    && let Some(at) = &row.state.at
                {
                    keys.extend(row.state.objects.keys().map(|o| object_key(at.project(), at.path(), o)));
                }
                Ok(())
            })?;
            Ok(keys)
        })?;
        // An object store has no folders to leave empty.
        match &tree {
            Tree::Disk(root) => report.folders = prune_empty_folders(root, root, "", &objects)?,
            Tree::Listed { .. } => self.gc_local_scratch(grace, now, &mut report)?,
        }
        Ok(report)
    }

    /// For a store in a bucket: the scratch space this machine's processes used in the store's local folder
    /// (conversions, reads, computations), left by a process that was killed. Removed like staged data: not a
    /// live process's, untouched for `grace`.
    fn gc_local_scratch(&self, grace: Duration, now: SystemTime, report: &mut GcReport) -> Result<()> {
        let scratch = self.root.join(STAGING);
        for entry in read_dir(&scratch)? {
            let key = format!("{STAGING}/{}", entry.file_name().to_string_lossy());
            let path = entry.path();
            let shown = path.display().to_string();
            if let Some(owner) = staging_owner(&key)
                && owner_alive_here(&owner, &self.writer().host)
            {
                report.kept.push((shown, format!("scratch of a live process (pid {})", owner.0)));
                continue;
            }
            let age = newest_mtime(&path).and_then(|t| now.duration_since(t).ok()).unwrap_or_default();
            if age < grace {
                report.kept.push((shown, format!("younger than the grace period ({} s old)", age.as_secs())));
                continue;
            }
            let bytes = tree_size(&path);
            let removed = if entry.file_type().map_err(Error::io(&path))?.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            removed.map_err(Error::io(&path))?;
            report.bytes += bytes;
            report.removed.push(shown);
        }
        Ok(())
    }

    /// What is stored: the local folder, or the object store's listing, taken now.
    fn tree(&self) -> Result<Tree> {
        Ok(match self.storage.local_root() {
            Some(root) => Tree::Disk(root.to_path_buf()),
            None => Tree::listed(self.storage.list("")?),
        })
    }

    /// The whole audit: the findings, and which of them `gc` may remove.
    fn audit(&self) -> Result<(CheckReport, Vec<Removable>)> {
        self.refresh()?;
        let mut report = CheckReport::default();
        let mut removable = Vec::new();

        // The log, replayed in memory: the truth everything else is compared with.
        let names = self.log.list()?;
        report.segments = names.len();
        let mut replayed = Replayed::default();
        let mut covered: HashMap<String, String> = HashMap::new();
        let mut readable = HashSet::new();
        for name in &names {
            match self.log.read(name) {
                Ok(segment) => {
                    if segment.header.trove == SegmentKind::Checkpoint {
                        for c in &segment.header.covers {
                            covered.insert(c.clone(), name.clone());
                        }
                    }
                    replayed.merge(segment);
                    readable.insert(name.clone());
                }
                Err(e) => report.findings.push(Finding {
                    kind: FindingKind::DamagedSegment,
                    subject: name.clone(),
                    path: Some(format!("{LOG_PREFIX}/{name}")),
                    detail: e.to_string(),
                }),
            }
        }
        for name in &names {
            if let Some(checkpoint) = covered.get(name) {
                let key = format!("{LOG_PREFIX}/{name}");
                report.findings.push(orphan(name, &key, format!("already merged into checkpoint {checkpoint}")));
                removable.push(Removable { key, immediate: true, by_key: false });
            }
        }
        // Listed after the log was read: what a writer published since is in the listing, and its data too.
        let tree = self.tree()?;
        self.log_folder_leftovers(&tree, &mut report, &mut removable)?;
        self.compare_catalog(&replayed, &mut report)?;

        // The files, compared with the objects the log names.
        let mut expected: HashMap<String, (String, &ObjectManifest)> = HashMap::new();
        let mut dead: HashMap<String, String> = HashMap::new();
        for state in replayed.datasets.values() {
            let Some(at) = &state.at else { continue };
            let (project, path) = (at.project(), at.path());
            let name_of = |object: &str| format!("{project}/{path}:{object}");
            if state.is_alive() {
                report.datasets += 1;
                for (object, manifest) in &state.objects {
                    expected.insert(object_key(project, path, object), (name_of(object), manifest));
                }
                for object in tombstoned_objects(state) {
                    dead.insert(object_key(project, path, &object), format!("object {} was removed", name_of(&object)));
                }
            } else {
                for object in state.objects.keys().cloned().chain(tombstoned_objects(state)) {
                    dead.insert(
                        object_key(project, path, &object),
                        format!("dataset {project}/{path} was removed ({object})"),
                    );
                }
            }
        }
        report.objects = expected.len();
        // A removed object's place may hold live data again (a new dataset in a removed folder object's folder):
        // never an orphan then, whatever else is in it.
        let mut live_folders: HashSet<&str> = HashSet::new();
        for key in expected.keys() {
            let mut rest = key.as_str();
            while let Some((parent, _)) = rest.rsplit_once('/') {
                if !live_folders.insert(parent) {
                    break;
                }
                rest = parent;
            }
        }
        let mut walk = Walk {
            tree: &tree,
            expected: &expected,
            dead: &dead,
            live_folders: &live_folders,
            seen: HashSet::new(),
            report: &mut report,
        };
        walk.folder("", &mut removable)?;
        let seen = std::mem::take(&mut walk.seen);
        let mut missing: Vec<&String> = expected.keys().filter(|k| !seen.contains(*k)).collect();
        missing.sort();
        for key in missing {
            let (subject, manifest) = &expected[key];
            report.findings.push(Finding {
                kind: FindingKind::Missing,
                subject: subject.clone(),
                path: Some(key.clone()),
                detail: format!("the object's {} is not there", if manifest.is_folder() { "folder" } else { "file" }),
            });
        }

        self.staging_leftovers(&tree, &mut report, &mut removable)?;
        for holder in self.leases.holders()? {
            if holder.state != trove_storage::HolderState::Live {
                report.findings.push(orphan(&holder.key, &holder.key, format!("a lease nobody holds: {holder}")));
                removable.push(Removable { key: holder.key, immediate: true, by_key: true });
            }
        }
        report.findings.sort_by(|a, b| (a.kind, &a.subject).cmp(&(b.kind, &b.subject)));
        Ok((report, removable))
    }

    /// Files in the log folder that are not segments: temporary files of a publish that was killed.
    fn log_folder_leftovers(
        &self,
        tree: &Tree,
        report: &mut CheckReport,
        removable: &mut Vec<Removable>,
    ) -> Result<()> {
        for entry in tree.children(LOG_PREFIX)? {
            let name = entry.name;
            if segment_kind(&name).is_none() {
                let key = format!("{LOG_PREFIX}/{name}");
                report.findings.push(orphan(&key, &key, "not a log segment (a commit whose writer was killed)".into()));
                removable.push(Removable { key, immediate: false, by_key: false });
            }
        }
        Ok(())
    }

    /// Everything in the staging area: data streamed in for commits that were never published.
    fn staging_leftovers(&self, tree: &Tree, report: &mut CheckReport, removable: &mut Vec<Removable>) -> Result<()> {
        let staged = tree.children(STAGING)?;
        if staged.is_empty() {
            return Ok(());
        }
        let awaited = self.awaited_moves()?;
        for entry in staged {
            let key = entry.key;
            if awaited.contains(&key) {
                // A published commit still has to move it into place (its moves failed, or a log-only
                // writer's commit is not merged yet): it is data, not an orphan.
                continue;
            }
            let who = match staging_owner(&key) {
                Some((pid, _, host)) => format!(" by pid {pid} on {host}"),
                None => String::new(),
            };
            report.findings.push(orphan(&key, &key, format!("staged{who} for a commit that was not published")));
            removable.push(Removable { key, immediate: false, by_key: false });
        }
        Ok(())
    }

    /// The staged files that commits the catalog has not applied yet will move into place.
    fn awaited_moves(&self) -> Result<HashSet<String>> {
        let applied = self.read(|r| Ok(r.applied()?))?;
        let mut awaited = HashSet::new();
        for name in self.log.list()?.into_iter().filter(|n| !applied.contains(n)) {
            if let Ok(segment) = self.log.read(&name) {
                awaited.extend(segment.header.moves.into_iter().map(|m| m.from));
            }
        }
        Ok(awaited)
    }

    /// Compares the catalog with the replayed log, dataset by dataset and project by project.
    fn compare_catalog(&self, replayed: &Replayed, report: &mut CheckReport) -> Result<()> {
        let lag = self.catalog_lag()?;
        if lag > 0 {
            // A lagging catalog (log-only writers) differs from the log by design until `trove sync`.
            report.findings.push(Finding {
                kind: FindingKind::CatalogBehind,
                subject: if self.catalog_is_shared() { self.catalog_location() } else { CATALOG_FILE.into() },
                path: None,
                detail: format!("{lag} log segments are not merged into the catalog yet (`trove sync` merges them)"),
            });
            return Ok(());
        }
        let mut in_catalog: HashSet<uuid::Uuid> = HashSet::new();
        let mut findings = Vec::new();
        let mut claims: HashMap<(String, String), Vec<(uuid::Uuid, bool)>> = HashMap::new();
        self.read(|read| {
            read.all_rows(|row| {
                let id = row.state.id;
                in_catalog.insert(id);
                match replayed.datasets.get(&id) {
                    None => findings.push(Finding {
                        kind: FindingKind::CatalogNotInLog,
                        subject: format!("dataset {id}"),
                        path: None,
                        detail: format!("the catalog has it{}, the log does not", at_words(&row.state)),
                    }),
                    Some(state) if *state != row.state => findings.push(Finding {
                        kind: FindingKind::CatalogDiffers,
                        subject: format!("dataset {id}"),
                        path: None,
                        detail: format!("the catalog's state{} is not the log's", at_words(&row.state)),
                    }),
                    Some(_) => {}
                }
                if row.state.is_alive()
                    && let Some(at) = &row.state.at
                {
                    claims
                        .entry((at.project().to_string(), at.path().to_string()))
                        .or_default()
                        .push((id, row.visible));
                }
                Ok(())
            })?;
            let projects: HashMap<String, trove_model::ProjectState> =
                read.projects()?.into_iter().map(|p| (p.name.clone(), p)).collect();
            for (name, state) in &projects {
                match replayed.projects.get(name) {
                    None => findings.push(Finding {
                        kind: FindingKind::CatalogNotInLog,
                        subject: format!("project {name}"),
                        path: None,
                        detail: "the catalog has it, the log does not".into(),
                    }),
                    Some(s) if s != state => findings.push(Finding {
                        kind: FindingKind::CatalogDiffers,
                        subject: format!("project {name}"),
                        path: None,
                        detail: "the catalog's metadata is not the log's".into(),
                    }),
                    Some(_) => {}
                }
            }
            for name in replayed.projects.keys().filter(|n| !projects.contains_key(*n)) {
                findings.push(Finding {
                    kind: FindingKind::LogNotInCatalog,
                    subject: format!("project {name}"),
                    path: None,
                    detail: "the log has it, the catalog does not (`trove sync --full` rebuilds the catalog)".into(),
                });
            }
            Ok(())
        })?;
        for (id, state) in &replayed.datasets {
            if !in_catalog.contains(id) {
                findings.push(Finding {
                    kind: FindingKind::LogNotInCatalog,
                    subject: format!("dataset {id}"),
                    path: None,
                    detail: format!(
                        "the log has it{}, the catalog does not (`trove sync --full` rebuilds the catalog)",
                        at_words(state)
                    ),
                });
            }
        }
        for ((project, path), ids) in claims {
            if ids.len() < 2 {
                continue;
            }
            let winner = ids.iter().find(|(_, visible)| *visible).map(|(id, _)| id.to_string()).unwrap_or_default();
            for (id, _) in ids.iter().filter(|(_, visible)| !*visible) {
                findings.push(Finding {
                    kind: FindingKind::PathConflict,
                    subject: format!("{project}/{path}"),
                    path: None,
                    detail: format!(
                        "dataset {id} claims this path too but is hidden by {winner} (moved there later); `trove mv` one of them"
                    ),
                });
            }
        }
        report.findings.extend(findings);
        Ok(())
    }
}

/// Walks the data tree, comparing what is there with what the log names.
struct Walk<'a> {
    tree: &'a Tree,
    expected: &'a HashMap<String, (String, &'a ObjectManifest)>,
    dead: &'a HashMap<String, String>,
    /// Every folder above an object the log names.
    live_folders: &'a HashSet<&'a str>,
    seen: HashSet<String>,
    report: &'a mut CheckReport,
}

impl Walk<'_> {
    fn folder(&mut self, prefix: &str, removable: &mut Vec<Removable>) -> Result<()> {
        for entry in self.tree.children(prefix)? {
            let Child { name, key, is_dir, .. } = entry;
            if prefix.is_empty() && (name == ".trove" || name == CONFIG_FILE) {
                continue;
            }
            if let Some((subject, manifest)) = self.expected.get(&key) {
                self.seen.insert(key.clone());
                self.object(&key, subject, manifest, is_dir)?;
            } else if let Some(why) = self.dead.get(&key).filter(|_| !self.live_folders.contains(key.as_str())) {
                self.report.findings.push(orphan(&key, &key, format!("left behind: {why}")));
                removable.push(Removable { key, immediate: false, by_key: false });
            } else if name.contains(".trove-part-") {
                self.report.findings.push(orphan(&key, &key, "a copy that was interrupted".into()));
                removable.push(Removable { key, immediate: false, by_key: false });
            } else if is_dir {
                self.folder(&key, removable)?;
            } else {
                self.report.files += 1;
                self.report.findings.push(Finding {
                    kind: FindingKind::Unknown,
                    subject: key.clone(),
                    path: Some(key),
                    detail: "no object names this file (`trove sync --scan` records it)".into(),
                });
            }
        }
        Ok(())
    }

    /// Compares one object's file or folder with its manifest (sizes and the folder's listing; `trove verify`
    /// compares checksums).
    fn object(&mut self, key: &str, subject: &str, manifest: &ObjectManifest, is_dir: bool) -> Result<()> {
        let mismatch = |detail: String| Finding {
            kind: FindingKind::SizeMismatch,
            subject: subject.to_string(),
            path: Some(key.to_string()),
            detail,
        };
        match (&manifest.files, is_dir) {
            (None, false) => {
                self.report.files += 1;
                let size = self.tree.size(key)?;
                if size != manifest.size {
                    self.report
                        .findings
                        .push(mismatch(format!("the manifest says {} bytes, the file has {size}", manifest.size)));
                }
            }
            (Some(files), true) => {
                let mut found = self.tree.files_below(key)?;
                self.report.files += found.len() as u64;
                for (inner, entry) in files {
                    match found.remove(inner) {
                        None => self.report.findings.push(Finding {
                            kind: FindingKind::Missing,
                            subject: subject.to_string(),
                            path: Some(format!("{key}/{inner}")),
                            detail: format!("{inner} of the folder object is not there"),
                        }),
                        Some(size) if size != entry.size => self.report.findings.push(mismatch(format!(
                            "{inner}: the manifest says {} bytes, the file has {size}",
                            entry.size
                        ))),
                        Some(_) => {}
                    }
                }
                let mut extra: Vec<String> = found.into_keys().collect();
                extra.sort();
                for inner in extra {
                    self.report.findings.push(Finding {
                        kind: FindingKind::Unknown,
                        subject: subject.to_string(),
                        path: Some(format!("{key}/{inner}")),
                        detail: format!("{inner} is inside the folder object but not in its manifest"),
                    });
                }
            }
            (None, true) => {
                self.report.findings.push(mismatch("the manifest names a file, a folder is there".into()));
            }
            (Some(_), false) => {
                self.report.findings.push(mismatch("the manifest names a folder, a file is there".into()));
            }
        }
        Ok(())
    }
}

fn orphan(subject: &str, key: &str, detail: String) -> Finding {
    Finding { kind: FindingKind::Orphan, subject: subject.to_string(), path: Some(key.to_string()), detail }
}

fn at_words(state: &DatasetState) -> String {
    match &state.at {
        Some(at) => format!(" ({}/{})", at.project(), at.path()),
        None => String::new(),
    }
}

/// The objects a dataset once had and that were removed (tombstones among its stamps).
fn tombstoned_objects(state: &DatasetState) -> impl Iterator<Item = String> + '_ {
    state
        .stamps
        .keys()
        .filter_map(|k| k.strip_prefix("o:"))
        .filter(|name| !state.objects.contains_key(*name))
        .map(str::to_string)
}

/// The writer a staging entry belongs to: `(pid, process start, host)` from `<uuid>.<pid>.<start>.<host>`.
pub(crate) fn staging_owner(key: &str) -> Option<(u32, u64, String)> {
    let name = key.strip_prefix(STAGING)?.trim_start_matches('/');
    let mut parts = name.splitn(4, '.');
    let _uuid = parts.next()?;
    let pid = parts.next()?.parse().ok()?;
    let start = parts.next()?.parse().ok()?;
    let host = parts.next()?.to_string();
    Some((pid, start, host))
}

/// Whether the process that staged something is alive on this machine (a process elsewhere is judged by the
/// grace period alone).
fn owner_alive_here(owner: &(u32, u64, String), this_host: &str) -> bool {
    let (pid, start, host) = owner;
    host == this_host && trove_storage::process::is_running(*pid, *start)
}

fn read_dir(dir: &Path) -> Result<Vec<std::fs::DirEntry>> {
    let mut entries: Vec<std::fs::DirEntry> = match std::fs::read_dir(dir) {
        Ok(rd) => rd.collect::<std::io::Result<_>>().map_err(Error::io(dir))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::Io { path: dir.to_path_buf(), source: e }),
    };
    entries.sort_by_key(|e| e.file_name());
    Ok(entries)
}

/// What is stored, seen as folders and files: a local folder read as it is, or an object store's listing
/// (where a folder is every key that has more after it).
enum Tree {
    Disk(PathBuf),
    Listed {
        /// Every object: its size and last modification.
        objects: BTreeMap<String, (u64, i64)>,
        /// The names directly below each folder key (`""` for the root), with whether each is a folder.
        children: HashMap<String, BTreeMap<String, bool>>,
    },
}

/// One name directly inside a folder of a [`Tree`].
struct Child {
    name: String,
    key: String,
    is_dir: bool,
}

impl Tree {
    fn listed(entries: Vec<trove_storage::Entry>) -> Tree {
        let mut objects = BTreeMap::new();
        let mut children: HashMap<String, BTreeMap<String, bool>> = HashMap::new();
        for entry in entries {
            let mut parent = String::new();
            let parts: Vec<&str> = entry.key.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let is_dir = i + 1 < parts.len();
                let slot = children.entry(parent.clone()).or_default().entry(part.to_string()).or_insert(is_dir);
                *slot |= is_dir;
                if !parent.is_empty() {
                    parent.push('/');
                }
                parent.push_str(part);
            }
            objects.insert(entry.key, (entry.size, entry.modified));
        }
        Tree::Listed { objects, children }
    }

    /// The names directly inside `prefix`, sorted.
    fn children(&self, prefix: &str) -> Result<Vec<Child>> {
        let key_of = |name: &str| if prefix.is_empty() { name.to_string() } else { format!("{prefix}/{name}") };
        match self {
            Tree::Disk(root) => {
                let dir = if prefix.is_empty() { root.clone() } else { root.join(prefix) };
                read_dir(&dir)?
                    .into_iter()
                    .map(|entry| {
                        let name = entry.file_name().to_string_lossy().into_owned();
                        let is_dir = entry.file_type().map_err(Error::io(entry.path()))?.is_dir();
                        Ok(Child { key: key_of(&name), name, is_dir })
                    })
                    .collect()
            }
            Tree::Listed { children, .. } => Ok(children
                .get(prefix)
                .into_iter()
                .flatten()
                .map(|(name, is_dir)| Child { key: key_of(name), name: name.clone(), is_dir: *is_dir })
                .collect()),
        }
    }

    /// The size of the file at `key`.
    fn size(&self, key: &str) -> Result<u64> {
        match self {
            Tree::Disk(root) => {
                let path = root.join(key);
                Ok(std::fs::metadata(&path).map_err(Error::io(&path))?.len())
            }
            Tree::Listed { objects, .. } => Ok(objects.get(key).map_or(0, |(size, _)| *size)),
        }
    }

    /// Every file below the folder `key` with its size, by path relative to it.
    fn files_below(&self, key: &str) -> Result<HashMap<String, u64>> {
        let mut out = HashMap::new();
        match self {
            Tree::Disk(root) => list_files(&root.join(key), "", &mut out)?,
            Tree::Listed { objects, .. } => {
                let folder = format!("{key}/");
                for (inner, (size, _)) in objects.range(folder.clone()..).take_while(|(k, _)| k.starts_with(&folder)) {
                    out.insert(inner[folder.len()..].to_string(), *size);
                }
            }
        }
        Ok(out)
    }

    /// The newest modification time of the file at `key`, or of anything in the folder there.
    fn newest(&self, key: &str) -> Option<SystemTime> {
        match self {
            Tree::Disk(root) => newest_mtime(&root.join(key)),
            Tree::Listed { objects, .. } => {
                let folder = format!("{key}/");
                let inner = objects.range(folder.clone()..).take_while(|(k, _)| k.starts_with(&folder));
                let micros = objects.get(key).into_iter().chain(inner.map(|(_, v)| v)).map(|(_, m)| *m).max()?;
                let micros = u64::try_from(micros).ok()?;
                Some(SystemTime::UNIX_EPOCH + Duration::from_micros(micros))
            }
        }
    }

    /// The bytes of the file at `key`, or of everything in the folder there.
    fn total_size(&self, key: &str) -> u64 {
        match self {
            Tree::Disk(root) => tree_size(&root.join(key)),
            Tree::Listed { objects, .. } => {
                let folder = format!("{key}/");
                let inner = objects.range(folder.clone()..).take_while(|(k, _)| k.starts_with(&folder));
                objects.get(key).into_iter().chain(inner.map(|(_, v)| v)).map(|(size, _)| size).sum()
            }
        }
    }
}

/// Every file below `dir` with its size, by path relative to `dir`.
fn list_files(dir: &Path, prefix: &str, out: &mut HashMap<String, u64>) -> Result<()> {
    for entry in read_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        let rel = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let meta = entry.metadata().map_err(Error::io(entry.path()))?;
        if meta.is_dir() {
            list_files(&entry.path(), &rel, out)?;
        } else {
            out.insert(rel, meta.len());
        }
    }
    Ok(())
}

/// The newest modification time of a file, or of anything in a folder.
fn newest_mtime(path: &Path) -> Option<SystemTime> {
    let meta = std::fs::symlink_metadata(path).ok()?;
    let own = meta.modified().ok();
    if !meta.is_dir() {
        return own;
    }
    let inner = std::fs::read_dir(path).ok()?.filter_map(|e| e.ok()).filter_map(|e| newest_mtime(&e.path())).max();
    own.into_iter().chain(inner).max()
}

fn tree_size(path: &Path) -> u64 {
    let Ok(meta) = std::fs::symlink_metadata(path) else { return 0 };
    if !meta.is_dir() {
        return meta.len();
    }
    std::fs::read_dir(path).map(|rd| rd.filter_map(|e| e.ok()).map(|e| tree_size(&e.path())).sum()).unwrap_or(0)
}

/// Removes folders of the data tree that hold nothing (what deletions and moves leave), bottom up. Returns
/// how many went.
/// Folder objects (even empty ones) are left as they are.
fn prune_empty_folders(root: &Path, dir: &Path, prefix: &str, objects: &HashSet<String>) -> Result<usize> {
    let mut removed = 0;
    for entry in read_dir(dir)? {
        let name = entry.file_name().to_string_lossy().into_owned();
        if dir == root && (name == ".trove" || name == CONFIG_FILE) {
            continue;
        }
        let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let path: PathBuf = entry.path();
        if entry.file_type().map_err(Error::io(&path))?.is_dir() && !objects.contains(&key) {
            removed += prune_empty_folders(root, &path, &key, objects)?;
            // Only an empty folder goes; one that gained a file meanwhile stays.
            if std::fs::remove_dir(&path).is_ok() {
                removed += 1;
            }
        }
    }
    Ok(removed)
}
