//! Lineages and the store: the input a reference stands for, the checksum of a code file, and the lineage
//! tree of stored derived data with where each input is now (`trove lineage`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Value, json};
use trove_model::lineage::{Input, Lineage};
use trove_model::record::folder_listing;
use trove_model::{DatasetState, FileEntry, Ref};

use crate::compute::Loose;
use crate::error::{Error, Result};
use crate::objects::hex;
use crate::store::Store;

/// The checksum (`blake3:<hex>`) of a code file, or of a folder of them (as for a folder object: the hash of
/// its listing of paths, sizes and checksums).
pub fn code_checksum(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    if !meta.is_dir() {
        let (_, hash) = trove_storage::storage::hash_file(path).map_err(Error::io(path))?;
        return Ok(hex(hash));
    }
    let mut files = BTreeMap::new();
    for file in trove_formats::folder::files(path)? {
        let (size, hash) = trove_storage::storage::hash_file(&file.path).map_err(Error::io(&file.path))?;
        files.insert(file.relative, FileEntry { size, checksum: hex(hash) });
    }
    Ok(hex(blake3::hash(folder_listing(&files).as_bytes())))
}

/// Whether a lineage's input is still where it was found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Presence {
    /// The same content is stored at `at` (where it was found, or elsewhere when it moved).
    Present {
        at: String,
    },
    /// Something else is stored where it was found now, and the content is nowhere else.
    Changed {
        at: String,
    },
    Missing,
}

impl std::fmt::Display for Presence {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Presence::Present { at } => write!(f, "present at {at}"),
            Presence::Changed { at } => write!(f, "changed at {at} (the content used is gone)"),
            Presence::Missing => write!(f, "missing"),
        }
    }
}

/// The lineage of stored derived data, with each input's presence, recursively.
#[derive(Debug, Clone)]
pub struct LineageTree {
    pub lineage: Lineage,
    pub key: String,
    pub presence: Presence,
    pub inputs: Vec<InputNode>,
}

/// One input of a [`LineageTree`].
#[derive(Debug, Clone)]
pub struct InputNode {
    pub input: Input,
    pub presence: Presence,
    /// For a derived input: its own tree.
    pub tree: Option<LineageTree>,
}

impl LineageTree {
    /// The tree as JSON (`trove lineage --json`).
    pub fn to_json(&self) -> Value {
        let presence = |p: &Presence| match p {
            Presence::Present { at } => json!({"status": "present", "at": at}),
            Presence::Changed { at } => json!({"status": "changed", "at": at}),
            Presence::Missing => json!({"status": "missing"}),
        };
        let mut out = self.lineage.to_json();
        out["presence"] = presence(&self.presence);
        let inputs: Vec<Value> = self
            .inputs
            .iter()
            .map(|node| {
                let mut v = match &node.tree {
                    Some(tree) => json!({"lineage": tree.to_json()}),
                    None => match &node.input {
                        Input::Object { checksum, .. } => json!({"object": checksum}),
                        Input::Dataset { objects, .. } => json!({"dataset": objects}),
                        Input::Derived { lineage, .. } => json!({"lineage": lineage.to_json()}),
                    },
                };
                if let Some(at) = node.input.at() {
                    v["ref"] = json!(at);
                }
                v["presence"] = presence(&node.presence);
                v
            })
            .collect();
        out["inputs"] = Value::Array(inputs);
        out
    }
}

impl Store {
    /// The input `r` stands for in a lineage, noting `r` as where it was found: an object by its checksum, a
    /// derived dataset by its lineage, any other dataset by its objects' names and checksums.
    pub fn lineage_input(&self, r: &Ref) -> Result<Input> {
        let state = self.dataset_for(r)?;
        let input = match &r.object {
            Some(name) => {
                let manifest =
                    state.objects.get(name).ok_or_else(|| Error::NotFound { what: format!("object {r}") })?;
                Input::object(manifest.checksum.clone())
            }
            None => match stored_lineage(&state)? {
                Some(lineage) => Input::derived(lineage),
                None => Input::dataset(state.objects.iter().map(|(n, m)| (n.clone(), m.checksum.clone())).collect()),
            },
        };
        Ok(input.found_at(r.to_string()))
    }

    /// The lineage tree of the derived dataset `r`, with where each input is now.
    pub fn lineage_tree(&self, r: &Ref) -> Result<LineageTree> {
        let r = r.without_object();
        let state = self.dataset_for(&r)?;
        let lineage = stored_lineage(&state)?
            .ok_or_else(|| Error::Mismatch(format!("{r} has no lineage: it is not derived data")))?;
        self.refresh()?;
        self.tree_of(lineage, Presence::Present { at: r.to_string() }, 0)
    }

    fn tree_of(&self, lineage: Lineage, presence: Presence, depth: usize) -> Result<LineageTree> {
        if depth > 64 {
            return Err(Error::Invalid("lineage nested more than 64 levels deep".into()));
        }
        let key = lineage.key();
        let mut inputs = Vec::with_capacity(lineage.inputs.len());
        for input in &lineage.inputs {
            let presence = self.presence_of(input)?;
            let tree = match input {
                Input::Derived { lineage, .. } => {
                    Some(self.tree_of((**lineage).clone(), presence.clone(), depth + 1)?)
                }
                _ => None,
            };
            inputs.push(InputNode { input: input.clone(), presence, tree });
        }
        Ok(LineageTree { lineage, key, presence, inputs })
    }

    fn presence_of(&self, input: &Input) -> Result<Presence> {
        let recorded = input.at().and_then(|at| Ref::parse(at).ok());
        match input {
            Input::Derived { lineage, .. } => {
                let found = self.lookup_derived(lineage, &lineage.key(), &Loose::default())?;
                Ok(found.map_or(Presence::Missing, |c| Presence::Present { at: c.reference.to_string() }))
            }
            Input::Object { checksum, .. } => {
                let here = recorded.as_ref().and_then(|r| {
                    let state = self.dataset_for(r).ok()?;
                    Some(state.objects.get(r.object.as_deref()?)?.checksum.clone())
                });
                if let (Some(r), Some(c)) = (&recorded, &here)
                    && c == checksum
                {
                    return Ok(Presence::Present { at: r.to_string() });
                }
                let elsewhere = self.read(|read| Ok(read.objects_with_checksum(checksum)?))?;
                if let Some((project, path, name)) = elsewhere.into_iter().next() {
                    return Ok(Presence::Present { at: format!("{project}/{path}:{name}") });
                }
                Ok(match (recorded, here) {
                    (Some(r), Some(_)) => Presence::Changed { at: r.to_string() },
                    _ => Presence::Missing,
                })
            }
            Input::Dataset { objects, .. } => {
                let Some(r) = recorded else { return Ok(Presence::Missing) };
                Ok(match self.dataset_for(&r) {
                    Ok(state) => {
                        let now: BTreeMap<String, String> =
                            state.objects.iter().map(|(n, m)| (n.clone(), m.checksum.clone())).collect();
                        if &now == objects {
                            Presence::Present { at: r.to_string() }
                        } else {
                            Presence::Changed { at: r.to_string() }
                        }
                    }
                    Err(Error::NotFound { .. }) => Presence::Missing,
                    Err(e) => return Err(e),
                })
            }
        }
    }
}

/// The lineage a dataset carries, read back from its stored form.
pub(crate) fn stored_lineage(state: &DatasetState) -> Result<Option<Lineage>> {
    state
        .lineage
        .as_ref()
        .map(|v| Lineage::from_json(v).map_err(|e| Error::Invalid(format!("dataset {}: {e}", state.id))))
        .transpose()
}
