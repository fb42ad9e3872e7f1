//! Group commit for the SQLite store: the numbers of its writes, in the order they were applied
//! (to the copy in memory), and how far they are written to the file. An answer that depends on
//! writes waits ([`GroupCommit::synced`]) until the highest of them is: committed to the file in
//! every mode, and synced to the disk in `fsync` mode. The flusher (`flusher.rs`) writes all the
//! writes applied since its last in one transaction and syncs once for them: one sync for all
//! the requests in flight, not one per key. A crash keeps a prefix of the writes: only requests
//! not yet answered can lose theirs.
//!
//! A failed sync leaves the store unable to promise anything: every answer still waiting, and
//! every later write, fails with its message until the process restarts (the kernel may have
//! dropped the pages it could not write, so syncing again would prove nothing).

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use edgescore_durable::Durability;
use tokio::sync::watch;

pub struct GroupCommit {
    pub durability: Durability,
    applied: Mutex<u64>,
    /// Wakes the flusher when a write was applied.
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

impl GroupCommit {
    pub fn new(durability: Durability) -> Arc<GroupCommit> {
        Arc::new(GroupCommit {
            durability,
            applied: Mutex::new(0),
            wake: Condvar::new(),
            synced: watch::Sender::new(Synced::default()),
        })
    }

    /// Numbers a write that was just applied; the number to wait for.
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

    /// Resolves when write `number` and all before it are as durable as promised: in the file in
    /// every mode, on disk too in `fsync` mode. An error if writing them failed first.
    pub async fn synced(&self, number: u64) -> Result<(), String> {
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

    /// The number of the last write applied once it is past the last written (waiting at most
    /// `wait`); none if there is nothing new.
    pub fn next(&self, wait: Duration) -> Option<u64> {
        let through = self.synced.borrow().through;
        let applied = self.applied.lock().unwrap_or_else(|p| p.into_inner());
        let (applied, _) = self
            .wake
            .wait_timeout_while(applied, wait, |applied| *applied == through)
            .unwrap_or_else(|p| p.into_inner());
        (*applied > through).then_some(*applied)
    }

    /// The writes up to `through` are as durable as promised, or failed to be.
    pub fn done(&self, through: u64, outcome: Result<(), String>) {
        self.synced.send_modify(|s| match outcome {
            Ok(()) => s.through = through,
            Err(e) => {
                tracing::error!(error = %e, "writing the key-value store's file failed");
                s.failed = Some(format!(
                    "writing the key-value store's file failed ({e}): its recent writes may not \
                     survive a restart; restart the server once the disk is sound"
                ));
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_answer_waits_until_its_writes_are_done() {
        let commit = GroupCommit::new(Durability::Fsync);
        let (first, second) = (commit.applied(), commit.applied());
        assert_eq!((first, second), (1, 2));
        assert_eq!(commit.next(Duration::ZERO), Some(2));
        let waiting = {
            let commit = commit.clone();
            tokio::spawn(async move { commit.synced(second).await })
        };
        commit.done(1, Ok(()));
        tokio::task::yield_now().await;
        assert!(!waiting.is_finished(), "write 2 is not done yet");
        commit.done(2, Ok(()));
        waiting.await.unwrap().unwrap();
        assert_eq!(commit.next(Duration::from_millis(1)), None, "nothing new");
    }

    #[tokio::test]
    async fn a_failed_write_fails_every_answer_after_it() {
        let commit = GroupCommit::new(Durability::None);
        let n = commit.applied();
        commit.done(n, Err("EIO".into()));
        let e = commit.synced(n + 1).await.unwrap_err();
        assert!(e.contains("EIO") && e.contains("restart"), "{e}");
        assert!(commit.broken().is_some());
        // What was done before the failure stays done.
        commit.synced(0).await.unwrap();
    }
}
