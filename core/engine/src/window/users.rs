//! Every user's window under one service-wide watermark (see `docs/http-api.md`):
//! W = the largest accepted timestamp; a user's window holds its events with `timestamp > W -
//! window`. A user whose window empties is dropped, so memory follows the active users.
//!
//! Expiry is driven by a min-heap of "due" entries, one live entry per user at the timestamp of its
//! oldest event, so advancing W touches only the users that have something to expire.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;
use std::hash::BuildHasher;

use hashbrown::HashTable;

use super::UserWindow;
use crate::growth::GrowGently;
use crate::hashing::InstanceKeys;

/// A user slot's expiry entry. An entry is stale when its slot's user has rescheduled (its due
/// time is another) or left (the slot is empty): it is skipped. A stale entry whose slot was taken
/// by a new user with that very due time runs the new user's expiry early, which does what its own
/// entry would do (expiry at any time drops exactly what is out of the window); keeping no
/// generation per slot for that saves 8 bytes a user.
#[derive(Debug, Clone, Copy)]
struct Due {
    timestamp: f64,
    slot: u32,
}

impl Ord for Due {
    fn cmp(&self, other: &Self) -> Ordering {
        self.timestamp
            .total_cmp(&other.timestamp)
            .then(self.slot.cmp(&other.slot))
    }
}
impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Due {}

#[derive(Debug, Clone)]
struct User {
    id: Box<str>,
    window: UserWindow,
    /// The timestamp of this user's live `Due` entry.
    due: f64,
}

/// Adds an expiry entry (growing the heap gently: it holds about one entry per user).
fn schedule(due: &mut BinaryHeap<Reverse<Due>>, entry: Due) {
    due.grow_gently();
    due.push(Reverse(entry));
}

fn hash_id(user_id: &str) -> u64 {
    InstanceKeys.hash_one(user_id)
}

/// All users' windows and the watermark.
#[derive(Debug, Clone)]
pub struct Windows {
    window_seconds: f64,
    watermark: Option<f64>,
    /// The slots by user id, hashed under the instance's keys (see `hashing`: user ids come from
    /// clients). It holds slot numbers only: each id is stored once, in its slot.
    index: HashTable<u32>,
    /// Users by slot; the slots of users who left are reused (`free`).
    slots: Vec<Option<User>>,
    free: Vec<u32>,
    due: BinaryHeap<Reverse<Due>>,
    events: usize,
}

/// What a window says of one user.
#[derive(Debug, Clone, PartialEq)]
pub struct MedianSummary {
    pub median: Option<f64>,
    pub count: u32,
}

impl Windows {
    pub fn new(window_seconds: f64) -> Self {
        Windows {
            window_seconds,
            watermark: None,
            index: HashTable::new(),
            slots: Vec::new(),
            free: Vec::new(),
            due: BinaryHeap::new(),
            events: 0,
        }
    }

    pub fn window_seconds(&self) -> f64 {
        self.window_seconds
    }

    pub fn watermark(&self) -> Option<f64> {
        self.watermark
    }

    /// Timestamps at or before this are outside every window (and late on arrival).
    pub fn cutoff(&self) -> Option<f64> {
        self.watermark
            .map(|w| edgescore_types::rules::window_start(w, self.window_seconds))
    }

    pub fn users(&self) -> usize {
        self.index.len()
    }

    pub fn events(&self) -> usize {
        self.events
    }

    /// Whether the user has a window now.
    pub fn holds(&self, user_id: &str) -> bool {
        self.slot_of(user_id).is_some()
    }

    /// Raises the watermark to `timestamp` if it is larger (the caller has accepted the event).
    pub fn advance(&mut self, timestamp: f64) {
        if self.watermark.is_none_or(|w| timestamp > w) {
            self.watermark = Some(timestamp);
        }
    }

    /// Records an accepted event's score. Call [`Windows::expire`] after a batch.
    pub fn insert(&mut self, user_id: &str, timestamp: f64, score: f32) {
        let slot = match self.slot_of(user_id) {
            Some(slot) => slot,
            None => self.new_user(user_id, timestamp),
        };
        let user = self.slots[slot as usize]
            .as_mut()
            .expect("indexed slots hold a user");
        user.window.insert(timestamp, score);
        self.events += 1;
        if timestamp < user.due {
            user.due = timestamp;
            schedule(&mut self.due, Due { timestamp, slot });
        }
    }

    /// Drops every event at or before the cutoff, and the users left with nothing.
    pub fn expire(&mut self) {
        let Some(cutoff) = self.cutoff() else { return };
        while let Some(&Reverse(due)) = self.due.peek() {
            if due.timestamp > cutoff {
                break;
            }
            self.due.pop();
            let entry = &mut self.slots[due.slot as usize];
            let Some(user) = entry.as_mut() else {
                continue;
            };
            if user.due != due.timestamp {
                continue;
            }
            self.events -= user.window.expire(cutoff);
            match user.window.oldest() {
                Some(oldest) => {
                    user.due = oldest;
                    schedule(
                        &mut self.due,
                        Due {
                            timestamp: oldest,
                            ..due
                        },
                    );
                }
                None => {
                    let user = entry.take().expect("checked above");
                    if let Ok(indexed) = self
                        .index
                        .find_entry(hash_id(&user.id), |&slot| slot == due.slot)
                    {
                        indexed.remove();
                    }
                    self.free.push(due.slot);
                }
            }
        }
    }

    pub fn median(&self, user_id: &str) -> MedianSummary {
        match self.user(user_id) {
            Some(user) => MedianSummary {
                median: user.window.median(),
                count: user.window.len() as u32,
            },
            None => MedianSummary {
                median: None,
                count: 0,
            },
        }
    }

    /// Users from slot `from` on, until about `max_bytes` of events are gathered (at least one
    /// user while any is left); with the slot to continue from, or none when done.
    pub fn users_from(
        &self,
        from: usize,
        max_bytes: usize,
    ) -> (Vec<(&str, &UserWindow)>, Option<usize>) {
        let mut users = Vec::new();
        let mut bytes = 0;
        for (slot, entry) in self.slots.iter().enumerate().skip(from) {
            if bytes >= max_bytes && !users.is_empty() {
                return (users, Some(slot));
            }
            if let Some(u) = entry {
                bytes += 16 + u.id.len() + 12 * u.window.len();
                users.push((&*u.id, &u.window));
            }
        }
        (users, None)
    }

    /// Every user and the events of its window, in no particular order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &UserWindow)> {
        self.slots
            .iter()
            .filter_map(Option::as_ref)
            .map(|u| (&*u.id, &u.window))
    }

    /// Heap bytes held by the windows' events and bookkeeping (capacity, not length).
    pub fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let windows: usize = self.iter().map(|(id, w)| id.len() + w.heap_bytes()).sum();
        windows
            + self.slots.capacity() * size_of::<Option<User>>()
            + self.due.capacity() * size_of::<Due>()
            + self.index.capacity() * (size_of::<u32>() + 1)
            + self.free.capacity() * size_of::<u32>()
    }

    fn user(&self, user_id: &str) -> Option<&User> {
        let slot = self.slot_of(user_id)?;
        self.slots[slot as usize].as_ref()
    }

    fn slot_of(&self, user_id: &str) -> Option<u32> {
        self.index
            .find(hash_id(user_id), |&slot| {
                self.slots[slot as usize]
                    .as_ref()
                    .is_some_and(|user| &*user.id == user_id)
            })
            .copied()
    }

    fn new_user(&mut self, user_id: &str, timestamp: f64) -> u32 {
        let slot = self.free.pop().unwrap_or_else(|| {
            self.slots.grow_gently();
            self.slots.push(None);
            (self.slots.len() - 1) as u32
        });
        self.slots[slot as usize] = Some(User {
            id: user_id.into(),
            window: UserWindow::new(),
            due: timestamp,
        });
        let slots = &self.slots;
        // Growing the table rehashes the ids it holds, from their slots.
        self.index.insert_unique(hash_id(user_id), slot, |&other| {
            hash_id(&slots[other as usize].as_ref().expect("indexed").id)
        });
        schedule(&mut self.due, Due { timestamp, slot });
        slot
    }
}
