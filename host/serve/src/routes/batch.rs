//! Batch jobs: `POST /batch` (202 + job id, 429 when the queue is full) and `GET /batch/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use edgescore_contract::{ApiError, ErrorBody};
use serde::Serialize;
use utoipa::ToSchema;

use super::predict::instances;
use crate::Service;
use crate::error::Result;
use crate::jobs::{JobView, SubmitError};

/// A batch job's id.
#[derive(Serialize, ToSchema)]
pub struct JobSubmitted {
    pub job_id: String,
}

/// Queue a batch of instances to score
///
/// `POST /batch`: the same body as `/predict`; 202 with a job id, 429 when the queue is full.
#[utoipa::path(post, path = "/batch", tag = "predictions",
    params(("version" = Option<String>, Query, description = "A served model version; the active one by default")),
    request_body = edgescore_contract::openapi::PredictRequest,
    responses(
        (status = 202, description = "Queued", body = JobSubmitted),
        (status = 400, description = "The body is not JSON", body = ErrorBody),
        (status = 404, description = "No such model version", body = ErrorBody),
        (status = 413, description = "The body or the instances are over their limit", body = ErrorBody),
        (status = 415, description = "The content type is not JSON", body = ErrorBody),
        (status = 422, description = "An instance is not valid", body = ErrorBody),
        (status = 429, description = "The job queue is full; retry after `Retry-After` seconds", body = ErrorBody),
        (status = 503, description = "The job could not be kept on disk; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub async fn submit_batch(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: axum::body::Body,
) -> Result<(StatusCode, Json<JobSubmitted>)> {
    let catalog = service.catalog().await;
    let (predictor, rows) = instances(&service, &catalog, &query, body).await?;
    let jobs = service.jobs.clone();
    // Off the async workers: with a data directory the job is written and synced first.
    let submitted = tokio::task::spawn_blocking(move || jobs.submit(rows, predictor))
        .await
        .map_err(|e| ApiError::internal(format!("batch: the submit task failed: {e}")))?;
    match submitted {
        Ok(job_id) => Ok((StatusCode::ACCEPTED, Json(JobSubmitted { job_id }))),
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

/// A batch job's status, progress and, when done, its predictions
#[utoipa::path(get, path = "/batch/{job_id}", tag = "predictions",
    params(("job_id" = String, Path, description = "The id `POST /batch` answered")),
    responses(
        (status = 200, description = "The job", body = JobView),
        (status = 404, description = "Unknown, or finished and forgotten", body = ErrorBody),
    ))]
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
