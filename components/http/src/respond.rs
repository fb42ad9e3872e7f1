//! Answers: JSON bodies with a status, errors as `{"error": "<field>: <problem>"}`.

use edgescore_core::api::{ErrorBody, StatusBody};
use serde::Serialize;
use spin_sdk::http::{FullBody, HeaderMap, HeaderValue, StatusCode};

/// A status, headers and a JSON body serialized in the order of its type's fields (the
/// contract's order, as the native service answers).
pub type Answer = (StatusCode, HeaderMap, FullBody<bytes::Bytes>);

pub fn json(status: u16, body: &impl Serialize) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            (status, headers, FullBody::new(bytes.into()))
        }
        Err(e) => error(500, format!("response: could not be encoded: {e}")),
    }
}

pub fn error(status: u16, message: impl Into<String>) -> Answer {
    json(status, &ErrorBody::new(message))
}

pub fn ok() -> Answer {
    json(
        200,
        &StatusBody {
            status: "ok",
            reason: None,
        },
    )
}

/// The wall clock in Unix seconds (the host's `wasi:clocks`).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
