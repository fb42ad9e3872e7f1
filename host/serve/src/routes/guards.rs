//! What surrounds a route's handlers, outermost first: the bearer token when the service has one
//! (401), a JSON body for the routes that take one (415), a place among the requests in flight
//! (503 + `Retry-After` when all are taken), and the whole-request timeout (503). All tower
//! layers; the checks are tower-http request validators.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::error_handling::HandleErrorLayer;
use axum::http::{Request, Response, header};
use axum::response::IntoResponse;
use axum::routing::MethodRouter;
use edgescore_contract::ApiError;
use edgescore_contract::access::{ApiToken, check_json_body, is_public};
use tokio::sync::Semaphore;
use tower::ServiceBuilder;
use tower_http::validate_request::{ValidateRequest, ValidateRequestHeaderLayer};

use crate::error::Error;
use crate::{Service, ServiceConfig};

/// The guards every route shares.
pub struct Guards {
    token: Option<ApiToken>,
    /// One permit per request that may be handled at once (the probes take none).
    in_flight: Arc<Semaphore>,
    request_timeout: Duration,
}

impl Guards {
    pub fn new(config: &ServiceConfig) -> Guards {
        Guards {
            token: config.api_token.as_deref().map(ApiToken::new),
            in_flight: Arc::new(Semaphore::new(config.limits.max_in_flight.max(1))),
            request_timeout: config.limits.request,
        }
    }

    /// `handlers` of the route at `path` behind its guards.
    pub fn around(
        &self,
        path: &str,
        mut handlers: MethodRouter<Arc<Service>>,
        json_body: bool,
    ) -> MethodRouter<Arc<Service>> {
        let public = is_public(path);
        // An ingest's answer waits for the shards, each call under its own deadline: cutting it
        // short would answer 503 for events that are being recorded.
        if path != "/ingest" && !public {
            let timeout = self.request_timeout;
            handlers = handlers.route_layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(move |_| async move {
                        Error(ApiError::unavailable(
                            format!(
                                "request: not answered within {} s, retry after 1 s",
                                timeout.as_secs_f64()
                            ),
                            1,
                        ))
                    }))
                    .timeout(timeout),
            );
        }
        if !public {
            let max = self.in_flight.available_permits();
            handlers = handlers.route_layer(
                ServiceBuilder::new()
                    .layer(HandleErrorLayer::new(move |_| async move {
                        Error(ApiError::unavailable(
                            format!(
                                "overloaded: {max} requests are being handled; nothing of this \
                                 request was done, retry after 1 s"
                            ),
                            1,
                        ))
                    }))
                    .load_shed()
                    .layer(tower::limit::GlobalConcurrencyLimitLayer::with_semaphore(
                        self.in_flight.clone(),
                    )),
            );
        }
        if json_body {
            handlers = handlers.route_layer(ValidateRequestHeaderLayer::custom(JsonBody));
        }
        if let Some(token) = &self.token
            && !public
        {
            let check = BearerToken(token.clone());
            handlers = handlers.route_layer(ValidateRequestHeaderLayer::custom(check));
        }
        handlers
    }
}

/// 415 for a body that is not JSON, before any of it is read.
#[derive(Clone, Copy)]
struct JsonBody;

impl<B> ValidateRequest<B> for JsonBody {
    type ResponseBody = Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let content_type = request.headers().get(header::CONTENT_TYPE);
        check_json_body(content_type.map(|v| v.as_bytes())).map_err(|e| Error(e).into_response())
    }
}

/// 401 unless `Authorization: Bearer <token>`.
#[derive(Clone)]
struct BearerToken(ApiToken);

impl<B> ValidateRequest<B> for BearerToken {
    type ResponseBody = Body;

    fn validate(&mut self, request: &mut Request<B>) -> Result<(), Response<Body>> {
        let authorization = request.headers().get(header::AUTHORIZATION);
        self.0
            .check(authorization.map(|v| v.as_bytes()))
            .map_err(|e| Error(e).into_response())
    }
}
