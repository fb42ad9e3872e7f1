//! `GET /stats`: the seed's four fields first, then ours; gauges summed over the shards.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use edgescore_core::EngineStats;
use serde::Serialize;
use tokio::sync::oneshot;

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
    model_calls: u64,
    shards: usize,
    requests_in_flight: u64,
    queued_requests: usize,
    shards_unavailable: usize,
    shard_restarts: u64,
    checkpoints: u64,
    uptime_seconds: f64,
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
    let latency = c.ingest_latency();
    let rejected: Vec<_> = c.rejected().collect();
    let body = StatsBody {
        ingest_requests: Counters::get(&c.ingest_requests),
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
        model: service.model.clone(),
        model_calls: gauges.iter().map(|s| s.model_calls).sum(),
        shards: service.shards.len(),
        requests_in_flight: Counters::get(&c.in_flight),
        queued_requests: service.shards.iter().map(|s| s.queued()).sum(),
        shards_unavailable: service.shards.len() - gauges.len(),
        shard_restarts: service.shards.iter().map(|s| s.restarts()).sum(),
        checkpoints: service.shards.iter().map(|s| s.checkpoints()).sum(),
        uptime_seconds: service.started.elapsed().as_secs_f64(),
    };
    Json(body).into_response()
}
