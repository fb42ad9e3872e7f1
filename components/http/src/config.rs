//! What the app is configured with: `environment` in `spin.toml` (or whatever the host grants).

use edgescore_core::EngineConfig;

/// The key-value store holding the state; Spin maps the label to a backend (in-process, Redis
/// ...) in its runtime config.
pub fn store_name() -> String {
    std::env::var("EDGESCORE_KV_STORE").unwrap_or_else(|_| "default".into())
}

/// The window and clock skew, from `EDGESCORE_WINDOW_SECONDS` and
/// `EDGESCORE_MAX_CLOCK_SKEW_SECONDS` (300 each by default); a bad value is an error naming it.
pub fn engine() -> Result<EngineConfig, String> {
    let mut config = EngineConfig::default();
    for (name, field) in [
        ("EDGESCORE_WINDOW_SECONDS", &mut config.window_seconds),
        (
            "EDGESCORE_MAX_CLOCK_SKEW_SECONDS",
            &mut config.max_clock_skew_seconds,
        ),
    ] {
        if let Ok(value) = std::env::var(name) {
            *field = value
                .parse()
                .map_err(|_| format!("{name}: {value:?} is not a number"))?;
        }
    }
    config.validate().map_err(|e| e.to_string())?;
    Ok(config)
}

/// Largest request body accepted (413 above), as the native service's default.
pub const MAX_BODY_BYTES: usize = 8 << 20;
/// Most events in one ingest request, or instances in one prediction (413 above).
pub const MAX_EVENTS: usize = 10_000;
