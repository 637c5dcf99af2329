//! ISO-8601 timestamps, read without a calendar dependency.
//!
//! Accepted: `YYYY-MM-DD`, then optionally `T` (or `t`, or one space) `HH:MM`, optional `:SS`, optional fraction
//! (any number of digits; beyond microseconds they are truncated), optional `Z` or `±HH:MM` offset. Without an
//! offset the time is UTC. Dates are checked (no February 30th); a leap second (`:60`) is refused.

/// Microseconds since the Unix epoch, or `None` if `text` is not such a timestamp.
pub(crate) fn parse_timestamp(text: &str) -> Option<i64> {
    let mut s = Scanner { bytes: text.as_bytes(), at: 0 };
    let year = s.digits(4)?;
    s.expect(b'-')?;
    let month = s.digits(2)?;
    s.expect(b'-')?;
    let day = s.digits(2)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let mut micros_of_day = 0;
    let mut offset_minutes = 0;
    if s.at < s.bytes.len() {
        if !matches!(s.next()?, b'T' | b't' | b' ') {
            return None;
        }
        micros_of_day = s.time_of_day()?;
        offset_minutes = s.offset()?;
    }
    if s.at != s.bytes.len() {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400_000_000 + micros_of_day - offset_minutes * 60_000_000)
}

struct Scanner<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl Scanner<'_> {
    fn next(&mut self) -> Option<u8> {
        let b = *self.bytes.get(self.at)?;
        self.at += 1;
        Some(b)
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.at).copied()
    }

    fn expect(&mut self, want: u8) -> Option<()> {
        (self.next()? == want).then_some(())
    }

    /// Exactly `n` ASCII digits as a number.
    fn digits(&mut self, n: usize) -> Option<i64> {
        let mut value = 0;
        for _ in 0..n {
            let b = self.next()?;
            if !b.is_ascii_digit() {
                return None;
            }
            value = value * 10 + i64::from(b - b'0');
        }
        Some(value)
    }

    /// `HH:MM[:SS[.fraction]]` as microseconds.
    fn time_of_day(&mut self) -> Option<i64> {
        let hour = self.digits(2)?;
        self.expect(b':')?;
        let minute = self.digits(2)?;
        let mut second = 0;
        let mut micros = 0;
        if self.peek() == Some(b':') {
            self.at += 1;
            second = self.digits(2)?;
            if matches!(self.peek(), Some(b'.' | b',')) {
                self.at += 1;
                micros = self.fraction()?;
            }
        }
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        Some(((hour * 60 + minute) * 60 + second) * 1_000_000 + micros)
    }

    /// At least one digit; the first six are microseconds, the rest are dropped.
    fn fraction(&mut self) -> Option<i64> {
        let mut micros = 0;
        let mut count = 0;
        while let Some(b) = self.peek().filter(u8::is_ascii_digit) {
            self.at += 1;
            if count < 6 {
                micros = micros * 10 + i64::from(b - b'0');
            }
            count += 1;
        }
        if count == 0 {
            return None;
        }
        for _ in count..6 {
            micros *= 10;
        }
        Some(micros)
    }

    /// `Z`, `±HH:MM`, `±HHMM` or nothing (UTC), in minutes east of UTC.
    fn offset(&mut self) -> Option<i64> {
        let sign = match self.peek() {
            None => return Some(0),
            Some(b'Z' | b'z') => {
                self.at += 1;
                return Some(0);
            }
            Some(b'+') => 1,
            Some(b'-') => -1,
            Some(_) => return None,
        };
        self.at += 1;
        let hours = self.digits(2)?;
        if self.peek() == Some(b':') {
            self.at += 1;
        }
        let minutes = self.digits(2)?;
        if hours > 23 || minutes > 59 {
            return None;
        }
        Some(sign * (hours * 60 + minutes))
    }
}

fn is_leap(year: i64) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, the inverse of
/// `time::civil_from_days`).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_timestamp;
    use crate::time::rfc3339;

    #[test]
    fn accepted_forms() {
        assert_eq!(parse_timestamp("1970-01-01"), Some(0));
        assert_eq!(parse_timestamp("2024-05-01T10:00:00Z").map(rfc3339).unwrap(), "2024-05-01T10:00:00.000000Z");
        assert_eq!(
            parse_timestamp("2024-05-01T10:00:00.123+02:00").map(rfc3339).unwrap(),
            "2024-05-01T08:00:00.123000Z"
        );
        assert_eq!(parse_timestamp("2024-05-01 10:00").map(rfc3339).unwrap(), "2024-05-01T10:00:00.000000Z");
        assert_eq!(
            parse_timestamp("2000-02-29t23:59:59.1234567-0130").map(rfc3339).unwrap(),
            "2000-03-01T01:29:59.123456Z"
        );
        assert_eq!(parse_timestamp("1969-12-31T23:59:59.999999Z"), Some(-1));
    }

    #[test]
    fn refused_forms() {
        for bad in [
            "",
            "2024",
            "2024-05",
            "2024-5-01",
            "2024-13-01",
            "2023-02-29",
            "2024-04-31",
            "2024-05-01T",
            "2024-05-01T10",
            "2024-05-01T24:00",
            "2024-05-01T10:00:60",
            "2024-05-01T10:00:00.",
            "2024-05-01T10:00:00+2",
            "2024-05-01x",
            "2024-05-01T10:00:00ZZ",
            "२०२४-05-01",
        ] {
            assert_eq!(parse_timestamp(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_formatted_time_reads_back() {
        for micros in [0, -1, 1_700_000_000_123_456, 253_402_300_799_999_999, -62_167_219_200_000_000] {
            assert_eq!(parse_timestamp(&rfc3339(micros)), Some(micros));
        }
    }
}
