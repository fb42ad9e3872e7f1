//! The flusher: a thread that writes the changes applied to the copy in memory into the SQLite
//! file, all those since its last pass in one transaction, then syncs the write-ahead log once
//! (`fsync` mode; `interval`: at most every period; `none`: never, the kernel writes back), and
//! tells the waiting answers ([`GroupCommit::done`]).
//!
//! A pass that finds the disk full releases the reserve and tries once more; a pass that fails
//! again leaves the store broken: its changes are not in the file, so every waiting answer and
//! every later write fails until the process restarts.

use std::collections::HashMap;
use std::fs::File;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use edgescore_durable::Durability;
use rusqlite::{Connection, TransactionBehavior};

use super::reserve::Reserve;
use super::{GroupCommit, delete, set};
use crate::keyvalue::memory::{Key, Memory};

/// How long the flusher waits for a write before it looks again whether it is still needed.
const IDLE: Duration = Duration::from_millis(100);

pub struct Flusher {
    file: Arc<Mutex<Disk>>,
}

/// The file's connection and its log, and when the log was last synced.
struct Disk {
    connection: Connection,
    log: File,
    commit: Arc<GroupCommit>,
    reserve: Arc<Reserve>,
    synced_at: Instant,
}

impl Flusher {
    pub fn start(
        connection: Connection,
        log: File,
        copy: Weak<Memory>,
        commit: Arc<GroupCommit>,
        reserve: Arc<Reserve>,
    ) -> Flusher {
        let file = Arc::new(Mutex::new(Disk {
            connection,
            log,
            commit,
            reserve,
            synced_at: Instant::now(),
        }));
        let flushing = Arc::downgrade(&file);
        std::thread::Builder::new()
            .name("edgescore-kv-flush".into())
            .spawn(move || flush_until_dropped(&flushing, &copy))
            .expect("starting the key-value store's flusher");
        Flusher { file }
    }

    /// Writes what is left now (the store is being dropped).
    pub fn flush_now(&self, copy: &Memory) {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        file.pass(copy, true);
    }
}

fn flush_until_dropped(file: &Weak<Mutex<Disk>>, copy: &Weak<Memory>) {
    loop {
        let Some(file) = file.upgrade() else { return };
        let commit = file
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .commit
            .clone();
        if commit.broken().is_some() {
            return;
        }
        let wait = match commit.durability {
            Durability::Interval(every) => every.min(IDLE),
            _ => IDLE,
        };
        let due = commit.next(wait).is_some();
        let Some(copy) = copy.upgrade() else { return };
        let mut file = file.lock().unwrap_or_else(|p| p.into_inner());
        if due {
            file.pass(&copy, false);
        } else {
            file.sync_if_due();
        }
    }
}

impl Disk {
    /// Writes every change noted so far, syncs as the durability says (`sync`: in any mode),
    /// and says so.
    fn pass(&mut self, copy: &Memory, sync: bool) {
        let (changes, through) = copy.take_changes();
        if changes.is_empty() {
            // Writes of nothing (an empty `set-many`) are numbered too: done.
            self.commit.done(through, Ok(()));
            return;
        }
        let mut written = self.write(&changes);
        if written
            .as_ref()
            .is_err_and(|e| e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull))
        {
            self.reserve.disk_full();
            written = self.write(&changes);
        }
        let outcome = written.map_err(|e| e.to_string()).and_then(|()| {
            if sync || self.commit.durability == Durability::Fsync {
                self.sync()
            } else {
                Ok(())
            }
        });
        self.commit.done(through, outcome);
        self.sync_if_due();
    }

    fn write(&mut self, changes: &HashMap<Key, Option<Vec<u8>>>) -> rusqlite::Result<()> {
        let t = self
            .connection
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for ((store, key), value) in changes {
            match value {
                Some(value) => set(&t, store, key, value)?,
                None => delete(&t, store, key)?,
            }
        }
        t.commit()
    }

    fn sync(&mut self) -> Result<(), String> {
        self.synced_at = Instant::now();
        self.log.sync_data().map_err(|e| e.to_string())
    }

    /// `interval`: syncs the log once the period has passed since the last sync.
    fn sync_if_due(&mut self) {
        if let Durability::Interval(every) = self.commit.durability
            && self.synced_at.elapsed() >= every
            && let Err(e) = self.sync()
        {
            self.commit.done(0, Err(e));
        }
    }
}
