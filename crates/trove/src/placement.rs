//! Where a commit's files will land, checked before the commit is published, so that a write that cannot
//! finish fails while nothing has happened yet (after the commit, a failure would leave a committed dataset
//! with a missing object).
//!
//! A destination must be free, or hold the object the log names there (which the write replaces): trove
//! never replaces or deletes anything it does not know, such as files placed in the store by hand. Inside one
//! commit, no object may sit where another object's folder, or a dataset's, must be. The way to every
//! destination must not pass through a symbolic link or a file, and the whole path must fit the filesystem.

use std::collections::HashSet;

use trove_catalog::Reader;
use trove_model::Record;
use trove_storage::Storage;

use crate::error::{Error, Result};
use crate::store::Plan;

/// The longest path a file may have on a local filesystem (Linux's `PATH_MAX`, less its NUL).
const MAX_PATH_BYTES: usize = 4095;

/// The keys that hold `key` (`p/a/b` for `p/a/b/c`), innermost first.
fn ancestors(key: &str) -> impl Iterator<Item = &str> {
    let mut rest = key;
    std::iter::from_fn(move || {
        let (head, _) = rest.rsplit_once('/')?;
        rest = head;
        Some(head)
    })
}

/// Whether the catalog names an object at the storage key `project/path/name`.
fn names_object_at(read: &Reader<'_>, key: &str) -> Result<bool> {
    let Some((project, rest)) = key.split_once('/') else { return Ok(false) };
    let Some((path, name)) = rest.rsplit_once('/') else { return Ok(false) };
    Ok(read.dataset_at(project, path)?.is_some_and(|row| row.state.is_alive() && row.state.objects.contains_key(name)))
}

/// Checks every place a plan's files go to. `sees_everything` is false for a log-only writer, whose catalog
/// may lag other writers' commits: it cannot tell their objects from hand-placed files, so there it replaces
/// a file only by a file and a folder only by a folder.
pub(crate) fn check(storage: &Storage, read: &Reader<'_>, plan: &Plan, sees_everything: bool) -> Result<()> {
    let destinations: HashSet<&str> = plan.moves.iter().map(|m| m.to.as_str()).collect();
    for m in &plan.moves {
        if let Some(holder) = ancestors(&m.to).find(|a| destinations.contains(a)) {
            return Err(Error::Invalid(format!(
                "{holder} would be an object and also the folder holding {}: one write cannot place both",
                m.to
            )));
        }
    }
    for record in &plan.records {
        if let Record::Dataset(change) = record
            && let Some(at) = &change.at
        {
            let key = format!("{}/{}", at.project(), at.path());
            if let Some(object) =
                std::iter::once(key.as_str()).chain(ancestors(&key)).find(|k| destinations.contains(k))
            {
                return Err(Error::Invalid(format!(
                    "dataset {key} would lie inside object {object}, which the same write places: one cannot be both"
                )));
            }
        }
    }
    for m in &plan.moves {
        storage.writable_path(&m.from)?;
        let Some(path) = storage.writable_path(&m.to)? else { continue };
        let length = path.as_os_str().len();
        if length > MAX_PATH_BYTES {
            return Err(Error::Invalid(format!(
                "{}: its path on disk would be {length} bytes long, and the filesystem allows {MAX_PATH_BYTES}",
                m.to
            )));
        }
        let found = match std::fs::symlink_metadata(&path) {
            Ok(found) => found,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => return Err(Error::Io { path, source }),
        };
        let replaceable = if sees_everything {
            names_object_at(read, &m.to)?
        } else {
            let source_is_dir = storage.local_path(&m.from).is_some_and(|p| p.is_dir());
            source_is_dir == found.is_dir()
        };
        if !replaceable {
            return Err(Error::Exists {
                what: format!(
                    "{} (trove's log names nothing there: placed by hand?); trove replaces only its own files, so \
                     move it away or adopt it with `trove sync --scan`",
                    path.display()
                ),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::ancestors;

    #[test]
    fn ancestors_run_inwards_out() {
        assert_eq!(ancestors("p/a/b/c").collect::<Vec<_>>(), ["p/a/b", "p/a", "p"]);
        assert_eq!(ancestors("p").count(), 0);
    }
}
