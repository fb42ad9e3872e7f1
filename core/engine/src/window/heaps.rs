//! A window of many events: a min-heap of `(timestamp, score)` (12 bytes packed) decides what
//! expires; two heaps of bare scores (4 bytes) hold the lower and upper halves, whose tops are the
//! middle values. Insert, expire and median are O(log n) amortized, about 16 bytes per event.
//!
//! An expired score is removed from its half lazily: it is counted as stale and dropped when it
//! reaches the top, and a half with more than one stale entry in eight is rebuilt (amortized O(1)
//! per removal). Heaps grow by a quarter rather than doubling (`growth`).

use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};

use super::{Score, Timed};
use crate::growth::GrowGently;
use crate::hashing::InstanceKeys;

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
        self.heap.grow_gently();
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

fn shrink_if_sparse<T: Ord>(heap: &mut BinaryHeap<T>) {
    if heap.capacity() > 2 * heap.len() + 8 {
        heap.shrink_to_fit();
    }
}

/// A window of many events: by time, and the two halves of the scores.
#[derive(Debug, Clone)]
pub(super) struct Heaps {
    by_time: BinaryHeap<Reverse<Timed>>,
    /// The lower half of the scores (max on top); holds as many as `upper` or one more.
    lower: LazyHeap<Score>,
    /// The upper half of the scores (min on top).
    upper: LazyHeap<Reverse<Score>>,
}

impl Heaps {
    pub(super) fn from_events(events: impl IntoIterator<Item = Timed>) -> Self {
        let mut heaps = Heaps::new();
        for event in events {
            heaps.insert(event);
        }
        heaps
    }

    fn new() -> Self {
        Heaps {
            by_time: BinaryHeap::new(),
            lower: LazyHeap::new(),
            upper: LazyHeap::new(),
        }
    }

    pub(super) fn len(&self) -> usize {
        self.by_time.len()
    }

    /// Every event, in no particular order.
    pub(super) fn events(&self) -> impl Iterator<Item = Timed> + '_ {
        self.by_time.iter().map(|Reverse(event)| *event)
    }

    pub(super) fn oldest(&self) -> Option<f64> {
        self.by_time.peek().map(|Reverse(t)| t.timestamp)
    }

    pub(super) fn insert(&mut self, event: Timed) {
        let score = event.score;
        self.by_time.grow_gently();
        self.by_time.push(Reverse(event));
        match self.lower.top() {
            Some(Score(top)) if score.total_cmp(&top) == Ordering::Greater => {
                self.upper.push(Reverse(Score(score)))
            }
            _ => self.lower.push(Score(score)),
        }
        self.rebalance();
    }

    pub(super) fn expire(&mut self, cutoff: f64) -> usize {
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

    pub(super) fn median(&self) -> Option<f64> {
        let Score(low) = self.lower.top()?;
        if self.lower.live_len() > self.upper.live_len() {
            return Some(low as f64);
        }
        let Reverse(Score(high)) = self.upper.top()?;
        Some((low as f64 + high as f64) / 2.0)
    }

    pub(super) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let stale_maps = (self.lower.stale.capacity() + self.upper.stale.capacity()) * 9;
        self.by_time.capacity() * size_of::<Timed>()
            + (self.lower.heap.capacity() + self.upper.heap.capacity()) * size_of::<Score>()
            + stale_maps
            + size_of::<Heaps>()
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

    #[test]
    fn long_monotonic_stream_keeps_stale_entries_bounded() {
        // Rising scores expire from the bottom of the lower half, which lazy removal alone would
        // never reach: compaction must keep the heaps near the live size.
        let mut heaps = Heaps::new();
        for i in 0..100_000u32 {
            heaps.insert(Timed {
                timestamp: i as f64,
                score: i as f32,
            });
            heaps.expire(i as f64 - 100.0);
        }
        assert_eq!(heaps.len(), 100);
        assert!(heaps.lower.heap.len() + heaps.upper.heap.len() <= 3 * 100 + 64);
        assert_eq!(heaps.median(), Some(99_949.5));
    }
}
