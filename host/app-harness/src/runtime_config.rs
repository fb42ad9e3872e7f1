//! Spin's runtime-config file (`spin up --runtime-config-file`), the part `serve-app` serves:
//! where each key-value store is kept.
//!
//! ```toml
//! [key_value_store.default]
//! type = "redis"
//! url = "redis://127.0.0.1:6379"
//!
//! [key_value_store.archive]
//! type = "spin"                 # Spin's default store: a SQLite file
//! path = "archive.sqlite"       # relative to this file's folder
//! ```
//!
//! Other sections (variables providers, SQLite databases, ...) are Spin's; they are named in a
//! warning and left alone.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

use crate::keyvalue::StoreBackend;

#[derive(Debug, Deserialize)]
struct File {
    #[serde(default)]
    key_value_store: BTreeMap<String, Store>,
    #[serde(flatten)]
    other: BTreeMap<String, toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum Store {
    Redis { url: String },
    Spin { path: Option<PathBuf> },
}

/// The stores a runtime-config file names, and the sections of it this host does not serve.
#[derive(Debug, PartialEq, Eq)]
pub struct RuntimeConfig {
    pub stores: BTreeMap<String, StoreBackend>,
    pub ignored: Vec<String>,
}

impl RuntimeConfig {
    /// Reads `path`; a `spin` store without a `path` is kept in `default_sqlite`.
    pub fn read(path: &Path, default_sqlite: &Path) -> Result<RuntimeConfig> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading the runtime config {}", path.display()))?;
        let folder = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, folder, default_sqlite)
            .with_context(|| format!("runtime config {}", path.display()))
    }

    /// `text`, with relative paths taken from `folder`.
    pub fn parse(text: &str, folder: &Path, default_sqlite: &Path) -> Result<RuntimeConfig> {
        let file: File = toml::from_str(text).map_err(|e| anyhow::anyhow!("{}", e.message()))?;
        let stores = file
            .key_value_store
            .into_iter()
            .map(|(name, store)| {
                let backend = match store {
                    Store::Redis { url } => StoreBackend::Redis(url),
                    Store::Spin { path: Some(path) } => StoreBackend::Sqlite(folder.join(path)),
                    Store::Spin { path: None } => StoreBackend::Sqlite(default_sqlite.into()),
                };
                (name, backend)
            })
            .collect();
        Ok(RuntimeConfig {
            stores,
            ignored: file.other.into_keys().collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<RuntimeConfig> {
        RuntimeConfig::parse(
            text,
            Path::new("/etc/app"),
            Path::new("/data/app-store.sqlite"),
        )
    }

    #[test]
    fn reads_redis_and_spin_stores() {
        let config = parse(
            r#"
            [key_value_store.default]
            type = "redis"
            url = "redis://10.0.0.5:6379/2"

            [key_value_store.archive]
            type = "spin"
            path = "archive.sqlite"

            [key_value_store.local]
            type = "spin"

            [variables_provider]
            type = "vault"
            "#,
        )
        .unwrap();
        assert_eq!(
            config.stores["default"],
            StoreBackend::Redis("redis://10.0.0.5:6379/2".into())
        );
        assert_eq!(
            config.stores["archive"],
            StoreBackend::Sqlite("/etc/app/archive.sqlite".into())
        );
        assert_eq!(
            config.stores["local"],
            StoreBackend::Sqlite("/data/app-store.sqlite".into())
        );
        assert_eq!(config.ignored, ["variables_provider"]);
    }

    #[test]
    fn refuses_what_it_cannot_serve_naming_it() {
        let unknown = parse("[key_value_store.default]\ntype = \"azure_cosmos\"\n").unwrap_err();
        assert!(
            format!("{unknown:#}").contains("azure_cosmos"),
            "{unknown:#}"
        );
        let typo = parse("[key_value_store.default]\ntype = \"redis\"\nuri = \"redis://x\"\n")
            .unwrap_err();
        assert!(format!("{typo:#}").contains("uri"), "{typo:#}");
        let no_url = parse("[key_value_store.default]\ntype = \"redis\"\n").unwrap_err();
        assert!(format!("{no_url:#}").contains("url"), "{no_url:#}");
    }
}
