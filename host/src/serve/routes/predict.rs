//! `POST /predict`: scores only, windows untouched; `?version=` picks a served version. The
//! instance parsing and version choice are shared with `POST /batch`.

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

use super::{body_error, error};
use crate::serve::Service;
use crate::serve::catalog::Catalog;
use crate::serve::models::Predictor;
use crate::serve::stats::Counters;

/// The predictor a request asked for: `?version=N`, or the active version.
fn choose(catalog: &Catalog, query: &HashMap<String, String>) -> Result<Arc<Predictor>, String> {
    let Some(asked) = query.get("version") else {
        return Ok(catalog.active_predictor().clone());
    };
    let found = catalog.predictors.iter().find(|p| {
        p.model.version_label() == *asked
            || p.model.version.is_some_and(|v| format!("v{v}") == *asked)
    });
    found.cloned().ok_or_else(|| {
        let known: Vec<String> = catalog
            .predictors
            .iter()
            .map(|p| p.model.version_label())
            .collect();
        format!(
            "version: {} has no version {asked:?} (served: {})",
            catalog.label.name,
            known.join(", ")
        )
    })
}

/// The version asked for and its parsed instances, or the error answer.
pub(super) fn instances(
    service: &Service,
    catalog: &Catalog,
    query: &HashMap<String, String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<(Arc<Predictor>, Vec<f32>), Box<Response>> {
    let body = body.map_err(|r| Box::new(body_error(r, service.config.max_body_bytes)))?;
    let predictor =
        choose(catalog, query).map_err(|m| Box::new(error(StatusCode::NOT_FOUND, m)))?;
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
    let catalog = service.catalog().await;
    let (predictor, rows) = match instances(&service, &catalog, &query, body) {
        Ok(parsed) => parsed,
        Err(response) => return *response,
    };
    if Arc::ptr_eq(&predictor, catalog.active_predictor()) {
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
