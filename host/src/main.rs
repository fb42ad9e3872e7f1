//! `edgescore`: score events with the scoring component from the command line.

mod cli;

use clap::Parser;

fn main() {
    let args = cli::Cli::parse();
    if let Err(e) = cli::run(args) {
        // One line, as a user reads it; the chain of causes joined.
        eprintln!("edgescore: {e:#}");
        std::process::exit(1);
    }
}
