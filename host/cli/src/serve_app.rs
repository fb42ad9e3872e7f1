//! `edgescore serve-app`: the Spin app served by wasmtime (see `host/src/app/`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use edgescore_app_harness::runtime_config::RuntimeConfig;
use edgescore_app_harness::{App, AppConfig, StoreBackend};
use edgescore_runtime::GuestLimits;

use crate::args::DurabilityArgs;
use crate::logging::LogArgs;
use crate::signals;

#[derive(Debug, Args)]
pub struct ServeAppArgs {
    /// Address to listen on
    #[arg(long, env = "EDGESCORE_ADDR", default_value = "127.0.0.1")]
    addr: std::net::IpAddr,
    /// Port to listen on (`spin up`'s default; 0: any free port)
    #[arg(long, env = "EDGESCORE_PORT", default_value_t = 3000)]
    port: u16,
    /// The app component (.wasm) instead of the one built in
    #[arg(long, env = "EDGESCORE_APP_COMPONENT")]
    component: Option<PathBuf>,
    /// The key-value store the app may open (its `key_value_stores`)
    #[arg(long, env = "EDGESCORE_KV_STORE", default_value = "default")]
    kv_store: String,
    /// Requests one instance serves before a fresh one replaces it (Spin: 128; 1: every request cold)
    #[arg(long, default_value_t = 128)]
    instance_reuse: usize,
    /// Instances alive at once; requests beyond wait for a free one
    #[arg(long, env = "EDGESCORE_MAX_INSTANCES", default_value_t = 64)]
    max_instances: usize,
    /// How long a request waits for a free instance before it gets 503 + Retry-After, in ms
    #[arg(long, env = "EDGESCORE_INSTANCE_WAIT_MS", default_value_t = 5_000)]
    instance_wait_ms: u64,
    /// Largest request body, in bytes (413 as soon as a body passes it)
    #[arg(long, env = "EDGESCORE_MAX_BODY_BYTES", default_value_t = 8 << 20)]
    max_body_bytes: usize,
    /// How long shutdown waits for requests in flight, in milliseconds
    #[arg(long, env = "EDGESCORE_SHUTDOWN_TIMEOUT_MS", default_value_t = 30_000)]
    shutdown_timeout_ms: u64,
    /// The app's window, passed to it as its environment
    #[arg(long, env = "EDGESCORE_WINDOW_SECONDS", default_value_t = 300.0)]
    window_seconds: f64,
    /// The app's allowed clock skew, passed to it as its environment
    #[arg(long, env = "EDGESCORE_MAX_CLOCK_SKEW_SECONDS", default_value_t = 60.0)]
    max_clock_skew_seconds: f64,
    /// Linear memory one instance may use, in MiB
    #[arg(long, env = "EDGESCORE_GUEST_MEMORY_MB", default_value_t = 512)]
    guest_memory_mb: usize,
    /// Wall time one request may take inside the app, in milliseconds
    #[arg(long, env = "EDGESCORE_CALL_TIMEOUT_MS", default_value_t = 10_000)]
    call_timeout_ms: u64,
    /// The app's API token (its Spin variable `api_token`): every route but /health and /ready
    /// requires it [default: none: open]
    #[arg(long, env = "EDGESCORE_API_TOKEN", hide_env_values = true)]
    api_token: Option<String>,
    /// Where the key-value store's SQLite file (app-store.sqlite) is kept, like `spin up`'s
    /// default store [default: $XDG_STATE_HOME/edgescore, else ~/.local/state/edgescore]
    #[arg(long, env = "EDGESCORE_DATA_DIR", conflicts_with = "ephemeral")]
    data_dir: Option<std::path::PathBuf>,
    /// Keep the key-value store in memory only: a restart starts empty (tests, benchmarks)
    #[arg(long, env = "EDGESCORE_EPHEMERAL")]
    ephemeral: bool,
    /// Spin's runtime-config file: where the key-value store is kept (`type = "redis"` with a
    /// `url`, or `type = "spin"` with a SQLite `path`), as `spin up --runtime-config-file` reads it
    #[arg(
        long,
        env = "EDGESCORE_RUNTIME_CONFIG_FILE",
        conflicts_with = "ephemeral"
    )]
    runtime_config_file: Option<PathBuf>,
    #[command(flatten)]
    durability: DurabilityArgs,
    #[command(flatten)]
    log: LogArgs,
}

pub fn run(args: ServeAppArgs) -> Result<()> {
    let _log_guard = args.log.init()?;
    let component = match &args.component {
        Some(path) => std::fs::read(path)
            .with_context(|| format!("reading the app component {}", path.display()))?,
        None => edgescore_embedded::APP.to_vec(),
    };
    let without_token = args.api_token.as_deref().is_none_or(str::is_empty);
    let config = app_config(&args)?;
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    tokio.block_on(async move {
        let (store, durability) = (describe(&config.backend), config.durability);
        let app = App::new(&component, config)?;
        let address = SocketAddr::new(args.addr, args.port);
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .with_context(|| format!("listening on {address}"))?;
        let address = listener.local_addr()?;
        tracing::info!(address = %address, url = format!("http://{address}"), store, durability = ?durability, "listening");
        if !address.ip().is_loopback() && without_token {
            tracing::warn!(
                address = %address,
                "listening beyond loopback without an API token: anyone who reaches this port can \
                 use the API (set --api-token or EDGESCORE_API_TOKEN)"
            );
        }
        let timeout = Duration::from_millis(args.shutdown_timeout_ms);
        signals::serve_until_signalled(|shutdown| app.serve(listener, shutdown), timeout).await?;
        tracing::info!("stopped");
        anyhow::Ok(())
    })
}

/// How the app is run, from the flags, each checked with a sentence naming it.
fn app_config(args: &ServeAppArgs) -> Result<AppConfig> {
    anyhow::ensure!(
        args.instance_reuse >= 1,
        "instance-reuse: must be at least 1"
    );
    anyhow::ensure!(args.max_instances >= 1, "max-instances: must be at least 1");
    Ok(AppConfig {
        store: args.kv_store.clone(),
        backend: store_backend(args)?,
        durability: args.durability.durability()?,
        env: vec![
            ("EDGESCORE_KV_STORE".into(), args.kv_store.clone()),
            (
                "EDGESCORE_WINDOW_SECONDS".into(),
                args.window_seconds.to_string(),
            ),
            (
                "EDGESCORE_MAX_CLOCK_SKEW_SECONDS".into(),
                args.max_clock_skew_seconds.to_string(),
            ),
        ],
        variables: args
            .api_token
            .iter()
            .map(|token| ("api_token".to_string(), token.clone()))
            .collect(),
        reuse: args.instance_reuse,
        max_instances: args.max_instances,
        instance_wait: Duration::from_millis(args.instance_wait_ms),
        max_body_bytes: args.max_body_bytes,
        limits: GuestLimits {
            memory_bytes: args.guest_memory_mb << 20,
            call_timeout: Duration::from_millis(args.call_timeout_ms),
            call_fuel: None,
        },
    })
}

/// Where the app's store is kept: memory (`--ephemeral`), what the runtime-config file says, or
/// by default a SQLite file in the data directory.
fn store_backend(args: &ServeAppArgs) -> Result<StoreBackend> {
    if args.ephemeral {
        return Ok(StoreBackend::Memory);
    }
    let data_dir = match &args.data_dir {
        Some(dir) => dir.clone(),
        None => crate::data_dir::default_data_dir()?,
    };
    let default_sqlite = data_dir.join("app-store.sqlite");
    let backend = match &args.runtime_config_file {
        None => StoreBackend::Sqlite(default_sqlite),
        Some(file) => {
            let mut config = RuntimeConfig::read(file, &default_sqlite)?;
            for section in &config.ignored {
                tracing::warn!(section, file = %file.display(), "a runtime-config section serve-app does not serve: left alone");
            }
            let backend = config.stores.remove(&args.kv_store);
            for unused in config.stores.keys() {
                tracing::warn!(
                    store = unused,
                    "a key-value store the app is not granted (only --kv-store is)"
                );
            }
            backend.unwrap_or(StoreBackend::Sqlite(default_sqlite))
        }
    };
    if let StoreBackend::Sqlite(path) = &backend
        && let Some(folder) = path.parent()
    {
        std::fs::create_dir_all(folder)
            .with_context(|| format!("creating the store's folder {}", folder.display()))?;
    }
    Ok(backend)
}

fn describe(backend: &StoreBackend) -> String {
    match backend {
        StoreBackend::Memory => "memory (--ephemeral)".into(),
        StoreBackend::Sqlite(path) => path.display().to_string(),
        StoreBackend::Redis(url) => redacted(url),
    }
}

/// A Redis URL without its password, for the log.
fn redacted(url: &str) -> String {
    match (url.split_once("://"), url.rfind('@')) {
        (Some((scheme, _)), Some(at)) => format!("{scheme}://***{}", &url[at..]),
        _ => url.to_string(),
    }
}
