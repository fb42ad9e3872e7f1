//! Answers: JSON bodies with a status; an [`ApiError`] as its status, `Retry-After` and body.

use edgescore_contract::ApiError;
use edgescore_contract::errors::ErrorHeader;
use edgescore_contract::responses::StatusBody;
use serde::Serialize;
use spin_sdk::http::{FullBody, HeaderMap, HeaderValue, StatusCode};

/// A status, headers and a JSON body serialized in the order of its type's fields (the
/// contract's order, as the native service answers).
pub type Answer = (StatusCode, HeaderMap, FullBody<bytes::Bytes>);

/// What a handler gives: an answer, or the error to answer with.
pub type Result<T = Answer> = std::result::Result<T, ApiError>;

pub fn json(status: u16, body: &impl Serialize) -> Answer {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut headers = HeaderMap::new();
            headers.insert("content-type", HeaderValue::from_static("application/json"));
            (status, headers, FullBody::new(bytes.into()))
        }
        Err(e) => error(ApiError::internal(format!(
            "response: could not be encoded: {e}"
        ))),
    }
}

pub fn error(e: ApiError) -> Answer {
    let mut answer = json(e.status, &e.body);
    if let Some(seconds) = e.retry_after {
        answer.1.insert("retry-after", HeaderValue::from(seconds));
    }
    if let Some((name, value)) = e.header.map(ErrorHeader::pair) {
        answer.1.insert(name, HeaderValue::from_static(value));
    }
    answer
}

pub fn ok() -> Answer {
    json(200, &StatusBody::OK)
}

/// The answer with the `edgescore-store-calls` header: the key-value store calls made since the
/// count was `calls_before` (`state::kv`), which benchmarks add up per event.
pub fn with_store_calls(mut answer: Answer, calls_before: u64) -> Answer {
    let calls = crate::state::kv::taken() - calls_before;
    answer.1.insert("edgescore-store-calls", calls.into());
    answer
}
