//! `trove log REF`: the history of a dataset, read from the log itself (the catalog keeps only the merged
//! state).
//!
//! Every segment is searched (in parallel) for the records of the dataset's id: each commit's change is one
//! entry, stamped like the merge stamps it (the segment's time and writer, the record's place in it), and a
//! checkpoint's merged state is one entry that stands for the commits it summarises. Entries come in stamp
//! order, which is the order last-writer-wins decides by.
//!
//! Two writers that change one field without seeing each other's change (on different machines, or log-only
//! writers) both keep their commit in the log, but only the later stamp is in effect. A change that was
//! overridden by a later one from another writer whose commit was computed before the change existed (its
//! header's `seen` is older than the change) lost by last-writer-wins, and its entry says to whom; a change
//! overridden by a writer that had seen it was simply superseded.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde_json::Value;
use trove_model::{DatasetChange, DatasetState, Location, Record, Ref, Segment, SegmentKind, Stamp};
use trove_storage::LogError;
use trove_storage::log::{LOG_PREFIX, decode_segment};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::Store;

/// What a checkpoint entry says instead of the changes it summarises.
pub const CHECKPOINT_NOTE: &str = "merged state from a checkpoint (compaction: earlier history is summarised)";

/// One change to one field of a dataset, in plain terms.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "change", rename_all = "kebab-case")]
pub enum Change {
    /// The dataset was made at `PROJECT/PATH`.
    Created {
        at: String,
    },
    /// The dataset was renamed to `PROJECT/PATH`.
    Moved {
        to: String,
    },
    Deleted,
    /// A deleted dataset was made live again.
    Revived,
    /// Where a checkpoint's merged state puts the dataset.
    Located {
        at: String,
    },
    Kind {
        kind: String,
    },
    /// A top-level metadata key set to a value (dotted keys are merged into their top-level value).
    Set {
        key: String,
        value: Value,
    },
    Unset {
        key: String,
    },
    TagAdded {
        tag: String,
    },
    TagRemoved {
        tag: String,
    },
    /// An object put (or replaced). `edited` is set when the version was found changed in place by a scan.
    ObjectPut {
        name: String,
        format: String,
        size: u64,
        checksum: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        edited: Option<String>,
    },
    ObjectRemoved {
        name: String,
    },
    Lineage {
        lineage: Value,
    },
    /// Where a copy came from (`{"id": ..., "ref": ...}`).
    Origin {
        origin: Value,
    },
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Change::Created { at } => write!(f, "created at {at}"),
            Change::Moved { to } => write!(f, "moved to {to}"),
            Change::Deleted => f.write_str("deleted"),
            Change::Revived => f.write_str("made live again"),
            Change::Located { at } => write!(f, "at {at}"),
            Change::Kind { kind } => write!(f, "kind = {kind}"),
            Change::Set { key, value } => write!(f, "set {key} = {value}"),
            Change::Unset { key } => write!(f, "unset {key}"),
            Change::TagAdded { tag } => write!(f, "tag +{tag}"),
            Change::TagRemoved { tag } => write!(f, "tag -{tag}"),
            Change::ObjectPut { name, format, size, checksum, edited } => {
                write!(f, "object {name} put ({format}, {size} bytes, {checksum})")?;
                match edited {
                    Some(when) => write!(f, ", edited in place, found by scan at {when}"),
                    None => Ok(()),
                }
            }
            Change::ObjectRemoved { name } => write!(f, "object {name} removed"),
            Change::Lineage { lineage } => write!(f, "lineage set to {lineage}"),
            Change::Origin { origin } => match origin.get("ref").and_then(Value::as_str) {
                Some(from) => write!(f, "origin (copied from {from})"),
                None => write!(f, "origin {origin}"),
            },
        }
    }
}

/// The change that won a field over a change that lost by last-writer-wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LostTo {
    pub writer: String,
    pub host: String,
    /// When the winning commit was stamped (RFC 3339).
    pub time: String,
    /// The same, in microseconds since the epoch.
    pub ts: i64,
}

/// One line of an entry: a change, and whether it is still in effect.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryChange {
    #[serde(flatten)]
    pub change: Change,
    /// The change in plain words (`set temperature = 305`).
    pub words: String,
    /// A later change to the same field, by a writer that had seen this one, replaced it.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub superseded: bool,
    /// A later change to the same field, made by another writer without having seen this one, won by
    /// last-writer-wins: this change was never in effect after that commit arrived.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lost_to: Option<LostTo>,
    /// The register the change wrote (`m:KEY`, `t:TAG`, `o:NAME`, `at`, `alive`, ...).
    #[serde(skip)]
    field: String,
    /// The stamp of that register's new value.
    #[serde(skip)]
    stamp: Stamp,
}

/// One commit's change to the dataset, or one checkpoint's merged state of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistoryEntry {
    /// When the commit was stamped (RFC 3339).
    pub time: String,
    /// The same, in microseconds since the epoch.
    pub ts: i64,
    /// What made the commit (`put`, `edit`, `rm`, `mv`, `compact`, ...).
    pub op: String,
    pub writer: String,
    pub host: String,
    pub pid: u32,
    pub user: String,
    /// The log segment it was read from.
    pub segment: String,
    /// The dataset's id (a path may have held several datasets, one after another).
    pub dataset: Uuid,
    /// The record's place in its segment.
    pub seq: u32,
    /// True for a checkpoint's merged state, which stands for the commits it summarises.
    pub checkpoint: bool,
    /// For a checkpoint: [`CHECKPOINT_NOTE`].
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    pub changes: Vec<HistoryChange>,
    /// The newest stamp time the writer had seen when it computed the commit (0: unknown).
    #[serde(skip)]
    seen: i64,
}

impl HistoryEntry {
    /// Who made it: `user@host pid N, writer W`.
    pub fn who(&self) -> String {
        let user = if self.user.is_empty() { "?" } else { &self.user };
        format!("{user}@{} pid {}, writer {}", self.host, self.pid, self.writer)
    }

    fn stamp(&self) -> Stamp {
        Stamp::new(self.ts, self.writer.clone(), self.seq)
    }
}

impl Store {
    /// The history of the dataset at `r` (`PROJECT/PATH`): the live dataset there or, when there is none, the
    /// datasets deleted while there. With `PROJECT/PATH:OBJECT`, only the changes to that object. Entries in
    /// stamp order (the order that decides which change wins).
    pub fn history(&self, r: &Ref) -> Result<Vec<HistoryEntry>> {
        let path = r.path.as_ref().ok_or_else(|| {
            Error::Mismatch(format!("{r} names a project: history is kept for datasets (PROJECT/PATH)"))
        })?;
        self.refresh()?;
        let ids: Vec<Uuid> = self.read(|read| {
            if let Some(row) = read.dataset_at(&r.project, path.as_str())? {
                return Ok(vec![row.state.id]);
            }
            Ok(read.deleted_at(&r.project, path.as_str())?.into_iter().map(|row| row.state.id).collect())
        })?;
        if ids.is_empty() {
            return Err(Error::NotFound {
                what: format!(
                    "dataset {} (live or deleted there; a dataset moved away is logged at its new path)",
                    r.without_object()
                ),
            });
        }
        let segments = self.segments_mentioning(&ids)?;
        let mut entries = entries_of(&segments, &ids);
        judge(&mut entries);
        if let Some(object) = &r.object {
            let field = format!("o:{object}");
            for entry in &mut entries {
                entry.changes.retain(|c| c.field == field);
            }
            entries.retain(|e| !e.changes.is_empty());
            if entries.is_empty() {
                return Err(Error::NotFound { what: format!("object {r} in the log") });
            }
        }
        Ok(entries)
    }

    /// Every segment whose text names one of `ids`, parsed, with the commits a checkpoint among them
    /// replaces left out. A segment compacted away while the log is read makes the listing be taken again.
    fn segments_mentioning(&self, ids: &[Uuid]) -> Result<Vec<(String, Segment)>> {
        let needles: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        'again: for _ in 0..8 {
            let names = self.log.list()?;
            let read = crate::verify::in_parallel(
                &names,
                |name, _| -> std::result::Result<Option<Segment>, LogError> {
                    let bytes = self.storage.get(&format!("{LOG_PREFIX}/{name}"))?;
                    if !needles.iter().any(|n| contains(&bytes, n.as_bytes())) {
                        return Ok(None);
                    }
                    decode_segment(name, &bytes).map(Some)
                },
                &mut || {},
            );
            let mut segments = Vec::new();
            for (name, segment) in names.into_iter().zip(read) {
                match segment {
                    Ok(Some(segment)) => segments.push((name, segment)),
                    Ok(None) => {}
                    Err(LogError::Storage(e)) if e.is_not_found() => continue 'again,
                    // Named by every command until `repair`; the history is that of the readable commits.
                    Err(LogError::Damaged { .. }) => {}
                    Err(e) => return Err(e.into()),
                }
            }
            let covered: HashSet<String> = segments
                .iter()
                .filter(|(_, s)| s.header.trove == SegmentKind::Checkpoint)
                .flat_map(|(_, s)| s.header.covers.iter().cloned())
                .collect();
            segments.retain(|(name, _)| !covered.contains(name));
            return Ok(segments);
        }
        Err(Error::Refused(
            "the log kept changing while it was read (segments compacted away each time): try again".to_string(),
        ))
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

fn place(at: &Location) -> String {
    format!("{}/{}", at.project(), at.path())
}

/// The entries of the records of `ids` in `segments`, in stamp order.
fn entries_of(segments: &[(String, Segment)], ids: &[Uuid]) -> Vec<HistoryEntry> {
    let mut entries = Vec::new();
    for (name, segment) in segments {
        let h = &segment.header;
        for (i, record) in segment.records.iter().enumerate() {
            let (dataset, changes, checkpoint) = match record {
                Record::Dataset(c) if ids.contains(&c.id) => {
                    let stamp = Stamp::new(h.ts, h.writer.clone(), i as u32);
                    (c.id, change_lines(c, &stamp), false)
                }
                Record::DatasetState(s) if ids.contains(&s.id) => (s.id, state_lines(s), true),
                _ => continue,
            };
            entries.push(HistoryEntry {
                time: trove_model::time::rfc3339(h.ts),
                ts: h.ts,
                op: h.op.clone(),
                writer: h.writer.clone(),
                host: h.host.clone(),
                pid: h.pid,
                user: h.user.clone(),
                segment: name.clone(),
                dataset,
                seq: i as u32,
                checkpoint,
                note: checkpoint.then(|| CHECKPOINT_NOTE.to_string()),
                changes,
                seen: if checkpoint { 0 } else { h.seen },
            });
        }
    }
    entries.sort_by_key(HistoryEntry::stamp);
    entries
}

fn line(change: Change, field: String, stamp: &Stamp) -> HistoryChange {
    HistoryChange { words: change.to_string(), change, superseded: false, lost_to: None, field, stamp: stamp.clone() }
}

/// The lines of one commit's change, every field stamped with the change's stamp.
fn change_lines(c: &DatasetChange, stamp: &Stamp) -> Vec<HistoryChange> {
    let mut out = Vec::new();
    match (&c.alive, &c.at) {
        (Some(true), Some(at)) => out.push(line(Change::Created { at: place(at) }, "at".into(), stamp)),
        (alive, at) => {
            if let Some(at) = at {
                out.push(line(Change::Moved { to: place(at) }, "at".into(), stamp));
            }
            match alive {
                Some(false) => out.push(line(Change::Deleted, "alive".into(), stamp)),
                Some(true) => out.push(line(Change::Revived, "alive".into(), stamp)),
                None => {}
            }
        }
    }
    if let Some(kind) = &c.kind {
        out.push(line(Change::Kind { kind: kind.clone() }, "kind".into(), stamp));
    }
    // Within one change a key both unset and set ends up set (see DatasetState::from_change).
    for key in c.unset.iter().filter(|k| !c.meta.contains_key(*k)) {
        out.push(line(Change::Unset { key: key.clone() }, format!("m:{key}"), stamp));
    }
    for (key, value) in &c.meta {
        out.push(line(Change::Set { key: key.clone(), value: value.clone() }, format!("m:{key}"), stamp));
    }
    for (tag, on) in &c.tags {
        let change = if *on { Change::TagAdded { tag: tag.clone() } } else { Change::TagRemoved { tag: tag.clone() } };
        out.push(line(change, format!("t:{tag}"), stamp));
    }
    for (name, manifest) in &c.objects {
        let change = match manifest {
            Some(m) => Change::ObjectPut {
                name: name.clone(),
                format: m.format.clone(),
                size: m.size,
                checksum: m.checksum.clone(),
                edited: m.edited.clone(),
            },
            None => Change::ObjectRemoved { name: name.clone() },
        };
        out.push(line(change, format!("o:{name}"), stamp));
    }
    if let Some(lineage) = &c.lineage {
        out.push(line(Change::Lineage { lineage: lineage.clone() }, "lineage".into(), stamp));
    }
    if let Some(origin) = &c.origin {
        out.push(line(Change::Origin { origin: origin.clone() }, "origin".into(), stamp));
    }
    out
}

/// The lines of a checkpoint's merged state, each field with the stamp of the change that set it.
fn state_lines(s: &DatasetState) -> Vec<HistoryChange> {
    let stamp_of = |field: &str| s.stamps.get(field).unwrap_or(&s.base).clone();
    let mut out = Vec::new();
    let mut add = |change: Change, field: String| {
        let stamp = stamp_of(&field);
        out.push(line(change, field, &stamp));
    };
    if let Some(at) = &s.at {
        add(Change::Located { at: place(at) }, "at".into());
    }
    if s.alive == Some(false) {
        add(Change::Deleted, "alive".into());
    }
    if let Some(kind) = &s.kind {
        add(Change::Kind { kind: kind.clone() }, "kind".into());
    }
    for (key, value) in &s.meta {
        add(Change::Set { key: key.clone(), value: value.clone() }, format!("m:{key}"));
    }
    for tag in &s.tags {
        add(Change::TagAdded { tag: tag.clone() }, format!("t:{tag}"));
    }
    for (name, m) in &s.objects {
        let change = Change::ObjectPut {
            name: name.clone(),
            format: m.format.clone(),
            size: m.size,
            checksum: m.checksum.clone(),
            edited: m.edited.clone(),
        };
        add(change, format!("o:{name}"));
    }
    if let Some(lineage) = &s.lineage {
        add(Change::Lineage { lineage: lineage.clone() }, "lineage".into());
    }
    if let Some(origin) = &s.origin {
        add(Change::Origin { origin: origin.clone() }, "origin".into());
    }
    // Tombstones: registers named in `stamps` whose value is gone.
    for key in s.stamps.keys() {
        let change = match key.split_once(':') {
            Some(("m", k)) if !s.meta.contains_key(k) => Change::Unset { key: k.to_string() },
            Some(("t", t)) if !s.tags.contains(t) => Change::TagRemoved { tag: t.to_string() },
            Some(("o", o)) if !s.objects.contains_key(o) => Change::ObjectRemoved { name: o.to_string() },
            _ => continue,
        };
        add(change, key.clone());
    }
    out
}

/// Marks every change that a later change to the same field replaced: lost by last-writer-wins when the
/// later change came from another writer that had not seen it (`seen` older than the change), superseded
/// otherwise (also when the later change writes the same value: it takes nothing away).
fn judge(entries: &mut [HistoryEntry]) {
    /// A write to a register: its stamp, and where it is (entry, line).
    type Write<'a> = (&'a Stamp, usize, usize);
    let mut by_field: HashMap<(Uuid, &str), Vec<Write<'_>>> = HashMap::new();
    for (e, entry) in entries.iter().enumerate() {
        for (l, change) in entry.changes.iter().enumerate() {
            by_field.entry((entry.dataset, change.field.as_str())).or_default().push((&change.stamp, e, l));
        }
    }
    let mut marks: Vec<(usize, usize, Option<LostTo>)> = Vec::new();
    for writes in by_field.values_mut() {
        writes.sort_by(|a, b| a.0.cmp(b.0));
        for (i, &(stamp, e, l)) in writes.iter().enumerate() {
            // The next strictly later write (a commit and the checkpoint holding it share a stamp).
            let Some(&(later_stamp, fe, fl)) = writes[i + 1..].iter().find(|w| w.0 > stamp) else { continue };
            let (winner, winner_line) = (&entries[fe], &entries[fe].changes[fl]);
            if winner_line.change == entries[e].changes[l].change {
                marks.push((e, l, None));
                continue;
            }
            let lost = later_stamp.writer != stamp.writer && winner.seen != 0 && stamp.ts > winner.seen;
            let lost_to = lost.then(|| LostTo {
                writer: winner.writer.clone(),
                host: winner.host.clone(),
                time: winner.time.clone(),
                ts: winner.ts,
            });
            marks.push((e, l, lost_to));
        }
    }
    for (e, l, lost_to) in marks {
        let change = &mut entries[e].changes[l];
        change.superseded = lost_to.is_none();
        change.lost_to = lost_to;
    }
}
