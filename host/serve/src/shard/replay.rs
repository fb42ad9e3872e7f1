//! Replaying a shard's durable log: the one path by which a start and a rebuild bring an engine
//! from a snapshot to the state the log holds. The snapshot is restored once; then the records
//! after it are streamed, one log file at a time, each doing again what it did the first time.
//! The component must accept again every event it accepted then: a replay that diverges stops.

use std::io;
use std::sync::Arc;

use edgescore_runtime::{CallError, Chunks, ScoringEngine};

use crate::storage::ModelStore;
use crate::storage::record::Record;
use crate::storage::shard_log::{LogMark, ShardLog};
use crate::storage::snapshot::{ShardTotals, SnapshotMeta};

/// The model scoring at a place in the log.
#[derive(Debug, Default, Clone)]
pub struct Scoring {
    pub version: String,
    /// Its key in the model store; none when not known (a swap then always loads the model).
    pub model_sha256: Option<String>,
}

/// What a replay did, and the model scoring at its end.
#[derive(Debug, Default)]
pub struct Replayed {
    /// Where it began.
    pub since: LogMark,
    pub records: usize,
    pub events: usize,
    pub scoring: Scoring,
}

#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error(transparent)]
    Call(#[from] CallError),
    #[error("reading the shard's log: {0}")]
    Log(#[from] io::Error),
    #[error("reading a model the log or the snapshot names: {0:#}")]
    Model(anyhow::Error),
    #[error(
        "replaying the log, the component accepted {accepted} of {expected} events it had accepted before"
    )]
    Diverged { accepted: u32, expected: usize },
}

impl From<ReplayError> for CallError {
    fn from(e: ReplayError) -> CallError {
        match e {
            ReplayError::Call(e) => e,
            other => CallError::Instantiate(other.to_string()),
        }
    }
}

/// Restores a snapshot into `engine`, whose file stays the copy a later rebuild reads back: none
/// is kept in memory. Returns the snapshot's meta (its model, its generation, its totals).
pub fn restore_snapshot(
    engine: &mut ScoringEngine,
    models: &ModelStore,
    (meta, chunks): (SnapshotMeta, Arc<Chunks>),
) -> Result<SnapshotMeta, ReplayError> {
    let onnx = models.get(&meta.model_sha256).map_err(ReplayError::Model)?;
    engine.restore_checkpoint(Some(chunks), onnx)?;
    engine.release_checkpoint();
    Ok(meta)
}

/// Does again, on `engine`, what every record of `log` after `since` did, `scoring` being the
/// model at `since`. `totals`, when given, counts the replayed events as they were counted the
/// first time (a start rebuilds its totals so; a rebuild's are still right).
pub fn replay_log(
    engine: &mut ScoringEngine,
    log: &ShardLog,
    models: &ModelStore,
    since: LogMark,
    scoring: Scoring,
    mut totals: Option<&mut ShardTotals>,
) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed {
        since,
        records: 0,
        events: 0,
        scoring,
    };
    log.replay_since(since, |record| {
        replayed.apply(engine, models, record, totals.as_deref_mut())
    })?;
    Ok(replayed)
}

impl Replayed {
    fn apply(
        &mut self,
        engine: &mut ScoringEngine,
        models: &ModelStore,
        record: Record,
        totals: Option<&mut ShardTotals>,
    ) -> Result<(), ReplayError> {
        match record {
            Record::Advance { watermark } => engine.advance(watermark)?,
            Record::Ingest {
                now,
                events,
                rejected,
            } => {
                let events: Vec<_> = events.into_iter().map(|e| e.into_guest()).collect();
                let report = engine.ingest_guest_events(&events, now)?;
                if report.accepted as usize != events.len() {
                    return Err(ReplayError::Diverged {
                        accepted: report.accepted,
                        expected: events.len(),
                    });
                }
                self.events += events.len();
                if let Some(totals) = totals {
                    totals.count(&self.scoring.version, events.len() as u64, &rejected);
                }
            }
            Record::Swap {
                version,
                model_sha256,
            } => {
                if self.scoring.model_sha256.as_ref() != Some(&model_sha256) {
                    let onnx = models.get(&model_sha256).map_err(ReplayError::Model)?;
                    swap_in(engine, onnx)?;
                }
                self.scoring = Scoring {
                    version,
                    model_sha256: Some(model_sha256),
                };
            }
        }
        self.records += 1;
        Ok(())
    }
}

/// Loads `onnx` into `engine` and makes it the model scoring.
pub fn swap_in(engine: &mut ScoringEngine, onnx: Arc<[u8]>) -> Result<(), CallError> {
    let model = engine.load_model(onnx)?;
    engine.replace_model(model)
}
