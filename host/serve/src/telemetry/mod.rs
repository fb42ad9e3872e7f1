//! What the service counts and measures: its own counters ([`Counters`], what `/stats` reports
//! beside the shards' gauges), per-route and component-call metrics with their Prometheus
//! exposition ([`metrics`]), and latency histograms ([`latency`]).

pub mod latency;
pub mod metrics;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use edgescore_types::RejectionReason;

use crate::drift::Drift;
pub use latency::LatencySummary;
pub use metrics::Metrics;

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
