//! Hot reload (`POST /models/reload`, SIGHUP): the registry is scanned again and what changed is
//! loaded off the request path — the scorer pools first, then the new active model inside every
//! shard's instance while the old one keeps scoring. Only then does one short write lock on the
//! catalog hold new ingests back while a `Swap` is queued on every shard: each shard switches at
//! the same point of the ingest order, and the windows keep their history.

use std::sync::Arc;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::oneshot;

use super::Service;
use super::catalog::{Catalog, ModelLabel};
use super::models::ModelEntry;
use super::shard::{Command, ShardError};

/// A reload's answer.
#[derive(Debug, Clone, Serialize)]
pub struct ReloadOutcome {
    /// True when the active model changed (a new version, or new bytes under the same version).
    pub swapped: bool,
    pub previous: ModelLabel,
    pub active: ModelLabel,
    pub models: Vec<ModelEntry>,
    pub skipped: Vec<String>,
}

#[derive(Debug, Clone, thiserror::Error)]
pub enum ReloadError {
    /// Nothing servable was found (or there is no registry); the service keeps its models.
    #[error("reload: {0}")]
    Registry(String),
    /// A shard could not load or swap in the new model.
    #[error("reload: {0}")]
    Failed(String),
}

impl ReloadError {
    pub fn status(&self) -> u16 {
        match self {
            ReloadError::Registry(_) => 409,
            ReloadError::Failed(_) => 500,
        }
    }
}

impl Service {
    /// Rescans the registry and swaps a new active version in; one reload at a time.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadOutcome, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let current = self.catalog().await;
        let (service, previous) = (self.clone(), current.clone());
        let next = tokio::task::spawn_blocking(move || {
            let models = previous.models.rescan()?;
            Catalog::build(
                &service.runtime,
                models,
                service.config.engine,
                service.config.shards,
                Some(&previous),
            )
        })
        .await
        .map_err(|e| ReloadError::Failed(e.to_string()))?
        .map_err(|e| ReloadError::Registry(format!("{e:#}")))?;

        let swapped = next.label != current.label;
        let loaded = started.elapsed();
        if swapped {
            let onnx = next.active().onnx.clone();
            let answers = self
                .on_every_shard(|reply| Command::Prepare {
                    onnx: onnx.clone(),
                    reply,
                })
                .await;
            collect(answers, "loading the new model").await?;
        }
        let prepared = started.elapsed();
        let next = Arc::new(next);
        let (swaps, held) = {
            let mut catalog = self.catalog.write().await;
            let locked = Instant::now();
            let version = next.active().version_label();
            let swaps = if swapped {
                self.on_every_shard(|reply| Command::Swap {
                    version: version.clone(),
                    reply,
                })
                .await
            } else {
                Vec::new()
            };
            if swapped && let Ok(mut drift) = self.counters.drift.lock() {
                *drift = next.drift(self.config.drift);
            }
            *catalog = next.clone();
            (swaps, locked.elapsed())
        };
        collect(swaps, "swapping the new model in").await?;
        let outcome = ReloadOutcome {
            swapped,
            previous: current.label.clone(),
            active: next.label.clone(),
            models: next.entries(),
            skipped: next.models.skipped.clone(),
        };
        tracing::info!(
            swapped,
            previous = outcome.previous.version,
            active = outcome.active.version,
            sha256 = outcome.active.sha256,
            skipped = outcome.skipped.len(),
            // Scanning and loading the scorer pools; loading into the shards; how long new
            // ingests were held back; everything.
            load_ms = loaded.as_secs_f64() * 1e3,
            prepare_ms = (prepared - loaded).as_secs_f64() * 1e3,
            hold_ms = held.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "models reloaded"
        );
        Ok(outcome)
    }

    /// Queues one command on every shard (waiting for room), in shard order.
    async fn on_every_shard(
        &self,
        command: impl Fn(oneshot::Sender<Result<(), ShardError>>) -> Command,
    ) -> Vec<oneshot::Receiver<Result<(), ShardError>>> {
        let mut answers = Vec::with_capacity(self.shards.len());
        for shard in &self.shards {
            let (reply, answer) = oneshot::channel();
            // A stopped shard drops the command; its answer then reports it.
            let _ = shard.queue.send(command(reply)).await;
            answers.push(answer);
        }
        answers
    }
}

async fn collect(
    answers: Vec<oneshot::Receiver<Result<(), ShardError>>>,
    doing: &str,
) -> Result<(), ReloadError> {
    let mut failures = Vec::new();
    for (shard, answer) in answers.into_iter().enumerate() {
        match answer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failures.push(e.to_string()),
            Err(_) => failures.push(format!("shard {shard}: stopped")),
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        tracing::error!(?failures, "reload failed {doing}");
        Err(ReloadError::Failed(format!(
            "{doing}: {}",
            failures.join("; ")
        )))
    }
}
