//! The benchmarks, each printing a table (`docs/performance.md` holds their figures):
//!
//! - [`scoring`] (`edgescore bench`): the component against native tract, in this process;
//! - [`app`] (`edgescore bench-app`): the Spin app's cold and warm requests, in this process;
//! - [`http`], [`durable`], [`scaleout`], [`app_stores`] (`edgescore bench-*`): servers started
//!   as processes of this binary (and of the yardsticks beside it), loaded by
//! - [`loadgen`] (`edgescore loadgen`): the load client, also a tool for any deployment.
//!
//! `cargo xtask bench*` builds what a benchmark measures, then runs it from the repository's
//! root: the servers' logs and data go to `target/`.

#[cfg(feature = "spin-app")]
pub mod app;
pub mod app_stores;
pub mod durable;
pub mod http;
pub mod loadgen;
pub mod scaleout;
pub mod scoring;

use std::path::PathBuf;

use anyhow::{Context, Result};

/// A benchmark's one argument.
#[derive(Debug, clap::Args)]
pub struct SecondsArgs {
    /// Seconds per measurement
    #[arg(default_value_t = 10)]
    seconds: u64,
}

/// The folder the benchmark runs in: the repository's root under `cargo xtask`, whose `target/`
/// takes the servers' logs and data.
pub(crate) fn root() -> PathBuf {
    std::env::current_dir().unwrap_or_else(|_| PathBuf::from("."))
}

/// The folder of this binary: the release folder when cargo built it, whose `examples/` holds
/// the yardsticks of `host/cli/examples` and which the servers are started from.
pub(crate) fn release_dir() -> Result<PathBuf> {
    let exe = std::env::current_exe().context("finding this binary")?;
    Ok(exe.parent().context("this binary's folder")?.to_path_buf())
}

/// The Spin CLI: `$EDGESCORE_SPIN`, else `spin` on the `PATH`.
pub(crate) fn spin_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("EDGESCORE_SPIN") {
        return Some(path.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// This disk's `fdatasync` latency, p50 and p99 in ms: 200 appends of 4 KiB, each synced.
pub(crate) fn disk_sync_latency(dir: &std::path::Path) -> Result<(f64, f64)> {
    use std::io::Write;
    let path = dir.join("fdatasync-probe");
    let mut file = std::fs::File::create(&path)?;
    let block = [7u8; 4096];
    let mut millis: Vec<f64> = (0..200)
        .map(|_| {
            file.write_all(&block)?;
            let started = std::time::Instant::now();
            file.sync_data()?;
            Ok(started.elapsed().as_secs_f64() * 1e3)
        })
        .collect::<std::io::Result<_>>()?;
    std::fs::remove_file(&path)?;
    millis.sort_by(f64::total_cmp);
    Ok((millis[100], millis[198]))
}
