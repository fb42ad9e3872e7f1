//! What `GET /batch/{id}` answers about a job (kept on disk as is once it finishes).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Queued,
    Running,
    Done,
    Failed,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Progress {
    pub done: usize,
    pub total: usize,
}

/// `GET /batch/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct JobView {
    pub job_id: String,
    pub status: JobStatus,
    pub progress: Progress,
    pub model_version: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predictions: Option<Vec<f64>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}
