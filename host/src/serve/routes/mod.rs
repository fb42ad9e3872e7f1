//! The router and what every handler shares (errors, the request log, overload answers). Every
//! error is JSON `{"error": "..."}` naming the field and the problem. One module per route
//! family; the production-features routes (predict, batch, models, metrics) slot in beside them.

mod batch;
mod health;
mod ingest;
mod models;
mod predict;
mod stats;
mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use edgescore_core::api::{self, ErrorBody};

use super::Service;
use super::shard::ShardError;
use super::stats::Counters;

/// Every route's path template, as requests are counted by route.
pub const ROUTES: &[&str] = &[
    "/ingest",
    "/users/{user_id}/median",
    "/stats",
    "/predict",
    "/batch",
    "/batch/{job_id}",
    "/models",
    "/models/reload",
    "/drift",
    "/metrics",
    "/health",
    "/ready",
];

pub fn router(service: Arc<Service>) -> Router {
    let body_limit = service.config.max_body_bytes;
    Router::new()
        .route("/ingest", post(ingest::ingest))
        .route("/users/{user_id}/median", get(users::median))
        .route("/stats", get(stats::stats))
        .route("/predict", post(predict::predict))
        .route("/batch", post(batch::submit_batch))
        .route("/batch/{job_id}", get(batch::batch_status))
        .route("/models", get(models::models))
        .route("/models/reload", post(models::reload))
        .route("/drift", get(models::drift))
        .route("/metrics", get(stats::metrics))
        .route("/health", get(health::health))
        .route("/ready", get(health::ready))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(service.clone(), log_request))
        .with_state(service)
}

pub(super) fn error(status: StatusCode, message: impl Into<String>) -> Response {
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
    let route = path.map_or_else(
        || super::metrics::UNMATCHED.to_string(),
        |p| p.as_str().to_string(),
    );
    let response = next.run(request).await;
    let elapsed = started.elapsed();
    service
        .counters
        .metrics
        .record_request(&route, response.status().as_u16(), elapsed);
    tracing::info!(
        target: "edgescore::http",
        method = %method,
        route,
        status = response.status().as_u16(),
        latency_ms = elapsed.as_secs_f64() * 1e3,
        "request"
    );
    response
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::NOT_FOUND,
        api::no_route(method.as_str(), uri.path()),
    )
}

async fn method_not_allowed(method: Method, uri: axum::http::Uri) -> Response {
    error(
        StatusCode::METHOD_NOT_ALLOWED,
        api::method_not_allowed(method.as_str(), uri.path()),
    )
}

pub(super) fn overloaded(service: &Service, shard: usize) -> Response {
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

pub(super) fn body_error(rejection: BytesRejection, limit: usize) -> Response {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        error(status, api::body_too_large(limit))
    } else {
        error(status, format!("body: could not be read: {rejection}"))
    }
}

pub(super) fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

pub(super) fn shard_failed(service: &Service, e: ShardError) -> Response {
    Counters::count(&service.counters.failed, 1);
    error(StatusCode::INTERNAL_SERVER_ERROR, e.to_string())
}
