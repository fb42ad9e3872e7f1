//! `edgescore serve`: the HTTP API of `shared/spec/http-api.md` on sharded instances of the
//! scoring component.
//!
//! - [`shard`]: one thread and one component instance per shard; users are split by hash; queued
//!   ingests are merged into one component call; rebuild from checkpoint + log after a failure.
//! - [`routes`]: the axum router and handlers (request parsing and bodies come from
//!   `edgescore_core::api`, shared with the Spin app).
//! - [`stats`]: the service's counters and latency histograms; [`metrics`]: per-route and
//!   component-call metrics and their Prometheus exposition.
//! - [`watermark`]: the service-wide watermark.
//! - [`catalog`]: the model versions served now; [`reload`]: swapping a new version in.

mod catalog;
mod drift;
mod jobs;
mod metrics;
mod models;
mod reload;
mod routes;
pub mod shard;
mod stats;
mod watermark;

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result};
use edgescore_core::EngineConfig;
use tokio::sync::RwLock;

use crate::guest::ScoringEngine;
use crate::runtime::Runtime;
use catalog::Catalog;
pub use catalog::ModelLabel;
pub use drift::DriftConfig;
pub use jobs::JobsConfig;
pub use models::{ModelSet, ModelSource, Predictor, ServedModel};
pub use reload::{ReloadError, ReloadOutcome};
use shard::Shard;
pub use shard::ShardConfig;
use stats::Counters;
use watermark::Watermark;

/// Everything the service is configured with (flags and `EDGESCORE_*` variables in the CLI).
#[derive(Debug, Clone)]
pub struct ServiceConfig {
    pub engine: EngineConfig,
    pub shards: usize,
    pub shard: ShardConfig,
    /// Largest request body accepted, in bytes (413 above).
    pub max_body_bytes: usize,
    /// Most events accepted in one ingest request (413 above).
    pub max_events: usize,
    pub drift: DriftConfig,
    pub jobs: JobsConfig,
}

/// The running service: shards, watermark and counters, shared by every request handler.
pub struct Service {
    config: ServiceConfig,
    runtime: Runtime,
    /// Ingest holds it for reading while it judges and queues a request; a reload takes it for
    /// writing to queue its swap on every shard at one point of the ingest order.
    catalog: RwLock<Arc<Catalog>>,
    reloading: tokio::sync::Mutex<()>,
    jobs: Arc<jobs::Jobs>,
    shards: Vec<Shard>,
    watermark: Arc<Watermark>,
    counters: Arc<Counters>,
    started: Instant,
}

impl Service {
    /// Starts one engine instance per shard on the active model, scorer instances of every
    /// served version for `/predict`, and the batch workers (on the current tokio runtime).
    pub fn start(
        runtime: &Runtime,
        models: ModelSet,
        config: ServiceConfig,
    ) -> Result<Arc<Service>> {
        anyhow::ensure!(config.shards >= 1, "shards: must be at least 1");
        let catalog = Catalog::build(runtime, models, config.engine, config.shards, None)?;
        let active = catalog.active();
        let watermark = Arc::new(Watermark::default());
        let counters = Arc::new(Counters::new(routes::ROUTES, catalog.drift(config.drift)));
        let mut shards = Vec::with_capacity(config.shards);
        for index in 0..config.shards {
            let engine = ScoringEngine::new(runtime, &active.onnx, config.engine)
                .with_context(|| format!("starting shard {index}"))?;
            let shard = Shard::spawn(
                index,
                engine,
                active.version_label(),
                watermark.clone(),
                counters.clone(),
                config.shard,
            )
            .context("starting a shard thread")?;
            shards.push(shard);
        }
        let queues: Vec<_> = shards.iter().map(|s| s.queue.clone()).collect();
        let ingest_waiting = move || queues.iter().any(|q| q.capacity() < q.max_capacity());
        let jobs = jobs::Jobs::start(config.jobs, ingest_waiting);
        Ok(Arc::new(Service {
            runtime: runtime.clone(),
            catalog: RwLock::new(Arc::new(catalog)),
            reloading: tokio::sync::Mutex::default(),
            jobs,
            config,
            shards,
            watermark,
            counters,
            started: Instant::now(),
        }))
    }

    /// The versions served now.
    async fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().await.clone()
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        routes::router(self.clone())
    }

    /// The shard owning a user's window (a fixed hash: the same user always lands on the same
    /// shard, in this process and the next).
    pub fn shard_of(&self, user_id: &str) -> usize {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user_id);
        (hash % self.shards.len() as u64) as usize
    }

    /// Requests being handled now.
    pub fn requests_in_flight(&self) -> u64 {
        Counters::get(&self.counters.in_flight)
    }

    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// Lets every shard finish its queue, then ends the shard threads.
    pub async fn stop(&self) {
        for shard in &self.shards {
            shard.stop().await;
        }
    }
}

/// Serves until `shutdown` resolves, then stops accepting, finishes the requests in flight and
/// drains the shards.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, service.router())
        .with_graceful_shutdown(shutdown)
        .await?;
    service.stop().await;
    Ok(())
}
