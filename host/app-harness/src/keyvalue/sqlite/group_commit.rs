//! Group commit for the SQLite store: a write is applied and visible as soon as it is committed
//! to the write-ahead log (`synchronous = NORMAL`: no sync on the request path), and a thread of
//! its own makes the log durable with one `fdatasync` for every write applied since the last.
//!
//! Each write gets a number, in the order they were applied. An answer that depends on writes
//! waits ([`GroupCommit::synced`]) until the highest of them is on disk: in `fsync` mode, that
//! is one sync for all the requests in flight, not one per key. Because the log is appended in
//! order and SQLite reads it back up to its first frame that is not whole, a crash keeps a prefix
//! of the writes: only requests not yet answered can lose theirs.
//!
//! A failed sync leaves the store unable to promise anything: every answer still waiting, and
//! every later write, fails with its message until the process restarts (the kernel may have
//! dropped the pages it could not write, so syncing again would prove nothing).

use std::fs::File;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::Duration;

use edgescore_durable::Durability;
use tokio::sync::watch;

pub struct GroupCommit {
    durability: Durability,
    applied: Mutex<u64>,
    /// Wakes the syncer (`fsync` mode) when a write was applied.
    wake: Condvar,
    synced: watch::Sender<Synced>,
}

#[derive(Debug, Clone, Default)]
struct Synced {
    /// Every write numbered up to this one is on disk.
    through: u64,
    /// The sync that failed, if one did.
    failed: Option<String>,
}

/// How long the syncer sleeps between looks at whether it is still needed.
const IDLE: Duration = Duration::from_millis(200);

impl GroupCommit {
    /// Starts the syncer of `log` (the write-ahead log file), unless `durability` is `None`.
    pub fn start(durability: Durability, log: File) -> Arc<GroupCommit> {
        let commit = Arc::new(GroupCommit {
            durability,
            applied: Mutex::new(0),
            wake: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
        });
        if durability != Durability::None {
            let syncer = Arc::downgrade(&commit);
            std::thread::Builder::new()
                .name("edgescore-kv-sync".into())
                .spawn(move || sync_until_dropped(syncer, log))
                .expect("starting the key-value store's syncer");
        }
        commit
    }

    /// Numbers a write that was just committed (its frames are in the log file, in the kernel);
    /// the number to wait for.
    pub fn applied(&self) -> u64 {
        let mut applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        *applied += 1;
        self.wake.notify_one();
        *applied
    }

    /// The number of the last write applied.
    pub fn last_applied(&self) -> u64 {
        *self.applied.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Why writes cannot be made durable any more, if a sync failed.
    pub fn broken(&self) -> Option<String> {
        self.synced.borrow().failed.clone()
    }

    /// Resolves when write `number` and all before it are as durable as promised: on disk in
    /// `fsync` mode, at once in the others. An error if a sync failed first.
    pub async fn synced(&self, number: u64) -> Result<(), String> {
        if self.durability != Durability::Fsync {
            return self.broken().map_or(Ok(()), Err);
        }
        let mut synced = self.synced.subscribe();
        let state = synced
            .wait_for(|s| s.through >= number || s.failed.is_some())
            .await
            .map_err(|_| "the key-value store was closed before its writes were synced")?;
        match &state.failed {
            Some(e) if state.through < number => Err(e.clone()),
            _ => Ok(()),
        }
    }

    /// The next number to sync through, once there is one (`fsync`: as soon as a write is
    /// applied; `interval`: every period). None: look again later.
    fn next(&self) -> Option<u64> {
        let through = self.synced.borrow().through;
        match self.durability {
            Durability::Fsync => {
                let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
                let (applied, _) = self
                    .wake
                    .wait_timeout_while(applied, IDLE, |applied| *applied == through)
                    .unwrap_or_else(|p| p.into_inner());
                (*applied > through).then_some(*applied)
            }
            Durability::Interval(_) | Durability::None => {
                let applied = self.last_applied();
                (applied > through).then_some(applied)
            }
        }
    }

    fn done(&self, through: u64, outcome: std::io::Result<()>) {
        self.synced.send_modify(|s| match outcome {
            Ok(()) => s.through = through,
            Err(e) => {
                tracing::error!(error = %e, "syncing the key-value store's log failed");
                s.failed = Some(format!(
                    "syncing the key-value store's log to the disk failed ({e}): its recent \
                     writes may not survive a power loss; restart the server once the disk is \
                     sound"
                ));
            }
        });
    }
}

/// The syncer's loop: it holds the group commit only while it syncs, and ends once the store is
/// dropped.
fn sync_until_dropped(commit: Weak<GroupCommit>, log: File) {
    loop {
        let Some(c) = commit.upgrade() else { return };
        if c.broken().is_some() {
            return;
        }
        if let Durability::Interval(every) = c.durability {
            drop(c);
            std::thread::sleep(every);
            let Some(c) = commit.upgrade() else { return };
            if let Some(through) = c.next() {
                c.done(through, log.sync_data());
            }
            continue;
        }
        if let Some(through) = c.next() {
            c.done(through, log.sync_data());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn log() -> (tempfile::TempDir, File) {
        let dir = tempfile::tempdir().unwrap();
        let file = File::create(dir.path().join("log")).unwrap();
        (dir, file)
    }

    #[tokio::test]
    async fn an_fsync_answer_waits_for_a_sync_after_its_write() {
        let (_dir, file) = log();
        let commit = GroupCommit::start(Durability::Fsync, file);
        let first = commit.applied();
        let second = commit.applied();
        assert_eq!((first, second), (1, 2));
        commit.synced(second).await.unwrap();
        assert!(commit.synced.borrow().through >= 2);
        // Nothing applied since: nothing to wait for.
        commit.synced(1).await.unwrap();
    }

    #[tokio::test]
    async fn interval_and_none_answer_at_once_and_interval_syncs_later() {
        let (_dir, file) = log();
        let commit = GroupCommit::start(Durability::None, file);
        let n = commit.applied();
        commit.synced(n).await.unwrap();
        assert_eq!(commit.synced.borrow().through, 0, "none never syncs");

        let (_dir, file) = log();
        let commit = GroupCommit::start(Durability::Interval(Duration::from_millis(5)), file);
        let n = commit.applied();
        commit.synced(n).await.unwrap();
        let mut synced = commit.synced.subscribe();
        synced.wait_for(|s| s.through >= n).await.unwrap();
    }

    #[tokio::test]
    async fn a_failed_sync_fails_every_answer_after_it() {
        let (_dir, file) = log();
        let commit = GroupCommit::start(Durability::None, file);
        let n = commit.applied();
        commit.done(n, Err(std::io::Error::other("EIO")));
        let e = commit.synced(n + 1).await.unwrap_err();
        assert!(e.contains("EIO") && e.contains("restart"), "{e}");
        assert!(commit.broken().is_some());
    }
}
