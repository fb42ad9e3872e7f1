//! `POST /ingest`: the contract's pipeline, with the key-value store as the recorder — parse the
//! batch, read the watermark and the users' windows in one `get-many`, judge the events in order
//! against the watermark, score the accepted ones in one call of the scoring component, then
//! write: each user's events into its window (compare-and-swap from the value read), the
//! counters, the watermark if it rose. A write that fails takes back those before it
//! ([`state::Journal`]): the answer is then 503 with nothing of the request in the store.
//!
//! Round trips to the store, a batch of `n` events of `u` users: one `get-many`, `u` swaps, four
//! counters (more when the number of users changes or events are rejected), one swap of the
//! watermark when it rises.

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
use crate::state::{self, Journal, StateError};
use crate::{body, models, respond};

/// A user's scored events: time, score, position in the batch.
type Scored = Vec<(f64, f32, u32)>;

pub async fn ingest(request: Request) -> Result {
    let started = Instant::now();
    let body = body::read(request).await?;
    // From here on the request runs without a pause: the store calls counted are its own.
    let calls_before = state::kv::taken();
    let config = config::engine()?;
    let model = models::active().model()?;
    let bucket = state::open()?;
    let rules = Rules {
        config,
        width: model.input_width(),
    };
    let parsed = Ingest::parse(&body, MAX_EVENTS)?;
    let watermark = state::windows::read_for_ingest(&bucket, parsed.user_ids())?;
    let (mut ingest, judged) = Ingest::judge(parsed, &rules, watermark, unix_now());
    let raised = judged
        .watermark
        .filter(|w| watermark.is_none_or(|old| *w > old));
    let cutoff = judged
        .watermark
        .map_or(f64::NEG_INFINITY, |w| config.window_start(w));
    let by_user = score(model, judged, &mut ingest);
    let raised = raised.filter(|_| !by_user.is_empty());
    let mut journal = Journal::default();
    match write(
        &bucket,
        &by_user,
        cutoff,
        raised,
        &ingest,
        started,
        &mut journal,
    ) {
        Ok(()) => {
            for scored in by_user.values() {
                ingest.recorded(scored.len() as u32, []);
            }
            // Best effort: the request is recorded whether or not this sweep gets done.
            if !by_user.is_empty() {
                let _ = state::sweep::after_writing(&bucket, by_user.len(), cutoff);
            }
        }
        Err(failed) => match journal.take_back(&bucket) {
            Ok(()) => {
                let positions = by_user.values().flatten().map(|e| e.2);
                ingest.not_recorded_for_now(positions, nothing_kept(&failed), 1);
            }
            // The store stayed away: say exactly what stayed written.
            Err(_) => {
                let kept: std::collections::BTreeSet<&str> = journal.written().collect();
                let mut lost = Vec::new();
                for (user, scored) in &by_user {
                    if kept.contains(user.as_str()) {
                        ingest.recorded(scored.len() as u32, []);
                    } else {
                        lost.extend(scored.iter().map(|e| e.2));
                    }
                }
                ingest.not_recorded(lost, failed.message);
            }
        },
    }
    Ok(respond::with_store_calls(
        json(200, &ingest.finish()?),
        calls_before,
    ))
}

fn nothing_kept(failed: &StateError) -> String {
    format!(
        "{}; what the request had written was taken back, nothing of it is recorded",
        failed.message
    )
}

/// Scores the accepted events in one call, by user (in the order of the users' ids); none if
/// there is nothing to record. A scoring failure is entered in `ingest`.
fn score(model: &Model, judged: Judged, ingest: &mut Ingest) -> BTreeMap<String, Scored> {
    let mut by_user: BTreeMap<String, Scored> = BTreeMap::new();
    if judged.events.is_empty() {
        return by_user;
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
            return by_user;
        }
    };
    for (a, score) in judged.events.into_iter().zip(scores) {
        if !score.is_finite() {
            ingest.recorded(0, [Rejection::non_finite_score(a.position, score)]);
            continue;
        }
        by_user
            .entry(a.event.user_id)
            .or_default()
            .push((a.event.timestamp, score, a.position));
    }
    by_user
}

/// Every write of the request, each entered in `journal`: the windows, the counters, the
/// watermark (last: the one write that is not taken back).
fn write(
    bucket: &state::Bucket,
    by_user: &BTreeMap<String, Scored>,
    cutoff: f64,
    raised: Option<f64>,
    ingest: &Ingest,
    started: Instant,
    journal: &mut Journal,
) -> state::Result<()> {
    for (user, scored) in by_user {
        let events = scored.iter().map(|e| (e.0, e.1)).collect();
        journal.record(bucket, user, events, cutoff)?;
    }
    journal.count_windows(bucket)?;
    let processed = by_user.values().map(Vec::len).sum::<usize>();
    count(bucket, journal, ingest, processed, started.elapsed())?;
    if let Some(w) = raised {
        state::raise_watermark(bucket, w)?;
    }
    Ok(())
}

/// The request's counters (`/stats`; the number of requests is the sum of the latency buckets).
fn count(
    bucket: &state::Bucket,
    journal: &mut Journal,
    ingest: &Ingest,
    processed: usize,
    elapsed: Duration,
) -> state::Result<()> {
    journal.count(bucket, "events_processed", processed as i64)?;
    let micros = elapsed.as_micros() as u64;
    journal.count(bucket, "ingest_latency_us", micros.max(1) as i64)?;
    let latency_bucket = latency::bucket_of(micros);
    journal.count(
        bucket,
        &format!("{}{latency_bucket}", state::LATENCY_BUCKET),
        1,
    )?;
    let mut by_reason: BTreeMap<&str, i64> = BTreeMap::new();
    for r in ingest.rejections() {
        *by_reason.entry(r.reason.as_str()).or_default() += 1;
    }
    for (reason, n) in by_reason {
        journal.count(bucket, &format!("rejected/{reason}"), n)?;
    }
    Ok(())
}
