//! A shard's files: snapshots and logs by generation. Snapshot `g` holds the state before the
//! records of log `g`; generation 0 has no snapshot (the empty state). A checkpoint starts log
//! `g + 1` and writes snapshot `g + 1` off the shard's thread; once it is written, the files of
//! the generations before the previous snapshot go — the previous snapshot and its logs stay, to
//! fall back on if the newest is found corrupt.
//!
//! On start the newest snapshot that reads whole is restored and every log from its generation
//! on replayed, in order; a torn tail of a log is cut at its last whole record, and said.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use edgescore_durable::log::{self, Log, Opened};
use edgescore_runtime::Chunks;

use super::record::{Record, RecordRef};
use super::snapshot::{self, SnapshotMeta};

/// Where one shard's files are.
#[derive(Debug, Clone)]
pub struct ShardFiles {
    pub shard: usize,
    dir: PathBuf,
}

impl ShardFiles {
    pub fn new(data_dir: &Path, shard: usize) -> io::Result<ShardFiles> {
        let dir = data_dir.join("shards").join(shard.to_string());
        std::fs::create_dir_all(&dir)?;
        Ok(ShardFiles { shard, dir })
    }

    pub fn snapshot(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("snapshot-{generation:012}"))
    }

    pub fn log(&self, generation: u64) -> PathBuf {
        self.dir.join(format!("log-{generation:012}"))
    }

    /// The generations of the snapshots and of the logs present, ascending. Temporaries of
    /// snapshots a crash interrupted are removed.
    fn list(&self) -> io::Result<(Vec<u64>, Vec<u64>)> {
        let (mut snapshots, mut logs) = (Vec::new(), Vec::new());
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if name.ends_with(".tmp") {
                std::fs::remove_file(entry.path())?;
            } else if let Some(g) = name.strip_prefix("snapshot-") {
                snapshots.extend(g.parse::<u64>().ok());
            } else if let Some(g) = name.strip_prefix("log-") {
                logs.extend(g.parse::<u64>().ok());
            }
        }
        snapshots.sort_unstable();
        logs.sort_unstable();
        Ok((snapshots, logs))
    }

    /// Removes the snapshots and logs of generations before `generation`.
    pub fn prune_before(&self, generation: u64) -> io::Result<()> {
        let (snapshots, logs) = self.list()?;
        for g in snapshots.into_iter().filter(|g| *g < generation) {
            std::fs::remove_file(self.snapshot(g))?;
        }
        for g in logs.into_iter().filter(|g| *g < generation) {
            std::fs::remove_file(self.log(g))?;
        }
        Ok(())
    }

    /// The newest snapshot of generation `upto` or older that reads whole (none: generation 0's
    /// empty state, while its log remains): what a rebuild starts from once the checkpoint is
    /// no longer in memory. Falls back past a snapshot that could not be written or read, as a
    /// start does; the logs after the one it returns are all still here, since the files of a
    /// generation go only once two newer snapshots are written.
    pub fn base_upto(
        &self,
        upto: u64,
    ) -> Result<Option<(SnapshotMeta, Arc<Chunks>)>, RestoreError> {
        let (snapshots, logs) = self
            .list()
            .map_err(|e| RestoreError::new(self.dir.clone(), e.to_string()))?;
        for generation in snapshots.into_iter().rev().filter(|g| *g <= upto) {
            let path = self.snapshot(generation);
            match snapshot::read(&path) {
                Ok(base) => return Ok(Some(base)),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "a snapshot cannot be used for a rebuild; falling back to the one before it and its longer log");
                }
            }
        }
        if logs.first() == Some(&0) {
            return Ok(None);
        }
        Err(RestoreError::new(
            self.dir.clone(),
            format!(
                "no snapshot of generation {upto} or older reads whole, and generation 0's log is gone"
            ),
        ))
    }

    fn sync_folder(&self) -> io::Result<()> {
        File::open(&self.dir)?.sync_all()
    }
}

/// What a shard restarts from: a snapshot, and the logs after it, checked and open (their
/// records are read when they are replayed, one file at a time).
pub struct Restored {
    /// The snapshot restored (none: the empty state of generation 0).
    pub base: Option<(SnapshotMeta, Arc<Chunks>)>,
    /// The newest log, open for appending.
    pub log: ShardLog,
}

impl Restored {
    pub fn generation(&self) -> u64 {
        self.base.as_ref().map_or(0, |(meta, _)| meta.generation)
    }

    /// Where the records after the base begin: every log's from the base's generation on.
    pub fn since(&self) -> LogMark {
        LogMark {
            generation: self.generation(),
            offset: 0,
        }
    }
}

/// Why a shard cannot start from its files: one line naming the file.
#[derive(Debug, thiserror::Error)]
#[error("{}: {reason}", path.display())]
pub struct RestoreError {
    pub path: PathBuf,
    pub reason: String,
}

impl RestoreError {
    fn new(path: PathBuf, reason: impl Into<String>) -> RestoreError {
        RestoreError {
            path,
            reason: reason.into(),
        }
    }
}

/// Finds the newest snapshot that reads whole and the logs that follow it; falls back to an
/// older snapshot (and its longer log) when one is corrupt.
pub fn restore(files: ShardFiles) -> Result<Restored, RestoreError> {
    let (snapshots, logs) = files.list().map_err(|e| io_error(&files.dir, e))?;
    let fresh = snapshots.is_empty() && logs.is_empty();
    // Newest first; generation 0 (the empty state) only while its log exists.
    let mut candidates: Vec<u64> = snapshots.iter().rev().copied().collect();
    if fresh || logs.first() == Some(&0) {
        candidates.push(0);
    }
    let newest_log = logs.last().copied().unwrap_or(0);
    let mut refused: Option<RestoreError> = None;
    for generation in candidates {
        let base = if generation == 0 {
            None
        } else {
            let path = files.snapshot(generation);
            match snapshot::read(&path) {
                Ok(base) => Some(base),
                Err(e) => {
                    tracing::error!(file = %path.display(), error = %e, "a snapshot cannot be used; falling back to the one before it and its longer log");
                    refused.get_or_insert(RestoreError::new(path, e.to_string()));
                    continue;
                }
            }
        };
        let last = newest_log.max(generation);
        if let Some(missing) = (generation..=last).find(|g| !fresh && !logs.contains(g)) {
            let path = files.log(missing);
            tracing::error!(file = %path.display(), "a log the snapshot needs is missing");
            refused.get_or_insert(RestoreError::new(
                path,
                "missing: the records after the snapshot are not all here",
            ));
            continue;
        }
        let log = open_logs(&files, generation, last)?;
        return Ok(Restored { base, log });
    }
    Err(refused.map_or_else(
        || RestoreError::new(files.dir.clone(), "no snapshot and no log to start from"),
        |e| RestoreError {
            reason: format!(
                "{}; no older snapshot with its logs remains (move the shard's folder away to start it empty)",
                e.reason
            ),
            ..e
        },
    ))
}

fn io_error(path: &Path, e: io::Error) -> RestoreError {
    RestoreError::new(path.to_path_buf(), e.to_string())
}

/// Opens the logs of generations `first..=last`, each cut at its last whole record (a write cut
/// short by a crash, said in a warning); returns the last, open for appending.
fn open_logs(files: &ShardFiles, first: u64, last: u64) -> Result<ShardLog, RestoreError> {
    let mut open = None;
    for g in first..=last {
        let path = files.log(g);
        let Opened { log, cut, .. } = Log::open(&path).map_err(|e| io_error(&path, e))?;
        if let Some(cut) = cut {
            tracing::warn!(
                file = %path.display(),
                at_byte = cut.at,
                bytes_cut = cut.bytes,
                tail = ?cut.tail,
                "the log's tail was not a whole record (a write cut short by a crash): cut at the last whole record"
            );
        }
        open = Some(log);
    }
    let log = open.expect("at least one log");
    files.sync_folder().map_err(|e| io_error(&files.dir, e))?;
    ShardLog::new(files.clone(), last, log).map_err(|e| io_error(Path::new("log"), e))
}

/// A place in a shard's logs: the records after it are those of log `generation` from byte
/// `offset` on, then those of every later log.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct LogMark {
    pub generation: u64,
    pub offset: u64,
}

/// The log a shard appends to now.
pub struct ShardLog {
    pub files: ShardFiles,
    generation: u64,
    log: Log,
    buffer: Vec<u8>,
    /// A handle on the log for `--durability interval`'s syncer, replaced when the log rotates.
    sync_handle: Arc<Mutex<Option<File>>>,
}

impl ShardLog {
    fn new(files: ShardFiles, generation: u64, log: Log) -> io::Result<ShardLog> {
        let handle = log.sync_handle()?;
        Ok(ShardLog {
            files,
            generation,
            log,
            buffer: Vec::new(),
            sync_handle: Arc::new(Mutex::new(Some(handle))),
        })
    }

    /// Writes one record (durable after [`ShardLog::sync`]).
    pub fn append(&mut self, record: &RecordRef<'_>) -> io::Result<()> {
        record.encode(&mut self.buffer);
        self.log.append(&self.buffer)
    }

    /// Bytes of whole records in the log now (a mark to [`ShardLog::truncate`] back to).
    pub fn bytes(&self) -> u64 {
        self.log.len()
    }

    /// Takes back what was appended after `len` (records that could not be made durable).
    pub fn truncate(&mut self, len: u64) -> io::Result<()> {
        self.log.truncate(len)
    }

    pub fn sync(&mut self) -> io::Result<()> {
        self.log.sync()
    }

    /// Where the next record will go.
    pub fn mark(&self) -> LogMark {
        LogMark {
            generation: self.generation,
            offset: self.log.len(),
        }
    }

    /// Hands `apply` every record written after `since`, in order, one log file at a time (the
    /// bytes of one file in memory, never the decoded records of all).
    pub fn replay_since<E>(
        &self,
        since: LogMark,
        mut apply: impl FnMut(Record) -> Result<(), E>,
    ) -> Result<(), E>
    where
        E: From<io::Error>,
    {
        for generation in since.generation..=self.generation {
            let from = if generation == since.generation {
                since.offset
            } else {
                0
            };
            let to = (generation == self.generation).then(|| self.log.len());
            let path = self.files.log(generation);
            for bytes in log::read_range(&path, from, to)? {
                let record = Record::decode(&bytes).map_err(|e| {
                    io::Error::new(
                        io::ErrorKind::InvalidData,
                        format!("{}: a record does not decode ({e})", path.display()),
                    )
                })?;
                apply(record)?;
            }
        }
        Ok(())
    }

    pub fn sync_handle(&self) -> Arc<Mutex<Option<File>>> {
        self.sync_handle.clone()
    }

    /// Starts the next generation's log (the current one synced first); returns its generation,
    /// the snapshot's to write.
    pub fn rotate(&mut self) -> io::Result<u64> {
        self.log.sync()?;
        let next = self.generation + 1;
        let opened = Log::open(&self.files.log(next))?;
        self.files.sync_folder()?;
        let handle = opened.log.sync_handle()?;
        self.log = opened.log;
        self.generation = next;
        *self.sync_handle.lock().unwrap_or_else(|p| p.into_inner()) = Some(handle);
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::snapshot::ShardTotals;

    fn advance(log: &mut ShardLog, w: f64) {
        log.append(&RecordRef::Advance { watermark: w }).unwrap();
        log.sync().unwrap();
    }

    /// The watermarks of the records a restart replays.
    fn watermarks(restored: &Restored) -> Vec<f64> {
        let mut found = Vec::new();
        restored
            .log
            .replay_since(restored.since(), |record| {
                match record {
                    Record::Advance { watermark } => found.push(watermark),
                    other => panic!("{other:?}"),
                }
                Ok::<_, io::Error>(())
            })
            .unwrap();
        found
    }

    fn snapshot_at(files: &ShardFiles, generation: u64) {
        let meta = SnapshotMeta::new(
            0,
            generation,
            "m".into(),
            "sha".into(),
            None,
            ShardTotals::default(),
        );
        let chunks = Chunks {
            header: vec![generation as u8],
            users: vec![],
        };
        snapshot::write(&files.snapshot(generation), meta, &chunks).unwrap();
    }

    #[test]
    fn restores_the_newest_snapshot_and_the_logs_after_it() {
        let dir = tempfile::tempdir().unwrap();
        let files = ShardFiles::new(dir.path(), 0).unwrap();
        let mut log = restore(files.clone()).unwrap().log;
        advance(&mut log, 1.0);
        let g = log.rotate().unwrap();
        snapshot_at(&files, g);
        advance(&mut log, 2.0);
        drop(log);
        let restored = restore(files.clone()).unwrap();
        assert_eq!(restored.generation(), 1);
        assert_eq!(watermarks(&restored), vec![2.0]);
    }

    #[test]
    fn a_corrupt_snapshot_falls_back_to_the_previous_one_and_the_longer_log() {
        let dir = tempfile::tempdir().unwrap();
        let files = ShardFiles::new(dir.path(), 0).unwrap();
        let mut log = restore(files.clone()).unwrap().log;
        advance(&mut log, 1.0);
        snapshot_at(&files, log.rotate().unwrap());
        advance(&mut log, 2.0);
        snapshot_at(&files, log.rotate().unwrap());
        advance(&mut log, 3.0);
        drop(log);
        std::fs::write(files.snapshot(2), b"garbage").unwrap();
        let restored = restore(files.clone()).unwrap();
        assert_eq!(restored.generation(), 1);
        assert_eq!(watermarks(&restored), vec![2.0, 3.0]);
        // Snapshot 1 gone too, and its log: generation 0's log still holds everything.
        std::fs::write(files.snapshot(1), b"garbage").unwrap();
        let restored = restore(files.clone()).unwrap();
        assert_eq!(restored.generation(), 0);
        assert_eq!(watermarks(&restored), vec![1.0, 2.0, 3.0]);
        drop(restored);
        files.prune_before(1).unwrap();
        let refused = restore(files.clone()).err().unwrap().to_string();
        assert!(
            refused.contains("snapshot-000000000002: it is corrupt"),
            "{refused}"
        );
        assert!(refused.contains("no older snapshot"), "{refused}");
    }
}
