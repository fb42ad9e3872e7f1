//! Every call the app makes to the key-value store, counted: a request's count is what the
//! `edgescore-store-calls` header of its answer says (the benchmarks add it up per event).
//!
//! An instance runs one request's store calls at a time (they are synchronous: another request
//! of the same instance runs only while this one awaits its body), so the count of one request
//! is the difference between two readings of [`taken`].

use std::sync::atomic::{AtomicU64, Ordering};

use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};

use super::Bucket;

static CALLS: AtomicU64 = AtomicU64::new(0);

/// Calls made by this instance so far.
pub fn taken() -> u64 {
    CALLS.load(Ordering::Relaxed)
}

fn one() {
    CALLS.fetch_add(1, Ordering::Relaxed);
}

pub fn open(name: &str) -> Result<Bucket, store::Error> {
    one();
    store::open(name)
}

pub fn get(bucket: &Bucket, key: &str) -> Result<Option<Vec<u8>>, store::Error> {
    one();
    bucket.get(key)
}

pub fn set(bucket: &Bucket, key: &str, value: &[u8]) -> Result<(), store::Error> {
    one();
    bucket.set(key, value)
}

pub fn delete(bucket: &Bucket, key: &str) -> Result<(), store::Error> {
    one();
    bucket.delete(key)
}

pub fn list_keys(
    bucket: &Bucket,
    cursor: Option<&str>,
) -> Result<store::KeyResponse, store::Error> {
    one();
    bucket.list_keys(cursor)
}

/// What `get-many` answers: keys and their values (a host may leave out keys that do not exist).
pub type Found = Vec<(String, Option<Vec<u8>>)>;

pub fn get_many(bucket: &Bucket, keys: &[String]) -> Result<Found, store::Error> {
    one();
    batch::get_many(bucket, keys)
}

pub fn increment(bucket: &Bucket, key: &str, delta: i64) -> Result<i64, store::Error> {
    one();
    atomics::increment(bucket, key, delta)
}

/// A compare-and-swap of `key` and the value it starts from (two calls: `new`, `current`).
pub fn cas(bucket: &Bucket, key: &str) -> Result<(atomics::Cas, Option<Vec<u8>>), store::Error> {
    one();
    let cas = atomics::Cas::new(bucket, key)?;
    one();
    let current = cas.current()?;
    Ok((cas, current))
}

/// The value a compare-and-swap starts from (the handle a failed swap hands back reads the key
/// as it is now).
pub fn current(cas: &atomics::Cas) -> Result<Option<Vec<u8>>, store::Error> {
    one();
    cas.current()
}

pub fn swap(cas: atomics::Cas, value: &[u8]) -> Result<(), atomics::CasError> {
    one();
    atomics::swap(cas, value)
}
