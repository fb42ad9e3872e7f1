//! `GET /users/{id}/median` and `GET /stats`, read from the store.

use edgescore_contract::errors;
use edgescore_contract::latency::{self, LatencySummary};
use edgescore_contract::models::ModelLabel;
use edgescore_contract::responses::MedianResponse;
use edgescore_types::{EngineConfig, RejectionReason};
use serde::Serialize;

use crate::respond::{Result, json};
use crate::{config, models, state};

pub fn median(user_id: &str) -> Result {
    errors::check_user_id(user_id)?;
    let config = config::engine()?;
    let bucket = state::open()?;
    state::count(&bucket, "median_requests", 1)?;
    let cutoff = state::watermark(&bucket)?.map(|w| config.window_start(w));
    let window = state::window(&bucket, user_id, cutoff)?;
    Ok(json(
        200,
        &MedianResponse {
            user_id: user_id.to_string(),
            median: window.median(),
            count: window.len() as u32,
            window_seconds: config.window_seconds,
        },
    ))
}

#[derive(Serialize)]
struct StatsBody {
    ingest_requests: i64,
    events_processed: i64,
    median_requests: i64,
    avg_ingest_latency_seconds: f64,
    events_rejected: i64,
    /// Seconds; percentiles to a quarter of a doubling (`edgescore_contract::latency`).
    ingest_latency_seconds: LatencySummary,
    rejections: serde_json::Map<String, serde_json::Value>,
    /// Users with a stored window; `events_in_windows` counts their stored events. Both follow
    /// every write of a window (the stats are counters, never a scan): an idle user's expired
    /// events leave them when its window is next read or written.
    users_tracked: i64,
    events_in_windows: i64,
    /// Compare-and-swap conflicts retried (concurrent writes of one key).
    cas_retries: i64,
    watermark: Option<f64>,
    window_seconds: f64,
    max_clock_skew_seconds: f64,
    model: ModelLabel,
    /// Bytes the windows take in the store (values only).
    stored_window_bytes: i64,
}

pub fn stats() -> Result {
    let config = config::engine()?;
    let bucket = state::open()?;
    Ok(json(200, &stats_body(&bucket, config)?))
}

fn stats_body(bucket: &state::Bucket, config: EngineConfig) -> state::Result<StatsBody> {
    let get = |name: &str| state::count(bucket, name, 0);
    let mut rejections = serde_json::Map::new();
    let mut rejected = 0;
    for reason in RejectionReason::ALL {
        let n = get(&format!("rejected/{}", reason.as_str()))?;
        rejected += n;
        rejections.insert(reason.as_str().into(), n.into());
    }
    let watermark = state::watermark(bucket)?;
    let buckets = state::latency_buckets(bucket)?;
    let latency = latency::summarize(&buckets, get("ingest_latency_us")? as f64 / 1e6);
    let active = &models::active().manifest;
    Ok(StatsBody {
        ingest_requests: get("ingest_requests")?,
        events_processed: get("events_processed")?,
        median_requests: get("median_requests")?,
        avg_ingest_latency_seconds: latency.avg,
        events_rejected: rejected,
        ingest_latency_seconds: latency,
        rejections,
        users_tracked: get("users")?.max(0),
        events_in_windows: get("events_in_windows")?.max(0),
        cas_retries: get("cas_retries")?,
        watermark,
        window_seconds: config.window_seconds,
        max_clock_skew_seconds: config.max_clock_skew_seconds,
        model: ModelLabel {
            name: active.name.clone(),
            version: Some(active.version),
            sha256: active.sha256.clone(),
            input_width: active.input_width,
        },
        stored_window_bytes: get("stored_window_bytes")?.max(0),
    })
}
