//! One user's rolling window: the scores of its events, an exact median over them, and expiry of
//! the oldest by timestamp. Insert, expire and median are O(log n) amortized.
//!
//! Layout (about 16 bytes per event): a min-heap of `(timestamp, score)` (12 bytes packed) decides
//! what expires; two heaps of bare scores (4 bytes) hold the lower and upper halves, whose tops are
//! the middle values. An expired score is removed from its half lazily: it is counted as stale and
//! dropped when it reaches the top, and a half with more than one stale entry in eight is rebuilt
//! (amortized O(1) per removal). Heaps grow by a quarter rather than doubling: memory per event
//! matters more here than the extra reallocations.
//!
//! A window of one event holds it inline, without heaps (16 bytes in all): most users of a wide
//! audience have one event in the window, and the heaps' bookkeeping would cost ten times that.

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use crate::hashing::InstanceKeys;

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

/// A heap entry that stands for a score: lets one lazy heap serve as max-heap and as min-heap.
trait ScoreKey: Ord + Copy {
    fn score(self) -> f32;
}
impl ScoreKey for Score {
    fn score(self) -> f32 {
        self.0
    }
}
impl ScoreKey for Reverse<Score> {
    fn score(self) -> f32 {
        self.0.0
    }
}

/// A binary heap with lazy removal of arbitrary values.
#[derive(Debug, Clone)]
struct LazyHeap<T: ScoreKey> {
    heap: BinaryHeap<T>,
    /// Removed but still in `heap`: count per score bit pattern (keyed per instance, see
    /// `hashing`: clients steer scores through their features).
    stale: HashMap<u32, u32, InstanceKeys>,
    stale_count: usize,
}

impl<T: ScoreKey> LazyHeap<T> {
    fn new() -> Self {
        LazyHeap {
            heap: BinaryHeap::new(),
            stale: HashMap::default(),
            stale_count: 0,
        }
    }

    fn live_len(&self) -> usize {
        self.heap.len() - self.stale_count
    }

    /// The top live entry (stale entries never stay on top).
    fn top(&self) -> Option<T> {
        self.heap.peek().copied()
    }

    fn push(&mut self, item: T) {
        grow_gently(&mut self.heap);
        self.heap.push(item);
    }

    fn pop(&mut self) -> Option<T> {
        let top = self.heap.pop();
        self.drop_stale_top();
        top
    }

    /// Removes one entry equal to `item`, which must be live in this heap.
    fn remove(&mut self, item: T) {
        *self.stale.entry(item.score().to_bits()).or_insert(0) += 1;
        self.stale_count += 1;
        self.drop_stale_top();
        if self.stale_count * 8 > self.live_len() + 8 {
            self.compact();
        }
    }

    fn drop_stale_top(&mut self) {
        while let Some(top) = self.heap.peek() {
            let bits = top.score().to_bits();
            match self.stale.get_mut(&bits) {
                Some(n) => {
                    *n -= 1;
                    if *n == 0 {
                        self.stale.remove(&bits);
                    }
                    self.stale_count -= 1;
                    self.heap.pop();
                }
                None => break,
            }
        }
    }

    /// Drops every stale entry in O(n): amortized O(1) over the removals that made them.
    fn compact(&mut self) {
        let mut stale = std::mem::take(&mut self.stale);
        let mut items = std::mem::take(&mut self.heap).into_vec();
        items.retain(|item| match stale.get_mut(&item.score().to_bits()) {
            Some(n) if *n > 0 => {
                *n -= 1;
                false
            }
            _ => true,
        });
        items.shrink_to_fit();
        self.heap = BinaryHeap::from(items);
        self.stale_count = 0;
    }

    fn shrink(&mut self) {
        shrink_if_sparse(&mut self.heap);
    }
}

/// Grows a full heap by a quarter of its length instead of doubling it (still amortized O(1)).
fn grow_gently<T: Ord>(heap: &mut BinaryHeap<T>) {
    if heap.len() == heap.capacity() {
        heap.reserve_exact((heap.len() / 4).max(4));
    }
}

fn shrink_if_sparse<T: Ord>(heap: &mut BinaryHeap<T>) {
    if heap.capacity() > 2 * heap.len() + 8 {
        heap.shrink_to_fit();
    }
}

/// One user's window: the events not yet expired and the exact median of their scores.
#[derive(Debug, Clone, Default)]
pub struct UserWindow(Layout);

#[derive(Debug, Clone, Default)]
enum Layout {
    #[default]
    Empty,
    One(Timed),
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
            Layout::Many(heaps) => heaps.oldest(),
        }
    }

    pub fn insert(&mut self, timestamp: f64, score: f32) {
        let event = Timed { timestamp, score };
        self.0 = match std::mem::take(&mut self.0) {
            Layout::Empty => Layout::One(event),
            Layout::One(first) => {
                let mut heaps = Box::new(Heaps::new());
                heaps.insert(first);
                heaps.insert(event);
                Layout::Many(heaps)
            }
            Layout::Many(mut heaps) => {
                heaps.insert(event);
                Layout::Many(heaps)
            }
        };
    }

    /// Drops every event with `timestamp <= cutoff`; returns how many.
    pub fn expire(&mut self, cutoff: f64) -> usize {
        match &mut self.0 {
            Layout::Empty => 0,
            Layout::One(event) if event.timestamp <= cutoff => {
                self.0 = Layout::Empty;
                1
            }
            Layout::One(_) => 0,
            Layout::Many(heaps) => {
                let expired = heaps.expire(cutoff);
                // Back to the inline layouts when one event or none is left.
                match heaps.len() {
                    0 => self.0 = Layout::Empty,
                    1 => self.0 = Layout::One(heaps.by_time.peek().expect("one event").0),
                    _ => {}
                }
                expired
            }
        }
    }

    /// The exact median: the middle score, or the mean of the two middle ones, as f64.
    pub fn median(&self) -> Option<f64> {
        match &self.0 {
            Layout::Empty => None,
            Layout::One(event) => Some(event.score as f64),
            Layout::Many(heaps) => heaps.median(),
        }
    }

    /// The events in the window, in no particular order.
    pub fn events(&self) -> impl Iterator<Item = (f64, f32)> + '_ {
        let (one, many) = match &self.0 {
            Layout::Empty => (None, None),
            Layout::One(event) => (Some(*event), None),
            Layout::Many(heaps) => (None, Some(heaps.by_time.iter().map(|Reverse(t)| *t))),
        };
        one.into_iter()
            .chain(many.into_iter().flatten())
            .map(|t| (t.timestamp, t.score))
    }

    /// Heap bytes held by this window (capacity, not only length), for memory accounting.
    pub fn heap_bytes(&self) -> usize {
        match &self.0 {
            Layout::Empty | Layout::One(_) => 0,
            Layout::Many(heaps) => std::mem::size_of::<Heaps>() + heaps.heap_bytes(),
        }
    }
}

/// A window of two events or more: by time, and the two halves of the scores.
#[derive(Debug, Clone)]
struct Heaps {
    by_time: BinaryHeap<Reverse<Timed>>,
    /// The lower half of the scores (max on top); holds as many as `upper` or one more.
    lower: LazyHeap<Score>,
    /// The upper half of the scores (min on top).
    upper: LazyHeap<Reverse<Score>>,
}

impl Heaps {
    fn new() -> Self {
        Heaps {
            by_time: BinaryHeap::new(),
            lower: LazyHeap::new(),
            upper: LazyHeap::new(),
        }
    }

    fn len(&self) -> usize {
        self.by_time.len()
    }

    fn oldest(&self) -> Option<f64> {
        self.by_time.peek().map(|Reverse(t)| t.timestamp)
    }

    fn insert(&mut self, event: Timed) {
        let score = event.score;
        grow_gently(&mut self.by_time);
        self.by_time.push(Reverse(event));
        match self.lower.top() {
            Some(Score(top)) if score.total_cmp(&top) == Ordering::Greater => {
                self.upper.push(Reverse(Score(score)))
            }
            _ => self.lower.push(Score(score)),
        }
        self.rebalance();
    }

    fn expire(&mut self, cutoff: f64) -> usize {
        let mut expired = 0;
        while let Some(Reverse(oldest)) = self.by_time.peek().copied() {
            if oldest.timestamp > cutoff {
                break;
            }
            self.by_time.pop();
            self.remove_score(oldest.score);
            expired += 1;
        }
        if expired > 0 {
            self.shrink();
        }
        expired
    }

    fn median(&self) -> Option<f64> {
        let Score(low) = self.lower.top()?;
        if self.lower.live_len() > self.upper.live_len() {
            return Some(low as f64);
        }
        let Reverse(Score(high)) = self.upper.top()?;
        Some((low as f64 + high as f64) / 2.0)
    }

    fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let stale_maps = (self.lower.stale.capacity() + self.upper.stale.capacity()) * 9;
        self.by_time.capacity() * size_of::<Timed>()
            + (self.lower.heap.capacity() + self.upper.heap.capacity()) * size_of::<Score>()
            + stale_maps
    }

    fn remove_score(&mut self, score: f32) {
        // Every live upper score is >= every live lower score, so a score at or above the upper
        // top is in the upper half (equal tops make either choice right).
        match self.upper.top() {
            Some(Reverse(Score(top))) if score.total_cmp(&top) != Ordering::Less => {
                self.upper.remove(Reverse(Score(score)))
            }
            _ => self.lower.remove(Score(score)),
        }
        self.rebalance();
    }

    fn rebalance(&mut self) {
        if self.lower.live_len() > self.upper.live_len() + 1
            && let Some(top) = self.lower.pop()
        {
            self.upper.push(Reverse(top));
        } else if self.upper.live_len() > self.lower.live_len()
            && let Some(Reverse(top)) = self.upper.pop()
        {
            self.lower.push(top);
        }
    }

    fn shrink(&mut self) {
        shrink_if_sparse(&mut self.by_time);
        self.lower.shrink();
        self.upper.shrink();
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

    #[test]
    fn timed_is_packed_to_twelve_bytes() {
        assert_eq!(std::mem::size_of::<Reverse<Timed>>(), 12);
    }

    #[test]
    fn a_window_is_sixteen_bytes_and_holds_one_event_inline() {
        assert_eq!(std::mem::size_of::<UserWindow>(), 16);
        let mut w = UserWindow::new();
        w.insert(1.0, 0.5);
        assert!(matches!(w.0, Layout::One(_)));
        assert_eq!(w.heap_bytes(), 0);
        w.insert(2.0, 0.25);
        assert!(matches!(w.0, Layout::Many(_)));
        assert_eq!(w.expire(1.0), 1);
        assert!(
            matches!(w.0, Layout::One(_)),
            "back inline with one event left"
        );
        assert_eq!(w.events().collect::<Vec<_>>(), vec![(2.0, 0.25)]);
        assert_eq!(w.median(), Some(0.25));
        assert_eq!(w.expire(2.0), 1);
        assert!(matches!(w.0, Layout::Empty));
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

    #[test]
    fn long_monotonic_stream_keeps_stale_entries_bounded() {
        // Rising scores expire from the bottom of the lower half, which lazy removal alone would
        // never reach: compaction must keep the heaps near the live size.
        let mut w = UserWindow::new();
        for i in 0..100_000u32 {
            w.insert(i as f64, i as f32);
            w.expire(i as f64 - 100.0);
        }
        assert_eq!(w.len(), 100);
        let Layout::Many(heaps) = &w.0 else {
            panic!("100 events are in heaps")
        };
        assert!(heaps.lower.heap.len() + heaps.upper.heap.len() <= 3 * 100 + 64);
        assert_eq!(w.median(), Some(99_949.5));
    }

    proptest! {
        #[test]
        fn matches_a_sorted_reference(ops in proptest::collection::vec((0u8..4, 0u16..500, -8i8..8), 1..400)) {
            let mut w = UserWindow::new();
            let mut reference: Vec<(f64, f32)> = Vec::new();
            for (op, t, s) in ops {
                let (t, s) = (t as f64, s as f32 / 4.0);
                if op == 0 {
                    w.expire(t);
                    reference.retain(|&(rt, _)| rt > t);
                } else {
                    w.insert(t, s);
                    reference.push((t, s));
                }
                let scores: Vec<f32> = reference.iter().map(|&(_, s)| s).collect();
                prop_assert_eq!(w.len(), reference.len());
                prop_assert_eq!(w.median(), naive_median(&scores));
            }
        }
    }
}
