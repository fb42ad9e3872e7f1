//! `edgescore serve`: the HTTP API of `docs/http-api.md` on sharded instances of the scoring
//! component, as an axum service.
//!
//! - [`routes`]: the route table (one table builds the router and the route list of `/stats`)
//!   and one module per route family; requests and answers are `edgescore-contract`'s, errors
//!   go through [`error::Error`];
//! - [`shard`]: one thread and one component instance per shard; queued ingests merged into one
//!   component call; rebuild from checkpoint + log after a failure. [`shard_set`]: the shards as one
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
mod config;
mod drift;
mod error;
mod jobs;
mod models;
mod reload;
mod routes;
mod server;
pub mod shard;
mod shard_set;
pub mod storage;
mod telemetry;
mod watermark;

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use edgescore_runtime::Runtime;
use tokio::sync::RwLock;

use catalog::Catalog;
pub use config::ServiceConfig;
pub use drift::DriftConfig;
pub use jobs::JobsConfig;
pub use models::{ModelSet, ModelSource, Predictor, ServedModel};
pub use reload::{ReloadError, ReloadOutcome};
/// The path templates the router serves (`/docs`: Swagger UI's page and files).
pub use routes::paths as route_paths;
pub use server::ServerLimits;
use shard::Shard;
pub use shard::ShardConfig;
use shard_set::Shards;
pub use storage::{DataDir, Durability, DurableConfig};
use telemetry::Counters;
pub use telemetry::Metrics;
use watermark::Watermark;

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
    snapshots: Option<Arc<storage::background::WriterStatus>>,
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
        let data = open_data_dir(&config, &mut models)?;
        let catalog = Catalog::build(runtime, models, config.engine, config.shards, None)?;
        let active = catalog.active();
        let counters = Arc::new(Counters::new(&routes::paths(), catalog.drift(config.drift)));
        counters.metrics.set_build_info(runtime.component_sha256());
        let (started, snapshots) =
            shard_set::start::start_shards(runtime, &config, active, data.as_ref())?;
        let watermark = Arc::new(Watermark::default());
        let spawned = spawn_shards(started, &watermark, &counters, &config)?;
        if let Some(data) = &data {
            resume_storage(data, &catalog, &counters, &watermark, &spawned)?;
        }
        let jobs = start_jobs(&config, &spawned.shards, data.as_ref(), &catalog)?;
        let service = Arc::new(Service {
            runtime: runtime.clone(),
            catalog: RwLock::new(Arc::new(catalog)),
            reloading: tokio::sync::Mutex::default(),
            jobs,
            config,
            shards: Shards::new(spawned.shards),
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
                storage::store::write_counters(&data.path, &self.counters.request_counters())
        {
            tracing::warn!(error = %e, "keeping the request counters failed");
        }
    }

    /// The data directory and its snapshot writer's report, when the state is kept on disk.
    fn storage(&self) -> Option<(&DataDir, &storage::background::WriterStatus)> {
        Some((self.data.as_ref()?, self.snapshots.as_deref()?))
    }

    /// The data directory, when the state is kept on disk.
    pub fn data_dir(&self) -> Option<&std::path::Path> {
        self.data.as_ref().map(|d| d.path.as_path())
    }
}

/// Opens the data directory, if the state is kept on disk, and prefers the model version that
/// was active there before the restart.
fn open_data_dir(config: &ServiceConfig, models: &mut ModelSet) -> Result<Option<DataDir>> {
    let Some(durable) = &config.durable else {
        return Ok(None);
    };
    let data = DataDir::open(durable, config.shards)?;
    if let Some(active) = storage::store::read_active(&data.path)
        && models.prefer(&active.version, &active.sha256)
    {
        tracing::info!(
            version = active.version,
            "serving the model version active before the restart"
        );
    }
    Ok(Some(data))
}

/// The shard threads, started on their restored engines, and what their engines hold.
struct SpawnedShards {
    shards: Vec<Shard>,
    /// What each durable shard had counted, and a handle on its log for the interval syncer.
    totals: Vec<storage::snapshot::ShardTotals>,
    sync_handles: Vec<Arc<std::sync::Mutex<Option<std::fs::File>>>>,
    users: u64,
    events: u64,
}

/// Starts a thread per shard; the service's watermark is raised to the highest shard's.
fn spawn_shards(
    started: Vec<shard::Started>,
    watermark: &Arc<Watermark>,
    counters: &Arc<Counters>,
    config: &ServiceConfig,
) -> Result<SpawnedShards> {
    let mut spawned = SpawnedShards {
        shards: Vec::with_capacity(started.len()),
        totals: Vec::new(),
        sync_handles: Vec::new(),
        users: 0,
        events: 0,
    };
    for (index, mut started) in started.into_iter().enumerate() {
        let stats = started.stats()?;
        if let Some(w) = stats.watermark {
            watermark.raise(w);
        }
        spawned.users += stats.users_tracked;
        spawned.events += stats.events_in_windows;
        if let Some(durable) = started.durable() {
            spawned.totals.push(durable.totals.clone());
            spawned.sync_handles.push(durable.log.sync_handle());
        }
        let shard = Shard::spawn(
            index,
            started,
            watermark.clone(),
            counters.clone(),
            config.shard,
        )
        .context("starting a shard thread")?;
        spawned.shards.push(shard);
    }
    Ok(spawned)
}

/// Carries on from the data directory: the counters it kept, the active version written, and
/// the interval syncer started when the durability mode has one.
fn resume_storage(
    data: &DataDir,
    catalog: &Catalog,
    counters: &Counters,
    watermark: &Watermark,
    spawned: &SpawnedShards,
) -> Result<()> {
    let (users, events) = (spawned.users, spawned.events);
    if users == 0 {
        tracing::info!(data_dir = %data.path.display(), "no user state in the data directory: starting empty");
    } else {
        tracing::info!(data_dir = %data.path.display(), users, events_in_windows = events, watermark = watermark.get(), "user state restored");
    }
    counters.restore(&spawned.totals, &storage::store::read_counters(&data.path));
    let active = storage::store::ActiveModel {
        version: catalog.active().version_label(),
        sha256: catalog.label.sha256.clone(),
    };
    storage::store::write_active(&data.path, &active)
        .context("writing the active model version")?;
    if let Durability::Interval(every) = data.durability {
        let handles = spawned.sync_handles.clone();
        storage::background::start_syncer(handles, every, data.failing.clone())?;
    }
    Ok(())
}

/// The batch workers, which yield to ingest whenever a shard has requests waiting.
fn start_jobs(
    config: &ServiceConfig,
    shards: &[Shard],
    data: Option<&DataDir>,
    catalog: &Catalog,
) -> Result<Arc<jobs::Jobs>> {
    let queues: Vec<_> = shards.iter().map(|s| s.queue.clone()).collect();
    let ingest_waiting = move || queues.iter().any(|q| q.capacity() < q.max_capacity());
    let job_files = match data {
        Some(data) => Some(jobs::JobFiles::open(&data.path).context("the batch jobs' folder")?),
        None => None,
    };
    let predictors = catalog.predictors.clone();
    Ok(jobs::Jobs::start(
        config.jobs,
        ingest_waiting,
        job_files,
        |version| {
            predictors
                .iter()
                .find(|p| p.model.version_label() == version)
                .cloned()
        },
    ))
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
