//! The error sentences every host answers with, beside those of the body parsers.

use crate::event::MAX_USER_ID_BYTES;

/// 404 for a path no route serves.
pub fn no_route(method: &str, path: &str) -> String {
    format!("path: no route for {method} {path}")
}

/// 405 for a known path and another method.
pub fn method_not_allowed(method: &str, path: &str) -> String {
    format!("method: {method} is not allowed on {path}")
}

/// 413 for a body over the limit.
pub fn body_too_large(limit: usize) -> String {
    format!("body: larger than the limit of {limit} bytes")
}

/// A user id in a path: 1 to 256 bytes (the rule events are judged by); else the 400 sentence.
pub fn check_user_id(user_id: &str) -> Result<(), String> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(format!(
            "user_id: must be 1 to {MAX_USER_ID_BYTES} bytes, got {}",
            user_id.len()
        ));
    }
    Ok(())
}
