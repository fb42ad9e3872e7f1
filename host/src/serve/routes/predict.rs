//! `POST /predict` (scores only, windows untouched; `?version=` picks a served version), batch
//! jobs (`POST /batch`, `GET /batch/{job_id}`),
//! `GET /models` (the versions served, which one is active, what the registry skipped), and
//! `GET /drift` (the active model's feature drift).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use edgescore_core::api::{self, Features, PredictResponse};
use serde::Serialize;

use super::{body_error, error};
use crate::serve::Service;
use crate::serve::jobs::SubmitError;
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

/// The version asked for and its parsed instances, or the error answer.
fn instances(
    service: &Service,
    query: &HashMap<String, String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Arc<Predictor>, Vec<f32>), Box<Response>> {
    let body = body.map_err(|r| Box::new(body_error(r, service.config.max_body_bytes)))?;
    let predictor =
        choose(service, query).map_err(|m| Box::new(error(StatusCode::NOT_FOUND, m)))?;
    let features = Features {
        names: &predictor.model.feature_names,
        width: predictor.info.input_width as usize,
    };
    match api::parse_predict(&body, &features, service.config.max_events) {
        Ok(rows) => Ok((predictor, rows)),
        Err(e) => {
            let status = StatusCode::from_u16(e.status()).unwrap_or(StatusCode::BAD_REQUEST);
            Err(Box::new(error(status, e.to_string())))
        }
    }
}

pub async fn predict(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let started = Instant::now();
    let (predictor, rows) = match instances(&service, &query, body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
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

/// `POST /batch`: the same body as `/predict`; 202 with a job id, 429 when the queue is full.
pub async fn submit_batch(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let (predictor, rows) = match instances(&service, &query, body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    match service.jobs.submit(rows, predictor) {
        Ok(job_id) => (
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"job_id": job_id})),
        )
            .into_response(),
        Err(SubmitError::QueueFull) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "batch: the job queue is full; nothing was queued, retry after 1 s",
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            response
        }
    }
}

/// `GET /batch/{job_id}`: status, progress and, when done, the predictions.
pub async fn batch_status(
    State(service): State<Arc<Service>>,
    Path(job_id): Path<String>,
) -> Response {
    match service.jobs.get(&job_id) {
        Some(view) => Json(view).into_response(),
        None => error(
            StatusCode::NOT_FOUND,
            format!("job_id: no job {job_id:?} (unknown, or finished and forgotten)"),
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
