//! Per-route request counts, error counts and latencies, the time spent inside the component, and
//! their Prometheus text exposition (`GET /metrics`) through the `metrics` crates: one
//! `PrometheusRecorder` per service (not a global one, so several services can share a process).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use metrics::{Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};
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

#[derive(Debug, Default, Serialize)]
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
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

/// Where requests that match no route are counted.
pub const UNMATCHED: &str = "unmatched";

impl Metrics {
    /// `routes`: the router's path templates.
    pub fn new(routes: &[&'static str]) -> Metrics {
        let recorder = PrometheusBuilder::new()
            .set_quantiles(&[0.5, 0.95, 0.99])
            .expect("valid quantiles")
            .build_recorder();
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

    /// The Prometheus text exposition of everything recorded.
    pub fn render(&self) -> String {
        self.handle.render()
    }
}
