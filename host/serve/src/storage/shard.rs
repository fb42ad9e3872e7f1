//! What a shard's thread does with its files: every change to its state appended to its log,
//! synced before the answers go out (`--durability fsync`: by the shard's committer, while the
//! shard scores on), and taken back when that fails so that nothing unacknowledged is ever
//! replayed; its checkpoints handed to the snapshot writer.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use edgescore_runtime::{Chunks, GuestEvent};

use super::background::{SnapshotJob, SnapshotWriter};
use super::committer::{Committer, Done};
use super::record::RecordRef;
use super::shard_log::ShardLog;
use super::snapshot::{ShardTotals, SnapshotMeta};
use super::{Durability, ModelStore};

pub struct ShardDurable {
    pub log: ShardLog,
    pub durability: Durability,
    pub writer: SnapshotWriter,
    pub models: ModelStore,
    /// What the shard has counted, as of its last record.
    pub totals: ShardTotals,
    /// What it had counted at its last checkpoint (where a rebuild counts from).
    pub checkpoint_totals: ShardTotals,
    /// `--durability fsync`'s group commit (none in the other modes: answers go at once).
    pub committer: Option<Committer>,
    /// The store's key of the model scoring now.
    pub model_sha256: String,
    pub failing: Arc<AtomicBool>,
}

impl ShardDurable {
    /// Logs one component call's recorded events; on failure nothing of them is in the log.
    /// With a committer they are durable once [`ShardDurable::after_sync`] says so; otherwise
    /// as `durability` says, now.
    pub fn ingested(
        &mut self,
        events: &[GuestEvent],
        now: f64,
        rejected: &[(u8, u32)],
        version: &str,
    ) -> io::Result<()> {
        self.commit(&RecordRef::Ingest {
            now,
            events,
            rejected,
        })?;
        self.totals.count(version, events.len() as u64, rejected);
        Ok(())
    }

    /// Logs an advance of the engine's watermark (made durable with the next call's records).
    pub fn advanced(&mut self, watermark: f64) -> io::Result<()> {
        self.write(&RecordRef::Advance { watermark }, false)
    }

    /// Calls `done` once everything logged so far is durable (with a committer: once synced;
    /// otherwise now), or with why it cannot be.
    pub fn after_sync(&self, done: Done) {
        match &self.committer {
            Some(committer) => committer.commit(self.log.mark(), done),
            None => done(Ok(())),
        }
    }

    /// Waits until every call handed to the committer is answered; the failure, if a sync
    /// failed (the shard must then cut back and rebuild: [`ShardDurable::take_failed_sync`]).
    pub fn flush(&self) -> io::Result<()> {
        match &self.committer {
            Some(committer) => committer.flush().map_err(io::Error::other),
            None => Ok(()),
        }
    }

    /// After a failed sync: the log cut back to its last synced byte, so that nothing it may
    /// not hold is ever replayed; returns why the sync failed. The shard must rebuild.
    pub fn take_failed_sync(&mut self) -> Option<String> {
        let (durable, reason) = self.committer.as_ref()?.take_failure()?;
        self.fail();
        if durable.generation == self.log.mark().generation
            && let Err(e) = self.log.truncate(durable.offset)
        {
            tracing::error!(error = %e, "cutting the log back to its last synced record failed");
        }
        Some(reason)
    }

    /// Logs a swap to `onnx` (kept in the model store first), durably whatever the mode.
    pub fn swapped(&mut self, version: &str, onnx: &[u8]) -> io::Result<()> {
        // What the committer has not synced yet must not ride on this record's sync.
        self.flush()?;
        let sha = self.models.put(onnx).inspect_err(|_| self.fail())?;
        self.write(
            &RecordRef::Swap {
                version,
                model_sha256: &sha,
            },
            true,
        )?;
        if let Some(committer) = &self.committer {
            committer.synced_to(self.log.mark());
        }
        self.model_sha256 = sha;
        Ok(())
    }

    fn commit(&mut self, record: &RecordRef<'_>) -> io::Result<()> {
        let sync_now = self.durability == Durability::Fsync && self.committer.is_none();
        self.write(record, sync_now)
    }

    /// Appends `record` and syncs it if `sync`; takes it back on failure.
    fn write(&mut self, record: &RecordRef<'_>, sync: bool) -> io::Result<()> {
        let mark = self.log.bytes();
        let written = (|| {
            fail::fail_point!("log-write", |_| Err(io::Error::other(
                "injected by the log-write fail point"
            )));
            self.log.append(record)?;
            if sync {
                self.log.sync()?;
            }
            Ok(())
        })();
        match written {
            Ok(()) => {
                self.failing.store(false, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                // After a failed fsync the page cache's state is unknown: the record goes.
                if let Err(cut) = self.log.truncate(mark) {
                    tracing::error!(error = %cut, "taking back a record that could not be made durable failed");
                }
                self.fail();
                Err(e)
            }
        }
    }

    fn fail(&self) {
        self.failing.store(true, Ordering::Relaxed);
    }

    /// Starts the next log and has `chunks` (a checkpoint of everything logged so far) written
    /// as its snapshot, off this thread.
    pub fn snapshot(
        &mut self,
        chunks: Arc<Chunks>,
        version: &str,
        watermark: Option<f64>,
    ) -> io::Result<()> {
        // The closure bounds the fail point's early `return` (clippy sees only the closure).
        #[allow(clippy::redundant_closure_call)]
        let rotated = (|| {
            fail::fail_point!("log-rotate", |_| Err(io::Error::other(
                "injected by the log-rotate fail point"
            )));
            self.log.rotate()
        })();
        let generation = rotated.inspect_err(|_| self.fail())?;
        if let Some(committer) = &self.committer {
            committer.synced_to(self.log.mark());
        }
        let meta = SnapshotMeta::new(
            self.log.files.shard,
            generation,
            version.to_owned(),
            self.model_sha256.clone(),
            watermark,
            self.totals.clone(),
        );
        self.writer.submit(SnapshotJob {
            files: self.log.files.clone(),
            meta,
            chunks,
        });
        Ok(())
    }
}
