//! `edgescore models ...`: the model registry from the command line. `add` puts a user's ONNX
//! file in a registry folder with everything the hosts need beside it.

mod add;
mod baseline;

use anyhow::Result;
use clap::Subcommand;

#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Add an ONNX model to a registry folder: checks it loads in the component with the
    /// supported signature, and writes its manifest (sha256, features, baseline) and reference
    /// outputs.
    Add(add::AddArgs),
}

pub fn run(command: ModelsCommand) -> Result<()> {
    match command {
        ModelsCommand::Add(args) => add::run(args),
    }
}
