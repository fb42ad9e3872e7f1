//! Between the WIT types of the bindings and the core's types: the host speaks the core's
//! vocabulary (and error messages), whichever side ran the code.

use edgescore_types as types;

use crate::bindings::types as wit;

pub fn model_info(i: wit::ModelInfo) -> types::ModelInfo {
    types::ModelInfo {
        input_name: i.input_name,
        output_name: i.output_name,
        input_width: i.input_width,
        sha256: i.sha256,
    }
}

pub fn model_error(e: wit::ModelError) -> types::ModelError {
    match e {
        wit::ModelError::Invalid(why) => types::ModelError::Invalid(why),
        wit::ModelError::UnsupportedSignature(why) => types::ModelError::UnsupportedSignature(why),
    }
}

pub fn score_error(e: wit::ScoreError) -> types::ScoreError {
    match e {
        wit::ScoreError::EmptyBatch => types::ScoreError::EmptyBatch,
        wit::ScoreError::WrongWidth(m) => types::ScoreError::WrongWidth {
            width: m.width,
            len: m.len,
        },
        wit::ScoreError::NonFinite(row) => types::ScoreError::NonFinite { row },
        wit::ScoreError::Inference(why) => types::ScoreError::Inference(why),
    }
}

pub fn config(c: types::EngineConfig) -> wit::EngineConfig {
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

pub fn snapshot_error(e: wit::SnapshotError) -> types::SnapshotError {
    match e {
        wit::SnapshotError::NotASnapshot => types::SnapshotError::NotASnapshot,
        wit::SnapshotError::UnsupportedVersion(v) => types::SnapshotError::UnsupportedVersion(v),
        wit::SnapshotError::Corrupt(why) => types::SnapshotError::Corrupt(why),
    }
}

pub fn events(events: &[types::Event]) -> Vec<wit::Event> {
    events
        .iter()
        .map(|e| wit::Event {
            user_id: e.user_id.clone(),
            timestamp: e.timestamp,
            features: e.features.clone(),
        })
        .collect()
}

pub fn reason(r: wit::RejectionReason) -> types::RejectionReason {
    match r {
        wit::RejectionReason::InvalidUserId => types::RejectionReason::InvalidUserId,
        wit::RejectionReason::InvalidTimestamp => types::RejectionReason::InvalidTimestamp,
        wit::RejectionReason::WrongWidth => types::RejectionReason::WrongWidth,
        wit::RejectionReason::NonFiniteFeature => types::RejectionReason::NonFiniteFeature,
        wit::RejectionReason::Future => types::RejectionReason::Future,
        wit::RejectionReason::Late => types::RejectionReason::Late,
        wit::RejectionReason::MalformedEvent => types::RejectionReason::MalformedEvent,
        wit::RejectionReason::NonFiniteScore => types::RejectionReason::NonFiniteScore,
        wit::RejectionReason::Capacity => types::RejectionReason::Capacity,
    }
}

pub fn report(r: wit::IngestReport) -> types::IngestReport {
    types::IngestReport {
        accepted: r.accepted,
        rejections: r
            .rejections
            .into_iter()
            .map(|r| types::Rejection {
                index: r.index,
                reason: reason(r.reason),
                message: r.message,
            })
            .collect(),
    }
}

pub fn median(m: wit::UserMedian) -> types::UserMedian {
    types::UserMedian {
        median: m.median,
        count: m.count,
        window_seconds: m.window_seconds,
    }
}

pub fn stats(s: wit::EngineStats) -> types::EngineStats {
    types::EngineStats {
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
