//! Timestamps as text, without a calendar dependency.

/// Formats microseconds since the Unix epoch as RFC 3339 in UTC with microseconds
/// (`2026-11-22T10:04:05.123456Z`).
///
/// ```
/// assert_eq!(trove_model::time::rfc3339(0), "1970-01-01T00:00:00.000000Z");
/// assert_eq!(trove_model::time::rfc3339(1_700_000_000_123_456), "2023-11-14T22:13:20.123456Z");
/// ```
pub fn rfc3339(micros: i64) -> String {
    let secs = micros.div_euclid(1_000_000);
    let frac = micros.rem_euclid(1_000_000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{frac:06}Z", rem / 3600, (rem % 3600) / 60, rem % 60)
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    #[test]
    fn leap_days_and_negative_times() {
        assert_eq!(super::rfc3339(951_782_400_000_000), "2000-02-29T00:00:00.000000Z");
        assert_eq!(super::rfc3339(-1), "1969-12-31T23:59:59.999999Z");
    }
}
