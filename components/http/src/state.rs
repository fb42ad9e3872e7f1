//! The app's durable state in a `wasi:keyvalue@0.2.0-draft2` store:
//!
//! | key | value |
//! | --- | --- |
//! | `user/<id>` | the user's window ([`StoredWindow`]: 12 bytes per event) |
//! | `watermark` | the largest accepted timestamp, f64 little-endian |
//! | `count/<name>` | a counter, only ever changed by `increment` |
//!
//! Windows and the watermark are read-modify-written with compare-and-swap and retried on
//! conflict (after a short, jittered, growing pause), so concurrent requests (in one instance or
//! many) never lose an accepted event. A window that has emptied is swapped for an empty value,
//! compare-and-swap again: our stores delete the key then, atomically (Spin's own stores keep an
//! empty value, which reads as an empty window). `/stats` reads counters only: `users`,
//! `events_in_windows` and `stored_window_bytes` follow every swap of a window.

use std::hash::{BuildHasher, RandomState};
use std::time::Duration;

use edgescore_contract::ApiError;
use edgescore_contract::stored_window::StoredWindow;
use spin_sdk::experimental::wasi::keyvalue::{atomics, store};

pub use store::Bucket;

/// Attempts at one compare-and-swap before the request gives up (each retry means another
/// request wrote the same key in between; 64 in a row means a storm, not bad luck).
const CAS_ATTEMPTS: u32 = 64;

#[derive(Debug)]
pub struct StateError(pub String);

impl From<store::Error> for StateError {
    fn from(e: store::Error) -> Self {
        StateError(match e {
            store::Error::NoSuchStore => "state: no such key-value store".into(),
            store::Error::AccessDenied => "state: access to the key-value store denied".into(),
            store::Error::Other(m) => format!("state: {m}"),
        })
    }
}

/// The store could not be read or written: 503, nothing of the request was done.
impl From<StateError> for ApiError {
    fn from(e: StateError) -> Self {
        ApiError::unavailable(e.0, 1)
    }
}

pub type Result<T> = std::result::Result<T, StateError>;

pub fn open() -> Result<Bucket> {
    Ok(store::open(&crate::config::store_name())?)
}

pub fn user_key(user_id: &str) -> String {
    format!("user/{user_id}")
}

/// Reads, changes and writes one key atomically; `change` may run several times and gives the
/// new value and what to report of the change that was written.
fn update<R>(
    bucket: &Bucket,
    key: &str,
    mut change: impl FnMut(Option<Vec<u8>>) -> Result<(Vec<u8>, R)>,
) -> Result<R> {
    let mut retries = 0;
    let outcome = loop {
        let cas = atomics::Cas::new(bucket, key)?;
        let (value, report) = change(cas.current()?)?;
        match atomics::swap(cas, &value) {
            Ok(()) => break Ok(report),
            Err(atomics::CasError::CasFailed(_)) if retries + 1 < CAS_ATTEMPTS => {
                retries += 1;
                std::thread::sleep(backoff(retries, key));
            }
            Err(atomics::CasError::CasFailed(_)) => {
                break Err(StateError(format!(
                    "state: {key} kept changing under {CAS_ATTEMPTS} attempts to update it"
                )));
            }
            Err(atomics::CasError::StoreError(e)) => break Err(e.into()),
        }
    };
    if retries > 0 {
        count(bucket, "cas_retries", i64::from(retries))?;
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

fn decode(key: &str, value: Option<&[u8]>) -> Result<StoredWindow> {
    match value {
        None => Ok(StoredWindow::default()),
        Some(bytes) => StoredWindow::decode(bytes).map_err(|e| StateError(format!("{key}: {e}"))),
    }
}

/// What one swap of a window changed, for the counters of `/stats`.
#[derive(Debug, Default, Clone, Copy)]
pub struct WindowChange {
    pub users: i64,
    pub events: i64,
    pub bytes: i64,
}

impl WindowChange {
    fn between(before: &StoredWindow, after: &StoredWindow) -> WindowChange {
        let size = |w: &StoredWindow| {
            if w.is_empty() {
                0
            } else {
                w.encoded_len() as i64
            }
        };
        WindowChange {
            users: i64::from(!after.is_empty()) - i64::from(!before.is_empty()),
            events: after.len() as i64 - before.len() as i64,
            bytes: size(after) - size(before),
        }
    }

    pub fn add(&mut self, other: WindowChange) {
        self.users += other.users;
        self.events += other.events;
        self.bytes += other.bytes;
    }

    /// Enters the change in the counters.
    pub fn count(&self, bucket: &Bucket) -> Result<()> {
        for (name, delta) in [
            ("users", self.users),
            ("events_in_windows", self.events),
            ("stored_window_bytes", self.bytes),
        ] {
            if delta != 0 {
                count(bucket, name, delta)?;
            }
        }
        Ok(())
    }
}

/// A window as its key holds it: empty windows as an empty value.
fn encode(window: &StoredWindow) -> Vec<u8> {
    if window.is_empty() {
        Vec::new()
    } else {
        window.encode()
    }
}

/// Adds scored events to a user's window and drops what is at or before `cutoff`.
pub fn record(
    bucket: &Bucket,
    user_id: &str,
    events: &[(f64, f32)],
    cutoff: f64,
) -> Result<WindowChange> {
    let key = user_key(user_id);
    update(bucket, &key, |current| {
        let before = decode(&key, current.as_deref())?;
        let mut window = before.clone();
        window.insert(events.iter().copied());
        window.expire(cutoff);
        Ok((encode(&window), WindowChange::between(&before, &window)))
    })
}

/// A user's window as of `cutoff` (expired events left out). A window that held expired events
/// is written back without them — an emptied one as an empty value (deleted by our stores) —
/// unless a writer got there first.
pub fn window(bucket: &Bucket, user_id: &str, cutoff: Option<f64>) -> Result<StoredWindow> {
    let key = user_key(user_id);
    let cas = atomics::Cas::new(bucket, &key)?;
    let stored = decode(&key, cas.current()?.as_deref())?;
    let mut window = stored.clone();
    if let Some(cutoff) = cutoff {
        window.expire(cutoff);
    }
    if window.len() < stored.len() {
        match atomics::swap(cas, &encode(&window)) {
            Ok(()) => WindowChange::between(&stored, &window).count(bucket)?,
            // Written since: the writer trimmed it too.
            Err(atomics::CasError::CasFailed(_)) => {}
            Err(atomics::CasError::StoreError(e)) => return Err(e.into()),
        }
    }
    Ok(window)
}

pub fn watermark(bucket: &Bucket) -> Result<Option<f64>> {
    Ok(bucket.get("watermark")?.as_deref().and_then(read_f64))
}

/// Raises the stored watermark to `to` (never lowers it). Callers skip it when `to` is not above
/// the watermark they read.
pub fn raise_watermark(bucket: &Bucket, to: f64) -> Result<()> {
    update(bucket, "watermark", |current| {
        let stored = current.as_deref().and_then(read_f64);
        Ok((stored.map_or(to, |w| w.max(to)).to_le_bytes().to_vec(), ()))
    })
}

fn read_f64(bytes: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

pub fn count(bucket: &Bucket, name: &str, delta: i64) -> Result<i64> {
    Ok(atomics::increment(bucket, &format!("count/{name}"), delta)?)
}

/// The ingest latency bucket counters (`edgescore_contract::latency`) are `count/<LATENCY_BUCKET><i>`.
pub const LATENCY_BUCKET: &str = "ingest_latency_bucket/";

/// Every latency bucket's count, in one `get-many`.
pub fn latency_buckets(bucket: &Bucket) -> Result<Vec<(u32, u64)>> {
    use spin_sdk::experimental::wasi::keyvalue::batch;
    let keys: Vec<String> = (0..edgescore_contract::latency::BUCKETS)
        .map(|b| format!("count/{LATENCY_BUCKET}{b}"))
        .collect();
    Ok(batch::get_many(bucket, &keys)?
        .into_iter()
        .enumerate()
        .filter_map(|(b, (_, value))| {
            let n = i64::from_le_bytes(value?.as_slice().try_into().ok()?);
            Some((b as u32, n.max(0) as u64))
        })
        .collect())
}
