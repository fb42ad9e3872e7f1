//! `GET /dashboard`: one HTML page, embedded in the binary, that polls `/stats`, `/metrics` and
//! `/drift` once a second and draws throughput, per-second p50/p99 (from the latency
//! histogram's buckets), rejections, drift, shards and the model, with a median lookup. No
//! internet: no CDN, no external script or font.

use axum::response::Html;

const PAGE: &str = include_str!("../../assets/dashboard.html");

/// A live view of the service
#[utoipa::path(get, path = "/dashboard", tag = "service",
    responses((status = 200, description = "The dashboard page (HTML)", body = String, content_type = "text/html")))]
pub async fn dashboard() -> Html<&'static str> {
    Html(PAGE)
}
