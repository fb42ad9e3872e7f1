//! `edgescore serve`: the HTTP service (see `host/src/serve/`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use edgescore_host::serve::{self, DriftConfig, JobsConfig, Service, ServiceConfig, ShardConfig};

use super::logging::{self, LogFormat};
use super::{EngineArgs, ModelArgs, RuntimeArgs};

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
    /// Relative deviation of a feature's rolling mean from its baseline that counts as drift
    #[arg(long, env = "EDGESCORE_DRIFT_THRESHOLD", default_value_t = 0.2)]
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
    /// How long shutdown waits for requests in flight, in milliseconds
    #[arg(long, env = "EDGESCORE_SHUTDOWN_TIMEOUT_MS", default_value_t = 30_000)]
    shutdown_timeout_ms: u64,
    /// Log format
    #[arg(long, env = "EDGESCORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug) or tracing directives
    #[arg(long, env = "EDGESCORE_LOG", default_value = "info")]
    log: String,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn run(args: ServeArgs) -> Result<()> {
    let _log_guard = logging::init(args.log_format, &args.log)?;
    let engine = args.engine.config()?;
    anyhow::ensure!(args.max_events >= 1, "max-events: must be at least 1");
    anyhow::ensure!(args.queue_depth >= 1, "queue-depth: must be at least 1");
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
    let shards = match args.shards {
        Some(0) => anyhow::bail!("shards: must be at least 1"),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };
    let config = ServiceConfig {
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
        },
    };
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
        reload_on_hangup(&service);
        let timeout = Duration::from_millis(args.shutdown_timeout_ms);
        let (stop, stopping) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            shutdown_signal().await;
            let _ = stop.send(true);
        });
        let signalled = move || {
            let mut stopping = stopping.clone();
            async move {
                let _ = stopping.wait_for(|&s| s).await;
            }
        };
        let serving = serve::serve(listener, service, signalled());
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => result?,
            () = async { signalled().await; tokio::time::sleep(timeout).await } => {
                tracing::warn!(timeout_ms = args.shutdown_timeout_ms, "requests still in flight at the shutdown timeout; exiting");
            }
        }
        tracing::info!("stopped");
        anyhow::Ok(())
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

/// SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
