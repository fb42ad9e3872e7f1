//! The work on files that stays off the shards' threads: writing snapshots (and removing the
//! generations they make unneeded), and, with `--durability interval`, the periodic fsync of
//! every shard's log.

use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use edgescore_runtime::Chunks;

use super::shard_log::ShardFiles;
use super::snapshot::{self, SnapshotMeta};

pub struct SnapshotJob {
    pub files: ShardFiles,
    pub meta: SnapshotMeta,
    pub chunks: Arc<Chunks>,
}

/// What the writer reports.
#[derive(Debug, Default)]
pub struct WriterStatus {
    pub written: AtomicU64,
    pub failed: AtomicU64,
    /// Duration of the last snapshot write, in microseconds.
    pub last_write_micros: AtomicU64,
    /// Bytes of the last snapshot written.
    pub last_bytes: AtomicU64,
}

/// The snapshot writer's queue (one thread for every shard: snapshots are rare).
#[derive(Clone)]
pub struct SnapshotWriter {
    queue: mpsc::Sender<SnapshotJob>,
    pub status: Arc<WriterStatus>,
}

impl SnapshotWriter {
    /// `restored`: per shard, the generation it was restored from (the snapshot to keep as the
    /// fallback once a newer one is written).
    pub fn start(restored: HashMap<usize, u64>) -> std::io::Result<SnapshotWriter> {
        let (queue, jobs) = mpsc::channel::<SnapshotJob>();
        let status = Arc::new(WriterStatus::default());
        let report = status.clone();
        std::thread::Builder::new()
            .name("snapshot-writer".into())
            .spawn(move || write_snapshots(jobs, restored, &report))?;
        Ok(SnapshotWriter { queue, status })
    }

    pub fn submit(&self, job: SnapshotJob) {
        let _ = self.queue.send(job);
    }
}

fn write_snapshots(
    jobs: mpsc::Receiver<SnapshotJob>,
    mut previous: HashMap<usize, u64>,
    status: &WriterStatus,
) {
    for job in jobs {
        let started = Instant::now();
        let generation = job.meta.generation;
        let path = job.files.snapshot(generation);
        // The closure bounds the fail point's early `return` (clippy sees only the closure).
        #[allow(clippy::redundant_closure_call)]
        let written = (|| {
            fail::fail_point!("snapshot-write", |_| Err(std::io::Error::other(
                "injected by the snapshot-write fail point"
            )));
            snapshot::write(&path, job.meta, &job.chunks)
        })();
        let micros = started.elapsed().as_micros() as u64;
        let bytes = job.chunks.bytes() as u64;
        // The last copy of the checkpoint in memory (its shard keeps a weak reference): from now
        // on a rebuild reads the file, or, if it could not be written, the one before it.
        drop(job.chunks);
        match written {
            Ok(()) => {
                status.written.fetch_add(1, Ordering::Relaxed);
                status.last_write_micros.store(micros, Ordering::Relaxed);
                status.last_bytes.store(bytes, Ordering::Relaxed);
                tracing::debug!(file = %path.display(), bytes, elapsed_ms = micros as f64 / 1e3, "snapshot written");
                // The previous snapshot stays, to fall back on; what came before it goes.
                let keep_from = previous.insert(job.files.shard, generation).unwrap_or(0);
                if let Err(e) = job.files.prune_before(keep_from) {
                    tracing::warn!(shard = job.files.shard, error = %e, "removing the files of old generations failed; they are removed after the next snapshot");
                }
            }
            Err(e) => {
                status.failed.fetch_add(1, Ordering::Relaxed);
                // Nothing is lost: the logs since the last snapshot written stay.
                tracing::error!(file = %path.display(), error = %e, "writing a snapshot failed; the logs it would cover are kept");
            }
        }
    }
}

/// `--durability interval`: every shard's log synced every `every`. A failed sync is reported
/// through `failed` (and `/ready`).
pub fn start_syncer(
    handles: Vec<Arc<Mutex<Option<File>>>>,
    every: Duration,
    failed: Arc<AtomicBool>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name("log-syncer".into())
        .spawn(move || {
            loop {
                std::thread::sleep(every);
                for handle in &handles {
                    let file = handle.lock().unwrap_or_else(|p| p.into_inner());
                    if let Some(file) = file.as_ref()
                        && let Err(e) = file.sync_data()
                    {
                        failed.store(true, Ordering::Relaxed);
                        tracing::error!(error = %e, "syncing a shard's log failed");
                    }
                }
            }
        })?;
    Ok(())
}
