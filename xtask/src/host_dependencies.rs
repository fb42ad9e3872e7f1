//! The release host's dependencies, compiled while the components build. On a fresh machine
//! both take minutes, and each leaves a core idle for long stretches (the components' tract
//! crates and their link-time optimization run on one), so side by side they finish sooner.
//!
//! Cargo has no "dependencies only" build, so this is the host's own build, pointed at
//! components that do not exist yet: the one crate that embeds them (`edgescore-embedded`) stops
//! in its build script, and `--keep-going` builds everything else but the binary, the rest of the
//! host and the pre-initialization tool among it (`preinit.rs`). Its output goes to a log: the
//! failure is expected, and the real build that follows reports any other problem itself.

use std::process::{Child, Stdio};

use anyhow::{Context, Result};

use crate::{Host, cargo, root};

pub(crate) struct HostDependencies {
    build: Child,
}

pub(crate) fn start(host: Host) -> Result<HostDependencies> {
    let log = root().join("target/xtask-host-dependencies.log");
    let pending = root().join("target/components-pending");
    eprintln!(
        "xtask: compiling the host's dependencies meanwhile (log: {})",
        log.display()
    );
    let build = cargo()
        .args(["build", "--release", "--keep-going"])
        .args(crate::preinit::WITH_THE_HOST)
        .args(host.features())
        .env(
            "EDGESCORE_COMPONENT_WASM",
            pending.join("edgescore_scoring.wasm"),
        )
        .env("EDGESCORE_APP_WASM", pending.join("edgescore_app.wasm"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).context("creating the log")?)
        .spawn()
        .context("starting cargo")?;
    Ok(HostDependencies { build })
}

impl HostDependencies {
    /// Waits for it; its outcome does not matter (see the module's comment).
    pub(crate) fn finish(mut self) {
        let _ = self.build.wait();
    }
}

/// Stops the build if the components failed, so that it does not outlive xtask.
impl Drop for HostDependencies {
    fn drop(&mut self) {
        let _ = self.build.kill();
        let _ = self.build.wait();
    }
}
