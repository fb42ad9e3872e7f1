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
use crate::storage::snapshot::ShardTotals;
use crate::storage::store::RequestCounters;
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
    /// The part of `rejected` judged before the shards (kept apart: the shards' part is
    /// restored from their own files).
    front_rejected: [AtomicU64; RejectionReason::ALL.len()],
    /// `/ingest`'s requests and their summed latency in earlier runs (the data directory's).
    carried_ingest: Mutex<(u64, f64)>,
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
            front_rejected: Default::default(),
            carried_ingest: Mutex::default(),
        }
    }

    /// Counts from earlier runs: the shards' own (exact, from their files) and the request
    /// counters kept beside them.
    pub fn restore(&self, shards: &[ShardTotals], requests: &RequestCounters) {
        for totals in shards {
            Self::count(&self.events_processed, totals.events);
            for (reason, n) in totals.rejected.iter().enumerate() {
                if let Some(counter) = self.rejected.get(reason) {
                    Self::count(counter, *n);
                }
            }
            for (version, n) in &totals.by_version {
                self.scored(version, *n);
            }
        }
        for (reason, n) in requests.front_rejected.iter().enumerate() {
            if let (Some(all), Some(front)) =
                (self.rejected.get(reason), self.front_rejected.get(reason))
            {
                Self::count(all, *n);
                Self::count(front, *n);
            }
        }
        Self::count(&self.median_requests, requests.median_requests);
        Self::count(&self.overloaded, requests.overloaded);
        Self::count(&self.failed, requests.failed);
        *self
            .carried_ingest
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = (
            requests.ingest_requests,
            requests.ingest_latency_sum_seconds,
        );
    }

    /// `/ingest`'s requests over every run, and their mean latency in seconds.
    pub fn ingest_requests(&self) -> (u64, f64) {
        let route = self.metrics.route("/ingest").unwrap_or_default();
        let (carried, carried_sum) = *self
            .carried_ingest
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let requests = route.requests + carried;
        let sum = route.latency_seconds.avg * route.requests as f64 + carried_sum;
        (
            requests,
            if requests == 0 {
                0.0
            } else {
                sum / requests as f64
            },
        )
    }

    /// What is kept in the data directory's `counters.json`.
    pub fn request_counters(&self) -> RequestCounters {
        let (ingest_requests, avg) = self.ingest_requests();
        RequestCounters {
            ingest_requests,
            ingest_latency_sum_seconds: avg * ingest_requests as f64,
            median_requests: Self::get(&self.median_requests),
            overloaded: Self::get(&self.overloaded),
            failed: Self::get(&self.failed),
            front_rejected: self.front_rejected.iter().map(Self::get).collect(),
        }
    }

    /// An event rejected before reaching a shard.
    pub fn reject_front(&self, reason: RejectionReason) {
        Self::count(&self.front_rejected[reason as usize], 1);
        self.reject(reason);
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
