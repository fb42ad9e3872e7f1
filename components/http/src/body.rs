//! Request bodies, refused with 413 past the limit.

use edgescore_contract::{ApiError, errors};
use http_body_util::BodyExt;
use spin_sdk::http::Request;

use crate::config::MAX_BODY_BYTES;

/// A body past the limit is still read (and dropped) up to this size before the 413: a client
/// still sending when the answer comes would otherwise see its connection closed under it (Spin
/// closes a connection whose request body was not read), not the 413. Past this, it does.
const DRAINED_BYTES: usize = 4 * MAX_BODY_BYTES;

/// The request body, or the 413/400 answer. Never holds more than the limit in memory.
pub async fn read(request: Request) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > DRAINED_BYTES) {
        return Err(errors::body_too_large(MAX_BODY_BYTES));
    }
    let mut body = request.into_body();
    let mut bytes = Vec::new();
    let mut received = 0;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| errors::body_unreadable(format!("{e:?}")))?;
        let Ok(data) = frame.into_data() else {
            continue;
        };
        received += data.len();
        if received <= MAX_BODY_BYTES {
            bytes.extend_from_slice(&data);
        } else if received > DRAINED_BYTES {
            break;
        }
    }
    if received > MAX_BODY_BYTES {
        return Err(errors::body_too_large(MAX_BODY_BYTES));
    }
    Ok(bytes)
}
