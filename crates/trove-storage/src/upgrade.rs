//! Upgrades of a local store's layout, run once when a store an older trove wrote is opened.
//!
//! Format 1 kept names on disk escaped the way object stores advise (`object_store`'s path parts: every
//! non-ASCII byte and `% # ~ [ ] { } ^ \`` among others percent-encoded, so `lab/café` was `lab/caf%C3%A9`).
//! Format 2 keeps every name as it is. The log always held the names themselves, so only the files move.

use std::path::{Path, PathBuf};

use object_store::path::PathPart;

/// What renaming format 1's escaped names to the names themselves did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct NamesUpgrade {
    /// Files and folders renamed.
    pub renamed: usize,
    /// Escaped entries left as they are because an entry of their real name is beside them.
    pub kept: Vec<PathBuf>,
}

/// The name a format 1 entry stands for, when `disk` is format 1's escaping of a name other than itself.
pub fn format1_name(disk: &str) -> Option<String> {
    if !disk.contains('%') {
        return None;
    }
    let name = percent_encoding::percent_decode_str(disk).decode_utf8().ok()?.into_owned();
    (name != disk && PathPart::from(name.as_str()).as_ref() == disk).then_some(name)
}

/// Renames every escaped entry of the data tree below `root` (not `.trove/`, not links) to its real name,
/// folders before what they hold. Safe to run twice, or in two processes at once.
pub fn unescape_names(root: &Path, skip: &[&str]) -> std::io::Result<NamesUpgrade> {
    let mut done = NamesUpgrade::default();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let listing = match std::fs::read_dir(&dir) {
            Ok(l) => l,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        };
        for entry in listing {
            let entry = entry?;
            let Ok(name) = entry.file_name().into_string() else { continue };
            if dir == root && skip.contains(&name.as_str()) {
                continue;
            }
            let mut path = entry.path();
            if let Some(real) = format1_name(&name) {
                let target = dir.join(&real);
                match std::fs::symlink_metadata(&target) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => match std::fs::rename(&path, &target) {
                        Ok(()) => {
                            done.renamed += 1;
                            path = target;
                        }
                        // Another process renamed it first.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => path = target,
                        Err(e) => return Err(e),
                    },
                    _ => done.kept.push(path.clone()),
                }
            }
            if std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
                pending.push(path);
            }
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaped_names_are_recognised_and_plain_ones_are_not() {
        assert_eq!(format1_name("caf%C3%A9").as_deref(), Some("café"));
        assert_eq!(format1_name("x%231").as_deref(), Some("x#1"));
        assert_eq!(format1_name("50%25").as_deref(), Some("50%"));
        assert_eq!(format1_name("café"), None);
        assert_eq!(format1_name("100%"), None);
        // Not what format 1 would have written for "a b" (it kept spaces).
        assert_eq!(format1_name("a%20b"), None);
    }

    #[test]
    fn a_tree_is_renamed_folders_first_and_clashes_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("lab/caf%C3%A9/sub%7E")).unwrap();
        std::fs::write(root.join("lab/caf%C3%A9/sub%7E/x%231"), b"1").unwrap();
        std::fs::create_dir_all(root.join("lab/both")).unwrap();
        std::fs::write(root.join("lab/both/%C3%A9"), b"escaped").unwrap();
        std::fs::write(root.join("lab/both/é"), b"real").unwrap();
        std::fs::create_dir_all(root.join(".trove/log")).unwrap();
        std::fs::write(root.join(".trove/log/a%231"), b"log").unwrap();
        let done = unescape_names(root, &[".trove"]).unwrap();
        assert_eq!(done.renamed, 3);
        assert_eq!(std::fs::read(root.join("lab/café/sub~/x#1")).unwrap(), b"1");
        assert_eq!(done.kept, [root.join("lab/both/%C3%A9")]);
        assert!(root.join(".trove/log/a%231").exists());
        assert_eq!(unescape_names(root, &[".trove"]).unwrap().renamed, 0);
    }
}
