//! `edgescore bench-scaleout [SECONDS]` (run by `cargo xtask bench-scaleout`): the Spin app
//! (`edgescore serve-app`) over Redis, one replica and two, against its in-process store, in one
//! run on this machine.
//!
//! The seed workload (batches of 10 over 10,000 users, 32 clients, as fast as answers come):
//! one replica on the in-process store (`--ephemeral`), one replica on Redis, two replicas on
//! the same Redis (16 clients on each). Events/s, p50 and p99 (with two replicas: events/s
//! summed, p50 averaged, the larger p99), and Redis commands per accepted event from
//! `INFO stats`. The configurations take turns for [`ROUNDS`] rounds and each figure is the
//! median of its rounds.
//!
//! Redis is Debian's `redis-server` on a free loopback port, append-only with `appendfsync
//! everysec` (Redis's recommended setting); the replicas, Redis and the clients share this
//! machine's cores, so the two-replica row measures contention, not capacity.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};

use super::http::{Measured, Server, append_to, loadgen, wait_healthy};
use super::root;

pub(crate) const REDIS_PORT: u16 = 18020;
const REPLICA_PORTS: [u16; 2] = [18021, 18022];
const ROUNDS: usize = 3;
const CLIENTS: u32 = 32;

/// Where a configuration keeps its state.
#[derive(Clone, Copy)]
enum Store {
    InProcess,
    Redis { replicas: usize },
}

impl Store {
    fn name(self) -> String {
        match self {
            Store::InProcess => "in-process store, 1 replica".into(),
            Store::Redis { replicas: 1 } => "Redis, 1 replica".into(),
            Store::Redis { replicas } => format!("Redis, {replicas} replicas"),
        }
    }
}

/// One configuration's measurement, replicas merged.
struct Row {
    events_per_sec: f64,
    p50: f64,
    p99: f64,
    commands_per_event: Option<f64>,
}

pub fn run(args: super::SecondsArgs) -> Result<()> {
    let seconds = args.seconds;
    let RedisBench {
        release,
        work,
        redis: _redis,
        runtime_config,
    } = RedisBench::prepare("bench-scaleout")?;
    let log = work.join("serve-app.log");

    let stores = [
        Store::InProcess,
        Store::Redis { replicas: 1 },
        Store::Redis { replicas: 2 },
    ];
    let mut rounds: Vec<Vec<Row>> = stores.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for (store, rows) in stores.iter().zip(&mut rounds) {
            rows.push(measure(*store, &release, &runtime_config, &log, seconds)?);
        }
    }

    println!(
        "serve-app, seed workload (batches of 10, {CLIENTS} clients, 10,000 users), {seconds} s per measurement, \
         median of {ROUNDS} rounds, this machine ({} cores shared by the replicas, Redis and the clients)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| store | events/s | p50 ms | p99 ms | ÷ in-process | Redis commands per event |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let mut in_process = None;
    for (store, rows) in stores.iter().zip(&rounds) {
        let median = |f: &dyn Fn(&Row) -> f64| {
            let mut values: Vec<f64> = rows.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let events_per_sec = median(&|r| r.events_per_sec);
        let base = *in_process.get_or_insert(events_per_sec);
        let commands = match store {
            Store::InProcess => "—".to_string(),
            Store::Redis { .. } => format!(
                "{:.2}",
                median(&|r| r.commands_per_event.unwrap_or(f64::NAN))
            ),
        };
        println!(
            "| {} | {events_per_sec:.0} | {:.2} | {:.2} | {:.2} | {commands} |",
            store.name(),
            median(&|r| r.p50),
            median(&|r| r.p99),
            events_per_sec / base,
        );
    }
    println!("serve-app's log: {}", log.display());
    Ok(())
}

/// What a benchmark of the app over Redis starts from: this binary's folder, an empty `target/NAME`, a Redis on [`REDIS_PORT`] and a runtime config naming it.
pub(crate) struct RedisBench {
    pub(crate) release: PathBuf,
    pub(crate) work: PathBuf,
    pub(crate) redis: Server,
    pub(crate) runtime_config: PathBuf,
}

impl RedisBench {
    pub(crate) fn prepare(name: &str) -> Result<RedisBench> {
        let work = root().join("target").join(name);
        if work.exists() {
            std::fs::remove_dir_all(&work)?;
        }
        std::fs::create_dir_all(&work)?;
        let redis = start_redis(&work)?;
        let runtime_config = work.join("runtime-config.toml");
        std::fs::write(
            &runtime_config,
            format!(
                "[key_value_store.default]\ntype = \"redis\"\nurl = \"redis://127.0.0.1:{REDIS_PORT}\"\n"
            ),
        )?;
        Ok(RedisBench {
            release: super::release_dir()?,
            work,
            redis,
            runtime_config,
        })
    }
}

/// Starts the configuration's replicas on an empty store, loads them, stops them.
fn measure(
    store: Store,
    release: &Path,
    runtime_config: &Path,
    log: &Path,
    seconds: u64,
) -> Result<Row> {
    let replicas = match store {
        Store::InProcess => 1,
        Store::Redis { replicas } => {
            redis_cli(&["FLUSHALL"])?;
            replicas
        }
    };
    let ports = &REPLICA_PORTS[..replicas];
    let _servers: Vec<Server> = ports
        .iter()
        .map(|&port| start_replica(release, port, store, runtime_config, log))
        .collect::<Result<_>>()?;
    let commands_before = redis_commands(store)?;
    let clients = CLIENTS / replicas as u32;
    let measured: Vec<Measured> = std::thread::scope(|scope| {
        let loads: Vec<_> = ports
            .iter()
            .map(|&port| scope.spawn(move || loadgen(release, port, 10, 0, clients, seconds)))
            .collect();
        loads
            .into_iter()
            .map(|l| l.join().expect("a loadgen thread"))
            .collect::<Result<_>>()
    })?;
    let commands = redis_commands(store)?
        .zip(commands_before)
        .map(|(after, before)| after - before);
    let failed: u64 = measured.iter().map(|m| m.failed).sum();
    ensure!(
        failed == 0,
        "{}: {failed} requests failed (see {})",
        store.name(),
        log.display()
    );
    let accepted: u64 = measured.iter().map(|m| m.accepted).sum();
    Ok(Row {
        events_per_sec: measured.iter().map(|m| m.events_per_sec).sum(),
        p50: measured.iter().map(|m| m.p50).sum::<f64>() / measured.len() as f64,
        p99: measured.iter().map(|m| m.p99).fold(0.0, f64::max),
        commands_per_event: commands.map(|c| c as f64 / accepted.max(1) as f64),
    })
}

fn start_replica(
    release: &Path,
    port: u16,
    store: Store,
    runtime_config: &Path,
    log: &Path,
) -> Result<Server> {
    let mut command = Command::new(release.join("edgescore"));
    command.args(["serve-app", "--port", &port.to_string()]);
    match store {
        Store::InProcess => command.arg("--ephemeral"),
        Store::Redis { .. } => command.arg("--runtime-config-file").arg(runtime_config),
    };
    let server = Server(
        command
            .stdout(append_to(log)?)
            .spawn()
            .context("starting edgescore serve-app")?,
    );
    wait_healthy(port)?;
    Ok(server)
}

pub(crate) fn start_redis(dir: &Path) -> Result<Server> {
    let server = Server(
        Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &REDIS_PORT.to_string()])
            .args([
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
            ])
            .arg("--dir")
            .arg(dir)
            .stdout(Stdio::null())
            .spawn()
            .context("starting redis-server")?,
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while redis_cli(&["PING"]).is_err() {
        if Instant::now() > deadline {
            bail!("redis-server on port {REDIS_PORT} did not answer PING");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(server)
}

/// Commands Redis has processed so far (`None` for the in-process store).
fn redis_commands(store: Store) -> Result<Option<u64>> {
    if matches!(store, Store::InProcess) {
        return Ok(None);
    }
    redis_commands_processed().map(Some)
}

/// Commands the benchmarks' Redis has processed so far (`INFO stats`).
pub(crate) fn redis_commands_processed() -> Result<u64> {
    let info = redis_cli(&["INFO", "stats"])?;
    let line = info
        .lines()
        .find_map(|l| l.strip_prefix("total_commands_processed:"))
        .with_context(|| format!("no total_commands_processed in INFO stats: {info:?}"))?;
    Ok(line.trim().parse()?)
}

pub(crate) fn redis_cli(args: &[&str]) -> Result<String> {
    // Debian's redis-server package brings redis-cli (redis-tools).
    let out = Command::new("redis-cli")
        .args(["-p", &REDIS_PORT.to_string()])
        .args(args)
        .output()
        .context("running redis-cli")?;
    ensure!(out.status.success(), "redis-cli {args:?}: {}", out.status);
    let text = String::from_utf8(out.stdout)?;
    ensure!(!text.starts_with("Could not connect"), "{text}");
    Ok(text)
}
