//! `edgescore-preinit IN OUT`: writes the pre-initialized copy of the scoring component `IN` to
//! `OUT` (see the library). `cargo xtask build` runs it on the component it ships.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Pre-initializes a scoring component: its `preload` export runs once, and the copy starts in
/// that state.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The scoring component (.wasm).
    component: PathBuf,
    /// Where to write the pre-initialized copy.
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let run = || -> anyhow::Result<usize> {
        let component = std::fs::read(&args.component)
            .with_context(|| format!("reading {}", args.component.display()))?;
        let copy = edgescore_preinit::preinit(&component)?;
        std::fs::write(&args.out, &copy)
            .with_context(|| format!("writing {}", args.out.display()))?;
        Ok(copy.len())
    };
    match run() {
        Ok(bytes) => {
            eprintln!(
                "edgescore-preinit: wrote {} ({bytes} bytes)",
                args.out.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("edgescore-preinit: {e:#}");
            ExitCode::FAILURE
        }
    }
}
