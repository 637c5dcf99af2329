//! Data objects in and out: importing files and folders (as they are, or converted by a format handler),
//! exporting them (verified, or converted on the way out), previews, and the typed table and array API.
//!
//! An import is staged under `.trove/staging/<id>` and hashed there; the commit that names it moves it into
//! its readable place (see `store.rs`). A folder object (a Zarr array, a folder of files) records every file's
//! size and checksum in its manifest, and its checksum is the hash of that listing.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::record_batch::RecordBatchReader;
use ndarray::ArrayD;
use trove_formats::array::Element;
use trove_formats::{Format, Layout, PreviewOptions, Slice, TableSelect, WriteOptions};
use trove_model::name::{validate_name, validate_project};
use trove_model::record::folder_listing;
use trove_model::{DatasetPath, FileEntry, ObjectManifest, Ref};
use uuid::Uuid;

use crate::error::{Error, Result};
use crate::store::Store;
use crate::view::object_key;
use crate::write::{DatasetEdit, PutOutcome};

/// A local file or folder to import as an object.
#[derive(Debug, Clone, Default)]
pub struct FileImport {
    pub source: PathBuf,
    /// The object name. By default the file's name, or, when the file is converted, its stem with the new
    /// format's extension (`runs.csv` stored `--as parquet` becomes `runs.parquet`).
    pub name: Option<String>,
    /// Store it as this format (`parquet`, `csv`, `arrow`, `npy`, `zarr`) instead of as it is.
    pub as_format: Option<String>,
    /// How a converted object is written (chunks and compression of a Zarr array).
    pub options: WriteOptions,
    /// How the source is read when it is converted (a CSV's delimiter, header, missing cells, types).
    pub read: trove_formats::ReadOptions,
    /// Share the file's blocks copy-on-write instead of copying them, where the filesystem can (the source
    /// must be on the store's filesystem); otherwise copy.
    pub reflink: bool,
    /// The source is a file this process wrote into the store's scratch area ([`Store::scratch_folder`])
    /// for this write: it is moved into staging instead of copied, so that hashing it is the only pass over
    /// its bytes. A source elsewhere, or one being converted, is copied as usual.
    pub adopt: bool,
}

impl FileImport {
    /// Imports `source` as it is, under its own name.
    pub fn new(source: impl Into<PathBuf>) -> Result<FileImport> {
        let source = source.into();
        if source.file_name().is_none() {
            return Err(Error::Invalid(format!("{}: cannot take an object name from this path", source.display())));
        }
        Ok(FileImport { source, ..Default::default() })
    }

    /// The same import under another object name.
    pub fn named(mut self, name: impl Into<String>) -> FileImport {
        self.name = Some(name.into());
        self
    }
}

/// An object streamed into staging and hashed: ready for a commit to name it.
pub(crate) struct Staged {
    pub name: String,
    pub key: String,
    pub manifest: ObjectManifest,
    /// What reading the source had to guess.
    pub guesses: Vec<trove_formats::ReadNote>,
}

impl Staged {
    pub fn move_to(&self, id: Uuid, to: String) -> trove_model::FileMove {
        trove_model::FileMove {
            from: self.key.clone(),
            to,
            id,
            object: self.name.clone(),
            checksum: self.manifest.checksum.clone(),
        }
    }
}

/// What a stored object is, and where its bytes are.
#[derive(Debug, Clone)]
pub struct ObjectInfo {
    pub name: String,
    pub manifest: ObjectManifest,
    /// The storage key (`<project>/<path>/<name>`).
    pub key: String,
    /// The local file or folder, on a local store.
    pub path: Option<PathBuf>,
}

impl ObjectInfo {
    /// The handler for the object's format.
    pub fn format(&self) -> Result<&'static dyn Format> {
        trove_formats::by_name(&self.manifest.format)
            .ok_or_else(|| Error::Invalid(format!("object {}: unknown format {:?}", self.name, self.manifest.format)))
    }

    fn local(&self) -> Result<&Path> {
        self.path.as_deref().ok_or_else(|| {
            Error::Unsupported(format!("object {}: reading inside objects needs a store on a local disk", self.name))
        })
    }
}

/// How a `put` stores arrays that come without `--as`: npy files above this size become Zarr arrays.
pub use trove_formats::array::ZARR_THRESHOLD_BYTES;

pub(crate) fn hex(hash: blake3::Hash) -> String {
    format!("blake3:{}", hash.to_hex())
}

/// The array format an object name asks for: `.npy` (one file) or `.zarr` (chunked, compressed).
pub(crate) fn array_format_for(name: &str) -> Result<&'static dyn Format> {
    match Path::new(name).extension().and_then(|e| e.to_str()) {
        Some("npy") => Ok(trove_formats::target("npy")?),
        Some("zarr") => Ok(trove_formats::target("zarr")?),
        _ => Err(Error::Invalid(format!(
            "array object {name:?}: name it NAME.npy (one file) or NAME.zarr (chunked, compressed)"
        ))),
    }
}

/// The format a source is stored as: the one asked for, or its own (a large npy becomes Zarr).
fn target_for(from: &'static dyn Format, source: &Path, as_format: Option<&str>) -> Result<&'static dyn Format> {
    if let Some(name) = as_format {
        return Ok(trove_formats::target(name)?);
    }
    if from.name() == "npy" {
        let size = std::fs::metadata(source).map_err(Error::io(source))?.len();
        if size > ZARR_THRESHOLD_BYTES {
            return Ok(trove_formats::target("zarr")?);
        }
    }
    Ok(from)
}

/// The default object name of a converted source: its stem with the new extension.
fn converted_name(source: &Path, to: &dyn Format) -> Option<String> {
    let mut stem = source.file_stem()?.to_str()?;
    // `runs.csv.gz` becomes `runs.parquet`.
    let compressed = source.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if compressed.is_some_and(|e| trove_formats::COMPRESSED_SUFFIXES.contains(&e.as_str())) {
        stem = Path::new(stem).file_stem().and_then(|s| s.to_str()).unwrap_or(stem);
    }
    Some(format!("{stem}.{}", to.extension()))
}

impl Store {
    /// Where a format handler writes what will be staged at `key`: the staging file itself on a local store;
    /// on an object store, the same key in this machine's folder of the store, uploaded by
    /// [`Store::manifest_of_staged`] once it is written and described.
    pub(crate) fn staging_path(&self, key: &str) -> Result<PathBuf> {
        Ok(match self.storage.local_path(key) {
            Some(path) => path,
            None => self.root.join(key),
        })
    }

    /// On an object store: uploads what was written at the local staging path of `key` (a file, or a
    /// folder's files) to `key`, checking that what went up is what was described, then removes the local
    /// copy. Nothing to do on a local store.
    fn upload_staged(&self, key: &str, manifest: &ObjectManifest) -> Result<()> {
        if self.storage.local_root().is_some() {
            return Ok(());
        }
        let local = self.staging_path(key)?;
        let uploaded = (|| {
            let sent = match &manifest.files {
                None => vec![(key.to_string(), local.clone(), manifest.size, manifest.checksum.clone())],
                Some(files) => files
                    .iter()
                    .map(|(relative, entry)| {
                        (format!("{key}/{relative}"), local.join(relative), entry.size, entry.checksum.clone())
                    })
                    .collect(),
            };
            for (file_key, path, size, checksum) in sent {
                let (stored_size, hash) = self.storage.import_file(&file_key, &path, false)?;
                if stored_size != size || hex(hash) != checksum {
                    return Err(Error::Damaged {
                        what: format!("{} (changed while it was uploaded)", path.display()),
                        expected: checksum,
                        found: hex(hash),
                    });
                }
            }
            Ok(())
        })();
        remove_any(&local);
        uploaded
    }

    /// Streams files and folders into the staging area, converting where asked, hashing on the way.
    /// Nothing is visible yet; on failure nothing is left behind.
    pub(crate) fn stage(&self, files: &[FileImport]) -> Result<Vec<Staged>> {
        let mut staged = Vec::with_capacity(files.len());
        for f in files {
            match self.stage_one(f) {
                Ok(s) => staged.push(s),
                Err(e) => {
                    self.unstage(&staged);
                    return Err(e.full_disk(&self.root));
                }
            }
        }
        Ok(staged)
    }

    pub(crate) fn unstage(&self, staged: &[Staged]) {
        for s in staged {
            let _ = self.storage.delete(&s.key);
        }
    }

    fn stage_one(&self, f: &FileImport) -> Result<Staged> {
        let source = &f.source;
        let (from, head) = trove_formats::detect_with_head(source)?;
        let to = target_for(from, source, f.as_format.as_deref())?;
        let converting = to.name() != from.name();
        if f.read != trove_formats::ReadOptions::default() && !(converting && from.name() == "csv") {
            return Err(Error::Invalid(format!(
                "{}: choices of how to read a CSV apply when a CSV file is converted; this is {}{}",
                source.display(),
                from.name(),
                if converting { "" } else { ", kept as it is" }
            )));
        }
        let name = match &f.name {
            Some(n) => n.clone(),
            None if converting => converted_name(source, to).unwrap_or_default(),
            None => source.file_name().and_then(|n| n.to_str()).unwrap_or_default().to_string(),
        };
        validate_name(&name).map_err(|e| Error::ObjectName { path: source.clone(), message: e.to_string() })?;
        let key = self.staging_key();
        let result = if f.adopt && !converting && self.adoptable(source) {
            self.stage_adopted(from, source, &head, &key)
        } else if converting {
            self.stage_converted(from, source, &f.read, to, &key, &f.options)
        } else {
            self.stage_as_is(from, source, &head, &key, f.reflink)
        };
        // What the stored summary (as is) or the conversion read into the file, said where it was guessed.
        let guesses = match from.as_table() {
            Some(table) if result.is_ok() => table.guesses(source, &f.read).unwrap_or_default(),
            _ => Vec::new(),
        };
        match result {
            Ok(manifest) => Ok(Staged { name, key, manifest, guesses }),
            Err(e) => {
                let _ = self.storage.delete(&key);
                Err(e)
            }
        }
    }

    /// A fresh, empty folder in the staging area for a front end to write a write's files into before it
    /// imports them with [`FileImport::adopt`]. Named like every staging key, so that `gc` leaves it alone
    /// while this process lives; the caller removes it afterwards.
    pub fn scratch_folder(&self) -> Result<PathBuf> {
        let path = self.staging_path(&self.staging_key())?;
        std::fs::create_dir_all(&path).map_err(Error::io(&path))?;
        Ok(path)
    }

    /// Whether `source` is a regular file inside this store's staging area, which an import may move.
    fn adoptable(&self, source: &Path) -> bool {
        let Ok(staging) = self.staging_path(crate::store::STAGING) else { return false };
        let inside = |p: &Path| std::fs::canonicalize(p).ok();
        match (inside(source), inside(&staging)) {
            (Some(file), Some(area)) => file.starts_with(&area) && file.is_file(),
            _ => false,
        }
    }

    /// Moves a file written in the scratch area to a staging key and hashes it there.
    fn stage_adopted(
        &self,
        format: &'static dyn Format,
        source: &Path,
        head: &[u8],
        key: &str,
    ) -> Result<ObjectManifest> {
        // Described where it was written, under its own name (a generic file's kind is told by its name too).
        let (size, hash) = trove_storage::storage::hash_file(source).map_err(Error::io(source))?;
        if self.storage.durable() {
            std::fs::File::open(source).and_then(|f| f.sync_all()).map_err(Error::io(source))?;
        }
        let manifest = file_manifest(format, source, head, size, hex(hash))?;
        let dest = self.staging_path(key)?;
        std::fs::rename(source, &dest).map_err(Error::io(source))?;
        self.upload_staged(key, &manifest)?;
        Ok(manifest)
    }

    /// Copies a file or folder into staging unchanged, hashing it in the same pass.
    fn stage_as_is(
        &self,
        format: &'static dyn Format,
        source: &Path,
        head: &[u8],
        key: &str,
        reflink: bool,
    ) -> Result<ObjectManifest> {
        if format.layout() == Layout::Folder {
            let mut files = BTreeMap::new();
            for file in trove_formats::folder::files(source)? {
                let (size, hash) =
                    self.storage.import_file(&format!("{key}/{}", file.relative), &file.path, reflink)?;
                files.insert(file.relative, FileEntry { size, checksum: hex(hash) });
            }
            self.storage.ensure_folder(key)?;
            return self.folder_manifest(format, source, files);
        }
        let (size, hash) = self.storage.import_file(key, source, reflink)?;
        file_manifest(format, source, head, size, hex(hash))
    }

    /// Writes a source in another format into staging, then hashes what was written.
    fn stage_converted(
        &self,
        from: &'static dyn Format,
        source: &Path,
        read: &trove_formats::ReadOptions,
        to: &'static dyn Format,
        key: &str,
        options: &WriteOptions,
    ) -> Result<ObjectManifest> {
        let dest = self.staging_path(key)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
        }
        trove_formats::convert_with(from, source, read, to, &dest, options)?;
        self.manifest_of_staged(to, key)
    }

    /// Hashes and summarises what a format handler wrote at a staging key, and makes it durable.
    pub(crate) fn manifest_of_staged(&self, format: &'static dyn Format, key: &str) -> Result<ObjectManifest> {
        let manifest = self.describe_staged(format, key)?;
        self.upload_staged(key, &manifest)?;
        Ok(manifest)
    }

    fn describe_staged(&self, format: &'static dyn Format, key: &str) -> Result<ObjectManifest> {
        let dest = self.staging_path(key)?;
        if format.layout() == Layout::Folder {
            let mut files = BTreeMap::new();
            for file in trove_formats::folder::files(&dest)? {
                let (size, hash) = trove_storage::storage::hash_file(&file.path).map_err(Error::io(&file.path))?;
                files.insert(file.relative, FileEntry { size, checksum: hex(hash) });
            }
            if self.storage.durable() {
                trove_storage::storage::sync_tree(&dest).map_err(Error::io(&dest))?;
            }
            return self.folder_manifest(format, &dest, files);
        }
        let (size, hash) = trove_storage::storage::hash_file(&dest).map_err(Error::io(&dest))?;
        if self.storage.durable() {
            std::fs::File::open(&dest).and_then(|f| f.sync_all()).map_err(Error::io(&dest))?;
        }
        let summary = format.summarise(&dest)?;
        Ok(ObjectManifest {
            format: format.name().to_string(),
            size,
            checksum: hex(hash),
            media_type: Some(format.media_type().to_string()),
            summary: (!summary.is_null()).then_some(summary),
            files: None,
            edited: None,
        })
    }

    /// The manifest of a folder object whose files were hashed (`files`): its format's summary of the folder
    /// at `stored`, and the checksum of the listing.
    pub(crate) fn folder_manifest(
        &self,
        format: &'static dyn Format,
        stored: &Path,
        files: BTreeMap<String, FileEntry>,
    ) -> Result<ObjectManifest> {
        let summary = format.summarise(stored)?;
        Ok(ObjectManifest {
            format: format.name().to_string(),
            size: files.values().map(|f| f.size).sum(),
            checksum: hex(blake3::hash(folder_listing(&files).as_bytes())),
            media_type: Some(format.media_type().to_string()),
            summary: (!summary.is_null()).then_some(summary),
            files: Some(files),
            edited: None,
        })
    }

    /// Stages what `write` produces at a fresh staging key, and commits it as object `name` of the dataset
    /// at `project/path` (created if needed). One commit.
    fn put_written(
        &self,
        project: &str,
        path: &DatasetPath,
        name: &str,
        format: &'static dyn Format,
        write: impl FnOnce(&Path) -> Result<()>,
    ) -> Result<PutOutcome> {
        validate_project(project)?;
        validate_name(name)?;
        let key = self.staging_key();
        let staged = (|| {
            let dest = self.staging_path(&key)?;
            if let Some(parent) = dest.parent() {
                std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
            }
            write(&dest)?;
            self.manifest_of_staged(format, &key)
        })();
        let manifest = match staged {
            Ok(m) => m,
            Err(e) => {
                let _ = self.storage.delete(&key);
                return Err(e);
            }
        };
        self.put_staged(
            project,
            path,
            &DatasetEdit::default(),
            vec![Staged { name: name.to_string(), key, manifest, guesses: Vec::new() }],
        )
    }

    /// Writes a table (a stream of record batches, so it may be larger than memory) as a Parquet object.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use arrow::array::{Float64Array, RecordBatch};
    /// use arrow::datatypes::{DataType, Field, Schema};
    /// use arrow::record_batch::RecordBatchIterator;
    ///
    /// let dir = tempfile::tempdir().unwrap();
    /// let store = trove::Store::init(dir.path()).unwrap();
    /// let schema = Arc::new(Schema::new(vec![Field::new("v", DataType::Float64, false)]));
    /// let batch = RecordBatch::try_new(schema.clone(), vec![Arc::new(Float64Array::from(vec![1.0, 2.5]))]).unwrap();
    /// let mut batches = RecordBatchIterator::new(vec![Ok(batch)], schema);
    /// let path = trove::model::DatasetPath::parse("runs/1").unwrap();
    /// store.put_table("lab", &path, "v.parquet", &mut batches).unwrap();
    /// let r = trove::model::Ref::parse("lab/runs/1:v.parquet").unwrap();
    /// let rows: usize = store.read_table(&r, &Default::default()).unwrap().map(|b| b.unwrap().num_rows()).sum();
    /// assert_eq!(rows, 2);
    /// ```
    pub fn put_table(
        &self,
        project: &str,
        path: &DatasetPath,
        name: &str,
        batches: &mut dyn RecordBatchReader,
    ) -> Result<PutOutcome> {
        let parquet = trove_formats::target("parquet")?;
        self.put_written(project, path, name, parquet, |dest| Ok(trove_formats::table::write_parquet(batches, dest)?))
    }

    /// Writes an n-d array as an object: as `.npy` when `name` ends in `.npy`, as a chunked, compressed Zarr
    /// v3 array when it ends in `.zarr` (with `options` choosing chunks and compression).
    pub fn put_array<T: Element>(
        &self,
        project: &str,
        path: &DatasetPath,
        name: &str,
        array: &ArrayD<T>,
        options: &WriteOptions,
    ) -> Result<PutOutcome> {
        let format = array_format_for(name)?;
        self.put_written(project, path, name, format, |dest| {
            Ok(trove_formats::array::write_array(format, array, dest, options)?)
        })
    }

    /// What an object is and where it lives.
    pub fn object_info(&self, r: &Ref) -> Result<ObjectInfo> {
        let name = r
            .object
            .clone()
            .ok_or_else(|| Error::Mismatch(format!("{r} names a dataset, not an object (PROJECT/PATH:OBJECT)")))?;
        let state = self.dataset_for(r)?;
        let manifest =
            state.objects.get(&name).cloned().ok_or_else(|| Error::NotFound { what: format!("object {r}") })?;
        let path = r.path.as_ref().ok_or_else(|| Error::Invalid(format!("{r}: no dataset path")))?;
        let key = object_key(&r.project, path, &name);
        Ok(ObjectInfo { path: self.storage.local_path(&key), name, manifest, key })
    }

    /// Runs a read of an object's stored bytes so that it sees one version whole: a folder object replaced
    /// while it is read (its folder is swapped in one step, see `Storage::rename`) is read again, once the
    /// catalog has caught up.
    fn read_stable<T>(&self, r: &Ref, read: impl Fn(&ObjectInfo, &Path) -> Result<T>) -> Result<T> {
        self.read_stable_part(r, None, read)
    }

    /// [`Store::read_stable`] for a read of part of an array (`slice`): on an object store, only the files
    /// of a Zarr array that hold the chunks the slice touches are fetched.
    fn read_stable_part<T>(
        &self,
        r: &Ref,
        slice: Option<&Slice>,
        read: impl Fn(&ObjectInfo, &Path) -> Result<T>,
    ) -> Result<T> {
        if self.storage.local_root().is_none() {
            let info = self.object_info(r)?;
            let scratch = self.scratch_dir()?;
            let result =
                self.fetch_verified(&info, &scratch.join(&info.name), slice).and_then(|path| read(&info, &path));
            remove_any(&scratch);
            return result;
        }
        let identity = |p: &Path| {
            use std::os::unix::fs::MetadataExt;
            std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
        };
        let mut last = None;
        for _ in 0..3 {
            let info = self.object_info(r)?;
            let path = info.local()?.to_path_buf();
            let before = identity(&path);
            let result = read(&info, &path);
            if before.is_some() && identity(&path) == before && (result.is_ok() || !info.manifest.is_folder()) {
                return result;
            }
            last = Some(result);
            self.refresh()?;
        }
        last.unwrap_or_else(|| Err(Error::NotFound { what: format!("object {r}") }))
    }

    /// Streams a table object (Parquet, CSV or Arrow): all or some columns, all rows or a range.
    pub fn read_table(&self, r: &Ref, select: &TableSelect) -> Result<Box<dyn RecordBatchReader + Send>> {
        if let Some((source, name)) = self.ranged_parquet(r)? {
            return Ok(trove_formats::parquet::read_ranged(source, &name, select)?);
        }
        self.read_stable(r, |info, path| Ok(trove_formats::table::read_table(info.format()?, path, select)?))
    }

    /// A Parquet object in an object store, as a source read by byte ranges (a read then fetches the footer
    /// and the column chunks it needs, not the whole object), with its URL for messages.
    fn ranged_parquet(&self, r: &Ref) -> Result<Option<(Arc<dyn trove_formats::RangeRead>, PathBuf)>> {
        if self.storage.local_root().is_some() {
            return Ok(None);
        }
        let info = self.object_info(r)?;
        if info.manifest.format != "parquet" || info.manifest.is_folder() {
            return Ok(None);
        }
        let name = PathBuf::from(self.storage.locate(&info.key));
        let source = StoredRanges { storage: self.storage.clone(), key: info.key, size: info.manifest.size };
        Ok(Some((Arc::new(source), name)))
    }

    /// Bytes this handle has read from an object store so far (0 for a store in a folder): what reads cost
    /// in transfer.
    pub fn bytes_fetched(&self) -> u64 {
        self.storage.bytes_fetched()
    }

    /// Reads an array object (npy or Zarr), or a slice of it, touching only the chunks the slice needs.
    pub fn read_array<T: Element>(&self, r: &Ref, slice: Option<&Slice>) -> Result<ArrayD<T>> {
        self.read_stable_part(r, slice, |info, path| Ok(trove_formats::array::read_array(info.format()?, path, slice)?))
    }

    /// Writes part of an array object (`trove get REF:OBJ --slice S`) to `dest` as an `.npy` file, reading only
    /// the chunks the slice touches. `dest` appears complete or not at all.
    pub fn export_slice(&self, r: &Ref, slice: &Slice, dest: &Path) -> Result<()> {
        let part = part_path(dest);
        let result = self.read_stable_part(r, Some(slice), |info, path| {
            let format = info.format()?;
            let array = format.as_array().ok_or_else(|| {
                Error::Mismatch(format!("{r} is {}, not an array: slicing needs an npy or zarr object", format.name()))
            })?;
            remove_any(&part);
            // An npy slice is cut from the file's bytes: same dtype and byte order, any fixed-size numpy type.
            if format.name() == "npy" {
                return Ok(trove_formats::npy::write_slice(path, slice, &part)?);
            }
            Ok(trove_formats::npy::write_selection(array, path, slice, &part)?)
        });
        let result = result.and_then(|()| {
            std::fs::File::open(&part).and_then(|f| f.sync_all()).map_err(Error::io(&part))?;
            std::fs::rename(&part, dest).map_err(Error::io(dest))
        });
        if result.is_err() {
            remove_any(&part);
        }
        result
    }

    /// Writes a readable preview of an object (`trove cat`).
    pub fn preview(&self, r: &Ref, options: &PreviewOptions, out: &mut dyn Write) -> Result<()> {
        if let Some((source, name)) = self.ranged_parquet(r)? {
            return Ok(trove_formats::parquet::preview_ranged(source, &name, options, out)?);
        }
        // Rendered into memory first, so that a retried read never prints half a preview.
        let text = self.read_stable_part(r, options.slice.as_ref(), |info, path| {
            let mut text = Vec::new();
            info.format()?.preview(path, options, &mut text)?;
            Ok(text)
        })?;
        out.write_all(&text).map_err(Error::io("<output>"))
    }

    /// Exports an object to `dest` converted to another format (`csv`, `parquet`, `arrow`, `npy`, `zarr`).
    /// The stored bytes are verified against their checksum first; `dest` appears complete or not at all.
    pub fn export_converted(&self, r: &Ref, dest: &Path, to: &str, options: &WriteOptions) -> Result<()> {
        if crate::export::is_special(dest) {
            // A device or pipe: convert beside the store, then write the result into it.
            let scratch = self.scratch_dir()?;
            let file = scratch.join(format!("out.{to}"));
            self.export_converted(r, &file, to, options)?;
            let copied = std::fs::File::open(&file).and_then(|mut from| {
                let mut into = std::fs::OpenOptions::new().write(true).open(dest)?;
                std::io::copy(&mut from, &mut into)
            });
            remove_any(&scratch);
            copied.map_err(Error::io(dest))?;
            return Ok(());
        }
        let to = trove_formats::target(to)?;
        let part = part_path(dest);
        let result = self.read_stable(r, |info, path| {
            let from = info.format()?;
            verify_local(info, path, r)?;
            remove_any(&part);
            trove_formats::convert(from, path, to, &part, options)?;
            Ok(())
        });
        let result = result.and_then(|()| {
            if to.layout() == Layout::Folder {
                trove_storage::storage::sync_tree(&part).map_err(Error::io(&part))?;
            } else {
                std::fs::File::open(&part).and_then(|f| f.sync_all()).map_err(Error::io(&part))?;
            }
            remove_any(dest);
            std::fs::rename(&part, dest).map_err(Error::io(dest))
        });
        if result.is_err() {
            remove_any(&part);
        }
        result
    }

    /// Downloads an object (a file, or a folder object's files) to `dest`, each file checked against its
    /// manifest on the way; returns `dest`.
    fn fetch_verified(&self, info: &ObjectInfo, dest: &Path, slice: Option<&Slice>) -> Result<PathBuf> {
        let file = |relative: &String, entry: &FileEntry| {
            let what = format!("{} ({relative})", info.name);
            (format!("{}/{relative}", info.key), dest.join(relative), entry.checksum.clone(), what)
        };
        let wanted = match &info.manifest.files {
            None => vec![(info.key.clone(), dest.to_path_buf(), info.manifest.checksum.clone(), info.name.clone())],
            // A Zarr array: its metadata first, then only the chunk files the read touches.
            Some(files) if info.manifest.format == "zarr" => {
                let is_metadata = |relative: &String| trove_formats::zarr::METADATA_FILES.contains(&relative.as_str());
                let metadata: Vec<_> = files.iter().filter(|(r, _)| is_metadata(r)).map(|(r, e)| file(r, e)).collect();
                self.fetch_files(&metadata, dest)?;
                let needed = trove_formats::zarr::chunk_files(dest, slice)?;
                let chunks: Vec<_> = needed
                    .iter()
                    .filter_map(|relative| files.get_key_value(relative))
                    .map(|(r, e)| file(r, e))
                    .collect();
                self.fetch_files(&chunks, dest)?;
                return Ok(dest.to_path_buf());
            }
            Some(files) => files.iter().map(|(r, e)| file(r, e)).collect(),
        };
        self.fetch_files(&wanted, dest)?;
        Ok(dest.to_path_buf())
    }

    /// Downloads files (key, local path, checksum, what to call it in an error), each checked on the way.
    fn fetch_files(&self, wanted: &[(String, PathBuf, String, String)], dest: &Path) -> Result<()> {
        std::fs::create_dir_all(dest.parent().unwrap_or(dest)).map_err(Error::io(dest))?;
        for (key, path, checksum, what) in wanted {
            if let Some(parent) = path.parent() {
                std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
            }
            let mut file = std::fs::File::create(path).map_err(Error::io(path))?;
            let (_, hash) = self.storage.get_stream(key, &mut file)?;
            if hex(hash) != *checksum {
                return Err(Error::Damaged { what: what.clone(), expected: checksum.clone(), found: hex(hash) });
            }
        }
        Ok(())
    }

    /// A fresh folder under `.trove/staging` for scratch work (the caller removes it).
    fn scratch_dir(&self) -> Result<PathBuf> {
        let dir = self.staging_path(&self.staging_key())?;
        std::fs::create_dir_all(&dir).map_err(Error::io(&dir))?;
        Ok(dir)
    }

    /// Exports a folder object (a Zarr array, a folder) to the folder `dest`, each file verified.
    pub(crate) fn export_folder(&self, r: &Ref, dest: &Path) -> Result<u64> {
        if crate::export::is_special(dest) {
            return Err(Error::Invalid(format!(
                "{r} is stored as a folder: export it to a folder, not to {}",
                dest.display()
            )));
        }
        let part = part_path(dest);
        let result = self.read_stable(r, |info, path| {
            remove_any(&part);
            let files = info.manifest.files.as_ref().ok_or_else(|| Error::Invalid(format!("{r} is not a folder")))?;
            let mut total = 0;
            std::fs::create_dir_all(&part).map_err(Error::io(&part))?;
            for (relative, entry) in files {
                let from = path.join(relative);
                let to = part.join(relative);
                if let Some(parent) = to.parent() {
                    std::fs::create_dir_all(parent).map_err(Error::io(parent))?;
                }
                std::fs::copy(&from, &to).map_err(Error::io(&from))?;
                let (size, hash) = trove_storage::storage::hash_file(&to).map_err(Error::io(&to))?;
                if hex(hash) != entry.checksum {
                    return Err(Error::Damaged {
                        what: format!("{r} ({relative})"),
                        expected: entry.checksum.clone(),
                        found: hex(hash),
                    });
                }
                total += size;
            }
            Ok(total)
        });
        let result = result.and_then(|total| {
            trove_storage::storage::sync_tree(&part).map_err(Error::io(&part))?;
            remove_any(dest);
            std::fs::rename(&part, dest).map_err(Error::io(dest))?;
            Ok(total)
        });
        if result.is_err() {
            remove_any(&part);
        }
        result
    }
}

/// An object of a store read by byte ranges.
struct StoredRanges {
    storage: Arc<trove_storage::Storage>,
    key: String,
    size: u64,
}

impl trove_formats::RangeRead for StoredRanges {
    fn size(&self) -> u64 {
        self.size
    }

    fn read_range(&self, range: std::ops::Range<u64>) -> std::io::Result<bytes::Bytes> {
        let end = range.end.min(self.size);
        self.storage.get_range(&self.key, range.start.min(end)..end).map_err(std::io::Error::other)
    }
}

/// The manifest of a file object (detected as `format` from `head`, its first bytes) whose bytes, at `path`,
/// were hashed: a plain file's format word and media type come from its content, and the format's summary
/// is read from it. Shared by `put` (the source) and `sync --scan` (a file found in place).
pub(crate) fn file_manifest(
    format: &'static dyn Format,
    path: &Path,
    head: &[u8],
    size: u64,
    checksum: String,
) -> Result<ObjectManifest> {
    let (word, media_type) = if format.name() == "file" {
        trove_formats::media::sniff(path, head)
    } else {
        (format.name(), format.media_type())
    };
    let summary = format.summarise(path)?;
    Ok(ObjectManifest {
        format: word.to_string(),
        size,
        checksum,
        media_type: Some(media_type.to_string()),
        summary: (!summary.is_null()).then_some(summary),
        files: None,
        edited: None,
    })
}

/// Checks a stored object's bytes (every file of a folder) against its manifest.
fn verify_local(info: &ObjectInfo, path: &Path, r: &Ref) -> Result<()> {
    let damaged =
        |what: String, expected: &str, found: String| Error::Damaged { what, expected: expected.into(), found };
    match &info.manifest.files {
        None => {
            let (_, hash) = trove_storage::storage::hash_file(path).map_err(Error::io(path))?;
            if hex(hash) != info.manifest.checksum {
                return Err(damaged(r.to_string(), &info.manifest.checksum, hex(hash)));
            }
        }
        Some(files) => {
            for (relative, entry) in files {
                let file = path.join(relative);
                let (_, hash) = trove_storage::storage::hash_file(&file).map_err(Error::io(&file))?;
                if hex(hash) != entry.checksum {
                    return Err(damaged(format!("{r} ({relative})"), &entry.checksum, hex(hash)));
                }
            }
        }
    }
    Ok(())
}

/// Where an export is written before it is renamed into place.
/// Where an export is written before it is renamed to `dest`: beside it, under a short name of its own (so
/// that a destination of maximal length still has room for it, and two exports never share one).
pub(crate) fn part_path(dest: &Path) -> PathBuf {
    dest.with_file_name(format!(".trove-part-{}", uuid::Uuid::now_v7().simple()))
}

fn remove_any(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => {
            let _ = std::fs::remove_dir_all(path);
        }
        Ok(_) => {
            let _ = std::fs::remove_file(path);
        }
        Err(_) => {}
    }
}
