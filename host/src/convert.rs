//! Between the WIT types of the bindings and the core's types: the host speaks the core's
//! vocabulary (and error messages), whichever side ran the code.

use edgescore_core as core;

use crate::bindings::types as wit;

pub fn model_info(i: wit::ModelInfo) -> core::ModelInfo {
    core::ModelInfo {
        input_name: i.input_name,
        output_name: i.output_name,
        input_width: i.input_width,
        sha256: i.sha256,
    }
}

pub fn model_error(e: wit::ModelError) -> core::ModelError {
    match e {
        wit::ModelError::Invalid(why) => core::ModelError::Invalid(why),
        wit::ModelError::UnsupportedSignature(why) => core::ModelError::UnsupportedSignature(why),
    }
}

pub fn score_error(e: wit::ScoreError) -> core::ScoreError {
    match e {
        wit::ScoreError::EmptyBatch => core::ScoreError::EmptyBatch,
        wit::ScoreError::WrongWidth(m) => core::ScoreError::WrongWidth {
            width: m.width,
            len: m.len,
        },
        wit::ScoreError::NonFinite(row) => core::ScoreError::NonFinite { row },
        wit::ScoreError::Inference(why) => core::ScoreError::Inference(why),
    }
}

pub fn config(c: core::EngineConfig) -> wit::EngineConfig {
    wit::EngineConfig {
        window_seconds: c.window_seconds,
        max_clock_skew_seconds: c.max_clock_skew_seconds,
    }
}

/// The guest's message already names the field; keep it.
pub fn config_error(e: wit::ConfigError) -> String {
    match e {
        wit::ConfigError::WindowSeconds(why) | wit::ConfigError::MaxClockSkewSeconds(why) => why,
    }
}

pub fn snapshot_error(e: wit::SnapshotError) -> core::SnapshotError {
    match e {
        wit::SnapshotError::NotASnapshot => core::SnapshotError::NotASnapshot,
        wit::SnapshotError::UnsupportedVersion(v) => core::SnapshotError::UnsupportedVersion(v),
        wit::SnapshotError::Corrupt(why) => core::SnapshotError::Corrupt(why),
    }
}

pub fn events(events: &[core::Event]) -> Vec<wit::Event> {
    events
        .iter()
        .map(|e| wit::Event {
            user_id: e.user_id.clone(),
            timestamp: e.timestamp,
            features: e.features.clone(),
        })
        .collect()
}

pub fn reason(r: wit::RejectionReason) -> core::RejectionReason {
    match r {
        wit::RejectionReason::InvalidUserId => core::RejectionReason::InvalidUserId,
        wit::RejectionReason::InvalidTimestamp => core::RejectionReason::InvalidTimestamp,
        wit::RejectionReason::WrongWidth => core::RejectionReason::WrongWidth,
        wit::RejectionReason::NonFiniteFeature => core::RejectionReason::NonFiniteFeature,
        wit::RejectionReason::Future => core::RejectionReason::Future,
        wit::RejectionReason::Late => core::RejectionReason::Late,
        wit::RejectionReason::MalformedEvent => core::RejectionReason::MalformedEvent,
    }
}

pub fn report(r: wit::IngestReport) -> core::IngestReport {
    core::IngestReport {
        accepted: r.accepted,
        rejections: r
            .rejections
            .into_iter()
            .map(|r| core::Rejection {
                index: r.index,
                reason: reason(r.reason),
                message: r.message,
            })
            .collect(),
    }
}

pub fn median(m: wit::UserMedian) -> core::UserMedian {
    core::UserMedian {
        median: m.median,
        count: m.count,
        window_seconds: m.window_seconds,
    }
}

pub fn stats(s: wit::EngineStats) -> core::EngineStats {
    core::EngineStats {
        ingest_batches: s.ingest_batches,
        events_received: s.events_received,
        events_accepted: s.events_accepted,
        rejected: s
            .rejected
            .into_iter()
            .map(|r| (reason(r.reason), r.count))
            .collect(),
        median_queries: s.median_queries,
        model_calls: s.model_calls,
        users_tracked: s.users_tracked,
        events_in_windows: s.events_in_windows,
        watermark: s.watermark,
        window_seconds: s.window_seconds,
    }
}
