//! The SQLite backend: what `spin up` keeps its default store in, with Spin's table
//! (`spin_key_value`), so that the same file serves either (one process at a time: the file is
//! locked while open).
//!
//! The store is served from a copy in memory, loaded from the file at start: every write is
//! applied there, in order, under one lock (so compare-and-swap is linearizable) and visible at
//! once; reads never touch the file. The flusher ([`flusher`]) writes every change applied since
//! its last pass to the file in one transaction (a key changed a hundred times is written once),
//! then, in `fsync` mode, syncs the write-ahead log once for all of them ([`group_commit`]). The
//! harness holds each answer until its request's writes are in the file, and on disk in `fsync`
//! mode: a crash loses no acknowledged write. A full disk releases the room kept for it
//! ([`reserve`]).

mod flusher;
mod group_commit;
mod reserve;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgescore_durable::Durability;
use rusqlite::{Connection, params};

pub use group_commit::GroupCommit;

use super::memory::{Key, Memory};
use super::{Backend, BackendError};

pub struct Sqlite {
    copy: Arc<Memory>,
    commit: Arc<GroupCommit>,
    reserve: Arc<reserve::Reserve>,
    flusher: flusher::Flusher,
}

fn opening(path: &Path, e: impl std::fmt::Display) -> BackendError {
    BackendError::new(format!("{}: {e}", path.display()))
}

/// A file another process holds (the lock is held while a store is open).
fn held(path: &Path, e: rusqlite::Error) -> BackendError {
    match e.sqlite_error_code() {
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => opening(
            path,
            "another process has this store open (a store serves one process at a time)",
        ),
        _ => opening(path, e),
    }
}

impl Sqlite {
    pub fn open(path: &Path, durability: Durability) -> Result<Sqlite, BackendError> {
        let connection = Connection::open(path).map_err(|e| opening(path, e))?;
        // EXCLUSIVE: the copy in memory is the store's only truth while this process has it.
        connection
            .execute_batch(
                "PRAGMA busy_timeout = 1000;
                 PRAGMA locking_mode = EXCLUSIVE;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;
                 CREATE TABLE IF NOT EXISTS spin_key_value (
                     store TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value BLOB NOT NULL,
                     PRIMARY KEY (store, key)
                 );",
            )
            .map_err(|e| held(path, e))?;
        let stored = load(&connection).map_err(|e| held(path, e))?;
        let log = write_ahead_log(path).map_err(|e| opening(path, format!("its log: {e}")))?;
        let commit = GroupCommit::new(durability);
        let copy = Arc::new(Memory::noting_changes(stored, commit.clone()));
        let reserve = Arc::new(reserve::Reserve::keep(path));
        let flusher = flusher::Flusher::start(
            connection,
            log,
            Arc::downgrade(&copy),
            commit.clone(),
            reserve.clone(),
        );
        Ok(Sqlite {
            copy,
            commit,
            reserve,
            flusher,
        })
    }

    /// The copy, for a write: refused once the file can no longer be written.
    fn writable(&self) -> Result<&Memory, BackendError> {
        match self.commit.broken() {
            Some(broken) => Err(BackendError::refused(broken)),
            None => Ok(&self.copy),
        }
    }
}

/// Writes what is left to the file before the store goes.
impl Drop for Sqlite {
    fn drop(&mut self) {
        self.flusher.flush_now(&self.copy);
    }
}

/// Every entry of the file.
fn load(c: &Connection) -> rusqlite::Result<Vec<(Key, Vec<u8>)>> {
    let mut query = c.prepare("SELECT store, key, value FROM spin_key_value")?;
    let rows = query.query_map([], |row| Ok(((row.get(0)?, row.get(1)?), row.get(2)?)))?;
    rows.collect()
}

/// The write-ahead log's file, for the flusher's syncs (created empty if SQLite has not yet: an
/// empty log is a valid one), its name made durable in its folder.
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
        self.copy.get_many(store, keys)
    }

    fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        self.writable()?.set_many(store, entries)
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError> {
        self.writable()?.delete_many(store, keys)
    }

    fn list_keys(
        &self,
        store: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError> {
        self.copy.list_keys(store, cursor, limit)
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, BackendError> {
        self.writable()?.increment(store, key, delta)
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        self.writable()?.compare_and_swap(store, key, seen, value)
    }

    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        self.copy.values(store, prefix)
    }

    fn footprint(&self) -> (usize, usize) {
        self.copy.footprint()
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

    #[test]
    fn a_store_serves_one_process_at_a_time() {
        let (dir, s) = open();
        let again = Sqlite::open(&dir.path().join("store.sqlite"), Durability::Fsync);
        let e = again.err().expect("the file is held").message;
        assert!(e.contains("another process has this store open"), "{e}");
        drop(s);
    }

    #[tokio::test]
    async fn a_write_of_nothing_is_done_too() {
        let (_dir, s) = open();
        s.set_many("default", Vec::new()).unwrap();
        s.delete_many("default", &[]).unwrap();
        let waited = tokio::time::timeout(
            std::time::Duration::from_secs(5),
            s.commit.synced(s.commit.last_applied()),
        );
        waited.await.expect("answered").unwrap();
        s.set_many("default", vec![("k".into(), b"v".to_vec())])
            .unwrap();
        s.commit.synced(s.commit.last_applied()).await.unwrap();
    }
}
