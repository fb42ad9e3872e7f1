//! Everything `edgescore serve` is configured with, and the CLI's defaults.

use std::time::Duration;

use edgescore_types::EngineConfig;

use crate::{DriftConfig, DurableConfig, JobsConfig, ServerLimits, ShardConfig};

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
