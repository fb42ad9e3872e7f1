//! `serve-app` and `bench-app` in a binary built without the `spin-app` feature (the one
//! `cargo xtask run` builds to serve): they take any arguments and say how to get the app.

use anyhow::{Result, bail};
use clap::Args;

#[derive(Debug, Args)]
pub struct WithoutSpinApp {
    #[arg(trailing_var_arg = true, allow_hyphen_values = true, hide = true)]
    _args: Vec<String>,
}

pub type ServeAppArgs = WithoutSpinApp;
pub type BenchAppArgs = WithoutSpinApp;

pub fn run(_: WithoutSpinApp) -> Result<()> {
    bail!(
        "this edgescore was built without the Spin app (`cargo xtask run` builds the native \
         service only): build it whole with `cargo xtask build`, or `cargo xtask run serve-app`"
    )
}
