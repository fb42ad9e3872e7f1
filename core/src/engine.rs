//! The engine: validates a batch of events, scores the accepted ones in one model call, records
//! them in the users' windows, and answers medians and stats. Its whole state can be snapshot to
//! bytes and restored, in this or another instance.

use crate::event::{Event, IngestReport, RejectionReason};
use crate::model::{Model, ScoreError};
use crate::rules::Rules;
use crate::snapshot::{self, Counters, SnapshotError, SnapshotUser};
use crate::windows::{MedianSummary, Windows};

/// The engine's rules; see `shared/spec/http-api.md`.
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
            max_clock_skew_seconds: 300.0,
        }
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error("window_seconds: must be a finite number above 0, got {0}")]
    WindowSeconds(f64),
    #[error("max_clock_skew_seconds: must be a finite number of 0 or more, got {0}")]
    ClockSkew(f64),
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
}

/// A user's median as the API reports it.
#[derive(Debug, Clone, PartialEq)]
pub struct UserMedian {
    pub median: Option<f64>,
    pub count: u32,
    pub window_seconds: f64,
}

/// Counters and gauges of the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct EngineStats {
    pub ingest_batches: u64,
    pub events_received: u64,
    pub events_accepted: u64,
    /// Rejections by reason, in the order of [`RejectionReason::ALL`].
    pub rejected: Vec<(RejectionReason, u64)>,
    pub median_queries: u64,
    pub model_calls: u64,
    pub users_tracked: u64,
    pub events_in_windows: u64,
    pub watermark: Option<f64>,
    pub window_seconds: f64,
}

#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    model: Model,
    windows: Windows,
    counters: Counters,
}

impl Engine {
    pub fn new(config: EngineConfig, model: Model) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            model,
            windows: Windows::new(config.window_seconds),
            counters: Counters::default(),
        })
    }

    pub fn config(&self) -> EngineConfig {
        self.config
    }

    pub fn model(&self) -> &Model {
        &self.model
    }

    /// The rules this engine judges events by.
    pub fn rules(&self) -> Rules {
        Rules {
            config: self.config,
            width: self.model.input_width(),
        }
    }

    /// Raises the watermark to `watermark` (never lowers it) and expires every event that falls
    /// out of its window. A host that splits users across engines keeps them on one service-wide
    /// watermark this way.
    pub fn advance(&mut self, watermark: f64) {
        if watermark.is_finite() {
            self.windows.advance(watermark);
            self.windows.expire();
        }
    }

    /// Swaps the model; the windows keep their history.
    pub fn replace_model(&mut self, model: Model) {
        self.model = model;
    }

    /// Ingests a batch at wall-clock time `now` (Unix seconds). Each event is accepted or rejected
    /// on its own; the accepted ones are scored in one model call. If that call fails, nothing of
    /// the batch is recorded and the error is returned.
    pub fn ingest(&mut self, events: &[Event], now: f64) -> Result<IngestReport, ScoreError> {
        let mut report = IngestReport::default();
        // The watermark moves as events are accepted, so that lateness is judged in batch order
        // exactly as if the events had come one by one; it is committed only once scored.
        let (checked, _) = self
            .rules()
            .check_batch(events, now, self.windows.watermark());
        report.rejections = checked.rejections;
        let accepted: Vec<&Event> = checked
            .accepted
            .iter()
            .map(|&i| &events[i as usize])
            .collect();
        let features: Vec<f32> = accepted
            .iter()
            .flat_map(|e| e.features.iter().copied())
            .collect();

        if !accepted.is_empty() {
            let scores = self.model.score(&features)?;
            self.counters.model_calls += 1;
            for (event, score) in accepted.iter().zip(scores) {
                self.windows.advance(event.timestamp);
                self.windows.insert(&event.user_id, event.timestamp, score);
            }
            self.windows.expire();
        }

        report.accepted = accepted.len() as u32;
        self.counters.ingest_batches += 1;
        self.counters.events_received += events.len() as u64;
        self.counters.events_accepted += accepted.len() as u64;
        for rejection in &report.rejections {
            self.counters.rejected[rejection.reason.index()] += 1;
        }
        Ok(report)
    }

    /// The median of a user's window (`None` for an unknown user or an empty window).
    pub fn median(&mut self, user_id: &str) -> UserMedian {
        self.counters.median_queries += 1;
        let MedianSummary { median, count } = self.windows.median(user_id);
        UserMedian {
            median,
            count,
            window_seconds: self.config.window_seconds,
        }
    }

    pub fn stats(&self) -> EngineStats {
        let c = &self.counters;
        EngineStats {
            ingest_batches: c.ingest_batches,
            events_received: c.events_received,
            events_accepted: c.events_accepted,
            rejected: RejectionReason::ALL
                .iter()
                .map(|&r| (r, c.rejected[r.index()]))
                .collect(),
            median_queries: c.median_queries,
            model_calls: c.model_calls,
            users_tracked: self.windows.users() as u64,
            events_in_windows: self.windows.events() as u64,
            watermark: self.windows.watermark(),
            window_seconds: self.config.window_seconds,
        }
    }

    /// The whole state (windows, watermark, counters) as bytes; see [`Engine::restore`].
    pub fn snapshot(&self) -> Vec<u8> {
        let users = self
            .windows
            .iter()
            .map(|(id, window)| SnapshotUser {
                user_id: id.to_string(),
                events: window.events().collect(),
            })
            .collect();
        snapshot::encode(self.windows.watermark(), &self.counters, users)
    }

    /// Replaces the state with a snapshot's. The engine keeps its own config and model: events the
    /// snapshot holds that are outside this engine's window are dropped. On error the state is
    /// left as it was.
    pub fn restore(&mut self, bytes: &[u8]) -> Result<(), SnapshotError> {
        let decoded = snapshot::decode(bytes)?;
        let mut windows = Windows::new(self.config.window_seconds);
        if let Some(w) = decoded.watermark {
            windows.advance(w);
        }
        for user in &decoded.users {
            for &(timestamp, score) in &user.events {
                windows.insert(&user.user_id, timestamp, score);
            }
        }
        windows.expire();
        self.windows = windows;
        self.counters = decoded.counters;
        Ok(())
    }
}
