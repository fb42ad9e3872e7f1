//! What the app is configured with: `environment` in `spin.toml` (or whatever the host grants).

use edgescore_contract::ApiError;
use edgescore_contract::access::ApiToken;
use edgescore_types::EngineConfig;

/// The key-value store holding the state; Spin maps the label to a backend (in-process, Redis
/// ...) in its runtime config.
pub fn store_name() -> String {
    std::env::var("EDGESCORE_KV_STORE").unwrap_or_else(|_| "default".into())
}

/// The window and clock skew, from `EDGESCORE_WINDOW_SECONDS` and
/// `EDGESCORE_MAX_CLOCK_SKEW_SECONDS` (the native defaults otherwise); a bad value is a 500
/// naming it.
pub fn engine() -> Result<EngineConfig, ApiError> {
    let mut config = EngineConfig::default();
    for (name, field) in [
        ("EDGESCORE_WINDOW_SECONDS", &mut config.window_seconds),
        (
            "EDGESCORE_MAX_CLOCK_SKEW_SECONDS",
            &mut config.max_clock_skew_seconds,
        ),
    ] {
        if let Ok(value) = std::env::var(name) {
            *field = value.parse().map_err(|_| {
                ApiError::internal(format!("config: {name}: {value:?} is not a number"))
            })?;
        }
    }
    config
        .validate()
        .map_err(|e| ApiError::internal(format!("config: {e}")))?;
    Ok(config)
}

/// Largest request body accepted (413 above), as the native service's default.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most events in one ingest request, or instances in one prediction (413 above).
pub const MAX_EVENTS: usize = 10_000;

/// The API token, from the Spin variable `api_token` (a secret in `spin.toml`'s `[variables]`):
/// none when it is undefined or empty, and the service is open. A variables provider that fails
/// fails the request closed (503), never open.
pub async fn api_token() -> Result<Option<ApiToken>, ApiError> {
    use spin_sdk::variables::{self, Error};
    match variables::get("api_token").await {
        Ok(token) if !token.is_empty() => Ok(Some(ApiToken::new(&token))),
        Ok(_) | Err(Error::Undefined(_)) => Ok(None),
        Err(e) => Err(ApiError::unavailable(
            format!("config: the api_token variable cannot be read: {e}"),
            1,
        )),
    }
}
