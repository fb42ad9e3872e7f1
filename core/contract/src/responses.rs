//! Response bodies of the read routes. Field names and order are the contract's; seed fields stay
//! byte-compatible. (The ingest answer is in [`crate::ingest`], errors in [`crate::errors`].)

use serde::Serialize;
use utoipa::ToSchema;

/// `GET /users/{id}/median` → 200 (seed).
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct MedianResponse {
    pub user_id: String,
    pub median: Option<f64>,
    pub count: u32,
    pub window_seconds: f64,
}

/// `GET /health`, `GET /ready`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct StatusBody {
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

impl StatusBody {
    pub const OK: StatusBody = StatusBody {
        status: "ok",
        reason: None,
    };

    /// `/ready` while the host cannot score, and why.
    pub fn unavailable(reason: impl Into<String>) -> Self {
        StatusBody {
            status: "unavailable",
            reason: Some(reason.into()),
        }
    }
}
