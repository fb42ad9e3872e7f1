//! `GET /users/{id}/median` and `GET /stats`, read from the store.

use edgescore_contract::errors;
use edgescore_contract::latency::{self, LatencySummary};
use edgescore_contract::models::ModelLabel;
use edgescore_contract::responses::MedianResponse;
use edgescore_contract::stored_window::{EVENT_BYTES, HEADER_BYTES};
use edgescore_types::{EngineConfig, RejectionReason};
use serde::Serialize;
use utoipa::ToSchema;

use crate::respond::{self, Result, json};
use crate::{config, models, state};

pub fn median(user_id: &str) -> Result {
    errors::check_user_id(user_id)?;
    let config = config::engine()?;
    let bucket = state::open()?;
    // Counted when the store takes it: a store refusing writes still answers reads.
    let _ = state::count(&bucket, "median_requests", 1);
    let cutoff = state::watermark(&bucket)?.map(|w| config.window_start(w));
    let window = state::windows::window(&bucket, user_id, cutoff)?;
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

#[derive(Serialize, ToSchema)]
pub struct StatsBody {
    ingest_requests: i64,
    events_processed: i64,
    median_requests: i64,
    avg_ingest_latency_seconds: f64,
    events_rejected: i64,
    /// Seconds; percentiles to a quarter of a doubling (`edgescore_contract::latency`).
    ingest_latency_seconds: LatencySummary,
    /// Rejected events by reason, every reason listed.
    #[schema(value_type = std::collections::BTreeMap<String, i64>)]
    rejections: serde_json::Map<String, serde_json::Value>,
    /// Users with a stored window; `events_in_windows` counts their stored events. Both follow
    /// every write of a window (the stats are counters, never a scan): an idle user's expired
    /// events leave them when its window is next read, written or swept.
    users_tracked: i64,
    events_in_windows: i64,
    /// Compare-and-swap conflicts retried (concurrent writes of one key).
    cas_retries: i64,
    watermark: Option<f64>,
    window_seconds: f64,
    max_clock_skew_seconds: f64,
    model: ModelLabel,
    /// Bytes the windows take in the store (values only; an id kept in a hashed key's value
    /// not counted).
    stored_window_bytes: i64,
}

/// Counters and latencies of the app, read from the store
#[utoipa::path(get, path = "/stats", tag = "service",
    responses((status = 200, description = "The seed's four fields first, then ours", body = StatsBody)))]
pub fn stats() -> Result {
    let calls_before = state::kv::taken();
    let config = config::engine()?;
    let bucket = state::open()?;
    let body = stats_body(&bucket, config)?;
    Ok(respond::with_store_calls(json(200, &body), calls_before))
}

/// The counters `/stats` shows besides rejections and latency buckets.
const COUNTERS: [&str; 6] = [
    "events_processed",
    "median_requests",
    "ingest_latency_us",
    "users",
    "events_in_windows",
    "cas_retries",
];

fn stats_body(bucket: &state::Bucket, config: EngineConfig) -> state::Result<StatsBody> {
    let reasons = RejectionReason::ALL.map(|r| format!("rejected/{}", r.as_str()));
    let buckets = (0..latency::BUCKETS).map(|b| format!("{}{b}", state::LATENCY_BUCKET));
    let names: Vec<String> = COUNTERS
        .iter()
        .map(|n| n.to_string())
        .chain(reasons.iter().cloned())
        .chain(buckets)
        .collect();
    let (values, watermark) = state::read_counters(bucket, &names)?;
    let get = |name: &str| values[names.iter().position(|n| n == name).expect("read above")];
    let mut rejections = serde_json::Map::new();
    let mut rejected = 0;
    for (reason, key) in RejectionReason::ALL.iter().zip(&reasons) {
        let n = get(key);
        rejected += n;
        rejections.insert(reason.as_str().into(), n.into());
    }
    let latency_counts = &values[COUNTERS.len() + reasons.len()..];
    let buckets: Vec<(u32, u64)> = latency_counts
        .iter()
        .enumerate()
        .filter(|(_, n)| **n > 0)
        .map(|(b, n)| (b as u32, *n as u64))
        .collect();
    let ingest_requests = latency_counts.iter().sum();
    let latency = latency::summarize(&buckets, get("ingest_latency_us") as f64 / 1e6);
    let active = &models::active().manifest;
    let users = get("users").max(0);
    let events_in_windows = get("events_in_windows").max(0);
    Ok(StatsBody {
        ingest_requests,
        events_processed: get("events_processed"),
        median_requests: get("median_requests"),
        avg_ingest_latency_seconds: latency.avg,
        events_rejected: rejected,
        ingest_latency_seconds: latency,
        rejections,
        users_tracked: users,
        events_in_windows,
        cas_retries: get("cas_retries"),
        watermark,
        window_seconds: config.window_seconds,
        max_clock_skew_seconds: config.max_clock_skew_seconds,
        model: ModelLabel {
            name: active.name.clone(),
            version: Some(active.version),
            sha256: active.sha256.clone(),
            input_width: active.input_width,
        },
        stored_window_bytes: (users * HEADER_BYTES as i64 + events_in_windows * EVENT_BYTES as i64)
            .max(0),
    })
}
