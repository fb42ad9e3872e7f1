//! The small files beside the shards: `meta.json` (the layout and the shard count),
//! `models/<sha256>.onnx` (every model a log or snapshot names), `active-model.json` (the version
//! a restart serves) and `counters.json` (the request counters).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use edgescore_durable::atomic;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
pub struct Meta {
    pub format: u32,
    pub shards: usize,
}

const FORMAT: u32 = 1;

pub fn read_meta(dir: &Path) -> Option<Meta> {
    let bytes = std::fs::read(dir.join("meta.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Writes the meta of a new directory, or checks that of an existing one.
pub fn check_meta(dir: &Path, shards: usize) -> Result<()> {
    let path = dir.join("meta.json");
    if !path.exists() {
        let meta = serde_json::to_vec(&Meta {
            format: FORMAT,
            shards,
        })?;
        return atomic::write(&path, [meta.as_slice()])
            .with_context(|| format!("writing {}", path.display()));
    }
    let Some(meta) = read_meta(dir) else {
        bail!("{}: unreadable", path.display());
    };
    if meta.format != FORMAT {
        bail!(
            "{}: format {} (this edgescore reads format {FORMAT})",
            path.display(),
            meta.format
        );
    }
    if meta.shards != shards {
        bail!(
            "{}: written with {} shards, started with {shards}: users are placed by shard, so \
             start with --shards {} or use another data directory",
            dir.display(),
            meta.shards,
            meta.shards
        );
    }
    Ok(())
}

/// Models by the sha256 of their bytes.
#[derive(Debug, Clone)]
pub struct ModelStore {
    dir: PathBuf,
    /// Shards swap at the same moment: one of them writes the file, the others find it.
    writing: Arc<std::sync::Mutex<()>>,
}

/// The models' key: the registry's own hex sha256.
pub use edgescore_registry::sha256_hex;

impl ModelStore {
    pub fn open(data_dir: &Path) -> Result<ModelStore> {
        let dir = data_dir.join("models");
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        Ok(ModelStore {
            dir,
            writing: Arc::default(),
        })
    }

    fn path(&self, sha256: &str) -> PathBuf {
        self.dir.join(format!("{sha256}.onnx"))
    }

    /// Keeps `onnx` (once); returns its key.
    pub fn put(&self, onnx: &[u8]) -> std::io::Result<String> {
        let sha = sha256_hex(onnx);
        let path = self.path(&sha);
        let _one_writer = self.writing.lock().unwrap_or_else(|p| p.into_inner());
        if !path.exists() {
            atomic::write(&path, [onnx])?;
        }
        Ok(sha)
    }

    /// The model stored under `sha256`, checked against it.
    pub fn get(&self, sha256: &str) -> Result<Arc<[u8]>> {
        let path = self.path(sha256);
        let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
        if sha256_hex(&bytes) != sha256 {
            bail!("{}: its bytes do not match its sha256", path.display());
        }
        Ok(bytes.into())
    }
}

/// The version a restart serves (unless one is pinned).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActiveModel {
    pub version: String,
    pub sha256: String,
}

pub fn read_active(dir: &Path) -> Option<ActiveModel> {
    let bytes = std::fs::read(dir.join("active-model.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

pub fn write_active(dir: &Path, active: &ActiveModel) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(active).map_err(std::io::Error::other)?;
    atomic::write(&dir.join("active-model.json"), [bytes.as_slice()])
}

/// The request counters that are not part of a shard's state, kept every second and at exit.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestCounters {
    pub ingest_requests: u64,
    pub ingest_latency_sum_seconds: f64,
    pub median_requests: u64,
    pub overloaded: u64,
    pub failed: u64,
    /// Events rejected before reaching a shard, by reason index.
    pub front_rejected: Vec<u64>,
}

pub fn read_counters(dir: &Path) -> RequestCounters {
    std::fs::read(dir.join("counters.json"))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

pub fn write_counters(dir: &Path, counters: &RequestCounters) -> std::io::Result<()> {
    let bytes = serde_json::to_vec(counters).map_err(std::io::Error::other)?;
    atomic::write(&dir.join("counters.json"), [bytes.as_slice()])
}
