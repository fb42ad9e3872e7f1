//! What an engine answers (medians, stats), and why it refuses a config or a snapshot.

use crate::event::RejectionReason;

/// A user's median as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserMedian {
    pub median: Option<f64>,
    pub count: u32,
    pub window_seconds: f64,
}

/// Counters and gauges of an engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStats {
    pub ingest_batches: u64,
    pub events_received: u64,
    pub events_accepted: u64,
    /// Rejections by reason, in the order of [`RejectionReason::ALL`].
    pub rejected: Vec<(RejectionReason, u64)>,
    pub median_queries: u64,
    pub model_calls: u64,
    pub users_tracked: u64,
    pub events_in_windows: u64,
    pub watermark: Option<f64>,
    pub window_seconds: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("window_seconds: must be a finite number above 0, got {0}")]
    WindowSeconds(f64),
    #[error("max_clock_skew_seconds: must be a finite number of 0 or more, got {0}")]
    ClockSkew(f64),
}

/// Why a snapshot could not be restored; the engine's state is then left as it was.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot: not an edgescore snapshot (bad magic bytes)")]
    NotASnapshot,
    #[error("snapshot: format version {0} is not supported by this build")]
    UnsupportedVersion(u32),
    #[error("snapshot: corrupt: {0}")]
    Corrupt(String),
}
