//! `POST /ingest`: the contract's pipeline, with the key-value store as the recorder — parse and
//! judge the batch in order against the stored watermark, score the accepted events in one call
//! of the scoring component, merge each user's events into its stored window with
//! compare-and-swap, raise the watermark.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use edgescore_contract::clock::unix_now;
use edgescore_contract::errors::scoring_failed;
use edgescore_contract::ingest::{Ingest, Judged};
use edgescore_contract::latency;
use edgescore_types::{Rejection, Rules};
use spin_sdk::http::Request;

use crate::config::{self, MAX_EVENTS};
use crate::models::Model;
use crate::respond::{Result, json};
use crate::state::WindowChange;
use crate::{body, models, state};

pub async fn ingest(request: Request) -> Result {
    let started = Instant::now();
    let body = body::read(request).await?;
    let config = config::engine()?;
    let model = models::active().model()?;
    let bucket = state::open()?;
    let rules = Rules {
        config,
        width: model.input_width(),
    };
    let watermark = state::watermark(&bucket)?;
    let (mut ingest, judged) = Ingest::start(&body, MAX_EVENTS, &rules, watermark, unix_now())?;
    let raised = judged.watermark;
    let cutoff = raised.map_or(f64::NEG_INFINITY, |w| config.window_start(w));
    let changed = record(&bucket, model, judged, cutoff, &mut ingest);

    let counted = count(&bucket, &ingest, started.elapsed()).and(changed.count(&bucket));
    let raised = match raised {
        // No write unless the watermark rises.
        Some(w) if ingest.processed() > 0 && watermark.is_none_or(|old| w > old) => {
            state::raise_watermark(&bucket, w)
        }
        _ => Ok(()),
    };
    // Everything was recorded, but the watermark or the counters were not written.
    if let Err(e) = raised.and(counted) {
        ingest.not_recorded([], e.0);
    }
    Ok(json(200, &ingest.finish()?))
}

/// Scores the accepted events in one call and merges each user's into its window (one
/// compare-and-swap per user). What cannot be recorded is entered in `ingest` as not recorded.
/// Returns what the windows' counters must follow.
fn record(
    bucket: &state::Bucket,
    model: &Model,
    judged: Judged,
    cutoff: f64,
    ingest: &mut Ingest,
) -> WindowChange {
    let mut changed = WindowChange::default();
    if judged.events.is_empty() {
        return changed;
    }
    let rows: Vec<f32> = judged
        .events
        .iter()
        .flat_map(|a| a.event.features.iter().copied())
        .collect();
    let scores = match model.score(&rows) {
        Ok(scores) => scores,
        Err(e) => {
            let positions = judged.events.iter().map(|a| a.position);
            ingest.not_recorded(positions, scoring_failed(&e).message().to_string());
            return changed;
        }
    };
    let mut by_user: BTreeMap<&str, Vec<(f64, f32, u32)>> = BTreeMap::new();
    for (a, score) in judged.events.iter().zip(scores) {
        if !score.is_finite() {
            ingest.recorded(0, [Rejection::non_finite_score(a.position, score)]);
            continue;
        }
        by_user
            .entry(&a.event.user_id)
            .or_default()
            .push((a.event.timestamp, score, a.position));
    }
    // After one failed write the store is not to be trusted for this request: the users after
    // it are not attempted.
    let mut failure: Option<(String, Vec<u32>)> = None;
    for (user, scored) in &by_user {
        let positions = scored.iter().map(|e| e.2);
        if let Some((_, lost)) = &mut failure {
            lost.extend(positions);
            continue;
        }
        let window: Vec<(f64, f32)> = scored.iter().map(|e| (e.0, e.1)).collect();
        match state::record(bucket, user, &window, cutoff) {
            Ok(change) => {
                changed.add(change);
                ingest.recorded(scored.len() as u32, []);
            }
            Err(e) => failure = Some((e.0, positions.collect())),
        }
    }
    if let Some((why, lost)) = failure {
        ingest.not_recorded(lost, why);
    }
    changed
}

/// The request's counters (`/stats`).
fn count(bucket: &state::Bucket, ingest: &Ingest, elapsed: Duration) -> state::Result<()> {
    state::count(bucket, "ingest_requests", 1)?;
    state::count(bucket, "events_processed", i64::from(ingest.processed()))?;
    let micros = elapsed.as_micros() as u64;
    state::count(bucket, "ingest_latency_us", micros as i64)?;
    let latency_bucket = latency::bucket_of(micros);
    state::count(
        bucket,
        &format!("{}{latency_bucket}", state::LATENCY_BUCKET),
        1,
    )?;
    let mut by_reason: BTreeMap<&str, i64> = BTreeMap::new();
    for r in ingest.rejections() {
        *by_reason.entry(r.reason.as_str()).or_default() += 1;
    }
    for (reason, n) in by_reason {
        state::count(bucket, &format!("rejected/{reason}"), n)?;
    }
    Ok(())
}
