//! `GET /users/{id}/median` and `GET /stats`, read from the store.

use edgescore_core::RejectionReason;
use edgescore_core::api::latency::{self, LatencySummary};
use edgescore_core::api::{self, MedianResponse};
use serde::Serialize;

use crate::respond::{Answer, error, json};
use crate::{config, models, state};

pub fn median(user_id: &str) -> Answer {
    if let Err(message) = api::check_user_id(user_id) {
        return error(400, message);
    }
    let engine = match config::engine() {
        Ok(engine) => engine,
        Err(e) => return error(500, format!("config: {e}")),
    };
    let read = state::open().and_then(|bucket| {
        state::count(&bucket, "median_requests", 1)?;
        let cutoff = state::watermark(&bucket)?.map(|w| w - engine.window_seconds);
        state::window(&bucket, user_id, cutoff)
    });
    match read {
        Ok(window) => json(
            200,
            &MedianResponse {
                user_id: user_id.to_string(),
                median: window.median(),
                count: window.len() as u32,
                window_seconds: engine.window_seconds,
            },
        ),
        Err(e) => error(503, e.0),
    }
}

#[derive(Serialize)]
struct StatsBody {
    ingest_requests: i64,
    events_processed: i64,
    median_requests: i64,
    avg_ingest_latency_seconds: f64,
    events_rejected: i64,
    /// Seconds; percentiles to a quarter of a doubling (`core::api::latency`).
    ingest_latency_seconds: LatencySummary,
    rejections: serde_json::Map<String, serde_json::Value>,
    users_tracked: usize,
    events_in_windows: usize,
    watermark: Option<f64>,
    window_seconds: f64,
    max_clock_skew_seconds: f64,
    model: ModelLabel<'static>,
    /// Bytes the windows take in the store (values only), and per event.
    stored_window_bytes: usize,
}

/// The active model, as the native service's `/stats` names it.
#[derive(Serialize)]
struct ModelLabel<'a> {
    name: &'a str,
    version: u32,
    sha256: &'a str,
    input_width: u32,
}

pub fn stats() -> Answer {
    let engine = match config::engine() {
        Ok(engine) => engine,
        Err(e) => return error(500, format!("config: {e}")),
    };
    let read = state::open().and_then(|bucket| {
        let get = |name: &str| state::count(&bucket, name, 0);
        let ingests = get("ingest_requests")?;
        let mut rejections = serde_json::Map::new();
        let mut rejected = 0;
        for reason in RejectionReason::ALL {
            let n = get(&format!("rejected/{}", reason.as_str()))?;
            rejected += n;
            rejections.insert(reason.as_str().into(), n.into());
        }
        let watermark = state::watermark(&bucket)?;
        let scan = state::scan(&bucket, watermark.map(|w| w - engine.window_seconds))?;
        let live: Vec<_> = scan.windows.iter().filter(|w| !w.is_empty()).collect();
        let mut buckets = Vec::with_capacity(scan.latency_buckets.len());
        for b in scan.latency_buckets {
            let n = get(&format!("{}{b}", state::LATENCY_BUCKET))?;
            buckets.push((b, n.max(0) as u64));
        }
        let latency_sum = get("ingest_latency_us")? as f64 / 1e6;
        let latency = latency::summarize(&buckets, latency_sum);
        let active = &models::active().manifest;
        Ok(StatsBody {
            ingest_requests: ingests,
            events_processed: get("events_processed")?,
            median_requests: get("median_requests")?,
            avg_ingest_latency_seconds: latency.avg,
            events_rejected: rejected,
            ingest_latency_seconds: latency,
            rejections,
            users_tracked: live.len(),
            events_in_windows: live.iter().map(|w| w.len()).sum(),
            watermark,
            window_seconds: engine.window_seconds,
            max_clock_skew_seconds: engine.max_clock_skew_seconds,
            model: ModelLabel {
                name: &active.name,
                version: active.version,
                sha256: &active.sha256,
                input_width: active.input_width,
            },
            stored_window_bytes: live.iter().map(|w| w.encoded_len()).sum(),
        })
    });
    match read {
        Ok(body) => json(200, &body),
        Err(e) => error(503, e.0),
    }
}
