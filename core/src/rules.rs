//! The rules an event is judged by (see `shared/spec/http-api.md`), apart from any state but the
//! watermark: the engine applies them, and a host that splits a batch across several engines
//! applies them first to the whole batch, so that lateness is judged in batch order service-wide.

use crate::engine::EngineConfig;
use crate::event::{Event, MAX_USER_ID_BYTES, Rejection, RejectionReason};

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
            let start = w - self.config.window_seconds;
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
    /// watermark for the ones after it. Returns the verdicts and the watermark after the batch.
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
                    watermark = Some(watermark.map_or(event.timestamp, |w| w.max(event.timestamp)));
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
