//! The sweep of idle windows. A user's window is trimmed whenever it is read or written; a user
//! who never comes back would keep its key for ever, and a store fed made-up user ids would
//! grow without end. So the requests that write windows also sweep: once an instance has
//! written [`SWEEP_AFTER`] windows, its next ingest lists one page of keys from where the last
//! sweep (of any instance or replica) stopped, reads their windows in one `get-many` and trims
//! those that hold expired events, deleting those left empty — through the same
//! compare-and-swap as any other write, so the counters follow. The sweep therefore visits keys
//! at least as fast as requests create them (a page is about 1,000 keys, more than the windows
//! written meanwhile) and the store holds what the windows hold, plus the keys created since
//! the sweep last passed by.

use std::sync::atomic::{AtomicUsize, Ordering};

use edgescore_contract::store_layout::{UserKey, page_after};

use super::windows::{self, WindowChange};
use super::{Bucket, Result, kv};

/// Windows an instance writes between two sweeps.
pub const SWEEP_AFTER: usize = 500;
const CURSOR: &str = "sweep/cursor";
/// Keys one sweep visits at most.
const PAGE: usize = 1000;

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
    let cursor = kv::get(bucket, CURSOR)?
        .and_then(|c| String::from_utf8(c).ok())
        .filter(|c| !c.is_empty());
    let (keys, next) = next_page(bucket, cursor)?;
    let users: Vec<UserKey> = keys.iter().filter_map(|k| UserKey::parse(k)).collect();
    let mut swept = WindowChange::default();
    if !users.is_empty() {
        // Only the windows that hold expired events are trimmed, each from the value read here.
        for key in windows::due_for_sweep(bucket, &users, cutoff) {
            if let (_, Some(change)) = windows::trim(bucket, key, None, Some(cutoff))? {
                swept.add(change);
            }
        }
        windows::count_change(bucket, swept)?;
    }
    // The end of the keys: the next sweep starts over.
    kv::set(bucket, CURSOR, next.unwrap_or_default().as_bytes())?;
    Ok(swept)
}

/// At most [`PAGE`] keys from `cursor` on, and the cursor of the next page (none: the last).
///
/// `list-keys` may answer any number of keys, and a host may not page at all: Spin lists every
/// key at once and refuses a cursor. Then the sweep pages itself: the keys after `cursor` (a key)
/// in sorted order, [`PAGE`] of them, so that one sweep never trims the whole store.
fn next_page(bucket: &Bucket, cursor: Option<String>) -> Result<(Vec<String>, Option<String>)> {
    let listed = match kv::list_keys(bucket, cursor.as_deref()) {
        // The host pages (its cursor is its own), or its listing is short.
        Ok(page) if page.keys.len() <= PAGE || page.cursor.is_some() => {
            return Ok((page.keys, page.cursor));
        }
        Ok(page) => page.keys,
        // A host that takes no cursor: the cursor is then ours, a key.
        Err(_) if cursor.is_some() => kv::list_keys(bucket, None)?.keys,
        Err(e) => return Err(e.into()),
    };
    Ok(page_after(listed, cursor.as_deref(), PAGE))
}
