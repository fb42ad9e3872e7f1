//! `GET /users/{user_id}/median` (seed).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use edgescore_contract::responses::MedianResponse;
use edgescore_contract::{ApiError, errors};
use tokio::sync::oneshot;

use crate::Service;
use crate::error::Result;
use crate::shard::Command;
use crate::shard_set::overloaded;
use crate::telemetry::Counters;

pub async fn median(
    State(service): State<Arc<Service>>,
    user_id: std::result::Result<Path<String>, PathRejection>,
) -> Result<Json<MedianResponse>> {
    let Path(user_id) = user_id.map_err(|e| ApiError::bad_request(format!("user_id: {e}")))?;
    errors::check_user_id(&user_id)?;
    Counters::count(&service.counters.median_requests, 1);
    let shard = service.shard_of(&user_id);
    let (reply, answer) = oneshot::channel();
    let command = Command::Median {
        user_id: user_id.clone(),
        reply,
    };
    if service.shards.get(shard).queue.try_send(command).is_err() {
        return Err(overloaded(shard, &service.counters).into());
    }
    let median = answer
        .await
        // The shard dropped the request unanswered: its thread failed (and is being rebuilt) or
        // the service is stopping. Nothing was done; a retry may be answered.
        .map_err(|_| {
            ApiError::unavailable(format!("shard {shard}: stopped before answering; retry"), 1)
        })?
        .map_err(|e| {
            Counters::count(&service.counters.failed, 1);
            e.to_api_error()
        })?;
    Ok(Json(MedianResponse {
        user_id,
        median: median.median,
        count: median.count,
        window_seconds: median.window_seconds,
    }))
}
