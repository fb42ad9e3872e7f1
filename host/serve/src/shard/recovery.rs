//! Nothing accepted is lost when the guest fails: after a trap or deadline the shard rebuilds the
//! instance from its last checkpoint (an engine snapshot) and replays what it recorded since, and
//! only the requests of the failed call get an error. With a data directory both are read back
//! from the shard's files — the checkpoint from its snapshot once written, what was recorded from
//! its durable log — so the host keeps neither in memory; with `--ephemeral` both are kept in
//! memory. Checkpoints wait until the log is worth one,
//! so their cost per event stays bounded whatever the state's size.

use std::sync::Arc;
use std::time::{Duration, Instant};

use edgescore_runtime::{CallError, GuestEvent, ScoringEngine};

use super::replay::{self, ReplayError, Scoring};
use crate::storage::shard::ShardDurable;
use crate::storage::shard_log::LogMark;
use crate::storage::snapshot::ShardTotals;

/// What the shard recorded since its last checkpoint, kept in memory (`--ephemeral`).
enum LogEntry {
    Advance(f64),
    Ingest { events: Vec<GuestEvent>, now: f64 },
    Swap { onnx: Arc<[u8]>, version: String },
}

/// Where what was recorded since the last checkpoint is, to replay after a rebuild.
enum Replay {
    Memory(Vec<LogEntry>),
    /// The shard's durable log, from this mark on.
    Logged(LogMark),
}

/// The replay log and when the next checkpoint is due.
pub struct Recovery {
    replay: Replay,
    /// Records since the last checkpoint, and the events among them.
    log_records: usize,
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
    /// What is recorded kept in memory (no data directory).
    pub fn in_memory(version: String) -> Recovery {
        Recovery::new(version, Replay::Memory(Vec::new()))
    }

    /// What is recorded read back from the shard's durable log, whose records from `since` on
    /// are those after the checkpoint the engine holds.
    pub fn logged(version: String, since: LogMark) -> Recovery {
        Recovery::new(version, Replay::Logged(since))
    }

    fn new(version: String, replay: Replay) -> Recovery {
        Recovery {
            replay,
            log_records: 0,
            log_events: 0,
            state_events: 0,
            last_checkpoint: Instant::now(),
            needs_rebuild: false,
            checkpoint_version: version,
        }
    }

    pub fn advanced(&mut self, watermark: f64) {
        self.push(LogEntry::Advance(watermark));
    }

    pub fn ingested(&mut self, events: Vec<GuestEvent>, now: f64) {
        self.log_events += events.len();
        self.push(LogEntry::Ingest { events, now });
    }

    pub fn swapped(&mut self, onnx: Arc<[u8]>, version: String) {
        self.push(LogEntry::Swap { onnx, version });
    }

    /// Counts `entry`, and keeps it if nothing durable does.
    fn push(&mut self, entry: LogEntry) {
        self.log_records += 1;
        if let Replay::Memory(log) = &mut self.replay {
            log.push(entry);
        }
    }

    /// Counts what a start replayed from the log (kept there, not here).
    pub fn replayed(&mut self, records: usize, events: usize) {
        self.log_records += records;
        self.log_events += events;
    }

    /// Events recorded since the last checkpoint.
    pub fn log_events(&self) -> usize {
        self.log_events
    }

    /// Rebuilds `engine` from its last checkpoint and replays what was recorded since (from
    /// `durable`'s log, when the shard has one, whose totals are counted again); returns the
    /// label of the model scoring after the replay.
    pub fn rebuild(
        &self,
        engine: &mut ScoringEngine,
        durable: Option<&mut ShardDurable>,
    ) -> Result<String, CallError> {
        let mut version = self.checkpoint_version.clone();
        match (&self.replay, durable) {
            (Replay::Memory(log), _) => {
                engine.rebuild()?;
                for entry in log {
                    match entry {
                        LogEntry::Advance(w) => engine.advance(*w)?,
                        LogEntry::Ingest { events, now } => {
                            let report = engine.ingest_guest_events(events, *now)?;
                            if report.accepted as usize != events.len() {
                                return Err(ReplayError::Diverged {
                                    accepted: report.accepted,
                                    expected: events.len(),
                                }
                                .into());
                            }
                        }
                        LogEntry::Swap { onnx, version: v } => {
                            replay::swap_in(engine, onnx.clone())?;
                            version = v.clone();
                        }
                    }
                }
            }
            (Replay::Logged(since), Some(durable)) => {
                // The checkpoint is in memory only until the snapshot writer is done with it
                // (which may happen during this very rebuild); then its file is read back.
                let (since, at_checkpoint, mut totals) = match engine.rebuild() {
                    Ok(()) => {
                        let scoring = Scoring {
                            version: version.clone(),
                            model_sha256: None,
                        };
                        (*since, scoring, durable.checkpoint_totals.clone())
                    }
                    Err(_) if !engine.holds_checkpoint() => {
                        restore_from_disk(engine, durable, *since, &version)?
                    }
                    Err(e) => return Err(e),
                };
                let replayed = replay::replay_log(
                    engine,
                    &durable.log,
                    &durable.models,
                    since,
                    at_checkpoint,
                    Some(&mut totals),
                )?;
                // Counted again from the checkpoint: after a failed sync cut the log back, the
                // totals hold what it holds.
                durable.totals = totals;
                version = replayed.scoring.version;
            }
            (Replay::Logged(_), None) => {
                return Err(CallError::Instantiate(
                    "the shard's log is not open: nothing to replay from".into(),
                ));
            }
        }
        Ok(version)
    }

    /// Due when the log is at least an eighth of the state and `interval` old, or half the
    /// state: the copy then costs a bounded amount per event ingested, whatever the state's
    /// size, and the log (host memory, replay time) stays bounded too.
    pub fn checkpoint_due(&self, interval: Duration) -> bool {
        let log = self.log_events as u64;
        if self.needs_rebuild || self.log_records == 0 {
            return false;
        }
        let aged = self.last_checkpoint.elapsed() >= interval && log * 8 >= self.state_events;
        aged || log >= (self.state_events / 2).max(MIN_CHECKPOINT_EVENTS as u64)
    }

    /// A checkpoint was taken with model `version`: everything logged so far is in it, and the
    /// shard's durable log (if it has one) goes on from `next`.
    pub fn checkpointed(&mut self, version: String, next: Option<LogMark>) {
        self.replay = match next {
            Some(mark) => Replay::Logged(mark),
            None => Replay::Memory(Vec::new()),
        };
        self.log_records = 0;
        self.log_events = 0;
        self.checkpoint_version = version;
        self.last_checkpoint = Instant::now();
    }

    /// The checkpoint just taken holds `events` events (what the next one will cost).
    pub fn sized(&mut self, events: u64) {
        self.state_events = events;
    }
}

/// Restores into `engine` the newest snapshot on disk of the checkpoint's generation or older
/// (the one the checkpoint was written as, unless that write failed); returns where in the logs
/// the records after it begin, and the model scoring there.
fn restore_from_disk(
    engine: &mut ScoringEngine,
    durable: &ShardDurable,
    since: LogMark,
    version: &str,
) -> Result<(LogMark, Scoring, ShardTotals), CallError> {
    let base = durable
        .log
        .files
        .base_upto(since.generation)
        .map_err(|e| CallError::Instantiate(format!("reading the shard's snapshot: {e}")))?;
    let Some(base) = base else {
        // Generation 0's log begins with the swap to its model, so any model starts it.
        let onnx = engine.model().clone();
        engine.restore_checkpoint(None, onnx)?;
        let scoring = Scoring {
            version: version.to_string(),
            model_sha256: None,
        };
        return Ok((LogMark::default(), scoring, ShardTotals::default()));
    };
    let meta = replay::restore_snapshot(engine, &durable.models, base)?;
    let since = if meta.generation == since.generation {
        since
    } else {
        LogMark {
            generation: meta.generation,
            offset: 0,
        }
    };
    let scoring = Scoring {
        version: meta.version,
        model_sha256: Some(meta.model_sha256),
    };
    Ok((since, scoring, meta.totals))
}
