//! Structured logs via tracing: JSON lines, or a human format when stdout is a terminal.
//! Lines are written off the request path (a non-blocking writer thread).

use std::io::IsTerminal;

use anyhow::{Context, Result};
use clap::ValueEnum;
use tracing_appender::non_blocking::WorkerGuard;
use tracing_subscriber::EnvFilter;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human format on a terminal, JSON otherwise.
    Auto,
    Json,
    Text,
}

/// Installs the global subscriber; keep the guard alive until exit so every line is written.
pub fn init(format: LogFormat, filter: &str) -> Result<WorkerGuard> {
    let filter = EnvFilter::try_new(filter)
        .with_context(|| format!("log level: {filter:?} is not a valid filter (try \"info\")"))?;
    let json = match format {
        LogFormat::Auto => !std::io::stdout().is_terminal(),
        LogFormat::Json => true,
        LogFormat::Text => false,
    };
    let (writer, guard) = tracing_appender::non_blocking(std::io::stdout());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(writer);
    let installed = if json {
        builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .try_init()
    } else {
        builder.try_init()
    };
    installed.map_err(|e| anyhow::anyhow!("installing the logger: {e}"))?;
    Ok(guard)
}

/// The log flags `serve` and `serve-app` share.
#[derive(Debug, Clone, clap::Args)]
pub struct LogArgs {
    /// Log format
    #[arg(long, env = "EDGESCORE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Auto)]
    log_format: LogFormat,
    /// Log filter: a level (error, warn, info, debug) or tracing directives
    #[arg(long, env = "EDGESCORE_LOG", default_value = "info")]
    log: String,
}

impl LogArgs {
    /// Installs the subscriber; logs are written until the guard is dropped.
    pub fn init(&self) -> Result<WorkerGuard> {
        init(self.log_format, &self.log)
    }
}
