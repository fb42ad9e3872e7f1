//! Response bodies. Field names and order are the contract's; seed fields stay byte-compatible.

use serde::Serialize;

use crate::event::{Rejection, RejectionReason};

/// Every error body: one sentence naming the field and the problem.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ErrorBody {
    pub error: String,
}

impl ErrorBody {
    pub fn new(error: impl Into<String>) -> Self {
        ErrorBody {
            error: error.into(),
        }
    }
}

/// One rejected event of an ingest: `error` is the reason's stable name, `message` the sentence.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedEvent {
    pub index: u32,
    pub error: &'static str,
    pub message: String,
}

/// `POST /ingest` → 200. `processed` is a seed field.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestResponse {
    pub processed: u32,
    pub rejected: Vec<RejectedEvent>,
}

/// Builds the ingest answer; rejections are listed by position in the batch.
pub fn ingest_response(processed: u32, mut rejections: Vec<Rejection>) -> IngestResponse {
    rejections.sort_by_key(|r| r.index);
    IngestResponse {
        processed,
        rejected: rejections
            .into_iter()
            .map(|r| RejectedEvent {
                index: r.index,
                error: RejectionReason::as_str(r.reason),
                message: r.message,
            })
            .collect(),
    }
}

/// `GET /users/{id}/median` → 200 (seed).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MedianResponse {
    pub user_id: String,
    pub median: Option<f64>,
    pub count: u32,
    pub window_seconds: f64,
}

/// `GET /health`, `GET /ready`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusBody {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
