//! `GET /models` (the versions served, which one is active, what the registry skipped),
//! `POST /models/reload` (rescan and swap, see `serve::reload`) and `GET /drift` (the active
//! model's feature drift).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::error;
use crate::serve::Service;
use crate::serve::models::ModelEntry;

#[derive(Serialize)]
struct ModelsBody {
    models: Vec<ModelEntry>,
    /// Registry entries reported and never served (bad sha256, unreadable manifest ...).
    skipped: Vec<String>,
}

pub async fn models(State(service): State<Arc<Service>>) -> Response {
    let catalog = service.catalog().await;
    Json(ModelsBody {
        models: catalog.entries(),
        skipped: catalog.models.skipped.clone(),
    })
    .into_response()
}

/// `POST /models/reload`: 200 with what is served now; 409 when the registry has nothing
/// servable (the service keeps its models); 500 when a shard could not switch.
pub async fn reload(State(service): State<Arc<Service>>) -> Response {
    match service.reload().await {
        Ok(outcome) => Json(outcome).into_response(),
        Err(e) => error(
            StatusCode::from_u16(e.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            e.to_string(),
        ),
    }
}

/// `GET /drift`: the active model's rolling feature means against its baseline.
pub async fn drift(State(service): State<Arc<Service>>) -> Response {
    match service.counters.drift.lock() {
        Ok(drift) if drift.width() > 0 => Json(drift.report()).into_response(),
        Ok(_) => error(
            StatusCode::NOT_FOUND,
            "drift: the active model has no baseline (a bare ONNX file without a manifest)",
        ),
        Err(_) => error(StatusCode::INTERNAL_SERVER_ERROR, "drift: unavailable"),
    }
}
