//! The SQLite backend: what `spin up` keeps its default store in, with Spin's table
//! (`spin_key_value`), so that the same file serves either.
//!
//! One connection writes, behind a lock, so every write is applied in order and compare-and-swap
//! compares and writes in one `BEGIN IMMEDIATE` transaction. A write returns once committed to
//! the write-ahead log, visible to every reader; [`group_commit`] makes it durable, one
//! `fdatasync` for all the writes in flight, and the harness holds each answer until the writes
//! it depends on are (`fsync` mode). Reads never wait for the writer: `get` and `get-many` use
//! the writer's connection when it is free (its page cache is never stale), else a connection of
//! their own, which the writer does not block (WAL mode). The log is checkpointed every 4,000
//! pages (16 MiB) rather than SQLite's 1,000: fewer checkpoints in the writer's way.
//!
//! Every write error is a refusal: its transaction was rolled back, nothing of it was done. A
//! full disk releases the room kept for taking back ([`reserve`]).

mod group_commit;
mod reserve;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use edgescore_durable::Durability;
use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

pub use group_commit::GroupCommit;

use super::{Backend, BackendError};

pub struct Sqlite {
    path: PathBuf,
    writer: Mutex<Connection>,
    /// Idle read connections (one is opened when none is idle).
    readers: Mutex<Vec<Connection>>,
    commit: Arc<GroupCommit>,
    reserve: reserve::Reserve,
}

/// Idle read connections kept at most.
const IDLE_READERS: usize = 16;

fn failed(e: rusqlite::Error) -> BackendError {
    BackendError::new(format!("sqlite: {e}"))
}

fn refused(e: rusqlite::Error) -> BackendError {
    BackendError::refused(format!("sqlite: {e}"))
}

fn connect(path: &Path) -> Result<Connection, BackendError> {
    let connection = Connection::open(path)
        .map_err(|e| BackendError::new(format!("{}: {e}", path.display())))?;
    connection
        .execute_batch(
            "PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;
             PRAGMA busy_timeout = 5000;
             PRAGMA wal_autocheckpoint = 4000;
",
        )
        .map_err(|e| BackendError::new(format!("{}: {e}", path.display())))?;
    Ok(connection)
}

impl Sqlite {
    pub fn open(path: &Path, durability: Durability) -> Result<Sqlite, BackendError> {
        let writer = connect(path)?;
        writer
            .execute_batch(
                "CREATE TABLE IF NOT EXISTS spin_key_value (
                     store TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value BLOB NOT NULL,
                     PRIMARY KEY (store, key)
                 );",
            )
            .map_err(|e| BackendError::new(format!("{}: {e}", path.display())))?;
        let log = write_ahead_log(path)
            .map_err(|e| BackendError::new(format!("{}-wal: {e}", path.display())))?;
        Ok(Sqlite {
            path: path.to_path_buf(),
            writer: Mutex::new(writer),
            readers: Mutex::new(Vec::new()),
            commit: GroupCommit::start(durability, log),
            reserve: reserve::Reserve::keep(path),
        })
    }

    /// Runs `write` in a transaction on the writer (`Immediate`: it compares before it writes)
    /// and numbers it for the syncer once committed.
    fn write<T>(
        &self,
        write: impl FnOnce(&rusqlite::Transaction) -> rusqlite::Result<T>,
    ) -> Result<T, BackendError> {
        if let Some(broken) = self.commit.broken() {
            return Err(BackendError::refused(broken));
        }
        let mut writer = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let written = (|| -> rusqlite::Result<T> {
            let t = writer.transaction_with_behavior(TransactionBehavior::Immediate)?;
            let done = write(&t)?;
            t.commit()?;
            Ok(done)
        })();
        drop(writer);
        match written {
            Ok(done) => {
                self.commit.applied();
                Ok(done)
            }
            Err(e) => {
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
                    self.reserve.disk_full();
                }
                Err(refused(e))
            }
        }
    }

    fn reader(&self) -> Result<Reader<'_>, BackendError> {
        let idle = self.readers.lock().unwrap_or_else(|p| p.into_inner()).pop();
        let connection = match idle {
            Some(c) => c,
            None => connect(&self.path)?,
        };
        Ok(Reader {
            store: self,
            connection: Some(connection),
        })
    }
}

/// The write-ahead log's file, for the syncer (created empty if SQLite has not yet: an empty log
/// is a valid one), its name made durable in its folder.
fn write_ahead_log(path: &Path) -> std::io::Result<File> {
    let mut name = path.as_os_str().to_owned();
    name.push("-wal");
    let log = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(PathBuf::from(name))?;
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    File::open(folder)?.sync_all()?;
    Ok(log)
}

/// A read connection, back among the idle ones when dropped.
struct Reader<'a> {
    store: &'a Sqlite,
    connection: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.connection.as_ref().expect("held until dropped")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        let mut idle = self.store.readers.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < IDLE_READERS
            && let Some(c) = self.connection.take()
        {
            idle.push(c);
        }
    }
}

fn get(c: &Connection, store: &str, key: &str) -> rusqlite::Result<Option<Vec<u8>>> {
    c.prepare_cached("SELECT value FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .query_row(params![store, key], |row| row.get(0))
        .optional()
}

fn set(c: &Connection, store: &str, key: &str, value: &[u8]) -> rusqlite::Result<()> {
    c.prepare_cached(
        "INSERT INTO spin_key_value (store, key, value) VALUES (?1, ?2, ?3)
         ON CONFLICT (store, key) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![store, key, value])
    .map(drop)
}

fn delete(c: &Connection, store: &str, key: &str) -> rusqlite::Result<()> {
    c.prepare_cached("DELETE FROM spin_key_value WHERE store = ?1 AND key = ?2")?
        .execute(params![store, key])
        .map(drop)
}

impl Backend for Sqlite {
    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let read = |c: &Connection| -> Result<Vec<Option<Vec<u8>>>, BackendError> {
            keys.iter()
                .map(|k| get(c, store, k).map_err(failed))
                .collect()
        };
        // On the writer when it is free: its page cache is never stale, a reader's is after
        // every write. Never waiting for it: a reader reads while it writes.
        match self.writer.try_lock() {
            Ok(writer) => read(&writer),
            Err(_) => {
                let reader = self.reader()?;
                read(&reader)
            }
        }
    }

    fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        self.write(|t| {
            for (k, v) in &entries {
                set(t, store, k, v)?;
            }
            Ok(())
        })
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError> {
        self.write(|t| {
            for k in keys {
                delete(t, store, k)?;
            }
            Ok(())
        })
    }

    fn list_keys(
        &self,
        store: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError> {
        let c = self.reader()?;
        let mut query = c
            .prepare_cached(
                "SELECT key FROM spin_key_value WHERE store = ?1 AND key > ?2 ORDER BY key LIMIT ?3",
            )
            .map_err(failed)?;
        let rows = query
            .query_map(params![store, cursor.unwrap_or(""), limit as i64], |row| {
                row.get(0)
            })
            .map_err(failed)?;
        let keys = rows.collect::<rusqlite::Result<_>>().map_err(failed)?;
        Ok(super::page(keys, limit))
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, BackendError> {
        let mut not_a_counter = None;
        let next = self.write(|t| {
            let value = get(t, store, key)?.unwrap_or_default();
            let next = match super::counter(key, &value) {
                Ok(n) => n.wrapping_add(delta),
                Err(e) => {
                    not_a_counter = Some(e);
                    return Ok(None);
                }
            };
            set(t, store, key, &next.to_le_bytes())?;
            Ok(Some(next))
        })?;
        match (next, not_a_counter) {
            (Some(next), _) => Ok(next),
            (None, e) => Err(e.expect("said why")),
        }
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        self.write(|t| {
            if get(t, store, key)?.as_deref() != seen {
                return Ok(false);
            }
            if value.is_empty() {
                delete(t, store, key)?;
            } else {
                set(t, store, key, &value)?;
            }
            Ok(true)
        })
    }

    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        let Ok(c) = self.reader() else {
            return Vec::new();
        };
        let Ok(mut query) = c.prepare_cached(
            "SELECT value FROM spin_key_value WHERE store = ?1 AND substr(key, 1, length(?2)) = ?2 ORDER BY key",
        ) else {
            return Vec::new();
        };
        query
            .query_map(params![store, prefix], |row| row.get(0))
            .map(|rows| rows.filter_map(Result::ok).collect())
            .unwrap_or_default()
    }

    fn footprint(&self) -> (usize, usize) {
        let Ok(c) = self.reader() else {
            return (0, 0);
        };
        c.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(key) + LENGTH(value)), 0) FROM spin_key_value",
            [],
            |row| {
                Ok((
                    row.get::<_, i64>(0)? as usize,
                    row.get::<_, i64>(1)? as usize,
                ))
            },
        )
        .unwrap_or((0, 0))
    }

    fn group_commit(&self) -> Option<&Arc<GroupCommit>> {
        Some(&self.commit)
    }

    fn refusing_writes(&self) -> Option<String> {
        self.reserve.refusing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("store.sqlite"), Durability::Fsync).unwrap();
        (dir, store)
    }

    #[test]
    fn compare_and_swap_writes_only_over_the_value_seen() {
        let (_dir, s) = open();
        assert!(
            s.compare_and_swap("default", "k", None, b"one".to_vec())
                .unwrap()
        );
        // Seen nothing, but "one" is there now: refused, nothing written.
        assert!(
            !s.compare_and_swap("default", "k", None, b"two".to_vec())
                .unwrap()
        );
        assert!(
            s.compare_and_swap("default", "k", Some(b"one"), b"two".to_vec())
                .unwrap()
        );
        let got = s.get_many("default", &["k".into()]).unwrap();
        assert_eq!(got, vec![Some(b"two".to_vec())]);
        // An empty value deletes the key.
        assert!(
            s.compare_and_swap("default", "k", Some(b"two"), Vec::new())
                .unwrap()
        );
        assert_eq!(s.get_many("default", &["k".into()]).unwrap(), vec![None]);
    }

    #[test]
    fn keys_page_in_order_counters_count_and_it_all_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("store.sqlite");
        let s = Sqlite::open(&path, Durability::Fsync).unwrap();
        s.set_many(
            "default",
            (0..5).map(|i| (format!("user/{i}"), vec![i])).collect(),
        )
        .unwrap();
        s.set_many("other", vec![("user/x".into(), vec![9])])
            .unwrap();
        assert_eq!(s.increment("default", "stats/n", 5).unwrap(), 5);
        assert_eq!(s.increment("default", "stats/n", -2).unwrap(), 3);
        assert!(
            s.increment("default", "user/1", 1).is_err(),
            "not a counter"
        );
        drop(s);
        let s = Sqlite::open(&path, Durability::Fsync).unwrap();
        let (first, cursor) = s.list_keys("default", None, 3).unwrap();
        assert_eq!(first, ["stats/n", "user/0", "user/1"]);
        let (rest, cursor) = s.list_keys("default", cursor.as_deref(), 3).unwrap();
        assert_eq!(rest, ["user/2", "user/3", "user/4"]);
        assert_eq!(
            s.list_keys("default", cursor.as_deref(), 3).unwrap(),
            (vec![], None)
        );
        assert_eq!(s.values("default", "user/").len(), 5);
        s.delete_many("default", &["user/0".into(), "user/4".into()])
            .unwrap();
        assert_eq!(s.values("default", "user/").len(), 3);
        assert_eq!(s.increment("default", "stats/n", 0).unwrap(), 3);
    }
}
