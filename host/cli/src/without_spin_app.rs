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
    use clap::{Parser, Subcommand};

    use super::*;

    /// The two subcommands as the binary without the app declares them (its `main.rs`).
    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Command,
    }

    #[derive(Subcommand)]
    enum Command {
        ServeApp(ServeAppArgs),
        BenchApp(BenchAppArgs),
    }

    /// Both take their usual arguments and answer with how to build the binary that has them.
    #[test]
    fn the_app_subcommands_say_how_to_build_them() {
        for args in [
            &["edgescore", "serve-app", "--port", "3001", "--ephemeral"][..],
            &["edgescore", "bench-app", "--requests", "5"][..],
        ] {
            let (Command::ServeApp(args) | Command::BenchApp(args)) = Cli::try_parse_from(args)
                .expect("the arguments parse")
                .command;
            let error = run(args).expect_err("no app in this build").to_string();
            assert!(error.contains("built without the Spin app"), "{error}");
            assert!(error.contains("cargo xtask build"), "{error}");
        }
    }
}
