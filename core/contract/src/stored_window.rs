//! One user's window as a key-value store holds it (the Spin app keeps its state there): the
//! events' timestamps and scores in a compact binary value, merged and trimmed on every write and
//! read under the same rules as the engine's windows (an event at or before `watermark - window`
//! is out).
//!
//! Layout (little-endian): a format byte; the ids of the window's last [`WRITE_IDS`] writes
//! (u64 each, newest first, 0 for none); then per event the timestamp (f64, exact: lateness and
//! expiry compare it) and the score (f32): 12 bytes per event, [`HEADER_BYTES`] per user.
//!
//! The write ids let a writer tell whether its own compare-and-swap was done when the host's
//! answer does not say (an answer lost on the way; or Spin 4.1's Redis store, whose swap reports
//! a failure even when it wrote): the window as read afterwards names the writes it went through.

use thiserror::Error;

/// The first byte of every stored window.
pub const STORED_WINDOW_FORMAT: u8 = 2;
/// The format before write ids: read, never written.
const FORMAT_WITHOUT_WRITE_IDS: u8 = 1;
/// The writes a window remembers.
pub const WRITE_IDS: usize = 8;
/// Bytes of a window with no events.
pub const HEADER_BYTES: usize = 1 + 8 * WRITE_IDS;
pub const EVENT_BYTES: usize = 12;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoredWindowError {
    #[error("stored window: unknown format {0}")]
    UnknownFormat(u8),
    #[error("stored window: {0} bytes is not a whole number of events")]
    Truncated(usize),
    /// Events this module never writes: out of time order, or a time or score not finite.
    #[error("stored window: event {0} is out of order or not finite")]
    Corrupt(usize),
}

/// A user's events, oldest first, and the ids of the writes it went through.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StoredWindow {
    events: Vec<(f64, f32)>,
    writes: [u64; WRITE_IDS],
}

impl StoredWindow {
    /// An empty value is an empty window (what an emptied window is swapped for).
    pub fn decode(bytes: &[u8]) -> Result<Self, StoredWindowError> {
        let Some((&format, rest)) = bytes.split_first() else {
            return Ok(StoredWindow::default());
        };
        let mut writes = [0; WRITE_IDS];
        let body = match format {
            STORED_WINDOW_FORMAT => {
                let ids = rest
                    .get(..8 * WRITE_IDS)
                    .ok_or(StoredWindowError::Truncated(rest.len()))?;
                for (id, bytes) in writes.iter_mut().zip(ids.chunks_exact(8)) {
                    *id = u64::from_le_bytes(bytes.try_into().expect("8 bytes"));
                }
                &rest[8 * WRITE_IDS..]
            }
            FORMAT_WITHOUT_WRITE_IDS => rest,
            other => return Err(StoredWindowError::UnknownFormat(other)),
        };
        if body.len() % EVENT_BYTES != 0 {
            return Err(StoredWindowError::Truncated(body.len()));
        }
        let events = body
            .chunks_exact(EVENT_BYTES)
            .map(|e| {
                let (t, s) = e.split_at(8);
                (
                    f64::from_le_bytes(t.try_into().expect("8 bytes")),
                    f32::from_le_bytes(s.try_into().expect("4 bytes")),
                )
            })
            .collect::<Vec<(f64, f32)>>();
        // Expiry and lateness rely on finite times in order: refuse what `encode` never writes.
        let corrupt = events.iter().enumerate().position(|(i, &(t, s))| {
            !t.is_finite() || !s.is_finite() || (i > 0 && events[i - 1].0 > t)
        });
        match corrupt {
            Some(i) => Err(StoredWindowError::Corrupt(i)),
            None => Ok(StoredWindow { events, writes }),
        }
    }

    /// What [`StoredWindow::encode`] writes, in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_BYTES + self.events.len() * EVENT_BYTES
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut bytes = Vec::with_capacity(self.encoded_len());
        bytes.push(STORED_WINDOW_FORMAT);
        for id in &self.writes {
            bytes.extend_from_slice(&id.to_le_bytes());
        }
        for (t, s) in &self.events {
            bytes.extend_from_slice(&t.to_le_bytes());
            bytes.extend_from_slice(&s.to_le_bytes());
        }
        bytes
    }

    /// Enters the write `id` (not 0) as the window's newest; the oldest of [`WRITE_IDS`] leaves.
    pub fn stamp(&mut self, id: u64) {
        self.writes.rotate_right(1);
        self.writes[0] = id;
    }

    /// The window went through the write `id`, one of its last [`WRITE_IDS`].
    pub fn written_by(&self, id: u64) -> bool {
        id != 0 && self.writes.contains(&id)
    }

    /// Adds scored events (any order); keeps the window ordered by time.
    pub fn insert(&mut self, events: impl IntoIterator<Item = (f64, f32)>) {
        self.events.extend(events);
        self.events.sort_by(|a, b| a.0.total_cmp(&b.0));
    }

    /// Drops the events at or before `cutoff` (the watermark minus the window); returns how many.
    pub fn expire(&mut self, cutoff: f64) -> usize {
        let out = self.events.partition_point(|(t, _)| *t <= cutoff);
        self.events.drain(..out);
        out
    }

    /// Takes out one event equal (bit for bit) to each of `events`, where there is one: what a
    /// request that added them and then failed takes back. Returns how many were found.
    pub fn remove(&mut self, events: impl IntoIterator<Item = (f64, f32)>) -> usize {
        let mut removed = 0;
        for (t, s) in events {
            let same =
                |e: &(f64, f32)| e.0.to_bits() == t.to_bits() && e.1.to_bits() == s.to_bits();
            if let Some(at) = self.events.iter().position(same) {
                self.events.remove(at);
                removed += 1;
            }
        }
        removed
    }

    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// The events, oldest first: `(timestamp, score)`.
    pub fn events(&self) -> &[(f64, f32)] {
        &self.events
    }

    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// The exact median of the scores (the mean of the two middle ones for an even count).
    pub fn median(&self) -> Option<f64> {
        let mut scores: Vec<f32> = self.events.iter().map(|(_, s)| *s).collect();
        if scores.is_empty() {
            return None;
        }
        let mid = scores.len() / 2;
        let (_, &mut high, _) = scores.select_nth_unstable_by(mid, f32::total_cmp);
        if scores.len() % 2 == 1 {
            return Some(f64::from(high));
        }
        let low = scores[..mid]
            .iter()
            .copied()
            .max_by(f32::total_cmp)
            .expect("an even count has a lower half");
        Some((f64::from(low) + f64::from(high)) / 2.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgescore_engine::window::UserWindow;
    use proptest::prelude::*;

    #[test]
    fn round_trips_and_rejects_what_it_did_not_write() {
        let mut w = StoredWindow::default();
        w.insert([(10.5, 0.25), (3.0, -1.0)]);
        w.stamp(77);
        let bytes = w.encode();
        assert_eq!(bytes.len(), HEADER_BYTES + 2 * 12);
        assert_eq!(w.encoded_len(), bytes.len());
        assert_eq!(StoredWindow::decode(&bytes), Ok(w));
        assert_eq!(StoredWindow::decode(&[]), Ok(StoredWindow::default()));
        assert_eq!(
            StoredWindow::decode(&[7]),
            Err(StoredWindowError::UnknownFormat(7))
        );
        assert_eq!(
            StoredWindow::decode(&bytes[..5]),
            Err(StoredWindowError::Truncated(4))
        );
        assert_eq!(
            StoredWindow::decode(&bytes[..HEADER_BYTES + 5]),
            Err(StoredWindowError::Truncated(5))
        );
    }

    #[test]
    fn a_window_remembers_its_last_writes() {
        let mut w = StoredWindow::default();
        assert!(!w.written_by(0), "0 is no write");
        for id in 1..=WRITE_IDS as u64 + 2 {
            w.stamp(id);
        }
        let w = StoredWindow::decode(&w.encode()).unwrap();
        for id in 3..=WRITE_IDS as u64 + 2 {
            assert!(w.written_by(id), "{id}");
        }
        assert!(!w.written_by(1) && !w.written_by(2), "the oldest left");
    }

    /// Windows stored before write ids read as the same events, with no write remembered.
    #[test]
    fn reads_the_format_without_write_ids() {
        let mut bytes = vec![FORMAT_WITHOUT_WRITE_IDS];
        bytes.extend_from_slice(&5.0f64.to_le_bytes());
        bytes.extend_from_slice(&0.5f32.to_le_bytes());
        let w = StoredWindow::decode(&bytes).unwrap();
        assert_eq!((w.len(), w.median()), (1, Some(0.5)));
        assert_eq!(w.writes, [0; WRITE_IDS]);
    }

    #[test]
    fn removing_takes_out_one_copy_of_each_event_given() {
        let mut w = StoredWindow::default();
        w.insert([(1.0, 0.5), (2.0, 0.25), (2.0, 0.25), (3.0, 0.75)]);
        assert_eq!(w.remove([(2.0, 0.25), (3.0, 0.75), (9.0, 0.0)]), 2);
        let mut expected = StoredWindow::default();
        expected.insert([(1.0, 0.5), (2.0, 0.25)]);
        assert_eq!(w, expected);
    }

    /// A value out of time order used to decode, and expiry (a binary search) then kept events at
    /// or before its cutoff; the `stored_window` fuzz target checks this on arbitrary bytes.
    #[test]
    fn refuses_events_out_of_order_or_not_finite() {
        let value = |events: &[(f64, f32)]| {
            let mut bytes = vec![STORED_WINDOW_FORMAT];
            bytes.extend_from_slice(&[0; 8 * WRITE_IDS]);
            for (t, s) in events {
                bytes.extend_from_slice(&t.to_le_bytes());
                bytes.extend_from_slice(&s.to_le_bytes());
            }
            bytes
        };
        let out_of_order = value(&[(200.0, 0.5), (100.0, 0.25)]);
        assert_eq!(
            StoredWindow::decode(&out_of_order),
            Err(StoredWindowError::Corrupt(1))
        );
        let nan_time = value(&[(f64::NAN, 0.5)]);
        assert_eq!(
            StoredWindow::decode(&nan_time),
            Err(StoredWindowError::Corrupt(0))
        );
        let infinite_score = value(&[(1.0, 0.5), (2.0, f32::INFINITY)]);
        assert_eq!(
            StoredWindow::decode(&infinite_score),
            Err(StoredWindowError::Corrupt(1))
        );
        let ties = value(&[(1.0, 0.5), (1.0, 0.25)]);
        assert_eq!(StoredWindow::decode(&ties).map(|w| w.len()), Ok(2));
    }

    proptest! {
        /// Same events, same cutoffs: the stored window and the engine's window agree on the
        /// count and the median (the engine's is a two-heap structure, an independent algorithm).
        #[test]
        fn agrees_with_the_engine_window(
            events in prop::collection::vec((0u32..1000, -1000i32..1000), 1..200),
            cutoffs in prop::collection::vec(0u32..1000, 0..4),
        ) {
            let mut stored = StoredWindow::default();
            let mut engine = UserWindow::default();
            for &(t, s) in &events {
                let (t, s) = (f64::from(t), s as f32 / 7.0);
                stored.insert([(t, s)]);
                engine.insert(t, s);
            }
            let decoded = StoredWindow::decode(&stored.encode()).unwrap();
            prop_assert_eq!(&decoded, &stored);
            for cutoff in cutoffs {
                stored.expire(f64::from(cutoff));
                engine.expire(f64::from(cutoff));
                prop_assert_eq!(stored.len(), engine.len());
                prop_assert_eq!(stored.median(), engine.median());
            }
        }
    }
}
