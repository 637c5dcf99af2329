//! Reading datasets: lookups by reference and the JSON shape `show --json` and `ls --json` print.

use serde_json::{Map, Value, json};
use trove_catalog::{Child, Reader};
use trove_model::{DatasetPath, DatasetState, ProjectState, Ref};

use crate::error::{Error, Result};
use crate::store::Store;

/// The storage key of an object: `<project>/<path>/<name>`.
pub fn object_key(project: &str, path: &DatasetPath, name: &str) -> String {
    format!("{project}/{path}/{name}")
}

/// What a reference points at.
// One is made per lookup and moved rarely, so its size does not matter; boxing would only add noise.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Target {
    Project(ProjectState),
    Dataset(DatasetState),
    /// A path prefix with datasets below it but none of its own.
    Folder {
        project: String,
        path: DatasetPath,
    },
}

/// Deep-merges `over` onto `base`: objects merge key by key, anything else is replaced.
pub(crate) fn deep_merge(base: &mut Map<String, Value>, over: &Map<String, Value>) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(Value::Object(b)), Value::Object(o)) => deep_merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

impl Store {
    /// The dataset at `project/path`, if there is one.
    pub fn dataset(&self, project: &str, path: &DatasetPath) -> Result<Option<DatasetState>> {
        self.read(|r| Ok(r.dataset_at(project, path.as_str())?.map(|row| row.state)))
    }

    /// The dataset a reference names, or a clear "not found".
    pub fn dataset_for(&self, r: &Ref) -> Result<DatasetState> {
        let path = r.path.as_ref().ok_or_else(|| Error::Mismatch(format!("{r} names a project, not a dataset")))?;
        self.dataset(&r.project, path)?
            .ok_or_else(|| Error::NotFound { what: format!("dataset {}", r.without_object()) })
    }

    /// Resolves a reference to a project, dataset or implicit folder.
    pub fn resolve(&self, r: &Ref) -> Result<Target> {
        self.read(|read| resolve(read, r))
    }

    /// The entries directly below a project or path.
    pub fn children(&self, project: &str, path: Option<&DatasetPath>) -> Result<Vec<Child>> {
        self.read(|r| Ok(r.children(project, path.map(DatasetPath::as_str).unwrap_or(""))?))
    }

    /// Every dataset strictly below a path (the whole project when `None`), in path order.
    pub fn descendants(
        &self,
        project: &str,
        path: Option<&DatasetPath>,
        mut each: impl FnMut(DatasetState) -> Result<()>,
    ) -> Result<()> {
        self.read(|r| {
            let mut failure = None;
            r.descendants(project, path.map(DatasetPath::as_str).unwrap_or(""), |row| {
                if failure.is_none()
                    && let Err(e) = each(row.state)
                {
                    failure = Some(e);
                }
                Ok(())
            })?;
            failure.map_or(Ok(()), Err)
        })
    }

    /// All projects.
    pub fn projects(&self) -> Result<Vec<ProjectState>> {
        self.read(|r| Ok(r.projects()?))
    }

    /// The project's metadata and every ancestor dataset's, merged under the dataset's own (HARDS' "data
    /// flows down"): project first, then each ancestor outermost first, then the dataset.
    pub fn inherited_metadata(&self, state: &DatasetState) -> Result<Map<String, Value>> {
        let Some(at) = &state.at else { return Ok(state.meta.clone()) };
        self.read(|r| {
            let mut merged = r.project(at.project())?.map(|p| p.meta).unwrap_or_default();
            for ancestor in at.path().ancestors() {
                if let Some(row) = r.dataset_at(at.project(), ancestor.as_str())? {
                    deep_merge(&mut merged, &row.state.meta);
                }
            }
            deep_merge(&mut merged, &state.meta);
            Ok(merged)
        })
    }

    /// The path of a storage key relative to the store root, as it is on disk.
    pub fn relative_path(&self, key: &str) -> String {
        trove_storage::storage::path_of(key).to_string()
    }

    /// The JSON object `show --json` prints for a dataset.
    pub fn dataset_json(&self, state: &DatasetState) -> Value {
        let (project, path) = match &state.at {
            Some(at) => (json!(at.project()), json!(at.path().as_str())),
            None => (Value::Null, Value::Null),
        };
        let objects: Vec<Value> = state
            .objects
            .iter()
            .map(|(name, m)| {
                let rel = state
                    .at
                    .as_ref()
                    .map(|at| self.relative_path(&object_key(at.project(), at.path(), name)))
                    .map_or(Value::Null, Value::String);
                let mut o = json!({
                    "name": name,
                    "format": m.format,
                    "size": m.size,
                    "checksum": m.checksum,
                    "path": rel,
                });
                if let Some(mt) = &m.media_type {
                    o["media_type"] = json!(mt);
                }
                if let Some(s) = &m.summary {
                    o["summary"] = s.clone();
                }
                if let Some(files) = &m.files {
                    o["files"] = json!(files.len());
                }
                if let Some(edited) = &m.edited {
                    o["edited"] = json!(edited);
                }
                o
            })
            .collect();
        let mut out = json!({
            "id": state.id.to_string(),
            "project": project,
            "path": path,
            "kind": state.kind,
            "metadata": state.meta,
            "tags": state.tags,
            "objects": objects,
            "created": trove_model::time::rfc3339(state.created()),
            "updated": trove_model::time::rfc3339(state.updated()),
        });
        if let Some(l) = &state.lineage {
            out["lineage"] = l.clone();
        }
        if let Some(o) = &state.origin {
            out["origin"] = o.clone();
        }
        out
    }

    /// The JSON object for a project.
    pub fn project_json(&self, project: &ProjectState) -> Result<Value> {
        let datasets = self.read(|r| Ok(r.count(Some(&project.name))?))?;
        Ok(json!({
            "project": project.name,
            "metadata": project.meta,
            "datasets": datasets,
            "created": trove_model::time::rfc3339(project.created()),
            "updated": trove_model::time::rfc3339(project.updated()),
        }))
    }
}

pub(crate) fn resolve(read: &Reader<'_>, r: &Ref) -> Result<Target> {
    let project =
        read.project(&r.project)?.ok_or_else(|| Error::NotFound { what: format!("project {}", r.project) })?;
    let Some(path) = &r.path else { return Ok(Target::Project(project)) };
    if let Some(row) = read.dataset_at(&r.project, path.as_str())? {
        return Ok(Target::Dataset(row.state));
    }
    if read.has_descendants(&r.project, path.as_str())? {
        return Ok(Target::Folder { project: r.project.clone(), path: path.clone() });
    }
    Err(Error::NotFound { what: format!("dataset {}", r.without_object()) })
}
