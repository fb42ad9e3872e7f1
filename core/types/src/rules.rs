//! The rules an event is judged by (`docs/http-api.md`, "Events and the rolling window"), apart
//! from any state but the watermark: the engine applies them, and the ingest pipeline of both
//! hosts applies them first to the whole batch, so that lateness is judged in batch order
//! service-wide.

use crate::engine::ConfigError;
use crate::event::{Event, MAX_USER_ID_BYTES, Rejection, RejectionReason};

/// The window rules a service runs with.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EngineConfig {
    /// How far back from the watermark a user's window reaches, in seconds.
    pub window_seconds: f64,
    /// How far ahead of the host's clock an event may be before it is rejected as `future`.
    pub max_clock_skew_seconds: f64,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            window_seconds: 300.0,
            max_clock_skew_seconds: 60.0,
        }
    }
}

impl EngineConfig {
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(self.window_seconds.is_finite() && self.window_seconds > 0.0) {
            return Err(ConfigError::WindowSeconds(self.window_seconds));
        }
        if !(self.max_clock_skew_seconds.is_finite() && self.max_clock_skew_seconds >= 0.0) {
            return Err(ConfigError::ClockSkew(self.max_clock_skew_seconds));
        }
        Ok(())
    }

    /// The start of every window under `watermark`: an event at or before it is out.
    pub fn window_start(&self, watermark: f64) -> f64 {
        window_start(watermark, self.window_seconds)
    }
}

/// The start of a window of `window_seconds` under `watermark`: an event at or before it is out
/// of its user's window, and late on arrival.
pub fn window_start(watermark: f64, window_seconds: f64) -> f64 {
    watermark - window_seconds
}

/// The watermark after an event at `timestamp` is accepted while the host's clock reads `now`:
/// the largest accepted timestamp, but never ahead of the clock. An event from a client whose
/// clock runs fast is kept, but cannot expire anybody else's window early.
pub fn raised_watermark(watermark: Option<f64>, timestamp: f64, now: f64) -> f64 {
    let t = timestamp.min(now);
    watermark.map_or(t, |w| w.max(t))
}

/// The engine's config and the model's input width.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub config: EngineConfig,
    pub width: usize,
}

/// A batch judged by [`Rules::check_batch`].
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Checked {
    /// Positions of the events that pass, in batch order.
    pub accepted: Vec<u32>,
    pub rejections: Vec<Rejection>,
}

impl Rules {
    /// Judges one event at wall-clock time `now` against the watermark so far.
    pub fn check(
        &self,
        event: &Event,
        now: f64,
        watermark: Option<f64>,
    ) -> Result<(), (RejectionReason, String)> {
        let id_len = event.user_id.len();
        if id_len == 0 || id_len > MAX_USER_ID_BYTES {
            return Err((
                RejectionReason::InvalidUserId,
                format!("user_id: must be 1 to {MAX_USER_ID_BYTES} bytes, got {id_len}"),
            ));
        }
        if !event.timestamp.is_finite() {
            return Err((
                RejectionReason::InvalidTimestamp,
                "timestamp: must be a finite number of Unix seconds".to_string(),
            ));
        }
        let width = self.width;
        if event.features.len() != width {
            return Err((
                RejectionReason::WrongWidth,
                format!(
                    "features: expected {width} values, got {}",
                    event.features.len()
                ),
            ));
        }
        if let Some(i) = event.features.iter().position(|v| !v.is_finite()) {
            return Err((
                RejectionReason::NonFiniteFeature,
                format!("features[{i}]: must be a finite 32-bit float"),
            ));
        }
        let skew = self.config.max_clock_skew_seconds;
        if event.timestamp > now + skew {
            return Err((
                RejectionReason::Future,
                format!(
                    "timestamp: {} is more than {skew} s ahead of the host clock ({now})",
                    event.timestamp
                ),
            ));
        }
        if let Some(w) = watermark {
            let start = self.config.window_start(w);
            if event.timestamp <= start {
                return Err((
                    RejectionReason::Late,
                    format!(
                        "timestamp: {} is at or before the window start {start} (latest event {w} minus {} s)",
                        event.timestamp, self.config.window_seconds
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Judges a batch in order as if its events came one by one: each accepted event raises the
    /// watermark for the ones after it ([`raised_watermark`]). Returns the verdicts and the
    /// watermark after the batch.
    pub fn check_batch(
        &self,
        events: &[Event],
        now: f64,
        mut watermark: Option<f64>,
    ) -> (Checked, Option<f64>) {
        let mut checked = Checked::default();
        for (index, event) in events.iter().enumerate() {
            match self.check(event, now, watermark) {
                Ok(()) => {
                    watermark = Some(raised_watermark(watermark, event.timestamp, now));
                    checked.accepted.push(index as u32);
                }
                Err((reason, message)) => checked.rejections.push(Rejection {
                    index: index as u32,
                    reason,
                    message,
                }),
            }
        }
        (checked, watermark)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RULES: Rules = Rules {
        config: EngineConfig {
            window_seconds: 300.0,
            max_clock_skew_seconds: 60.0,
        },
        width: 1,
    };

    fn event(t: f64) -> Event {
        Event {
            user_id: "u".into(),
            timestamp: t,
            features: vec![0.0],
        }
    }

    #[test]
    fn the_watermark_never_passes_the_clock() {
        let now = 10_000.0;
        assert_eq!(raised_watermark(None, now + 50.0, now), now);
        assert_eq!(
            raised_watermark(Some(now - 5.0), now - 10.0, now),
            now - 5.0
        );
        assert_eq!(raised_watermark(Some(now - 5.0), now - 1.0, now), now - 1.0);
        // A fast clock's event is accepted, and does not make the next events late.
        let batch = [event(now + 50.0), event(now - 290.0), event(now + 61.0)];
        let (checked, watermark) = RULES.check_batch(&batch, now, Some(now - 20.0));
        assert_eq!(checked.accepted, vec![0, 1]);
        assert_eq!(checked.rejections[0].reason, RejectionReason::Future);
        assert_eq!(watermark, Some(now));
    }

    #[test]
    fn lateness_is_judged_against_the_window_start() {
        let (checked, _) = RULES.check_batch(&[event(700.0), event(700.5)], 1000.0, Some(1000.0));
        assert_eq!(checked.accepted, vec![1]);
        assert_eq!(checked.rejections[0].reason, RejectionReason::Late);
        assert!(checked.rejections[0].message.contains("window start 700"));
    }
}
