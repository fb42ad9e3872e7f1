//! `GET /openapi.json`, this service's OpenAPI document: the contract's shared routes and this
//! service's own, from their handlers; and `GET /docs`, Swagger UI over it, served from the
//! binary (no CDN).

use std::sync::Arc;

use axum::extract::State;
use axum::response::IntoResponse;
use axum::{Json, Router};
use edgescore_contract::openapi::{HostFacts, ModelInput, ServedModels};
use swagger_ui_dist::{ApiDefinition, OpenApiSource};
use utoipa::OpenApi;

use super::{batch, dashboard, models, stats};
use crate::Service;

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

/// The document of this service as it is now: its limits, its token, and the input of the
/// models it serves (which a reload may change).
pub async fn openapi(State(service): State<Arc<Service>>) -> impl IntoResponse {
    let catalog = service.catalog().await;
    let facts = HostFacts {
        max_events: service.config.max_events,
        input: ModelInput::common(catalog.predictors.iter().map(|p| &p.model.feature_names)),
        token_required: service.config.api_token.is_some(),
        served: Some(ServedModels {
            name: catalog.active().name.clone(),
            versions: catalog
                .predictors
                .iter()
                .map(|p| p.model.version_label())
                .collect(),
        }),
        body_timeout: true,
    };
    Json(edgescore_contract::openapi::document(
        Own::openapi(),
        &facts,
    ))
}

/// Swagger UI at `/docs`, reading `/openapi.json`.
pub fn docs() -> Router {
    swagger_ui_dist::generate_routes(ApiDefinition {
        uri_prefix: "/docs",
        api_definition: OpenApiSource::Uri("/openapi.json"),
        title: Some("edgescore API"),
    })
}
