//! The service's state on disk (`--data-dir`): per shard, a log of every change to its state,
//! appended and synced before a request is answered, and snapshots written off the request path;
//! beside them the models those records name, the active model version and the request counters
//! (the batch jobs keep their own files: `jobs/files.rs`). The directory is locked while a
//! process uses it.
//!
//! - [`record`]: what a shard's log holds; [`snapshot`]: a shard's snapshot file;
//! - [`shard_log`]: a shard's files by generation, and restoring from them;
//! - [`background`]: the snapshot writer and the interval syncer;
//! - [`committer`]: `--durability fsync`'s group commit, off the shard's thread;
//! - [`shard`]: what a shard's thread does with its files;
//! - [`store`]: the small files beside the shards (models, active version, counters, meta).

pub mod background;
pub mod committer;
pub mod record;
pub mod shard;
pub mod shard_log;
pub mod snapshot;
pub mod store;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result};
use edgescore_durable::lock::DirLock;

pub use edgescore_durable::Durability;
pub use store::ModelStore;

/// Where and how durably the service keeps its state.
#[derive(Debug, Clone)]
pub struct DurableConfig {
    pub dir: PathBuf,
    pub durability: Durability,
}

/// An open data directory: locked for this process.
pub struct DataDir {
    pub path: PathBuf,
    pub durability: Durability,
    pub models: ModelStore,
    /// Set when a write or sync of a log failed; cleared when one succeeds again (`/ready`).
    pub failing: Arc<AtomicBool>,
    _lock: DirLock,
}

impl DataDir {
    /// Creates (if needed) and locks `config.dir`; a directory written with another number of
    /// shards is refused (users are placed by shard).
    pub fn open(config: &DurableConfig, shards: usize) -> Result<DataDir> {
        let path = config.dir.clone();
        std::fs::create_dir_all(&path)
            .with_context(|| format!("creating the data directory {}", path.display()))?;
        let lock = DirLock::acquire(&path)?;
        store::check_meta(&path, shards)?;
        Ok(DataDir {
            models: ModelStore::open(&path)?,
            path,
            durability: config.durability,
            failing: Arc::new(AtomicBool::new(false)),
            _lock: lock,
        })
    }

    /// Whether writes fail now. While they do, a write is tried here (a probe file, synced),
    /// so that `/ready` turns healthy by itself once the disk has room again.
    pub fn failing(&self) -> bool {
        if !self.failing.load(Ordering::Relaxed) {
            return false;
        }
        let probe = self.path.join("ready-probe");
        let ok = edgescore_durable::atomic::write(&probe, [&[0u8; 4096][..]]).is_ok();
        let _ = std::fs::remove_file(&probe);
        if ok {
            self.failing.store(false, Ordering::Relaxed);
        }
        !ok
    }
}

/// The shard count a data directory was written with, if it was.
pub fn shards_in(dir: &Path) -> Option<usize> {
    store::read_meta(dir).map(|m| m.shards)
}
