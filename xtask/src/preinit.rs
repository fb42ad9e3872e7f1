//! The scoring component ships pre-initialized: `edgescore-preinit` (`host/preinit`, wasmtime
//! wizer) runs its `preload` export once and writes the component with that state as its initial
//! state, so that no instance parses and optimizes the default model again (the cold start).
//!
//! The tool builds in release beside the host, in one cargo invocation that names both packages
//! (`--bin` then builds the tool alone): cargo resolves the features of wasmtime and its
//! dependencies for the packages named, and named together they resolve as for the host alone,
//! so the tool reuses the host's wasmtime and Cranelift. Built on its own it resolved others and
//! compiled a second wasmtime, ~3 min of a first run on 2 cores.

use std::path::{Path, PathBuf};
use std::process::{Child, Command};

use anyhow::{Context, Result, bail};

use crate::{Host, cargo, root, step, write_if_changed};

pub(crate) struct Tool {
    build: Child,
}

fn binary() -> PathBuf {
    root().join("target/release/edgescore-preinit")
}

/// The packages whose features the tool's build resolves: the host's (see the module's comment).
pub(crate) const WITH_THE_HOST: [&str; 4] =
    ["--package", "edgescore", "--package", "edgescore-preinit"];

/// Starts building the tool (a no-op once built), with the features of the `host` built beside.
pub(crate) fn start(host: Host) -> Result<Tool> {
    let build = cargo()
        .args(["build", "--quiet", "--release"])
        .args(WITH_THE_HOST)
        .args(host.features())
        .args(["--bin", "edgescore-preinit"])
        .spawn()
        .context("starting cargo")?;
    Ok(Tool { build })
}

/// Writes the pre-initialized copy of `built` to `shipped`, unless `shipped` is newer than both
/// `built` and the tool (the copy is not byte-for-byte reproducible: the instance's random hash
/// seeds are in it, so it is made again only when its inputs change).
pub(crate) fn preinitialize(mut tool: Tool, built: &Path, shipped: &Path) -> Result<()> {
    let status = tool.build.wait().context("building edgescore-preinit")?;
    if !status.success() {
        bail!("building edgescore-preinit failed ({status})");
    }
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let up_to_date = match (modified(shipped), modified(built), modified(&binary())) {
        (Some(shipped), Some(built), Some(tool)) => shipped > built && shipped > tool,
        _ => false,
    };
    if up_to_date {
        return Ok(());
    }
    let scratch = shipped.with_extension("preinit-tmp");
    step(
        "making the scoring component of its core module and pre-initializing it (edgescore-preinit: wit-component, wizer)",
        Command::new(binary()).arg(built).arg(&scratch),
    )?;
    let bytes = std::fs::read(&scratch)?;
    std::fs::remove_file(&scratch)?;
    write_if_changed(shipped, &bytes)
}

impl Drop for Tool {
    /// Stops the build if the components failed, so that it does not outlive xtask.
    fn drop(&mut self) {
        let _ = self.build.kill();
        let _ = self.build.wait();
    }
}
