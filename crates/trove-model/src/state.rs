//! The merged state of a dataset or project, and the rule that merges it.
//!
//! Every field is a last-writer-wins register: it keeps the value with the greatest [`Stamp`]. A deleted
//! value (an unset key, a removed tag or object, a deleted dataset) is a register holding a tombstone, so a
//! late-arriving older change cannot bring it back. Merging is commutative, associative and idempotent, so
//! replaying the log in any order, or twice, gives the same state.
//!
//! The stored form is compact and canonical: values as plain JSON, one `base` stamp (the oldest register's),
//! and a `stamps` map only for registers whose stamp differs from `base` and for tombstones. A dataset made
//! by one change therefore carries one stamp, not one per field.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::record::{DatasetChange, Location, ObjectManifest, ProjectChange};
use crate::stamp::Stamp;

/// One field of a dataset or project.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Field {
    Alive,
    At,
    Kind,
    Lineage,
    Origin,
    Meta(String),
    Tag(String),
    Object(String),
}

impl Field {
    fn key(&self) -> String {
        match self {
            Field::Alive => "alive".into(),
            Field::At => "at".into(),
            Field::Kind => "kind".into(),
            Field::Lineage => "lineage".into(),
            Field::Origin => "origin".into(),
            Field::Meta(k) => format!("m:{k}"),
            Field::Tag(t) => format!("t:{t}"),
            Field::Object(o) => format!("o:{o}"),
        }
    }

    fn parse(key: &str) -> Option<Field> {
        Some(match key {
            "alive" => Field::Alive,
            "at" => Field::At,
            "kind" => Field::Kind,
            "lineage" => Field::Lineage,
            "origin" => Field::Origin,
            _ => match key.split_once(':')? {
                ("m", k) => Field::Meta(k.to_string()),
                ("t", t) => Field::Tag(t.to_string()),
                ("o", o) => Field::Object(o.to_string()),
                _ => return None,
            },
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
enum FieldValue {
    Bool(bool),
    At(Location),
    Text(String),
    Json(Value),
    Present,
    Object(ObjectManifest),
}

/// A register: its stamp and its value (`None` is a tombstone).
#[derive(Debug, Clone, PartialEq)]
struct Reg {
    stamp: Stamp,
    value: Option<FieldValue>,
}

/// The expanded form used while merging.
#[derive(Debug, Default)]
struct Registers(BTreeMap<Field, Reg>);

impl Registers {
    fn set(&mut self, field: Field, stamp: &Stamp, value: Option<FieldValue>) {
        match self.0.get(&field) {
            Some(existing) if existing.stamp >= *stamp => {}
            _ => {
                self.0.insert(field, Reg { stamp: stamp.clone(), value });
            }
        }
    }

    fn merge(&mut self, other: Registers) {
        for (field, reg) in other.0 {
            self.set(field, &reg.stamp, reg.value);
        }
    }

    /// The canonical base stamp (the oldest) and the stamps that must be stored explicitly.
    fn stamps(&self) -> (Stamp, BTreeMap<String, Stamp>) {
        let base = self.0.values().map(|r| &r.stamp).min().cloned().unwrap_or_else(|| Stamp::new(0, "0", 0));
        let explicit = self
            .0
            .iter()
            .filter(|(_, r)| r.value.is_none() || r.stamp != base)
            .map(|(f, r)| (f.key(), r.stamp.clone()))
            .collect();
        (base, explicit)
    }
}

/// The stamp of a stored field: its explicit stamp, or the base.
fn stamp_of<'a>(base: &'a Stamp, stamps: &'a BTreeMap<String, Stamp>, field: &Field) -> &'a Stamp {
    stamps.get(&field.key()).unwrap_or(base)
}

/// Tombstones: fields named in `stamps` whose value is absent.
fn tombstones(regs: &mut Registers, stamps: &BTreeMap<String, Stamp>, present: impl Fn(&Field) -> bool) {
    for (key, stamp) in stamps {
        if let Some(field) = Field::parse(key)
            && !present(&field)
        {
            regs.0.insert(field, Reg { stamp: stamp.clone(), value: None });
        }
    }
}

/// Everything the log says about one dataset, merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetState {
    pub id: Uuid,
    pub base: Stamp,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub alive: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub tags: BTreeSet<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub objects: BTreeMap<String, ObjectManifest>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lineage: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stamps: BTreeMap<String, Stamp>,
}

impl DatasetState {
    /// The state that one change alone describes.
    pub fn from_change(change: DatasetChange, stamp: &Stamp) -> DatasetState {
        // Without tombstones every register carries the one stamp: the canonical form is direct.
        let no_tombstones = change.unset.is_empty()
            && change.tags.values().all(|on| *on)
            && change.objects.values().all(Option::is_some);
        let sets_something = change.alive.is_some()
            || change.at.is_some()
            || change.kind.is_some()
            || change.lineage.is_some()
            || change.origin.is_some()
            || !change.meta.is_empty()
            || !change.tags.is_empty()
            || !change.objects.is_empty();
        if no_tombstones && sets_something {
            return DatasetState {
                id: change.id,
                base: stamp.clone(),
                alive: change.alive,
                at: change.at,
                kind: change.kind,
                meta: change.meta,
                tags: change.tags.into_keys().collect(),
                objects: change.objects.into_iter().filter_map(|(name, m)| m.map(|m| (name, m))).collect(),
                lineage: change.lineage,
                origin: change.origin,
                stamps: BTreeMap::new(),
            };
        }
        let mut regs = Registers::default();
        let id = change.id;
        if let Some(alive) = change.alive {
            regs.set(Field::Alive, stamp, Some(FieldValue::Bool(alive)));
        }
        if let Some(at) = change.at {
            regs.set(Field::At, stamp, Some(FieldValue::At(at)));
        }
        if let Some(kind) = change.kind {
            regs.set(Field::Kind, stamp, Some(FieldValue::Text(kind)));
        }
        if let Some(lineage) = change.lineage {
            regs.set(Field::Lineage, stamp, Some(FieldValue::Json(lineage)));
        }
        if let Some(origin) = change.origin {
            regs.set(Field::Origin, stamp, Some(FieldValue::Json(origin)));
        }
        // Within one change, a key both unset and set ends up set.
        for key in change.unset {
            regs.0.insert(Field::Meta(key), Reg { stamp: stamp.clone(), value: None });
        }
        for (key, value) in change.meta {
            regs.0.insert(Field::Meta(key), Reg { stamp: stamp.clone(), value: Some(FieldValue::Json(value)) });
        }
        for (tag, on) in change.tags {
            regs.set(Field::Tag(tag), stamp, on.then_some(FieldValue::Present));
        }
        for (name, manifest) in change.objects {
            regs.set(Field::Object(name), stamp, manifest.map(FieldValue::Object));
        }
        DatasetState::from_registers(id, regs)
    }

    fn registers(&self) -> Registers {
        let mut regs = Registers::default();
        let (base, stamps) = (&self.base, &self.stamps);
        let mut put = |field: Field, value: FieldValue| {
            let stamp = stamp_of(base, stamps, &field).clone();
            regs.0.insert(field, Reg { stamp, value: Some(value) });
        };
        if let Some(alive) = self.alive {
            put(Field::Alive, FieldValue::Bool(alive));
        }
        if let Some(at) = &self.at {
            put(Field::At, FieldValue::At(at.clone()));
        }
        if let Some(kind) = &self.kind {
            put(Field::Kind, FieldValue::Text(kind.clone()));
        }
        if let Some(lineage) = &self.lineage {
            put(Field::Lineage, FieldValue::Json(lineage.clone()));
        }
        if let Some(origin) = &self.origin {
            put(Field::Origin, FieldValue::Json(origin.clone()));
        }
        for (k, v) in &self.meta {
            put(Field::Meta(k.clone()), FieldValue::Json(v.clone()));
        }
        for t in &self.tags {
            put(Field::Tag(t.clone()), FieldValue::Present);
        }
        for (name, m) in &self.objects {
            put(Field::Object(name.clone()), FieldValue::Object(m.clone()));
        }
        tombstones(&mut regs, &self.stamps, |f| match f {
            Field::Alive => self.alive.is_some(),
            Field::At => self.at.is_some(),
            Field::Kind => self.kind.is_some(),
            Field::Lineage => self.lineage.is_some(),
            Field::Origin => self.origin.is_some(),
            Field::Meta(k) => self.meta.contains_key(k),
            Field::Tag(t) => self.tags.contains(t),
            Field::Object(o) => self.objects.contains_key(o),
        });
        regs
    }

    fn from_registers(id: Uuid, regs: Registers) -> DatasetState {
        let (base, stamps) = regs.stamps();
        let mut state = DatasetState {
            id,
            base,
            alive: None,
            at: None,
            kind: None,
            meta: Map::new(),
            tags: BTreeSet::new(),
            objects: BTreeMap::new(),
            lineage: None,
            origin: None,
            stamps,
        };
        for (field, reg) in regs.0 {
            let Some(value) = reg.value else { continue };
            match (field, value) {
                (Field::Alive, FieldValue::Bool(b)) => state.alive = Some(b),
                (Field::At, FieldValue::At(at)) => state.at = Some(at),
                (Field::Kind, FieldValue::Text(k)) => state.kind = Some(k),
                (Field::Lineage, FieldValue::Json(v)) => state.lineage = Some(v),
                (Field::Origin, FieldValue::Json(v)) => state.origin = Some(v),
                (Field::Meta(k), FieldValue::Json(v)) => {
                    state.meta.insert(k, v);
                }
                (Field::Tag(t), FieldValue::Present) => {
                    state.tags.insert(t);
                }
                (Field::Object(o), FieldValue::Object(m)) => {
                    state.objects.insert(o, m);
                }
                _ => {}
            }
        }
        state
    }

    /// Merges another state of the same dataset into this one.
    pub fn merge(&mut self, other: &DatasetState) {
        let mut regs = self.registers();
        regs.merge(other.registers());
        *self = DatasetState::from_registers(self.id, regs);
    }

    /// Applies one change with its stamp.
    pub fn apply(&mut self, change: DatasetChange, stamp: &Stamp) {
        self.merge(&DatasetState::from_change(change, stamp));
    }

    /// A dataset is live when it has been created at a location and not deleted since.
    pub fn is_alive(&self) -> bool {
        self.alive == Some(true) && self.at.is_some()
    }

    /// Creation time: the oldest stamp's time (microseconds since the epoch).
    pub fn created(&self) -> i64 {
        self.base.ts
    }

    /// Last change time (microseconds since the epoch).
    pub fn updated(&self) -> i64 {
        self.stamps.values().map(|s| s.ts).chain([self.base.ts]).max().unwrap_or(self.base.ts)
    }

    /// The lineage key filters compare `@lineage` with: the lineage itself when it is a string, else its `key`
    /// field.
    pub fn lineage_key(&self) -> Option<&str> {
        match self.lineage.as_ref()? {
            Value::String(key) => Some(key),
            Value::Object(fields) => fields.get("key")?.as_str(),
            _ => None,
        }
    }

    /// The name of the dataset's lineage (what was computed), when it has one.
    pub fn lineage_name(&self) -> Option<&str> {
        self.lineage.as_ref()?.get("name")?.as_str()
    }

    /// What filters see of this dataset, with `metadata` as its metadata (its own, or merged with its
    /// ancestors' for inherited queries).
    pub fn filter_doc(&self, metadata: Map<String, Value>) -> crate::filter::Doc {
        let (project, path) = match &self.at {
            Some(at) => (at.project().to_string(), at.path().as_str().to_string()),
            None => (String::new(), String::new()),
        };
        let mut formats: Vec<String> = self.objects.values().map(|o| o.format.clone()).collect();
        formats.sort_unstable();
        formats.dedup();
        crate::filter::Doc {
            id: self.id.to_string(),
            project,
            path,
            kind: self.kind.clone(),
            tags: self.tags.iter().cloned().collect(),
            created: self.created(),
            updated: self.updated(),
            formats,
            lineage: self.lineage_key().map(str::to_string),
            metadata,
        }
    }

    /// The stamp of the location register: among two live datasets claiming one path, the later claim wins.
    pub fn at_stamp(&self) -> &Stamp {
        stamp_of(&self.base, &self.stamps, &Field::At)
    }

    /// The greatest stamp in this state.
    pub fn max_stamp(&self) -> &Stamp {
        self.stamps.values().chain([&self.base]).max().unwrap_or(&self.base)
    }
}

/// Everything the log says about one project, merged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProjectState {
    pub name: String,
    pub base: Stamp,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub meta: Map<String, Value>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub stamps: BTreeMap<String, Stamp>,
}

impl ProjectState {
    pub fn from_change(change: ProjectChange, stamp: &Stamp) -> ProjectState {
        let mut regs = Registers::default();
        regs.set(Field::Alive, stamp, Some(FieldValue::Bool(true)));
        for key in change.unset {
            regs.0.insert(Field::Meta(key), Reg { stamp: stamp.clone(), value: None });
        }
        for (key, value) in change.meta {
            regs.0.insert(Field::Meta(key), Reg { stamp: stamp.clone(), value: Some(FieldValue::Json(value)) });
        }
        ProjectState::from_registers(change.project, regs)
    }

    fn registers(&self) -> Registers {
        let mut regs = Registers::default();
        regs.0.insert(
            Field::Alive,
            Reg {
                stamp: stamp_of(&self.base, &self.stamps, &Field::Alive).clone(),
                value: Some(FieldValue::Bool(true)),
            },
        );
        for (k, v) in &self.meta {
            let field = Field::Meta(k.clone());
            let stamp = stamp_of(&self.base, &self.stamps, &field).clone();
            regs.0.insert(field, Reg { stamp, value: Some(FieldValue::Json(v.clone())) });
        }
        tombstones(&mut regs, &self.stamps, |f| match f {
            Field::Alive => true,
            Field::Meta(k) => self.meta.contains_key(k),
            _ => true,
        });
        regs
    }

    fn from_registers(name: String, regs: Registers) -> ProjectState {
        let (base, stamps) = regs.stamps();
        let mut meta = Map::new();
        for (field, reg) in regs.0 {
            if let (Field::Meta(k), Some(FieldValue::Json(v))) = (field, reg.value) {
                meta.insert(k, v);
            }
        }
        ProjectState { name, base, meta, stamps }
    }

    pub fn merge(&mut self, other: &ProjectState) {
        let mut regs = self.registers();
        regs.merge(other.registers());
        *self = ProjectState::from_registers(std::mem::take(&mut self.name), regs);
    }

    pub fn created(&self) -> i64 {
        self.base.ts
    }

    pub fn updated(&self) -> i64 {
        self.stamps.values().map(|s| s.ts).chain([self.base.ts]).max().unwrap_or(self.base.ts)
    }

    pub fn max_stamp(&self) -> &Stamp {
        self.stamps.values().chain([&self.base]).max().unwrap_or(&self.base)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::DatasetPath;
    use proptest::prelude::*;
    use serde_json::json;

    fn id() -> Uuid {
        Uuid::from_u128(7)
    }

    fn create(path: &str) -> DatasetChange {
        DatasetChange {
            id: id(),
            alive: Some(true),
            at: Some(Location("p".into(), DatasetPath::parse(path).unwrap())),
            kind: Some("measurement".into()),
            meta: json!({"t": 300, "m": "steel"}).as_object().unwrap().clone(),
            tags: [("a".to_string(), true)].into(),
            ..Default::default()
        }
    }

    #[test]
    fn a_created_dataset_carries_one_stamp() {
        let s = DatasetState::from_change(create("r/1"), &Stamp::new(5, "w", 0));
        assert!(s.stamps.is_empty());
        assert!(s.is_alive());
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["base"], json!("5-w-0"));
        let back: DatasetState = serde_json::from_value(json).unwrap();
        assert_eq!(back, s);
    }

    #[test]
    fn last_writer_wins_per_field_and_tombstones_hold() {
        let mut s = DatasetState::from_change(create("r/1"), &Stamp::new(5, "w", 0));
        let later = DatasetChange {
            id: id(),
            unset: vec!["m".into()],
            tags: [("a".to_string(), false), ("b".to_string(), true)].into(),
            ..Default::default()
        };
        let earlier = DatasetChange {
            id: id(),
            meta: json!({"m": "iron", "x": 1}).as_object().unwrap().clone(),
            ..Default::default()
        };
        s.apply(later, &Stamp::new(9, "w", 0));
        s.apply(earlier, &Stamp::new(7, "v", 0));
        assert_eq!(Value::Object(s.meta.clone()), json!({"t": 300, "x": 1}));
        assert_eq!(s.tags.iter().collect::<Vec<_>>(), ["b"]);
        assert_eq!(s.created(), 5);
        assert_eq!(s.updated(), 9);
    }

    fn arb_change() -> impl Strategy<Value = DatasetChange> {
        let key = prop::sample::select(vec!["a", "b", "c"]);
        (
            prop::option::of(any::<bool>()),
            prop::option::of(prop::sample::select(vec!["x", "y/z"])),
            prop::option::of(prop::sample::select(vec!["k1", "k2"])),
            prop::collection::btree_map(key.clone(), -3i64..3, 0..3),
            prop::collection::vec(key.clone(), 0..2),
            prop::collection::btree_map(key, any::<bool>(), 0..3),
        )
            .prop_map(|(alive, at, kind, meta, unset, tags)| DatasetChange {
                id: id(),
                alive,
                at: at.map(|p| Location("p".into(), DatasetPath::parse(p).unwrap())),
                kind: kind.map(str::to_string),
                meta: meta.into_iter().map(|(k, v)| (k.to_string(), json!(v))).collect(),
                unset: unset.into_iter().map(str::to_string).collect(),
                tags: tags.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                ..Default::default()
            })
    }

    proptest! {
        #[test]
        fn the_direct_form_of_a_change_is_the_canonical_one(change in arb_change(), ts in 0i64..5) {
            let stamp = Stamp::new(ts, "w", 0);
            let direct = DatasetState::from_change(change.clone(), &stamp);
            let mut regs = Registers::default();
            regs.merge(direct.registers());
            prop_assert_eq!(DatasetState::from_registers(change.id, regs), direct);
        }

        #[test]
        fn merge_is_order_independent_and_idempotent(
            changes in prop::collection::vec((arb_change(), 0i64..5, prop::sample::select(vec!["w1", "w2"])), 1..8),
            perm_seed in any::<u64>(),
        ) {
            let states: Vec<DatasetState> = changes
                .into_iter()
                .enumerate()
                .map(|(i, (c, ts, w))| DatasetState::from_change(c, &Stamp::new(ts, w, i as u32)))
                .collect();
            let fold = |order: &[usize]| {
                let mut acc = states[order[0]].clone();
                for &i in &order[1..] {
                    acc.merge(&states[i]);
                }
                acc
            };
            let forward: Vec<usize> = (0..states.len()).collect();
            let mut shuffled = forward.clone();
            let mut seed = perm_seed;
            for i in (1..shuffled.len()).rev() {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (seed >> 33) as usize % (i + 1));
            }
            let a = fold(&forward);
            let b = fold(&shuffled);
            prop_assert_eq!(&a, &b);
            let mut twice = a.clone();
            twice.merge(&b);
            prop_assert_eq!(&twice, &a);
            // The stored form survives a round trip through JSON.
            let back: DatasetState = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
            prop_assert_eq!(back, a);
        }
    }
}
