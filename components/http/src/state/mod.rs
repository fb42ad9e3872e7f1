//! The app's durable state in a `wasi:keyvalue@0.2.0-draft2` store:
//!
//! | key | value |
//! | --- | --- |
//! | `user/<id>` (`userh/<sha-256>` for an id too long for a key) | the user's window ([`windows`]) |
//! | `watermark` | the largest accepted timestamp, f64 little-endian |
//! | `count/<name>` | a counter, only ever changed by `increment` |
//! | `sweep/cursor` | where the sweep of idle windows goes on ([`sweep`]) |
//!
//! Windows and the watermark are read-modify-written with compare-and-swap and retried on
//! conflict (after a short, jittered, growing pause), so concurrent requests (in one instance or
//! many, one replica or many) never lose an accepted event. What a request wrote is kept in its
//! [`Journal`] and taken back if a later write fails, so that a failing store never leaves half
//! a request recorded. `/stats` reads counters only, in one `get-many`.

mod journal;
pub mod sweep;
pub mod windows;

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use edgescore_contract::ApiError;
use edgescore_contract::store_layout::decode_counter;
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};

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
    Ok(store::open(&crate::config::store_name())?)
}

/// Reads, changes and writes one key atomically; `change` may run several times and gives the
/// new value (none: the value stays as it is, unwritten) and what to report of the change.
fn update<R>(
    bucket: &Bucket,
    key: &str,
    mut change: impl FnMut(Option<Vec<u8>>) -> Result<(Option<Vec<u8>>, R)>,
) -> Result<R> {
    let mut retries = 0;
    let outcome = loop {
        let cas = atomics::Cas::new(bucket, key)?;
        let (value, report) = change(cas.current()?)?;
        // Nothing to write (the watermark is already as high).
        let Some(value) = value else {
            break Ok(report);
        };
        match atomics::swap(cas, &value) {
            Ok(()) => break Ok(report),
            Err(atomics::CasError::CasFailed(_)) if retries + 1 < CAS_ATTEMPTS => {
                retries += 1;
                std::thread::sleep(backoff(retries, key));
            }
            Err(atomics::CasError::CasFailed(_)) => {
                break Err(StateError::new(format!(
                    "state: {key} kept changing under {CAS_ATTEMPTS} attempts to update it"
                )));
            }
            Err(atomics::CasError::StoreError(e)) => break Err(e.into()),
        }
    };
    if retries > 0 && outcome.is_ok() {
        // Best effort: the write is done, a lost retry count is no reason to fail it.
        let _ = count(bucket, "cas_retries", i64::from(retries));
    }
    outcome
}

/// The pause before retry `n` of a conflicting swap: growing (50 µs, doubling, at most 5 ms)
/// and jittered, so that requests racing for one key do not race again in step.
fn backoff(n: u32, key: &str) -> Duration {
    let ceiling = (50u64 << n.min(7)).min(5_000);
    let jitter = RandomState::new().hash_one((n, key)) % ceiling.max(1);
    Duration::from_micros(ceiling / 2 + jitter / 2)
}

pub fn watermark(bucket: &Bucket) -> Result<Option<f64>> {
    Ok(bucket.get(WATERMARK)?.as_deref().and_then(read_f64))
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
    Ok(atomics::increment(bucket, &counter_key(name), delta)?)
}

/// Counters and the watermark, read in one `get-many` (a counter never written reads 0).
pub fn read_counters(bucket: &Bucket, names: &[String]) -> Result<(Vec<i64>, Option<f64>)> {
    let mut keys: Vec<String> = names.iter().map(|n| counter_key(n)).collect();
    keys.push(WATERMARK.into());
    let mut values = batch::get_many(bucket, &keys)?;
    let watermark = values.pop().and_then(|(_, v)| read_f64(&v?));
    let counts = values
        .into_iter()
        .map(|(key, value)| match value {
            None => Ok(0),
            Some(v) => decode_counter(&v)
                .ok_or_else(|| StateError::new(format!("state: {key}: not a counter"))),
        })
        .collect::<Result<_>>()?;
    Ok((counts, watermark))
}

/// The ingest latency bucket counters (`edgescore_contract::latency`) are `count/<LATENCY_BUCKET><i>`.
pub const LATENCY_BUCKET: &str = "ingest_latency_bucket/";
