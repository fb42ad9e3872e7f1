//! The SQLite backend: what `spin up` keeps its default store in, with Spin's table
//! (`spin_key_value`), so that the same file serves either. Every write is a transaction
//! committed (WAL journal, `synchronous = FULL`) before the call returns: an answer the app
//! gives after a write never outlives the write. Compare-and-swap compares and writes in one
//! `BEGIN IMMEDIATE` transaction.

use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use rusqlite::{Connection, OptionalExtension, TransactionBehavior, params};

use super::{Backend, BackendError};

pub struct Sqlite {
    connection: Mutex<Connection>,
}

fn failed(e: rusqlite::Error) -> BackendError {
    BackendError::new(format!("sqlite: {e}"))
}

impl Sqlite {
    pub fn open(path: &Path) -> Result<Sqlite, BackendError> {
        let connection = Connection::open(path)
            .map_err(|e| BackendError::new(format!("{}: {e}", path.display())))?;
        connection
            .execute_batch(
                "PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = FULL;
                 PRAGMA busy_timeout = 5000;
                 CREATE TABLE IF NOT EXISTS spin_key_value (
                     store TEXT NOT NULL,
                     key TEXT NOT NULL,
                     value BLOB NOT NULL,
                     PRIMARY KEY (store, key)
                 );",
            )
            .map_err(|e| BackendError::new(format!("{}: {e}", path.display())))?;
        Ok(Sqlite {
            connection: Mutex::new(connection),
        })
    }

    fn lock(&self) -> MutexGuard<'_, Connection> {
        self.connection.lock().unwrap_or_else(|p| p.into_inner())
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
        let c = self.lock();
        keys.iter()
            .map(|k| get(&c, store, k).map_err(failed))
            .collect()
    }

    fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        let mut c = self.lock();
        let t = c.transaction().map_err(failed)?;
        for (k, v) in &entries {
            set(&t, store, k, v).map_err(failed)?;
        }
        t.commit().map_err(failed)
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError> {
        let mut c = self.lock();
        let t = c.transaction().map_err(failed)?;
        for k in keys {
            delete(&t, store, k).map_err(failed)?;
        }
        t.commit().map_err(failed)
    }

    fn list_keys(
        &self,
        store: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError> {
        let c = self.lock();
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
        let mut c = self.lock();
        let t = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        let mut value = get(&t, store, key).map_err(failed)?.unwrap_or_default();
        let next = super::counter(key, &value)?.wrapping_add(delta);
        value = next.to_le_bytes().to_vec();
        set(&t, store, key, &value).map_err(failed)?;
        t.commit().map_err(failed)?;
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        let mut c = self.lock();
        let t = c
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(failed)?;
        if get(&t, store, key).map_err(failed)?.as_deref() != seen {
            return Ok(false);
        }
        if value.is_empty() {
            delete(&t, store, key).map_err(failed)?;
        } else {
            set(&t, store, key, &value).map_err(failed)?;
        }
        t.commit().map_err(failed)?;
        Ok(true)
    }

    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        let c = self.lock();
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
        let c = self.lock();
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
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open() -> (tempfile::TempDir, Sqlite) {
        let dir = tempfile::tempdir().unwrap();
        let store = Sqlite::open(&dir.path().join("store.sqlite")).unwrap();
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
        let s = Sqlite::open(&path).unwrap();
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
        let s = Sqlite::open(&path).unwrap();
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
