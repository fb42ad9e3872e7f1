//! Hot reload (`POST /models/reload`, SIGHUP): the registry is scanned again and what changed is
//! loaded off the request path — the scorer pools first, then the new active model inside every
//! shard's instance while the old one keeps scoring. Then a place is reserved in every shard's
//! queue (waiting for room holds no lock), and only then does one short write lock on the catalog
//! hold new ingests back while a `Swap` is sent to every shard without waiting: each shard
//! switches at the same point of the ingest order, and the windows keep their history.
//!
//! A reload runs in a task of its own, so a client that goes away does not stop it half-way; a
//! shard that fails its swap makes the whole reload roll back to the previous version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio::sync::oneshot;

use edgescore_contract::ApiError;
use edgescore_contract::models::{ModelEntry, ModelLabel};

use crate::Service;
use crate::catalog::Catalog;
use crate::shard::{Command, ShardError};

/// A reload's answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
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

impl From<ReloadError> for ApiError {
    fn from(e: ReloadError) -> Self {
        match e {
            ReloadError::Registry(_) => ApiError::conflict(e.to_string()),
            ReloadError::Failed(_) => ApiError::internal(e.to_string()),
        }
    }
}

impl Service {
    /// Rescans the registry and swaps a new active version in; one reload at a time. Runs in a
    /// task of its own: it finishes (or rolls back) even if the caller goes away.
    pub async fn reload(self: &Arc<Self>) -> Result<ReloadOutcome, ReloadError> {
        let service = self.clone();
        tokio::spawn(async move { service.reload_now().await })
            .await
            .map_err(|e| ReloadError::Failed(format!("the reload task failed: {e}")))?
    }

    async fn reload_now(self: &Arc<Self>) -> Result<ReloadOutcome, ReloadError> {
        let _one_at_a_time = self.reloading.lock().await;
        let started = Instant::now();
        let current = self.catalog().await;
        let next = Arc::new(self.next_catalog(&current).await?);
        let swapped = next.label != current.label;
        let loaded = started.elapsed();
        let mut held = Duration::ZERO;
        if swapped {
            self.prepare(&next).await?;
            let prepared = started.elapsed();
            held = self.switch_to(&next, &current).await?;
            self.keep_active(&next);
            tracing::debug!(
                prepare_ms = (prepared - loaded).as_secs_f64() * 1e3,
                "the new model was loaded into every shard"
            );
        } else {
            *self.catalog.write().await = next.clone();
        }
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
            // Scanning and loading the scorer pools; how long new ingests were held back;
            // everything.
            load_ms = loaded.as_secs_f64() * 1e3,
            hold_ms = held.as_secs_f64() * 1e3,
            total_ms = started.elapsed().as_secs_f64() * 1e3,
            "models reloaded"
        );
        Ok(outcome)
    }

    /// The registry scanned again and its scorer pools loaded (off the async workers: tract
    /// loads the models), reusing the pools of versions that did not change.
    async fn next_catalog(
        self: &Arc<Self>,
        current: &Arc<Catalog>,
    ) -> Result<Catalog, ReloadError> {
        let (service, previous) = (self.clone(), current.clone());
        tokio::task::spawn_blocking(move || {
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
        .map_err(|e| ReloadError::Registry(format!("{e:#}")))
    }

    /// Loads `catalog`'s active model into every shard's instance, beside the one scoring now.
    async fn prepare(&self, catalog: &Catalog) -> Result<(), ReloadError> {
        let onnx = catalog.active().onnx.clone();
        let mut answers = Vec::new();
        for permit in self.reserve_every_shard().await {
            let (reply, answer) = oneshot::channel();
            let onnx = onnx.clone();
            permit.send(Command::Prepare { onnx, reply });
            answers.push(answer);
        }
        let failed = failures(answers).await;
        if failed.is_empty() {
            return Ok(());
        }
        Err(failed_reload("loading the new model", &failed))
    }

    /// Swaps every shard to `next`'s active model at one point of the ingest order and makes
    /// `next` the catalog; returns how long new ingests were held back. If a shard fails its
    /// swap, the shards that swapped are switched back and `previous` stays the catalog.
    async fn switch_to(
        &self,
        next: &Arc<Catalog>,
        previous: &Arc<Catalog>,
    ) -> Result<Duration, ReloadError> {
        let (answers, held) = self.swap_every_shard(next).await;
        let failed = failures(answers).await;
        if failed.is_empty() {
            return Ok(held);
        }
        let error = failed_reload("swapping the new model in", &failed);
        let failed_shards: Vec<usize> = failed.iter().map(|(shard, _)| *shard).collect();
        tracing::warn!(
            ?failed_shards,
            "rolling every shard back to the previous model"
        );
        // The failed shards rebuild onto the previous model (a failed swap is not logged); the
        // others load it again and swap back, all at one point of the ingest order.
        if let Err(rollback) = self.prepare(previous).await {
            tracing::error!(error = %rollback, "rolling back: loading the previous model failed");
        }
        let (answers, _) = self.swap_every_shard(previous).await;
        let still = failures(answers).await;
        if !still.is_empty() {
            tracing::error!(failures = ?still, "rolling back: some shards could not swap back");
        }
        Err(error)
    }

    /// One place in every shard's queue, in shard order, waiting for room where needed: no lock
    /// is held while waiting.
    async fn reserve_every_shard(&self) -> Vec<tokio::sync::mpsc::OwnedPermit<Command>> {
        let mut permits = Vec::with_capacity(self.shards.all().len());
        for shard in self.shards.all() {
            // A stopped shard has no queue: its answer reports it (a dropped reply).
            if let Ok(permit) = shard.queue.clone().reserve_owned().await {
                permits.push(permit);
            }
        }
        permits
    }

    /// Queues `catalog`'s swap on every shard and makes it the catalog, under the write lock
    /// that ingest holds (for reading) while it queues a request: every request lands wholly
    /// before or after the swap on every shard. The places are reserved first, so the lock is
    /// held only for sends that cannot wait.
    async fn swap_every_shard(&self, catalog: &Arc<Catalog>) -> (Vec<Answer>, Duration) {
        fail::fail_point!("reload-swap");
        let permits = self.reserve_every_shard().await;
        let version = catalog.active().version_label();
        let mut answers = Vec::with_capacity(permits.len());
        let mut current = self.catalog.write().await;
        let locked = Instant::now();
        for permit in permits {
            let (reply, answer) = oneshot::channel();
            let version = version.clone();
            permit.send(Command::Swap { version, reply });
            answers.push(answer);
        }
        if let Ok(mut drift) = self.counters.drift.lock() {
            *drift = catalog.drift(self.config.drift);
        }
        *current = catalog.clone();
        (answers, locked.elapsed())
    }
}

impl Service {
    /// Keeps the active version in the data directory: a restart serves it again.
    fn keep_active(&self, catalog: &Catalog) {
        let Some(dir) = self.data_dir() else { return };
        let active = crate::storage::store::ActiveModel {
            version: catalog.active().version_label(),
            sha256: catalog.label.sha256.clone(),
        };
        if let Err(e) = crate::storage::store::write_active(dir, &active) {
            tracing::error!(error = %e, "keeping the active model version failed; a restart may serve another version");
        }
    }
}

type Answer = oneshot::Receiver<Result<(), ShardError>>;

/// The shards that failed, and why.
async fn failures(answers: Vec<Answer>) -> Vec<(usize, String)> {
    let mut failed = Vec::new();
    for (shard, answer) in answers.into_iter().enumerate() {
        match answer.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failed.push((shard, e.to_string())),
            Err(_) => failed.push((shard, format!("shard {shard}: stopped"))),
        }
    }
    failed
}

fn failed_reload(doing: &str, failed: &[(usize, String)]) -> ReloadError {
    let reasons: Vec<&str> = failed.iter().map(|(_, why)| why.as_str()).collect();
    tracing::error!(?reasons, "reload failed {doing}");
    ReloadError::Failed(format!("{doing}: {}", reasons.join("; ")))
}
