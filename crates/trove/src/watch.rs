//! `trove watch`: the scan of `trove sync --scan`, run whenever the data folders change, until stopped.
//!
//! The root is watched for new project folders and each project folder recursively (trove's own `.trove`
//! folder is never watched, so the scans' own commits wake nothing). Events are gathered until none came for
//! [`QUIET`], or for at most [`LATEST`] while they keep coming, then one scan records everything at once. A
//! scan is crash-safe (its commit is one atomic publish), so the process may simply be killed.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use notify::{EventKind, RecursiveMode, Watcher};

use crate::error::{Error, Result};
use crate::scan::ScanReport;
use crate::store::{CONFIG_FILE, Store};

/// How long the data folders must stay still before a scan runs.
pub const QUIET: Duration = Duration::from_millis(300);
/// How long changes may keep coming before a scan runs anyway.
pub const LATEST: Duration = Duration::from_secs(2);
/// How often the stop flag is looked at.
const POLL: Duration = Duration::from_millis(100);

fn watch_error(root: &Path, e: notify::Error) -> Error {
    let hint = match e.kind {
        notify::ErrorKind::MaxFilesWatch => {
            " (the system's limit of watched folders is reached: raise fs.inotify.max_user_watches, or run `trove sync --scan` instead)"
        }
        _ => "",
    };
    Error::Invalid(format!("cannot watch {}: {e}{hint}", root.display()))
}

/// Whether an event concerns the data folders (not trove's own files).
fn concerns_data(root: &Path, path: &Path) -> bool {
    match path.strip_prefix(root).ok().and_then(|rel| rel.components().next()) {
        Some(first) => {
            let first = first.as_os_str().to_string_lossy();
            !first.starts_with('.') && first != CONFIG_FILE
        }
        None => false,
    }
}

/// A new folder directly in the root: a project folder to watch.
fn new_project_folder(root: &Path, path: &Path) -> Option<PathBuf> {
    let is_top = path.parent() == Some(root);
    let name = path.file_name()?.to_string_lossy();
    (is_top && !name.starts_with('.') && path.is_dir()).then(|| path.to_path_buf())
}

impl Store {
    /// `trove watch`: scans once, then again each time the data folders change (see the module
    /// documentation), calling `on_scan` with each scan's report, until `stop` is set.
    pub fn watch(&self, stop: &AtomicBool, on_scan: &mut dyn FnMut(&ScanReport)) -> Result<()> {
        let root = self.scan_root("watch")?;
        let (events, incoming) = channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = events.send(event);
        })
        .map_err(|e| watch_error(&root, e))?;
        watcher.watch(&root, RecursiveMode::NonRecursive).map_err(|e| watch_error(&root, e))?;
        for entry in std::fs::read_dir(&root).map_err(Error::io(&root))? {
            let path = entry.map_err(Error::io(&root))?.path();
            if let Some(folder) = new_project_folder(&root, &path) {
                watcher.watch(&folder, RecursiveMode::Recursive).map_err(|e| watch_error(&folder, e))?;
            }
        }
        on_scan(&self.scan(&mut |_| {})?);
        // When the first and the latest change not yet scanned came.
        let mut pending: Option<(Instant, Instant)> = None;
        while !stop.load(Ordering::Relaxed) {
            match incoming.recv_timeout(POLL) {
                Ok(Ok(event)) => {
                    let relevant = event.paths.iter().any(|p| concerns_data(&root, p));
                    if matches!(event.kind, EventKind::Create(_)) {
                        for path in &event.paths {
                            if let Some(folder) = new_project_folder(&root, path) {
                                watcher
                                    .watch(&folder, RecursiveMode::Recursive)
                                    .map_err(|e| watch_error(&folder, e))?;
                            }
                        }
                    }
                    if relevant || event.need_rescan() {
                        let now = Instant::now();
                        pending = Some((pending.map_or(now, |(first, _)| first), now));
                    }
                }
                // Events were lost (the kernel's queue overflowed): a scan looks at everything anyway.
                Ok(Err(_)) => {
                    let now = Instant::now();
                    pending = Some((pending.map_or(now, |(first, _)| first), now));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(Error::Invalid(format!("watching {} stopped: the watcher ended", root.display())));
                }
            }
            if let Some((first, latest)) = pending
                && (latest.elapsed() >= QUIET || first.elapsed() >= LATEST)
            {
                pending = None;
                on_scan(&self.scan(&mut |_| {})?);
            }
        }
        Ok(())
    }
}
