//! `trove.toml`: the file that marks a store root and holds its settings.

use serde::{Deserialize, Serialize};

/// The current on-disk format version. A store with a newer version is refused rather than misread; one
/// with an older version is upgraded when it is opened (`upgrade.rs`). 2: names kept on disk as they are.
pub const FORMAT_VERSION: u32 = 2;

/// The settings in `<root>/trove.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreConfig {
    pub store: StoreSection,
    #[serde(default)]
    pub log: LogSection,
    #[serde(default)]
    pub catalog: CatalogSection,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StoreSection {
    /// On-disk format version.
    pub format_version: u32,
    /// When the store was made (RFC 3339).
    pub created: String,
    /// The store's identity, which a shared catalog records so that it never serves two stores (stores made
    /// before catalogs could be shared get one when they first use one).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogSection {
    /// Flush every commit (and the data it names) to stable storage before a write returns.
    #[serde(default = "yes")]
    pub durable: bool,
    /// Merge the commits into a checkpoint automatically once this many are outside one.
    #[serde(default = "default_compact_after")]
    pub compact_after: usize,
}

impl Default for LogSection {
    fn default() -> Self {
        LogSection { durable: true, compact_after: default_compact_after() }
    }
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CatalogSection {
    /// Catalog URL (`postgres://user@host/db`, never with a password); empty means the embedded SQLite file
    /// `.trove/catalog.sqlite`.
    #[serde(default)]
    pub url: String,
}

fn yes() -> bool {
    true
}

fn default_compact_after() -> usize {
    1000
}

/// `trove.toml` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("trove.toml is not valid: {0}")]
    Parse(String),
    #[error("trove.toml has format version {found}; this trove understands up to {FORMAT_VERSION} (upgrade trove)")]
    TooNew { found: u32 },
}

/// A TOML error on one line, with where it is: the parser's own message spans several lines and quotes the
/// source.
fn one_line(text: &str, e: &toml::de::Error) -> String {
    let message = e.message().trim().replace('\n', " ");
    match e.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

impl StoreConfig {
    pub fn new(created: String) -> StoreConfig {
        StoreConfig {
            store: StoreSection { format_version: FORMAT_VERSION, created, id: String::new() },
            log: LogSection::default(),
            catalog: CatalogSection::default(),
        }
    }

    pub fn parse(text: &str) -> Result<StoreConfig, ConfigError> {
        let config: StoreConfig = toml::from_str(text).map_err(|e| ConfigError::Parse(one_line(text, &e)))?;
        if config.store.format_version > FORMAT_VERSION {
            return Err(ConfigError::TooNew { found: config.store.format_version });
        }
        Ok(config)
    }

    /// `text` (this file as it is, comments and all) with the format version set to the current one.
    pub fn upgraded_text(text: &str) -> String {
        let mut out = String::with_capacity(text.len());
        for line in text.split_inclusive('\n') {
            if line.trim_start().starts_with("format_version") {
                out.push_str(&format!("format_version = {FORMAT_VERSION}\n"));
            } else {
                out.push_str(line);
            }
        }
        out
    }

    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).unwrap_or_default();
        format!("# A trove store. Data lives in the project folders beside this file; metadata in .trove/log.\n{body}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_defaults() {
        let c = StoreConfig::new("2026-01-01T00:00:00Z".into());
        assert_eq!(StoreConfig::parse(&c.to_toml()).unwrap(), c);
        let minimal = StoreConfig::parse("[store]\nformat_version = 1\ncreated = \"x\"\n").unwrap();
        let upgraded = StoreConfig::upgraded_text("# mine\n[store]\nformat_version = 1\ncreated = \"x\"\n");
        assert_eq!(upgraded, format!("# mine\n[store]\nformat_version = {FORMAT_VERSION}\ncreated = \"x\"\n"));
        assert!(minimal.log.durable);
        assert_eq!(minimal.log.compact_after, 1000);
        assert!(matches!(
            StoreConfig::parse("[store]\nformat_version = 99\ncreated = \"x\"\n"),
            Err(ConfigError::TooNew { .. })
        ));
        assert!(StoreConfig::parse("nonsense = [").is_err());
    }
}
