//! Reading data back out: `get` (verified against the recorded checksum) and `locate`.

use std::io::Write;
use std::path::{Path, PathBuf};

use trove_model::{DatasetState, Ref};

use crate::error::{Error, Result};
use crate::store::Store;
use crate::view::{Target, object_key};

impl Store {
    fn object_of(&self, r: &Ref) -> Result<(DatasetState, String, String)> {
        let object = r
            .object
            .clone()
            .ok_or_else(|| Error::Mismatch(format!("{r} names a dataset, not an object (PROJECT/PATH:OBJECT)")))?;
        let state = self.dataset_for(r)?;
        if !state.objects.contains_key(&object) {
            return Err(Error::NotFound { what: format!("object {r}") });
        }
        let path = r.path.as_ref().ok_or_else(|| Error::Invalid(format!("{r}: no dataset path")))?;
        let key = object_key(&r.project, path, &object);
        Ok((state, object, key))
    }

    /// Streams an object into `out`, then checks what was read against the recorded checksum.
    pub fn read_object(&self, r: &Ref, out: &mut dyn Write) -> Result<u64> {
        let (state, object, key) = self.object_of(r)?;
        if state.objects[&object].is_folder() {
            return Err(Error::Mismatch(format!(
                "{r} is stored as a folder ({}): it can be exported to a folder, or converted to a one-file format",
                state.objects[&object].format
            )));
        }
        let (size, hash) = self.storage.get_stream(&key, out)?;
        let expected = &state.objects[&object].checksum;
        let found = format!("blake3:{}", hash.to_hex());
        if *expected != found {
            return Err(Error::Damaged { what: r.to_string(), expected: expected.clone(), found });
        }
        Ok(size)
    }

    /// Exports an object to a file. The file appears complete and verified, or not at all. If the bytes do
    /// not match the checksum this handle's catalog knows, another writer may have replaced the object since:
    /// the catalog catches up and, when the object did change, the export is tried once more.
    pub fn export_object(&self, r: &Ref, dest: &Path) -> Result<u64> {
        let (state, object, _) = self.object_of(r)?;
        if state.objects[&object].is_folder() {
            return self.export_folder(r, dest);
        }
        match self.export_object_once(r, dest) {
            Err(Error::Damaged { what, expected, found }) => {
                self.refresh()?;
                let (state, object, _) = self.object_of(r)?;
                if state.objects[&object].checksum == expected {
                    return Err(Error::Damaged { what, expected, found });
                }
                self.export_object_once(r, dest)
            }
            other => other,
        }
    }

    fn export_object_once(&self, r: &Ref, dest: &Path) -> Result<u64> {
        if is_special(dest) {
            // A device or pipe (`-o /dev/null`, a FIFO) is written to, never renamed over.
            let mut file = std::fs::OpenOptions::new().write(true).open(dest).map_err(Error::io(dest))?;
            return self.read_object(r, &mut file);
        }
        let part = crate::objects::part_path(dest);
        let mut file = std::fs::File::create(&part).map_err(Error::io(&part))?;
        let result = self.read_object(r, &mut file).and_then(|n| {
            file.sync_all().map_err(Error::io(&part))?;
            std::fs::rename(&part, dest).map_err(Error::io(dest))?;
            Ok(n)
        });
        if result.is_err() {
            let _ = std::fs::remove_file(&part);
        }
        result
    }

    /// Exports every object of a dataset into `dir` (made if needed). Returns the files written.
    pub fn export_dataset(&self, r: &Ref, dir: &Path) -> Result<Vec<PathBuf>> {
        let state = self.dataset_for(r)?;
        std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        let mut written = Vec::new();
        for name in state.objects.keys() {
            let mut one = r.without_object();
            one.object = Some(name.clone());
            let dest = dir.join(name);
            self.export_object(&one, &dest)?;
            written.push(dest);
        }
        Ok(written)
    }

    /// The absolute path (or URL) of a dataset's folder or an object's file. On a local store the dataset's
    /// folder is made if it does not exist yet, so that figures can be written beside the data.
    pub fn locate(&self, r: &Ref) -> Result<String> {
        if r.object.is_some() {
            let (_, _, key) = self.object_of(r)?;
            return Ok(self.storage.locate(&key));
        }
        match self.resolve(r)? {
            Target::Project(p) => Ok(self.storage.locate(&p.name)),
            Target::Dataset(_) => {
                self.storage.ensure_folder(&r.to_string())?;
                Ok(self.storage.locate(&r.to_string()))
            }
            Target::Folder { .. } => Ok(self.storage.locate(&r.to_string())),
        }
    }
}

/// Whether `path` exists and is neither a regular file nor a folder (a device such as `/dev/null`, a pipe, a
/// socket): such a destination is written into, since renaming a finished file over it would replace it.
pub(crate) fn is_special(path: &Path) -> bool {
    std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir())
}
