//! `edgescore serve`: the HTTP API of `docs/http-api.md` on sharded instances of the scoring
//! component, as an axum service.
//!
//! - [`routes`]: the route table (one table builds the router and the route list of `/stats`)
//!   and one module per route family; requests and answers are `edgescore-contract`'s, errors
//!   go through [`error::Error`];
//! - [`shard`]: one thread and one component instance per shard; queued ingests merged into one
//!   component call; rebuild from checkpoint + log after a failure. [`shards`]: the shards as one
//!   (users by hash, a request queued on all its shards or none);
//! - [`telemetry`]: counters, per-route and component-call metrics, Prometheus exposition;
//! - [`watermark`]: the service-wide watermark;
//! - [`catalog`] / [`models`]: the model versions served now; [`reload`]: swapping one in;
//! - [`jobs`]: batch jobs; [`drift`]: feature drift of the active model.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use edgescore_runtime::{GuestLimits, Runtime};
//! use edgescore_serve::{ModelSet, Service, ServiceConfig};
//!
//! let runtime = Runtime::new(&edgescore_embedded::scoring_component(), GuestLimits::default())?;
//! let models = ModelSet::from_dir(None, None, None)?; // the registry built in
//! let service = Service::start(&runtime, models, ServiceConfig::default())?;
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await?;
//! edgescore_serve::serve(listener, service, std::future::pending()).await?;
//! # Ok(()) }
//! ```

mod catalog;
mod drift;
pub mod durable;
mod error;
mod jobs;
mod models;
mod reload;
mod routes;
mod server;
pub mod shard;
mod shards;
mod telemetry;
mod watermark;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edgescore_runtime::Runtime;
use edgescore_types::EngineConfig;
use tokio::sync::RwLock;

use catalog::Catalog;
pub use drift::DriftConfig;
pub use durable::{DataDir, Durability, DurableConfig};
pub use jobs::JobsConfig;
pub use models::{ModelSet, ModelSource, Predictor, ServedModel};
pub use reload::{ReloadError, ReloadOutcome};
/// The path templates the router serves (`/docs`: Swagger UI's page and files).
pub use routes::paths as route_paths;
pub use server::ServerLimits;
use shard::Shard;
pub use shard::ShardConfig;
use shards::Shards;
use telemetry::Counters;
pub use telemetry::Metrics;
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
    /// When set, every route but `/health`, `/ready` and `/metrics` needs
    /// `Authorization: Bearer <token>`.
    pub api_token: Option<String>,
    /// What one client may take: time to send a request, requests in flight.
    pub limits: ServerLimits,
    /// Where the state is kept on disk (none: in memory only, `--ephemeral`).
    pub durable: Option<DurableConfig>,
}

impl Default for ServiceConfig {
    /// The CLI's defaults, with one shard per core.
    fn default() -> Self {
        ServiceConfig {
            engine: EngineConfig::default(),
            shards: std::thread::available_parallelism().map_or(1, |n| n.get()),
            shard: ShardConfig {
                queue_depth: 1024,
                max_merge_events: 8192,
                checkpoint_interval: Duration::from_secs(10),
            },
            max_body_bytes: 8 << 20,
            max_events: 10_000,
            drift: DriftConfig {
                window_events: 1000,
                threshold: 0.5,
            },
            jobs: JobsConfig {
                workers: 1,
                queue: 64,
                chunk: 256,
                retention: Duration::from_secs(3600),
                max_finished: 1024,
                max_result_bytes: 128 << 20,
            },
            api_token: None,
            limits: ServerLimits::default(),
            durable: None,
        }
    }
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
    shards: Shards,
    watermark: Arc<Watermark>,
    counters: Arc<Counters>,
    started: Instant,
    /// The data directory (none with `--ephemeral`), and what its snapshot writer reports.
    data: Option<DataDir>,
    snapshots: Option<Arc<durable::background::WriterStatus>>,
}

impl Service {
    /// Starts one engine instance per shard on the active model — restored from the data
    /// directory when there is one — scorer instances of every served version for `/predict`,
    /// and the batch workers (on the current tokio runtime).
    pub fn start(
        runtime: &Runtime,
        mut models: ModelSet,
        config: ServiceConfig,
    ) -> Result<Arc<Service>> {
        anyhow::ensure!(config.shards >= 1, "shards: must be at least 1");
        let data = match &config.durable {
            Some(durable) => Some(DataDir::open(durable, config.shards)?),
            None => None,
        };
        if let Some(data) = &data
            && let Some(active) = durable::store::read_active(&data.path)
            && models.prefer(&active.version, &active.sha256)
        {
            tracing::info!(
                version = active.version,
                "serving the model version active before the restart"
            );
        }
        let catalog = Catalog::build(runtime, models, config.engine, config.shards, None)?;
        let active = catalog.active();
        let counters = Arc::new(Counters::new(&routes::paths(), catalog.drift(config.drift)));
        counters.metrics.set_build_info(runtime.component_sha256());
        let (started, snapshots) =
            shards::start::start_shards(runtime, &config, active, data.as_ref())?;
        let watermark = Arc::new(Watermark::default());
        let mut shards = Vec::with_capacity(config.shards);
        let mut totals = Vec::new();
        let mut sync_handles = Vec::new();
        let (mut users, mut events) = (0, 0);
        for (index, mut started) in started.into_iter().enumerate() {
            let stats = started.stats()?;
            if let Some(w) = stats.watermark {
                watermark.raise(w);
            }
            (users, events) = (
                users + stats.users_tracked,
                events + stats.events_in_windows,
            );
            if let Some(durable) = started.durable() {
                totals.push(durable.totals.clone());
                sync_handles.push(durable.log.sync_handle());
            }
            let shard = Shard::spawn(
                index,
                started,
                watermark.clone(),
                counters.clone(),
                config.shard,
            )
            .context("starting a shard thread")?;
            shards.push(shard);
        }
        if let Some(data) = &data {
            if users == 0 {
                tracing::info!(data_dir = %data.path.display(), "no user state in the data directory: starting empty");
            } else {
                tracing::info!(data_dir = %data.path.display(), users, events_in_windows = events, watermark = watermark.get(), "user state restored");
            }
            counters.restore(&totals, &durable::store::read_counters(&data.path));
            durable::store::write_active(
                &data.path,
                &durable::store::ActiveModel {
                    version: active.version_label(),
                    sha256: catalog.label.sha256.clone(),
                },
            )
            .context("writing the active model version")?;
            if let Durability::Interval(every) = data.durability {
                durable::background::start_syncer(sync_handles, every, data.failing.clone())?;
            }
        }
        let queues: Vec<_> = shards.iter().map(|s| s.queue.clone()).collect();
        let ingest_waiting = move || queues.iter().any(|q| q.capacity() < q.max_capacity());
        let job_files = match &data {
            Some(data) => Some(jobs::JobFiles::open(&data.path).context("the batch jobs' folder")?),
            None => None,
        };
        let predictors = catalog.predictors.clone();
        let jobs = jobs::Jobs::start(config.jobs, ingest_waiting, job_files, |version| {
            predictors
                .iter()
                .find(|p| p.model.version_label() == version)
                .cloned()
        });
        let service = Arc::new(Service {
            runtime: runtime.clone(),
            catalog: RwLock::new(Arc::new(catalog)),
            reloading: tokio::sync::Mutex::default(),
            jobs,
            config,
            shards: Shards::new(shards),
            watermark,
            counters,
            started: Instant::now(),
            data,
            snapshots,
        });
        service.keep_counters();
        Ok(service)
    }

    /// The versions served now.
    async fn catalog(&self) -> Arc<Catalog> {
        self.catalog.read().await.clone()
    }

    pub fn router(self: &Arc<Self>) -> axum::Router {
        routes::router(self.clone())
    }

    /// The shard owning a user's window.
    pub fn shard_of(&self, user_id: &str) -> usize {
        self.shards.shard_of(user_id)
    }

    /// Requests being handled now.
    pub fn requests_in_flight(&self) -> u64 {
        Counters::get(&self.counters.in_flight)
    }

    pub fn shards(&self) -> &[Shard] {
        self.shards.all()
    }

    /// Lets every shard finish its queue, then ends the shard threads.
    pub async fn stop(&self) {
        self.shards.stop().await;
        self.save_counters();
    }

    /// Whether writes to the data directory fail now (see [`DataDir::failing`]).
    pub fn storage_failing(&self) -> bool {
        self.data.as_ref().is_some_and(DataDir::failing)
    }

    /// Keeps the request counters in the data directory, every second while they change.
    fn keep_counters(self: &Arc<Self>) {
        if self.data.is_none() {
            return;
        }
        let service = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut last = None;
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let Some(service) = service.upgrade() else {
                    return;
                };
                let now = service.counters.request_counters();
                if last.as_ref() != Some(&now) {
                    let _ = tokio::task::spawn_blocking(move || service.save_counters()).await;
                    last = Some(now);
                }
            }
        });
    }

    fn save_counters(&self) {
        if let Some(data) = &self.data
            && let Err(e) =
                durable::store::write_counters(&data.path, &self.counters.request_counters())
        {
            tracing::warn!(error = %e, "keeping the request counters failed");
        }
    }

    /// The data directory and its snapshot writer's report, when the state is kept on disk.
    fn storage(&self) -> Option<(&DataDir, &durable::background::WriterStatus)> {
        Some((self.data.as_ref()?, self.snapshots.as_deref()?))
    }

    /// The data directory, when the state is kept on disk.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data.as_ref().map(|d| d.path.as_path())
    }
}

/// Serves until `shutdown` resolves, then stops accepting, finishes the requests in flight and
/// drains the shards.
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<Service>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = service.config.limits;
    server::serve(listener, service.router(), limits, shutdown).await?;
    service.stop().await;
    Ok(())
}
