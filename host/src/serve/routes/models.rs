//! `GET /models` (the versions served, which one is active, what the registry skipped) and
//! `GET /drift` (the active model's feature drift).

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
    let models = service
        .predictors
        .iter()
        .enumerate()
        .map(|(i, p)| ModelEntry {
            name: p.model.name.clone(),
            version: p.model.version,
            input_width: p.info.input_width,
            feature_names: p.model.feature_names.clone(),
            sha256: p.info.sha256.clone(),
            active: i == service.models.active,
        })
        .collect();
    Json(ModelsBody {
        models,
        skipped: service.models.skipped.clone(),
    })
    .into_response()
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
