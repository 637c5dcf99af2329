//! `trove verify` (every object hashed again) and `trove log` (a dataset's history).

use anyhow::{Result, bail};
use serde_json::json;
use trove::model::Ref;
use trove::{HistoryEntry, Store, VerifyScope};

use crate::output::{self, Out};

/// `trove verify [REF] [--all] [--json]`: one line per damage, then a summary; exit code 1 when anything is
/// damaged. Without REF every object is checked (as with --all).
pub fn verify(store: &Store, reference: Option<&str>, json: bool, out: &mut Out) -> Result<()> {
    let scope = match reference {
        Some(r) => VerifyScope::Ref(Ref::parse(r)?),
        None => VerifyScope::All,
    };
    let bar = output::progress_bar("{spinner} verify [{bar:20}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta} left)");
    let report = store.verify(&scope, &mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let report = report?;
    for object in &report.damaged {
        if json {
            out.json(&serde_json::to_value(object)?)?;
            continue;
        }
        for damage in &object.damage {
            out.line(format!("damaged: {}: {damage} at {}", object.reference, damage.path))?;
        }
    }
    let damaged = report.damaged.len();
    if json {
        out.json(&json!({
            "summary": {
                "clean": report.is_clean(),
                "objects": report.objects,
                "files": report.files,
                "bytes": report.bytes,
                "seconds": report.seconds,
                "damaged": damaged,
            }
        }))?;
    } else {
        let rate = report.bytes as f64 / report.seconds.max(1e-9);
        out.line(format!(
            "verified {} object{} ({}) in {:.2} s ({}/s): {damaged} damaged",
            report.objects,
            if report.objects == 1 { "" } else { "s" },
            output::size(report.bytes),
            report.seconds,
            output::size(rate as u64),
        ))?;
    }
    if damaged > 0 {
        // The damage lines go out before the error does.
        out.flush()?;
        bail!("{damaged} damaged object{} (of {} verified)", if damaged == 1 { "" } else { "s" }, report.objects);
    }
    Ok(())
}

/// `trove log REF [--json]`: one block per entry (when, what, who), then its changes, indented.
pub fn log(store: &Store, reference: &str, json: bool, out: &mut Out) -> Result<()> {
    let r = Ref::parse(reference)?;
    let entries = store.history(&r)?;
    if json {
        for entry in &entries {
            out.json(&serde_json::to_value(entry)?)?;
        }
        return Ok(());
    }
    // A path that held several datasets one after another: say which one each entry is about.
    let several = entries.iter().any(|e| e.dataset != entries[0].dataset);
    for (i, entry) in entries.iter().enumerate() {
        if i > 0 {
            out.line("")?;
        }
        block(entry, several, out)?;
    }
    Ok(())
}

fn block(entry: &HistoryEntry, show_dataset: bool, out: &mut Out) -> Result<()> {
    let dataset = if show_dataset { format!("  dataset {}", entry.dataset) } else { String::new() };
    out.line(format!("{}  {}  {}{dataset}  [{}]", entry.time, entry.op, entry.who(), entry.segment))?;
    if let Some(note) = &entry.note {
        out.line(format!("  ({note})"))?;
    }
    for change in &entry.changes {
        match &change.lost_to {
            Some(winner) => out.line(format!(
                "  {}   ✗ lost (last write wins) to writer {} on {} at {}",
                change.words, winner.writer, winner.host, winner.time
            ))?,
            None => out.line(format!("  {}", change.words))?,
        }
    }
    Ok(())
}
