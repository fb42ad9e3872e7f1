//! Users' windows: where each is kept ([`UserKey`]: long ids hashed within the key limit, the
//! id then inside the value), read, merged and trimmed with compare-and-swap.
//!
//! Every write stamps the window with a write id of its own, so that a writer that is told its
//! swap failed can see whether it was done after all (`edgescore_contract::stored_window`).
//!
//! A window left with no events is then swapped for an empty value, compare-and-swap again: our
//! stores delete the key then, atomically (Spin's own stores keep an empty value, which reads as
//! an empty window).

use edgescore_contract::store_layout::UserKey;
use edgescore_contract::stored_window::StoredWindow;
use spin_sdk::experimental::wasi::keyvalue::atomics;

use super::{Bucket, Result, StateError, WATERMARK, kv, read_f64, update};

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

/// A new write's id: random, never 0.
fn write_id(user_id: &str) -> u64 {
    use std::hash::{BuildHasher, RandomState};
    RandomState::new().hash_one(user_id).max(1)
}

/// Reads the watermark, and the users' windows with it in one `get-many`: the host starts each
/// compare-and-swap of them from the value read here (one round trip per user, not two). The
/// windows' values are not used here: a host that serves no such shortcut (Spin's) reads them
/// again. A store whose `get-many` fails (Spin's Redis store) reads the watermark alone.
pub fn read_for_ingest<'a>(
    bucket: &Bucket,
    users: impl IntoIterator<Item = &'a str>,
) -> Result<Option<f64>> {
    let mut keys = vec![WATERMARK.to_string()];
    let mut seen = std::collections::HashSet::new();
    keys.extend(
        users
            .into_iter()
            .filter(|u| seen.insert(*u))
            .map(|u| UserKey::of(u).as_str().to_string()),
    );
    match kv::get_many(bucket, &keys) {
        Ok(found) => Ok(found
            .into_iter()
            .find(|(key, _)| key == WATERMARK)
            .and_then(|(_, value)| value)
            .as_deref()
            .and_then(read_f64)),
        Err(_) => super::watermark(bucket),
    }
}

/// Whether the stored window `value` holds events at or before `cutoff`, or none (a sweep's
/// trim would change it).
fn due_for_trim(key: &UserKey, value: &[u8], cutoff: f64) -> bool {
    match decode(key, None, Some(value)) {
        Ok(mut window) => window.is_empty() || window.expire(cutoff) > 0,
        // The trim reports it.
        Err(_) => true,
    }
}

/// Of the windows at `keys`, those a sweep must trim, read in one `get-many`: all of them if
/// the store's `get-many` fails.
pub fn due_for_sweep<'k>(bucket: &Bucket, keys: &'k [UserKey], cutoff: f64) -> Vec<&'k UserKey> {
    let names: Vec<String> = keys.iter().map(|k| k.as_str().to_string()).collect();
    match kv::get_many(bucket, &names) {
        Ok(found) => {
            let found: std::collections::HashMap<String, Vec<u8>> = found
                .into_iter()
                .filter_map(|(key, value)| Some((key, value?)))
                .collect();
            keys.iter()
                .filter(|k| {
                    found
                        .get(k.as_str())
                        .is_some_and(|v| due_for_trim(k, v, cutoff))
                })
                .collect()
        }
        Err(_) => keys.iter().collect(),
    }
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
    let id = write_id(user_id);
    let mut written = WindowChange::default();
    let mut value = Vec::new();
    let mut emptied = false;
    let change = update(bucket, key.as_str(), |current| {
        let before = decode(&key, Some(user_id), current.as_deref())?;
        // The window went through this write: a swap reported failed was done after all.
        if before.written_by(id) {
            return Ok((None, written));
        }
        let mut window = before.clone();
        change(&mut window);
        written = WindowChange::between(&before, &window);
        emptied = window.is_empty();
        // Never the same value twice: should a write whose answer was lost land after a
        // take-back read its window, the take-back's swap then fails, and it reads again and
        // finds the events.
        window.stamp(id);
        value = key.wrap(user_id, window.encode());
        Ok((Some(value.clone()), written))
    })?;
    if emptied {
        delete_if_unchanged(bucket, &key, &value);
    }
    Ok(change)
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
    let (cas, current) = kv::cas(bucket, key.as_str())?;
    let stored = decode(key, user_id, current.as_deref())?;
    let mut window = stored.clone();
    if let Some(cutoff) = cutoff {
        window.expire(cutoff);
    }
    let Some(current) = current.filter(|v| !v.is_empty()) else {
        return Ok((window, None));
    };
    if stored.is_empty() {
        // A window with no events left (taken back): its key goes.
        delete_if_unchanged(bucket, key, &current);
        return Ok((window, None));
    }
    if window.len() == stored.len() {
        return Ok((window, None));
    }
    // Written with a write id even when emptied, so that its writer can tell it was done, then
    // deleted (a change of nothing, which needs no telling).
    let id = write_id(key.as_str());
    window.stamp(id);
    let inner = key
        .unwrap(None, &current)
        .map_err(|e| StateError::new(format!("state: {e}")))?;
    let owner = &current[..current.len() - inner.len()];
    let value = [owner, &window.encode()].concat();
    let done = match kv::swap(cas, &value) {
        Ok(()) => true,
        // Written since (the writer trimmed it too), unless the window names this write: done,
        // though the host said it failed.
        Err(atomics::CasError::CasFailed(_)) => {
            let now = kv::get(bucket, key.as_str()).ok().flatten();
            decode(key, user_id, now.as_deref()).is_ok_and(|w| w.written_by(id))
        }
        // The write refused: the next one trims.
        Err(atomics::CasError::StoreError(_)) => false,
    };
    if !done {
        return Ok((window, None));
    }
    if window.is_empty() {
        delete_if_unchanged(bucket, key, &value);
    }
    let change = WindowChange::between(&stored, &window);
    Ok((window, Some(change)))
}

/// Deletes the window at `key` if it still holds `value` (our stores delete a key swapped for an
/// empty value; Spin's keep the empty value). Best effort: a trim deletes it later.
fn delete_if_unchanged(bucket: &Bucket, key: &UserKey, value: &[u8]) {
    if let Ok((cas, Some(now))) = kv::cas(bucket, key.as_str())
        && now == value
    {
        let _ = kv::swap(cas, &[]);
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
