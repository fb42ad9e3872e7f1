//! The router and its handlers. Every error is JSON `{"error": "..."}` naming the field and the
//! problem; the production-features routes (predict, batch, models, metrics) slot in here.

use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection};
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use edgescore_core::api::{self, ErrorBody, MedianResponse, ParsedEvent, StatusBody};
use edgescore_core::{EngineStats, Event, MAX_USER_ID_BYTES, Rejection};
use serde::Serialize;
use tokio::sync::oneshot;

use super::shard::{Command, ShardError};
use super::stats::{Counters, LatencySummary};
use super::{ModelLabel, Service};

pub fn router(service: Arc<Service>) -> Router {
    let body_limit = service.config.max_body_bytes;
    Router::new()
        .route("/ingest", post(ingest))
        .route("/users/{user_id}/median", get(median))
        .route("/stats", get(stats))
        .route("/health", get(health))
        .route("/ready", get(ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(service.clone(), log_request))
        .with_state(service)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(ErrorBody::new(message))).into_response()
}

/// Counts a request in flight until dropped (also when the client goes away mid-request).
struct InFlight<'a>(&'a Counters);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// One structured line per request, at info.
async fn log_request(
    State(service): State<Arc<Service>>,
    path: Option<MatchedPath>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    Counters::count(&service.counters.in_flight, 1);
    let _in_flight = InFlight(&service.counters);
    let method = request.method().clone();
    let route = path.map_or_else(|| "unmatched".to_string(), |p| p.as_str().to_string());
    let response = next.run(request).await;
    tracing::info!(
        target: "edgescore::http",
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = started.elapsed().as_secs_f64() * 1e3,
        "request"
    );
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        format!("path: no route for {method} {}", uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("method: {method} is not allowed on {}", uri.path()),
    )
}

fn overloaded(service: &Service, shard: usize) -> Response {
    Counters::count(&service.counters.overloaded, 1);
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        format!(
            "overloaded: shard {shard}'s queue is full; nothing of this request was accepted, retry after 1 s"
        ),
    );
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

fn body_error(rejection: BytesRejection, limit: usize) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        error(
            status,
            format!("body: larger than the limit of {limit} bytes"),
        )
    } else {
        error(status, format!("body: could not be read: {rejection}"))
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

async fn ingest(
    State(service): State<Arc<Service>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let response = match body {
        Ok(body) => ingest_body(&service, &body).await,
        Err(rejection) => body_error(rejection, service.config.max_body_bytes),
    };
    Counters::count(&service.counters.ingest_requests, 1);
    service.counters.record_ingest_latency(started.elapsed());
    response
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

    // Judge the whole batch here, in order, against the service watermark: lateness then follows
    // batch order even across shards. The shards judge again (concurrent requests may have moved
    // the watermark since) and theirs is the final word.
    let mut rejections: Vec<Rejection> = Vec::new();
    let mut events = Vec::with_capacity(parsed.len());
    let mut positions = Vec::with_capacity(parsed.len());
    for (index, p) in parsed.into_iter().enumerate() {
        match p {
            ParsedEvent::Event(e) => {
                events.push(e);
                positions.push(index as u32);
            }
            ParsedEvent::Invalid(reason, message) => rejections.push(Rejection {
                index: index as u32,
                reason,
                message,
            }),
        }
    }
    let (checked, _) = service
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

fn shard_failed(service: &Service, e: ShardError) -> Response {
    Counters::count(&service.counters.failed, 1);
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}

async fn median(
    State(service): State<Arc<Service>>,
    user_id: Result<Path<String>, PathRejection>,
) -> Response {
    let user_id = match user_id {
        Ok(Path(id)) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("user_id: {e}")),
    };
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return error(
            StatusCode::BAD_REQUEST,
            format!(
                "user_id: must be 1 to {MAX_USER_ID_BYTES} bytes, got {}",
                user_id.len()
            ),
        );
    }
    Counters::count(&service.counters.median_requests, 1);
    let shard = service.shard_of(&user_id);
    let (reply, answer) = oneshot::channel();
    let command = Command::Median {
        user_id: user_id.clone(),
        reply,
    };
    if service.shards[shard].queue.try_send(command).is_err() {
        return overloaded(&service, shard);
    }
    match answer.await {
        Ok(Ok(m)) => Json(MedianResponse {
            user_id,
            median: m.median,
            count: m.count,
            window_seconds: m.window_seconds,
        })
        .into_response(),
        Ok(Err(e)) => shard_failed(&service, e),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service: shutting down".to_string(),
        ),
    }
}

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

async fn stats(State(service): State<Arc<Service>>) -> Response {
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

async fn health() -> Response {
    Json(StatusBody {
        status: "ok",
        reason: None,
    })
    .into_response()
}

async fn ready(State(service): State<Arc<Service>>) -> Response {
    match service.shards.iter().find(|s| !s.healthy()) {
        None => Json(StatusBody {
            status: "ok",
            reason: None,
        })
        .into_response(),
        Some(shard) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody {
                status: "unavailable",
                reason: Some(format!(
                    "shard {}: the scoring component could not be rebuilt",
                    shard.index
                )),
            }),
        )
            .into_response(),
    }
}
