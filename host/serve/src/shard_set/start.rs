//! Every shard's engine at start-up: new, or restored from its files. Each shard's files are
//! read and checked before any engine starts (a refusal comes at once); then the shards are
//! restored side by side, one thread each, since restoring is a component call per snapshot
//! chunk and per log record and shards share nothing.

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use edgescore_runtime::{Runtime, ScoringEngine};

use crate::shard::{self, Replayed};
use crate::storage::DataDir;
use crate::storage::background::{SnapshotWriter, WriterStatus};
use crate::storage::shard_log::{Restored, ShardFiles, restore};
use crate::{ServedModel, ServiceConfig};

pub fn start_shards(
    runtime: &Runtime,
    config: &ServiceConfig,
    active: &ServedModel,
    data: Option<&DataDir>,
) -> Result<(Vec<shard::Started>, Option<Arc<WriterStatus>>)> {
    let began = Instant::now();
    let (files, writer) = match data {
        Some(data) => {
            let files = read_files(data, config.shards)?;
            let generations = files.iter().enumerate();
            let writer =
                SnapshotWriter::start(generations.map(|(i, r)| (i, r.generation())).collect())?;
            (files.into_iter().map(Some).collect(), Some(writer))
        }
        None => ((0..config.shards).map(|_| None).collect::<Vec<_>>(), None),
    };
    let results: Vec<Result<(shard::Started, Replayed)>> = std::thread::scope(|scope| {
        let threads: Vec<_> = files
            .into_iter()
            .enumerate()
            .map(|(index, files)| {
                let writer = writer.clone();
                scope
                    .spawn(move || start_shard(index, runtime, config, active, data, files, writer))
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("a shard's start-up panicked"))
            .collect()
    });
    let mut started = Vec::with_capacity(config.shards);
    let mut events = 0;
    for result in results {
        let (shard, replayed) = result?;
        events += replayed.events;
        started.push(shard);
    }
    match data {
        Some(data) => tracing::info!(
            data_dir = %data.path.display(),
            durability = ?data.durability,
            replayed_events = events,
            elapsed_ms = began.elapsed().as_secs_f64() * 1e3,
            "state restored from the data directory (an empty directory starts empty)"
        ),
        None => {
            tracing::warn!("--ephemeral: the state is kept in memory only; a restart starts empty")
        }
    }
    Ok((started, writer.map(|w| w.status)))
}

/// Every shard's files, read and checked side by side.
fn read_files(data: &DataDir, shards: usize) -> Result<Vec<Restored>> {
    std::thread::scope(|scope| {
        let threads: Vec<_> = (0..shards)
            .map(|index| {
                scope.spawn(move || -> Result<Restored> {
                    let files = ShardFiles::new(&data.path, index)
                        .with_context(|| format!("creating shard {index}'s folder"))?;
                    Ok(restore(files)?)
                })
            })
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("reading a shard's files panicked"))
            .collect()
    })
}

/// One shard's engine on the active model, brought to the state of its `files` if there are.
fn start_shard(
    index: usize,
    runtime: &Runtime,
    config: &ServiceConfig,
    active: &ServedModel,
    data: Option<&DataDir>,
    files: Option<Restored>,
    writer: Option<SnapshotWriter>,
) -> Result<(shard::Started, Replayed)> {
    let mut engine = ScoringEngine::new(runtime, &active.onnx, config.engine)
        .with_context(|| format!("starting shard {index}"))?;
    let budget = state_budget(runtime.limits().memory_bytes, engine.memory_bytes());
    engine
        .set_capacity(budget)
        .with_context(|| format!("starting shard {index}"))?;
    let (Some(files), Some(data), Some(writer)) = (files, data, writer) else {
        let shard = shard::Started::ephemeral(engine, active.version_label());
        return Ok((shard, Replayed::default()));
    };
    let (shard, replayed) =
        shard::Started::restore(engine, active.version_label(), files, data, writer)
            .with_context(|| format!("restoring shard {index}"))?;
    tracing::debug!(
        shard = index,
        generation = replayed.since.generation,
        records = replayed.records,
        events = replayed.events,
        "shard restored"
    );
    Ok((shard, replayed))
}

/// What a shard may hold in state, of a guest memory of `limit` bytes of which `baseline` is in
/// use once the model is loaded: three quarters of the rest, less a reserve for what a call
/// needs beside the state (a merged batch, a snapshot chunk). The quarter left is room for the
/// doubling of the engine's largest tables and the allocator's fragmentation: the guest never
/// traps on its state's size.
pub fn state_budget(limit: usize, baseline: u64) -> u64 {
    const RESERVE: u64 = 8 << 20;
    (limit as u64).saturating_sub(baseline + RESERVE) / 4 * 3
}
