//! The route table and what every handler shares: the request log, request ids, the JSON 404/405 answers,
//! reading a body within its limits, and the guards around each route ([`guards`]). One module
//! per route family; every handler returns `Result<_, Error>`.

mod batch;
mod dashboard;
mod guards;
mod health;
mod inference;
mod ingest;
mod models;
pub mod openapi;
mod predict;
pub mod request_id;
mod stats;
mod users;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{MethodRouter, get, post};
use edgescore_contract::{ApiError, errors};

use crate::Service;
use crate::error::Error;
use crate::telemetry::Counters;

/// What a route's request carries.
#[derive(Clone, Copy, PartialEq)]
enum Body {
    /// A JSON body (415 for any other content type).
    Json,
    None,
}

/// Every route: its path template, handlers, and whether it takes a body. The router and
/// `/stats`' per-route figures are both built from it, so a route cannot be served without being
/// counted.
fn table() -> Vec<(&'static str, MethodRouter<Arc<Service>>, Body)> {
    use Body::{Json, None};
    vec![
        ("/ingest", post(ingest::ingest), Json),
        ("/users/{user_id}/median", get(users::median), None),
        ("/stats", get(stats::stats), None),
        ("/predict", post(predict::predict), Json),
        ("/batch", post(batch::submit_batch), Json),
        ("/batch/{job_id}", get(batch::batch_status), None),
        ("/models", get(models::models), None),
        ("/models/reload", post(models::reload), None),
        ("/drift", get(models::drift), None),
        ("/metrics", get(stats::metrics), None),
        ("/openapi.json", get(openapi::openapi), None),
        ("/dashboard", get(dashboard::dashboard), None),
        ("/health", get(health::health), None),
        ("/ready", get(health::ready), None),
        // The Open Inference Protocol; its infer routes also take binary tensors after the JSON,
        // so they check their content type themselves.
        ("/v2", get(inference::server), None),
        ("/v2/health/live", get(health::health), None),
        ("/v2/health/ready", get(health::ready), None),
        ("/v2/models/{name}", get(inference::model), None),
        (
            "/v2/models/{name}/versions/{version}",
            get(inference::model_version),
            None,
        ),
        ("/v2/models/{name}/ready", get(inference::model_ready), None),
        (
            "/v2/models/{name}/versions/{version}/ready",
            get(inference::model_version_ready),
            None,
        ),
        ("/v2/models/{name}/infer", post(inference::infer), None),
        (
            "/v2/models/{name}/versions/{version}/infer",
            post(inference::infer_version),
            None,
        ),
        (
            "/v2/repository/index",
            post(inference::repository_index),
            None,
        ),
    ]
}

/// The path templates of every route, as requests are counted by route (`/docs`: Swagger UI).
pub fn paths() -> Vec<&'static str> {
    table()
        .into_iter()
        .map(|(path, ..)| path)
        .chain(["/docs"])
        .collect()
}

pub fn router(service: Arc<Service>) -> Router {
    let guards = guards::Guards::new(&service.config);
    table()
        .into_iter()
        .fold(Router::new(), |router, (path, handlers, body)| {
            router.route(path, guards.around(path, handlers, body == Body::Json))
        })
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(service.clone())
        .merge(openapi::docs())
        .layer(middleware::from_fn_with_state(service, log_request))
        .layer(request_id::propagate())
        .layer(request_id::set())
}

/// A request's body, read whole within the body timeout and the size limit (413 as soon as it
/// passes the limit; 408 when it is not all sent in time).
async fn read_body(service: &Service, body: axum::body::Body) -> Result<Bytes, ApiError> {
    let limit = service.config.max_body_bytes;
    let timeout = service.config.limits.body_read;
    match tokio::time::timeout(timeout, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => Ok(bytes),
        Ok(Err(e)) if too_large(&e) => Err(errors::body_too_large(limit)),
        Ok(Err(e)) => Err(errors::body_unreadable(e)),
        Err(_) => Err(ApiError::new(
            408,
            format!(
                "body: not received within {} s; nothing of this request was done",
                timeout.as_secs_f64()
            ),
        )),
    }
}

/// Whether reading a body failed on the size limit.
fn too_large(e: &axum::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = source {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        source = error.source();
    }
    false
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

/// One structured line per request, at info, and the per-route metrics.
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
    let route = match path {
        // Swagger UI's page and files count as one route.
        Some(p) if p.as_str().starts_with("/docs") => "/docs".to_string(),
        Some(p) => p.as_str().to_string(),
        None => crate::telemetry::metrics::UNMATCHED.to_string(),
    };
    let id = request_id::of(request.headers());
    let response = request_id::scope(id.clone(), next.run(request)).await;
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
        request_id = id.as_deref().unwrap_or(""),
        "request"
    );
    response
}

async fn not_found(method: Method, uri: Uri) -> Error {
    errors::no_route(method.as_str(), uri.path()).into()
}

async fn method_not_allowed(method: Method, uri: Uri) -> Error {
    errors::method_not_allowed(method.as_str(), uri.path()).into()
}
