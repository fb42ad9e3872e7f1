//! `POST /predict`: scores only, windows untouched; `?version=` picks a served version. The
//! instance parsing and version choice are shared with `POST /batch`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use axum::Json;
use axum::extract::{Query, State};
use edgescore_contract::ApiError;
use edgescore_contract::predict::{Features, PredictResponse, check_predictions, parse_predict};

use crate::Service;
use crate::catalog::Catalog;
use crate::error::Result;
use crate::models::Predictor;
use crate::telemetry::Counters;

/// The version asked for (`?version=`, else the active one) and the body's instances as rows.
pub(super) async fn instances(
    service: &Service,
    catalog: &Catalog,
    query: &HashMap<String, String>,
    body: axum::body::Body,
) -> std::result::Result<(Arc<Predictor>, Vec<f32>), ApiError> {
    let body = super::read_body(service, body).await?;
    let predictor = catalog
        .predictor(query.get("version").map(String::as_str))?
        .clone();
    let features = Features {
        names: &predictor.model.feature_names,
        width: predictor.info.input_width as usize,
    };
    let rows = parse_predict(&body, &features, service.config.max_events)?;
    Ok((predictor, rows))
}

/// One score per row of `rows`, by `predictor` off the async threads (the component call is
/// timed as `predict`); checked to be finite.
pub(super) async fn score(
    service: &Arc<Service>,
    predictor: Arc<Predictor>,
    rows: Vec<f32>,
) -> std::result::Result<Vec<f32>, ApiError> {
    let timing = service.clone();
    let scores = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let scores = predictor.score(&rows);
        timing
            .counters
            .metrics
            .record_component_call("predict", started.elapsed());
        scores
    })
    .await
    .map_err(|_| ApiError::internal("predict: the scoring task failed"))?
    .map_err(|e| {
        Counters::count(&service.counters.failed, 1);
        ApiError::internal(format!("scoring failed: {e}"))
    })?;
    check_predictions(&scores)?;
    Ok(scores)
}

pub async fn predict(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> Result<Json<PredictResponse>> {
    let started = Instant::now();
    let catalog = service.catalog().await;
    let (predictor, rows) = instances(&service, &catalog, &query, body).await?;
    if Arc::ptr_eq(&predictor, catalog.active_predictor()) {
        service.counters.observe_features(&rows);
    }
    let scores = score(&service, predictor.clone(), rows).await?;
    Ok(Json(PredictResponse {
        predictions: scores.into_iter().map(f64::from).collect(),
        model_version: predictor.model.version_label(),
        latency_ms: started.elapsed().as_secs_f64() * 1e3,
    }))
}
