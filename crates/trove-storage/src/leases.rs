//! Leases: exclusive rights to an operation (compaction, moving a subtree, scanning), among processes on one
//! machine and on many machines sharing the store, built only on what every backend offers: a create-only
//! write, a listing, a read and a delete.
//!
//! A lease named N is a series of files `.trove/leases/<N>.<generation>.lease`, each holding its owner
//! (host, pid, process start time, writer) and an expiry. The file with the highest generation is the
//! holder. To acquire, a process reads it: when there is none, or it was released, has expired, or its owner
//! is dead (judged by pid and start time on the same machine), the process creates the next generation with a
//! create-only write; exactly one contender can succeed. A busy lease is waited for, and the caller is told
//! who holds it (so the CLI can say so), never refused. A held [`Lease`] renews its expiry in a background
//! thread and is released when dropped.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::process::{Liveness, ProcessOwner};
use crate::storage::{Storage, StorageError};
use crate::writer::now_micros;

/// Where lease files live under the store root.
pub const LEASE_PREFIX: &str = ".trove/leases";
/// How long a lease lasts unless renewed.
pub const DEFAULT_TTL: Duration = Duration::from_secs(30);
/// The longest a lease is believed past its file's last write, whatever expiry it claims: holders renew
/// every third of their term, so only a broken or hostile clock claims more.
pub const MAX_TERM: Duration = Duration::from_secs(10 * 60);
/// Clocks of machines sharing a store may differ this much: a lease counts as expired only this long after
/// its expiry.
pub const CLOCK_SKEW: Duration = Duration::from_secs(2);

/// Escapes a lease name for a file name: letters, digits, `-` and `_` stay, every other byte becomes `=XX`
/// (kept short and plain on every backend).
fn encode(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for b in name.bytes() {
        if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("={b:02X}"));
        }
    }
    out
}

fn decode(encoded: &str) -> Option<String> {
    let bytes = encoded.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'=' {
            let hex = encoded.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// A lease could not be taken or kept.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("lease {name} is held by {holder}; gave up waiting after {} s", waited.as_secs())]
    Busy { name: String, holder: String, waited: Duration },
    #[error("lease {name} is already held by this process")]
    HeldByThisProcess { name: String },
}

/// The content of a lease file.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct LeaseRecord {
    name: String,
    owner: ProcessOwner,
    acquired: i64,
    expires: i64,
}

/// The state of one lease file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderState {
    /// Held: not expired, owner alive (or on another machine).
    Live,
    Expired,
    OwnerDead,
    /// Its content cannot be read: treated as expired.
    Unreadable,
    /// A lower generation left behind by a takeover.
    Superseded,
}

/// One lease file, as found.
#[derive(Debug, Clone)]
pub struct LeaseHolder {
    pub name: String,
    pub generation: u64,
    /// The storage key of the file.
    pub key: String,
    pub owner: Option<ProcessOwner>,
    /// Microseconds since the epoch.
    pub acquired: i64,
    pub expires: i64,
    pub state: HolderState,
}

impl std::fmt::Display for LeaseHolder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Some(owner) = &self.owner else {
            return write!(f, "lease {} (unreadable file {})", self.name, self.key);
        };
        let left = (self.expires - now_micros()) / 1_000_000;
        write!(
            f,
            "lease {} held by {} since {}",
            self.name,
            owner.describe(),
            trove_model::time::rfc3339(self.acquired)
        )?;
        match self.state {
            HolderState::Live if left >= 0 => write!(f, " (expires in {left} s)"),
            HolderState::Live => write!(f, " (expired {} s ago)", -left),
            HolderState::Expired => write!(f, " (expired)"),
            HolderState::OwnerDead => write!(f, " (its process is gone)"),
            HolderState::Unreadable => write!(f, " (unreadable)"),
            HolderState::Superseded => write!(f, " (superseded)"),
        }
    }
}

/// Takes leases on one store for one process.
#[derive(Debug, Clone)]
pub struct Leases {
    storage: Arc<Storage>,
    owner: ProcessOwner,
    ttl: Duration,
    poll: Duration,
    skew: Duration,
}

impl Leases {
    pub fn new(storage: Arc<Storage>, owner: ProcessOwner) -> Leases {
        Leases { storage, owner, ttl: DEFAULT_TTL, poll: Duration::from_millis(200), skew: CLOCK_SKEW }
    }

    /// Sets the lifetime of a lease between renewals, the first polling interval while waiting (it grows
    /// tenfold, to at most 250 ms in the first 10 s and 2 s after), and the clock skew allowed (tests use
    /// short ones).
    pub fn with_timing(mut self, ttl: Duration, poll: Duration, skew: Duration) -> Leases {
        self.ttl = ttl;
        self.poll = poll;
        self.skew = skew;
        self
    }

    /// Takes the lease `name`, waiting as long as it is held by a live owner. `on_wait` is called when the
    /// wait begins and whenever the holder changes.
    pub fn acquire(&self, name: &str, on_wait: &mut dyn FnMut(&LeaseHolder)) -> Result<Lease, LeaseError> {
        self.acquire_within(name, None, on_wait)
    }

    /// [`Leases::acquire`], giving up with [`LeaseError::Busy`] after `max_wait`.
    pub fn acquire_within(
        &self,
        name: &str,
        max_wait: Option<Duration>,
        on_wait: &mut dyn FnMut(&LeaseHolder),
    ) -> Result<Lease, LeaseError> {
        let started = Instant::now();
        let mut give_up = |holder: &LeaseHolder| match max_wait {
            Some(max) if started.elapsed() >= max => Some(holder.to_string()),
            _ => None,
        };
        self.acquire_unless(name, on_wait, &mut give_up)?.map_err(|holder| LeaseError::Busy {
            name: name.to_string(),
            holder,
            waited: started.elapsed(),
        })
    }

    /// Takes the lease `name`, waiting while a live owner holds it until `give_up` (asked with the holder
    /// before each pause) returns something, which is then returned instead of the lease. Pauses start at the polling
    /// interval, grow to at most 250 ms in the first 10 s and 2 s after, and are offset per process, so that
    /// waiters started together do not poll in step and queue behind each other.
    pub fn acquire_unless<T>(
        &self,
        name: &str,
        on_wait: &mut dyn FnMut(&LeaseHolder),
        give_up: &mut dyn FnMut(&LeaseHolder) -> Option<T>,
    ) -> Result<Result<Lease, T>, LeaseError> {
        let started = Instant::now();
        let offset = self.poll * (self.owner.pid % 8) / 16;
        let mut poll = self.poll;
        let mut reported: Option<(u64, String)> = None;
        loop {
            let current = self.holder(name)?;
            let next = current.as_ref().map_or(1, |h| h.generation + 1);
            match &current {
                Some(h) if h.state == HolderState::Live => {
                    if h.owner.as_ref().is_some_and(|o| same_process(o, &self.owner)) {
                        return Err(LeaseError::HeldByThisProcess { name: name.to_string() });
                    }
                    let who = (h.generation, h.owner.as_ref().map(ProcessOwner::describe).unwrap_or_default());
                    if reported.as_ref() != Some(&who) {
                        on_wait(h);
                        reported = Some(who);
                    }
                    if let Some(instead) = give_up(h) {
                        return Ok(Err(instead));
                    }
                    std::thread::sleep(poll + offset);
                    let most = if started.elapsed() < Duration::from_secs(10) { 250 } else { 2000 };
                    poll = (poll * 2).min((self.poll * 10).min(Duration::from_millis(most)));
                }
                _ => {
                    if let Some(lease) = self.try_create(name, next)? {
                        // Older generations are history now.
                        for old in self.generations(name)?.into_iter().filter(|(g, _)| *g < next) {
                            let _ = self.storage.delete(&old.1);
                        }
                        return Ok(Ok(lease));
                    }
                    // Another contender created that generation first: look again.
                }
            }
        }
    }

    /// Takes the lease if it is free now.
    pub fn try_acquire(&self, name: &str) -> Result<Option<Lease>, LeaseError> {
        match self.acquire_within(name, Some(Duration::ZERO), &mut |_| {}) {
            Ok(lease) => Ok(Some(lease)),
            Err(LeaseError::Busy { .. }) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Every lease file in the store, with its state (for `trove check` and `trove gc`).
    pub fn holders(&self) -> Result<Vec<LeaseHolder>, LeaseError> {
        let mut by_name: std::collections::BTreeMap<String, Vec<(u64, String)>> = Default::default();
        for entry in self.storage.list(LEASE_PREFIX)? {
            if let Some((name, generation)) = parse_key(&entry.key) {
                by_name.entry(name).or_default().push((generation, entry.key));
            }
        }
        let mut out = Vec::new();
        for (name, mut gens) in by_name {
            gens.sort();
            let top = gens.last().map(|(g, _)| *g).unwrap_or(0);
            for (generation, key) in gens {
                let mut holder = self.read_holder(&name, generation, &key)?;
                if let Some(h) = holder.as_mut()
                    && generation < top
                {
                    h.state = HolderState::Superseded;
                }
                out.extend(holder);
            }
        }
        Ok(out)
    }

    /// Deletes lease files nobody holds: expired, unreadable, of dead owners, superseded. Returns how many.
    pub fn remove_stale(&self) -> Result<usize, LeaseError> {
        let mut removed = 0;
        for h in self.holders()? {
            if h.state != HolderState::Live {
                self.storage.delete(&h.key)?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// The current holder (the highest generation), if any file exists.
    fn holder(&self, name: &str) -> Result<Option<LeaseHolder>, LeaseError> {
        match self.generations(name)?.pop() {
            None => Ok(None),
            Some((generation, key)) => self.read_holder(name, generation, &key),
        }
    }

    fn generations(&self, name: &str) -> Result<Vec<(u64, String)>, LeaseError> {
        let mut gens: Vec<(u64, String)> = self
            .storage
            .list(LEASE_PREFIX)?
            .into_iter()
            .filter_map(|e| parse_key(&e.key).filter(|(n, _)| n == name).map(|(_, g)| (g, e.key)))
            .collect();
        gens.sort();
        Ok(gens)
    }

    /// Reads one lease file; `None` if it vanished meanwhile (released).
    fn read_holder(&self, name: &str, generation: u64, key: &str) -> Result<Option<LeaseHolder>, LeaseError> {
        let bytes = match self.storage.get(key) {
            Ok(b) => b,
            Err(e) if e.is_not_found() => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let base = LeaseHolder {
            name: name.to_string(),
            generation,
            key: key.to_string(),
            owner: None,
            acquired: 0,
            expires: 0,
            state: HolderState::Unreadable,
        };
        let Ok(mut record) = serde_json::from_slice::<LeaseRecord>(&bytes) else { return Ok(Some(base)) };
        // A holder renews its lease by rewriting the file, so no honest lease runs longer than a term past
        // the file's last write, whatever expiry it claims (a broken clock once wrote the year 292277).
        if let Some(written) = self.storage.head(key)?.map(|e| e.modified) {
            record.expires = record.expires.min(written.saturating_add(micros(MAX_TERM)));
        }
        let skew = i64::try_from(self.skew.as_micros()).unwrap_or(i64::MAX);
        let state = if now_micros() > record.expires.saturating_add(skew) {
            HolderState::Expired
        } else if record.owner.liveness() == Liveness::Dead {
            HolderState::OwnerDead
        } else {
            HolderState::Live
        };
        Ok(Some(LeaseHolder {
            owner: Some(record.owner),
            acquired: record.acquired,
            expires: record.expires,
            state,
            ..base
        }))
    }

    /// Creates generation `generation` of the lease; `None` if another process created it first.
    fn try_create(&self, name: &str, generation: u64) -> Result<Option<Lease>, LeaseError> {
        let key = lease_key(name, generation);
        let now = now_micros();
        let record = LeaseRecord {
            name: name.to_string(),
            owner: self.owner.clone(),
            acquired: now,
            expires: now + micros(self.ttl),
        };
        let bytes = serde_json::to_vec(&record)
            .map_err(|e| StorageError::Io { path: key.clone().into(), source: std::io::Error::other(e) })?;
        match self.storage.put(&key, bytes, true) {
            Ok(()) => Ok(Some(Lease::start(self.clone(), record, generation, key))),
            Err(StorageError::AlreadyExists { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }
}

/// A held lease. It renews itself until dropped; dropping releases it.
#[derive(Debug)]
pub struct Lease {
    name: String,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
    renewer: Option<std::thread::JoinHandle<()>>,
}

impl Lease {
    fn start(leases: Leases, record: LeaseRecord, generation: u64, key: String) -> Lease {
        let lost = Arc::new(AtomicBool::new(false));
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let renewer = {
            let (lost, stop, key) = (lost.clone(), stop.clone(), key.clone());
            std::thread::spawn(move || renew(leases, record, generation, key, lost, stop))
        };
        Lease { name: parse_key(&key).map(|(n, _)| n).unwrap_or_default(), lost, stop, renewer: Some(renewer) }
    }

    /// The lease's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once another process took the lease over (this one failed to renew it in time): the work it
    /// protects must stop.
    pub fn is_lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        let (flag, wake) = &*self.stop;
        *flag.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
    }
}

/// The renewing thread: every third of the lease's lifetime, checks that the lease is still this process's
/// and pushes its expiry back; on stop, releases it (deletes the file, unless it was lost).
fn renew(
    leases: Leases,
    mut record: LeaseRecord,
    generation: u64,
    key: String,
    lost: Arc<AtomicBool>,
    stop: Arc<(Mutex<bool>, Condvar)>,
) {
    let (flag, wake) = &*stop;
    let mut stopped = flag.lock().unwrap_or_else(|p| p.into_inner());
    // A stop asked for before this thread first waits must not be missed (it would hold up the drop for a
    // whole renewal period): the flag is looked at before every wait.
    while !*stopped {
        let (guard, _) = wake.wait_timeout(stopped, leases.ttl / 3).unwrap_or_else(|p| p.into_inner());
        stopped = guard;
        if *stopped {
            break;
        }
        let still_ours = leases
            .generations(&record.name)
            .map(|gens| gens.last().is_some_and(|(g, _)| *g == generation))
            .unwrap_or(true);
        if !still_ours {
            lost.store(true, Ordering::SeqCst);
            return;
        }
        record.expires = now_micros() + micros(leases.ttl);
        if let Ok(bytes) = serde_json::to_vec(&record) {
            let _ = leases.storage.put(&key, bytes, false);
        }
    }
    if !lost.load(Ordering::SeqCst) {
        let _ = leases.storage.delete(&key);
    }
}

fn same_process(a: &ProcessOwner, b: &ProcessOwner) -> bool {
    a.host == b.host && a.pid == b.pid && a.start == b.start
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn lease_key(name: &str, generation: u64) -> String {
    format!("{LEASE_PREFIX}/{}.{generation:020}.lease", encode(name))
}

/// The lease name and generation of a lease file's key.
fn parse_key(key: &str) -> Option<(String, u64)> {
    let file = key.strip_prefix(LEASE_PREFIX)?.strip_prefix('/')?.strip_suffix(".lease")?;
    let (encoded, generation) = file.rsplit_once('.')?;
    Some((decode(encoded)?, generation.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_any_name() {
        for name in ["compact", "tree/lab", "Überprojekt runs", "a.b.c"] {
            let key = lease_key(name, 42);
            assert!(!key[LEASE_PREFIX.len() + 1..].contains('/'), "{key}");
            assert_eq!(parse_key(&key), Some((name.to_string(), 42)));
        }
        assert_eq!(parse_key(".trove/leases/x.lease"), None);
    }
}
