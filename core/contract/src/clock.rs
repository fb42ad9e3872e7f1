//! The host's wall clock, the `now` every event is judged against.

/// The wall clock in Unix seconds (0 if it reads before 1970).
pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
