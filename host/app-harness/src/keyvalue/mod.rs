//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over a store shared by every instance of
//! the app — in memory ([`memory`]) or in a SQLite file ([`sqlite`], what Spin's default
//! key-value store is to `spin up`). Compare-and-swap
//! compares the value the guest read with the value held now, under one lock; a swap to an empty
//! value deletes the key (the app's way to forget an emptied window atomically).

mod memory;
mod sqlite;

use std::path::Path;
use std::sync::Arc;

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

/// Where a store's entries are kept: in memory, or in a SQLite file (Spin's default store).
/// Every call is atomic on its own; `compare_and_swap` compares and writes as one.
pub trait Backend: Send + Sync {
    fn get_many(&self, store: &str, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>, BackendError>;
    fn set_many(&self, store: &str, entries: Vec<(String, Vec<u8>)>) -> Result<(), BackendError>;
    fn delete_many(&self, store: &str, keys: &[String]) -> Result<(), BackendError>;
    /// Up to `limit` keys after `after`, in order.
    fn list_keys(
        &self,
        store: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, BackendError>;
    fn increment(&self, store: &str, key: &str, delta: i64) -> Result<i64, BackendError>;
    /// Writes `value` (an empty value deletes the key) if the key still holds `seen`; false if
    /// it does not (nothing written).
    fn compare_and_swap(
        &self,
        store: &str,
        key: &str,
        seen: Option<&[u8]>,
        value: Vec<u8>,
    ) -> Result<bool, BackendError>;
    /// One store's values whose keys start with `prefix` (for measurements and tests).
    fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>>;
    /// Keys and value bytes in every store.
    fn footprint(&self) -> (usize, usize);
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

impl From<BackendError> for store::Error {
    fn from(e: BackendError) -> Self {
        store::Error::Other(e.0)
    }
}

/// A counter's value as `increment` keeps it: 8 bytes little-endian (none: 0).
fn counter(key: &str, value: &[u8]) -> Result<i64, BackendError> {
    match value.len() {
        0 => Ok(0),
        8 => Ok(i64::from_le_bytes(value.try_into().expect("8 bytes"))),
        _ => Err(BackendError(format!("{key}: not a counter"))),
    }
}

/// Every store the host grants, on one backend.
#[derive(Clone)]
pub struct KeyValue {
    backend: Arc<dyn Backend>,
    /// The only store names a guest may open.
    granted: Arc<Vec<String>>,
}

impl KeyValue {
    /// Stores in memory: a restart starts empty.
    pub fn new(granted: Vec<String>) -> Self {
        KeyValue {
            backend: Arc::new(memory::Memory::default()),
            granted: Arc::new(granted),
        }
    }

    /// Stores in the SQLite file at `path` (created if missing).
    pub fn sqlite(path: &Path, granted: Vec<String>) -> Result<Self, BackendError> {
        Ok(KeyValue {
            backend: Arc::new(sqlite::Sqlite::open(path)?),
            granted: Arc::new(granted),
        })
    }

    /// Keys and value bytes in every store (for measuring what the state costs).
    pub fn footprint(&self) -> (usize, usize) {
        self.backend.footprint()
    }

    /// One store's values whose keys start with `prefix`.
    pub fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        self.backend.values(store, prefix)
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
        Ok(self.kv.backend.get_many(&name, &[key])?.pop().flatten())
    }

    fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self.kv.backend.set_many(&name, vec![(key, value)])?)
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self.kv.backend.delete_many(&name, &[key])?)
    }

    fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<bool, store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self
            .kv
            .backend
            .get_many(&name, &[key])?
            .pop()
            .flatten()
            .is_some())
    }

    /// Keys in order, a page at a time; the cursor is the last key of the page.
    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        let name = self.bucket(&bucket)?;
        let keys = self.kv.backend.list_keys(&name, cursor.as_deref(), PAGE)?;
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
        Ok(self.kv.backend.increment(&name, &key, delta)?)
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(other(e)))?;
        // An empty value deletes the key, atomically with the comparison: how the app forgets
        // an emptied window without racing a writer of the same key.
        let swapped = self
            .kv
            .backend
            .compare_and_swap(&handle.store, &handle.key, handle.seen.as_deref(), value)
            .map_err(|e| atomics::CasError::StoreError(e.into()))?;
        if !swapped {
            // Handed back so that the guest may read the new value and try again.
            let cas = self
                .table
                .push(handle)
                .map_err(|e| atomics::CasError::StoreError(other(e)))?;
            return Err(atomics::CasError::CasFailed(cas));
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
        let seen = self
            .kv
            .backend
            .get_many(&name, std::slice::from_ref(&key))?
            .pop()
            .flatten();
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
        let values = self.kv.backend.get_many(&name, &keys)?;
        Ok(keys.into_iter().zip(values).collect())
    }

    fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self.kv.backend.set_many(&name, key_values)?)
    }

    fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        Ok(self.kv.backend.delete_many(&name, &keys)?)
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
