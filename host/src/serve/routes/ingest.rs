//! `POST /ingest`: parse, judge the batch in order against the service watermark, split it by
//! shard, queue every part or none (503), and answer once every part is recorded.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgescore_core::Event;
use edgescore_core::api;
use serde::Serialize;
use tokio::sync::oneshot;

use super::{body_error, error, overloaded, unix_now};
use crate::serve::Service;
use crate::serve::shard::Command;
use crate::serve::stats::Counters;

pub async fn ingest(
    State(service): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // Requests and latency are counted per route by the request middleware (`/stats` reads
    // the seed's ingest figures from there).
    match body {
        Ok(body) => ingest_body(&service, &body).await,
        Err(rejection) => body_error(rejection, service.config.max_body_bytes),
    }
}

/// One shard's share of a request: its events and their positions in the request.
#[derive(Default)]
struct Part {
    events: Vec<Event>,
    positions: Vec<u32>,
}

#[derive(Serialize)]
struct IngestFailure {
    error: String,
    /// Events of this request that were recorded all the same (on other shards).
    processed: u32,
    /// Positions of the events that were not recorded.
    not_recorded: Vec<u32>,
}

async fn ingest_body(service: &Service, body: &[u8]) -> Response {
    let parsed = match api::parse_ingest(body, service.config.max_events) {
        Ok(parsed) => parsed,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, e.to_string());
        }
    };
    let now = unix_now();
    // Held until every part is queued: a reload's swap lands before or after this request on
    // every shard, never between its parts.
    let catalog = service.catalog.read().await;

    // Judge the whole batch here, in order, against the service watermark: lateness then follows
    // batch order even across shards. The shards judge again (concurrent requests may have moved
    // the watermark since) and theirs is the final word.
    let (events, positions, mut rejections) = api::split_parsed(parsed);
    let (checked, _) = catalog
        .rules
        .check_batch(&events, now, service.watermark.get());
    for mut r in checked.rejections {
        r.index = positions[r.index as usize];
        rejections.push(r);
    }

    let mut parts: Vec<Part> = (0..service.shards.len()).map(|_| Part::default()).collect();
    let mut accepted = checked.accepted.into_iter().peekable();
    for (i, event) in events.into_iter().enumerate() {
        if accepted.next_if_eq(&(i as u32)).is_some() {
            let part = &mut parts[service.shard_of(&event.user_id)];
            part.events.push(event);
            part.positions.push(positions[i]);
        }
    }

    // All or nothing: a place in every queue involved first, then the sends.
    let mut permits = Vec::new();
    for (shard, part) in parts.iter().enumerate() {
        if part.events.is_empty() {
            continue;
        }
        match service.shards[shard].queue.try_reserve() {
            Ok(permit) => permits.push((shard, permit)),
            Err(_) => return overloaded(service, shard),
        }
    }
    for r in &rejections {
        service.counters.reject(r.reason);
    }
    let mut waiting = Vec::with_capacity(permits.len());
    for (shard, permit) in permits {
        let part = std::mem::take(&mut parts[shard]);
        let (reply, answer) = oneshot::channel();
        permit.send(Command::Ingest {
            events: part.events,
            now,
            reply,
        });
        waiting.push((shard, answer, part.positions));
    }
    drop(catalog);
    // Collected in a task of its own, so that the watermark is raised once every part is recorded
    // even if the client goes away meanwhile.
    let watermark = service.watermark.clone();
    let collected = tokio::spawn(async move {
        let mut answers = Vec::with_capacity(waiting.len());
        for (shard, answer, positions) in waiting {
            answers.push((shard, answer.await, positions));
        }
        let max = answers
            .iter()
            .filter_map(|(_, a, _)| a.as_ref().ok()?.as_ref().ok()?.max_timestamp)
            .reduce(f64::max);
        if let Some(max) = max {
            watermark.raise(max);
        }
        answers
    });
    let Ok(answers) = collected.await else {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "ingest: the request's task failed",
        );
    };

    let mut processed = 0;
    let mut failures: Vec<String> = Vec::new();
    let mut not_recorded = Vec::new();
    for (shard, answer, positions) in answers {
        match answer {
            Ok(Ok(report)) => {
                processed += report.accepted;
                rejections.extend(report.rejections.into_iter().map(|mut r| {
                    r.index = positions[r.index as usize];
                    r
                }));
            }
            Ok(Err(e)) => {
                failures.push(e.to_string());
                not_recorded.extend(positions);
            }
            Err(_) => {
                failures.push(format!("shard {shard}: stopped before answering"));
                not_recorded.extend(positions);
            }
        }
    }
    if !failures.is_empty() {
        Counters::count(&service.counters.failed, 1);
        not_recorded.sort_unstable();
        let body = IngestFailure {
            error: format!(
                "scoring failed, {} of this request's events were not recorded: {}",
                not_recorded.len(),
                failures.join("; ")
            ),
            processed,
            not_recorded,
        };
        return (StatusCode::INTERNAL_SERVER_ERROR, Json(body)).into_response();
    }
    Json(api::ingest_response(processed, rejections)).into_response()
}
