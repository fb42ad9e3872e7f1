//! Per-route request counts, error counts and latencies, the time spent inside the component, and
//! their Prometheus text exposition (`GET /metrics`) through the `metrics` crates: one
//! `PrometheusRecorder` per service (not a global one, so several services can share a process).
//! Latencies are histograms with fixed buckets, so that `_bucket` series add up across replicas;
//! every metric has its HELP line from [`DESCRIPTIONS`].

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Key, KeyName, Label, Level, Metadata, Recorder, Unit};
use metrics_exporter_prometheus::{
    Matcher, PrometheusBuilder, PrometheusHandle, PrometheusRecorder,
};
use serde::Serialize;

use super::latency::{Latency, LatencySummary};

const META: Metadata<'static> = Metadata::new("edgescore", Level::INFO, None);

/// What `/stats` says of one route.
#[derive(Debug, Default)]
pub struct RouteStats {
    pub requests: AtomicU64,
    /// Answers with a 4xx or 5xx status.
    pub errors: AtomicU64,
    pub latency: Latency,
}

#[derive(Debug, Default, Serialize, utoipa::ToSchema)]
pub struct RouteSummary {
    pub requests: u64,
    pub errors: u64,
    pub latency_seconds: LatencySummary,
}

fn summary(s: &RouteStats) -> RouteSummary {
    RouteSummary {
        requests: s.requests.load(Ordering::Relaxed),
        errors: s.errors.load(Ordering::Relaxed),
        latency_seconds: s.latency.summary(),
    }
}

/// The calls into the component that are timed apart from HTTP.
pub const COMPONENT_CALLS: [&str; 2] = ["ingest", "predict"];

pub struct Metrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    routes: HashMap<&'static str, RouteStats>,
    component: HashMap<&'static str, Latency>,
    /// Histogram samples recorded, to fold them into their buckets every [`UPKEEP_EVERY`].
    samples: AtomicU64,
}

/// The exporter keeps each histogram sample (24 bytes) until a scrape or an upkeep folds it into
/// the buckets: without one, a service nobody scrapes grows by megabytes a minute under load.
const UPKEEP_EVERY: u64 = 4096;

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// The kinds of metric the service exposes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric `/metrics` may show: its name, kind and HELP text.
pub const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    (
        "edgescore_build_info",
        Kind::Gauge,
        "Always 1; the labels name the build: edgescore's version, the scoring component's sha256 and the wasmtime version",
    ),
    (
        "edgescore_http_requests_total",
        Kind::Counter,
        "HTTP requests answered, by route template and status",
    ),
    (
        "edgescore_http_request_duration_seconds",
        Kind::Histogram,
        "Time from a request's arrival to its answer, by route template",
    ),
    (
        "edgescore_component_call_seconds",
        Kind::Histogram,
        "Time spent in one call into the scoring component, by call",
    ),
    (
        "edgescore_events_processed_total",
        Kind::Counter,
        "Events accepted, scored and recorded in a user's window",
    ),
    (
        "edgescore_events_scored_total",
        Kind::Counter,
        "Events scored and recorded, by the model version that scored them",
    ),
    (
        "edgescore_events_rejected_total",
        Kind::Counter,
        "Events rejected, by reason",
    ),
    (
        "edgescore_median_requests_total",
        Kind::Counter,
        "Median lookups answered",
    ),
    (
        "edgescore_overloaded_requests_total",
        Kind::Counter,
        "Ingest requests turned away with 503 because a shard's queue was full",
    ),
    (
        "edgescore_failed_requests_total",
        Kind::Counter,
        "Requests answered 500 because the scoring component failed",
    ),
    (
        "edgescore_shard_restarts_total",
        Kind::Counter,
        "Shard instances restarted after a trap or a broken invariant",
    ),
    (
        "edgescore_shard_panics_total",
        Kind::Counter,
        "Shard threads that panicked and were restarted",
    ),
    (
        "edgescore_shard_fill_ratio",
        Kind::Gauge,
        "How full each shard's windows are, as a fraction of its event capacity",
    ),
    (
        "edgescore_guest_memory_bytes",
        Kind::Gauge,
        "Linear memory of each shard's component instance",
    ),
    (
        "edgescore_requests_in_flight",
        Kind::Gauge,
        "Requests being handled now",
    ),
    (
        "edgescore_queued_requests",
        Kind::Gauge,
        "Ingest requests waiting in the shards' queues",
    ),
    (
        "edgescore_watermark_seconds",
        Kind::Gauge,
        "The newest event time seen (Unix seconds); windows end here",
    ),
    (
        "edgescore_uptime_seconds",
        Kind::Gauge,
        "Seconds since the service started",
    ),
    (
        "edgescore_feature_drift",
        Kind::Gauge,
        "1 while a feature's rolling mean has drifted from the model's baseline, else 0",
    ),
    (
        "edgescore_feature_rolling_mean",
        Kind::Gauge,
        "A feature's mean over the drift window",
    ),
    (
        "edgescore_feature_standardized_shift",
        Kind::Gauge,
        "A feature's (rolling mean - baseline mean) / baseline std",
    ),
];

/// Upper bounds (seconds) of the request latency buckets: 0.25 ms to 10 s.
pub const REQUEST_BUCKETS: [f64; 15] = [
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Upper bounds (seconds) of the component call buckets: 10 µs to 1 s.
pub const COMPONENT_BUCKETS: [f64; 15] = [
    0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
    0.1, 0.25, 1.0,
];

/// Where requests that match no route are counted.
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    /// `routes`: the router's path templates.
    pub fn new(routes: &[&'static str]) -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(
                Matcher::Full("edgescore_http_request_duration_seconds".into()),
                &REQUEST_BUCKETS,
            )
            .and_then(|b| {
                b.set_buckets_for_metric(
                    Matcher::Full("edgescore_component_call_seconds".into()),
                    &COMPONENT_BUCKETS,
                )
            })
            .expect("non-empty buckets")
            .build_recorder();
        for (name, kind, help) in DESCRIPTIONS {
            let (name, help) = (KeyName::from_const_str(name), (*help).into());
            match kind {
                Kind::Counter => recorder.describe_counter(name, None, help),
                Kind::Gauge => recorder.describe_gauge(name, None, help),
                Kind::Histogram => recorder.describe_histogram(name, Some(Unit::Seconds), help),
            }
        }
        let handle = recorder.handle();
        let routes = routes
            .iter()
            .chain([&UNMATCHED])
            .map(|r| (*r, RouteStats::default()))
            .collect();
        let component = COMPONENT_CALLS
            .iter()
            .map(|c| (*c, Latency::default()))
            .collect();
        Metrics {
            recorder,
            handle,
            routes,
            component,
            samples: AtomicU64::new(0),
        }
    }

    /// Counts one histogram sample; every [`UPKEEP_EVERY`] the pending ones go into the buckets.
    fn sampled(&self) {
        if self.samples.fetch_add(1, Ordering::Relaxed) % UPKEEP_EVERY == UPKEEP_EVERY - 1 {
            self.handle.run_upkeep();
        }
    }

    pub fn record_request(&self, route: &str, status: u16, elapsed: Duration) {
        let (route, stats) = match self.routes.get_key_value(route) {
            Some((r, s)) => (*r, s),
            None => (UNMATCHED, &self.routes[UNMATCHED]),
        };
        stats.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            stats.errors.fetch_add(1, Ordering::Relaxed);
        }
        stats.latency.record(elapsed);
        let labels = vec![
            Label::new("route", route),
            Label::new("status", status.to_string()),
        ];
        self.recorder
            .register_counter(
                &Key::from_parts("edgescore_http_requests_total", labels),
                &META,
            )
            .increment(1);
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "edgescore_http_request_duration_seconds",
                    vec![Label::new("route", route)],
                ),
                &META,
            )
            .record(elapsed.as_secs_f64());
        self.sampled();
    }

    /// Time spent in one call into the component (`call`: one of [`COMPONENT_CALLS`]).
    pub fn record_component_call(&self, call: &'static str, elapsed: Duration) {
        if let Some(latency) = self.component.get(call) {
            latency.record(elapsed);
        }
        self.recorder
            .register_histogram(
                &Key::from_parts(
                    "edgescore_component_call_seconds",
                    vec![Label::new("call", call)],
                ),
                &META,
            )
            .record(elapsed.as_secs_f64());
        self.sampled();
    }

    pub fn routes(&self) -> impl Iterator<Item = (&'static str, RouteSummary)> + '_ {
        self.routes.iter().map(|(route, s)| (*route, summary(s)))
    }

    /// One route's figures (`route`: a path template given to [`Metrics::new`]).
    pub fn route(&self, route: &str) -> Option<RouteSummary> {
        self.routes.get(route).map(summary)
    }

    pub fn component_calls(&self) -> impl Iterator<Item = (&'static str, LatencySummary)> + '_ {
        self.component.iter().map(|(c, l)| (*c, l.summary()))
    }

    /// Sets a counter that another part of the service keeps to its current value.
    pub fn set_counter(&self, name: &'static str, labels: Vec<Label>, value: u64) {
        self.recorder
            .register_counter(&Key::from_parts(name, labels), &META)
            .absolute(value);
    }

    pub fn set_gauge(&self, name: &'static str, value: f64) {
        self.set_labeled_gauge(name, Vec::new(), value);
    }

    pub fn set_labeled_gauge(&self, name: &'static str, labels: Vec<Label>, value: f64) {
        self.recorder
            .register_gauge(&Key::from_parts(name, labels), &META)
            .set(value);
    }

    /// `edgescore_build_info`: what this process runs, set once at start.
    pub fn set_build_info(&self, component_sha256: &str) {
        let labels = vec![
            Label::new("version", env!("CARGO_PKG_VERSION")),
            Label::new("component_sha256", component_sha256.to_string()),
            Label::new("wasmtime", edgescore_runtime::WASMTIME_VERSION),
        ];
        self.set_labeled_gauge("edgescore_build_info", labels, 1.0);
    }

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
