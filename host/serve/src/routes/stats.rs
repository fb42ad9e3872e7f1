//! `GET /stats`: the seed's four fields first, then ours; gauges summed over the shards.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use edgescore_contract::models::ModelLabel;
use edgescore_types::EngineStats;
use serde::Serialize;
use tokio::sync::oneshot;
use utoipa::ToSchema;

use crate::drift::Drift;
use crate::shard::{Command, Shard};
use crate::storage::background::WriterStatus;
use crate::telemetry::metrics::RouteSummary;
use crate::telemetry::{Counters, LatencySummary};
use crate::{DataDir, Service};

/// `/stats`: the seed's four fields first, then ours.
#[derive(Serialize, ToSchema)]
pub struct StatsBody {
    ingest_requests: u64,
    events_processed: u64,
    median_requests: u64,
    avg_ingest_latency_seconds: f64,
    events_rejected: u64,
    /// Rejected events by reason, every reason listed.
    #[schema(value_type = BTreeMap<String, u64>)]
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
    /// Panics of shard threads that were caught (each followed by a rebuild).
    shard_panics: u64,
    checkpoints: u64,
    uptime_seconds: f64,
    /// Per route: requests, errors (4xx/5xx) and latency percentiles, HTTP time.
    routes: BTreeMap<&'static str, RouteSummary>,
    /// Time inside the scoring component per call, apart from HTTP time.
    component_call_seconds: BTreeMap<&'static str, LatencySummary>,
    /// Whether the active model's traffic drifts from its baseline; detail in `GET /drift`.
    drift: DriftSummary,
    /// Each shard: able to score, how full its capacity is, its guest memory.
    shard_detail: Vec<ShardDetail>,
    /// The data directory (absent with `--ephemeral`).
    #[serde(skip_serializing_if = "Option::is_none")]
    storage: Option<StorageStats>,
}

#[derive(Serialize, ToSchema)]
pub struct ShardDetail {
    shard: usize,
    ready: bool,
    /// Thousandths of the state the shard may hold: new users are refused from 900 on, every
    /// event at 1000.
    fill_permille: u32,
    guest_memory_bytes: u64,
    restarts: u64,
    /// How long its last checkpoint held it (the copy of its state out of the component; the
    /// snapshot file is written off its thread).
    last_checkpoint_ms: f64,
}

/// The data directory, when the state is on disk.
#[derive(Serialize, ToSchema)]
pub struct StorageStats {
    data_dir: String,
    durability: String,
    /// False while writes fail (a full disk): ingest answers 503 meanwhile.
    writable: bool,
    snapshots_written: u64,
    snapshot_failures: u64,
    last_snapshot_write_ms: f64,
    last_snapshot_bytes: u64,
}

#[derive(Serialize, ToSchema)]
pub struct DriftSummary {
    drifting: bool,
    features: Vec<String>,
}

/// Counters, latencies and gauges of the whole service
#[utoipa::path(get, path = "/stats", tag = "service",
    responses((status = 200, description = "The seed's four fields first, then ours", body = StatsBody)))]
pub async fn stats(State(service): State<Arc<Service>>) -> Json<StatsBody> {
    let gauges = shard_gauges(&service).await;
    let model = service.catalog().await.label.clone();
    Json(StatsBody::new(&service, &gauges, model))
}

/// Every shard's engine stats (a shard that cannot answer is left out).
async fn shard_gauges(service: &Service) -> Vec<EngineStats> {
    let mut answers = Vec::with_capacity(service.shards().len());
    for shard in service.shards() {
        let (reply, answer) = oneshot::channel();
        // A monitoring request waits for its place rather than being turned away.
        if shard.queue.send(Command::Stats { reply }).await.is_ok() {
            answers.push(answer);
        }
    }
    let mut gauges = Vec::with_capacity(answers.len());
    for answer in answers {
        if let Ok(Ok(s)) = answer.await {
            gauges.push(s);
        }
    }
    gauges
}

impl StatsBody {
    fn new(service: &Service, gauges: &[EngineStats], model: ModelLabel) -> StatsBody {
        let c = &service.counters;
        let shards = service.shards();
        let ingest = c.metrics.route("/ingest").unwrap_or_default();
        let latency = ingest.latency_seconds;
        // The seed's two: over every run on this data directory.
        let (ingest_requests, avg_ingest_latency_seconds) = c.ingest_requests();
        let rejected: Vec<_> = c.rejected().collect();
        StatsBody {
            ingest_requests,
            events_processed: Counters::get(&c.events_processed),
            median_requests: Counters::get(&c.median_requests),
            avg_ingest_latency_seconds,
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
            model,
            events_by_model_version: c.scored_by_version(),
            model_calls: gauges.iter().map(|s| s.model_calls).sum(),
            shards: shards.len(),
            requests_in_flight: Counters::get(&c.in_flight),
            queued_requests: shards.iter().map(|s| s.queued()).sum(),
            shards_unavailable: shards.len() - gauges.len(),
            shard_restarts: shards.iter().map(|s| s.restarts()).sum(),
            shard_panics: shards.iter().map(|s| s.panics()).sum(),
            checkpoints: shards.iter().map(|s| s.checkpoints()).sum(),
            uptime_seconds: service.started.elapsed().as_secs_f64(),
            routes: c.metrics.routes().collect(),
            component_call_seconds: c.metrics.component_calls().collect(),
            shard_detail: shards.iter().map(ShardDetail::of).collect(),
            storage: service
                .storage()
                .map(|(data, writer)| StorageStats::of(data, writer)),
            drift: DriftSummary::of(&c.drift),
        }
    }
}

impl ShardDetail {
    fn of(shard: &Shard) -> ShardDetail {
        ShardDetail {
            shard: shard.index,
            ready: shard.healthy(),
            fill_permille: shard.fill_permille(),
            guest_memory_bytes: shard.memory_bytes(),
            restarts: shard.restarts(),
            last_checkpoint_ms: shard.last_checkpoint().as_secs_f64() * 1e3,
        }
    }
}

impl StorageStats {
    fn of(data: &DataDir, writer: &WriterStatus) -> StorageStats {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        StorageStats {
            data_dir: data.path.display().to_string(),
            durability: format!("{:?}", data.durability).to_lowercase(),
            writable: !data.failing.load(Ordering::Relaxed),
            snapshots_written: load(&writer.written),
            snapshot_failures: load(&writer.failed),
            last_snapshot_write_ms: load(&writer.last_write_micros) as f64 / 1e3,
            last_snapshot_bytes: load(&writer.last_bytes),
        }
    }
}

impl DriftSummary {
    fn of(drift: &Mutex<Drift>) -> DriftSummary {
        match drift.lock() {
            Ok(d) => DriftSummary {
                drifting: d.is_drifting(),
                features: d.drifting_features(),
            },
            Err(_) => DriftSummary {
                drifting: false,
                features: Vec::new(),
            },
        }
    }
}

/// Prometheus metrics
#[utoipa::path(get, path = "/metrics", tag = "service",
    responses((status = 200, description = "The Prometheus text exposition format", body = String, content_type = "text/plain; version=0.0.4")))]
/// `GET /metrics`: everything in the Prometheus text exposition format. The service's counters
/// are copied into the registry at scrape time; latencies are recorded as they happen.
pub async fn metrics(State(service): State<Arc<Service>>) -> impl IntoResponse {
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
    let restarts: u64 = service.shards().iter().map(|s| s.restarts()).sum();
    m.set_counter("edgescore_shard_restarts_total", Vec::new(), restarts);
    for shard in service.shards() {
        let label = || vec![metrics::Label::new("shard", shard.index.to_string())];
        m.set_labeled_gauge(
            "edgescore_shard_fill_ratio",
            label(),
            f64::from(shard.fill_permille()) / 1000.0,
        );
        m.set_labeled_gauge(
            "edgescore_guest_memory_bytes",
            label(),
            shard.memory_bytes() as f64,
        );
    }
    let panics: u64 = service.shards().iter().map(|s| s.panics()).sum();
    m.set_counter("edgescore_shard_panics_total", Vec::new(), panics);
    m.set_gauge(
        "edgescore_requests_in_flight",
        Counters::get(&c.in_flight) as f64,
    );
    let queued: usize = service.shards().iter().map(|s| s.queued()).sum();
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
            if let Some(shift) = f.standardized_shift {
                m.set_labeled_gauge("edgescore_feature_standardized_shift", label(), shift);
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
}
