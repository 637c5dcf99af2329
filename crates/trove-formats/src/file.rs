//! Any file trove has no closer handler for: stored byte for byte; previewed as text, JSON or a hex dump.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;

use serde_json::Value;

use crate::media::looks_like_text;
use crate::{Format, FormatError, PreviewOptions, Probe, Result};

/// Bytes read for a summary's sniffing: enough for an image's header behind a large EXIF block.
const SUMMARY_HEAD: u64 = 256 << 10;

/// Lines (or hex-dump rows) `cat` prints when no `--head` is given.
const DEFAULT_LINES: usize = 20;
/// JSON files up to this size are pretty-printed by `cat`; larger ones are shown as their first lines.
const PRETTY_JSON_LIMIT: u64 = 1 << 20;

/// A plain file: stored as it is. Its format word in a manifest comes from [`crate::media::sniff`] (`json`,
/// `text`, `image`, `hdf5`, ...); every word no other handler claims comes here.
pub struct RawFile;

impl Format for RawFile {
    fn name(&self) -> &'static str {
        "file"
    }
    fn extension(&self) -> &'static str {
        ""
    }
    fn media_type(&self) -> &'static str {
        "application/octet-stream"
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        !probe.is_dir
    }
    /// What the science formats, images and JSON hold (`science.rs`); for other files the manifest already
    /// says it all (size, checksum, media type).
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let mut head = Vec::new();
        let file = std::fs::File::open(stored).map_err(FormatError::io(stored))?;
        file.take(SUMMARY_HEAD).read_to_end(&mut head).map_err(FormatError::io(stored))?;
        let (word, _) = crate::media::sniff(stored, &head[..head.len().min(crate::PROBE_BYTES)]);
        Ok(crate::science::summary(word, stored, &head))
    }
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let lines = options.head.unwrap_or(DEFAULT_LINES);
        let file = std::fs::File::open(stored).map_err(FormatError::io(stored))?;
        let size = file.metadata().map_err(FormatError::io(stored))?.len();
        let mut reader = BufReader::new(file);
        let head = reader.fill_buf().map_err(FormatError::io(stored))?.to_vec();
        let w = |e| FormatError::io(Path::new("<output>"))(e);
        if !looks_like_text(&head) {
            return hex_dump(&mut reader, size, lines, out).map_err(w);
        }
        let is_json = crate::media::by_extension(stored).0 == "json";
        if is_json && size <= PRETTY_JSON_LIMIT {
            let mut text = String::new();
            reader.read_to_string(&mut text).map_err(FormatError::io(stored))?;
            if let Ok(value) = serde_json::from_str::<Value>(&text) {
                let pretty = serde_json::to_string_pretty(&value).unwrap_or(text);
                return print_lines(pretty.as_bytes(), lines, out).map_err(w);
            }
            return print_lines(text.as_bytes(), lines, out).map_err(w);
        }
        print_lines(reader, lines, out).map_err(w)
    }
}

/// Prints the first `lines` lines, and `…` when there are more.
fn print_lines(reader: impl BufRead, lines: usize, out: &mut dyn Write) -> std::io::Result<()> {
    for (shown, line) in reader.split(b'\n').enumerate() {
        let line = line?;
        if shown == lines {
            writeln!(out, "…")?;
            break;
        }
        out.write_all(&line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// `xxd`-style rows of 16 bytes.
fn hex_dump(reader: &mut dyn Read, size: u64, rows: usize, out: &mut dyn Write) -> std::io::Result<()> {
    writeln!(out, "binary file, {size} bytes")?;
    let mut buf = vec![0u8; rows * 16];
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    for (i, row) in buf[..filled].chunks(16).enumerate() {
        let hex: Vec<String> = row.iter().map(|b| format!("{b:02x}")).collect();
        let text: String = row.iter().map(|&b| if (0x20..0x7f).contains(&b) { b as char } else { '.' }).collect();
        writeln!(out, "{:08x}  {:<47}  {text}", i * 16, hex.join(" "))?;
    }
    if (filled as u64) < size {
        writeln!(out, "…")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn preview(name: &str, bytes: &[u8], head: Option<usize>) -> String {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let mut out = Vec::new();
        RawFile.preview(&path, &PreviewOptions { head, ..Default::default() }, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn text_json_and_binary_previews() {
        assert_eq!(preview("a.txt", b"one\ntwo\nthree\n", Some(2)), "one\ntwo\n…\n");
        assert_eq!(preview("a.json", br#"{"b":[1,2]}"#, None), "{\n  \"b\": [\n    1,\n    2\n  ]\n}\n");
        let bin = preview("a.bin", &[0u8, 1, 2, 0x41, 0xff], None);
        assert!(bin.starts_with("binary file, 5 bytes\n00000000  00 01 02 41 ff"), "{bin}");
        assert!(bin.contains("...A."), "{bin}");
    }
}
