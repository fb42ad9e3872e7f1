//! The benchmark's yardstick: a bare axum + serde_json server that only parses an ingest batch
//! and answers how many events it held. `cargo xtask bench-http` loads it and `edgescore serve`
//! with the same client in the same run; what we reach is reported as a fraction of this.
//!
//! Usage: `bare_ingest <port>`.

#[path = "shared/batch.rs"]
mod batch;

use axum::routing::{get, post};
use axum::{Json, Router};
use batch::Batch;

async fn ingest(Json(batch): Json<Batch>) -> Json<serde_json::Value> {
    Json(serde_json::json!({"processed": batch.events.len(), "rejected": []}))
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8001);
    let app = Router::new()
        .route("/ingest", post(ingest))
        .route("/health", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("port free");
    axum::serve(listener, app).await.expect("serving");
}
