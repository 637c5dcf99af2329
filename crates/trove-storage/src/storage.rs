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
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

/// Size of the pieces a streamed write or read moves at a time.
pub const CHUNK: usize = 8 * 1024 * 1024;

/// Parts of one object a multipart upload has in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// What went wrong with a storage call. The key (or local path) involved is always named.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("{key}: not found in the store")]
    NotFound { key: String },
    #[error("{key}: already exists in the store")]
    AlreadyExists { key: String },
    #[error("{key}: {source}")]
    Backend { key: String, source: object_store::Error },
    /// The object store refused the request's credentials (a wrong secret, an unknown key, no permission).
    #[error(
        "{key}: the object store refused access: check the credentials (for S3: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and the bucket's permissions\n  caused by: {source}"
    )]
    Denied { key: String, source: object_store::Error },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{key}: {} is a symbolic link, and trove never writes or deletes through a link inside a store (it could lead outside)", link.display())]
    Link { key: String, link: PathBuf },
    #[error("{key}: {} is a file where a folder must be", path.display())]
    NotAFolder { key: String, path: PathBuf },
    #[error("cannot start the storage runtime: {0}")]
    Runtime(std::io::Error),
    /// What was read for an upload is not what it was expected to be: nothing was stored.
    #[error(
        "{key}: what was read is not what was expected (expected blake3:{expected}, read blake3:{found}): nothing was stored"
    )]
    Changed { key: String, expected: String, found: String },
    #[error("{url}: {message}")]
    Location { url: String, message: String },
}

impl StorageError {
    fn backend(key: &str, source: object_store::Error) -> StorageError {
        match source {
            object_store::Error::NotFound { .. } => StorageError::NotFound { key: key.to_string() },
            object_store::Error::AlreadyExists { .. } => StorageError::AlreadyExists { key: key.to_string() },
            source @ (object_store::Error::PermissionDenied { .. } | object_store::Error::Unauthenticated { .. }) => {
                StorageError::Denied { key: key.to_string(), source }
            }
            source => StorageError::Backend { key: key.to_string(), source },
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, StorageError::NotFound { .. })
    }

    /// Whether the object store refused the credentials (a wrong secret, an unknown key, no permission).
    pub fn is_denied(&self) -> bool {
        matches!(self, StorageError::Denied { .. })
    }

    /// Whether the object store could not be reached or answered with a server error.
    pub fn is_unreachable(&self) -> bool {
        match self {
            StorageError::Backend { source: object_store::Error::Generic { source, .. }, .. } => {
                let text = source.to_string();
                ["error sending request", "connect", "timed out", "dns error", "Connection refused"]
                    .iter()
                    .any(|needle| text.contains(needle))
            }
            _ => false,
        }
    }
}

/// The URL schemes a store may live at, besides a folder on this machine.
pub const URL_SCHEMES: [&str; 7] = ["s3", "s3a", "gs", "az", "abfs", "abfss", "memory"];

/// The in-memory stores of this process by name, so that `memory://name` opened twice is one store.
fn memory_store(name: &str) -> Arc<dyn ObjectStore> {
    static STORES: std::sync::OnceLock<std::sync::Mutex<std::collections::HashMap<String, Arc<InMemory>>>> =
        std::sync::OnceLock::new();
    let mut stores = STORES.get_or_init(Default::default).lock().unwrap_or_else(|p| p.into_inner());
    stores.entry(name.to_string()).or_insert_with(|| Arc::new(InMemory::new())).clone()
}

/// The object store at a URL, and the prefix inside it that is the store root. Credentials and endpoints
/// come from the environment as each cloud's own tools read them (`AWS_ACCESS_KEY_ID`, `AWS_ENDPOINT_URL`,
/// `AWS_ALLOW_HTTP`, `GOOGLE_SERVICE_ACCOUNT`, `AZURE_STORAGE_ACCOUNT_NAME`, …), then from `options`
/// (`aws_secret_access_key` and the like), which win.
fn object_store_at(url: &str, options: &[(String, String)]) -> Result<(Arc<dyn ObjectStore>, Path)> {
    let refuse = |message: String| StorageError::Location { url: url.to_string(), message };
    let parsed = url::Url::parse(url).map_err(|e| refuse(format!("not a valid URL ({e})")))?;
    let prefix = percent_encoding::percent_decode_str(parsed.path().trim_matches('/'))
        .decode_utf8()
        .map_err(|_| refuse("the path is not UTF-8".into()))?
        .into_owned();
    let bucket = parsed.host_str().unwrap_or_default().to_string();
    if bucket.is_empty() {
        return Err(refuse("name the bucket (or container): SCHEME://BUCKET/PREFIX".into()));
    }
    let configured = |e: object_store::Error| refuse(e.to_string());
    let store: Arc<dyn ObjectStore> = match parsed.scheme() {
        "memory" => memory_store(&bucket),
        "s3" | "s3a" => {
            let mut builder = object_store::aws::AmazonS3Builder::from_env().with_bucket_name(&bucket);
            for (key, value) in options {
                if let Ok(key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(key, value);
                }
            }
            Arc::new(builder.build().map_err(configured)?)
        }
        "gs" => {
            let mut builder = object_store::gcp::GoogleCloudStorageBuilder::from_env().with_bucket_name(&bucket);
            for (key, value) in options {
                if let Ok(key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(key, value);
                }
            }
            Arc::new(builder.build().map_err(configured)?)
        }
        "az" | "abfs" | "abfss" => {
            let mut builder = object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url);
            for (key, value) in options {
                if let Ok(key) = key.to_ascii_lowercase().parse() {
                    builder = builder.with_config(key, value);
                }
            }
            Arc::new(builder.build().map_err(configured)?)
        }
        other => {
            return Err(refuse(format!("trove cannot keep a store at a {other}:// URL (it knows {URL_SCHEMES:?})")));
        }
    };
    let prefix = Path::parse(&prefix).map_err(|e| refuse(format!("the prefix is not a valid object path ({e})")))?;
    Ok((store, prefix))
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

/// A store root: a local directory, or an object store (in memory today; S3 and the others through the same
/// `object_store` trait).
pub struct Storage {
    backend: Backend,
    runtime: tokio::runtime::Runtime,
    durable: bool,
    url: String,
    /// Bytes read from an object store so far (reads of a local folder are not counted).
    fetched: std::sync::atomic::AtomicU64,
}

/// Where the bytes go. A local folder is written with the filesystem's own calls: trove needs fsync, atomic
/// rename and exchange, copy-on-write copies and names kept exactly as they are, which `object_store`'s local
/// backend does not give (it escapes non-ASCII names on disk and makes names longer while it writes them).
enum Backend {
    Local(PathBuf),
    Objects(Arc<dyn ObjectStore>),
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage").field("url", &self.url).field("durable", &self.durable).finish()
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(StorageError::Runtime)
}

/// The object_store path of a key, one path part a name, taken as it is.
///
/// This is the one codec between trove names and places in storage: a name is kept as it is, on a local
/// disk (`lab/café/x#1`) and in an object store alike. The name rules already refuse everything a local
/// filesystem cannot hold (`/`, NUL and other control characters, `.` and `..`, over 255 bytes), and object
/// stores take any UTF-8 key. A key that is not made of valid names (never one trove writes) falls back to
/// object_store's own escaping rather than failing.
pub fn path_of(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from_iter(key.split('/').filter(|p| !p.is_empty())))
}

/// The key of an object_store path: the inverse of [`path_of`].
pub fn key_of(path: &Path) -> String {
    path.as_ref().to_string()
}

/// Files a local write makes beside its destination until it is whole; listings never show them.
pub const TEMP_PREFIX: &str = ".trove-tmp-";

fn io_at(path: &FsPath) -> impl FnOnce(std::io::Error) -> StorageError + '_ {
    move |source| StorageError::Io { path: path.to_path_buf(), source }
}

/// A local read's error: an absent file is `NotFound`.
fn local_read_error(key: &str, path: &FsPath, e: std::io::Error) -> StorageError {
    if e.kind() == std::io::ErrorKind::NotFound {
        StorageError::NotFound { key: key.to_string() }
    } else {
        StorageError::Io { path: path.to_path_buf(), source: e }
    }
}

fn modified_micros(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

impl Storage {
    /// A store rooted at a local directory, which must exist.
    pub fn local(root: &FsPath, durable: bool) -> Result<Storage> {
        let root = std::fs::canonicalize(root).map_err(io_at(root))?;
        Ok(Storage {
            runtime: runtime()?,
            url: format!("file://{}", root.display()),
            backend: Backend::Local(root),
            durable,
            fetched: Default::default(),
        })
    }

    /// A store that lives in memory (for tests and throwaway work).
    pub fn memory() -> Result<Storage> {
        Ok(Storage {
            backend: Backend::Objects(Arc::new(InMemory::new())),
            runtime: runtime()?,
            durable: false,
            url: "memory://".into(),
            fetched: Default::default(),
        })
    }

    /// A store at an object-store URL (`s3://bucket/prefix`, `gs://…`, `az://…`, `memory://name`): every key
    /// lives below the prefix. `options` are the backend's settings by name (`aws_secret_access_key`, …),
    /// over what the environment says.
    pub fn open_url(url: &str, options: &[(String, String)]) -> Result<Storage> {
        let (store, prefix) = object_store_at(url, options)?;
        let store: Arc<dyn ObjectStore> =
            if prefix.as_ref().is_empty() { store } else { Arc::new(PrefixStore::new(store, prefix)) };
        // Network requests run on worker threads, so that many threads of the caller's (verify, transfer)
        // have requests in flight at once.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .map_err(StorageError::Runtime)?;
        Ok(Storage {
            backend: Backend::Objects(store),
            runtime,
            durable: true,
            url: url.trim_end_matches('/').to_string(),
            fetched: Default::default(),
        })
    }

    /// An object store's error about `key`, naming the object by its whole URL.
    fn fail(&self, key: &str, source: object_store::Error) -> StorageError {
        StorageError::backend(&self.locate(key), source)
    }

    /// The store's URL (`file:///abs/path`, `s3://bucket/prefix`, `memory://`).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The local directory at the root, when the store is on a local disk.
    pub fn local_root(&self) -> Option<&FsPath> {
        match &self.backend {
            Backend::Local(root) => Some(root),
            Backend::Objects(_) => None,
        }
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

    /// The local file of a key, on a local store: the root joined with the key's names as they are. A `.` or
    /// `..` part (which no valid name is) is escaped rather than followed, so no key leads out of the root.
    pub fn local_path(&self, key: &str) -> Option<PathBuf> {
        let mut p = self.local_root()?.to_path_buf();
        for part in key.split('/').filter(|p| !p.is_empty()) {
            match part {
                "." => p.push("%2E"),
                ".." => p.push("%2E%2E"),
                part => p.push(part),
            }
        }
        Some(p)
    }

    /// The local file of a key that is about to be written, replaced or deleted. Refused when the way to it
    /// from the root passes through a symbolic link (a link placed in the store could lead anywhere, and
    /// trove never writes or deletes outside the store), or through a file where a folder must be. The last
    /// name may be a link: replacing or deleting it touches the link alone.
    pub fn writable_path(&self, key: &str) -> Result<Option<PathBuf>> {
        let Some(path) = self.local_path(key) else { return Ok(None) };
        let Some(root) = self.local_root() else { return Ok(None) };
        let mut dir = root.to_path_buf();
        let mut parts = path.strip_prefix(root).map(|rel| rel.components().collect::<Vec<_>>()).unwrap_or_default();
        parts.pop();
        for part in parts {
            dir.push(part);
            match std::fs::symlink_metadata(&dir) {
                Ok(meta) if meta.file_type().is_symlink() => {
                    return Err(StorageError::Link { key: key.to_string(), link: dir });
                }
                Ok(meta) if !meta.is_dir() => return Err(StorageError::NotAFolder { key: key.to_string(), path: dir }),
                Ok(_) => {}
                // Nothing below a missing folder exists yet, so nothing there can be a link.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => break,
                Err(source) => return Err(StorageError::Io { path: dir, source }),
            }
        }
        Ok(Some(path))
    }

    /// Writes a local file whole: into a temporary file beside it first, then renamed into place (or, with
    /// `create_only`, linked, which fails when the name is taken). `fill` writes the content.
    fn write_local<T>(
        &self,
        key: &str,
        dest: &FsPath,
        create_only: bool,
        fill: impl FnOnce(&mut std::fs::File) -> std::io::Result<T>,
    ) -> Result<T> {
        let parent = dest.parent().unwrap_or(dest);
        let temp = parent.join(format!("{TEMP_PREFIX}{}", uuid::Uuid::now_v7().simple()));
        let written = (|| {
            // Another process's delete prunes folders it leaves empty (`prune_empty_parents`), so the folder
            // made here may be gone again before the file is in it: make it again.
            let mut attempts = 0;
            let mut file = loop {
                let made = std::fs::create_dir_all(parent).and_then(|()| std::fs::File::create_new(&temp));
                match made {
                    Ok(file) => break file,
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && attempts < 16 => attempts += 1,
                    Err(source) => return Err(StorageError::Io { path: temp.clone(), source }),
                }
            };
            let out = fill(&mut file).map_err(io_at(&temp))?;
            if self.durable {
                file.sync_all().map_err(io_at(&temp))?;
            }
            if create_only {
                match std::fs::hard_link(&temp, dest) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        return Err(StorageError::AlreadyExists { key: key.to_string() });
                    }
                    Err(source) => return Err(StorageError::Io { path: dest.to_path_buf(), source }),
                }
                std::fs::remove_file(&temp).map_err(io_at(&temp))?;
            } else {
                std::fs::rename(&temp, dest).map_err(io_at(dest))?;
            }
            Ok(out)
        })();
        if written.is_err() {
            let _ = std::fs::remove_file(&temp);
        }
        let out = written?;
        self.sync_parent(dest)?;
        Ok(out)
    }

    /// Writes a whole object. With `create_only`, fails with `AlreadyExists` instead of replacing.
    pub fn put(&self, key: &str, bytes: impl Into<Bytes>, create_only: bool) -> Result<()> {
        let bytes = bytes.into();
        let store = match &self.backend {
            Backend::Local(_) => {
                let dest = self.writable_path(key)?.unwrap_or_default();
                return self.write_local(key, &dest, create_only, |file| file.write_all(&bytes));
            }
            Backend::Objects(store) => store,
        };
        let mode = if create_only { PutMode::Create } else { PutMode::Overwrite };
        let opts = PutOptions { mode, ..Default::default() };
        self.runtime
            .block_on(store.put_opts(&path_of(key), PutPayload::from(bytes), opts))
            .map_err(|e| self.fail(key, e))?;
        Ok(())
    }

    /// Streams `reader` into a new object at `key`, hashing what passes through with BLAKE3.
    /// The object appears whole when the upload completes, or not at all.
    pub fn put_stream(&self, key: &str, reader: &mut dyn Read) -> Result<(u64, blake3::Hash)> {
        self.put_stream_checked(key, reader, None)
    }

    /// [`Storage::put_stream`] that, given the `expected` BLAKE3 hash, makes the object appear only if what
    /// was read has it: on a mismatch nothing appears at `key` and the error is [`StorageError::Changed`].
    /// An object that exists at `key` afterwards is therefore whole and right.
    pub fn put_stream_checked(
        &self,
        key: &str,
        reader: &mut dyn Read,
        expected: Option<blake3::Hash>,
    ) -> Result<(u64, blake3::Hash)> {
        let mismatch = |found: blake3::Hash| StorageError::Changed {
            key: self.locate(key),
            expected: expected.map(|h| h.to_hex().to_string()).unwrap_or_default(),
            found: found.to_hex().to_string(),
        };
        let store = match &self.backend {
            Backend::Local(_) => {
                let dest = self.writable_path(key)?.unwrap_or_default();
                let mut refused = None;
                let written = self.write_local(key, &dest, false, |file| {
                    let mut hasher = blake3::Hasher::new();
                    let mut size = 0u64;
                    let mut buf = vec![0u8; CHUNK];
                    loop {
                        let n = read_full(reader, &mut buf)?;
                        if n == 0 {
                            break;
                        }
                        hasher.update(&buf[..n]);
                        file.write_all(&buf[..n])?;
                        size += n as u64;
                    }
                    let hash = hasher.finalize();
                    // Refused before the file is renamed into place.
                    if expected.is_some_and(|e| e != hash) {
                        refused = Some(hash);
                        return Err(std::io::Error::other("the bytes read are not the bytes expected"));
                    }
                    Ok((size, hash))
                });
                return match refused {
                    Some(found) => Err(mismatch(found)),
                    None => written,
                };
            }
            Backend::Objects(store) => store,
        };
        let path = path_of(key);
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut buf = vec![0u8; CHUNK];
        let first = read_full(reader, &mut buf).map_err(|source| StorageError::Io { path: key.into(), source })?;
        hasher.update(&buf[..first]);
        size += first as u64;
        if first < CHUNK {
            // Small: one PUT, sent once its hash is known.
            let hash = hasher.finalize();
            if expected.is_some_and(|e| e != hash) {
                return Err(mismatch(hash));
            }
            buf.truncate(first);
            self.runtime
                .block_on(store.put_opts(&path, PutPayload::from(buf), PutOptions::default()))
                .map_err(|e| self.fail(key, e))?;
            return Ok((size, hash));
        }
        let result: Result<blake3::Hash> = self.runtime.block_on(async {
            let upload = store.put_multipart(&path).await.map_err(|e| self.fail(key, e))?;
            // Parts go up on the runtime's workers, PARTS_IN_FLIGHT at a time, while the next is read and hashed.
            let mut write = object_store::WriteMultipart::new_with_chunk_size(upload, CHUNK);
            write.put(Bytes::copy_from_slice(&buf));
            let outcome: Result<blake3::Hash> = async {
                loop {
                    let n =
                        read_full(reader, &mut buf).map_err(|source| StorageError::Io { path: key.into(), source })?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    size += n as u64;
                    write.wait_for_capacity(PARTS_IN_FLIGHT).await.map_err(|e| self.fail(key, e))?;
                    write.put(Bytes::copy_from_slice(&buf[..n]));
                    if n < CHUNK {
                        break;
                    }
                }
                let hash = hasher.finalize();
                // Checked before the upload completes, which is the moment the object appears.
                if expected.is_some_and(|e| e != hash) {
                    return Err(mismatch(hash));
                }
                Ok(hash)
            }
            .await;
            match outcome {
                Ok(hash) => write.finish().await.map(|_| hash).map_err(|e| self.fail(key, e)),
                Err(e) => {
                    let _ = write.abort().await;
                    Err(e)
                }
            }
        });
        let hash = result?;
        Ok((size, hash))
    }

    /// Stores the local file `source` at `key` and returns its size and BLAKE3 hash. On a local root the
    /// kernel copies the bytes (or, with `reflink`, shares them copy-on-write where the filesystem can)
    /// while a second thread hashes the source, so hashing costs no extra time; a source that changes
    /// meanwhile is refused. Elsewhere the file is streamed and hashed in one pass. The caller makes sure
    /// `source` is a regular file (a FIFO or a device would never end).
    pub fn import_file(&self, key: &str, source: &FsPath, reflink: bool) -> Result<(u64, blake3::Hash)> {
        let src_io = |e| StorageError::Io { path: source.to_path_buf(), source: e };
        let Some(dest) = self.writable_path(key)? else {
            let mut file = std::fs::File::open(source).map_err(src_io)?;
            return self.put_stream(key, &mut file);
        };
        let before = std::fs::metadata(source).map_err(src_io)?;
        if let Some(parent) = dest.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
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
        let store = match &self.backend {
            Backend::Local(_) => {
                let path = self.local_path(key).unwrap_or_default();
                return std::fs::read(&path).map(Bytes::from).map_err(|e| local_read_error(key, &path, e));
            }
            Backend::Objects(store) => store,
        };
        let path = path_of(key);
        let bytes = self.runtime.block_on(async {
            let got = store.get(&path).await.map_err(|e| self.fail(key, e))?;
            got.bytes().await.map_err(|e| self.fail(key, e))
        })?;
        self.count_fetched(bytes.len());
        Ok(bytes)
    }

    /// The bytes of `range` of an object (clamped to its end): on an object store, one range request.
    pub fn get_range(&self, key: &str, range: std::ops::Range<u64>) -> Result<Bytes> {
        let store = match &self.backend {
            Backend::Local(_) => {
                use std::os::unix::fs::FileExt;
                let path = self.local_path(key).unwrap_or_default();
                let file = std::fs::File::open(&path).map_err(|e| local_read_error(key, &path, e))?;
                let size = file.metadata().map_err(io_at(&path))?.len();
                let (start, end) = (range.start.min(size), range.end.min(size));
                let mut buf = vec![0u8; usize::try_from(end - start).unwrap_or(0)];
                file.read_exact_at(&mut buf, start).map_err(io_at(&path))?;
                return Ok(Bytes::from(buf));
            }
            Backend::Objects(store) => store,
        };
        if range.is_empty() {
            return Ok(Bytes::new());
        }
        let bytes = self.runtime.block_on(store.get_range(&path_of(key), range)).map_err(|e| self.fail(key, e))?;
        self.count_fetched(bytes.len());
        Ok(bytes)
    }

    fn count_fetched(&self, n: usize) {
        self.fetched.fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
    }

    /// Bytes read from an object store by this handle so far: what a read really cost in transfer.
    pub fn bytes_fetched(&self) -> u64 {
        self.fetched.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Streams an object into `writer`, hashing it on the way; returns its size and BLAKE3 hash.
    pub fn get_stream(&self, key: &str, writer: &mut dyn Write) -> Result<(u64, blake3::Hash)> {
        let mut hasher = blake3::Hasher::new();
        let mut size = 0u64;
        let mut pass = |chunk: &[u8]| -> Result<()> {
            hasher.update(chunk);
            size += chunk.len() as u64;
            writer.write_all(chunk).map_err(|source| StorageError::Io { path: key.into(), source })
        };
        match &self.backend {
            Backend::Local(_) => {
                let path = self.local_path(key).unwrap_or_default();
                let mut file = std::fs::File::open(&path).map_err(|e| local_read_error(key, &path, e))?;
                let mut buf = vec![0u8; CHUNK];
                loop {
                    let n = read_full(&mut file, &mut buf).map_err(io_at(&path))?;
                    if n == 0 {
                        break;
                    }
                    pass(&buf[..n])?;
                }
            }
            Backend::Objects(store) => {
                // One GET, streamed: measured against four ranges in flight at once, it was the faster on a
                // loopback SeaweedFS (docs/performance.md section 9).
                let got = self.runtime.block_on(store.get(&path_of(key))).map_err(|e| self.fail(key, e))?;
                let mut stream = got.into_stream();
                self.runtime.block_on(async {
                    while let Some(chunk) = stream.next().await {
                        let chunk = chunk.map_err(|e| self.fail(key, e))?;
                        self.count_fetched(chunk.len());
                        pass(&chunk)?;
                    }
                    Ok::<_, StorageError>(())
                })?;
            }
        }
        Ok((size, hasher.finalize()))
    }

    /// Size and modification time of an object (a file, on a local root), or `None` when it is absent.
    pub fn head(&self, key: &str) -> Result<Option<Entry>> {
        let store = match &self.backend {
            Backend::Local(_) => {
                let path = self.local_path(key).unwrap_or_default();
                return match std::fs::metadata(&path) {
                    Ok(meta) if meta.is_file() => {
                        Ok(Some(Entry { key: key.to_string(), size: meta.len(), modified: modified_micros(&meta) }))
                    }
                    Ok(_) => Ok(None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                    Err(source) => Err(StorageError::Io { path, source }),
                };
            }
            Backend::Objects(store) => store,
        };
        match self.runtime.block_on(store.head(&path_of(key))) {
            Ok(meta) => Ok(Some(Entry {
                key: key.to_string(),
                size: meta.size,
                modified: meta.last_modified.timestamp_micros(),
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.fail(key, e)),
        }
    }

    /// Every object under a prefix (recursively), sorted by key. On a local root: every regular file (links
    /// are not followed), without the temporary files of writes under way.
    pub fn list(&self, prefix: &str) -> Result<Vec<Entry>> {
        let mut out = Vec::new();
        match &self.backend {
            Backend::Local(_) => {
                let dir = self.local_path(prefix).unwrap_or_default();
                let prefix = prefix.trim_matches('/');
                list_local(&dir, prefix, &mut out)?;
            }
            Backend::Objects(store) => {
                let path = path_of(prefix);
                self.runtime.block_on(async {
                    let mut stream = store.list(Some(&path));
                    while let Some(meta) = stream.next().await {
                        let meta = meta.map_err(|e| self.fail(prefix, e))?;
                        out.push(Entry {
                            key: key_of(&meta.location),
                            size: meta.size,
                            modified: meta.last_modified.timestamp_micros(),
                        });
                    }
                    Ok::<_, StorageError>(())
                })?;
            }
        }
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
        if self.head(key)?.is_some() {
            return Ok(true);
        }
        match &self.backend {
            Backend::Objects(store) => Ok(!self.objects_below(store, key)?.is_empty()),
            Backend::Local(_) => Ok(false),
        }
    }

    /// Deletes an object; an absent object is not an error. On a local root, a folder at `key` (a folder
    /// object, a Zarr array) is deleted with everything in it, and the folders left empty go too.
    pub fn delete(&self, key: &str) -> Result<()> {
        let store = match &self.backend {
            Backend::Local(_) => {
                let path = self.writable_path(key)?.unwrap_or_default();
                let removed = match std::fs::symlink_metadata(&path) {
                    Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&path),
                    Ok(_) => std::fs::remove_file(&path),
                    Err(e) => Err(e),
                };
                return match removed {
                    Ok(()) => {
                        self.prune_empty_parents(&path);
                        Ok(())
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
                    Err(source) => Err(StorageError::Io { path, source }),
                };
            }
            Backend::Objects(store) => store,
        };
        // A folder object (a Zarr array) is every object below its key.
        let mut doomed = vec![path_of(key)];
        doomed.extend(self.objects_below(store, key)?);
        for path in doomed {
            match self.runtime.block_on(store.delete(&path)) {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.fail(key, e)),
            }
        }
        Ok(())
    }

    /// The objects strictly below `key/` in an object store: the files of a folder object.
    fn objects_below(&self, store: &Arc<dyn ObjectStore>, key: &str) -> Result<Vec<Path>> {
        let folder = path_of(key);
        if folder.as_ref().is_empty() {
            return Ok(Vec::new());
        }
        self.runtime.block_on(async {
            let mut found = Vec::new();
            let mut stream = store.list(Some(&folder));
            while let Some(meta) = stream.next().await {
                let meta = meta.map_err(|e| self.fail(key, e))?;
                if meta.location != folder {
                    found.push(meta.location);
                }
            }
            Ok(found)
        })
    }

    /// Copies `from` to `to` in an object store, a folder object file by file (each copy made by the server).
    /// What `to` held before and the copy does not replace is deleted afterwards, so that `to` ends up as
    /// `from` was.
    fn copy_objects(&self, store: &Arc<dyn ObjectStore>, from: &str, to: &str) -> Result<()> {
        let (source, target) = (path_of(from), path_of(to));
        match self.runtime.block_on(store.copy(&source, &target)) {
            Ok(()) => return Ok(()),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(self.fail(from, e)),
        }
        let files = self.objects_below(store, from)?;
        if files.is_empty() {
            return Err(StorageError::NotFound { key: from.to_string() });
        }
        let stale = self.objects_below(store, to)?;
        let mut written = std::collections::HashSet::new();
        for file in &files {
            let relative = file.as_ref().strip_prefix(source.as_ref()).unwrap_or_default().trim_start_matches('/');
            let dest = path_of(&format!("{to}/{relative}"));
            self.runtime.block_on(store.copy(file, &dest)).map_err(|e| self.fail(from, e))?;
            written.insert(dest);
        }
        for old in stale.into_iter().filter(|p| !written.contains(p)) {
            let _ = self.runtime.block_on(store.delete(&old));
        }
        let _ = self.runtime.block_on(store.delete(&target));
        Ok(())
    }

    /// Moves an object (on a local root, a file or a whole folder), replacing whatever is at `to` atomically:
    /// a reader finds the old object or the new one at `to`, never neither and never a mixture.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (from_path, to_path) = match &self.backend {
            Backend::Local(_) => {
                (self.writable_path(from)?.unwrap_or_default(), self.writable_path(to)?.unwrap_or_default())
            }
            Backend::Objects(store) => {
                // No rename in an object store: a copy made by the server (atomic per object for readers),
                // then the source goes. Dying between the two leaves the source for a retry.
                self.copy_objects(store, from, to)?;
                return self.delete(from);
            }
        };
        self.rename_local(&from_path, &to_path)
    }

    /// [`Storage::rename`] on a local root.
    fn rename_local(&self, from_path: &FsPath, to_path: &FsPath) -> Result<()> {
        if let Some(parent) = to_path.parent() {
            std::fs::create_dir_all(parent).map_err(io_at(parent))?;
        }
        let replaced_folder = match std::fs::rename(from_path, to_path) {
            Ok(()) => false,
            // A folder cannot be renamed over a non-empty folder, nor a file over a folder (and the
            // other way round): swap the two in one step, then delete the old one, now at `from`.
            Err(e) if std::fs::symlink_metadata(to_path).is_ok() && std::fs::symlink_metadata(from_path).is_ok() => {
                rustix::fs::renameat_with(
                    rustix::fs::CWD,
                    from_path,
                    rustix::fs::CWD,
                    to_path,
                    rustix::fs::RenameFlags::EXCHANGE,
                )
                .map_err(|errno| StorageError::Io {
                    path: to_path.to_path_buf(),
                    source: std::io::Error::new(e.kind(), format!("{e}; swapping in place failed too: {errno}")),
                })?;
                true
            }
            Err(e) => return Err(StorageError::Io { path: from_path.to_path_buf(), source: e }),
        };
        self.make_durable_path(to_path)?;
        self.sync_parent(from_path)?;
        if replaced_folder {
            let removed = if std::fs::symlink_metadata(from_path).is_ok_and(|m| m.is_dir()) {
                std::fs::remove_dir_all(from_path)
            } else {
                std::fs::remove_file(from_path)
            };
            removed.map_err(io_at(from_path))?;
        }
        self.prune_empty_parents(from_path);
        Ok(())
    }

    /// Removes the folders a move or delete left empty, up to (not including) the root.
    fn prune_empty_parents(&self, path: &FsPath) {
        let Some(root) = self.local_root() else { return };
        let mut dir = path.parent();
        while let Some(d) = dir {
            if d == root || !d.starts_with(root) || std::fs::remove_dir(d).is_err() {
                break;
            }
            dir = d.parent();
        }
    }

    /// Makes the folder for a key prefix exist (local stores only; object stores have no folders).
    pub fn ensure_folder(&self, prefix: &str) -> Result<()> {
        if let Some(p) = self.writable_path(prefix)? {
            std::fs::create_dir_all(&p).map_err(|source| StorageError::Io { path: p, source })?;
        }
        Ok(())
    }

    /// Copies an object (on a local root, a file or a whole folder), replacing any object at `to` atomically.
    pub fn copy(&self, from: &str, to: &str) -> Result<()> {
        let store = match &self.backend {
            Backend::Local(_) => {
                let from_path = self.local_path(from).unwrap_or_default();
                let to_path = self.writable_path(to)?.unwrap_or_default();
                let part_path = to_path.with_file_name(format!("{TEMP_PREFIX}{}", uuid::Uuid::now_v7().simple()));
                if let Some(parent) = part_path.parent() {
                    std::fs::create_dir_all(parent).map_err(io_at(parent))?;
                }
                // The copy is made beside its destination first, so that it appears whole.
                let is_dir = std::fs::metadata(&from_path).map_err(|e| local_read_error(from, &from_path, e))?.is_dir();
                let copied = if is_dir {
                    copy_tree(&from_path, &part_path)
                        .and_then(|()| if self.durable { sync_tree(&part_path) } else { Ok(()) })
                } else {
                    reflink_copy::reflink_or_copy(&from_path, &part_path)
                        .and_then(|_| if self.durable { std::fs::File::open(&part_path)?.sync_all() } else { Ok(()) })
                };
                if let Err(source) = copied {
                    let _ = if is_dir { std::fs::remove_dir_all(&part_path) } else { std::fs::remove_file(&part_path) };
                    return Err(StorageError::Io { path: to_path, source });
                }
                let placed = self.rename_local(&part_path, &to_path);
                if placed.is_err() {
                    let _ = if is_dir { std::fs::remove_dir_all(&part_path) } else { std::fs::remove_file(&part_path) };
                }
                return placed;
            }
            Backend::Objects(store) => store,
        };
        self.copy_objects(store, from, to)
    }

    /// On a durable local store: flushes a written file and the folder entry that names it.
    fn make_durable(&self, key: &str) -> Result<()> {
        match self.local_path(key) {
            Some(path) => self.make_durable_path(&path),
            None => Ok(()),
        }
    }

    fn make_durable_path(&self, path: &FsPath) -> Result<()> {
        if !self.durable {
            return Ok(());
        }
        std::fs::File::open(path).and_then(|f| f.sync_all()).map_err(io_at(path))?;
        self.sync_parent(path)
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

/// The regular files below a local folder (recursively, links not followed), as entries keyed `prefix/...`.
fn list_local(dir: &FsPath, prefix: &str, out: &mut Vec<Entry>) -> Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if matches!(e.kind(), std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory) => {
            return Ok(());
        }
        Err(source) => return Err(StorageError::Io { path: dir.to_path_buf(), source }),
    };
    // An entry deleted while the folder is read (a lease released, a file gc removed) is simply not listed.
    let vanished = |e: &std::io::Error| e.kind() == std::io::ErrorKind::NotFound;
    for entry in entries {
        let entry = match entry {
            Ok(entry) => entry,
            Err(e) if vanished(&e) => continue,
            Err(source) => return Err(StorageError::Io { path: dir.to_path_buf(), source }),
        };
        let Some(name) = entry.file_name().to_str().map(str::to_string) else { continue };
        if name.starts_with(TEMP_PREFIX) {
            continue;
        }
        let key = if prefix.is_empty() { name } else { format!("{prefix}/{name}") };
        let file_type = match entry.file_type() {
            Ok(t) => t,
            Err(e) if vanished(&e) => continue,
            Err(source) => return Err(StorageError::Io { path: entry.path(), source }),
        };
        if file_type.is_dir() {
            list_local(&entry.path(), &key, out)?;
        } else if file_type.is_file() {
            let meta = match entry.metadata() {
                Ok(m) => m,
                Err(e) if vanished(&e) => continue,
                Err(source) => return Err(StorageError::Io { path: entry.path(), source }),
            };
            out.push(Entry { key, size: meta.len(), modified: modified_micros(&meta) });
        }
    }
    Ok(())
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
    // 4 MiB at a time, hashed on every core: a file just written is in the page cache, and hashing, not
    // reading, is then what its import waits for.
    let mut buf = vec![0u8; 4 << 20];
    let mut size = 0u64;
    loop {
        let n = read_full(&mut file, &mut buf)?;
        if n == 0 {
            break;
        }
        hasher.update_rayon(&buf[..n]);
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
