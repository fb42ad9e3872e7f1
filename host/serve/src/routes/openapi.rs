//! `GET /openapi.json`, this service's OpenAPI document: the contract's shared routes and this
//! service's own, from their handlers; and `GET /docs`, Swagger UI over it, served from the
//! binary (no CDN).

use std::sync::LazyLock;

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use swagger_ui_dist::{ApiDefinition, OpenApiSource};
use utoipa::OpenApi;

use super::{batch, dashboard, models, stats};

/// The routes only the native service serves.
#[derive(OpenApi)]
#[openapi(paths(
    stats::stats,
    stats::metrics,
    batch::submit_batch,
    batch::batch_status,
    models::reload,
    models::drift,
    dashboard::dashboard
))]
struct Own;

/// The document, built once.
static DOCUMENT: LazyLock<String> = LazyLock::new(|| {
    edgescore_contract::openapi::document(Own::openapi())
        .to_json()
        .expect("the OpenAPI document serializes")
});

/// The document as a value (for tests and tools).
pub fn document() -> &'static str {
    &DOCUMENT
}

pub async fn openapi() -> impl IntoResponse {
    ([(header::CONTENT_TYPE, "application/json")], document())
}

/// Swagger UI at `/docs`, reading `/openapi.json`.
pub fn docs() -> Router {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: "/docs",
        api_definition: OpenApiSource::Uri("/openapi.json"),
        title: Some("edgescore API"),
    })
}
