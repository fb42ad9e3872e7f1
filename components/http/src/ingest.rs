//! `POST /ingest`: parse (the shared streaming parser), judge the batch in order against the
//! stored watermark (the shared rules), score the accepted events in one model call, then merge
//! each user's events into its stored window with compare-and-swap and raise the watermark.

use std::collections::BTreeMap;

use edgescore_core::api;
use edgescore_core::{Rejection, Rules};
use serde::Serialize;
use spin_sdk::http::Request;
use spin_sdk::http::body::IncomingBodyExt;

use crate::config::{self, MAX_BODY_BYTES, MAX_EVENTS};
use crate::respond::{Answer, error, json, unix_now};
use crate::{models, state};

/// The request body, or the 413/400 answer.
pub async fn read_body(request: Request) -> Result<Vec<u8>, Answer> {
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(error(413, api::body_too_large(MAX_BODY_BYTES)));
    }
    match request.into_body().bytes().await {
        Ok(body) if body.len() > MAX_BODY_BYTES => {
            Err(error(413, api::body_too_large(MAX_BODY_BYTES)))
        }
        Ok(body) => Ok(body.to_vec()),
        Err(e) => Err(error(400, format!("body: could not be read: {e:?}"))),
    }
}

#[derive(Serialize)]
struct IngestFailure {
    error: String,
    processed: u32,
    not_recorded: Vec<u32>,
}

pub async fn ingest(request: Request) -> Answer {
    let started = std::time::Instant::now();
    let body = match read_body(request).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let parsed = match api::parse_ingest(&body, MAX_EVENTS) {
        Ok(parsed) => parsed,
        Err(e) => return error(e.status(), e.to_string()),
    };
    let engine = match config::engine() {
        Ok(engine) => engine,
        Err(e) => return error(500, format!("config: {e}")),
    };
    let model = match models::active().model() {
        Ok(model) => model,
        Err(e) => return error(503, e),
    };
    let bucket = match state::open() {
        Ok(bucket) => bucket,
        Err(e) => return error(503, e.0),
    };
    let watermark = match state::watermark(&bucket) {
        Ok(w) => w,
        Err(e) => return error(503, e.0),
    };

    let (events, positions, mut rejections) = api::split_parsed(parsed);
    let rules = Rules {
        config: engine,
        width: model.input_width(),
    };
    let (checked, raised) = rules.check_batch(&events, unix_now(), watermark);
    for mut r in checked.rejections {
        r.index = positions[r.index as usize];
        rejections.push(r);
    }
    let accepted: Vec<usize> = checked.accepted.iter().map(|&i| i as usize).collect();
    let rows: Vec<f32> = accepted
        .iter()
        .flat_map(|&i| events[i].features.iter().copied())
        .collect();
    let scores = if accepted.is_empty() {
        Vec::new()
    } else {
        match model.score(&rows) {
            Ok(scores) => scores,
            Err(e) => return error(500, format!("scoring failed: {e}")),
        }
    };

    // Each user's events, then one compare-and-swap per user.
    let mut by_user: BTreeMap<&str, Vec<(f64, f32, u32)>> = BTreeMap::new();
    for (&i, score) in accepted.iter().zip(scores) {
        let e = &events[i];
        by_user
            .entry(&e.user_id)
            .or_default()
            .push((e.timestamp, score, positions[i]));
    }
    let cutoff = raised.map_or(f64::NEG_INFINITY, |w| w - engine.window_seconds);
    let mut processed = 0u32;
    let mut failure = None;
    let mut not_recorded = Vec::new();
    for (user, scored) in &by_user {
        if failure.is_some() {
            not_recorded.extend(scored.iter().map(|e| e.2));
            continue;
        }
        let window: Vec<(f64, f32)> = scored.iter().map(|e| (e.0, e.1)).collect();
        match state::record(&bucket, user, &window, cutoff) {
            Ok(()) => processed += scored.len() as u32,
            Err(e) => {
                failure = Some(e.0);
                not_recorded.extend(scored.iter().map(|e| e.2));
            }
        }
    }
    let counted = count(&bucket, processed, &rejections, started.elapsed());
    let raised = match raised {
        Some(w) if processed > 0 => state::raise_watermark(&bucket, w),
        _ => Ok(()),
    };
    if let Some(e) = failure
        .or(raised.err().map(|e| e.0))
        .or(counted.err().map(|e| e.0))
    {
        not_recorded.sort_unstable();
        return json(
            500,
            &IngestFailure {
                error: format!(
                    "state: {} of this request's events were not recorded: {e}",
                    not_recorded.len()
                ),
                processed,
                not_recorded,
            },
        );
    }
    json(200, &api::ingest_response(processed, rejections))
}

/// The request's counters (`/stats`).
fn count(
    bucket: &state::Bucket,
    processed: u32,
    rejections: &[Rejection],
    elapsed: std::time::Duration,
) -> state::Result<()> {
    state::count(bucket, "ingest_requests", 1)?;
    state::count(bucket, "events_processed", i64::from(processed))?;
    let micros = elapsed.as_micros() as u64;
    state::count(bucket, "ingest_latency_us", micros as i64)?;
    let latency_bucket = api::latency::bucket_of(micros);
    state::count(
        bucket,
        &format!("{}{latency_bucket}", state::LATENCY_BUCKET),
        1,
    )?;
    let mut by_reason: BTreeMap<&str, i64> = BTreeMap::new();
    for r in rejections {
        *by_reason.entry(r.reason.as_str()).or_default() += 1;
    }
    for (reason, n) in by_reason {
        state::count(bucket, &format!("rejected/{reason}"), n)?;
    }
    Ok(())
}
