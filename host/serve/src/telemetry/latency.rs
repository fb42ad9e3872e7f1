//! Latencies: a histogram and the exact sum, summarized as `/stats` gives them.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;

/// Seconds; the same shape the Spin app's `/stats` gives.
pub use edgescore_contract::latency::LatencySummary;

/// Latencies: a histogram (1 µs to 60 s, 3 significant digits) and the exact sum.
#[derive(Debug)]
pub struct Latency {
    histogram: Mutex<Histogram<u64>>,
    sum_micros: AtomicU64,
}

impl Default for Latency {
    fn default() -> Self {
        Latency {
            histogram: Mutex::new(
                Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds"),
            ),
            sum_micros: AtomicU64::new(0),
        }
    }
}

impl Latency {
    pub fn record(&self, elapsed: Duration) {
        let micros = (elapsed.as_micros() as u64).max(1);
        self.sum_micros.fetch_add(micros, Ordering::Relaxed);
        if let Ok(mut h) = self.histogram.lock() {
            h.saturating_record(micros);
        }
    }

    pub fn summary(&self) -> LatencySummary {
        let h = match self.histogram.lock() {
            Ok(h) => h.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        let count = h.len();
        let seconds = |micros: u64| micros as f64 / 1e6;
        let sum = self.sum_micros.load(Ordering::Relaxed);
        LatencySummary {
            count,
            avg: if count == 0 {
                0.0
            } else {
                seconds(sum) / count as f64
            },
            p50: seconds(h.value_at_quantile(0.50)),
            p95: seconds(h.value_at_quantile(0.95)),
            p99: seconds(h.value_at_quantile(0.99)),
            max: seconds(h.max()),
        }
    }
}
