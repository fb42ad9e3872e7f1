//! `wasi:keyvalue@0.2.0-draft2` (store, atomics, batch) over a store shared by every instance of
//! the app — in memory ([`memory`]), in a SQLite file ([`sqlite`], what Spin's default
//! key-value store is to `spin up`) or in Redis ([`redis`], shared by replicas). Compare-and-swap
//! compares the value the guest read with the value held now, atomically; a swap to an empty
//! value deletes the key (the app's way to forget an emptied window atomically).
//!
//! A compare-and-swap starts from the value of the key the instance read last in this request,
//! if it read it (`get`, `get-many`) and has not written it since: the swap compares with that
//! value, so it fails, and the guest reads again, if the key changed in between. This saves the
//! read a swap would otherwise start with: a request that reads its users' windows with one
//! `get-many` then swaps each costs one round trip per user, not two.
//!
//! `get-many` answers as Spin's stores do: only the keys that exist, shuffled (docs/spin.md
//! lists where this host and Spin differ).

mod memory;
mod redis;
mod request;
mod sqlite;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use edgescore_durable::Durability;
use wasmtime::component::{HasData, Linker, Resource, ResourceTable};

pub use request::RequestScope;
pub use sqlite::GroupCommit;

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
    /// About `limit` keys from `cursor` on, and the cursor of the next page (none: the last).
    fn list_keys(
        &self,
        store: &str,
        cursor: Option<&str>,
        limit: usize,
    ) -> Result<(Vec<String>, Option<String>), BackendError>;
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
    /// Where writes become durable after they are done (none: when they are done).
    fn group_commit(&self) -> Option<&Arc<GroupCommit>> {
        None
    }
    /// Why a request that begins now should have its writes refused (its disk is full), if so.
    fn refusing_writes(&self) -> Option<String> {
        None
    }
}

#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    pub message: String,
    /// The store answered that it did not do it (Redis' error reply: out of memory, no
    /// permission, read-only), as opposed to an answer lost on the way (the call may have been
    /// done).
    pub refused: bool,
}

impl BackendError {
    pub fn new(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
            refused: false,
        }
    }

    pub fn refused(message: impl Into<String>) -> Self {
        BackendError {
            message: message.into(),
            refused: true,
        }
    }
}

/// The guest learns a refusal from the message's first word, `refused:` (wasi:keyvalue's
/// `other` error carries a string only): a write refused needs no taking back.
impl From<BackendError> for store::Error {
    fn from(e: BackendError) -> Self {
        if e.refused {
            store::Error::Other(format!("refused: {}", e.message))
        } else {
            store::Error::Other(e.message)
        }
    }
}

/// A counter's value as `increment` keeps it: 8 bytes little-endian (none: 0).
fn counter(key: &str, value: &[u8]) -> Result<i64, BackendError> {
    match value.len() {
        0 => Ok(0),
        8 => Ok(i64::from_le_bytes(value.try_into().expect("8 bytes"))),
        _ => Err(BackendError::new(format!("{key}: not a counter"))),
    }
}

/// A page of keys in order, and its cursor: the last key, if the page is full.
fn page(keys: Vec<String>, limit: usize) -> (Vec<String>, Option<String>) {
    let cursor = (keys.len() == limit)
        .then(|| keys.last().cloned())
        .flatten();
    (keys, cursor)
}

/// Where a store is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreBackend {
    /// In memory: a restart starts empty.
    Memory,
    /// A SQLite file (created if missing), Spin's default store.
    Sqlite(PathBuf),
    /// A Redis server (`redis://host:port[/db]`), Spin's Redis store.
    Redis(String),
}

/// The stores the host grants, each on its backend.
#[derive(Clone)]
pub struct KeyValue {
    /// The only store names a guest may open, and where each is kept.
    stores: Arc<HashMap<String, Arc<dyn Backend>>>,
}

impl KeyValue {
    /// Stores in memory: a restart starts empty.
    pub fn new(granted: Vec<String>) -> Self {
        let stores = granted.into_iter().map(|name| (name, StoreBackend::Memory));
        Self::open(stores, Durability::None).expect("a store in memory opens")
    }

    /// Stores in the SQLite file at `path` (created if missing).
    pub fn sqlite(
        path: &Path,
        granted: Vec<String>,
        durability: Durability,
    ) -> Result<Self, BackendError> {
        let stores = granted
            .into_iter()
            .map(|name| (name, StoreBackend::Sqlite(path.to_path_buf())));
        Self::open(stores, durability)
    }

    /// Each named store on its backend (stores on one SQLite file share its writer), SQLite
    /// files synced as `durability` says.
    pub fn open(
        stores: impl IntoIterator<Item = (String, StoreBackend)>,
        durability: Durability,
    ) -> Result<Self, BackendError> {
        let mut files: HashMap<PathBuf, Arc<dyn Backend>> = HashMap::new();
        let mut opened: HashMap<String, Arc<dyn Backend>> = HashMap::new();
        for (name, backend) in stores {
            let backend: Arc<dyn Backend> = match backend {
                StoreBackend::Memory => Arc::new(memory::Memory::default()),
                StoreBackend::Sqlite(path) => match files.get(&path) {
                    Some(file) => file.clone(),
                    None => {
                        let file: Arc<dyn Backend> =
                            Arc::new(sqlite::Sqlite::open(&path, durability)?);
                        files.insert(path, file.clone());
                        file
                    }
                },
                StoreBackend::Redis(url) => Arc::new(redis::Redis::open(&url)?),
            };
            opened.insert(name, backend);
        }
        Ok(KeyValue {
            stores: Arc::new(opened),
        })
    }

    fn backend(&self, store: &str) -> Result<&dyn Backend, store::Error> {
        self.stores
            .get(store)
            .map(|b| b.as_ref())
            .ok_or(store::Error::NoSuchStore)
    }

    /// Keys and value bytes in every store (for measuring what the state costs).
    pub fn footprint(&self) -> (usize, usize) {
        self.stores.values().fold((0, 0), |(keys, bytes), b| {
            let (k, v) = b.footprint();
            (keys + k, bytes + v)
        })
    }

    /// Why a request that begins now gets its writes refused, if it does: a store's disk is
    /// full. Requests already running keep writing (their taking back included).
    pub fn refusing_writes(&self) -> Option<String> {
        self.stores.values().find_map(|b| b.refusing_writes())
    }

    /// One store's values whose keys start with `prefix`.
    pub fn values(&self, store: &str, prefix: &str) -> Vec<Vec<u8>> {
        self.backend(store)
            .map(|b| b.values(store, prefix))
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
    /// None until read: a handle a failed swap hands back reads the key at its `current`.
    seen: Option<Option<Vec<u8>>>,
}

/// The per-instance view: the shared stores, the instance's resource table and its request.
pub struct KeyValueView<'a> {
    pub kv: &'a KeyValue,
    pub table: &'a mut ResourceTable,
    pub request: &'a mut RequestScope,
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

    /// Notes that the request read `store` as it is now (see [`RequestScope::depends_on`]).
    fn read_from(&mut self, store: &str) {
        if let Ok(backend) = self.kv.backend(store) {
            self.request.depends_on(backend);
        }
    }

    /// A write to `store`, noted so that the answer waits until it is durable.
    fn write<T>(
        &mut self,
        store: &str,
        write: impl FnOnce(&dyn Backend) -> Result<T, BackendError>,
    ) -> Result<T, BackendError> {
        if let Some(why) = self.request.refused() {
            return Err(BackendError::refused(why));
        }
        let kv = self.kv;
        let backend = kv
            .backend(store)
            .map_err(|_| BackendError::refused(format!("{store}: no such store")))?;
        let done = write(backend);
        self.request.depends_on(backend);
        done
    }
}

impl store::Host for KeyValueView<'_> {
    fn open(&mut self, identifier: String) -> Result<Resource<BucketHandle>, store::Error> {
        self.kv.backend(&identifier)?;
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
        let value = self
            .kv
            .backend(&name)?
            .get_many(&name, std::slice::from_ref(&key))?
            .pop()
            .flatten();
        self.request.read(&name, &key, &value);
        self.read_from(&name);
        Ok(value)
    }

    fn set(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
        value: Vec<u8>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        self.request.written(&name, &key);
        self.kv.backend(&name)?;
        Ok(self.write(&name, |b| b.set_many(&name, vec![(key, value)]))?)
    }

    fn delete(&mut self, bucket: Resource<BucketHandle>, key: String) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        self.request.written(&name, &key);
        self.kv.backend(&name)?;
        Ok(self.write(&name, |b| b.delete_many(&name, &[key]))?)
    }

    fn exists(
        &mut self,
        bucket: Resource<BucketHandle>,
        key: String,
    ) -> Result<bool, store::Error> {
        let name = self.bucket(&bucket)?;
        self.read_from(&name);
        Ok(self
            .kv
            .backend(&name)?
            .get_many(&name, &[key])?
            .pop()
            .flatten()
            .is_some())
    }

    /// Keys a page at a time, with the backend's own cursor.
    fn list_keys(
        &mut self,
        bucket: Resource<BucketHandle>,
        cursor: Option<String>,
    ) -> Result<store::KeyResponse, store::Error> {
        let name = self.bucket(&bucket)?;
        self.read_from(&name);
        let (keys, cursor) = self
            .kv
            .backend(&name)?
            .list_keys(&name, cursor.as_deref(), PAGE)?;
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
        self.request.written(&name, &key);
        self.kv.backend(&name)?;
        Ok(self.write(&name, |b| b.increment(&name, &key, delta))?)
    }

    fn swap(&mut self, cas: Resource<CasHandle>, value: Vec<u8>) -> Result<(), atomics::CasError> {
        let handle = self
            .table
            .delete(cas)
            .map_err(|e| atomics::CasError::StoreError(other(e)))?;
        // An empty value deletes the key, atomically with the comparison: how the app forgets
        // an emptied window without racing a writer of the same key.
        self.kv
            .backend(&handle.store)
            .map_err(atomics::CasError::StoreError)?;
        let seen = handle.seen.as_ref().and_then(Option::as_deref);
        let swapped = self
            .write(&handle.store, |b| {
                b.compare_and_swap(&handle.store, &handle.key, seen, value)
            })
            .map_err(|e| atomics::CasError::StoreError(e.into()))?;
        if !swapped {
            // Handed back, as Spin does: its `current` reads the key as it is then, so the
            // guest's next attempt needs no new handle.
            let mut handle = handle;
            handle.seen = None;
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
        self.read_from(&name);
        let seen = match self.request.take(&name, &key) {
            Some(read) => read,
            None => self
                .kv
                .backend(&name)?
                .get_many(&name, std::slice::from_ref(&key))?
                .pop()
                .flatten(),
        };
        self.table
            .push(CasHandle {
                store: name,
                key,
                seen: Some(seen),
            })
            .map_err(other)
    }

    fn current(&mut self, cas: Resource<CasHandle>) -> Result<Option<Vec<u8>>, store::Error> {
        let handle = self.table.get_mut(&cas).map_err(other)?;
        if handle.seen.is_none() {
            let now = self
                .kv
                .backend(&handle.store)?
                .get_many(&handle.store, std::slice::from_ref(&handle.key))?
                .pop()
                .flatten();
            handle.seen = Some(now);
        }
        let (store, seen) = (handle.store.clone(), handle.seen.clone().flatten());
        self.read_from(&store);
        Ok(seen)
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
        let values = self.kv.backend(&name)?.get_many(&name, &keys)?;
        for (key, value) in keys.iter().zip(&values) {
            self.request.read(&name, key, value);
        }
        self.read_from(&name);
        // As Spin's stores answer: the keys that exist, in no particular order. The app must
        // match results by key, and this host never lets it get away with less.
        let mut found: Vec<(String, Option<Vec<u8>>)> = keys
            .into_iter()
            .zip(values)
            .filter(|(_, value)| value.is_some())
            .collect();
        fastrand::shuffle(&mut found);
        Ok(found)
    }

    fn set_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        key_values: Vec<(String, Vec<u8>)>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        for (key, _) in &key_values {
            self.request.written(&name, key);
        }
        self.kv.backend(&name)?;
        Ok(self.write(&name, |b| b.set_many(&name, key_values))?)
    }

    fn delete_many(
        &mut self,
        bucket: Resource<BucketHandle>,
        keys: Vec<String>,
    ) -> Result<(), store::Error> {
        let name = self.bucket(&bucket)?;
        for key in &keys {
            self.request.written(&name, key);
        }
        self.kv.backend(&name)?;
        Ok(self.write(&name, |b| b.delete_many(&name, &keys))?)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// `get-many` as Spin's stores answer it: the keys that exist and no others, in an order the
    /// caller cannot count on (so an app that reads results by position fails here too).
    #[test]
    fn get_many_answers_only_existing_keys_in_no_fixed_order() {
        let kv = KeyValue::new(vec!["default".into()]);
        let mut table = ResourceTable::new();
        let mut request = RequestScope::default();
        let mut view = KeyValueView {
            kv: &kv,
            table: &mut table,
            request: &mut request,
        };
        let bucket = store::Host::open(&mut view, "default".into()).unwrap();
        let handle = || Resource::<BucketHandle>::new_own(bucket.rep());
        let stored: Vec<(String, Vec<u8>)> =
            (0..20u8).map(|i| (format!("k{i:02}"), vec![i])).collect();
        batch::Host::set_many(&mut view, handle(), stored.clone()).unwrap();
        let asked: Vec<String> = (0..40u8).map(|i| format!("k{i:02}")).collect();
        let mut orders = std::collections::HashSet::new();
        for _ in 0..10 {
            let found = batch::Host::get_many(&mut view, handle(), asked.clone()).unwrap();
            let mut sorted = found.clone();
            sorted.sort();
            let expected: Vec<(String, Option<Vec<u8>>)> = stored
                .iter()
                .map(|(k, v)| (k.clone(), Some(v.clone())))
                .collect();
            assert_eq!(
                sorted, expected,
                "the 20 keys that exist, each with its value"
            );
            orders.insert(found.into_iter().map(|(k, _)| k).collect::<Vec<_>>());
        }
        assert!(orders.len() > 1, "the order changes from call to call");
    }
}
