//! Request ids: `x-request-id` is taken from the request or made (a UUID v4) and echoed in the
//! response by tower-http's layers; this module makes the id of the request being served
//! reachable where its log line and its error body are written.

use axum::http::{HeaderMap, HeaderName};
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

use edgescore_contract::errors::REQUEST_ID_HEADER;

tokio::task_local! {
    /// The id of the request this task is serving.
    static CURRENT: Option<String>;
}

fn header() -> HeaderName {
    HeaderName::from_static(REQUEST_ID_HEADER)
}

/// Gives a request without an id a new one (outermost, so that everything inside sees it).
pub fn set() -> SetRequestIdLayer<MakeRequestUuid> {
    SetRequestIdLayer::new(header(), MakeRequestUuid)
}

/// Copies the request's id into its response.
pub fn propagate() -> PropagateRequestIdLayer {
    PropagateRequestIdLayer::new(header())
}

/// The id a request carries (set by [`layers`]), when it is text.
pub fn of(headers: &HeaderMap) -> Option<String> {
    edgescore_contract::errors::request_id(headers.get(REQUEST_ID_HEADER).map(|v| v.as_bytes()))
}

/// Runs `serve` with `id` as the current request's id.
pub async fn scope<F: Future>(id: Option<String>, serve: F) -> F::Output {
    CURRENT.scope(id, serve).await
}

/// The id of the request being served, if any.
pub fn current() -> Option<String> {
    CURRENT.try_with(Clone::clone).ok().flatten()
}
