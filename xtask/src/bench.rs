//! `cargo xtask bench*`: builds what a benchmark measures, then runs it from the repository's
//! root. The benchmarks themselves are the `edgescore` binary's subcommands of the same names
//! (`host/cli/src/bench/`; why there: docs/building.md).
//!
//! - `bench [ARGS...]`: the host with native tract (the `native-tract` feature), for
//!   `edgescore bench`'s native column;
//! - `bench-http [SECONDS] [--baseline BINARY]`: the host and the two yardsticks of
//!   `host/cli/examples`;
//! - `bench-durable [SECONDS]`: the host;
//! - `bench-scaleout [SECONDS]`, `bench-app-stores [SECONDS]`: the whole host, and a
//!   `redis-server` on the machine (and Spin, when there is one, for the latter).

use std::process::Command;

use anyhow::Result;

use crate::prerequisites::{REDIS_SERVER, ensure_system_tools};
use crate::{Host, build_component, build_host_release, cargo, host_env, root, step};

/// Builds what benchmark `name` needs, runs `edgescore NAME ARGS`, and exits with its status.
pub fn run(name: &str, args: &[String]) -> Result<()> {
    build_component()?;
    match name {
        "bench" => build_release(
            "the host (release, with native tract)",
            &["--features", "native-tract"],
        )?,
        "bench-http" => build_release(
            "the release host and the two yardsticks",
            &[
                "--bin",
                "edgescore",
                "--example",
                "bare_ingest",
                "--example",
                "native_ingest",
            ],
        )?,
        "bench-durable" => build_release("the release host", &[])?,
        _ => {
            ensure_system_tools(&[REDIS_SERVER])?;
            build_host_release(Host::Whole)?;
        }
    }
    let status = host_env(&mut Command::new(root().join("target/release/edgescore")))
        .current_dir(root())
        .arg(name)
        .args(args)
        .status()?;
    std::process::exit(status.code().unwrap_or(1));
}

fn build_release(what: &str, args: &[&str]) -> Result<()> {
    step(
        &format!("building {what}"),
        host_env(
            cargo()
                .args(["build", "--release", "--package", "edgescore"])
                .args(args),
        ),
    )
}
