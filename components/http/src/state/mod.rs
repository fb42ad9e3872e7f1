//! The app's durable state in a `wasi:keyvalue@0.2.0-draft2` store:
//!
//! | key | value |
//! | --- | --- |
//! | `user/<id>` (`userh/<sha-256>` for an id too long for a key) | the user's window ([`windows`]) |
//! | `watermark` | the largest accepted timestamp, f64 little-endian |
//! | `count/<name>` | a counter, only ever changed by `increment` |
//! | `sweep/cursor` | where the sweep of idle windows goes on ([`sweep`]) |
//! | `claim/<sha-256 of a key>` | while a request creates that key: a counter (see [`update`]) |
//!
//! Windows and the watermark are read-modify-written with compare-and-swap and retried on
//! conflict (after a short, jittered, growing pause), so concurrent requests (in one instance or
//! many, one replica or many) never lose an accepted event. What a request wrote is kept in its
//! [`Journal`] and taken back if a later write fails, so that a failing store never leaves half
//! a request recorded. `/stats` reads counters only, in one `get-many`.

mod journal;
pub mod kv;
pub mod sweep;
pub mod windows;

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use edgescore_contract::ApiError;
use edgescore_contract::store_layout::{claim_key, decode_counter};
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

pub use journal::Journal;
pub use store::Bucket;

/// Attempts at one compare-and-swap before the request gives up (each retry means another
/// request wrote the same key in between; 64 in a row means a storm, not bad luck).
const CAS_ATTEMPTS: u32 = 64;

const WATERMARK: &str = "watermark";

#[derive(Debug)]
pub struct StateError {
    pub message: String,
    /// The store answered that it did not do it, so nothing of it needs taking back. A host
    /// says so by starting its `other` error with `refused:` (edgescore's does, for Redis' error
    /// replies); otherwise the call may have been done (an answer lost).
    pub refused: bool,
}

impl StateError {
    pub fn new(message: impl Into<String>) -> Self {
        StateError {
            message: message.into(),
            refused: false,
        }
    }
}

impl From<store::Error> for StateError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::NoSuchStore => StateError::new("state: no such key-value store"),
            store::Error::AccessDenied => StateError {
                message: "state: access to the key-value store denied".into(),
                refused: true,
            },
            store::Error::Other(m) => StateError {
                refused: m.starts_with("refused:"),
                message: format!("state: {m}"),
            },
        }
    }
}

/// The store could not be read or written: 503, nothing of the request was done.
impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::unavailable(e.message, 1)
    }
}

pub type Result<T> = std::result::Result<T, StateError>;

pub fn open() -> Result<Bucket> {
    Ok(kv::open(&crate::config::store_name())?)
}

/// Reads, changes and writes one key atomically; `change` may run several times and gives the
/// new value (none: the value stays as it is, unwritten) and what to report of the change.
///
/// A key that does not exist yet is created by one request at a time: the one that holds its
/// claim ([`claim_key`]). Spin's SQLite store swaps a key that did not exist without comparing
/// (an upsert), so two requests creating the same key would both succeed, the later over the
/// earlier; the others wait for the key to exist, then compare and swap as always.
fn update<R>(
    bucket: &Bucket,
    key: &str,
    change: impl FnMut(Option<Vec<u8>>) -> Result<(Option<Vec<u8>>, R)>,
) -> Result<R> {
    let mut update = Update {
        bucket,
        key,
        retries: 0,
        claimed: None,
    };
    let outcome = update.run(change);
    update.finish(outcome)
}

/// One key's update under way: the retries it took, and the creation claim it holds.
struct Update<'a> {
    bucket: &'a Bucket,
    key: &'a str,
    retries: u32,
    claimed: Option<String>,
}

impl Update<'_> {
    fn run<R>(
        &mut self,
        mut change: impl FnMut(Option<Vec<u8>>) -> Result<(Option<Vec<u8>>, R)>,
    ) -> Result<R> {
        let (mut cas, mut current) = kv::cas(self.bucket, self.key)?;
        loop {
            if current.is_none() && self.claimed.is_none() {
                self.claim()?;
                (cas, current) = kv::cas(self.bucket, self.key)?;
                continue;
            }
            let (value, report) = change(current.take())?;
            // Nothing to write (the watermark is already as high).
            let Some(value) = value else {
                return Ok(report);
            };
            match kv::swap(cas, &value) {
                Ok(()) => return Ok(report),
                Err(atomics::CasError::CasFailed(_)) if self.retries + 1 >= CAS_ATTEMPTS => {
                    return Err(StateError::new(format!(
                        "state: {} kept changing under {CAS_ATTEMPTS} attempts to update it",
                        self.key
                    )));
                }
                Err(atomics::CasError::CasFailed(again)) => {
                    self.pause();
                    // The handle handed back starts from the key as it is now: no new one.
                    current = kv::current(&again)?;
                    cas = again;
                }
                Err(atomics::CasError::StoreError(e)) => return Err(e.into()),
            }
        }
    }

    /// Takes the claim to create the key, or waits a little while another request holds it
    /// (then the caller reads the key again: it may have been created meanwhile).
    fn claim(&mut self) -> Result<()> {
        let claim = claim_key(self.key);
        match kv::increment(self.bucket, &claim, 1)? {
            1 => self.claimed = Some(claim),
            _ if self.retries + 1 >= CAS_ATTEMPTS => {
                // The creator went away holding it: free it for the next request.
                let _ = kv::delete(self.bucket, &claim);
                return Err(StateError::new(format!(
                    "state: {} was being created by another request for too long",
                    self.key
                )));
            }
            _ => self.pause(),
        }
        Ok(())
    }

    fn pause(&mut self) {
        self.retries += 1;
        std::thread::sleep(backoff(self.retries, self.key));
    }

    /// Lets go of the claim and counts the retries, whatever the outcome.
    fn finish<R>(self, outcome: Result<R>) -> Result<R> {
        if let Some(claim) = self.claimed {
            // Best effort: a claim left behind is freed by the next creator that waits too long.
            let _ = kv::delete(self.bucket, &claim);
        }
        if self.retries > 0 && outcome.is_ok() {
            // Best effort: the write is done, a lost retry count is no reason to fail it.
            let _ = count(self.bucket, "cas_retries", i64::from(self.retries));
        }
        outcome
    }
}

/// The pause before retry `n` of a conflicting swap: growing (50 µs, doubling, at most 5 ms)
/// and jittered, so that requests racing for one key do not race again in step.
fn backoff(n: u32, key: &str) -> Duration {
    let ceiling = (50u64 << n.min(7)).min(5_000);
    let jitter = RandomState::new().hash_one((n, key)) % ceiling.max(1);
    Duration::from_micros(ceiling / 2 + jitter / 2)
}

pub fn watermark(bucket: &Bucket) -> Result<Option<f64>> {
    Ok(kv::get(bucket, WATERMARK)?.as_deref().and_then(read_f64))
}

/// Raises the stored watermark to `to` (never lowers it). Callers skip it when `to` is not above
/// the watermark they read.
pub fn raise_watermark(bucket: &Bucket, to: f64) -> Result<()> {
    update(bucket, WATERMARK, |current| {
        let stored = current.as_deref().and_then(read_f64);
        let raised = stored.is_none_or(|w| w < to);
        Ok((raised.then(|| to.to_le_bytes().to_vec()), ()))
    })
}

fn read_f64(bytes: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

fn counter_key(name: &str) -> String {
    format!("count/{name}")
}

pub fn count(bucket: &Bucket, name: &str, delta: i64) -> Result<i64> {
    Ok(kv::increment(bucket, &counter_key(name), delta)?)
}

/// Counters and the watermark, read in one `get-many` (a counter never written reads 0).
pub fn read_counters(bucket: &Bucket, names: &[String]) -> Result<(Vec<i64>, Option<f64>)> {
    let mut keys: Vec<String> = names.iter().map(|n| counter_key(n)).collect();
    keys.push(WATERMARK.into());
    let mut values = read_many(bucket, &keys)?;
    let watermark = values.pop().flatten().as_deref().and_then(read_f64);
    let counts = keys
        .iter()
        .zip(values)
        .map(|(key, value)| match value {
            None => Ok(0),
            Some(v) => decode_counter(&v)
                .ok_or_else(|| StateError::new(format!("state: {key}: not a counter"))),
        })
        .collect::<Result<_>>()?;
    Ok((counts, watermark))
}

/// The values of `keys`, in their order (none: absent), read in one `get-many`.
///
/// `get-many` promises one entry per key that exists, nothing about their order: Spin's SQLite
/// store leaves the missing keys out and answers in the database's order, so its results are
/// matched by key. Spin's Redis store fails every `get-many` (it sends `KEYS` where `MGET` is
/// meant); then the keys are read one `get` at a time, and the log says why once per instance.
pub fn read_many(bucket: &Bucket, keys: &[String]) -> Result<Vec<Option<Vec<u8>>>> {
    match kv::get_many(bucket, keys) {
        Ok(found) => {
            let mut found: HashMap<String, Vec<u8>> = found
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?)))
                .collect();
            Ok(keys.iter().map(|key| found.remove(key)).collect())
        }
        Err(e) => {
            log_get_many_fallback(&StateError::from(e), keys.len());
            keys.iter()
                .map(|key| Ok(kv::get(bucket, key)?))
                .collect::<Result<_>>()
        }
    }
}

fn log_get_many_fallback(error: &StateError, keys: usize) {
    static SAID: AtomicBool = AtomicBool::new(false);
    if !SAID.swap(true, Ordering::Relaxed) {
        eprintln!(
            "edgescore: the key-value store's get-many failed ({}); reading {keys} keys one get at \
             a time instead (said once per instance; see docs/spin.md)",
            error.message
        );
    }
}

/// The ingest latency bucket counters (`edgescore_contract::latency`) are `count/<LATENCY_BUCKET><i>`.
pub const LATENCY_BUCKET: &str = "ingest_latency_bucket/";
