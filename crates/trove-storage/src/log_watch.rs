//! Knowing that the log gained no segment, without listing it.
//!
//! Every read and write of a long-lived handle first makes sure its catalog has merged every segment in the
//! log. Listing the log folder for that costs as much as the rest of a small write once the log holds a few
//! hundred commits. On a local folder the kernel can say instead what appeared in it (inotify): a
//! [`LogWatch`] remembers the segment names of the last complete catch-up and those this process published
//! itself, and is *settled* while no other segment name has appeared since. Any event it cannot account for
//! (an unknown segment, a lost event queue, the folder itself moved or removed) unsettles it, and the next
//! catch-up lists the folder as before. A watch can only ever cost a listing, never skip one that was needed:
//! a segment created by any process on this machine queues its event before its creator's `link` returns,
//! so before anything that process does next.

use std::collections::HashSet;
use std::mem::MaybeUninit;
use std::path::Path;

use rustix::fd::OwnedFd;
use rustix::fs::inotify::{self, CreateFlags, ReadFlags, WatchFlags};
use rustix::io::Errno;

use crate::log::segment_kind;

/// A watch on a local log folder (see the module documentation).
#[derive(Debug)]
pub struct LogWatch {
    fd: OwnedFd,
    known: HashSet<String>,
    settled: bool,
}

impl LogWatch {
    /// Watches the log folder `dir`. `None` where the system cannot; then every catch-up lists the folder.
    pub fn new(dir: &Path) -> Option<LogWatch> {
        let fd = inotify::init(CreateFlags::NONBLOCK | CreateFlags::CLOEXEC).ok()?;
        let events = WatchFlags::CREATE
            | WatchFlags::MOVED_TO
            | WatchFlags::DELETE
            | WatchFlags::MOVED_FROM
            | WatchFlags::DELETE_SELF
            | WatchFlags::MOVE_SELF
            | WatchFlags::ONLYDIR;
        inotify::add_watch(&fd, dir, events).ok()?;
        Some(LogWatch { fd, known: HashSet::new(), settled: false })
    }

    /// Whether no segment has appeared in the log since the last complete catch-up that this process did
    /// not publish and merge itself.
    pub fn settled(&mut self) -> bool {
        self.drain();
        self.settled
    }

    /// Records a catch-up that listed `names` and left every one of them merged into the catalog (call it
    /// once the catalog transaction committed).
    pub fn caught_up(&mut self, names: &[String]) {
        self.drain();
        self.known = names.iter().cloned().collect();
        self.settled = true;
    }

    /// Records a segment this process published and merged into the catalog (once that committed).
    pub fn published(&mut self, name: &str) {
        self.known.insert(name.to_string());
    }

    /// How many commit segments the log holds, as far as the watch knows (exact while it is settled).
    pub fn commits(&mut self) -> usize {
        self.drain();
        self.known.iter().filter(|n| segment_kind(n) == Some(trove_model::SegmentKind::Commit)).count()
    }

    /// Forgets being settled: the next catch-up lists the log.
    pub fn unsettle(&mut self) {
        self.settled = false;
    }

    /// Reads every queued event.
    fn drain(&mut self) {
        let mut buf = [MaybeUninit::<u8>::uninit(); 16384];
        let mut reader = inotify::Reader::new(&self.fd, &mut buf);
        loop {
            match reader.next() {
                Ok(event) => {
                    let flags = event.events();
                    let lost = ReadFlags::QUEUE_OVERFLOW
                        | ReadFlags::IGNORED
                        | ReadFlags::DELETE_SELF
                        | ReadFlags::MOVE_SELF
                        | ReadFlags::UNMOUNT;
                    if flags.intersects(lost) {
                        self.settled = false;
                        continue;
                    }
                    // Segments only: a writer's temporary files come and go beside them.
                    let Some(name) =
                        event.file_name().and_then(|n| n.to_str().ok()).filter(|n| segment_kind(n).is_some())
                    else {
                        continue;
                    };
                    if flags.intersects(ReadFlags::CREATE | ReadFlags::MOVED_TO) {
                        if !self.known.contains(name) {
                            self.settled = false;
                        }
                    } else if flags.intersects(ReadFlags::DELETE | ReadFlags::MOVED_FROM) {
                        self.known.remove(name);
                    }
                }
                Err(Errno::INTR) => continue,
                Err(Errno::AGAIN) => break,
                Err(_) => {
                    self.settled = false;
                    break;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_segment_from_elsewhere_unsettles_and_own_segments_do_not() {
        let dir = tempfile::tempdir().unwrap();
        let Some(mut watch) = LogWatch::new(dir.path()) else { return };
        assert!(!watch.settled(), "a new watch knows nothing yet");
        let first = "0000000000000001-aaaa-0.commit.jsonl".to_string();
        std::fs::write(dir.path().join(&first), b"x").unwrap();
        watch.caught_up(std::slice::from_ref(&first));
        assert!(watch.settled());
        // A temporary file and this process's own segment leave it settled.
        std::fs::write(dir.path().join(".tmp-123"), b"x").unwrap();
        let own = "0000000000000002-aaaa-1.commit.jsonl";
        std::fs::write(dir.path().join(own), b"x").unwrap();
        watch.published(own);
        assert!(watch.settled());
        // Removing segments (a compaction) leaves it settled; another writer's segment does not.
        std::fs::remove_file(dir.path().join(&first)).unwrap();
        assert!(watch.settled());
        std::fs::write(dir.path().join("0000000000000003-bbbb-0.commit.jsonl"), b"x").unwrap();
        assert!(!watch.settled());
        assert!(!watch.settled(), "it stays unsettled until the next complete catch-up");
    }
}
