//! The HTTP front of the harness: what happens to a request before and after the app sees it.
//! The body is read with its limit (413 as soon as it is passed, never buffered whole), a free
//! instance is waited for at most `instance_wait` (then 503 + `Retry-After`), and a request the
//! app fails is a JSON 500. Every request has an `x-request-id` (its own, or a new UUID), echoed
//! in the response, named in its log line and in an error body (the harness's or the app's).

use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{HeaderName, HeaderValue, Request, Response, StatusCode, header};
use edgescore_contract::{ApiError, errors};
use http_body_util::{BodyExt, LengthLimitError, Limited};
use swagger_ui_dist::{ApiDefinition, OpenApiSource};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use crate::App;

/// No instance became free within the wait: the request was not started.
#[derive(Debug, thiserror::Error)]
#[error("no app instance became free within {0:?}")]
pub struct Busy(pub std::time::Duration);

impl App {
    /// Every path goes to the app, as Spin's `route = "/..."`, but `/docs`: Swagger UI over the
    /// app's `/openapi.json`, from the binary.
    pub fn router(self: &Arc<Self>) -> axum::Router {
        let app = self.clone();
        let header = HeaderName::from_static(errors::REQUEST_ID_HEADER);
        let docs = swagger_ui_dist::generate_routes(ApiDefinition {
            uri_prefix: "/docs",
            api_definition: OpenApiSource::Uri("/openapi.json"),
            title: Some("edgescore API (Spin app)"),
        });
        docs.fallback(move |request: Request<Body>| {
            let app = app.clone();
            async move { app.answer(request).await }
        })
        .layer(PropagateRequestIdLayer::new(header.clone()))
        .layer(SetRequestIdLayer::new(header, MakeRequestUuid))
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn serve(
        self: &Arc<Self>,
        listener: tokio::net::TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
    }

    /// One request, and its log line.
    async fn answer(&self, request: Request<Body>) -> Response<Body> {
        let started = Instant::now();
        let method = request.method().clone();
        let path = request.uri().path().to_string();
        let id = errors::request_id(
            request
                .headers()
                .get(errors::REQUEST_ID_HEADER)
                .map(|v| v.as_bytes()),
        );
        let response = match self.respond(request).await {
            Ok(response) => response,
            Err(e) => error(e.with_request_id(id.as_deref())),
        };
        tracing::info!(
            target: "edgescore::http",
            method = %method,
            path,
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_secs_f64() * 1e3,
            request_id = id.as_deref().unwrap_or(""),
            "request"
        );
        response
    }

    /// The app's answer, or the harness's own error (too large, no free instance, a failed app).
    async fn respond(&self, request: Request<Body>) -> Result<Response<Body>, ApiError> {
        let (parts, body) = request.into_parts();
        let limit = self.config.max_body_bytes;
        let body = match Limited::new(body, limit).collect().await {
            Ok(body) => body.to_bytes(),
            Err(e) if e.downcast_ref::<LengthLimitError>().is_some() => {
                return Err(errors::body_too_large(limit));
            }
            Err(e) => return Err(errors::body_unreadable(e)),
        };
        match self.handle(Request::from_parts(parts, body)).await {
            Ok(response) => Ok(response.map(Body::from)),
            Err(e) if e.downcast_ref::<Busy>().is_some() => Err(ApiError::unavailable(
                format!("app: {e}; nothing of this request was done, retry after 1 s"),
                1,
            )),
            Err(e) => {
                tracing::error!(error = format!("{e:#}"), "the app failed");
                Err(ApiError::internal(format!("app: {e:#}")))
            }
        }
    }
}

/// An error answer in the contract's shape.
fn error(e: ApiError) -> Response<Body> {
    let mut response = Response::new(Body::from(
        serde_json::to_vec(&e.body).expect("an error body serializes"),
    ));
    *response.status_mut() =
        StatusCode::from_u16(e.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(seconds) = e.retry_after {
        headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
