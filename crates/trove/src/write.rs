//! Writes: put, ingest, metadata and tag edits, rm, mv, cp, projects. Each is one call to
//! [`Store::transact`], so each is one commit.

use std::collections::{BTreeMap, HashMap};
use std::io::BufRead;
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value, json};
use trove_catalog::Reader;
use trove_model::name::{validate_name, validate_project};
use trove_model::value::{check_assignment, check_depth, check_document, parse_key, set_dotted, unset_dotted};
use trove_model::{
    DatasetChange, DatasetPath, DatasetState, FileMove, Location, ObjectManifest, ProjectChange, Record, Ref,
};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::objects::{FileImport, Staged};
use crate::store::{Plan, Store};
use crate::view::{Target, object_key, resolve};

/// Changes to a dataset's description. Dotted keys reach into nested metadata.
#[derive(Debug, Clone, Default)]
pub struct DatasetEdit {
    pub kind: Option<String>,
    /// Top-level keys replaced wholesale (from a JSON document).
    pub meta_doc: Map<String, Value>,
    /// `key=value` assignments; dotted keys merge into the existing nested value.
    pub meta: Vec<(String, Value)>,
    /// Keys removed (dotted keys remove a nested value).
    pub unset: Vec<String>,
    pub tags_add: Vec<String>,
    pub tags_rm: Vec<String>,
    /// The lineage the dataset derives from, in its stored form (`Lineage::to_json`).
    pub lineage: Option<Value>,
}

impl DatasetEdit {
    fn validate(&self) -> Result<()> {
        if let Some(kind) = &self.kind {
            validate_name(kind).map_err(|e| Error::Invalid(format!("invalid kind: {e}")))?;
        }
        for tag in self.tags_add.iter().chain(&self.tags_rm) {
            validate_name(tag).map_err(|e| Error::Invalid(format!("invalid tag: {e}")))?;
        }
        // One key rule and one depth limit for every way in, so that whatever is written can be read and
        // queried back.
        check_document(&self.meta_doc)?;
        for (key, value) in &self.meta {
            check_assignment(key, value)?;
        }
        for key in &self.unset {
            parse_key(key)?;
        }
        if let Some(lineage) = &self.lineage {
            check_depth("lineage", lineage)?;
        }
        Ok(())
    }

    fn is_empty(&self) -> bool {
        self.kind.is_none()
            && self.meta_doc.is_empty()
            && self.meta.is_empty()
            && self.unset.is_empty()
            && self.tags_add.is_empty()
            && self.tags_rm.is_empty()
            && self.lineage.is_none()
    }
}

/// What a `put` did.
#[derive(Debug, Clone)]
pub struct PutOutcome {
    pub created: bool,
    pub id: Uuid,
    pub objects: Vec<(String, ObjectManifest)>,
    /// What reading the files had to guess (a CSV's separator, a missing header line), one sentence each.
    pub guesses: Vec<trove_formats::ReadNote>,
}

/// What an `ingest` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestReport {
    pub created: u64,
    pub updated: u64,
    pub commits: u64,
}

/// One line of an ingest file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestLine {
    pub path: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub metadata: Map<String, Value>,
    #[serde(default)]
    pub tags: Vec<String>,
    #[serde(default)]
    pub files: BTreeMap<String, String>,
}

/// One checked line of an ingest file: project, path, edit and files.
type IngestItem = (String, DatasetPath, DatasetEdit, Vec<FileImport>);

/// The change that deletes a dataset. A dataset whose id derives from its path (made by a log-only writer,
/// see `Store::new_dataset_id`) gets that id back if the path is used again, so its deletion also clears
/// every field: a later dataset at the path must not inherit the old one's metadata.
pub(crate) fn removal(state: &DatasetState) -> DatasetChange {
    let mut change = DatasetChange { id: state.id, alive: Some(false), ..Default::default() };
    if state.id.get_version_num() == 8 {
        change.unset = state.meta.keys().cloned().collect();
        change.tags = state.tags.iter().map(|t| (t.clone(), false)).collect();
        change.objects = state.objects.keys().map(|o| (o.clone(), None)).collect();
    }
    change
}

/// Checks one line of an ingest file (`n` is its line number, for the error).
fn parse_ingest_line(source: &str, n: usize, line: &str) -> Result<IngestItem> {
    let bad = |message: String| Error::Ingest { path: source.to_string(), line: n, message };
    trove_model::value::check_integers("the line", line).map_err(|e| bad(e.to_string()))?;
    let parsed: IngestLine = serde_json::from_str(line).map_err(|e| bad(e.to_string()))?;
    let r = Ref::parse(&parsed.path).map_err(|e| bad(e.to_string()))?;
    let path = match (&r.path, &r.object) {
        (Some(p), None) => p.clone(),
        _ => return Err(bad(format!("\"path\" must be PROJECT/PATH, got {:?}", parsed.path))),
    };
    let edit =
        DatasetEdit { kind: parsed.kind, meta_doc: parsed.metadata, tags_add: parsed.tags, ..Default::default() };
    edit.validate().map_err(|e| bad(e.to_string()))?;
    let mut files = Vec::with_capacity(parsed.files.len());
    for (name, file) in parsed.files {
        validate_name(&name).map_err(|e| bad(e.to_string()))?;
        let source = PathBuf::from(&file);
        match std::fs::metadata(&source) {
            Ok(m) if m.is_file() => {}
            Ok(_) => return Err(bad(format!("{file} is not a file"))),
            Err(e) => return Err(bad(format!("{file}: {e}"))),
        }
        files.push(FileImport { source, name: Some(name), ..Default::default() });
    }
    Ok((r.project, path, edit, files))
}

/// Datasets per commit in `ingest`: large enough that commit overhead vanishes, small enough that a commit
/// (and the memory it takes) stays modest.
pub const INGEST_BATCH: usize = 10_000;

/// Builds the change an edit makes to a dataset (`existing` is its current state, if it has one).
fn change_for(id: Uuid, existing: Option<&DatasetState>, edit: &DatasetEdit) -> DatasetChange {
    let mut change = DatasetChange {
        id,
        kind: edit.kind.clone(),
        meta: edit.meta_doc.clone(),
        lineage: edit.lineage.clone(),
        ..Default::default()
    };
    let current = |change: &DatasetChange, head: &str| -> Option<Value> {
        change.meta.get(head).cloned().or_else(|| existing.and_then(|s| s.meta.get(head).cloned()))
    };
    for key in &edit.unset {
        match key.split_once('.') {
            None => {
                change.meta.remove(key);
                change.unset.push(key.clone());
            }
            Some((head, rest)) => {
                if let Some(Value::Object(mut inner)) = current(&change, head)
                    && unset_dotted(&mut inner, rest)
                {
                    change.meta.insert(head.to_string(), Value::Object(inner));
                }
            }
        }
    }
    for (key, value) in &edit.meta {
        match key.split_once('.') {
            None => {
                change.meta.insert(key.clone(), value.clone());
            }
            Some((head, rest)) => {
                let mut inner = match current(&change, head) {
                    Some(Value::Object(m)) => m,
                    _ => Map::new(),
                };
                set_dotted(&mut inner, rest, value.clone());
                change.meta.insert(head.to_string(), Value::Object(inner));
            }
        }
    }
    change.unset.retain(|k| !change.meta.contains_key(k));
    for tag in &edit.tags_add {
        change.tags.insert(tag.clone(), true);
    }
    for tag in &edit.tags_rm {
        change.tags.insert(tag.clone(), false);
    }
    change
}

/// Refuses a dataset at `path` when a dataset above it has an object on its way (`lab/x:y` for `lab/x/y/z`):
/// the object and the dataset's folder would be the same entry on disk.
fn check_no_object_clash(read: &Reader<'_>, project: &str, path: &DatasetPath) -> Result<()> {
    AncestorObjects::default().check(read, project, path)
}

/// [`check_no_object_clash`] for many datasets at once, looking each ancestor up once.
#[derive(Default)]
struct AncestorObjects(HashMap<(String, DatasetPath), Vec<String>>);

impl AncestorObjects {
    fn check(&mut self, read: &Reader<'_>, project: &str, path: &DatasetPath) -> Result<()> {
        let mut child = path.clone();
        while let Some(parent) = child.parent() {
            let key = (project.to_string(), parent.clone());
            if !self.0.contains_key(&key) {
                let names = read
                    .dataset_at(project, parent.as_str())?
                    .map(|row| row.state.objects.into_keys().collect())
                    .unwrap_or_default();
                self.0.insert(key.clone(), names);
            }
            if self.0.get(&key).is_some_and(|names| names.iter().any(|n| n == child.name())) {
                return Err(Error::Exists {
                    what: format!("object {project}/{parent}:{} (a dataset cannot lie inside an object)", child.name()),
                });
            }
            child = parent;
        }
        Ok(())
    }
}

/// Refuses an object name that is also the name of a dataset (or folder) directly below.
fn check_no_child_clash(read: &Reader<'_>, project: &str, path: &DatasetPath, object: &str) -> Result<()> {
    let child = format!("{path}/{object}");
    if read.dataset_at(project, &child)?.is_some() || read.has_descendants(project, &child)? {
        return Err(Error::Exists { what: format!("dataset {project}/{child} (an object cannot take the same name)") });
    }
    Ok(())
}

impl Store {
    /// Creates or updates the dataset at `project/path`, importing `files` as objects (replacing objects of
    /// the same name atomically). One commit.
    pub fn put(
        &self,
        project: &str,
        path: &DatasetPath,
        edit: &DatasetEdit,
        files: &[FileImport],
    ) -> Result<PutOutcome> {
        validate_project(project)?;
        edit.validate()?;
        let staged = self.stage(files)?;
        self.put_staged(project, path, edit, staged)
    }

    /// Commits objects already staged (and the edit) to the dataset at `project/path`. One commit; on
    /// failure the staged files are removed.
    pub(crate) fn put_staged(
        &self,
        project: &str,
        path: &DatasetPath,
        edit: &DatasetEdit,
        staged: Vec<Staged>,
    ) -> Result<PutOutcome> {
        let checked = validate_project(project).map_err(Error::from).and_then(|()| edit.validate()).and_then(|()| {
            let mut names = std::collections::HashSet::new();
            match staged.iter().find(|s| !names.insert(s.name.as_str())) {
                Some(twice) => Err(Error::Invalid(format!(
                    "two files would both be object {:?} of {project}/{path}: a dataset holds one object of a name",
                    twice.name
                ))),
                None => Ok(()),
            }
        });
        if let Err(e) = checked {
            self.unstage(&staged);
            return Err(e);
        }
        let keys: Vec<String> = staged.iter().map(|s| s.key.clone()).collect();
        self.transact_staged("put", &keys, |read, plan| {
            plan.ensure_project(read, project)?;
            let existing = read.dataset_at(project, path.as_str())?.map(|r| r.state);
            let created = existing.is_none();
            let id = existing.as_ref().map_or_else(|| self.new_dataset_id(project, path), |s| s.id);
            let mut change = change_for(id, existing.as_ref(), edit);
            if created {
                check_no_object_clash(read, project, path)?;
                change.alive = Some(true);
                change.at = Some(Location(project.to_string(), path.clone()));
            }
            for s in &staged {
                check_no_child_clash(read, project, path, &s.name)?;
                change.objects.insert(s.name.clone(), Some(s.manifest.clone()));
                plan.moves.push(s.move_to(id, object_key(project, path, &s.name)));
            }
            plan.records.push(Record::Dataset(change));
            Ok(PutOutcome {
                created,
                id,
                objects: staged.iter().map(|s| (s.name.clone(), s.manifest.clone())).collect(),
                guesses: staged.iter().flat_map(|s| s.guesses.iter().cloned()).collect(),
            })
        })
    }

    /// Edits the metadata, kind or tags of an existing dataset, or the metadata of a project (a reference
    /// without a path). One commit.
    pub fn edit(&self, r: &Ref, edit: &DatasetEdit) -> Result<()> {
        edit.validate()?;
        if edit.is_empty() {
            return Ok(());
        }
        let Some(path) = &r.path else {
            if edit.kind.is_some() || !edit.tags_add.is_empty() || !edit.tags_rm.is_empty() {
                return Err(Error::Mismatch(format!("{r} is a project: projects have metadata, not kinds or tags")));
            }
            return self.edit_project(&r.project, edit, false);
        };
        self.transact("edit", |read, plan| {
            let state = read
                .dataset_at(&r.project, path.as_str())?
                .ok_or_else(|| Error::NotFound { what: format!("dataset {}", r.without_object()) })?
                .state;
            plan.records.push(Record::Dataset(change_for(state.id, Some(&state), edit)));
            Ok(())
        })
    }

    /// [`Store::edit`] for many datasets at once, in one commit: every one of them changes, or (when one is
    /// missing or not a dataset) none. A dataset named twice changes once. Returns how many changed.
    pub fn edit_all(&self, refs: &[Ref], edit: &DatasetEdit) -> Result<u64> {
        edit.validate()?;
        if edit.is_empty() || refs.is_empty() {
            return Ok(0);
        }
        self.transact("edit", |read, plan| {
            let mut seen = std::collections::HashSet::new();
            for r in refs {
                let (Some(path), None) = (&r.path, &r.object) else {
                    return Err(Error::Mismatch(format!("{r}: editing many at once takes datasets (PROJECT/PATH)")));
                };
                let state = read
                    .dataset_at(&r.project, path.as_str())?
                    .ok_or_else(|| Error::NotFound { what: format!("dataset {r}") })?
                    .state;
                if seen.insert(state.id) {
                    plan.records.push(Record::Dataset(change_for(state.id, Some(&state), edit)));
                }
            }
            Ok(seen.len() as u64)
        })
    }

    /// Creates a project (with metadata), or with `update` edits an existing one's metadata.
    pub fn create_project(&self, name: &str, meta: &[(String, Value)]) -> Result<()> {
        validate_project(name)?;
        self.edit_project(name, &DatasetEdit { meta: meta.to_vec(), ..Default::default() }, true)
    }

    fn edit_project(&self, name: &str, edit: &DatasetEdit, create: bool) -> Result<()> {
        edit.validate()?;
        self.transact("project", |read, plan| {
            let existing = read.project(name)?;
            if existing.is_none() && !create {
                return Err(Error::NotFound { what: format!("project {name}") });
            }
            let as_dataset = existing.map(|p| {
                DatasetState::from_change(
                    DatasetChange { id: Uuid::nil(), meta: p.meta, ..Default::default() },
                    &trove_model::Stamp::new(0, "0", 0),
                )
            });
            let change = change_for(Uuid::nil(), as_dataset.as_ref(), edit);
            plan.records.push(Record::Project(ProjectChange {
                project: name.to_string(),
                meta: change.meta,
                unset: change.unset,
            }));
            Ok(())
        })
    }

    /// Creates or updates datasets from JSON Lines (see [`IngestLine`]), one commit per [`INGEST_BATCH`]
    /// lines. Every line is checked before anything is written; the first bad line is reported by number.
    /// Relative file paths are taken from the current directory. `progress(done, total)` is told after every
    /// commit; when it returns false, the ingest stops there ([`Error::Interrupted`]): the batches committed
    /// stay, nothing of the rest is written.
    pub fn ingest(
        &self,
        input: impl BufRead,
        source: &str,
        batch_size: usize,
        progress: &mut dyn FnMut(u64, u64) -> bool,
    ) -> Result<IngestReport> {
        // Read every line, then check them on all cores: nothing is written unless every line is good.
        let mut raw: Vec<(usize, String)> = Vec::new();
        for (i, line) in input.lines().enumerate() {
            let line =
                line.map_err(|e| Error::Ingest { path: source.to_string(), line: i + 1, message: e.to_string() })?;
            if !line.trim().is_empty() {
                raw.push((i + 1, line));
            }
        }
        let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 8);
        let per_worker = raw.len().div_ceil(workers).max(1);
        let parsed: Vec<Result<Vec<IngestItem>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = raw
                .chunks(per_worker)
                .map(|part| {
                    scope.spawn(move || part.iter().map(|(n, line)| parse_ingest_line(source, *n, line)).collect())
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(Error::Invalid("an ingest worker thread panicked".into()))))
                .collect()
        });
        let numbers: Vec<usize> = raw.iter().map(|(n, _)| *n).collect();
        drop(raw);
        let mut lines = Vec::new();
        for part in parsed {
            // Parts are in input order, so the first error met is the first bad line.
            lines.extend(part?);
        }
        let total = lines.len() as u64;
        let mut report = IngestReport::default();
        let mut done = 0u64;
        for chunk in lines.chunks(batch_size.max(1)) {
            if !progress(done, total) {
                let commits = report.commits;
                return Err(Error::Interrupted {
                    what: format!("{done} of {total} records were committed (in {commits} commits), the rest were not"),
                });
            }
            // A batch that fails after earlier ones were committed says so: those stay.
            let partial = |e: Error| match report.commits {
                0 => e,
                commits => Error::Ingest {
                    path: source.to_string(),
                    line: numbers.get(done as usize).copied().unwrap_or(0),
                    message: format!(
                        "{e} (in the batch from this line on; the {done} lines before it were committed, in \
                         {commits} commits, and nothing from this batch on)"
                    ),
                },
            };
            let files: Vec<FileImport> = chunk.iter().flat_map(|(_, _, _, f)| f.iter().cloned()).collect();
            let staged = self.stage(&files).map_err(partial)?;
            let keys: Vec<String> = staged.iter().map(|s| s.key.clone()).collect();
            let batch = self.transact_staged("ingest", &keys, |read, plan| {
                let mut staged = staged.iter();
                let mut ids: HashMap<(&str, &DatasetPath), (Uuid, Option<DatasetState>)> = HashMap::new();
                let mut parents = AncestorObjects::default();
                let (mut created, mut updated) = (0, 0);
                for (project, path, edit, files) in chunk {
                    plan.ensure_project(read, project)?;
                    let key = (project.as_str(), path);
                    let (id, existing, is_new) = match ids.get(&key) {
                        Some((id, existing)) => (*id, existing.clone(), false),
                        None => {
                            let existing = read.dataset_at(project, path.as_str())?.map(|r| r.state);
                            let id = existing.as_ref().map_or_else(|| self.new_dataset_id(project, path), |s| s.id);
                            (id, existing, true)
                        }
                    };
                    let mut change = change_for(id, existing.as_ref(), edit);
                    if existing.is_none() && is_new {
                        parents.check(read, project, path)?;
                        change.alive = Some(true);
                        change.at = Some(Location(project.clone(), path.clone()));
                        created += 1;
                    } else if is_new {
                        updated += 1;
                    }
                    for _ in files {
                        if let Some(s) = staged.next() {
                            check_no_child_clash(read, project, path, &s.name)?;
                            change.objects.insert(s.name.clone(), Some(s.manifest.clone()));
                            plan.moves.push(s.move_to(id, object_key(project, path, &s.name)));
                        }
                    }
                    if is_new {
                        ids.insert(key, (id, existing));
                    }
                    plan.records.push(Record::Dataset(change));
                }
                Ok((created, updated))
            });
            let (created, updated) = batch.map_err(partial)?;
            report.created += created;
            report.updated += updated;
            report.commits += 1;
            done += chunk.len() as u64;
        }
        progress(done, total);
        Ok(report)
    }

    /// Removes a dataset (with `recursive`, a dataset or folder and everything below), or one object
    /// (`PROJECT/PATH:OBJECT`). Returns how many datasets (or objects) went. One commit; the files go after it.
    pub fn remove(&self, r: &Ref, recursive: bool) -> Result<u64> {
        self.remove_all(std::slice::from_ref(r), recursive)
    }

    /// [`Store::remove`] for many references at once, in one commit: all of them go, or (when one cannot)
    /// none. A dataset named twice, or below another one named, goes once. Returns how many went.
    pub fn remove_all(&self, refs: &[Ref], recursive: bool) -> Result<u64> {
        self.transact("rm", |read, plan| {
            let mut gone = std::collections::HashSet::new();
            let mut n = 0;
            for r in refs {
                n += plan_removal(read, plan, r, recursive, &mut gone)?;
            }
            Ok(n)
        })
    }

    /// The datasets a move or copy takes: the source dataset (if it is one) and everything below it.
    fn subtree(read: &Reader<'_>, from: &Ref, recursive: bool) -> Result<(DatasetPath, Vec<DatasetState>)> {
        if from.object.is_some() {
            return Err(Error::Mismatch(format!(
                "{from}: moving and copying take datasets (PROJECT/PATH), not objects"
            )));
        }
        let mut states = Vec::new();
        let path = match resolve(read, from)? {
            Target::Project(_) => {
                return Err(Error::Mismatch(format!(
                    "{from} is a project: moving and copying take datasets (PROJECT/PATH)"
                )));
            }
            Target::Dataset(state) => {
                states.push(state);
                from.path.clone()
            }
            Target::Folder { path, .. } => {
                if !recursive {
                    return Err(Error::NeedsRecursive(format!(
                        "{from} is a folder of datasets: copying it copies every dataset in it"
                    )));
                }
                Some(path)
            }
        };
        let path = path.ok_or_else(|| Error::Invalid(format!("{from}: not a dataset")))?;
        if recursive {
            read.descendants(&from.project, path.as_str(), |row| {
                states.push(row.state);
                Ok(())
            })?;
        }
        Ok((path, states))
    }

    /// Checks a move or copy destination: a path with nothing at or below it, outside the source.
    fn check_destination(read: &Reader<'_>, from: &Ref, from_path: &DatasetPath, to: &Ref) -> Result<DatasetPath> {
        validate_project(&to.project)?;
        let to_path = match (&to.path, &to.object) {
            (Some(p), None) => p.clone(),
            _ => return Err(Error::Invalid(format!("{to}: the destination must be PROJECT/PATH"))),
        };
        if to.project == from.project && to_path.is_within(from_path) {
            return Err(Error::Invalid(format!("cannot move or copy {from} into itself ({to})")));
        }
        if read.dataset_at(&to.project, to_path.as_str())?.is_some()
            || read.has_descendants(&to.project, to_path.as_str())?
        {
            return Err(Error::Exists { what: format!("dataset {to}") });
        }
        check_no_object_clash(read, &to.project, &to_path)?;
        Ok(to_path)
    }

    /// The datasets a move or copy takes, each with its new location; creates the destination project in
    /// the plan when needed.
    fn relocations(
        read: &Reader<'_>,
        plan: &mut Plan,
        from: &Ref,
        to: &Ref,
        recursive: bool,
    ) -> Result<Vec<(DatasetState, Location)>> {
        let (from_path, states) = Store::subtree(read, from, recursive)?;
        let to_path = Store::check_destination(read, from, &from_path, to)?;
        plan.ensure_project(read, &to.project)?;
        let mut out = Vec::with_capacity(states.len());
        for state in states {
            let Some(new_path) = state.at.as_ref().and_then(|at| at.path().rebase(&from_path, &to_path)) else {
                continue;
            };
            out.push((state, Location(to.project.clone(), new_path)));
        }
        Ok(out)
    }

    /// Renames a dataset or folder, with everything below it, keeping every id; its files move with it.
    /// One commit. Returns the number of datasets moved.
    pub fn rename(&self, from: &Ref, to: &Ref) -> Result<u64> {
        // Moving a subtree is exclusive per project across machines (on one machine the catalog lock already
        // serialises writers): two moves of one subtree to different places must not interleave.
        let mut projects = vec![from.project.clone(), to.project.clone()];
        projects.sort();
        projects.dedup();
        let _leases: Vec<trove_storage::Lease> =
            projects.iter().map(|p| self.lease(&format!("tree/{p}"))).collect::<Result<_>>()?;
        self.transact("mv", |read, plan| {
            let moves = Store::relocations(read, plan, from, to, true)?;
            for (state, new) in &moves {
                let Some(at) = &state.at else { continue };
                for (name, m) in &state.objects {
                    plan.moves.push(FileMove {
                        from: object_key(at.project(), at.path(), name),
                        to: object_key(new.project(), new.path(), name),
                        id: state.id,
                        object: name.clone(),
                        checksum: m.checksum.clone(),
                    });
                }
                plan.records.push(Record::Dataset(DatasetChange {
                    id: state.id,
                    at: Some(new.clone()),
                    ..Default::default()
                }));
            }
            Ok(moves.len() as u64)
        })
    }

    /// Copies a dataset (with `recursive`, everything below it too) to a new path: new ids, copied files,
    /// and an `origin` naming what each copy came from. One commit. Returns the number of datasets copied.
    pub fn copy(&self, from: &Ref, to: &Ref, recursive: bool) -> Result<u64> {
        self.transact("cp", |read, plan| {
            let copies = Store::relocations(read, plan, from, to, recursive)?;
            for (state, new) in &copies {
                let Some(at) = &state.at else { continue };
                let id = self.new_dataset_id(new.project(), new.path());
                // Copies are made in staging before the commit and moved into place after it, like imports,
                // so a copy killed half-way leaves only staging orphans.
                for (name, manifest) in &state.objects {
                    let staged = self.staging_key();
                    plan.copies.push((object_key(at.project(), at.path(), name), staged.clone()));
                    plan.moves.push(FileMove {
                        from: staged,
                        to: object_key(new.project(), new.path(), name),
                        id,
                        object: name.clone(),
                        checksum: manifest.checksum.clone(),
                    });
                }
                plan.records.push(Record::Dataset(DatasetChange {
                    id,
                    alive: Some(true),
                    at: Some(new.clone()),
                    kind: state.kind.clone(),
                    meta: state.meta.clone(),
                    tags: state.tags.iter().map(|t| (t.clone(), true)).collect(),
                    objects: state.objects.iter().map(|(n, m)| (n.clone(), Some(m.clone()))).collect(),
                    lineage: state.lineage.clone(),
                    origin: Some(json!({"id": state.id.to_string(), "ref": format!("{}/{}", at.project(), at.path())})),
                    ..Default::default()
                }));
            }
            Ok(copies.len() as u64)
        })
    }
}

/// Plans the removal of what `r` names (see [`Store::remove`]) into `plan`, skipping what `gone` says an
/// earlier reference of the same commit removed. Returns how many datasets (or objects) it adds.
fn plan_removal(
    read: &Reader<'_>,
    plan: &mut Plan,
    r: &Ref,
    recursive: bool,
    gone: &mut std::collections::HashSet<(Uuid, Option<String>)>,
) -> Result<u64> {
    if let Some(object) = &r.object {
        let path = r.path.as_ref().ok_or_else(|| Error::Invalid(format!("{r}: an object needs a dataset")))?;
        let state = read
            .dataset_at(&r.project, path.as_str())?
            .ok_or_else(|| Error::NotFound { what: format!("dataset {}", r.without_object()) })?
            .state;
        if !state.objects.contains_key(object) {
            return Err(Error::NotFound { what: format!("object {r}") });
        }
        if !gone.insert((state.id, Some(object.clone()))) {
            return Ok(0);
        }
        let mut change = DatasetChange { id: state.id, ..Default::default() };
        change.objects.insert(object.clone(), None);
        plan.records.push(Record::Dataset(change));
        plan.cleanup.push(object_key(&r.project, path, object));
        return Ok(1);
    }
    let (own, prefix) = match resolve(read, r)? {
        Target::Project(_) => {
            if !recursive {
                return Err(Error::NeedsRecursive(format!(
                    "{r} is a project: removing it removes every dataset in it"
                )));
            }
            (None, String::new())
        }
        Target::Dataset(state) => {
            let p = r.path.as_ref().map(|p| p.as_str().to_string()).unwrap_or_default();
            (Some(state), p)
        }
        Target::Folder { path, .. } => {
            if !recursive {
                return Err(Error::NeedsRecursive(format!(
                    "{r} is a folder of datasets: removing it removes every dataset in it"
                )));
            }
            (None, path.as_str().to_string())
        }
    };
    let mut victims: Vec<DatasetState> = own.into_iter().collect();
    read.descendants(&r.project, &prefix, |row| {
        victims.push(row.state);
        Ok(())
    })?;
    if !recursive && victims.len() > 1 {
        return Err(Error::NeedsRecursive(format!(
            "{r} has {} datasets below it: removing it removes them too",
            victims.len() - 1
        )));
    }
    victims.retain(|state| gone.insert((state.id, None)));
    for state in &victims {
        if let Some(at) = &state.at {
            for name in state.objects.keys() {
                plan.cleanup.push(object_key(at.project(), at.path(), name));
            }
        }
        plan.records.push(Record::Dataset(removal(state)));
    }
    Ok(victims.len() as u64)
}
