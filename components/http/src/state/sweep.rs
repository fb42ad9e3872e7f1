//! The sweep of idle windows. A user's window is trimmed whenever it is read or written; a user
//! who never comes back would keep its key for ever, and a store fed made-up user ids would
//! grow without end. So the requests that write windows also sweep: once an instance has
//! written [`SWEEP_AFTER`] windows, its next ingest lists one page of keys from where the last
//! sweep (of any instance or replica) stopped, reads their windows in one `get-many` and trims
//! every one that holds expired events, deleting those left empty — through the same
//! compare-and-swap as any other write, so the counters follow. The sweep therefore visits keys
//! at least as fast as requests create them (a page is about 1,000 keys, more than the windows
//! written meanwhile) and the store holds what the windows hold, plus the keys created since
//! the sweep last passed by.

use std::sync::atomic::{AtomicUsize, Ordering};

use edgescore_contract::store_layout::UserKey;
use spin_sdk::experimental::wasi::keyvalue::batch;

use super::windows::{self, WindowChange};
use super::{Bucket, Result};

/// Windows an instance writes between two sweeps.
pub const SWEEP_AFTER: usize = 500;
const CURSOR: &str = "sweep/cursor";

/// Windows this instance wrote since its last sweep.
static WRITTEN: AtomicUsize = AtomicUsize::new(0);

/// Notes `windows` written; sweeps one page if that makes the instance due. Returns the
/// windows' change the sweep wrote (already counted), if it swept.
pub fn after_writing(bucket: &Bucket, windows: usize, cutoff: f64) -> Result<Option<WindowChange>> {
    if WRITTEN.fetch_add(windows, Ordering::Relaxed) + windows < SWEEP_AFTER {
        return Ok(None);
    }
    WRITTEN.store(0, Ordering::Relaxed);
    sweep_page(bucket, cutoff).map(Some)
}

/// Trims the windows of one page of keys, from the stored cursor on; stores the next cursor.
pub fn sweep_page(bucket: &Bucket, cutoff: f64) -> Result<WindowChange> {
    let cursor = bucket
        .get(CURSOR)?
        .and_then(|c| String::from_utf8(c).ok())
        .filter(|c| !c.is_empty());
    let page = bucket.list_keys(cursor.as_deref())?;
    let users: Vec<UserKey> = page.keys.iter().filter_map(|k| UserKey::parse(k)).collect();
    let mut swept = WindowChange::default();
    if !users.is_empty() {
        // Read in one go; each trim below starts its compare-and-swap from these values.
        let keys: Vec<String> = users.iter().map(|k| k.as_str().to_string()).collect();
        batch::get_many(bucket, &keys)?;
        for key in &users {
            if let (_, Some(change)) = windows::trim(bucket, key, None, Some(cutoff))? {
                swept.add(change);
            }
        }
        windows::count_change(bucket, swept)?;
    }
    // The end of the keys: the next sweep starts over.
    bucket.set(CURSOR, page.cursor.unwrap_or_default().as_bytes())?;
    Ok(swept)
}
