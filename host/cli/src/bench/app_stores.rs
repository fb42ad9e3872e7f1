//! `edgescore bench-app-stores [SECONDS]` (run by `cargo xtask bench-app-stores`): the Spin app
//! on each store — in memory, SQLite in each durability mode, Redis — under `edgescore serve-app`
//! and under real Spin, in one run on this machine.
//!
//! Each configuration starts on an empty store and is loaded twice by `edgescore loadgen` with
//! the seed workload (batches of 10 over 10,000 users, 32 clients): at the seed load (5,000
//! events/s offered) and at saturation (as fast as answers come). Printed per row: events/s
//! accepted, p50 and p99, the app's key-value calls per accepted event (the
//! `edgescore-store-calls` header of its answers) and, on Redis, Redis commands per accepted
//! event (`INFO stats`). Beside the table, the floors: this disk's own `fdatasync` latency (a
//! durable store's write cannot be acknowledged sooner) and the bare in-memory store.
//!
//! Spin is `$EDGESCORE_SPIN`, else `spin` on the `PATH`; without it the Spin rows are left out.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::http::{Measured, Server, append_to, loadgen_within, wait_healthy};
use super::root;
use super::scaleout::{RedisBench, redis_cli, redis_commands_processed};

const PORT: u16 = 18031;
const CLIENTS: u32 = 32;
const SEED_LOAD: u32 = 5_000;

/// Who serves the app, on which store.
#[derive(Clone, Copy, PartialEq)]
enum Config {
    HarnessMemory,
    /// With this `--durability`.
    HarnessSqlite(&'static str),
    HarnessRedis,
    SpinSqlite,
    SpinRedis,
}

impl Config {
    fn name(self) -> &'static str {
        match self {
            Config::HarnessMemory => "serve-app, in memory (--ephemeral)",
            Config::HarnessSqlite("fsync") => "serve-app, SQLite, --durability fsync (default)",
            Config::HarnessSqlite("interval") => "serve-app, SQLite, --durability interval (1 s)",
            Config::HarnessSqlite(_) => "serve-app, SQLite, --durability none",
            Config::HarnessRedis => "serve-app, Redis",
            Config::SpinSqlite => "spin up, SQLite (Spin's default)",
            Config::SpinRedis => "spin up, Redis",
        }
    }

    fn redis(self) -> bool {
        matches!(self, Config::HarnessRedis | Config::SpinRedis)
    }
}

pub fn run(args: super::SecondsArgs) -> Result<()> {
    let seconds = args.seconds;
    let RedisBench {
        release,
        work,
        redis: _redis,
        runtime_config,
    } = RedisBench::prepare("bench-app-stores")?;
    let spin = super::spin_binary();
    let mut configs = vec![
        Config::HarnessMemory,
        Config::HarnessSqlite("fsync"),
        Config::HarnessSqlite("interval"),
        Config::HarnessSqlite("none"),
        Config::HarnessRedis,
    ];
    match &spin {
        Some(_) => configs.extend([Config::SpinSqlite, Config::SpinRedis]),
        None => println!("no spin binary (EDGESCORE_SPIN or spin on the PATH): Spin rows left out"),
    }
    let (sync_p50, sync_p99) = super::disk_sync_latency(&work)?;

    let mut rows = Vec::new();
    for config in configs {
        for rate in [SEED_LOAD, 0] {
            let serving = Serving {
                release: &release,
                spin: spin.as_deref(),
                work: &work,
                runtime_config: &runtime_config,
            };
            // A row that fails (Spin's Redis store can run Redis out of connections) is printed
            // as such; the others go on.
            let row = serving
                .measure(config, rate, seconds)
                .map_err(|e| format!("{e:#}"));
            rows.push((config, rate, row));
        }
    }
    println!(
        "the Spin app, seed workload (batches of 10, {CLIENTS} clients, 10,000 users), {seconds} s \
         per row, one run on this machine ({} cores shared by the server, its store and the \
         clients)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "floor: this disk's fdatasync p50 {sync_p50:.2} ms, p99 {sync_p99:.2} ms (a durable write is \
         acknowledged no sooner); the ceiling is the in-memory row"
    );
    print_rows(&rows, seconds);
    print_stats_costs(&rows);
    println!("logs: {}", work.display());
    Ok(())
}

/// A configuration at a load: its row, none when it fell behind, or why it failed.
type Measurement = (Config, u32, std::result::Result<Option<Row>, String>);

fn print_rows(rows: &[Measurement], seconds: u64) {
    println!(
        "| server, store | load | events/s | p50 ms | p99 ms | ÷ in memory | store calls per event | Redis commands per event | failed requests |"
    );
    println!("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    let memory = |rate: u32| {
        rows.iter()
            .find_map(|(c, r, row)| (*c == Config::HarnessMemory && *r == rate).then_some(row))
            .and_then(|row| row.as_ref().ok().and_then(Option::as_ref))
            .map_or(f64::NAN, |row| row.measured.events_per_sec)
    };
    for (config, rate, row) in rows {
        let load = match rate {
            0 => "saturation".to_string(),
            r => format!("{r} events/s"),
        };
        let row = match row {
            Ok(row) => row,
            Err(e) => {
                println!("| {} | {load} | failed: {e} | | | | | | |", config.name());
                continue;
            }
        };
        let Some(row) = row else {
            println!(
                "| {} | {load} | fell behind: no end within {} s | | | | | | |",
                config.name(),
                2 * seconds + 30
            );
            continue;
        };
        let per_event = |n: Option<f64>| n.map_or("—".to_string(), |n| format!("{n:.2}"));
        println!(
            "| {} | {load} | {:.0} | {:.2} | {:.2} | {:.2} | {} | {} | {} |",
            config.name(),
            row.measured.events_per_sec,
            row.measured.p50,
            row.measured.p99,
            row.measured.events_per_sec / memory(*rate),
            per_event(row.measured.store_calls_per_event),
            per_event(row.redis_commands_per_event),
            row.measured.failed,
        );
    }
}

/// What `GET /stats` cost after each saturation load.
fn print_stats_costs(rows: &[Measurement]) {
    println!();
    println!("GET /stats after the saturation load (p50 of {STATS_READS}, a new connection each):");
    println!("| server, store | p50 ms | store calls |");
    println!("| --- | ---: | ---: |");
    for (config, _, row) in rows.iter().filter(|(_, rate, _)| *rate == 0) {
        match row
            .as_ref()
            .ok()
            .and_then(Option::as_ref)
            .and_then(|r| r.stats.as_ref())
        {
            Some(stats) => println!(
                "| {} | {:.2} | {} |",
                config.name(),
                stats.p50,
                stats.store_calls
            ),
            None => println!("| {} | no answer | |", config.name()),
        }
    }
}

struct Row {
    measured: Measured,
    redis_commands_per_event: Option<f64>,
    /// None if `/stats` did not answer.
    stats: Option<StatsCost>,
}

/// What `GET /stats` costs after the load: p50 ms over [`STATS_READS`] reads, and the store
/// calls of one.
struct StatsCost {
    p50: f64,
    store_calls: u64,
}

const STATS_READS: usize = 21;

/// Times `GET /stats` (plain HTTP/1.1 over a new connection each time).
fn stats_cost() -> Result<StatsCost> {
    use std::io::{Read, Write};
    let mut millis = Vec::new();
    let mut store_calls = 0;
    for _ in 0..STATS_READS {
        let started = Instant::now();
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", PORT))?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(b"GET /stats HTTP/1.1\r\nhost: bench\r\nconnection: close\r\n\r\n")?;
        let mut answer = String::new();
        stream.read_to_string(&mut answer)?;
        millis.push(started.elapsed().as_secs_f64() * 1e3);
        anyhow::ensure!(answer.starts_with("HTTP/1.1 200"), "GET /stats: {answer}");
        store_calls = answer
            .lines()
            .find_map(|l| l.strip_prefix("edgescore-store-calls: "))
            .context("no edgescore-store-calls header on /stats")?
            .trim()
            .parse()?;
    }
    millis.sort_by(f64::total_cmp);
    Ok(StatsCost {
        p50: millis[STATS_READS / 2],
        store_calls,
    })
}

struct Serving<'a> {
    release: &'a Path,
    spin: Option<&'a Path>,
    work: &'a Path,
    runtime_config: &'a Path,
}

impl Serving<'_> {
    /// The configuration on an empty store, loaded once; none if the load did not end within
    /// twice its time and 30 s (the server fell behind the offered rate for good).
    fn measure(&self, config: Config, rate: u32, seconds: u64) -> Result<Option<Row>> {
        if config.redis() {
            redis_cli(&["FLUSHALL"])?;
        }
        let state = self.work.join("state");
        if state.exists() {
            std::fs::remove_dir_all(&state)?;
        }
        wait_port_free()?;
        let _server = self.start(config, &state)?;
        let before = redis_commands_processed()?;
        let limit = Duration::from_secs(2 * seconds + 30);
        let Some(measured) = loadgen_within(self.release, PORT, 10, rate, CLIENTS, seconds, limit)?
        else {
            return Ok(None);
        };
        let commands = redis_commands_processed()? - before;
        let redis_commands_per_event = config
            .redis()
            .then(|| commands as f64 / measured.accepted.max(1) as f64);
        Ok(Some(Row {
            measured,
            redis_commands_per_event,
            stats: stats_cost().ok(),
        }))
    }

    fn start(&self, config: Config, state: &Path) -> Result<Running> {
        let log = append_to(&self.work.join("servers.log"))?;
        let mut command = match config {
            Config::HarnessMemory | Config::HarnessSqlite(_) | Config::HarnessRedis => {
                let mut command = Command::new(self.release.join("edgescore"));
                command.args(["serve-app", "--port", &PORT.to_string()]);
                match config {
                    Config::HarnessMemory => command.arg("--ephemeral"),
                    Config::HarnessSqlite(durability) => command
                        .arg("--data-dir")
                        .arg(state)
                        .args(["--durability", durability]),
                    _ => command
                        .arg("--runtime-config-file")
                        .arg(self.runtime_config),
                };
                command
            }
            Config::SpinSqlite | Config::SpinRedis => {
                let mut command = Command::new(self.spin.context("no spin binary")?);
                command
                    .args(["up", "--quiet", "--from"])
                    .arg(root().join("spin.toml"))
                    .args(["--listen", &format!("127.0.0.1:{PORT}")])
                    .arg("--state-dir")
                    .arg(state);
                if config == Config::SpinRedis {
                    command
                        .arg("--runtime-config-file")
                        .arg(self.runtime_config);
                }
                command
            }
        };
        let server = Server(
            command
                .process_group(0)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("starting {}", config.name()))?,
        );
        let running = Running(server);
        wait_healthy(PORT)?;
        Ok(running)
    }
}

/// Waits until nothing listens on [`PORT`] (the last configuration's processes are gone).
fn wait_port_free() -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", PORT)).is_ok() {
        anyhow::ensure!(Instant::now() < deadline, "port {PORT} is still in use");
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(())
}

/// A server and the processes it started (`spin up` serves from a child process of its own):
/// its process group is killed when dropped.
struct Running(Server);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.0.0.id())])
            .status();
    }
}
