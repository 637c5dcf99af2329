//! Who is writing, and a clock that never runs backwards.

use std::time::{SystemTime, UNIX_EPOCH};

/// The identity recorded in every commit: a random writer id (unique per process), the host, the process id
/// and the login user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Writer {
    /// 12 hexadecimal digits, random per process; breaks ties between equal timestamps.
    pub id: String,
    pub host: String,
    pub pid: u32,
    pub user: String,
}

impl Writer {
    /// The identity of this process.
    pub fn current() -> Writer {
        let id = uuid::Uuid::new_v4().simple().to_string()[..12].to_string();
        let host = gethostname::gethostname().to_string_lossy().into_owned();
        let user = std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).unwrap_or_default();
        Writer { id, host, pid: std::process::id(), user }
    }
}

/// Microseconds since the Unix epoch.
pub fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// A hybrid logical clock: each tick is later than the wall clock, than every earlier tick, and than any
/// stamp the writer has seen, so a change always wins over the state it was computed from, even when
/// another machine's clock runs ahead.
#[derive(Debug, Default, Clone)]
pub struct Clock {
    last: i64,
}

impl Clock {
    /// The next timestamp, strictly after `seen`.
    pub fn tick(&mut self, seen: i64) -> i64 {
        let ts = now_micros().max(self.last + 1).max(seen + 1);
        self.last = ts;
        ts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_strictly_increasing_and_after_what_was_seen() {
        let mut c = Clock::default();
        let a = c.tick(0);
        let b = c.tick(0);
        assert!(b > a);
        let far = now_micros() + 10_000_000;
        assert_eq!(c.tick(far), far + 1);
        assert!(c.tick(0) > far);
        let w = Writer::current();
        assert_eq!(w.id.len(), 12);
        assert!(w.id.chars().all(|c| c.is_ascii_hexdigit()));
    }
}
