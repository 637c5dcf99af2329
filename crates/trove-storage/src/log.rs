//! The metadata log: append-only, one immutable segment per commit.
//!
//! A segment is JSON Lines: a [`SegmentHeader`] line, then one [`Record`] per line. It is written whole with a
//! create-only PUT under a name no other writer can produce (`<time>-<writer>-<n>.<kind>.jsonl`), so
//! concurrent writers on many machines never collide and a reader sees a segment entirely or not at all.
//! Names start with the time in fixed-width hex, so a listing is roughly chronological.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use trove_model::{Record, Segment, SegmentHeader, SegmentKind};

use crate::storage::{Storage, StorageError};

/// Where the log lives under the store root.
pub const LOG_PREFIX: &str = ".trove/log";
/// The log format version written into every header.
pub const LOG_VERSION: u32 = 1;

/// A segment could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error("log segment {segment} is damaged at line {line}: {message}")]
    Damaged { segment: String, line: usize, message: String },
    #[error(
        "log segment {segment} has log version {version}; this trove understands up to {LOG_VERSION} (upgrade trove)"
    )]
    TooNew { segment: String, version: u32 },
    #[error("cannot encode a log record: {0}")]
    Encode(serde_json::Error),
}

/// Serialises a segment.
pub fn encode_segment(header: &SegmentHeader, records: &[Record]) -> Result<Vec<u8>, LogError> {
    let mut out = Vec::with_capacity(128 + records.len() * 160);
    serde_json::to_writer(&mut out, header).map_err(LogError::Encode)?;
    out.push(b'\n');
    for record in records {
        serde_json::to_writer(&mut out, record).map_err(LogError::Encode)?;
        out.push(b'\n');
    }
    Ok(out)
}

/// Parses a segment, checking that it holds as many records as its header says.
pub fn decode_segment(name: &str, bytes: &[u8]) -> Result<Segment, LogError> {
    let damaged = |line: usize, message: String| LogError::Damaged { segment: name.to_string(), line, message };
    let mut lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    let first = lines.next().ok_or_else(|| damaged(1, "the segment is empty".into()))?;
    let header: SegmentHeader = serde_json::from_slice(first).map_err(|e| damaged(1, format!("bad header: {e}")))?;
    if header.version > LOG_VERSION {
        return Err(LogError::TooNew { segment: name.to_string(), version: header.version });
    }
    let mut records = Vec::with_capacity(header.records);
    for (i, line) in lines.enumerate() {
        records.push(serde_json::from_slice(line).map_err(|e| damaged(i + 2, e.to_string()))?);
    }
    if records.len() != header.records {
        return Err(damaged(
            records.len() + 1,
            format!("expected {} records, found {}", header.records, records.len()),
        ));
    }
    Ok(Segment { header, records })
}

/// What can still be read of a damaged segment: its header if it parses, every record line that parses, and
/// how many lines do not.
#[derive(Debug, Default)]
pub struct Salvage {
    pub header: Option<SegmentHeader>,
    pub records: Vec<Record>,
    pub unreadable_lines: usize,
}

/// Reads what it can of a segment, line by line, without giving up at the first bad line.
pub fn salvage_segment(bytes: &[u8]) -> Salvage {
    let mut out = Salvage::default();
    let mut lines = bytes.split(|&b| b == b'\n').filter(|l| !l.is_empty());
    match lines.next().map(serde_json::from_slice::<SegmentHeader>) {
        Some(Ok(header)) => out.header = Some(header),
        Some(Err(_)) => out.unreadable_lines += 1,
        None => {}
    }
    for line in lines {
        match serde_json::from_slice(line) {
            Ok(record) => out.records.push(record),
            Err(_) => out.unreadable_lines += 1,
        }
    }
    out
}

/// The file name of a segment.
pub fn segment_name(ts: i64, writer: &str, counter: u64, kind: SegmentKind) -> String {
    let kind = match kind {
        SegmentKind::Commit => "commit",
        SegmentKind::Checkpoint => "checkpoint",
    };
    format!("{:016x}-{writer}-{counter}.{kind}.jsonl", ts.max(0))
}

/// The kind of a segment, from its name; `None` for files that are not segments.
pub fn segment_kind(name: &str) -> Option<SegmentKind> {
    if name.ends_with(".commit.jsonl") {
        Some(SegmentKind::Commit)
    } else if name.ends_with(".checkpoint.jsonl") {
        Some(SegmentKind::Checkpoint)
    } else {
        None
    }
}

/// The log of one store.
#[derive(Debug, Clone)]
pub struct Log {
    storage: Arc<Storage>,
    counter: Arc<AtomicU64>,
}

impl Log {
    pub fn new(storage: Arc<Storage>) -> Log {
        Log { storage, counter: Arc::new(AtomicU64::new(0)) }
    }

    fn key(name: &str) -> String {
        format!("{LOG_PREFIX}/{name}")
    }

    /// The names of all segments, sorted.
    pub fn list(&self) -> Result<Vec<String>, LogError> {
        if let Some(dir) = self.storage.local_path(LOG_PREFIX) {
            // Every command lists the log at least once: on a local folder, names alone, without the stat
            // per entry a generic listing makes (600 segments cost 10 ms that way).
            let entries = match std::fs::read_dir(&dir) {
                Ok(entries) => entries,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
                Err(source) => return Err(StorageError::Io { path: dir, source }.into()),
            };
            let mut names = Vec::new();
            for entry in entries {
                let entry = entry.map_err(|source| StorageError::Io { path: dir.clone(), source })?;
                if let Some(name) = entry.file_name().to_str()
                    && segment_kind(name).is_some()
                {
                    names.push(name.to_string());
                }
            }
            names.sort();
            return Ok(names);
        }
        Ok(self
            .storage
            .list(LOG_PREFIX)?
            .into_iter()
            .filter_map(|e| e.key.strip_prefix(&format!("{LOG_PREFIX}/")).map(str::to_string))
            .filter(|name| !name.contains('/') && segment_kind(name).is_some())
            .collect())
    }

    /// A watch that tells when the log gained segments (see [`crate::log_watch`]); `None` unless the log is
    /// a local folder the system can watch.
    pub fn watch(&self) -> Option<crate::log_watch::LogWatch> {
        crate::log_watch::LogWatch::new(&self.storage.local_path(LOG_PREFIX)?)
    }

    /// Reads and parses one segment.
    pub fn read(&self, name: &str) -> Result<Segment, LogError> {
        let bytes = self.storage.get(&Log::key(name))?;
        decode_segment(name, &bytes)
    }

    /// Publishes a segment: a create-only write of the whole segment, durable before it returns when the
    /// store is durable. Returns the segment's name. This is the moment a commit becomes true.
    pub fn append(&self, header: &SegmentHeader, records: &[Record]) -> Result<String, LogError> {
        self.publish(header, encode_segment(header, records)?)
    }

    /// [`Log::append`] for a segment already encoded with [`encode_segment`].
    pub fn publish(&self, header: &SegmentHeader, bytes: Vec<u8>) -> Result<String, LogError> {
        let bytes = bytes::Bytes::from(bytes);
        loop {
            let n = self.counter.fetch_add(1, Ordering::Relaxed);
            let name = segment_name(header.ts, &header.writer, n, header.trove);
            match self.storage.put(&Log::key(&name), bytes.clone(), true) {
                Ok(()) => return Ok(name),
                // Another handle of this same writer used the number: take the next one.
                Err(StorageError::AlreadyExists { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Removes a segment (after a checkpoint that covers it was published).
    pub fn remove(&self, name: &str) -> Result<(), LogError> {
        Ok(self.storage.delete(&Log::key(name))?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use trove_model::ProjectChange;

    fn header(records: usize) -> SegmentHeader {
        SegmentHeader {
            trove: SegmentKind::Commit,
            version: LOG_VERSION,
            ts: 42,
            writer: "abc".into(),
            host: "h".into(),
            pid: 1,
            user: "u".into(),
            op: "test".into(),
            records,
            covers: vec![],
            moves: vec![],
            seen: 0,
        }
    }

    #[test]
    fn append_list_read() {
        let dir = tempfile::tempdir().unwrap();
        let log = Log::new(Arc::new(Storage::local(dir.path(), true).unwrap()));
        let records = vec![Record::Project(ProjectChange { project: "p".into(), ..Default::default() })];
        let a = log.append(&header(1), &records).unwrap();
        let b = log.append(&header(1), &records).unwrap();
        assert_ne!(a, b);
        assert_eq!(log.list().unwrap(), vec![a.clone(), b]);
        let seg = log.read(&a).unwrap();
        assert_eq!(seg.records, records);
        assert_eq!(segment_kind(&a), Some(SegmentKind::Commit));
    }

    #[test]
    fn damage_is_reported_with_its_line() {
        let records = vec![Record::Project(ProjectChange { project: "p".into(), ..Default::default() })];
        let bytes = encode_segment(&header(2), &records).unwrap();
        let e = decode_segment("s", &bytes).unwrap_err().to_string();
        assert!(e.contains("expected 2 records, found 1"), "{e}");
        let mut bad = encode_segment(&header(1), &records).unwrap();
        bad.truncate(bad.len() - 5);
        let e = decode_segment("s", &bad).unwrap_err().to_string();
        assert!(e.contains("line 2"), "{e}");
        assert!(decode_segment("s", b"").is_err());
    }
}
