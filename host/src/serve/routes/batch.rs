//! Batch jobs: `POST /batch` (202 + job id, 429 when the queue is full) and `GET /batch/{id}`.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error;
use super::predict::instances;
use crate::serve::Service;
use crate::serve::jobs::SubmitError;

/// `POST /batch`: the same body as `/predict`; 202 with a job id, 429 when the queue is full.
pub async fn submit_batch(
    State(service): State<Arc<Service>>,
    Query(query): Query<HashMap<String, String>>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let catalog = service.catalog().await;
    let (predictor, rows) = match instances(&service, &catalog, &query, body) {
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
