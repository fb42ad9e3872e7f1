//! `GET /stats`: the seed's four fields first, then ours; gauges summed over the shards.

use std::sync::Arc;

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use edgescore_core::EngineStats;
use serde::Serialize;
use tokio::sync::oneshot;

use crate::serve::metrics::RouteSummary;
use crate::serve::shard::Command;
use crate::serve::stats::{Counters, LatencySummary};
use crate::serve::{ModelLabel, Service};

/// `/stats`: the seed's four fields first, then ours.
#[derive(Serialize)]
struct StatsBody {
    ingest_requests: u64,
    events_processed: u64,
    median_requests: u64,
    avg_ingest_latency_seconds: f64,
    events_rejected: u64,
    rejections: serde_json::Map<String, serde_json::Value>,
    ingest_latency_seconds: LatencySummary,
    overloaded_requests: u64,
    failed_requests: u64,
    users_tracked: u64,
    events_in_windows: u64,
    watermark: Option<f64>,
    window_seconds: f64,
    max_clock_skew_seconds: f64,
    model: ModelLabel,
    /// Events scored and recorded, by the version that scored them (a reload adds a version).
    events_by_model_version: BTreeMap<String, u64>,
    model_calls: u64,
    shards: usize,
    requests_in_flight: u64,
    queued_requests: usize,
    shards_unavailable: usize,
    shard_restarts: u64,
    checkpoints: u64,
    uptime_seconds: f64,
    /// Per route: requests, errors (4xx/5xx) and latency percentiles, HTTP time.
    routes: BTreeMap<&'static str, RouteSummary>,
    /// Time inside the scoring component per call, apart from HTTP time.
    component_call_seconds: BTreeMap<&'static str, LatencySummary>,
    /// Whether the active model's traffic drifts from its baseline; detail in `GET /drift`.
    drift: DriftSummary,
}

#[derive(Serialize)]
struct DriftSummary {
    drifting: bool,
    features: Vec<String>,
}

pub async fn stats(State(service): State<Arc<Service>>) -> Response {
    let mut answers = Vec::with_capacity(service.shards.len());
    for shard in &service.shards {
        let (reply, answer) = oneshot::channel();
        // A monitoring request waits for its place rather than being turned away.
        if shard.queue.send(Command::Stats { reply }).await.is_ok() {
            answers.push(answer);
        }
    }
    let mut gauges: Vec<EngineStats> = Vec::new();
    for answer in answers {
        if let Ok(Ok(s)) = answer.await {
            gauges.push(s);
        }
    }
    let c = &service.counters;
    let catalog = service.catalog().await;
    let ingest = c.metrics.route("/ingest").unwrap_or_default();
    let latency = ingest.latency_seconds;
    let rejected: Vec<_> = c.rejected().collect();
    let body = StatsBody {
        ingest_requests: ingest.requests,
        events_processed: Counters::get(&c.events_processed),
        median_requests: Counters::get(&c.median_requests),
        avg_ingest_latency_seconds: latency.avg,
        events_rejected: rejected.iter().map(|(_, n)| n).sum(),
        rejections: rejected
            .iter()
            .map(|(r, n)| (r.as_str().to_string(), (*n).into()))
            .collect(),
        ingest_latency_seconds: latency,
        overloaded_requests: Counters::get(&c.overloaded),
        failed_requests: Counters::get(&c.failed),
        users_tracked: gauges.iter().map(|s| s.users_tracked).sum(),
        events_in_windows: gauges.iter().map(|s| s.events_in_windows).sum(),
        watermark: service.watermark.get(),
        window_seconds: service.config.engine.window_seconds,
        max_clock_skew_seconds: service.config.engine.max_clock_skew_seconds,
        model: catalog.label.clone(),
        events_by_model_version: c.scored_by_version(),
        model_calls: gauges.iter().map(|s| s.model_calls).sum(),
        shards: service.shards.len(),
        requests_in_flight: Counters::get(&c.in_flight),
        queued_requests: service.shards.iter().map(|s| s.queued()).sum(),
        shards_unavailable: service.shards.len() - gauges.len(),
        shard_restarts: service.shards.iter().map(|s| s.restarts()).sum(),
        checkpoints: service.shards.iter().map(|s| s.checkpoints()).sum(),
        uptime_seconds: service.started.elapsed().as_secs_f64(),
        routes: c.metrics.routes().collect(),
        component_call_seconds: c.metrics.component_calls().collect(),
        drift: match c.drift.lock() {
            Ok(d) => DriftSummary {
                drifting: d.is_drifting(),
                features: d.drifting_features(),
            },
            Err(_) => DriftSummary {
                drifting: false,
                features: Vec::new(),
            },
        },
    };
    Json(body).into_response()
}

/// `GET /metrics`: everything in the Prometheus text exposition format. The service's counters
/// are copied into the registry at scrape time; latencies are recorded as they happen.
pub async fn metrics(State(service): State<Arc<Service>>) -> Response {
    let c = &service.counters;
    let m = &c.metrics;
    for (name, counter) in [
        ("edgescore_events_processed_total", &c.events_processed),
        ("edgescore_median_requests_total", &c.median_requests),
        ("edgescore_overloaded_requests_total", &c.overloaded),
        ("edgescore_failed_requests_total", &c.failed),
    ] {
        m.set_counter(name, Vec::new(), Counters::get(counter));
    }
    for (version, n) in c.scored_by_version() {
        let labels = vec![metrics::Label::new("model_version", version)];
        m.set_counter("edgescore_events_scored_total", labels, n);
    }
    for (reason, n) in c.rejected() {
        let labels = vec![metrics::Label::new("reason", reason.as_str())];
        m.set_counter("edgescore_events_rejected_total", labels, n);
    }
    let restarts: u64 = service.shards.iter().map(|s| s.restarts()).sum();
    m.set_counter("edgescore_shard_restarts_total", Vec::new(), restarts);
    m.set_gauge(
        "edgescore_requests_in_flight",
        Counters::get(&c.in_flight) as f64,
    );
    let queued: usize = service.shards.iter().map(|s| s.queued()).sum();
    m.set_gauge("edgescore_queued_requests", queued as f64);
    if let Some(w) = service.watermark.get() {
        m.set_gauge("edgescore_watermark_seconds", w);
    }
    m.set_gauge(
        "edgescore_uptime_seconds",
        service.started.elapsed().as_secs_f64(),
    );
    if let Ok(drift) = c.drift.lock() {
        for f in drift.report().features {
            let label = || vec![metrics::Label::new("feature", f.feature.clone())];
            let drifting = f64::from(u8::from(f.drifting));
            m.set_labeled_gauge("edgescore_feature_drift", label(), drifting);
            if let Some(mean) = f.rolling_mean {
                m.set_labeled_gauge("edgescore_feature_rolling_mean", label(), mean);
            }
        }
    }
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        m.render(),
    )
        .into_response()
}
