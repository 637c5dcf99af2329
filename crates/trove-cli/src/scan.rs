//! `trove sync --scan` and `trove watch`: recording what was done to the data folders outside trove.

use std::io::IsTerminal;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Result;
use trove::{ScanPhase, ScanProgress, ScanReport, Store};

use crate::output::{self, Out};

/// One line per finding, in the order a person reads them.
fn finding_lines(report: &ScanReport) -> Vec<String> {
    let mut lines = Vec::new();
    lines.extend(report.projects.iter().map(|p| format!("new project {p}")));
    lines.extend(report.moved.iter().map(|m| format!("moved {} → {} (same id)", m.from, m.to)));
    lines.extend(report.copied.iter().map(|c| format!("copied {} → {} (new id, origin recorded)", c.from, c.to)));
    lines.extend(report.removed.iter().map(|r| format!("removed {} (its folder is gone)", r.path)));
    lines.extend(
        report
            .created
            .iter()
            .map(|c| format!("new dataset {} ({} object{})", c.path, c.objects, if c.objects == 1 { "" } else { "s" })),
    );
    lines.extend(report.objects_added.iter().map(|o| format!("new object {o}")));
    lines.extend(report.objects_changed.iter().map(|o| format!("changed in place {o} (new version, flagged edited)")));
    lines.extend(report.missing.iter().map(|o| format!("missing {o} (its file is gone; see `trove check`)")));
    lines.extend(report.skipped.iter().map(|s| format!("skipped {}: {}", s.path, s.reason)));
    lines
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// The summary line: what was looked at, what was recorded, how long it took.
fn summary_line(report: &ScanReport, seconds: f64) -> String {
    let mut found = Vec::new();
    for (n, word) in [
        (report.moved.len(), "moved"),
        (report.copied.len(), "copied"),
        (report.removed.len(), "removed"),
        (report.created.len(), "new datasets"),
        (report.objects_added.len(), "new objects"),
        (report.objects_changed.len(), "changed in place"),
        (report.missing.len(), "missing"),
        (report.skipped.len(), "skipped"),
    ] {
        if n > 0 {
            found.push(format!("{n} {word}"));
        }
    }
    let outcome = if found.is_empty() { "nothing changed".to_string() } else { found.join(", ") };
    format!(
        "scanned {}, {} ({} hashed, {}) in {seconds:.2} s: {outcome}{}",
        plural(report.folders as usize, "folder"),
        plural(report.files as usize, "file"),
        report.files_hashed,
        output::size(report.bytes_hashed),
        if report.committed { " (one commit)" } else { "" }
    )
}

fn print_report(report: &ScanReport, json: bool, out: &mut Out) -> Result<()> {
    let seconds = report.millis as f64 / 1000.0;
    if json {
        out.json(&serde_json::to_value(report)?)?;
    } else {
        for line in finding_lines(report) {
            out.line(line)?;
        }
        out.line(summary_line(report, seconds))?;
    }
    Ok(())
}

/// `trove sync --scan [--full] [--json]`.
pub fn sync_scan(store: &Store, full: bool, json: bool, out: &mut Out) -> Result<()> {
    if full {
        let rebuilt = store.sync_full()?;
        if !json {
            out.line(format!(
                "rebuilt the catalog: applied {} log segments; {} datasets",
                rebuilt.segments_applied, rebuilt.datasets
            ))?;
        }
    }
    let bar = std::io::stderr().is_terminal().then(|| {
        let bar = indicatif::ProgressBar::new(0);
        bar.set_style(
            indicatif::ProgressStyle::with_template("{spinner} scan: {msg} [{bar:30}] {pos}/{len}")
                .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
        );
        bar
    });
    let report = store.scan(&mut |p: ScanProgress| {
        if let Some(bar) = &bar {
            bar.set_message(match p.phase {
                ScanPhase::Walking => "folders",
                ScanPhase::Hashing => "bytes hashed",
                ScanPhase::Describing => "new objects described",
                ScanPhase::Recording => "recording",
            });
            bar.set_length(p.total);
            bar.set_position(p.done);
        }
    });
    if let Some(bar) = &bar {
        bar.finish_and_clear();
    }
    print_report(&report?, json, out)
}

/// `trove watch [--json]`: runs until the process is stopped; each scan that finds something is printed as
/// it happens.
pub fn watch(store: &Store, json: bool, out: &mut Out) -> Result<()> {
    // A store in a bucket has no folders to watch: the library refuses it before the first scan.
    if let Some(folder) = store.location().folder() {
        eprintln!("watching {} for changes to the data folders (Ctrl-C stops)", folder.display());
    }
    let stop = AtomicBool::new(false);
    let mut failure: Option<anyhow::Error> = None;
    store.watch(&stop, &mut |report| {
        if report.changes() == 0 && report.missing.is_empty() && report.skipped.is_empty() {
            return;
        }
        let written = print_report(report, json, out).and_then(|()| out.flush());
        if let Err(e) = written {
            failure = Some(e);
            stop.store(true, Ordering::Relaxed);
        }
    })?;
    failure.map_or(Ok(()), Err)
}
