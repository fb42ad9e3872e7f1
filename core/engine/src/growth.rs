//! Growth by a quarter of the length when full, instead of doubling (still amortized O(1)): for
//! the collections that grow with users and events, memory matters more than the extra
//! reallocations. Doubling leaves a third of the capacity unused on average, a quarter an eighth.

use std::collections::BinaryHeap;

/// Makes room for one more element.
pub(crate) trait GrowGently {
    fn grow_gently(&mut self);
}

impl<T> GrowGently for Vec<T> {
    fn grow_gently(&mut self) {
        if self.len() == self.capacity() {
            self.reserve_exact((self.len() / 4).max(4));
        }
    }
}

impl<T: Ord> GrowGently for BinaryHeap<T> {
    fn grow_gently(&mut self) {
        if self.len() == self.capacity() {
            self.reserve_exact((self.len() / 4).max(4));
        }
    }
}
