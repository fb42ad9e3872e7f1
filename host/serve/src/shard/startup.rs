//! What a shard starts from: an empty engine (`--ephemeral`, or a new data directory), or its
//! files — the newest valid snapshot restored into the engine and its logs replayed, each record
//! doing again what it did the first time (the same events recorded, the same models swapped in,
//! the same counts).

use anyhow::{Context, Result, bail};
use edgescore_runtime::ScoringEngine;
use edgescore_types::EngineStats;

use super::recovery::Recovery;
use crate::durable::background::SnapshotWriter;
use crate::durable::record::Record;
use crate::durable::shard::ShardDurable;
use crate::durable::shard_log::{LogMark, Restored};
use crate::durable::snapshot::ShardTotals;
use crate::durable::{DataDir, store};

/// A shard's engine and what its thread carries on with.
pub struct Started {
    pub(super) engine: ScoringEngine,
    pub(super) version: String,
    pub(super) recovery: Recovery,
    pub(super) durable: Option<ShardDurable>,
}

/// What was replayed, for the start-up log line.
#[derive(Debug, Default, Clone, Copy)]
pub struct Replayed {
    pub generation: u64,
    pub records: usize,
    pub events: usize,
}

impl Started {
    /// The engine's stats (its watermark and what it holds, after a restore).
    pub fn stats(&mut self) -> Result<EngineStats> {
        Ok(self.engine.stats()?)
    }

    pub fn durable(&self) -> Option<&ShardDurable> {
        self.durable.as_ref()
    }

    /// `engine` as it is, nothing kept on disk.
    pub fn ephemeral(engine: ScoringEngine, version: String) -> Started {
        Started {
            recovery: Recovery::in_memory(version.clone()),
            engine,
            version,
            durable: None,
        }
    }

    /// `engine` (new, on the active model `version`) brought to the state its files hold; then
    /// switched to the active model if the files end on another one.
    pub fn restore(
        mut engine: ScoringEngine,
        version: String,
        restored: Restored,
        data: &DataDir,
        writer: SnapshotWriter,
    ) -> Result<(Started, Replayed)> {
        let mut replayed = Replayed {
            generation: restored.generation(),
            records: restored.records.len(),
            events: 0,
        };
        // The engine's checkpoint is the base: the records after it are every log's from the
        // base's generation on.
        let since = LogMark {
            generation: restored.generation(),
            offset: 0,
        };
        let Restored { base, records, log } = restored;
        let active_onnx = engine.model().clone();
        let (mut current, mut sha, mut totals) = match base {
            Some((meta, chunks)) => {
                let onnx = data.models.get(&meta.model_sha256)?;
                engine
                    .restore_checkpoint(Some(chunks), onnx)
                    .context("restoring the snapshot into the component")?;
                // The snapshot's file is the copy a rebuild reads back: none stays in memory.
                engine.release_checkpoint();
                (meta.version, meta.model_sha256, meta.totals)
            }
            None => (
                version.clone(),
                store::sha256_hex(&active_onnx),
                ShardTotals::default(),
            ),
        };
        let mut recovery = Recovery::logged(current.clone(), since);
        let shard = log.files.shard;
        for record in records {
            match record {
                Record::Ingest {
                    now,
                    events,
                    rejected,
                } => {
                    let events: Vec<_> = events.into_iter().map(|e| e.into_guest()).collect();
                    let report = engine.ingest_guest_events(&events, now)?;
                    if report.accepted as usize != events.len() {
                        bail!(
                            "shard {shard}: replaying the log, the component accepted {} of {} events it had accepted before",
                            report.accepted,
                            events.len()
                        );
                    }
                    replayed.events += events.len();
                    totals.count(&current, events.len() as u64, &rejected);
                    recovery.ingested(events, now);
                }
                Record::Advance { watermark } => {
                    engine.advance(watermark)?;
                    recovery.advanced(watermark);
                }
                Record::Swap {
                    version,
                    model_sha256,
                } => {
                    let onnx = data.models.get(&model_sha256)?;
                    if model_sha256 != sha {
                        let model = engine.load_model(onnx.clone())?;
                        engine.replace_model(model)?;
                    }
                    recovery.swapped(onnx, version.clone());
                    (current, sha) = (version, model_sha256);
                }
            }
        }
        let mut durable = ShardDurable {
            log,
            durability: data.durability,
            writer,
            models: data.models.clone(),
            totals,
            model_sha256: sha.clone(),
            failing: data.failing.clone(),
        };
        // A new log begins with the model scoring (what its first records were scored with is
        // then never in doubt), and a restart on another active model switches to it.
        let active_sha = store::sha256_hex(&active_onnx);
        if replayed.records == 0 || active_sha != sha || current != version {
            if active_sha != sha {
                let model = engine.load_model(active_onnx.clone())?;
                engine.replace_model(model)?;
            }
            durable
                .swapped(&version, &active_onnx)
                .with_context(|| format!("shard {shard}: writing its log"))?;
            recovery.swapped(active_onnx, version.clone());
            current = version;
        }
        let started = Started {
            engine,
            version: current,
            recovery,
            durable: Some(durable),
        };
        Ok((started, replayed))
    }
}
