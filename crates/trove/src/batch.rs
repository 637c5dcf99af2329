//! Batches: many writes, one commit. Between [`Store::begin_batch`] and [`Store::end_batch`], every write a
//! thread makes through the store is checked and merged into a catalog transaction held open for the whole
//! batch (so the batch's later writes and reads see its earlier ones), and its records are gathered; the
//! end publishes them as one commit (one log segment, one fsync) and commits the catalog transaction. A
//! batch that ends without committing, or a process that dies inside one, leaves the store as it was: the
//! log never saw the records, and SQLite rolls the held transaction back.
//!
//! The held transaction keeps the catalog's write lock, so writers of other processes wait for the batch,
//! and so do this store's other threads (they share its one catalog connection); readers of other
//! processes see the store as it was before the batch until it ends.
//!
//! Files: a batch's data files wait in staging until its commit is published, then move into place. Each
//! file place may be touched by one write of a batch, so that the moves and deletions made at the end
//! cannot undo one another.

use std::collections::HashSet;
use std::thread::ThreadId;

use trove_model::{FileMove, Record, Segment, SegmentHeader, SegmentKind};
use trove_storage::log::encode_segment;

use crate::error::{Error, Result};
use crate::store::{Plan, Store, lock};

/// Which thread holds the store's batch, and how deeply its batches nest.
#[derive(Debug)]
pub(crate) struct BatchOwner {
    pub thread: ThreadId,
    depth: u32,
    /// An inner batch ended without committing: the outermost one commits nothing.
    failed: bool,
}

/// What a batch has gathered so far.
#[derive(Debug)]
pub(crate) struct Pending {
    /// The header of the commit the batch will publish, stamped when it began: every record merged into
    /// the catalog meanwhile is stamped with it, so the catalog ends as a rebuild from the log would make it.
    header: SegmentHeader,
    records: Vec<Record>,
    moves: Vec<FileMove>,
    copies: Vec<(String, String)>,
    cleanup: Vec<String>,
    /// Data files streamed into staging by the batch's writes: removed if the batch commits nothing.
    staged: Vec<String>,
    /// Every file place a write of the batch touches.
    places: HashSet<String>,
}

/// What ending a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchReport {
    /// The records committed (0 when the batch wrote nothing or was rolled back).
    pub records: usize,
    /// The log segment of the batch's commit, if it made one.
    pub commit: Option<String>,
}

impl Store {
    /// Begins a batch in this thread (see the module documentation); a batch begun inside one joins it.
    /// Waits while another thread of this store holds a batch.
    pub fn begin_batch(&self) -> Result<()> {
        if let Some(reason) = &self.log_only {
            return Err(Error::LogOnly { what: "begin a batch".into(), reason: reason.clone() });
        }
        let me = std::thread::current().id();
        let mut gate = self.batch_gate(me);
        if let Some(owner) = gate.as_mut() {
            owner.depth += 1;
            return Ok(());
        }
        let mut catalog = lock(&self.catalog);
        catalog.hold()?;
        let begun = (|| -> Result<SegmentHeader> {
            let mut tx = catalog.write()?;
            crate::store::catch_up(&self.log, &self.storage, &mut tx, &self.damaged_segments)?;
            let floor = tx.read().max_ts()?;
            tx.commit()?;
            Ok(self.header(SegmentKind::Commit, floor, "batch", 0))
        })();
        match begun {
            Ok(header) => {
                *lock(&self.pending) = Some(Pending {
                    header,
                    records: Vec::new(),
                    moves: Vec::new(),
                    copies: Vec::new(),
                    cleanup: Vec::new(),
                    staged: Vec::new(),
                    places: HashSet::new(),
                });
                *gate = Some(BatchOwner { thread: me, depth: 1, failed: false });
                Ok(())
            }
            Err(e) => {
                let _ = catalog.release(false);
                Err(e)
            }
        }
    }

    /// Ends this thread's innermost batch. At the outermost one, `commit` publishes everything the batch
    /// gathered as one commit; otherwise (or when an inner batch ended without committing) nothing of it is
    /// written, and an inner failure is reported as an error.
    pub fn end_batch(&self, commit: bool) -> Result<BatchReport> {
        let me = std::thread::current().id();
        let mut gate = lock(&self.batch);
        let owner = match gate.as_mut() {
            Some(owner) if owner.thread == me => owner,
            _ => return Err(Error::Refused("no batch is open in this thread".into())),
        };
        if owner.depth > 1 {
            owner.depth -= 1;
            owner.failed |= !commit;
            return Ok(BatchReport::default());
        }
        let inner_failed = owner.failed;
        let pending = lock(&self.pending).take();
        let mut catalog = lock(&self.catalog);
        let pending = match pending {
            Some(pending) if commit && !inner_failed => Some(pending),
            Some(abandoned) => {
                self.abandon(&mut catalog, &abandoned.copies, &abandoned.staged);
                None
            }
            None => None,
        };
        let Some(pending) = pending else {
            let _ = catalog.release(false);
            drop(catalog);
            *gate = None;
            self.batch_ended.notify_all();
            drop(gate);
            return if inner_failed && commit {
                Err(Error::Refused("an inner batch ended without committing: nothing of the batch was written".into()))
            } else {
                Ok(BatchReport::default())
            };
        };
        let finished = self.finish(&mut catalog, pending);
        drop(catalog);
        *gate = None;
        self.batch_ended.notify_all();
        drop(gate);
        let (report, cleanup) = finished?;
        self.clean_up(&cleanup);
        // Compaction is upkeep: the batch stands whether or not it runs.
        let _ = self.maybe_compact();
        Ok(report)
    }

    /// Publishes a batch's commit and commits the held catalog transaction; on failure rolls both back
    /// (nothing was published) and removes the batch's staged files. Returns the files to delete now.
    fn finish(&self, catalog: &mut trove_catalog::Catalog, pending: Pending) -> Result<(BatchReport, Vec<String>)> {
        let Pending { mut header, records, moves, copies, cleanup, staged, .. } = pending;
        if records.is_empty() {
            catalog.release(true)?;
            return Ok((BatchReport::default(), Vec::new()));
        }
        header.records = records.len();
        header.moves = moves;
        crate::fault::point("before-commit");
        let published = encode_segment(&header, &records)
            .map_err(Error::from)
            .and_then(|bytes| self.log.publish(&header, bytes).map_err(Error::from));
        let name = match published {
            Ok(name) => name,
            Err(e) => {
                self.abandon(catalog, &copies, &staged);
                return Err(e.full_disk(&self.root));
            }
        };
        crate::fault::point("after-commit");
        // The batch is true from here on: what is left is finished now or by the next catch-up (see
        // `Store::transact`).
        let moved = self.move_into_place(&header.moves);
        let indexed = (|| -> Result<()> {
            if moved {
                let mut tx = catalog.write()?;
                let _ = crate::scan::remember_placed(&self.storage, &tx.read(), &header.moves);
                tx.mark_applied([name.as_str()])?;
                tx.commit()?;
            }
            Ok(catalog.release(true)?)
        })();
        if indexed.is_err() {
            let _ = catalog.release(false);
        } else if moved {
            self.note_published(&name);
        }
        let cleanup = if indexed.is_ok() && moved { cleanup } else { Vec::new() };
        Ok((BatchReport { records: records.len(), commit: Some(name) }, cleanup))
    }

    /// Rolls a batch's catalog transaction back and removes the files it staged or copied.
    fn abandon(&self, catalog: &mut trove_catalog::Catalog, copies: &[(String, String)], staged: &[String]) {
        let _ = catalog.release(false);
        self.remove_copies(copies);
        for key in staged {
            let _ = self.storage.delete(key);
        }
    }

    /// Whether this thread holds a batch of this store.
    pub(crate) fn in_batch(&self) -> bool {
        lock(&self.batch).as_ref().is_some_and(|owner| owner.thread == std::thread::current().id())
    }

    /// One write inside this thread's batch: computed from (and merged into) the held catalog transaction,
    /// its records and files added to the batch. On failure the write leaves no trace; the batch goes on.
    pub(crate) fn transact_batched<T>(
        &self,
        staged: &[String],
        f: impl FnOnce(&trove_catalog::Reader<'_>, &mut Plan) -> Result<T>,
    ) -> Result<T> {
        let mut catalog = self.catalog();
        let mut tx = catalog.write()?;
        let mut plan = Plan::default();
        let out = f(&tx.read(), &mut plan)?;
        if plan.records.is_empty() {
            tx.commit()?;
            return Ok(out);
        }
        crate::placement::check(&self.storage, &tx.read(), &plan, true)?;
        let mut guard = lock(&self.pending);
        let pending = guard.as_mut().ok_or_else(|| Error::Refused("the batch ended meanwhile".into()))?;
        let places: Vec<&String> = plan
            .moves
            .iter()
            .flat_map(|m| [&m.from, &m.to])
            .chain(plan.copies.iter().flat_map(|(from, to)| [from, to]))
            .chain(&plan.cleanup)
            .collect();
        if let Some(twice) = places.iter().find(|p| pending.places.contains(p.as_str())) {
            return Err(Error::Refused(format!(
                "{twice} was already written or removed earlier in this batch: a batch changes each file once \
                 (end the batch, then change it again)"
            )));
        }
        self.copy_files(&plan.copies)?;
        let first = u32::try_from(pending.records.len()).unwrap_or(u32::MAX);
        let segment = Segment { header: pending.header.clone(), records: plan.records.clone() };
        if let Err(e) = tx.apply_part(segment, first).map_err(Error::from).and_then(|()| Ok(tx.commit()?)) {
            self.remove_copies(&plan.copies);
            return Err(e);
        }
        pending.places.extend(places.into_iter().cloned());
        pending.records.append(&mut plan.records);
        pending.moves.append(&mut plan.moves);
        pending.copies.append(&mut plan.copies);
        pending.cleanup.append(&mut plan.cleanup);
        pending.staged.extend(staged.iter().cloned());
        Ok(out)
    }
}
