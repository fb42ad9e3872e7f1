//! The in-process backend: every store a map in memory, under one lock (`--ephemeral`, tests).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};

use super::{Backend, BackendError};

/// One store: keys in order, to their values.
type Entries = BTreeMap<String, Vec<u8>>;

#[derive(Default)]
pub struct Memory {
    stores: Mutex<HashMap<String, Entries>>,
}

impl Memory {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entries>> {
        self.stores.lock().unwrap_or_else(|p| p.into_inner())
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
        self.lock()
            .entry(store.to_string())
            .or_default()
            .extend(entries);
        Ok(())
    }

    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError> {
        if let Some(s) = self.lock().get_mut(store) {
            for k in keys {
                s.remove(k);
            }
        }
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
