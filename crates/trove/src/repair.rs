//! `repair`: moves damaged log segments aside (`.trove/quarantine/`), says exactly what each held, and
//! rebuilds the catalog from the rest of the log.
//!
//! A segment is published whole, so damage means the disk or a person changed it. Until it is repaired,
//! every catch-up skips it (and `check` names it), so the rest of the store stays usable; `repair` makes that
//! final, keeping the file for whoever wants to recover it by hand.

use trove_model::Record;
use trove_storage::log::{LOG_PREFIX, salvage_segment};

use crate::error::Result;
use crate::store::Store;

/// Where damaged segments are kept.
pub const QUARANTINE: &str = ".trove/quarantine";

/// One segment moved aside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quarantined {
    pub segment: String,
    /// Where the file is now, relative to the store root.
    pub key: String,
    /// What is wrong with it.
    pub damage: String,
    /// What its header says, when it can be read: `op by writer on host at time`.
    pub commit: Option<String>,
    /// The datasets (`id` and, where the record says or the catalog knows, `PROJECT/PATH`) and projects its
    /// readable records changed.
    pub held: Vec<String>,
    /// Lines that could not be read at all.
    pub unreadable_lines: usize,
}

/// What `repair` did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RepairReport {
    pub quarantined: Vec<Quarantined>,
    /// Datasets in the rebuilt catalog.
    pub datasets: u64,
}

impl Store {
    /// Moves every damaged log segment into the quarantine folder and rebuilds the catalog without them.
    pub fn repair(&self) -> Result<RepairReport> {
        self.sync()?;
        let mut report = RepairReport::default();
        for (segment, damage) in self.damaged_segments() {
            let from = format!("{LOG_PREFIX}/{segment}");
            let bytes = self.storage.get(&from)?;
            let salvage = salvage_segment(&bytes);
            let commit = salvage.header.as_ref().map(|h| {
                format!("{} by writer {} on {} at {}", h.op, h.writer, h.host, trove_model::time::rfc3339(h.ts))
            });
            let mut held = Vec::new();
            for record in &salvage.records {
                match record {
                    Record::Dataset(change) => {
                        let at = match &change.at {
                            Some(at) => Some(format!("{}/{}", at.project(), at.path())),
                            None => self
                                .read(|r| Ok(r.dataset_by_id(&change.id)?))?
                                .and_then(|row| row.state.at.map(|at| format!("{}/{}", at.project(), at.path()))),
                        };
                        held.push(match at {
                            Some(at) => format!("dataset {at} ({})", change.id),
                            None => format!("dataset {}", change.id),
                        });
                    }
                    Record::DatasetState(state) => held.push(match &state.at {
                        Some(at) => format!("dataset {}/{} ({})", at.project(), at.path(), state.id),
                        None => format!("dataset {}", state.id),
                    }),
                    Record::Project(change) => held.push(format!("project {}", change.project)),
                    Record::ProjectState(state) => held.push(format!("project {}", state.name)),
                }
            }
            held.sort();
            held.dedup();
            let key = format!("{QUARANTINE}/{segment}");
            self.storage.rename(&from, &key)?;
            report.quarantined.push(Quarantined {
                segment,
                key,
                damage,
                commit,
                held,
                unreadable_lines: salvage.unreadable_lines,
            });
        }
        self.forget_damaged_segments();
        report.datasets = self.sync_full()?.datasets;
        Ok(report)
    }
}
