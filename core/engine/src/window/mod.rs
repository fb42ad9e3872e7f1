//! One user's rolling window: the scores of its events, an exact median over them, and expiry of
//! the oldest by timestamp. Its layout follows its size, for memory:
//!
//! - none or one event: held inline (16 bytes in all on wasm32, 24 on 64-bit targets), as most
//!   users of a wide audience have one event in the window;
//! - up to [`SORTED_MAX`] events: one array sorted by score (`sorted.rs`), 12 bytes per event;
//!   insert and expiry move part of it, O(n) but bounded;
//! - more: heaps (`heaps.rs`), O(log n) amortized per insert, expiry and median, about 16 bytes
//!   per event and their growth, so that no client makes an insert cost more than a few
//!   microseconds however many events it sends under one id. A window goes back to the array
//!   when it has expired down to half of `SORTED_MAX`.

mod heaps;
mod sorted;
mod users;

use std::cmp::Ordering;

use heaps::Heaps;
use sorted::Sorted;
pub use users::{MedianSummary, Windows};

/// The most events a window keeps in one sorted array (3 KB). Measured with
/// `examples/windows_bench.rs`: at 150 events per user the array is as fast as the heaps or
/// faster; at 600 with a limit of 1,024 it took 1.5-1.8 times as long (its O(n) insert and
/// expiry), so larger windows use the heaps.
pub const SORTED_MAX: usize = 256;

/// A score ordered by `f32::total_cmp`, so that heaps of scores have a total order.
#[derive(Debug, Clone, Copy)]
struct Score(f32);

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}
impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Score {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Score {}

/// A windowed event, packed to 12 bytes (an `f64` and an `f32` would take 16 aligned).
#[derive(Debug, Clone, Copy)]
#[repr(C, packed(4))]
struct Timed {
    timestamp: f64,
    score: f32,
}

impl Ord for Timed {
    fn cmp(&self, other: &Self) -> Ordering {
        let (a, b) = (self.timestamp, other.timestamp);
        a.total_cmp(&b)
            .then_with(|| Score(self.score).cmp(&Score(other.score)))
    }
}
impl PartialOrd for Timed {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl PartialEq for Timed {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}
impl Eq for Timed {}

/// One user's window: the events not yet expired and the exact median of their scores.
#[derive(Debug, Clone, Default)]
pub struct UserWindow(Layout);

#[derive(Debug, Clone, Default)]
enum Layout {
    #[default]
    Empty,
    One(Timed),
    Few(Sorted),
    Many(Box<Heaps>),
}

impl UserWindow {
    pub fn new() -> Self {
        UserWindow(Layout::Empty)
    }

    pub fn len(&self) -> usize {
        match &self.0 {
            Layout::Empty => 0,
            Layout::One(_) => 1,
            Layout::Few(events) => events.len(),
            Layout::Many(heaps) => heaps.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The timestamp of the oldest event, which expires first.
    pub fn oldest(&self) -> Option<f64> {
        match &self.0 {
            Layout::Empty => None,
            Layout::One(event) => Some(event.timestamp),
            Layout::Few(events) => events.oldest(),
            Layout::Many(heaps) => heaps.oldest(),
        }
    }

    pub fn insert(&mut self, timestamp: f64, score: f32) {
        let event = Timed { timestamp, score };
        self.0 = match std::mem::take(&mut self.0) {
            Layout::Empty => Layout::One(event),
            Layout::One(first) => Layout::Few(Sorted::from_events([first, event])),
            Layout::Few(events) if events.len() >= SORTED_MAX => {
                let mut heaps = Box::new(Heaps::from_events(events.events()));
                heaps.insert(event);
                Layout::Many(heaps)
            }
            Layout::Few(mut events) => {
                events.insert(event);
                Layout::Few(events)
            }
            Layout::Many(mut heaps) => {
                heaps.insert(event);
                Layout::Many(heaps)
            }
        };
    }

    /// Drops every event with `timestamp <= cutoff`; returns how many.
    pub fn expire(&mut self, cutoff: f64) -> usize {
        let expired = match &mut self.0 {
            Layout::Empty => 0,
            Layout::One(event) if event.timestamp <= cutoff => {
                self.0 = Layout::Empty;
                return 1;
            }
            Layout::One(_) => return 0,
            Layout::Few(events) => events.expire(cutoff),
            Layout::Many(heaps) => heaps.expire(cutoff),
        };
        if expired > 0 {
            self.fit_layout();
        }
        expired
    }

    /// The smaller layouts again once a window has shrunk to them.
    fn fit_layout(&mut self) {
        let len = self.len();
        let inline = |last: Option<Timed>| last.map_or(Layout::Empty, Layout::One);
        self.0 = match &self.0 {
            Layout::Few(events) if len <= 1 => inline(events.events().next()),
            Layout::Many(heaps) if len <= 1 => inline(heaps.events().next()),
            Layout::Many(heaps) if len <= SORTED_MAX / 2 => {
                Layout::Few(Sorted::from_events(heaps.events()))
            }
            _ => return,
        };
    }

    /// The exact median: the middle score, or the mean of the two middle ones, as f64.
    pub fn median(&self) -> Option<f64> {
        match &self.0 {
            Layout::Empty => None,
            Layout::One(event) => Some(event.score as f64),
            Layout::Few(events) => events.median(),
            Layout::Many(heaps) => heaps.median(),
        }
    }

    /// The events in the window, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = (f64, f32)> + '_ {
        let (one, few, many) = match &self.0 {
            Layout::Empty => (None, None, None),
            Layout::One(event) => (Some(*event), None, None),
            Layout::Few(events) => (None, Some(events.events()), None),
            Layout::Many(heaps) => (None, None, Some(heaps.events())),
        };
        one.into_iter()
            .chain(few.into_iter().flatten())
            .chain(many.into_iter().flatten())
            .map(|t| (t.timestamp, t.score))
    }

    /// Heap bytes held by this window (capacity, not only length), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Layout::Empty | Layout::One(_) => 0,
            Layout::Few(events) => events.heap_bytes(),
            Layout::Many(heaps) => heaps.heap_bytes(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn naive_median(scores: &[f32]) -> Option<f64> {
        let mut s = scores.to_vec();
        s.sort_by(f32::total_cmp);
        let n = s.len();
        match n {
            0 => None,
            _ if n % 2 == 1 => Some(s[n / 2] as f64),
            _ => Some((s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0),
        }
    }

    fn layout_name(w: &UserWindow) -> &'static str {
        match w.0 {
            Layout::Empty => "empty",
            Layout::One(_) => "one",
            Layout::Few(_) => "few",
            Layout::Many(_) => "many",
        }
    }

    #[test]
    fn timed_is_packed_to_twelve_bytes() {
        assert_eq!(size_of::<Timed>(), 12);
    }

    #[test]
    fn a_window_holds_one_event_inline() {
        // The tag and an inline event, or a pointer: 16 bytes where pointers take 4 (wasm32).
        let inline = if cfg!(target_pointer_width = "32") {
            16
        } else {
            24
        };
        assert_eq!(size_of::<UserWindow>(), inline);
        let mut w = UserWindow::new();
        w.insert(1.0, 0.5);
        assert_eq!(layout_name(&w), "one");
        assert_eq!(w.heap_bytes(), 0);
        w.insert(2.0, 0.25);
        assert_eq!(layout_name(&w), "few");
        assert_eq!(
            w.heap_bytes(),
            24,
            "two events, 12 bytes each, nothing else"
        );
        assert_eq!(w.expire(1.0), 1);
        assert_eq!(layout_name(&w), "one", "back inline with one event left");
        assert_eq!(w.events().collect::<Vec<_>>(), vec![(2.0, 0.25)]);
        assert_eq!(w.median(), Some(0.25));
        assert_eq!(w.expire(2.0), 1);
        assert_eq!(layout_name(&w), "empty");
    }

    #[test]
    fn a_large_window_moves_to_heaps_and_back() {
        let mut w = UserWindow::new();
        let mut scores = Vec::new();
        for i in 0..=SORTED_MAX {
            let score = ((i * 7919) % 1000) as f32;
            w.insert(i as f64, score);
            scores.push(score);
        }
        assert_eq!(layout_name(&w), "many");
        assert_eq!(w.median(), naive_median(&scores));
        // Down to half the array's size: the array again.
        let keep = SORTED_MAX / 2;
        let cutoff = (SORTED_MAX - keep) as f64;
        assert_eq!(w.expire(cutoff), SORTED_MAX + 1 - keep);
        assert_eq!(layout_name(&w), "few");
        assert_eq!(w.len(), keep);
        assert_eq!(w.median(), naive_median(&scores[SORTED_MAX + 1 - keep..]));
        assert_eq!(w.oldest(), Some(cutoff + 1.0));
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        let mut w = UserWindow::new();
        assert_eq!(w.median(), None);
        w.insert(1.0, 3.0);
        assert_eq!(w.median(), Some(3.0));
        w.insert(2.0, 1.0);
        assert_eq!(w.median(), Some(2.0));
        w.insert(3.0, 10.0);
        assert_eq!(w.median(), Some(3.0));
        assert_eq!(w.expire(1.0), 1);
        assert_eq!(w.median(), Some(5.5));
        assert_eq!(w.oldest(), Some(2.0));
        assert_eq!(w.expire(10.0), 2);
        assert!(w.is_empty());
        assert_eq!(w.median(), None);
    }

    #[test]
    fn duplicates_and_signed_zeros() {
        let mut w = UserWindow::new();
        for (i, s) in [0.5f32, 0.5, -0.0, 0.0, 0.5, -0.0].into_iter().enumerate() {
            w.insert(i as f64, s);
        }
        assert_eq!(w.median(), Some(0.25));
        w.expire(1.0);
        assert_eq!(w.median(), naive_median(&[-0.0, 0.0, 0.5, -0.0]));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Windows of every layout, crossing between them: the long cases grow past
        /// `SORTED_MAX` in their first two thirds (inserts are 3 operations in 4, expiring
        /// little), and shrink back in the rest.
        #[test]
        fn matches_a_sorted_reference(ops in proptest::collection::vec((0u8..4, 0u16..3000, -8i8..8), 1..1200)) {
            let mut w = UserWindow::new();
            let mut reference: Vec<(f64, f32)> = Vec::new();
            let growing = ops.len() * 2 / 3;
            for (i, (op, t, s)) in ops.into_iter().enumerate() {
                let (t, s) = (t as f64, s as f32 / 4.0);
                if op == 0 {
                    let cutoff = if i < growing { t / 20.0 } else { t };
                    let expired = reference.iter().filter(|&&(rt, _)| rt <= cutoff).count();
                    prop_assert_eq!(w.expire(cutoff), expired);
                    reference.retain(|&(rt, _)| rt > cutoff);
                } else {
                    w.insert(t, s);
                    reference.push((t, s));
                }
                prop_assert_eq!(w.len(), reference.len());
                // The reference sorts: every expiry, and every 8th operation besides.
                if op == 0 || i % 8 == 0 {
                    let scores: Vec<f32> = reference.iter().map(|&(_, s)| s).collect();
                    prop_assert_eq!(w.median(), naive_median(&scores));
                    let oldest = reference.iter().map(|&(t, _)| t).min_by(f64::total_cmp);
                    prop_assert_eq!(w.oldest(), oldest);
                }
            }
        }
    }
}
