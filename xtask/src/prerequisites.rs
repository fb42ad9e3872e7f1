//! Tools the tests need from the system, installed from Debian's packages where they are missing.

use std::process::Command;

use anyhow::{Result, bail};

use crate::step;

/// A program the tests run, and the Debian package that provides it.
pub(crate) struct SystemTool {
    pub program: &'static str,
    pub package: &'static str,
    /// Why the tests need it, for the error message on machines where we cannot install it.
    pub needed_for: &'static str,
}

pub(crate) const NODE: SystemTool = SystemTool {
    program: "node",
    package: "nodejs",
    needed_for: "the jco test",
};
pub(crate) const NPM: SystemTool = SystemTool {
    program: "npm",
    package: "npm",
    needed_for: "the jco test",
};
pub(crate) const CHROMIUM: SystemTool = SystemTool {
    program: "chromium",
    package: "chromium",
    needed_for: "the dashboard test (headless Chromium)",
};
pub(crate) const REDIS_SERVER: SystemTool = SystemTool {
    program: "redis-server",
    package: "redis-server",
    needed_for: "the scale-out tests (a real redis-server on a free loopback port)",
};

pub(crate) const PROMTOOL: SystemTool = SystemTool {
    program: "promtool",
    package: "prometheus",
    needed_for: "the metrics test (promtool check metrics)",
};

/// Installs the packages of the tools that are missing, as root with apt-get; elsewhere, an
/// error saying what to install.
pub(crate) fn ensure_system_tools(tools: &[SystemTool]) -> Result<()> {
    let missing: Vec<&SystemTool> = tools.iter().filter(|t| !present(t.program)).collect();
    if missing.is_empty() {
        return Ok(());
    }
    let packages: Vec<&str> = missing.iter().map(|t| t.package).collect();
    let packages = packages.join(" ");
    if !(root_user() && present("apt-get")) {
        let needs: Vec<String> = missing
            .iter()
            .map(|t| format!("{} ({})", t.program, t.needed_for))
            .collect();
        bail!(
            "the tests need {}: install them (Debian: apt-get install {packages})",
            needs.join(", ")
        );
    }
    step(
        &format!("installing {packages} (apt-get)"),
        Command::new("sh").args([
            "-c",
            &format!(
                "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq {packages}"
            ),
        ]),
    )
}

fn present(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn root_user() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// The Spin CLI: `$EDGESCORE_SPIN`, else `spin` on the `PATH`. Spin is not in the package
/// registries, so nothing installs it.
pub(crate) fn spin_binary() -> Option<std::path::PathBuf> {
    if let Some(path) = std::env::var_os("EDGESCORE_SPIN") {
        return Some(path.into());
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("spin"))
            .find(|candidate| candidate.is_file())
    })
}

/// Says which Spin the real-Spin tests (`tests/tests/spin.rs`) run on; without one they print
/// "skipped: no spin binary". An `EDGESCORE_SPIN` that names no file fails here, before anything
/// is built.
pub(crate) fn spin_for_tests() -> Result<()> {
    match spin_binary() {
        Some(path) if !path.is_file() => bail!(
            "EDGESCORE_SPIN={}: no such file (the Spin CLI the tests run the app under)",
            path.display()
        ),
        Some(path) => eprintln!("xtask: the real-Spin tests run on {}", path.display()),
        None => eprintln!(
            "xtask: the real-Spin tests: skipped: no spin binary (set EDGESCORE_SPIN or put spin \
             on the PATH)"
        ),
    }
    Ok(())
}
