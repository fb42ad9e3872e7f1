//! The service's own counters: what `/stats` reports beside the shards' gauges.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use edgescore_core::RejectionReason;
use hdrhistogram::Histogram;

use super::drift::Drift;
use super::metrics::Metrics;

#[derive(Debug)]
pub struct Counters {
    /// Per-route and component-call latencies, and their Prometheus exposition.
    pub metrics: Metrics,
    /// Feature drift of the active model, fed by the shards and `/predict`.
    pub drift: Mutex<Drift>,
    pub events_processed: AtomicU64,
    pub median_requests: AtomicU64,
    /// Ingest requests turned away with 503 (a full shard queue).
    pub overloaded: AtomicU64,
    /// Requests answered 500 because the component failed.
    pub failed: AtomicU64,
    /// Requests being handled now (a gauge).
    pub in_flight: AtomicU64,
    /// Events scored and recorded, by the model version that scored them.
    scored_by_version: Mutex<BTreeMap<String, u64>>,
    rejected: [AtomicU64; RejectionReason::ALL.len()],
}

impl Counters {
    /// `routes`: the router's path templates, each counted apart.
    pub fn new(routes: &[&'static str], drift: Drift) -> Self {
        Counters {
            metrics: Metrics::new(routes),
            drift: Mutex::new(drift),
            events_processed: AtomicU64::new(0),
            median_requests: AtomicU64::new(0),
            overloaded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            scored_by_version: Mutex::default(),
            rejected: Default::default(),
        }
    }

    pub fn count(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    pub fn reject(&self, reason: RejectionReason) {
        Self::count(&self.rejected[reason as usize], 1);
    }

    /// Rejections by reason, every reason listed.
    pub fn rejected(&self) -> impl Iterator<Item = (RejectionReason, u64)> + '_ {
        RejectionReason::ALL
            .iter()
            .map(|&r| (r, Self::get(&self.rejected[r as usize])))
    }

    /// Counts events recorded with `version`'s scores.
    pub fn scored(&self, version: &str, events: u64) {
        if events == 0 {
            return;
        }
        let mut by_version = self
            .scored_by_version
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        match by_version.get_mut(version) {
            Some(n) => *n += events,
            None => {
                by_version.insert(version.to_owned(), events);
            }
        }
    }

    /// Events scored and recorded, by model version.
    pub fn scored_by_version(&self) -> BTreeMap<String, u64> {
        self.scored_by_version
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Feeds scored rows to the drift detector.
    pub fn observe_features(&self, rows: &[f32]) {
        if let Ok(mut drift) = self.drift.lock() {
            drift.observe(rows);
        }
    }
}

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

/// Seconds; the same shape the Spin app's `/stats` gives.
pub use edgescore_core::api::latency::LatencySummary;

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
