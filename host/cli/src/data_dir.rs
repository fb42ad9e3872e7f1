//! Where `serve` and `serve-app` keep their state when no `--data-dir` is given.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The documented default data directory: `$XDG_STATE_HOME/edgescore`, else
/// `~/.local/state/edgescore`.
pub fn default_data_dir() -> Result<PathBuf> {
    let state_home = std::env::var_os("XDG_STATE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/state")));
    state_home.map(|d| d.join("edgescore")).context(
        "data-dir: no $XDG_STATE_HOME or $HOME to put the state in: give --data-dir DIR (or --ephemeral)",
    )
}
