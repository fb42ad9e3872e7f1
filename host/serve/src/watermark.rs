//! The service-wide watermark: the largest accepted timestamp over every shard.

use std::sync::atomic::{AtomicU64, Ordering};

/// An `Option<f64>` that only grows, shared by the request handlers and the shards.
#[derive(Debug)]
pub struct Watermark(AtomicU64);

/// No event accepted yet (NaN is never a valid timestamp).
const NONE: u64 = f64::NAN.to_bits();

impl Default for Watermark {
    fn default() -> Self {
        Watermark(AtomicU64::new(NONE))
    }
}

impl Watermark {
    pub fn get(&self) -> Option<f64> {
        let w = f64::from_bits(self.0.load(Ordering::Acquire));
        (!w.is_nan()).then_some(w)
    }

    /// Raises the watermark to `t` if `t` is larger.
    pub fn raise(&self, t: f64) {
        let _ = self
            .0
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |bits| {
                let w = f64::from_bits(bits);
                (w.is_nan() || t > w).then_some(t.to_bits())
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_grows() {
        let w = Watermark::default();
        assert_eq!(w.get(), None);
        w.raise(10.0);
        w.raise(5.0);
        assert_eq!(w.get(), Some(10.0));
        w.raise(10.5);
        assert_eq!(w.get(), Some(10.5));
    }
}
