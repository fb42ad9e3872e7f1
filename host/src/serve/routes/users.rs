//! `GET /users/{user_id}/median` (seed).

use std::sync::Arc;

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgescore_core::api::{self, MedianResponse};
use tokio::sync::oneshot;

use super::{error, overloaded, shard_failed};
use crate::serve::Service;
use crate::serve::shard::Command;
use crate::serve::stats::Counters;

pub async fn median(
    State(service): State<Arc<Service>>,
    user_id: Result<Path<String>, PathRejection>,
) -> Response {
    let user_id = match user_id {
        Ok(Path(id)) => id,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("user_id: {e}")),
    };
    if let Err(message) = api::check_user_id(&user_id) {
        return error(StatusCode::BAD_REQUEST, message);
    }
    Counters::count(&service.counters.median_requests, 1);
    let shard = service.shard_of(&user_id);
    let (reply, answer) = oneshot::channel();
    let command = Command::Median {
        user_id: user_id.clone(),
        reply,
    };
    if service.shards[shard].queue.try_send(command).is_err() {
        return overloaded(&service, shard);
    }
    match answer.await {
        Ok(Ok(m)) => Json(MedianResponse {
            user_id,
            median: m.median,
            count: m.count,
            window_seconds: m.window_seconds,
        })
        .into_response(),
        Ok(Err(e)) => shard_failed(&service, e),
        Err(_) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "service: shutting down".to_string(),
        ),
    }
}
