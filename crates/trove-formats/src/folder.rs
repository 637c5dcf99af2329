//! A whole folder as one object: its inner layout is kept, and each file is checksummed by the store.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::{Format, FormatError, Layout, PreviewOptions, Probe, Result};

/// Entries `cat` lists when no `--head` is given.
const DEFAULT_ENTRIES: usize = 50;

/// A folder of files, stored with its layout.
pub struct Folder;

/// One file inside a folder object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FolderFile {
    /// Its path inside the folder, `/`-separated.
    pub relative: String,
    pub path: PathBuf,
    pub size: u64,
}

/// Every file below `dir`, sorted by relative path. Symbolic links are followed (their content is what is
/// stored); anything that is neither a file nor a folder (a socket, a device) is refused, as is a name that
/// is not UTF-8 (it could not be named in a manifest).
pub fn files(dir: &Path) -> Result<Vec<FolderFile>> {
    let mut out = Vec::new();
    let mut pending = vec![(dir.to_path_buf(), String::new())];
    let mut depth_guard = 0usize;
    while let Some((folder, prefix)) = pending.pop() {
        depth_guard += 1;
        if depth_guard > 1_000_000 {
            return Err(FormatError::malformed(dir, "more than a million folders (a symbolic link loop?)"));
        }
        for entry in std::fs::read_dir(&folder).map_err(FormatError::io(&folder))? {
            let entry = entry.map_err(FormatError::io(&folder))?;
            let path = entry.path();
            let name = entry
                .file_name()
                .into_string()
                .map_err(|raw| FormatError::malformed(&path, format!("the name {raw:?} is not UTF-8")))?;
            let relative = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
            let meta = std::fs::metadata(&path).map_err(FormatError::io(&path))?;
            if meta.is_dir() {
                pending.push((path, relative));
            } else {
                crate::refuse_special(&path, &meta)?;
                out.push(FolderFile { relative, path, size: meta.len() });
            }
        }
    }
    out.sort_by(|a, b| a.relative.cmp(&b.relative));
    Ok(out)
}

impl Format for Folder {
    fn name(&self) -> &'static str {
        "folder"
    }
    fn extension(&self) -> &'static str {
        ""
    }
    fn media_type(&self) -> &'static str {
        "inode/directory"
    }
    fn layout(&self) -> Layout {
        Layout::Folder
    }
    fn detect(&self, probe: &Probe<'_>) -> bool {
        probe.is_dir
    }
    fn summarise(&self, stored: &Path) -> Result<Value> {
        let files = files(stored)?;
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        Ok(json!({"files": files.len(), "bytes": bytes}))
    }
    fn preview(&self, stored: &Path, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        let files = files(stored)?;
        let limit = options.head.unwrap_or(DEFAULT_ENTRIES);
        let w = FormatError::io(stored);
        let mut lines = String::new();
        let bytes: u64 = files.iter().map(|f| f.size).sum();
        lines.push_str(&format!("folder, {} files, {bytes} bytes\n", files.len()));
        let width = files.iter().take(limit).map(|f| f.size.to_string().len()).max().unwrap_or(1);
        for f in files.iter().take(limit) {
            lines.push_str(&format!("{:>width$}  {}\n", f.size, f.relative));
        }
        if files.len() > limit {
            lines.push_str(&format!("… {} more\n", files.len() - limit));
        }
        out.write_all(lines.as_bytes()).map_err(w)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_nested_files_in_order() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/z.txt"), b"zz").unwrap();
        std::fs::write(dir.path().join("a.txt"), b"a").unwrap();
        let found: Vec<(String, u64)> = files(dir.path()).unwrap().into_iter().map(|f| (f.relative, f.size)).collect();
        assert_eq!(found, [("a.txt".to_string(), 1), ("b/c/z.txt".to_string(), 2)]);
        assert_eq!(Folder.summarise(dir.path()).unwrap(), json!({"files": 2, "bytes": 3}));
        let mut out = Vec::new();
        Folder.preview(dir.path(), &PreviewOptions { head: Some(1), ..Default::default() }, &mut out).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "folder, 2 files, 3 bytes\n1  a.txt\n… 1 more\n");
    }
}
