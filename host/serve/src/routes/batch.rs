//! Batch jobs: `POST /batch` (202 + job id, 429 when the queue is full) and `GET /batch/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use edgescore_contract::ApiError;

use super::predict::instances;
use crate::Service;
use crate::error::Result;
use crate::jobs::{JobView, SubmitError};

/// `POST /batch`: the same body as `/predict`; 202 with a job id, 429 when the queue is full.
pub async fn submit_batch(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let catalog = service.catalog().await;
    let (predictor, rows) = instances(&service, &catalog, &query, body).await?;
    let jobs = service.jobs.clone();
    // Off the async workers: with a data directory the job is written and synced first.
    let submitted = tokio::task::spawn_blocking(move || jobs.submit(rows, predictor))
        .await
        .map_err(|e| ApiError::internal(format!("batch: the submit task failed: {e}")))?;
    match submitted {
        Ok(job_id) => Ok((
            StatusCode::ACCEPTED,
            Json(serde_json::json!({"job_id": job_id})),
        )),
        Err(SubmitError::QueueFull) => Err(ApiError::too_many(
            "batch: the job queue is full; nothing was queued, retry after 1 s",
            1,
        )
        .into()),
        Err(SubmitError::Storage(e)) => Err(ApiError::unavailable(
            format!(
                "batch: keeping the job on disk failed ({e}); nothing was queued, retry after 1 s"
            ),
            1,
        )
        .into()),
    }
}

/// `GET /batch/{job_id}`: status, progress and, when done, the predictions.
pub async fn batch_status(
    State(service): State<Arc<Service>>,
    Path(job_id): Path<String>,
) -> Result<Json<JobView>> {
    let view = service.jobs.get(&job_id).ok_or_else(|| {
        ApiError::not_found(format!(
            "job_id: no job {job_id:?} (unknown, or finished and forgotten)"
        ))
    })?;
    Ok(Json(view))
}
