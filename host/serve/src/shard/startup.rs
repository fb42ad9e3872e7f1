//! What a shard starts from: an empty engine (`--ephemeral`, or a new data directory), or its
//! files — the newest valid snapshot restored into the engine and its logs replayed, each record
//! doing again what it did the first time (the same events recorded, the same models swapped in,
//! the same counts).

use std::sync::Arc;

use anyhow::{Context, Result};
use edgescore_runtime::{Chunks, ScoringEngine};
use edgescore_types::EngineStats;

use super::recovery::Recovery;
use super::replay::{self, Replayed, Scoring};
use crate::storage::background::SnapshotWriter;
use crate::storage::committer::Committer;
use crate::storage::shard::ShardDurable;
use crate::storage::shard_log::{Restored, ShardLog};
use crate::storage::snapshot::{ShardTotals, SnapshotMeta};
use crate::storage::{DataDir, Durability, store};

/// A shard's engine and what its thread carries on with.
pub struct Started {
    pub(super) engine: ScoringEngine,
    pub(super) version: String,
    pub(super) recovery: Recovery,
    pub(super) durable: Option<ShardDurable>,
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
        let since = restored.since();
        let Restored { base, log } = restored;
        let active_onnx = engine.model().clone();
        let active_sha = store::sha256_hex(&active_onnx);
        let (at_checkpoint, mut totals) = restore_base(
            &mut engine,
            data,
            base,
            Scoring {
                version: version.clone(),
                model_sha256: Some(active_sha.clone()),
            },
        )?;
        let shard = log.files.shard;
        let checkpoint_totals = totals.clone();
        let mut recovery = Recovery::logged(at_checkpoint.version.clone(), since);
        let replayed = replay::replay_log(
            &mut engine,
            &log,
            &data.models,
            since,
            at_checkpoint,
            Some(&mut totals),
        )
        .with_context(|| format!("shard {shard}: replaying its log"))?;
        recovery.replayed(replayed.records, replayed.events);
        let Scoring {
            version: mut current,
            model_sha256,
        } = replayed.scoring.clone();
        let sha = model_sha256.expect("a start knows the model of its snapshot");
        let mut durable = shard_durable(data, log, writer, totals, checkpoint_totals, sha.clone())?;
        // A new log begins with the model scoring (what its first records were scored with is
        // then never in doubt), and a restart on another active model switches to it.
        if replayed.records == 0 || active_sha != sha || current != version {
            if active_sha != sha {
                replay::swap_in(&mut engine, active_onnx.clone())?;
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

/// Restores the snapshot `base` into `engine`; returns the model scoring at it and what the
/// shard had counted then. Without one the shard starts empty, on the model `empty` names.
fn restore_base(
    engine: &mut ScoringEngine,
    data: &DataDir,
    base: Option<(SnapshotMeta, Arc<Chunks>)>,
    empty: Scoring,
) -> Result<(Scoring, ShardTotals)> {
    let Some(base) = base else {
        return Ok((empty, ShardTotals::default()));
    };
    let meta = replay::restore_snapshot(engine, &data.models, base)
        .context("restoring the snapshot into the component")?;
    let scoring = Scoring {
        version: meta.version,
        model_sha256: Some(meta.model_sha256),
    };
    Ok((scoring, meta.totals))
}

/// The shard's files, open for it to carry on: what it had counted in all and at its
/// checkpoint, the model scoring, and with `--durability fsync` its committer (what the log
/// holds now was read back from the disk).
fn shard_durable(
    data: &DataDir,
    log: ShardLog,
    writer: SnapshotWriter,
    totals: ShardTotals,
    checkpoint_totals: ShardTotals,
    model_sha256: String,
) -> Result<ShardDurable> {
    let shard = log.files.shard;
    let committer = (data.durability == Durability::Fsync)
        .then(|| Committer::start(shard, log.sync_handle(), log.mark()))
        .transpose()
        .with_context(|| format!("shard {shard}: starting its committer"))?;
    Ok(ShardDurable {
        log,
        durability: data.durability,
        writer,
        models: data.models.clone(),
        totals,
        checkpoint_totals,
        committer,
        model_sha256,
        failing: data.failing.clone(),
    })
}
