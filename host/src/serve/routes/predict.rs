//! `POST /predict` (scores only, windows untouched; `?version=` picks a served version) and
//! `GET /models` (the versions served, which one is active, what the registry skipped), and
//! `GET /drift` (the active model's feature drift).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgescore_core::api::{self, Features, PredictResponse};
use serde::Serialize;

use super::{body_error, error};
use crate::serve::Service;
use crate::serve::models::{ModelEntry, Predictor};
use crate::serve::stats::Counters;

/// The predictor a request asked for: `?version=N`, or the active version.
fn choose(service: &Service, query: &HashMap<String, String>) -> Result<Arc<Predictor>, String> {
    let Some(asked) = query.get("version") else {
        return Ok(service.predictors[service.models.active].clone());
    };
    let found = service.predictors.iter().find(|p| {
        p.model.version_label() == *asked
            || p.model.version.is_some_and(|v| format!("v{v}") == *asked)
    });
    found.cloned().ok_or_else(|| {
        let known: Vec<String> = service
            .predictors
            .iter()
            .map(|p| p.model.version_label())
            .collect();
        format!(
            "version: {} has no version {asked:?} (served: {})",
            service.model.name,
            known.join(", ")
        )
    })
}

pub async fn predict(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_error(rejection, service.config.max_body_bytes),
    };
    let predictor = match choose(&service, &query) {
        Ok(p) => p,
        Err(message) => return error(StatusCode::NOT_FOUND, message),
    };
    let features = Features {
        names: &predictor.model.feature_names,
        width: predictor.info.input_width as usize,
    };
    let rows = match api::parse_predict(&body, &features, service.config.max_events) {
        Ok(rows) => rows,
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            return error(status, e.to_string());
        }
    };
    if Arc::ptr_eq(&predictor, &service.predictors[service.models.active]) {
        service.counters.observe_features(&rows);
    }
    let scoring = predictor.clone();
    let timing = service.clone();
    let scored = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let scores = scoring.score(&rows);
        timing
            .counters
            .metrics
            .record_component_call("predict", started.elapsed());
        scores
    })
    .await;
    match scored {
        Ok(Ok(scores)) => Json(PredictResponse {
            predictions: scores.into_iter().map(f64::from).collect(),
            model_version: predictor.model.version_label(),
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        })
        .into_response(),
        Ok(Err(e)) => {
            Counters::count(&service.counters.failed, 1);
            error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("scoring failed: {e}"),
            )
        }
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "predict: the scoring task failed",
        ),
    }
}

#[derive(Serialize)]
struct ModelsBody {
    models: Vec<ModelEntry>,
    /// Registry entries reported and never served (bad sha256, unreadable manifest ...).
    skipped: Vec<String>,
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
