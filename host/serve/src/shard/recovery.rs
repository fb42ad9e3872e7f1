//! Nothing accepted is lost when the guest fails: the shard keeps a log of what it recorded since
//! its last checkpoint (an engine snapshot kept by the host); after a trap or deadline it rebuilds
//! the instance from the checkpoint and replays the log, and only the requests of the failed call
//! get an error. Checkpoints wait until the log is worth one, so their cost per event stays
//! bounded whatever the state's size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgescore_runtime::{CallError, GuestEvent, ScoringEngine};

/// What the shard recorded since its last checkpoint, to replay after a rebuild.
enum LogEntry {
    Advance(f64),
    Ingest { events: Vec<GuestEvent>, now: f64 },
    Swap { onnx: Arc<[u8]>, version: String },
}

/// The replay log and when the next checkpoint is due.
pub struct Recovery {
    log: Vec<LogEntry>,
    log_events: usize,
    /// Events in the windows at the last checkpoint: what a checkpoint costs to take.
    state_events: u64,
    last_checkpoint: Instant,
    pub needs_rebuild: bool,
    /// The label of the model at the last checkpoint.
    checkpoint_version: String,
}

/// Checkpoints copy the whole state out of the guest, so they wait until the log is worth it.
const MIN_CHECKPOINT_EVENTS: usize = 1 << 16;

impl Recovery {
    pub fn new(version: String) -> Recovery {
        Recovery {
            log: Vec::new(),
            log_events: 0,
            state_events: 0,
            last_checkpoint: Instant::now(),
            needs_rebuild: false,
            checkpoint_version: version,
        }
    }

    pub fn advanced(&mut self, watermark: f64) {
        self.log.push(LogEntry::Advance(watermark));
    }

    pub fn ingested(&mut self, events: Vec<GuestEvent>, now: f64) {
        self.log_events += events.len();
        self.log.push(LogEntry::Ingest { events, now });
    }

    pub fn swapped(&mut self, onnx: Arc<[u8]>, version: String) {
        self.log.push(LogEntry::Swap { onnx, version });
    }

    /// Events recorded since the last checkpoint.
    pub fn log_events(&self) -> usize {
        self.log_events
    }

    /// Rebuilds `engine` from its last checkpoint and replays the log on it; returns the label
    /// of the model scoring after the replay.
    pub fn rebuild(&self, engine: &mut ScoringEngine) -> Result<String, CallError> {
        let mut version = self.checkpoint_version.clone();
        engine.rebuild()?;
        for entry in &self.log {
            match entry {
                LogEntry::Advance(w) => engine.advance(*w)?,
                LogEntry::Ingest { events, now } => {
                    engine.ingest_guest_events(events, *now)?;
                }
                LogEntry::Swap { onnx, version: v } => {
                    let model = engine.load_model(onnx.clone())?;
                    engine.replace_model(model)?;
                    version = v.clone();
                }
            }
        }
        Ok(version)
    }

    /// Due when the log is at least an eighth of the state and `interval` old, or half the
    /// state: the copy then costs a bounded amount per event ingested, whatever the state's
    /// size, and the log (host memory, replay time) stays bounded too.
    pub fn checkpoint_due(&self, interval: Duration) -> bool {
        let log = self.log_events as u64;
        if self.needs_rebuild || self.log.is_empty() {
            return false;
        }
        let aged = self.last_checkpoint.elapsed() >= interval && log * 8 >= self.state_events;
        aged || log >= (self.state_events / 2).max(MIN_CHECKPOINT_EVENTS as u64)
    }

    /// A checkpoint was taken with model `version`: everything logged so far is in it.
    pub fn checkpointed(&mut self, version: String) {
        self.log.clear();
        self.log_events = 0;
        self.checkpoint_version = version;
        self.last_checkpoint = Instant::now();
    }

    /// The checkpoint just taken holds `events` events (what the next one will cost).
    pub fn sized(&mut self, events: u64) {
        self.state_events = events;
    }
}
