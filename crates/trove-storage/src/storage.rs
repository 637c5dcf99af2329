//! One storage abstraction over `object_store`: every byte trove keeps goes through [`Storage`].
//!
//! Keys are `/`-separated names relative to the store root (`lab/runs/1/velocity.parquet`). The calls are
//! blocking: the async `object_store` API runs on a small runtime owned by the `Storage`, so the layers
//! above stay synchronous and simple. Nothing here relies on POSIX-only tricks: writes are whole objects
//! (single PUT, or a multipart upload completed at once), conditional creates give unique names.
//!
//! On a local root, `Storage` also makes writes durable (fsync of the file and its folder), which
//! `object_store` itself does not do.

use std::io::{Read, Write};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use futures::StreamExt;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// Size of the pieces a streamed write or read moves at a time.
pub const CHUNK: usize = 8 * 1024 * 1024;

/// What went wrong with a storage call. The key (or local path) involved is always named.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{key}: not found in the store")]
    NotFound { key: String },
    #[error("{key}: already exists in the store")]
    AlreadyExists { key: String },
    #[error("{key}: {source}")]
    Backend { key: String, source: object_store::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("cannot start the storage runtime: {0}")]
    Runtime(std::io::Error),
}

impl StorageError {
    fn backend(key: &str, source: object_store::Error) -> StorageError {
        match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound { key: key.to_string() },
            object_store::Error::AlreadyExists { .. } => StorageError::AlreadyExists { key: key.to_string() },
            source => StorageError::Backend { key: key.to_string(), source },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }
}

pub type Result<T, E = StorageError> = std::result::Result<T, E>;

/// One listed object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub key: String,
    pub size: u64,
    /// Last modification, microseconds since the epoch.
    pub modified: i64,
}

/// A store root: a local directory or an in-memory store (object stores come through the same type).
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    runtime: tokio::runtime::Runtime,
    local_root: Option<PathBuf>,
    durable: bool,
    url: String,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("url", &self.url).field("durable", &self.durable).finish()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().build().map_err(StorageError::Runtime)
}

/// The object_store path of a key. Each name is one path part; characters that object stores advise
/// against (`{ } ^ % ~ [ ] #` and a few more) are percent-encoded by `object_store`.
pub fn path_of(key: &str) -> Path {
    Path::from_iter(key.split('/').filter(|p| !p.is_empty()))
}

/// The key of an object_store path (parts decoded).
pub fn key_of(path: &Path) -> String {
    path.parts()
        .map(|p| percent_encoding::percent_decode_str(p.as_ref()).decode_utf8_lossy().into_owned())
        .collect::<Vec<_>>()
        .join("/")
}

impl Storage {
    /// A store rooted at a local directory, which must exist.
    pub fn local(root: &FsPath, durable: bool) -> Result<Storage> {
        let root =
            std::fs::canonicalize(root).map_err(|source| StorageError::Io { path: root.to_path_buf(), source })?;
        let fs = LocalFileSystem::new_with_prefix(&root)
            .map_err(|source| StorageError::Backend { key: root.display().to_string(), source })?
            .with_automatic_cleanup(true);
        Ok(Storage {
            inner: Arc::new(fs),
            runtime: runtime()?,
            url: format!("file://{}", root.display()),
            local_root: Some(root),
            durable,
        })
    }

    /// A store that lives in memory (for tests and throwaway work).
    pub fn memory() -> Result<Storage> {
        Ok(Storage {
            inner: Arc::new(InMemory::new()),
            runtime: runtime()?,
            local_root: None,
            durable: false,
            url: "memory://".into(),
        })
    }

    /// The store's URL (`file:///abs/path` or `memory://`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory at the root, when the store is on a local disk.
    pub fn local_root(&self) -> Option<&FsPath> {
        self.local_root.as_deref()
    }

    /// Whether writes are flushed to stable storage before they return.
    pub fn durable(&self) -> bool {
        self.durable
    }

    /// Where a key lives: an absolute file path on a local store, else `URL/key`.
    pub fn locate(&self, key: &str) -> String {
        match self.local_path(key) {
            Some(p) => p.display().to_string(),
            None => format!("{}/{}", self.url.trim_end_matches('/'), key),
        }
    }

    /// The local file of a key, on a local store.
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        let root = self.local_root.as_ref()?;
        let mut p = root.clone();
        for part in path_of(key).parts() {
            p.push(part.as_ref());
        }
        Some(p)
    }

    /// Writes a whole object. With `create_only`, fails with `AlreadyExists` instead of replacing.
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>, create_only: bool) -> Result<()> {
        let path = path_of(key);
        let payload = PutPayload::from(bytes.into());
        let mode = if create_only { PutMode::Create } else { PutMode::Overwrite };
        let opts = PutOptions { mode, ..Default::default() };
        self.runtime.block_on(self.inner.put_opts(&path, payload, opts)).map_err(|e| StorageError::backend(key, e))?;
        self.make_durable(key)
    }

    /// Streams `reader` into a new object at `key`, hashing what passes through with BLAKE3.
    /// The object appears whole when the upload completes, or not at all.
    pub fn put_stream(&self, key: &str, reader: &mut dyn Read) -> Result<(u64, blake3::Hash)> {
        let path = path_of(key);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let result: Result<()> = self.runtime.block_on(async {
            let mut upload = self.inner.put_multipart(&path).await.map_err(|e| StorageError::backend(key, e))?;
            let mut pending: Option<object_store::UploadPart> = None;
            let outcome: Result<()> = async {
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let n =
                        read_full(reader, &mut buf).map_err(|source| StorageError::Io { path: key.into(), source })?;
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    hasher.update(&buf);
                    size += n as u64;
                    // Keep one part in flight while the next one is read and hashed.
                    if let Some(part) = pending.take() {
                        part.await.map_err(|e| StorageError::backend(key, e))?;
                    }
                    pending = Some(upload.put_part(PutPayload::from(buf)));
                    if n < CHUNK {
                        break;
                    }
                }
                if let Some(part) = pending.take() {
                    part.await.map_err(|e| StorageError::backend(key, e))?;
                }
                upload.complete().await.map_err(|e| StorageError::backend(key, e))?;
                Ok(())
            }
            .await;
            if outcome.is_err() {
                let _ = upload.abort().await;
            }
            outcome
        });
        result?;
        self.make_durable(key)?;
        Ok((size, hasher.finalize()))
    }

    /// Stores the local file `source` at `key` and returns its size and BLAKE3 hash. On a local root the
    /// kernel copies the bytes (or, with `reflink`, shares them copy-on-write where the filesystem can)
    /// while a second thread hashes the source, so hashing costs no extra time; a source that changes
    /// meanwhile is refused. Elsewhere the file is streamed and hashed in one pass.
    pub fn import_file(&self, key: &str, source: &FsPath, reflink: bool) -> Result<(u64, blake3::Hash)> {
        let src_io = |e| StorageError::Io { path: source.to_path_buf(), source: e };
        let Some(dest) = self.local_path(key) else {
            let mut file = std::fs::File::open(source).map_err(src_io)?;
            return self.put_stream(key, &mut file);
        };
        let before = std::fs::metadata(source).map_err(src_io)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(|e| StorageError::Io { path: parent.to_path_buf(), source: e })?;
        }
        let (copied, hashed) = std::thread::scope(|scope| {
            let hashing = scope.spawn(|| hash_file(source));
            let copied = if reflink {
                reflink_copy::reflink_or_copy(source, &dest).map(|_| ())
            } else {
                std::fs::copy(source, &dest).map(|_| ())
            };
            let hashed = hashing.join().unwrap_or_else(|_| Err(std::io::Error::other("the hashing thread panicked")));
            (copied, hashed)
        });
        let outcome = copied.and(hashed).map_err(src_io).and_then(|(size, hash)| {
            let after = std::fs::metadata(source).map_err(src_io)?;
            if after.len() != before.len() || after.modified().ok() != before.modified().ok() || after.len() != size {
                return Err(StorageError::Io {
                    path: source.to_path_buf(),
                    source: std::io::Error::other("the file changed while it was being stored: nothing was stored"),
                });
            }
            Ok((size, hash))
        });
        match outcome {
            Ok(found) => {
                self.make_durable(key)?;
                Ok(found)
            }
            Err(e) => {
                let _ = std::fs::remove_file(&dest);
                Err(e)
            }
        }
    }

    /// Reads a whole object into memory.
    pub fn get(&self, key: &str) -> Result<Bytes> {
        let path = path_of(key);
        self.runtime.block_on(async {
            let got = self.inner.get(&path).await.map_err(|e| StorageError::backend(key, e))?;
            got.bytes().await.map_err(|e| StorageError::backend(key, e))
        })
    }

    /// Streams an object into `writer`, hashing it on the way; returns its size and BLAKE3 hash.
    pub fn get_stream(&self, key: &str, writer: &mut dyn Write) -> Result<(u64, blake3::Hash)> {
        let path = path_of(key);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let got = self.runtime.block_on(self.inner.get(&path)).map_err(|e| StorageError::backend(key, e))?;
        let mut pass = |chunk: &[u8]| -> Result<()> {
            hasher.update(chunk);
            size += chunk.len() as u64;
            writer.write_all(chunk).map_err(|source| StorageError::Io { path: key.into(), source })
        };
        match got.payload {
            // A local file is read here in large pieces: object_store's own stream of a file moves 8 KiB at
            // a time through the blocking pool, about ten times slower.
            GetResultPayload::File(mut file, local) => {
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = read_full(&mut file, &mut buf)
                        .map_err(|source| StorageError::Io { path: local.clone(), source })?;
                    if n == 0 {
                        break;
                    }
                    pass(&buf[..n])?;
                }
            }
            GetResultPayload::Stream(mut stream) => self.runtime.block_on(async {
                while let Some(chunk) = stream.next().await {
                    pass(&chunk.map_err(|e| StorageError::backend(key, e))?)?;
                }
                Ok::<_, StorageError>(())
            })?,
        }
        Ok((size, hasher.finalize()))
    }

    /// Size and modification time of an object, or `None` when it is absent.
    pub fn head(&self, key: &str) -> Result<Option<Entry>> {
        match self.runtime.block_on(self.inner.head(&path_of(key))) {
            Ok(meta) => Ok(Some(Entry {
                key: key.to_string(),
                size: meta.size,
                modified: meta.last_modified.timestamp_micros(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(StorageError::backend(key, e)),
        }
    }

    /// Every object under a prefix (recursively), sorted by key.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let path = path_of(prefix);
        let mut out = self.runtime.block_on(async {
            let mut stream = self.inner.list(Some(&path));
            let mut out = Vec::new();
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| StorageError::backend(prefix, e))?;
                out.push(Entry {
                    key: key_of(&meta.location),
                    size: meta.size,
                    modified: meta.last_modified.timestamp_micros(),
                });
            }
            Ok::<_, StorageError>(out)
        })?;
        out.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(out)
    }

    /// Whether something (a file, or on a local root a folder) is stored at `key`.
    pub fn exists(&self, key: &str) -> Result<bool> {
        if let Some(path) = self.local_path(key) {
            return match std::fs::symlink_metadata(&path) {
                Ok(_) => Ok(true),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
                Err(source) => Err(StorageError::Io { path, source }),
            };
        }
        Ok(self.head(key)?.is_some())
    }

    /// Deletes an object; an absent object is not an error. On a local root, a folder at `key` (a folder
    /// object, a Zarr array) is deleted with everything in it.
    pub fn delete(&self, key: &str) -> Result<()> {
        if let Some(path) = self.local_path(key)
            && std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir())
        {
            std::fs::remove_dir_all(&path).map_err(|source| StorageError::Io { path: path.clone(), source })?;
            self.prune_empty_parents(&path);
            return Ok(());
        }
        match self.runtime.block_on(self.inner.delete(&path_of(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::backend(key, e)),
        }
    }

    /// Moves an object (on a local root, a file or a whole folder), replacing whatever is at `to` atomically:
    /// a reader finds the old object or the new one at `to`, never neither and never a mixture.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (Some(from_path), Some(to_path)) = (self.local_path(from), self.local_path(to)) else {
            return self
                .runtime
                .block_on(self.inner.rename(&path_of(from), &path_of(to)))
                .map_err(|e| StorageError::backend(from, e));
        };
        let io = |path: &FsPath| {
            let path = path.to_path_buf();
            move |source| StorageError::Io { path, source }
        };
        if let Some(parent) = to_path.parent() {
            std::fs::create_dir_all(parent).map_err(io(parent))?;
        }
        let replaced_folder = match std::fs::rename(&from_path, &to_path) {
            Ok(()) => false,
            // A folder cannot be renamed over a non-empty folder, nor a file over a folder (and the
            // other way round): swap the two in one step, then delete the old one, now at `from`.
            Err(e) if std::fs::symlink_metadata(&to_path).is_ok() && std::fs::symlink_metadata(&from_path).is_ok() => {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    &from_path,
                    rustix::fs::CWD,
                    &to_path,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .map_err(|errno| StorageError::Io {
                    path: to_path.clone(),
                    source: std::io::Error::new(e.kind(), format!("{e}; swapping in place failed too: {errno}")),
                })?;
                true
            }
            Err(e) => return Err(StorageError::Io { path: from_path, source: e }),
        };
        self.make_durable(to)?;
        self.sync_parent(&from_path)?;
        if replaced_folder {
            let removed = if std::fs::symlink_metadata(&from_path).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(&from_path)
            } else {
                std::fs::remove_file(&from_path)
            };
            removed.map_err(io(&from_path))?;
        }
        self.prune_empty_parents(&from_path);
        Ok(())
    }

    /// Removes the folders a move left empty, up to (not including) the root, as a delete does.
    fn prune_empty_parents(&self, path: &FsPath) {
        let Some(root) = &self.local_root else { return };
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root.as_path() || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Makes the folder for a key prefix exist (local stores only; object stores have no folders).
    pub fn ensure_folder(&self, prefix: &str) -> Result<()> {
        if let Some(p) = self.local_path(prefix) {
            std::fs::create_dir_all(&p).map_err(|source| StorageError::Io { path: p, source })?;
        }
        Ok(())
    }

    /// Copies an object (on a local root, a file or a whole folder), replacing any object at `to` atomically.
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        if let (Some(from_path), Some(_)) = (self.local_path(from), self.local_path(to))
            && std::fs::symlink_metadata(&from_path).is_ok_and(|m| m.is_dir())
        {
            // A folder is copied beside its destination first, so that it appears whole.
            let part = format!("{to}.trove-part-{}", uuid::Uuid::now_v7());
            let part_path = self.local_path(&part).unwrap_or_default();
            let copied = copy_tree(&from_path, &part_path).and_then(|()| {
                if self.durable {
                    sync_tree(&part_path)?;
                }
                Ok(())
            });
            if let Err(source) = copied {
                let _ = std::fs::remove_dir_all(&part_path);
                return Err(StorageError::Io { path: part_path, source });
            }
            return self.rename(&part, to);
        }
        self.runtime
            .block_on(self.inner.copy(&path_of(from), &path_of(to)))
            .map_err(|e| StorageError::backend(from, e))?;
        self.make_durable(to)
    }

    /// On a durable local store: flushes a written file and the folder entry that names it.
    fn make_durable(&self, key: &str) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        let Some(path) = self.local_path(key) else { return Ok(()) };
        let io = |source| StorageError::Io { path: path.clone(), source };
        std::fs::File::open(&path).and_then(|f| f.sync_all()).map_err(io)?;
        self.sync_parent(&path)
    }

    fn sync_parent(&self, path: &FsPath) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        if let Some(parent) = path.parent() {
            match std::fs::File::open(parent).and_then(|d| d.sync_all()) {
                Ok(()) => {}
                // The folder itself went away (automatic clean-up after the last file moved out).
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(source) => return Err(StorageError::Io { path: parent.to_path_buf(), source }),
            }
        }
        Ok(())
    }
}

/// The bytes an unprivileged writer can still write on the filesystem holding `path`.
pub fn free_space(path: &FsPath) -> std::io::Result<u64> {
    let stat = rustix::fs::statvfs(path)?;
    Ok(stat.f_bavail.saturating_mul(stat.f_frsize))
}

/// The size and BLAKE3 hash of a local file.
pub fn hash_file(path: &FsPath) -> std::io::Result<(u64, blake3::Hash)> {
    let mut file = std::fs::File::open(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut size = 0u64;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((size, hasher.finalize()))
}

/// Copies a folder and everything in it (files by copy-on-write where the filesystem can).
pub fn copy_tree(from: &FsPath, to: &FsPath) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if std::fs::metadata(entry.path())?.is_dir() {
            copy_tree(&entry.path(), &target)?;
        } else {
            reflink_copy::reflink_or_copy(entry.path(), &target)?;
        }
    }
    Ok(())
}

/// Flushes every file and folder below `dir` (and `dir` itself) to stable storage.
pub fn sync_tree(dir: &FsPath) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let path = entry?.path();
        if std::fs::symlink_metadata(&path)?.is_dir() {
            sync_tree(&path)?;
        } else {
            std::fs::File::open(&path)?.sync_all()?;
        }
    }
    std::fs::File::open(dir)?.sync_all()
}

/// Reads until `buf` is full or the reader ends.
fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stores() -> Vec<(Storage, Option<tempfile::TempDir>)> {
        let dir = tempfile::tempdir().unwrap();
        vec![(Storage::local(dir.path(), true).unwrap(), Some(dir)), (Storage::memory().unwrap(), None)]
    }

    #[test]
    fn put_get_list_rename_delete() {
        for (s, _dir) in stores() {
            s.put("p/a/x.txt", b"hello".to_vec(), false).unwrap();
            assert!(matches!(s.put("p/a/x.txt", b"again".to_vec(), true), Err(StorageError::AlreadyExists { .. })));
            assert_eq!(&s.get("p/a/x.txt").unwrap()[..], b"hello");
            s.rename("p/a/x.txt", "p/b/y.txt").unwrap();
            assert!(s.get("p/a/x.txt").unwrap_err().is_not_found());
            s.copy("p/b/y.txt", "p/c/z.txt").unwrap();
            let keys: Vec<_> = s.list("p").unwrap().into_iter().map(|e| e.key).collect();
            assert_eq!(keys, ["p/b/y.txt", "p/c/z.txt"]);
            s.delete("p/b/y.txt").unwrap();
            s.delete("p/b/y.txt").unwrap();
            assert_eq!(s.head("p/c/z.txt").unwrap().unwrap().size, 5);
            assert!(s.head("p/b/y.txt").unwrap().is_none());
        }
    }

    #[test]
    fn streams_hash_what_they_move() {
        for (s, _dir) in stores() {
            let data: Vec<u8> = (0..(CHUNK * 2 + 12345)).map(|i| (i % 251) as u8).collect();
            let (size, hash) = s.put_stream("big/blob", &mut &data[..]).unwrap();
            assert_eq!(size, data.len() as u64);
            assert_eq!(hash, blake3::hash(&data));
            let mut out = Vec::new();
            let (size2, hash2) = s.get_stream("big/blob", &mut out).unwrap();
            assert_eq!((size2, hash2), (size, hash));
            assert_eq!(out, data);
            let (size0, _) = s.put_stream("big/empty", &mut &b""[..]).unwrap();
            assert_eq!(size0, 0);
        }
    }

    #[test]
    fn odd_names_round_trip_through_keys() {
        let dir = tempfile::tempdir().unwrap();
        let s = Storage::local(dir.path(), false).unwrap();
        s.put("p/T (K) [1]/50% ~ü#", b"x".to_vec(), false).unwrap();
        let keys: Vec<_> = s.list("p").unwrap().into_iter().map(|e| e.key).collect();
        assert_eq!(keys, ["p/T (K) [1]/50% ~ü#"]);
        assert!(s.local_path("p/T (K)/a b.txt").unwrap().ends_with("p/T (K)/a b.txt"));
    }
}
