//! The in-process backend: every store a map in memory, under one lock (`--ephemeral`, tests);
//! and the SQLite store's copy in memory, which also notes every change for the file
//! ([`Changes`]).

use std::collections::{BTreeMap, HashMap};
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Backend, BackendError, GroupCommit};

/// One store: keys in order, to their values.
type Entries = BTreeMap<String, Vec<u8>>;

/// A store and key.
pub type Key = (String, String);

#[derive(Default)]
pub struct Memory {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    stores: HashMap<String, Entries>,
    changes: Option<Changes>,
}

/// What changed since the file was last written: each key's value now (none: deleted), and the
/// writes' numbers, given in order under the same lock.
pub struct Changes {
    pub values: HashMap<Key, Option<Vec<u8>>>,
    commit: Arc<GroupCommit>,
}

/// The stores under the lock; written through it, each change noted.
struct Locked<'a>(MutexGuard<'a, State>);

impl Deref for Locked<'_> {
    type Target = HashMap<String, Entries>;
    fn deref(&self) -> &Self::Target {
        &self.0.stores
    }
}

impl DerefMut for Locked<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0.stores
    }
}

impl Locked<'_> {
    /// Notes that `keys` of `store` were written (one write, numbered).
    fn wrote<'k>(&mut self, store: &str, keys: impl IntoIterator<Item = &'k String>) {
        let State { stores, changes } = &mut *self.0;
        let Some(changes) = changes else { return };
        for key in keys {
            let now = stores.get(store).and_then(|s| s.get(key)).cloned();
            changes.values.insert((store.to_string(), key.clone()), now);
        }
        changes.commit.applied();
    }
}

impl Memory {
    /// `stores` as loaded from a file, every change from now on noted and numbered by `commit`.
    pub fn noting_changes(stores: Vec<(Key, Vec<u8>)>, commit: Arc<GroupCommit>) -> Memory {
        let mut state = State::default();
        for ((store, key), value) in stores {
            state.stores.entry(store).or_default().insert(key, value);
        }
        state.changes = Some(Changes {
            values: HashMap::new(),
            commit,
        });
        Memory {
            state: Mutex::new(state),
        }
    }

    /// The changes noted so far, and the number of the last write they hold (none noted: empty).
    pub fn take_changes(&self) -> (HashMap<Key, Option<Vec<u8>>>, u64) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &mut state.changes {
            Some(changes) => (
                std::mem::take(&mut changes.values),
                changes.commit.last_applied(),
            ),
            None => (HashMap::new(), 0),
        }
    }

    fn lock(&self) -> Locked<'_> {
        Locked(self.state.lock().unwrap_or_else(|p| p.into_inner()))
    }
}

impl Backend for Memory {
    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError> {
        let stores = self.lock();
        let s = stores.get(store);
        Ok(keys
            .iter()
            .map(|k| s.and_then(|s| s.get(k).cloned()))
            .collect())
    }

    fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError> {
        let keys: Vec<String> = entries.iter().map(|(k, _)| k.clone()).collect();
        let mut stores = self.lock();
        stores.entry(store.to_string()).or_default().extend(entries);
        stores.wrote(store, &keys);
        Ok(())
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError> {
        let mut stores = self.lock();
        if let Some(s) = stores.get_mut(store) {
            for k in keys {
                s.remove(k);
            }
        }
        stores.wrote(store, keys);
        Ok(())
    }

    fn list_keys(
        &self,
        store: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError> {
        use std::ops::Bound::{Excluded, Unbounded};
        let stores = self.lock();
        let Some(s) = stores.get(store) else {
            return Ok((Vec::new(), None));
        };
        let from = cursor.map_or(Unbounded, |a| Excluded(a.to_string()));
        let keys: Vec<String> = s
            .range::<String, _>((from, Unbounded))
            .take(limit)
            .map(|(k, _)| k.clone())
            .collect();
        Ok(super::page(keys, limit))
    }

    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, BackendError> {
        let mut stores = self.lock();
        let value = stores
            .entry(store.to_string())
            .or_default()
            .entry(key.to_string())
            .or_default();
        let next = super::counter(key, value)?.wrapping_add(delta);
        *value = next.to_le_bytes().to_vec();
        stores.wrote(store, [&key.to_string()]);
        Ok(next)
    }

    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError> {
        let mut stores = self.lock();
        let s = stores.entry(store.to_string()).or_default();
        if s.get(key).map(Vec::as_slice) != seen {
            return Ok(false);
        }
        if value.is_empty() {
            s.remove(key);
        } else {
            s.insert(key.to_string(), value);
        }
        stores.wrote(store, [&key.to_string()]);
        Ok(true)
    }

    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        self.lock()
            .get(store)
            .map(|s| {
                s.range(prefix.to_string()..)
                    .take_while(|(k, _)| k.starts_with(prefix))
                    .map(|(_, v)| v.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn footprint(&self) -> (usize, usize) {
        let stores = self.lock();
        let keys = stores.values().map(BTreeMap::len).sum();
        let bytes = stores
            .values()
            .flat_map(|s| s.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (keys, bytes)
    }
}
