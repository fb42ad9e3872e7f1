//! The snapshot formats: `EDGESNAP`, a little-endian u32 format version, then a postcard body
//! (watermark, counters, each user's `(timestamp, score)` events: 12 bytes per event).
//!
//! A state can also be taken and restored in chunks, so that neither side ever holds a second
//! copy of it: a header chunk (`EDGESNAP`, the version, the watermark and the counters, no users)
//! and then user chunks (`EDGEUSRS`, the same version, a list of users).

use serde::{Deserialize, Serialize};

use edgescore_types::{MAX_USER_ID_BYTES, RejectionReason};

pub use edgescore_types::SnapshotError;

const MAGIC: &[u8; 8] = b"EDGESNAP";
const USERS_MAGIC: &[u8; 8] = b"EDGEUSRS";
// Version 4: nine rejection counters (capacity added).
const FORMAT_VERSION: u32 = 4;

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

/// Decodes and validates a snapshot: every value finite, valid user ids. (Events may be ahead of
/// the watermark: one from a client whose clock runs fast is kept, the watermark does not follow
/// it past the host's clock.)
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
        if !user.events.is_empty() && snapshot.watermark.is_none() {
            return corrupt(format!(
                "user {:?} has events but no event was ever accepted",
                user.user_id
            ));
        }
        validate_user(user)?;
    }
    Ok(())
}

/// A user id of 1 to 256 bytes and finite events.
fn validate_user(user: &SnapshotUser) -> Result<(), SnapshotError> {
    let corrupt = |why: String| Err(SnapshotError::Corrupt(why));
    let len = user.user_id.len();
    if len == 0 || len > MAX_USER_ID_BYTES {
        return corrupt(format!("user id of {len} bytes"));
    }
    for &(timestamp, score) in &user.events {
        if !timestamp.is_finite() || !score.is_finite() {
            return corrupt(format!(
                "event ({timestamp}, {score}) of user {:?} is not finite",
                user.user_id
            ));
        }
    }
    Ok(())
}

/// The header chunk of a chunked snapshot: a snapshot with no users.
pub fn encode_header(watermark: Option<f64>, counters: &Counters) -> Vec<u8> {
    encode(watermark, counters, Vec::new())
}

/// A chunk of users of a chunked snapshot.
pub fn encode_users(users: &[SnapshotUser]) -> Vec<u8> {
    let mut out = Vec::with_capacity(
        12 + users
            .iter()
            .map(|u| 16 + 12 * u.events.len())
            .sum::<usize>(),
    );
    out.extend_from_slice(USERS_MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    postcard::to_extend(&users, out).expect("writing to a Vec cannot fail")
}

/// Decodes and validates a chunk of users (see [`encode_users`]).
pub fn decode_users(bytes: &[u8]) -> Result<Vec<SnapshotUser>, SnapshotError> {
    let rest = bytes
        .strip_prefix(USERS_MAGIC)
        .ok_or(SnapshotError::NotASnapshot)?;
    let (version, body) = rest
        .split_first_chunk::<4>()
        .ok_or_else(|| SnapshotError::Corrupt("truncated chunk header".into()))?;
    let version = u32::from_le_bytes(*version);
    if version != FORMAT_VERSION {
        return Err(SnapshotError::UnsupportedVersion(version));
    }
    let users: Vec<SnapshotUser> =
        postcard::from_bytes(body).map_err(|e| SnapshotError::Corrupt(e.to_string()))?;
    for user in &users {
        validate_user(user)?;
    }
    Ok(users)
}
