//! PLACEHOLDER: being written.

use std::io::Write;
use std::path::Path;

use serde_json::Value;

use crate::{Format, PreviewOptions, Probe, Result};

pub struct RawFile;

impl Format for RawFile {
    fn name(&self) -> &'static str {
        "file"
    }
    fn extension(&self) -> &'static str {
        "file"
    }
    fn media_type(&self) -> &'static str {
        "application/octet-stream"
    }
    fn detect(&self, _probe: &Probe<'_>) -> bool {
        false
    }
    fn summarise(&self, _stored: &Path) -> Result<Value> {
        todo!()
    }
    fn preview(&self, _stored: &Path, _options: &PreviewOptions, _out: &mut dyn Write) -> Result<()> {
        todo!()
    }
}
