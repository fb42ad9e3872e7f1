//! The HTTP contract of `shared/spec/http-api.md`, shared by every host that serves it (the native
//! service, the Spin app): request parsing with its limits, response bodies, error sentences.
//! One definition, so both hosts answer byte for byte alike.

mod errors;
mod ingest;
pub mod latency;
mod predict;
mod responses;

pub use errors::{body_too_large, check_user_id, method_not_allowed, no_route};
pub use ingest::{IngestParseError, ParsedEvent, parse_ingest, split_parsed};
pub use predict::{Features, PredictParseError, PredictResponse, parse_predict};
pub use responses::{
    ErrorBody, IngestResponse, MedianResponse, RejectedEvent, StatusBody, ingest_response,
};
