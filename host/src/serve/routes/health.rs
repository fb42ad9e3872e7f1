//! `GET /health` (the process is up) and `GET /ready` (every shard can score).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use edgescore_core::api::StatusBody;

use crate::serve::Service;

pub async fn health() -> Response {
    Json(StatusBody {
        status: "ok",
        reason: None,
    })
    .into_response()
}

pub async fn ready(State(service): State<Arc<Service>>) -> Response {
    match service.shards.iter().find(|s| !s.healthy()) {
        None => Json(StatusBody {
            status: "ok",
            reason: None,
        })
        .into_response(),
        Some(shard) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody {
                status: "unavailable",
                reason: Some(format!(
                    "shard {}: the scoring component could not be rebuilt",
                    shard.index
                )),
            }),
        )
            .into_response(),
    }
}
