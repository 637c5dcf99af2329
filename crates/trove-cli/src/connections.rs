//! `trove connections`: named stores and catalogs in the user's configuration, and choosing the store a
//! command works on (`--store`, `-c NAME`, the folder the command runs in, the default connection).

use anyhow::{Context, Result, bail};
use serde_json::json;
use trove::{Connection, Connections, Location, OpenOptions, SecretRef, Store};

use crate::ConnectionsCommand;
use crate::output::Out;

/// Where a command's store is: `--store` (or `$TROVE_STORE`), else `-c NAME` (or `$TROVE_CONNECTION`), else
/// the store the current folder is in, else the connection named like the login user.
pub(crate) enum StoreTarget {
    At(Location),
    Connection(Connection),
}

impl StoreTarget {
    pub(crate) fn of(store: &Option<String>, connection: &Option<String>) -> Result<StoreTarget> {
        if let Some(location) = store {
            return Ok(StoreTarget::At(Location::parse(location)));
        }
        if let Some(name) = connection {
            let connections = Connections::load_default()?;
            return Ok(StoreTarget::Connection(
                connections.resolve(Some(name))?.cloned().context("no such connection")?,
            ));
        }
        let here = std::env::current_dir().context("cannot read the current folder")?;
        match Store::discover(&here) {
            Ok(root) => Ok(StoreTarget::At(Location::Folder(root))),
            Err(not_found) => match Connections::load_default()?.resolve(None)? {
                Some(default) => Ok(StoreTarget::Connection(default.clone())),
                None => Err(not_found.into()),
            },
        }
    }

    pub(crate) fn location(&self) -> Location {
        match self {
            StoreTarget::At(location) => location.clone(),
            StoreTarget::Connection(c) => c.location(),
        }
    }

    /// The catalog password this target brings (a connection's secret), if any.
    pub(crate) fn secret(&self) -> Result<Option<String>> {
        match self {
            StoreTarget::At(_) => Ok(None),
            StoreTarget::Connection(c) => Ok(c.secret()?),
        }
    }

    pub(crate) fn open(&self, options: &OpenOptions) -> Result<Store> {
        Ok(match self {
            StoreTarget::At(location) => Store::open_at(location, options)?,
            StoreTarget::Connection(c) => c.open(options)?,
        })
    }
}

pub(crate) fn run(command: ConnectionsCommand, store: &Option<String>, out: &mut Out) -> Result<()> {
    let mut connections = Connections::load_default()?;
    match command {
        ConnectionsCommand::Add {
            name,
            catalog,
            secret_env,
            secret_file,
            store_settings,
            store_secret_env,
            store_secret_file,
        } => {
            let store = match store {
                Some(location) => location.clone(),
                None => Store::discover(&std::env::current_dir().context("cannot read the current folder")?)
                    .context("a connection needs a store: give --store ROOT")?
                    .to_string_lossy()
                    .into_owned(),
            };
            let secret = match (secret_env, secret_file) {
                (Some(var), None) => Some(SecretRef::Env(var)),
                (None, Some(file)) => Some(SecretRef::File(file)),
                (None, None) => None,
                (Some(_), Some(_)) => bail!("give --secret-env or --secret-file, not both"),
            };
            let mut settings = std::collections::BTreeMap::new();
            for setting in store_settings {
                let Some((key, value)) = setting.split_once('=') else {
                    bail!("--store-setting {setting:?}: give KEY=VALUE (aws_endpoint=https://s3.lab.org)");
                };
                settings.insert(key.trim().to_string(), value.to_string());
            }
            let store_secret = match (store_secret_env, store_secret_file) {
                (Some(var), None) => Some(SecretRef::Env(var)),
                (None, Some(file)) => Some(SecretRef::File(file)),
                _ => None,
            };
            connections.add(Connection {
                name: name.clone(),
                store,
                catalog,
                secret,
                store_settings: settings,
                store_secret,
            })?;
            out.line(format!("connection {name} saved in {}", connections.path().display()))?;
        }
        ConnectionsCommand::List { json } => {
            let default = Connections::default_name();
            for c in connections.list() {
                let is_default = default.as_deref() == Some(c.name.as_str());
                if json {
                    out.json(&json!({
                        "name": c.name,
                        "store": c.store,
                        "catalog": c.catalog,
                        "secret": c.secret.as_ref().map(ToString::to_string),
                        "store_settings": c.store_settings,
                        "store_secret": c.store_secret.as_ref().map(ToString::to_string),
                        "default": is_default,
                    }))?;
                } else {
                    let mut line = format!("{}\t{}", c.name, c.store);
                    if let Some(catalog) = &c.catalog {
                        line.push_str(&format!("\tcatalog {catalog}"));
                    }
                    if let Some(secret) = &c.secret {
                        line.push_str(&format!("\tsecret from {secret}"));
                    }
                    for (key, value) in &c.store_settings {
                        line.push_str(&format!("\t{key}={value}"));
                    }
                    if let Some(secret) = &c.store_secret {
                        line.push_str(&format!("\tstore secret from {secret}"));
                    }
                    if is_default {
                        line.push_str("\t(default)");
                    }
                    out.line(line)?;
                }
            }
        }
        ConnectionsCommand::Rm { name } => {
            if !connections.remove(&name)? {
                bail!("no connection named {name:?} in {}", connections.path().display());
            }
            out.line(format!("connection {name} removed"))?;
        }
        ConnectionsCommand::Test { name } => {
            let connection = connections.resolve(Some(&name))?.context("no such connection")?;
            let report = connection.test();
            match &report.store {
                Ok(()) => out.line(format!("store {}: ok", connection.store))?,
                Err(why) => out.line(format!("store {}: FAILED: {why}", connection.store))?,
            }
            match &report.catalog {
                Ok((location, datasets)) => out.line(format!("catalog {location}: ok ({datasets} datasets)"))?,
                Err(why) => out.line(format!("catalog: FAILED: {why}"))?,
            }
            if report.store.is_err() || report.catalog.is_err() {
                bail!("connection {name} does not work (see above)");
            }
        }
    }
    Ok(())
}
