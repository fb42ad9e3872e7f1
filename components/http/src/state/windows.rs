//! Users' windows: where each is kept ([`UserKey`]: long ids hashed within the key limit, the
//! id then inside the value), read, merged and trimmed with compare-and-swap.
//!
//! A window that has emptied is swapped for an empty value, compare-and-swap again: our stores
//! delete the key then, atomically (Spin's own stores keep an empty value, which reads as an
//! empty window).

use edgescore_contract::store_layout::UserKey;
use edgescore_contract::stored_window::StoredWindow;
use spin_sdk::experimental::wasi::keyvalue::{atomics, batch};

use super::{Bucket, Result, StateError, WATERMARK, read_f64, update};

fn decode(key: &UserKey, user_id: Option<&str>, value: Option<&[u8]>) -> Result<StoredWindow> {
    let Some(value) = value else {
        return Ok(StoredWindow::default());
    };
    let bytes = key
        .unwrap(user_id, value)
        .map_err(|e| StateError::new(format!("state: {e}")))?;
    StoredWindow::decode(bytes)
        .map_err(|e| StateError::new(format!("state: {}: {e}", key.as_str())))
}

/// A window as its key holds it: an empty window as an empty value.
fn encode(key: &UserKey, user_id: &str, window: &StoredWindow) -> Vec<u8> {
    if window.is_empty() {
        Vec::new()
    } else {
        key.wrap(user_id, window.encode())
    }
}

/// The watermark and the users' windows in one `get-many`: the host starts each user's
/// compare-and-swap from the value read here (one round trip per user, not two), and a store
/// that serves no such shortcut (Spin's) only reads them again.
pub fn prefetch<'a>(
    bucket: &Bucket,
    users: impl IntoIterator<Item = &'a str>,
) -> Result<Option<f64>> {
    let mut keys = vec![WATERMARK.to_string()];
    keys.extend(
        users
            .into_iter()
            .map(|u| UserKey::of(u).as_str().to_string()),
    );
    let values = batch::get_many(bucket, &keys)?;
    Ok(values.into_iter().next().and_then(|(_, v)| read_f64(&v?)))
}

/// What one swap of a window changed, for the counters of `/stats`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct WindowChange {
    pub users: i64,
    pub events: i64,
}

impl WindowChange {
    fn between(before: &StoredWindow, after: &StoredWindow) -> WindowChange {
        WindowChange {
            users: i64::from(!after.is_empty()) - i64::from(!before.is_empty()),
            events: after.len() as i64 - before.len() as i64,
        }
    }

    pub fn add(&mut self, other: WindowChange) {
        self.users += other.users;
        self.events += other.events;
    }

    /// The counters that follow the windows, with what this change adds to them.
    pub fn counters(&self) -> [(&'static str, i64); 2] {
        [("users", self.users), ("events_in_windows", self.events)]
    }
}

/// Changes one user's window with `change` (which may run several times).
fn change_window(
    bucket: &Bucket,
    user_id: &str,
    change: impl Fn(&mut StoredWindow),
) -> Result<WindowChange> {
    let key = UserKey::of(user_id);
    update(bucket, key.as_str(), |current| {
        let before = decode(&key, Some(user_id), current.as_deref())?;
        let mut window = before.clone();
        change(&mut window);
        let change = WindowChange::between(&before, &window);
        // Written even unchanged: should a write whose answer was lost land after a take-back
        // read its window, the take-back's swap then fails, and it reads again and finds the
        // events.
        Ok((Some(encode(&key, user_id, &window)), change))
    })
}

/// Adds scored events to a user's window and drops what is at or before `cutoff`.
pub fn record(
    bucket: &Bucket,
    user_id: &str,
    events: &[(f64, f32)],
    cutoff: f64,
) -> Result<WindowChange> {
    change_window(bucket, user_id, |window| {
        window.insert(events.iter().copied());
        window.expire(cutoff);
    })
}

/// Takes `events` (added by [`record`]) out of a user's window again.
pub fn take_back(bucket: &Bucket, user_id: &str, events: &[(f64, f32)]) -> Result<WindowChange> {
    change_window(bucket, user_id, |window| {
        window.remove(events.iter().copied());
    })
}

/// A user's window as of `cutoff` (expired events left out). A window that held expired events
/// is written back without them — an emptied one as an empty value — unless a writer got there
/// first. Writing back is housekeeping: a store that refuses it (out of memory, say) still
/// gets the read answered.
pub fn window(bucket: &Bucket, user_id: &str, cutoff: Option<f64>) -> Result<StoredWindow> {
    let key = UserKey::of(user_id);
    let (window, change) = trim(bucket, &key, Some(user_id), cutoff)?;
    if let Some(change) = change {
        // Failing, the counters stay ahead of the windows: the README's known limit.
        let _ = count_change(bucket, change);
    }
    Ok(window)
}

/// The window at `key` as of `cutoff`, written back if that dropped events (unless a writer got
/// there first, or the store refused the write); the change, if it was written.
pub fn trim(
    bucket: &Bucket,
    key: &UserKey,
    user_id: Option<&str>,
    cutoff: Option<f64>,
) -> Result<(StoredWindow, Option<WindowChange>)> {
    let cas = atomics::Cas::new(bucket, key.as_str())?;
    let current = cas.current()?;
    let stored = decode(key, user_id, current.as_deref())?;
    let mut window = stored.clone();
    if let Some(cutoff) = cutoff {
        window.expire(cutoff);
    }
    if window.len() == stored.len() {
        return Ok((window, None));
    }
    // An emptied window needs no owner; one still holding events keeps the id it had.
    let value = if window.is_empty() {
        Vec::new()
    } else {
        let value = current.as_deref().unwrap_or_default();
        let inner = key
            .unwrap(None, value)
            .map_err(|e| StateError::new(format!("state: {e}")))?;
        let owner = &value[..value.len() - inner.len()];
        [owner, &window.encode()].concat()
    };
    match atomics::swap(cas, &value) {
        Ok(()) => {
            let change = WindowChange::between(&stored, &window);
            Ok((window, Some(change)))
        }
        // Written since: the writer trimmed it too. Or the write refused: the next one trims.
        Err(atomics::CasError::CasFailed(_) | atomics::CasError::StoreError(_)) => {
            Ok((window, None))
        }
    }
}

/// Enters a change of the windows in their counters.
pub fn count_change(bucket: &Bucket, change: WindowChange) -> Result<()> {
    for (name, delta) in change.counters() {
        if delta != 0 {
            super::count(bucket, name, delta)?;
        }
    }
    Ok(())
}
