//! Every error a host answers with: [`ApiError`] knows its status, its JSON body and whether the
//! client should retry (`Retry-After`), so each host turns it into a response in one place and
//! handlers use `?`. The sentences shared by both hosts are defined here, once.

use serde::Serialize;
use utoipa::ToSchema;

use edgescore_types::{MAX_USER_ID_BYTES, ScoreError};

/// Every error body: one sentence naming the field and the problem, and for an ingest that was
/// partly recorded, what was and what was not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    pub error: String,
    /// The request's `x-request-id` (taken from the request, or made by the host), so that a
    /// client's report can be matched with the host's log line.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub partial: Option<PartialIngest>,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
            request_id: None,
            partial: None,
        }
    }
}

/// [`ErrorBody`] as the OpenAPI document gives it: one object, the partial ingest's fields in it
/// (a derived schema of the flattened `Option` would be an `allOf` no body matches).
#[derive(ToSchema)]
#[schema(as = ErrorBody)]
#[allow(dead_code)] // Only its schema is used.
struct ErrorBodySchema {
    /// One sentence naming the field and the problem.
    error: String,
    /// The request's `x-request-id` (taken from the request, or made by the host), so that a
    /// client's report can be matched with the host's log line.
    #[schema(nullable = false)]
    request_id: Option<String>,
    /// A failed ingest: events of the request that were recorded all the same.
    #[schema(nullable = false)]
    processed: Option<u32>,
    /// A failed ingest: positions (in `events`) of the accepted events that were not recorded.
    #[schema(nullable = false)]
    not_recorded: Option<Vec<u32>>,
}

impl utoipa::PartialSchema for ErrorBody {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        ErrorBodySchema::schema()
    }
}

impl ToSchema for ErrorBody {}

/// What a failed ingest recorded all the same (its other parts), and what it did not.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PartialIngest {
    /// Events of the request that were recorded.
    pub processed: u32,
    /// Positions (in `events`) of the accepted events that were not recorded.
    pub not_recorded: Vec<u32>,
}

/// An error answer: status, body and, for a 503 or 429, seconds to wait before retrying; for a
/// 401, the `WWW-Authenticate` challenge; for a 405, the methods the path allows.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{} {}", self.status, self.body.error)]
pub struct ApiError {
    pub status: u16,
    pub body: ErrorBody,
    pub retry_after: Option<u32>,
    pub header: Option<ErrorHeader>,
}

/// The one header an error answer carries beside its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorHeader {
    /// `WWW-Authenticate` of a 401: the challenge.
    WwwAuthenticate(&'static str),
    /// `Allow` of a 405: the methods the path answers.
    Allow(&'static str),
}

impl ErrorHeader {
    /// (name, value), the name in lower case.
    pub fn pair(self) -> (&'static str, &'static str) {
        match self {
            ErrorHeader::WwwAuthenticate(value) => ("www-authenticate", value),
            ErrorHeader::Allow(value) => ("allow", value),
        }
    }
}

impl ApiError {
    pub fn new(status: u16, message: impl Into<String>) -> Self {
        ApiError {
            status,
            body: ErrorBody::new(message),
            retry_after: None,
            header: None,
        }
    }

    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(400, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(404, message)
    }

    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(409, message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(500, message)
    }

    /// 503: nothing of the request was done; retry after `seconds`.
    pub fn unavailable(message: impl Into<String>, seconds: u32) -> Self {
        Self::new(503, message).retry_after(seconds)
    }

    /// 429: too many requests of this kind waiting; retry after `seconds`.
    pub fn too_many(message: impl Into<String>, seconds: u32) -> Self {
        Self::new(429, message).retry_after(seconds)
    }

    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// The message alone (the sentence of the body).
    pub fn message(&self) -> &str {
        &self.body.error
    }
}

/// The header a request's id travels in, both ways.
pub const REQUEST_ID_HEADER: &str = "x-request-id";

/// A request's id from the value of its `x-request-id` header, when that is text.
pub fn request_id(header: Option<&[u8]>) -> Option<String> {
    header
        .and_then(|v| std::str::from_utf8(v).ok())
        .map(str::to_string)
}

impl ApiError {
    /// The error with the request's id in its body (when the request has one).
    pub fn with_request_id(mut self, request_id: Option<&str>) -> Self {
        self.body.request_id = request_id.map(str::to_string);
        self
    }
}

/// 404 for a path no route serves.
pub fn no_route(method: &str, path: &str) -> ApiError {
    ApiError::not_found(format!("path: no route for {method} {path}"))
}

/// 405 for a known path and another method.
pub fn method_not_allowed(method: &str, path: &str) -> ApiError {
    ApiError::new(405, format!("method: {method} is not allowed on {path}"))
}

/// [`method_not_allowed`] with the `Allow` header's value: the methods `path` answers.
pub fn method_not_allowed_with(method: &str, path: &str, allow: &'static str) -> ApiError {
    ApiError {
        header: Some(ErrorHeader::Allow(allow)),
        ..method_not_allowed(method, path)
    }
}

/// 413 for a body over the limit.
pub fn body_too_large(limit: usize) -> ApiError {
    ApiError::new(413, format!("body: larger than the limit of {limit} bytes"))
}

/// 400 for a body that could not be read off the connection.
pub fn body_unreadable(why: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("body: could not be read: {why}"))
}

/// 500 for a batch the model could not score (the same sentence on every host).
pub fn scoring_failed(e: &ScoreError) -> ApiError {
    ApiError::internal(format!("scoring failed: {e}"))
}

/// A user id in a path: 1 to 256 bytes (the rule events are judged by); else 400.
pub fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(ApiError::bad_request(format!(
            "user_id: must be 1 to {MAX_USER_ID_BYTES} bytes, got {}",
            user_id.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_partial_ingest_lists_what_was_not_recorded_after_the_sentence() {
        let mut e = ApiError::internal("scoring failed");
        e.body.partial = Some(PartialIngest {
            processed: 2,
            not_recorded: vec![0, 3],
        });
        assert_eq!(
            serde_json::to_string(&e.body).unwrap(),
            r#"{"error":"scoring failed","processed":2,"not_recorded":[0,3]}"#
        );
        assert_eq!(
            serde_json::to_string(&ErrorBody::new("x")).unwrap(),
            r#"{"error":"x"}"#
        );
        assert_eq!(ApiError::unavailable("busy", 1).retry_after, Some(1));
        let mut named = ErrorBody::new("x");
        named.request_id = Some("r-1".into());
        assert_eq!(
            serde_json::to_string(&named).unwrap(),
            r#"{"error":"x","request_id":"r-1"}"#
        );
    }
}
