//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over an in-process store shared by every
//! instance of the app: what Spin's default key-value store is to `spin up`. Compare-and-swap
//! compares the value the guest read with the value held now, under one lock; a swap to an empty
//! value deletes the key (the app's way to forget an emptied window atomically).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

mod bindings {
    wasmtime::component::bindgen!({
        world: "wasi:keyvalue/imports",
        path: "../../wit/deps/keyvalue",
        with: {
            "wasi:keyvalue/store.bucket": super::BucketHandle,
            "wasi:keyvalue/atomics.cas": super::CasHandle,
        },
    });
}

use bindings::wasi::keyvalue::{atomics, batch, store};

/// One store: keys in order, to their values.
type Entries = BTreeMap<String, Vec<u8>>;

/// Every store the host grants, by name.
#[derive(Clone, Default)]
pub struct KeyValue {
    stores: Arc<Mutex<HashMap<String, Entries>>>,
    /// The only store names a guest may open.
    granted: Arc<Vec<String>>,
}

impl KeyValue {
    pub fn new(granted: Vec<String>) -> Self {
        KeyValue {
            stores: Arc::default(),
            granted: Arc::new(granted),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entries>> {
        self.stores.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Keys and value bytes in every store (for measuring what the state costs).
    pub fn footprint(&self) -> (usize, usize) {
        let stores = self.lock();
        let keys = stores.values().map(BTreeMap::len).sum();
        let bytes = stores
            .values()
            .flat_map(|s| s.iter())
            .map(|(k, v)| k.len() + v.len())
            .sum();
        (keys, bytes)
    }

    /// One store's values whose keys start with `prefix`.
    pub fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
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
}

pub struct BucketHandle {
    store: String,
}

pub struct CasHandle {
    store: String,
    key: String,
    /// The value when the guest started: the swap succeeds only if it is still the one held.
    seen: Option<Vec<u8>>,
}

/// The per-instance view: the shared stores and the instance's resource table.
pub struct KeyValueView<'a> {
    pub kv: &'a KeyValue,
    pub table: &'a mut ResourceTable,
}

/// Keys listed per `list-keys` page.
const PAGE: usize = 1000;

fn other(e: impl std::fmt::Display) -> store::Error {
    store::Error::Other(e.to_string())
}

impl KeyValueView<'_> {
    fn bucket(&self, bucket: &Resource<BucketHandle>) -> Result<String, store::Error> {
        Ok(self.table.get(bucket).map_err(other)?.store.clone())
    }
}

impl store::Host for KeyValueView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<BucketHandle>, store::Error> {
        if !self.kv.granted.contains(&identifier) {
            return Err(store::Error::NoSuchStore);
        }
        self.kv.lock().entry(identifier.clone()).or_default();
        self.table
            .push(BucketHandle { store: identifier })
            .map_err(other)
    }
}

impl store::HostBucket for KeyValueView<'_> {
    fn get(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Option<Vec<u8>>, store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self.kv.lock().get(&name).and_then(|s| s.get(&key).cloned()))
    }

    fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        self.kv.lock().entry(name).or_default().insert(key, value);
        Ok(())
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        if let Some(s) = self.kv.lock().get_mut(&name) {
            s.remove(&key);
        }
        Ok(())
    }

    fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<bool, store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self
            .kv
            .lock()
            .get(&name)
            .is_some_and(|s| s.contains_key(&key)))
    }

    /// Keys in order, a page at a time; the cursor is the last key of the page.
    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        use std::ops::Bound::{Excluded, Unbounded};
        let name = self.bucket(&bucket)?;
        let stores = self.kv.lock();
        let Some(s) = stores.get(&name) else {
            return Ok(store::KeyResponse {
                keys: Vec::new(),
                cursor: None,
            });
        };
        let from = cursor.map_or(Unbounded, Excluded);
        let keys: Vec<String> = s
            .range::<String, _>((from, Unbounded))
            .take(PAGE)
            .map(|(k, _)| k.clone())
            .collect();
        let cursor = (keys.len() == PAGE).then(|| keys[PAGE - 1].clone());
        Ok(store::KeyResponse { keys, cursor })
    }

    fn drop(&mut self, bucket: Resource<BucketHandle>) -> wasmtime::Result<()> {
        self.table.delete(bucket)?;
        Ok(())
    }
}

impl atomics::Host for KeyValueView<'_> {
    fn increment(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        delta: i64,
    ) -> Result<i64, store::Error> {
        let name = self.bucket(&bucket)?;
        let mut stores = self.kv.lock();
        let value = stores
            .entry(name)
            .or_default()
            .entry(key.clone())
            .or_default();
        let current = match value.len() {
            0 => 0,
            8 => i64::from_le_bytes(value[..].try_into().expect("8 bytes")),
            _ => return Err(other(format!("{key}: not a counter"))),
        };
        let next = current.wrapping_add(delta);
        *value = next.to_le_bytes().to_vec();
        Ok(next)
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(other(e)))?;
        let mut stores = self.kv.lock();
        let s = stores.entry(handle.store.clone()).or_default();
        if s.get(&handle.key) != handle.seen.as_ref() {
            // Handed back so that the guest may read the new value and try again.
            let cas = self
                .table
                .push(handle)
                .map_err(|e| atomics::CasError::StoreError(other(e)))?;
            return Err(atomics::CasError::CasFailed(cas));
        }
        // An empty value deletes the key, atomically with the comparison: how the app forgets
        // an emptied window without racing a writer of the same key.
        if value.is_empty() {
            s.remove(&handle.key);
        } else {
            s.insert(handle.key, value);
        }
        Ok(())
    }
}

impl atomics::HostCas for KeyValueView<'_> {
    fn new(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<Resource<CasHandle>, store::Error> {
        let name = self.bucket(&bucket)?;
        let seen = self.kv.lock().get(&name).and_then(|s| s.get(&key).cloned());
        self.table
            .push(CasHandle {
                store: name,
                key,
                seen,
            })
            .map_err(other)
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> Result<Option<Vec<u8>>, store::Error> {
        Ok(self.table.get(&cas).map_err(other)?.seen.clone())
    }

    fn drop(&mut self, cas: Resource<CasHandle>) -> wasmtime::Result<()> {
        self.table.delete(cas)?;
        Ok(())
    }
}

impl batch::Host for KeyValueView<'_> {
    fn get_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<Vec<(String, Option<Vec<u8>>)>, store::Error> {
        let name = self.bucket(&bucket)?;
        let stores = self.kv.lock();
        let s = stores.get(&name);
        Ok(keys
            .into_iter()
            .map(|k| {
                let v = s.and_then(|s| s.get(&k).cloned());
                (k, v)
            })
            .collect())
    }

    fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        self.kv.lock().entry(name).or_default().extend(key_values);
        Ok(())
    }

    fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        if let Some(s) = self.kv.lock().get_mut(&name) {
            for k in keys {
                s.remove(&k);
            }
        }
        Ok(())
    }
}

struct KeyValueData;

impl HasData for KeyValueData {
    type Data<'a> = KeyValueView<'a>;
}

/// Adds the three interfaces; `view` finds them in the store's data.
pub fn add_to_linker<T: Send + 'static>(
    linker: &mut Linker<T>,
    view: fn(&mut T) -> KeyValueView<'_>,
) -> wasmtime::Result<()> {
    store::add_to_linker::<T, KeyValueData>(linker, view)?;
    atomics::add_to_linker::<T, KeyValueData>(linker, view)?;
    batch::add_to_linker::<T, KeyValueData>(linker, view)?;
    Ok(())
}
