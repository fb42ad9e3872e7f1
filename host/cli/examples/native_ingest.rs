//! The benchmark's second yardstick: what a plain native service does with the same model. axum +
//! serde_json, the registry's default model run by tract in-process (one model call per request),
//! and every user's window in one map under one lock; no checks beyond the feature count, no
//! sandbox, no durability, no logs. `cargo xtask bench-http` loads it beside the bare parser and
//! `edgescore serve`, so that the sandbox's end-to-end cost is a ratio measured in one run.
//!
//! Usage: `native_ingest <port>`.

#[path = "shared/batch.rs"]
mod batch;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use axum::{Json, Router};
use batch::Batch;
use edgescore_engine::Model;
use edgescore_engine::window::Windows;
use serde_json::{Value, json};

struct Service {
    model: Model,
    windows: Mutex<Windows>,
}

async fn ingest(
    State(service): State<Arc<Service>>,
    Json(batch): Json<Batch>,
) -> Result<Json<Value>, (StatusCode, Json<Value>)> {
    let width = service.model.input_width();
    let mut rows = Vec::with_capacity(batch.events.len() * width);
    for (i, event) in batch.events.iter().enumerate() {
        if event.features.len() != width {
            let error = format!("events[{i}].features: expected {width} values");
            return Err((
                StatusCode::UNPROCESSABLE_ENTITY,
                Json(json!({ "error": error })),
            ));
        }
        rows.extend(event.features.iter().map(|&v| v as f32));
    }
    if batch.events.is_empty() {
        return Ok(Json(json!({"processed": 0, "rejected": []})));
    }
    let scores = service.model.score(&rows).map_err(|e| {
        let error = e.to_string();
        (
            StatusCode::UNPROCESSABLE_ENTITY,
            Json(json!({ "error": error })),
        )
    })?;
    let mut windows = service.windows.lock().unwrap();
    for (event, score) in batch.events.iter().zip(scores) {
        windows.advance(event.timestamp);
        windows.insert(&event.user_id, event.timestamp, score);
    }
    windows.expire();
    Ok(Json(
        json!({"processed": batch.events.len(), "rejected": []}),
    ))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8001);
    let registry = edgescore_registry::Registry::embedded();
    let default = registry
        .select(None, None)
        .expect("the embedded default model");
    let service = Arc::new(Service {
        model: Model::load(&default.onnx).expect("the default model loads"),
        windows: Mutex::new(Windows::new(300.0)),
    });
    let app = Router::new()
        .route("/ingest", post(ingest))
        .route("/health", get(|| async { "ok" }))
        .with_state(service);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("port free");
    axum::serve(listener, app).await.expect("serving");
}
