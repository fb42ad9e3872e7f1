//! `edgescore`: the command line of the edgescore crates — the HTTP service (`edgescore-serve`),
//! the Spin app under wasmtime (`edgescore-app-harness`), scoring, replay, inspection, load
//! generation and benchmarks. Argument parsing and the wiring of the library crates live here;
//! each subcommand is one module.

mod args;
mod bench;
mod data_dir;
mod input;
mod inspect;
mod logging;
mod models;
mod replay;
mod score;
mod serve;
#[cfg(feature = "spin-app")]
mod serve_app;
mod signals;
#[cfg(not(feature = "spin-app"))]
mod without_spin_app;
#[cfg(feature = "spin-app")]
use bench::app as bench_app;
use bench::{loadgen, scoring};
#[cfg(not(feature = "spin-app"))]
use without_spin_app as serve_app;
#[cfg(not(feature = "spin-app"))]
use without_spin_app as bench_app;

// The service allocates per event (ids, feature rows) on many threads; mimalloc's thread-local
// free lists measured cheaper than glibc's malloc here (docs/performance.md, HTTP).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use anyhow::Result;
use clap::{CommandFactory, Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "edgescore",
    version,
    about = "Score events with an ONNX model inside a sandboxed WebAssembly component"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API (ingest, medians, stats, health) on sharded component instances.
    Serve(Box<serve::ServeArgs>),
    /// Serve the Spin app (components/http) with wasmtime, state in a key-value store (a SQLite
    /// file, memory, or Redis through Spin's runtime config).
    ServeApp(serve_app::ServeAppArgs),
    /// Score feature rows: JSON lines of `[f, ...]` or `{"features": [...]}` → `{"score": s}` lines.
    Score(score::ScoreArgs),
    /// Ingest an events file through the engine and print each user's median and the stats.
    Replay(replay::ReplayArgs),
    /// Print the component's exported WIT, the model registry and the selected model's info.
    Inspect(inspect::InspectArgs),
    /// Post random event batches to a running service and report throughput and latency.
    Loadgen(loadgen::LoadgenArgs),
    /// Scoring throughput in the component vs the same core natively, as a table.
    Bench(scoring::BenchArgs),
    /// The Spin app's cold and warm request latency and its stored bytes per event, as a table.
    BenchApp(bench_app::BenchAppArgs),
    /// The HTTP benchmark: edgescore serve against a bare HTTP+JSON server and a native tract
    /// service (the yardsticks beside this binary, which `cargo xtask bench-http` builds).
    BenchHttp(bench::http::BenchHttpArgs),
    /// What durability costs: edgescore serve with --durability none, interval and fsync.
    BenchDurable(bench::SecondsArgs),
    /// The Spin app on one Redis: one replica and two, against its in-process store.
    BenchScaleout(bench::SecondsArgs),
    /// The Spin app on each store, under serve-app and under Spin, with the disk's fdatasync.
    BenchAppStores(bench::SecondsArgs),
    /// The model registry: `models add FILE.onnx --name NAME --features a,b,c` puts a model in
    /// a registry folder, checked and described.
    #[command(subcommand)]
    Models(models::ModelsCommand),
    /// Compile the scoring component into the `.cwasm` cache now (`cargo xtask build` does), so
    /// that the first `serve` starts without compiling it.
    Precompile(args::RuntimeArgs),
    /// Print a shell completion script, e.g. `edgescore completions bash > ~/.local/share/bash-completion/completions/edgescore`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
}

fn run(cli: Cli) -> Result<()> {
    match cli.command {
        Command::Serve(args) => serve::run(*args),
        Command::ServeApp(args) => serve_app::run(args),
        Command::Score(args) => score::run(args),
        Command::Replay(args) => replay::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::Bench(args) => scoring::run(args),
        Command::BenchHttp(args) => bench::http::run(args),
        Command::BenchDurable(args) => bench::durable::run(args),
        Command::BenchScaleout(args) => bench::scaleout::run(args),
        Command::BenchAppStores(args) => bench::app_stores::run(args),
        Command::BenchApp(args) => bench_app::run(args),
        Command::Loadgen(args) => loadgen::run(args),
        Command::Models(command) => models::run(command),
        Command::Precompile(args) => {
            let started = std::time::Instant::now();
            args.runtime()?;
            println!(
                "the scoring component is compiled in {} ({:.1} s)",
                edgescore_runtime::cache::default_dir().display(),
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut Cli::command(),
                "edgescore",
                &mut std::io::stdout(),
            );
            Ok(())
        }
    }
}

fn main() {
    // Like other Unix filters: `edgescore inspect | head` ends quietly when head stops reading,
    // instead of panicking on a broken pipe.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal, before any thread is started.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    if let Err(e) = run(Cli::parse()) {
        // One line, as a user reads it; the chain of causes joined.
        eprintln!("edgescore: {e:#}");
        std::process::exit(1);
    }
}
