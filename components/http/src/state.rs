//! The app's durable state in a `wasi:keyvalue@0.2.0-draft2` store:
//!
//! | key | value |
//! | --- | --- |
//! | `user/<id>` | the user's window ([`StoredWindow`]: 12 bytes per event) |
//! | `watermark` | the largest accepted timestamp, f64 little-endian |
//! | `count/<name>` | a counter, only ever changed by `increment` |
//!
//! Windows and the watermark are read-modify-written with compare-and-swap and retried on
//! conflict, so concurrent requests (in one instance or many) never lose an accepted event.

use edgescore_core::stored_window::StoredWindow;
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch, store};

pub use store::Bucket;

/// Attempts at one compare-and-swap before the request gives up (each retry means another
/// request wrote the same key in between; 64 in a row means a storm, not bad luck).
const CAS_ATTEMPTS: usize = 64;

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

pub type Result<T> = std::result::Result<T, StateError>;

pub fn open() -> Result<Bucket> {
    Ok(store::open(&crate::config::store_name())?)
}

pub fn user_key(user_id: &str) -> String {
    format!("user/{user_id}")
}

/// Reads, changes and writes one key atomically; `change` may run several times.
fn update(
    bucket: &Bucket,
    key: &str,
    mut change: impl FnMut(Option<Vec<u8>>) -> Result<Vec<u8>>,
) -> Result<()> {
    for _ in 0..CAS_ATTEMPTS {
        let cas = atomics::Cas::new(bucket, key)?;
        let value = change(cas.current()?)?;
        match atomics::swap(cas, &value) {
            Ok(()) => return Ok(()),
            Err(atomics::CasError::CasFailed(_)) => continue,
            Err(atomics::CasError::StoreError(e)) => return Err(e.into()),
        }
    }
    Err(StateError(format!(
        "state: {key} kept changing under {CAS_ATTEMPTS} attempts to update it"
    )))
}

fn decode(key: &str, value: Option<Vec<u8>>) -> Result<StoredWindow> {
    match value {
        None => Ok(StoredWindow::default()),
        Some(bytes) => StoredWindow::decode(&bytes).map_err(|e| StateError(format!("{key}: {e}"))),
    }
}

/// Adds scored events to a user's window and drops what is at or before `cutoff`.
pub fn record(bucket: &Bucket, user_id: &str, events: &[(f64, f32)], cutoff: f64) -> Result<()> {
    let key = user_key(user_id);
    update(bucket, &key, |current| {
        let mut window = decode(&key, current)?;
        window.insert(events.iter().copied());
        window.expire(cutoff);
        Ok(window.encode())
    })
}

/// A user's window as of `cutoff` (expired events left out).
pub fn window(bucket: &Bucket, user_id: &str, cutoff: Option<f64>) -> Result<StoredWindow> {
    let key = user_key(user_id);
    let mut window = decode(&key, bucket.get(&key)?)?;
    if let Some(cutoff) = cutoff {
        window.expire(cutoff);
    }
    Ok(window)
}

pub fn watermark(bucket: &Bucket) -> Result<Option<f64>> {
    Ok(bucket.get("watermark")?.as_deref().and_then(read_f64))
}

/// Raises the stored watermark to `to` (never lowers it).
pub fn raise_watermark(bucket: &Bucket, to: f64) -> Result<()> {
    update(bucket, "watermark", |current| {
        let stored = current.as_deref().and_then(read_f64);
        Ok(stored.map_or(to, |w| w.max(to)).to_le_bytes().to_vec())
    })
}

fn read_f64(bytes: &[u8]) -> Option<f64> {
    Some(f64::from_le_bytes(bytes.try_into().ok()?))
}

pub fn count(bucket: &Bucket, name: &str, delta: i64) -> Result<i64> {
    Ok(atomics::increment(bucket, &format!("count/{name}"), delta)?)
}

/// The ingest latency bucket counters (`core::api::latency`) are `count/<LATENCY_BUCKET><i>`.
pub const LATENCY_BUCKET: &str = "ingest_latency_bucket/";

/// What `/stats` reads by listing the keys.
pub struct Scan {
    /// Every user's window as of the cutoff.
    pub windows: Vec<StoredWindow>,
    /// The latency buckets that have a counter.
    pub latency_buckets: Vec<u32>,
}

/// Lists every key (one `list-keys` page and one `get-many` of its users at a time).
pub fn scan(bucket: &Bucket, cutoff: Option<f64>) -> Result<Scan> {
    let mut windows = Vec::new();
    let mut latency_buckets = Vec::new();
    let prefix = format!("count/{LATENCY_BUCKET}");
    let mut cursor = None;
    loop {
        let page = bucket.list_keys(cursor.as_deref())?;
        latency_buckets.extend(
            page.keys
                .iter()
                .filter_map(|k| k.strip_prefix(&prefix)?.parse::<u32>().ok()),
        );
        let users: Vec<String> = page
            .keys
            .into_iter()
            .filter(|k| k.starts_with("user/"))
            .collect();
        if !users.is_empty() {
            for (key, value) in batch::get_many(bucket, &users)? {
                let mut window = decode(&key, value)?;
                if let Some(cutoff) = cutoff {
                    window.expire(cutoff);
                }
                windows.push(window);
            }
        }
        match page.cursor {
            Some(next) => cursor = Some(next),
            None => {
                return Ok(Scan {
                    windows,
                    latency_buckets,
                });
            }
        }
    }
}
