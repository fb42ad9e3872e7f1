//! The snapshot format: `EDGESNAP`, a little-endian u32 format version, then a postcard body
//! (watermark, counters, each user's `(timestamp, score)` events: 12 bytes per event).

use serde::{Deserialize, Serialize};

use crate::event::{MAX_USER_ID_BYTES, RejectionReason};

const MAGIC: &[u8; 8] = b"EDGESNAP";
// Version 2: seven rejection counters (malformed_event added).
const FORMAT_VERSION: u32 = 2;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SnapshotError {
    #[error("snapshot: not an edgescore snapshot (bad magic bytes)")]
    NotASnapshot,
    #[error(
        "snapshot: format version {0} is not supported (this build reads version {FORMAT_VERSION})"
    )]
    UnsupportedVersion(u32),
    #[error("snapshot: corrupt: {0}")]
    Corrupt(String),
}

/// The engine's counters, kept across snapshots.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Counters {
    pub ingest_batches: u64,
    pub events_received: u64,
    pub events_accepted: u64,
    /// Indexed by `RejectionReason::index`.
    pub rejected: [u64; RejectionReason::ALL.len()],
    pub median_queries: u64,
    pub model_calls: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotUser {
    pub user_id: String,
    pub events: Vec<(f64, f32)>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub watermark: Option<f64>,
    pub counters: Counters,
    pub users: Vec<SnapshotUser>,
}

pub fn encode(watermark: Option<f64>, counters: &Counters, users: Vec<SnapshotUser>) -> Vec<u8> {
    let body = Snapshot {
        watermark,
        counters: counters.clone(),
        users,
    };
    let mut out = Vec::with_capacity(
        12 + body
            .users
            .iter()
            .map(|u| 16 + 12 * u.events.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    postcard::to_extend(&body, out).expect("writing to a Vec cannot fail")
}

/// Decodes and validates a snapshot: every value finite, no event past the watermark.
pub fn decode(bytes: &[u8]) -> Result<Snapshot, SnapshotError> {
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or(SnapshotError::NotASnapshot)?;
    let (version, body) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| SnapshotError::Corrupt("truncated header".into()))?;
    let version = u32::from_le_bytes(*version);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let snapshot: Snapshot =
        postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    validate(&snapshot)?;
    Ok(snapshot)
}

fn validate(snapshot: &Snapshot) -> Result<(), SnapshotError> {
    let corrupt = |why: String| Err(SnapshotError::Corrupt(why));
    if let Some(w) = snapshot.watermark
        && !w.is_finite()
    {
        return corrupt(format!("watermark {w} is not finite"));
    }
    for user in &snapshot.users {
        let len = user.user_id.len();
        if len == 0 || len > MAX_USER_ID_BYTES {
            return corrupt(format!("user id of {len} bytes"));
        }
        for &(timestamp, score) in &user.events {
            let within = snapshot.watermark.is_some_and(|w| timestamp <= w);
            if !timestamp.is_finite() || !score.is_finite() || !within {
                return corrupt(format!(
                    "event ({timestamp}, {score}) of user {:?} is not finite or is past the watermark",
                    user.user_id
                ));
            }
        }
    }
    Ok(())
}
