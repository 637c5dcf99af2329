//! Named connections (SPEC section 6, Hera's config done safely): `$XDG_CONFIG_HOME/trove/config.toml` (or
//! `$TROVE_CONFIG`) names stores and their catalogs, with credentials by reference only: an environment
//! variable or a secrets file readable by its owner alone (mode 0600, refused otherwise, as ssh refuses a
//! loose key). A secret's value is read when a command needs it and never written or printed: not by
//! `list`, not in an error, not in `trove.toml`, not in the log.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::location::Location;
use crate::store::{OpenOptions, Store};

/// The variable that names the configuration file instead of the default place.
pub const CONFIG_VARIABLE: &str = "TROVE_CONFIG";

/// Where a connection's secret (its catalog password) is read from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SecretRef {
    /// An environment variable's value.
    Env(String),
    /// A file's contents (without a final newline); the file must be readable by its owner alone.
    File(PathBuf),
}

impl std::fmt::Display for SecretRef {
    /// Where the secret is, never what it is.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretRef::Env(var) => write!(f, "env:{var}"),
            SecretRef::File(path) => write!(f, "file:{}", path.display()),
        }
    }
}

/// One named connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Connection {
    #[serde(skip)]
    pub name: String,
    /// The store's root folder.
    pub store: String,
    /// A catalog URL to use instead of the one the store's `trove.toml` records (the same database reached
    /// another way from this machine, such as through a tunnel); never with a password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catalog: Option<String>,
    /// The catalog's password, by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<SecretRef>,
    /// Settings of a store in an object store, by object_store's names (`aws_endpoint`, `aws_region`,
    /// `aws_access_key_id`, `aws_allow_http`, `google_service_account`, `azure_storage_account_name`, …), over
    /// what the environment says. Never a secret: that is `store_secret`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub store_settings: BTreeMap<String, String>,
    /// The object store's secret (S3's secret access key, Azure's account key, a Google service account
    /// key), by reference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub store_secret: Option<SecretRef>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    connections: BTreeMap<String, Connection>,
}

/// The connections of one configuration file.
#[derive(Debug)]
pub struct Connections {
    path: PathBuf,
    file: ConfigFile,
}

impl Connections {
    /// The configuration file: `$TROVE_CONFIG`, else `$XDG_CONFIG_HOME/trove/config.toml`, else
    /// `~/.config/trove/config.toml`.
    pub fn default_path() -> Result<PathBuf> {
        if let Some(path) = std::env::var_os(CONFIG_VARIABLE).filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(dir).join("trove/config.toml"));
        }
        match std::env::var_os("HOME").filter(|p| !p.is_empty()) {
            Some(home) => Ok(PathBuf::from(home).join(".config/trove/config.toml")),
            None => Err(Error::Invalid(format!(
                "cannot find the trove configuration: neither {CONFIG_VARIABLE}, XDG_CONFIG_HOME nor HOME is set"
            ))),
        }
    }

    /// Reads the configuration at `path` (none yet: no connections).
    pub fn load(path: &Path) -> Result<Connections> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(Error::Io { path: path.to_path_buf(), source: e }),
        };
        let mut file: ConfigFile = toml::from_str(&text).map_err(|e| {
            Error::Invalid(format!("{} is not valid: {}", path.display(), e.message().trim().replace('\n', " ")))
        })?;
        for (name, connection) in &mut file.connections {
            connection.name = name.clone();
        }
        Ok(Connections { path: path.to_path_buf(), file })
    }

    /// The configuration at [`Connections::default_path`].
    pub fn load_default() -> Result<Connections> {
        Connections::load(&Connections::default_path()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Every connection, by name.
    pub fn list(&self) -> impl Iterator<Item = &Connection> {
        self.file.connections.values()
    }

    pub fn get(&self, name: &str) -> Option<&Connection> {
        self.file.connections.get(name)
    }

    /// The name of the default connection: the login user's name.
    pub fn default_name() -> Option<String> {
        std::env::var("USER").or_else(|_| std::env::var("LOGNAME")).ok().filter(|u| !u.is_empty())
    }

    /// The connection `selected` names (an unknown name is an error), else the default one if it exists.
    pub fn resolve(&self, selected: Option<&str>) -> Result<Option<&Connection>> {
        match selected {
            Some(name) => self.get(name).map(Some).ok_or_else(|| Error::NotFound {
                what: format!("connection {name:?} (in {}; `trove connections list` shows them)", self.path.display()),
            }),
            None => Ok(Connections::default_name().and_then(|user| self.get(&user))),
        }
    }

    /// Adds (or replaces) a connection and saves the file. The name must be a valid trove name, the store a
    /// folder, a catalog URL without a password, and a secrets file readable by its owner alone.
    pub fn add(&mut self, mut connection: Connection) -> Result<()> {
        trove_model::name::validate_name(&connection.name)
            .map_err(|e| Error::Invalid(format!("invalid connection name: {e}")))?;
        if connection.store.is_empty() {
            return Err(Error::Invalid("a connection needs a store: give the store's folder".into()));
        }
        if let Some(key) = connection.store_settings.keys().find(|k| {
            let k = k.to_ascii_lowercase();
            ["secret", "token", "password", "account_key", "service_account_key"].iter().any(|w| k.contains(w))
        }) {
            return Err(Error::Invalid(format!(
                "store setting {key}: a secret is never kept in the configuration; give it by reference (an \
                 environment variable or a 0600 file) as the connection's store secret"
            )));
        }
        match Location::parse(&connection.store) {
            Location::Url(url) => connection.store = url,
            Location::Folder(folder) => {
                if connection.store.contains("://") {
                    return Err(Error::Invalid(format!(
                        "{}: not a folder, nor a URL trove can keep a store at (s3://, gs://, az://)",
                        connection.store
                    )));
                }
                let store = std::path::absolute(&folder).map_err(Error::io(&folder))?;
                connection.store = store.to_string_lossy().into_owned();
            }
        }
        if let Some(url) = &connection.catalog {
            if !trove_catalog_postgres::is_postgres_url(url) {
                return Err(Error::Invalid(format!(
                    "unknown catalog {url:?}: give postgres://USER@HOST[:PORT]/DATABASE"
                )));
            }
            if trove_catalog_postgres::redacted(url) != *url {
                return Err(Error::Invalid(
                    "the catalog URL holds a password, which would be written to the configuration: give it by \
                     reference instead (an environment variable, or a secrets file)"
                        .into(),
                ));
            }
        }
        if let Some(SecretRef::File(path)) = &connection.secret {
            let path = std::path::absolute(path).map_err(Error::io(path))?;
            check_private(&path)?;
            connection.secret = Some(SecretRef::File(path));
        }
        self.file.connections.insert(connection.name.clone(), connection);
        self.save()
    }

    /// Removes a connection and saves the file; false when there was none by that name.
    pub fn remove(&mut self, name: &str) -> Result<bool> {
        if self.file.connections.remove(name).is_none() {
            return Ok(false);
        }
        self.save()?;
        Ok(true)
    }

    /// Writes the file whole (aside, then renamed over it).
    fn save(&self) -> Result<()> {
        let text = toml::to_string_pretty(&self.file)
            .map_err(|e| Error::Invalid(format!("cannot write the trove configuration: {e}")))?;
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(Error::io(dir))?;
        }
        let temporary = self.path.with_extension(format!("toml.writing-{}", std::process::id()));
        let body =
            format!("# trove's named connections (`trove connections`). Secrets are referenced, never stored.\n{text}");
        std::fs::write(&temporary, body).map_err(Error::io(&temporary))?;
        std::fs::rename(&temporary, &self.path).map_err(Error::io(&self.path))?;
        Ok(())
    }
}

/// Refuses a secrets file that others could read (or write), as ssh refuses a loose private key.
fn check_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).map_err(Error::io(path))?;
    if !meta.is_file() {
        return Err(Error::Invalid(format!("the secrets file {} is not a regular file", path.display())));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(Error::Refused(format!(
            "permissions {mode:04o} for the secrets file {} are too open: it must be readable by its owner alone \
             (chmod 600 {})",
            path.display(),
            path.display()
        )));
    }
    Ok(())
}

impl Connection {
    /// The secret's value, read now; `None` when the connection has none.
    pub fn secret(&self) -> Result<Option<String>> {
        self.secret.as_ref().map(|r| self.read_secret(r)).transpose()
    }

    /// A secret's value, read now from where `secret` says.
    fn read_secret(&self, secret: &SecretRef) -> Result<String> {
        match secret {
            SecretRef::Env(var) => std::env::var(var).map_err(|_| {
                Error::Invalid(format!(
                    "connection {:?} takes a secret from the environment variable {var}, which is not set",
                    self.name
                ))
            }),
            SecretRef::File(path) => {
                check_private(path)?;
                let text = std::fs::read_to_string(path).map_err(Error::io(path))?;
                Ok(text.strip_suffix('\n').unwrap_or(&text).trim_end_matches('\r').to_string())
            }
        }
    }

    /// The object-store settings the connection brings: its `store_settings`, and its `store_secret` under
    /// the name the store's kind gives a secret.
    pub fn storage_options(&self) -> Result<Vec<(String, String)>> {
        let mut options: Vec<(String, String)> =
            self.store_settings.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        if let Some(secret) = &self.store_secret {
            let name = match self.store.split_once("://").map(|(scheme, _)| scheme) {
                Some("gs") => "google_service_account_key",
                Some("az" | "abfs" | "abfss") => "azure_storage_account_key",
                _ => "aws_secret_access_key",
            };
            options.push((name.to_string(), self.read_secret(secret)?));
        }
        Ok(options)
    }

    /// Where the connection's store is.
    pub fn location(&self) -> Location {
        Location::parse(&self.store)
    }

    /// Opens the connection's store with `options`, giving it this connection's catalog and secret.
    pub fn open(&self, options: &OpenOptions) -> Result<Store> {
        let mut options = options.clone();
        options.catalog_password = self.secret()?;
        if self.catalog.is_some() {
            options.catalog_url.clone_from(&self.catalog);
        }
        options.storage_options = self.storage_options()?;
        Store::open_at(&self.location(), &options)
    }

    /// What `trove connections test` checks: the store (its `trove.toml` and log can be read) and the
    /// catalog (it can be opened and counted), each with what went wrong.
    pub fn test(&self) -> ConnectionTest {
        let location = self.location();
        let store = self
            .storage_options()
            .and_then(|options| {
                crate::store::read_config(&location, &options)?;
                Ok(location.storage(false, &options)?.list(trove_storage::log::LOG_PREFIX)?)
            })
            .map(|_| ())
            .map_err(|e| e.to_string());
        let catalog = match &store {
            Err(_) => Err("not tried: the store could not be read".to_string()),
            Ok(()) => self
                .open(&OpenOptions::default())
                .and_then(|s| Ok((s.catalog_location(), s.read(|r| Ok(r.count(None)?))?)))
                .map_err(|e| e.to_string()),
        };
        ConnectionTest { store, catalog }
    }
}

/// The outcome of [`Connection::test`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTest {
    pub store: std::result::Result<(), String>,
    /// Where the catalog is and how many datasets it holds.
    pub catalog: std::result::Result<(String, u64), String>,
}
