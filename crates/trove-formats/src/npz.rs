//! numpy's `.npz`: a zip archive of `.npy` members (`numpy.savez`, `numpy.savez_compressed`). Stored as it
//! is; the summary lists each member with its dtype, shape and order, read from the member's header alone
//! (a compressed member is inflated only as far as its header).

use std::io::Write;
use std::path::Path;

use serde_json::{Value, json};

use crate::{Format, FormatError, PreviewOptions, Probe, Result};

/// The `.npz` format.
pub struct Npz;

/// Members listed in a summary; an archive with more says how many it holds.
const MAX_LISTED: usize = 1000;

impl Format for Npz {
    fn name(&self) -> &'static str {
        "npz"
    }
    fn extension(&self) -> &'static str {
        "npz"
    }
    fn media_type(&self) -> &'static str {
        "application/x-npz"
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        let zip = probe.head.starts_with(b"PK\x03\x04") || probe.head.starts_with(b"PK\x05\x06");
        !probe.is_dir && zip && probe.extension().as_deref() == Some("npz")
    }
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let file = std::fs::File::open(stored).map_err(FormatError::io(stored))?;
        let bad =
            |e: zip::result::ZipError| FormatError::malformed(stored, format!("not a readable npz (zip) archive: {e}"));
        let mut archive = zip::ZipArchive::new(file).map_err(bad)?;
        let mut members = Vec::new();
        let mut compressed = false;
        for i in 0..archive.len().min(MAX_LISTED) {
            let mut member = archive.by_index(i).map_err(bad)?;
            compressed |= member.compression() != zip::CompressionMethod::Stored;
            let name = member.name().map_err(bad)?.to_string();
            let entry = match name.strip_suffix(".npy") {
                Some(array) => {
                    let mut summary = crate::npy::header_summary(&mut member, stored)
                        .map_err(|e| FormatError::malformed(stored, format!("member {name:?}: {e}")))?;
                    summary["name"] = json!(array);
                    summary
                }
                None => json!({"name": name, "size": member.size()}),
            };
            members.push(entry);
        }
        let mut summary = json!({"members": members, "compressed": compressed});
        if archive.len() > MAX_LISTED {
            summary["member_count"] = json!(archive.len());
        }
        Ok(summary)
    }
    /// One line per member: its name, dtype and shape.
    fn preview(&self, stored: &Path, _options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let summary = self.summarise(stored)?;
        let w = |e| FormatError::io(Path::new("<output>"))(e);
        for m in summary["members"].as_array().into_iter().flatten() {
            let name = m["name"].as_str().unwrap_or_default();
            let line = match (m.get("dtype"), m.get("shape")) {
                (Some(dtype), Some(shape)) => format!("{name}  {}  {shape}", dtype.as_str().unwrap_or_default()),
                _ => format!("{name}  {} bytes", m["size"]),
            };
            writeln!(out, "{line}").map_err(w)?;
        }
        Ok(())
    }
}
