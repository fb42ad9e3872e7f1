//! `edgescore-preinit IN OUT`: writes the pre-initialized scoring component made of `IN` (the
//! scoring crate's core module, or a component) to `OUT` (see the library). `cargo xtask build`
//! runs it on the component it ships.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;

/// Makes the scoring component of a core module and pre-initializes it: its `preload` export
/// runs once, and the copy starts in that state.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// The scoring crate's build for wasm32-unknown-unknown, or a scoring component (.wasm).
    component: PathBuf,
    /// Where to write the pre-initialized copy.
    out: PathBuf,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let run = || -> anyhow::Result<usize> {
        let component = std::fs::read(&args.component)
            .with_context(|| format!("reading {}", args.component.display()))?;
        let component = edgescore_preinit::componentize(&component)?;
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
