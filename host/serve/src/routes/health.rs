//! `GET /health` (the process is up) and `GET /ready` (every shard can score).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use edgescore_contract::responses::StatusBody;

use crate::Service;

pub async fn health() -> Json<StatusBody> {
    Json(StatusBody::OK)
}

pub async fn ready(State(service): State<Arc<Service>>) -> (StatusCode, Json<StatusBody>) {
    let storage = service.clone();
    let failing = tokio::task::spawn_blocking(move || storage.storage_failing())
        .await
        .unwrap_or(true);
    if failing {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody::unavailable(
                "the data directory cannot be written (a full disk or an I/O error): ingest \
                 answers 503 until writes succeed again"
                    .to_string(),
            )),
        );
    }
    match service.shards().iter().find(|s| !s.healthy()) {
        None => (StatusCode::OK, Json(StatusBody::OK)),
        Some(shard) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(StatusBody::unavailable(format!(
                "shard {}: the scoring component could not be rebuilt",
                shard.index
            ))),
        ),
    }
}
