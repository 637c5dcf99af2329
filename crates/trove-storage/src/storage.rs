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

    /// Deletes an object; an absent object is not an error.
    pub fn delete(&self, key: &str) -> Result<()> {
        match self.runtime.block_on(self.inner.delete(&path_of(key))) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(StorageError::backend(key, e)),
        }
    }

    /// Moves an object, replacing any object at `to` atomically.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.runtime
            .block_on(self.inner.rename(&path_of(from), &path_of(to)))
            .map_err(|e| StorageError::backend(from, e))?;
        self.make_durable(to)?;
        if let Some(from_path) = self.local_path(from) {
            self.sync_parent(&from_path)?;
            self.prune_empty_parents(&from_path);
        }
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

    /// Copies an object, replacing any object at `to` atomically.
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
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
