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

#[cfg(test)]
mod tests {
    use clap::Parser;

    use crate::Cli;

    /// `cargo xtask test` runs this in the binary built without the app: both subcommands take
    /// their usual arguments and answer with how to get the app.
    #[test]
    fn the_app_subcommands_say_how_to_build_them() {
        for args in [
            &["edgescore", "serve-app", "--port", "3001", "--ephemeral"][..],
            &["edgescore", "bench-app", "--requests", "5"][..],
        ] {
            let cli = Cli::try_parse_from(args).expect("the arguments parse");
            let error = crate::run(cli)
                .expect_err("no app in this build")
                .to_string();
            assert!(error.contains("built without the Spin app"), "{error}");
            assert!(error.contains("cargo xtask build"), "{error}");
        }
    }
}
