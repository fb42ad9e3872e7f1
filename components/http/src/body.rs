//! Request bodies, refused with 413 past the limit.

use edgescore_contract::{ApiError, errors};
use spin_sdk::http::Request;
use spin_sdk::http::body::IncomingBodyExt;

use crate::config::MAX_BODY_BYTES;

/// The request body, or the 413/400 answer.
pub async fn read(request: Request) -> Result<Vec<u8>, ApiError> {
    let declared = request
        .headers()
        .get("content-length")
        .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(errors::body_too_large(MAX_BODY_BYTES));
    }
    let body = request
        .into_body()
        .bytes()
        .await
        .map_err(|e| errors::body_unreadable(format!("{e:?}")))?;
    if body.len() > MAX_BODY_BYTES {
        return Err(errors::body_too_large(MAX_BODY_BYTES));
    }
    Ok(body.to_vec())
}
