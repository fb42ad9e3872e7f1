//! `edgescore serve`: the HTTP service (see `host/src/serve/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use edgescore_serve::{
    self as serve, DriftConfig, DurableConfig, JobsConfig, ServerLimits, Service, ServiceConfig,
    ShardConfig,
};

use crate::args::{DurabilityArgs, EngineArgs, ModelArgs, RuntimeArgs};
use crate::logging::LogArgs;
use crate::signals;

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (0.0.0.0 to accept connections from other hosts)
    #[arg(long, env = "EDGESCORE_ADDR", default_value = "127.0.0.1")]
    addr: std::net::IpAddr,
    /// Port to listen on (0: any free port, printed in the "listening" log line)
    #[arg(long, env = "EDGESCORE_PORT", default_value_t = 8000)]
    port: u16,
    #[command(flatten)]
    engine: EngineArgs,
    /// Shards, each one component instance with its own users [default: one per core]
    #[arg(long, env = "EDGESCORE_SHARDS")]
    shards: Option<usize>,
    /// Largest request body, in bytes (413 above)
    #[arg(long, env = "EDGESCORE_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// Most events in one ingest request (413 above)
    #[arg(long, env = "EDGESCORE_MAX_EVENTS", default_value_t = 10_000)]
    max_events: usize,
    /// Requests waiting per shard before new ones get 503 + Retry-After
    #[arg(long, env = "EDGESCORE_QUEUE_DEPTH", default_value_t = 1024)]
    queue_depth: usize,
    /// Most events scored in one component call when queued requests are merged
    #[arg(long, env = "EDGESCORE_MAX_MERGE_EVENTS", default_value_t = 8192)]
    max_merge_events: usize,
    /// How often a busy shard checkpoints its state, in milliseconds
    #[arg(
        long,
        env = "EDGESCORE_CHECKPOINT_INTERVAL_MS",
        default_value_t = 10_000
    )]
    checkpoint_interval_ms: u64,
    /// Scored events the drift detector's rolling feature means cover
    #[arg(long, env = "EDGESCORE_DRIFT_WINDOW_EVENTS", default_value_t = 1000)]
    drift_window_events: usize,
    /// Shift of a feature's rolling mean from its baseline mean, in baseline standard deviations,
    /// that counts as drift
    #[arg(long, env = "EDGESCORE_DRIFT_THRESHOLD", default_value_t = 0.5)]
    drift_threshold: f64,
    /// Batch jobs scored at once
    #[arg(long, env = "EDGESCORE_BATCH_WORKERS", default_value_t = 1)]
    batch_workers: usize,
    /// Batch jobs waiting for a worker before new ones get 429
    #[arg(long, env = "EDGESCORE_BATCH_QUEUE", default_value_t = 64)]
    batch_queue: usize,
    /// Instances a batch worker scores per component call
    #[arg(long, env = "EDGESCORE_BATCH_CHUNK", default_value_t = 256)]
    batch_chunk: usize,
    /// How long a finished batch job stays readable, in seconds
    #[arg(
        long,
        env = "EDGESCORE_BATCH_RETENTION_SECONDS",
        default_value_t = 3600
    )]
    batch_retention_seconds: u64,
    /// Finished batch jobs kept at most (the oldest is forgotten first)
    #[arg(long, env = "EDGESCORE_BATCH_MAX_FINISHED", default_value_t = 1024)]
    batch_max_finished: usize,
    /// Bytes of finished batch jobs' predictions kept at most (the oldest job goes first)
    #[arg(long, env = "EDGESCORE_BATCH_MAX_RESULT_BYTES", default_value_t = 128 << 20)]
    batch_max_result_bytes: usize,
    /// Time a client has to send a request's head, in milliseconds (then the connection closes)
    #[arg(long, env = "EDGESCORE_HEADER_TIMEOUT_MS", default_value_t = 10_000)]
    header_timeout_ms: u64,
    /// Time a client has to send a request's body, in milliseconds (408 after)
    #[arg(long, env = "EDGESCORE_BODY_TIMEOUT_MS", default_value_t = 30_000)]
    body_timeout_ms: u64,
    /// Time for a whole request but an ingest, in milliseconds (503 after)
    #[arg(long, env = "EDGESCORE_REQUEST_TIMEOUT_MS", default_value_t = 60_000)]
    request_timeout_ms: u64,
    /// Requests handled at once; more get 503 + Retry-After (the probes are not counted)
    #[arg(long, env = "EDGESCORE_MAX_IN_FLIGHT", default_value_t = 512)]
    max_in_flight: usize,
    /// How long shutdown waits for requests in flight, in milliseconds
    #[arg(long, env = "EDGESCORE_SHUTDOWN_TIMEOUT_MS", default_value_t = 30_000)]
    shutdown_timeout_ms: u64,
    /// Where the state is kept (windows, counters, model version, batch jobs)
    /// [default: $XDG_STATE_HOME/edgescore, else ~/.local/state/edgescore]
    #[arg(long, env = "EDGESCORE_DATA_DIR", conflicts_with = "ephemeral")]
    data_dir: Option<PathBuf>,
    /// Keep the state in memory only: a restart starts empty (tests, benchmarks)
    #[arg(long, env = "EDGESCORE_EPHEMERAL")]
    ephemeral: bool,
    #[command(flatten)]
    durability: DurabilityArgs,
    /// A bearer token every route but /health, /ready and /metrics requires [default: none: open]
    #[arg(long, env = "EDGESCORE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    #[command(flatten)]
    log: LogArgs,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

/// Where and how durably the state is kept (none: `--ephemeral`).
fn durable_config(args: &ServeArgs) -> Result<Option<DurableConfig>> {
    if args.ephemeral {
        return Ok(None);
    }
    let dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => crate::data_dir::default_data_dir()?,
    };
    let durability = args.durability.durability()?;
    Ok(Some(DurableConfig { dir, durability }))
}

pub fn run(args: ServeArgs) -> Result<()> {
    let _log_guard = args.log.init()?;
    let config = service_config(&args)?;
    let models = args.model.model_set()?;
    let label = {
        let m = models.active();
        format!("{} version {}", m.name, m.version_label())
    };
    let runtime = args.runtime.runtime()?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async move {
        // Started inside the runtime: the batch workers are tasks on it.
        let shards = config.shards;
        let without_token = config.api_token.is_none();
        let service = Service::start(&runtime, models, config)?;
        let address = SocketAddr::new(args.addr, args.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let address = listener.local_addr()?;
        tracing::info!(
            address = %address,
            url = format!("http://{address}"),
            model = label,
            shards,
            "listening"
        );
        if !address.ip().is_loopback() && without_token {
            tracing::warn!(
                address = %address,
                "listening beyond loopback without an API token: anyone who reaches this port can \
                 ingest, read medians and reload models (set --api-token or EDGESCORE_API_TOKEN)"
            );
        }
        reload_on_hangup(&service);
        let timeout = Duration::from_millis(args.shutdown_timeout_ms);
        signals::serve_until_signalled(
            |shutdown| serve::serve(listener, service, shutdown),
            timeout,
        )
        .await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// The service's settings from the flags, each checked with a sentence naming it.
fn service_config(args: &ServeArgs) -> Result<ServiceConfig> {
    let engine = args.engine.config()?;
    anyhow::ensure!(args.max_events >= 1, "max-events: must be at least 1");
    anyhow::ensure!(args.queue_depth >= 1, "queue-depth: must be at least 1");
    anyhow::ensure!(args.max_in_flight >= 1, "max-in-flight: must be at least 1");
    anyhow::ensure!(args.batch_workers >= 1, "batch-workers: must be at least 1");
    anyhow::ensure!(args.batch_chunk >= 1, "batch-chunk: must be at least 1");
    anyhow::ensure!(
        args.drift_window_events >= 1,
        "drift-window-events: must be at least 1"
    );
    anyhow::ensure!(
        args.drift_threshold.is_finite() && args.drift_threshold > 0.0,
        "drift-threshold: must be a number above 0"
    );
    let durable = durable_config(args)?;
    // A data directory keeps the shard count it was written with (users are placed by shard).
    let written_with = durable
        .as_ref()
        .and_then(|d| serve::storage::shards_in(&d.dir));
    let shards = match args.shards {
        Some(0) => anyhow::bail!("shards: must be at least 1"),
        Some(n) => n,
        None => written_with
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get())),
    };
    Ok(ServiceConfig {
        engine,
        shards,
        shard: ShardConfig {
            queue_depth: args.queue_depth,
            max_merge_events: args.max_merge_events.max(1),
            checkpoint_interval: Duration::from_millis(args.checkpoint_interval_ms),
        },
        max_body_bytes: args.max_body_bytes,
        max_events: args.max_events,
        drift: DriftConfig {
            window_events: args.drift_window_events,
            threshold: args.drift_threshold,
        },
        jobs: JobsConfig {
            workers: args.batch_workers,
            queue: args.batch_queue,
            chunk: args.batch_chunk,
            retention: Duration::from_secs(args.batch_retention_seconds),
            max_finished: args.batch_max_finished,
            max_result_bytes: args.batch_max_result_bytes,
        },
        api_token: args.api_token.clone().filter(|t| !t.is_empty()),
        limits: ServerLimits {
            header_read: Duration::from_millis(args.header_timeout_ms),
            body_read: Duration::from_millis(args.body_timeout_ms),
            request: Duration::from_millis(args.request_timeout_ms),
            max_in_flight: args.max_in_flight,
        },
        durable,
    })
}

/// SIGHUP rescans the registry, like `POST /models/reload`; the outcome is logged.
fn reload_on_hangup(service: &std::sync::Arc<Service>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let Ok(mut hangups) = signal(SignalKind::hangup()) else {
            tracing::warn!("SIGHUP cannot be handled here; reload with POST /models/reload");
            return;
        };
        let service = std::sync::Arc::downgrade(service);
        tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                let Some(service) = service.upgrade() else {
                    return;
                };
                tracing::info!("SIGHUP: reloading the models");
                // Success is logged by the reload itself.
                if let Err(e) = service.reload().await {
                    tracing::error!(error = %e, "SIGHUP reload failed; the models served are unchanged");
                }
            }
        });
    }
    #[cfg(not(unix))]
    let _ = service;
}
