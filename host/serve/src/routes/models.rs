//! `GET /models` (the versions served, which one is active, what the registry skipped),
//! `POST /models/reload` (rescan and swap, see `crate::reload`) and `GET /drift` (the active
//! model's feature drift).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use edgescore_contract::models::ModelsBody;
use edgescore_contract::{ApiError, ErrorBody};

use crate::drift::DriftReport;
use crate::error::Result;
use crate::{ReloadOutcome, Service};

pub async fn models(State(service): State<Arc<Service>>) -> Json<ModelsBody> {
    Json(service.catalog().await.body())
}

/// Rescan the registry and swap in its newest version
#[utoipa::path(post, path = "/models/reload", tag = "models",
    responses(
        (status = 200, description = "What is served now", body = ReloadOutcome),
        (status = 409, description = "Nothing servable in the registry; the service keeps its models", body = ErrorBody),
        (status = 500, description = "A shard could not switch", body = ErrorBody),
    ))]
/// `POST /models/reload`: 200 with what is served now; 409 when the registry has nothing
/// servable (the service keeps its models); 500 when a shard could not switch.
pub async fn reload(State(service): State<Arc<Service>>) -> Result<Json<ReloadOutcome>> {
    Ok(Json(service.reload().await?))
}

/// The active model's feature drift
#[utoipa::path(get, path = "/drift", tag = "models",
    responses(
        (status = 200, description = "Each feature's rolling mean against its baseline", body = DriftReport),
        (status = 404, description = "The active model has no baseline", body = ErrorBody),
    ))]
/// `GET /drift`: the active model's rolling feature means against its baseline.
pub async fn drift(State(service): State<Arc<Service>>) -> Result<Json<DriftReport>> {
    let drift = service
        .counters
        .drift
        .lock()
        .map_err(|_| ApiError::internal("drift: unavailable"))?;
    if drift.width() == 0 {
        return Err(ApiError::not_found(
            "drift: the active model has no baseline (a bare ONNX file without a manifest)",
        )
        .into());
    }
    Ok(Json(drift.report()))
}
