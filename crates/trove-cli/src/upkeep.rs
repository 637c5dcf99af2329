//! `trove check` and `trove gc`: what disagrees between log, catalog and files, and removing what crashes
//! leave behind.

use std::time::Duration;

use anyhow::{Result, bail};
use serde_json::json;
use trove::{FindingKind, Store};

use crate::output::{self, Out};

/// `trove check [--json]`: one line per finding, then a summary; exit code 1 when anything disagrees.
pub fn check(store: &Store, json: bool, out: &mut Out) -> Result<()> {
    let report = store.check()?;
    for finding in &report.findings {
        if json {
            out.json(&serde_json::to_value(finding)?)?;
        } else {
            match &finding.path {
                Some(path) if *path != finding.subject => out.line(format!("{finding}  [{path}]"))?,
                _ => out.line(finding.to_string())?,
            }
        }
    }
    let counts = report.counts();
    if json {
        out.json(&json!({
            "summary": {
                "clean": report.is_clean(),
                "segments": report.segments,
                "datasets": report.datasets,
                "objects": report.objects,
                "files": report.files,
                "findings": counts.iter().map(|(k, n)| (k.word().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
            }
        }))?;
    } else {
        out.line(format!(
            "checked {} log segments, {} datasets, {} objects, {} files: {}",
            report.segments,
            report.datasets,
            report.objects,
            report.files,
            if report.is_clean() { "log, catalog and files agree".to_string() } else { summary(&counts) }
        ))?;
    }
    if report.is_clean() {
        return Ok(());
    }
    if report.only_orphans() {
        bail!("{}: `trove gc` removes them", summary(&counts));
    }
    bail!("{} between log, catalog and files", summary(&counts));
}

fn summary(counts: &std::collections::BTreeMap<FindingKind, usize>) -> String {
    let total: usize = counts.values().sum();
    let parts: Vec<String> = counts.iter().map(|(k, n)| format!("{n} {}", k.word())).collect();
    format!("{total} finding{} ({})", if total == 1 { "" } else { "s" }, parts.join(", "))
}

/// `trove gc [--grace D] [--json]`.
pub fn gc(store: &Store, grace: Duration, json: bool, out: &mut Out) -> Result<()> {
    let report = store.gc(grace)?;
    if json {
        return Ok(out.json(&serde_json::to_value(&report)?)?);
    }
    for key in &report.removed {
        out.line(format!("removed {key}"))?;
    }
    for (key, why) in &report.kept {
        out.line(format!("kept {key}: {why}"))?;
    }
    out.line(format!(
        "removed {} orphan{} ({}) and {} empty folder{}; kept {}",
        report.removed.len(),
        if report.removed.len() == 1 { "" } else { "s" },
        output::size(report.bytes),
        report.folders,
        if report.folders == 1 { "" } else { "s" },
        report.kept.len()
    ))?;
    Ok(())
}

/// `trove repair`: what each quarantined segment held, so that nothing is lost silently.
pub fn repair(store: &Store, json: bool, out: &mut Out) -> Result<()> {
    let report = store.repair()?;
    for q in &report.quarantined {
        if json {
            out.json(&serde_json::json!({
                "segment": q.segment, "moved_to": q.key, "damage": q.damage, "commit": q.commit,
                "held": q.held, "unreadable_lines": q.unreadable_lines,
            }))?;
            continue;
        }
        out.line(format!("quarantined {} (moved to {}): {}", q.segment, q.key, q.damage))?;
        if let Some(commit) = &q.commit {
            out.line(format!("  it was the commit of {commit}"))?;
        }
        for held in &q.held {
            out.line(format!("  it changed {held}"))?;
        }
        if q.unreadable_lines > 0 {
            out.line(format!("  {} of its lines cannot be read at all", q.unreadable_lines))?;
        }
    }
    if !json {
        out.line(format!(
            "{} damaged segment{} moved aside; the catalog was rebuilt from the rest of the log ({} datasets)",
            report.quarantined.len(),
            if report.quarantined.len() == 1 { "" } else { "s" },
            report.datasets
        ))?;
    }
    Ok(())
}

/// A duration as people write it: `90s`, `30m`, `1h`, `2d`, or a plain number of seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit() && c != '.').unwrap_or(s.len());
    let (number, unit) = s.split_at(split);
    let n: f64 = number.parse().map_err(|_| format!("invalid duration {s:?}: expected e.g. 90s, 30m, 1h or 2d"))?;
    let seconds = match unit.trim() {
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        "d" => n * 86400.0,
        other => return Err(format!("invalid duration {s:?}: unknown unit {other:?} (use s, m, h or d)")),
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("invalid duration {s:?}"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1.5h"), Ok(Duration::from_secs(5400)));
        assert!(parse_duration("1y").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("soon").is_err());
    }
}
