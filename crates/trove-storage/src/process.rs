//! Which process owns something (a lease, staged data), and whether that process still runs.

use serde::{Deserialize, Serialize};

/// A process, identified so that a reused pid is not mistaken for it: host, pid and the process's start time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessOwner {
    pub host: String,
    pub pid: u32,
    /// When the process started, in clock ticks since boot (field 22 of `/proc/<pid>/stat`); 0 where unknown.
    pub start: u64,
    /// The trove writer id of the process (random per process).
    #[serde(default)]
    pub writer: String,
}

/// Whether the owner of something still runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    Alive,
    Dead,
    /// On another machine: only an expiry time can tell.
    Unknown,
}

impl ProcessOwner {
    /// This process.
    pub fn current(writer: &str) -> ProcessOwner {
        let pid = std::process::id();
        ProcessOwner {
            host: gethostname::gethostname().to_string_lossy().into_owned(),
            pid,
            start: process_start(pid).unwrap_or(0),
            writer: writer.to_string(),
        }
    }

    /// Whether this owner still runs: known on this machine, unknown elsewhere.
    pub fn liveness(&self) -> Liveness {
        if self.host != gethostname::gethostname().to_string_lossy() {
            return Liveness::Unknown;
        }
        if is_running(self.pid, self.start) { Liveness::Alive } else { Liveness::Dead }
    }

    /// For messages: `pid 4711 on node17 (writer 3fa9c1d2e0b4)`.
    pub fn describe(&self) -> String {
        if self.writer.is_empty() {
            format!("pid {} on {}", self.pid, self.host)
        } else {
            format!("pid {} on {} (writer {})", self.pid, self.host, self.writer)
        }
    }
}

/// Whether process `pid` runs on this machine and, when `start` is known (not 0), started at `start`.
pub fn is_running(pid: u32, start: u64) -> bool {
    let Ok(pid_t) = i32::try_from(pid) else { return false };
    let Some(pid_nz) = rustix::process::Pid::from_raw(pid_t) else { return false };
    let exists = match rustix::process::test_kill_process(pid_nz) {
        Ok(()) => true,
        // The process exists but belongs to someone else.
        Err(rustix::io::Errno::PERM) => true,
        Err(_) => false,
    };
    if !exists {
        return false;
    }
    match (start, process_start(pid)) {
        (0, _) | (_, None) => true,
        (expected, Some(actual)) => expected == actual,
    }
}

/// The start time of a process in clock ticks since boot, from `/proc/<pid>/stat`; `None` without `/proc`.
pub fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count fields after its last ')'.
    let after = &stat[stat.rfind(')')? + 1..];
    // Fields from 3 on; the start time is field 22.
    after.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_not() {
        let me = ProcessOwner::current("w");
        assert!(me.start > 0, "no /proc start time");
        assert_eq!(me.liveness(), Liveness::Alive);
        let reused = ProcessOwner { start: me.start + 1, ..me.clone() };
        assert_eq!(reused.liveness(), Liveness::Dead, "a pid with another start time is another process");
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        assert!(!is_running(pid, 0) || process_start(pid).is_some(), "a reaped child is gone");
        let elsewhere = ProcessOwner { host: "elsewhere.example".into(), ..me };
        assert_eq!(elsewhere.liveness(), Liveness::Unknown);
    }
}
