//! The engine: validates a batch of events, scores the accepted ones in one model call, records
//! them in the users' windows, and answers medians and stats. Its whole state can be snapshot to
//! bytes and restored, in this or another instance.

use edgescore_types::{
    ConfigError, EngineConfig, EngineStats, Event, IngestReport, Rejection, RejectionReason, Rules,
    ScoreError, SnapshotError, UserMedian,
};

use crate::capacity::{self, Admission};
use crate::hashing::InstanceKeys;
use crate::model::Model;
use crate::snapshot::{self, Counters, SnapshotUser};
use crate::window::{MedianSummary, Windows};

#[derive(Debug, Clone)]
pub struct Engine {
    config: EngineConfig,
    model: Model,
    windows: Windows,
    counters: Counters,
    /// The state bytes the engine may hold (see [`crate::capacity`]); none: no limit.
    capacity: Option<u64>,
    /// The next slot of a chunked snapshot being taken.
    snapshot_cursor: Option<usize>,
}

impl Engine {
    pub fn new(config: EngineConfig, model: Model) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Engine {
            config,
            model,
            windows: Windows::new(config.window_seconds),
            counters: Counters::default(),
            capacity: None,
            snapshot_cursor: None,
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

    /// Limits the state the engine takes on to about `state_bytes` (0: no limit): see
    /// [`crate::capacity`].
    pub fn set_capacity(&mut self, state_bytes: u64) {
        self.capacity = (state_bytes > 0).then_some(state_bytes);
    }

    /// How full the capacity is, in thousandths (0 without one).
    pub fn fill_permille(&self) -> u32 {
        let estimate = capacity::estimate(self.windows.users(), self.windows.events());
        capacity::fill_permille(self.capacity, estimate)
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
        let admitted = self.admit(events, checked.accepted, &mut report);
        let accepted: Vec<&Event> = admitted.iter().map(|&i| &events[i as usize]).collect();
        let features: Vec<f32> = accepted
            .iter()
            .flat_map(|e| e.features.iter().copied())
            .collect();

        let mut recorded = 0;
        if !accepted.is_empty() {
            let scores = self.model.score(&features)?;
            self.counters.model_calls += 1;
            for ((event, score), index) in accepted.iter().zip(scores).zip(&admitted) {
                if !score.is_finite() {
                    report
                        .rejections
                        .push(Rejection::non_finite_score(*index, score));
                    continue;
                }
                // The watermark follows accepted events, but never passes the host's clock.
                self.windows.advance(event.timestamp.min(now));
                self.windows.insert(&event.user_id, event.timestamp, score);
                recorded += 1;
            }
            self.windows.expire();
        }
        report.rejections.sort_by_key(|r| r.index);

        report.accepted = recorded;
        self.counters.ingest_batches += 1;
        self.counters.events_received += events.len() as u64;
        self.counters.events_accepted += u64::from(recorded);
        for rejection in &report.rejections {
            self.counters.rejected[rejection.reason.index()] += 1;
        }
        Ok(report)
    }

    /// The positions among `accepted` that the capacity admits; the others become rejections.
    fn admit(&self, events: &[Event], accepted: Vec<u32>, report: &mut IngestReport) -> Vec<u32> {
        let Some(budget) = self.capacity else {
            return accepted;
        };
        let estimate = capacity::estimate(self.windows.users(), self.windows.events());
        let mut admission = Admission::new(budget, estimate);
        // Keyed per instance (see `hashing`): the ids are the client's.
        let mut new_users = std::collections::HashSet::with_hasher(InstanceKeys);
        let mut admitted = Vec::with_capacity(accepted.len());
        for index in accepted {
            let user = events[index as usize].user_id.as_str();
            let held = self.windows.holds(user) || new_users.contains(user);
            match admission.admit(held) {
                Ok(()) => {
                    if !held {
                        new_users.insert(user);
                    }
                    admitted.push(index);
                }
                Err(refusal) => report.rejections.push(refusal.rejection(index)),
            }
        }
        admitted
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

    /// Starts a chunked snapshot: its header (watermark and counters). [`Engine::snapshot_next`]
    /// gives the users, chunk by chunk; the state must not change in between.
    pub fn snapshot_begin(&mut self) -> Vec<u8> {
        self.snapshot_cursor = Some(0);
        snapshot::encode_header(self.windows.watermark(), &self.counters)
    }

    /// The next chunk of users, of about `max_bytes`; none when the snapshot is complete.
    pub fn snapshot_next(&mut self, max_bytes: usize) -> Option<Vec<u8>> {
        let from = self.snapshot_cursor?;
        let (users, next) = self.windows.users_from(from, max_bytes);
        self.snapshot_cursor = next;
        if users.is_empty() {
            return None;
        }
        let users: Vec<SnapshotUser> = users
            .into_iter()
            .map(|(id, window)| SnapshotUser {
                user_id: id.to_string(),
                events: window.events().collect(),
            })
            .collect();
        Some(snapshot::encode_users(&users))
    }

    /// Starts restoring a chunked snapshot in place: the state is replaced by the header's
    /// watermark and counters, with no users yet; [`Engine::restore_next`] adds them. Memory:
    /// the state being rebuilt and one chunk, never a second copy. After an error the state is
    /// incomplete: the host discards the engine.
    pub fn restore_begin(&mut self, header: &[u8]) -> Result<(), SnapshotError> {
        let decoded = snapshot::decode(header)?;
        self.windows = Windows::new(self.config.window_seconds);
        if let Some(w) = decoded.watermark {
            self.windows.advance(w);
        }
        self.counters = decoded.counters;
        self.insert_users(&decoded.users);
        Ok(())
    }

    /// Adds a chunk of users to a restore begun with [`Engine::restore_begin`].
    pub fn restore_next(&mut self, chunk: &[u8]) -> Result<(), SnapshotError> {
        let users = snapshot::decode_users(chunk)?;
        if !users.is_empty() && self.windows.watermark().is_none() {
            return Err(SnapshotError::Corrupt(
                "users but no event was ever accepted".into(),
            ));
        }
        self.insert_users(&users);
        Ok(())
    }

    /// Ends a chunked restore: what the engine's window does not hold is dropped.
    pub fn restore_end(&mut self) {
        self.windows.expire();
    }

    fn insert_users(&mut self, users: &[SnapshotUser]) {
        for user in users {
            for &(timestamp, score) in &user.events {
                self.windows.insert(&user.user_id, timestamp, score);
            }
        }
    }
}
