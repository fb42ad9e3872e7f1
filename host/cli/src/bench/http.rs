//! `edgescore bench-http` (`cargo xtask bench-http` builds what it needs and runs it): the HTTP
//! benchmark. Two yardsticks: a bare axum + serde_json server that only parses the batch
//! (`host/cli/examples/bare_ingest.rs`) and a plain native tract service
//! (`host/cli/examples/native_ingest.rs`). Loads each with the same clients in the same run: our
//! `edgescore loadgen` and, when installed, `wrk`. Prints events/s and latency per server and the
//! ratios ours/bare and ours/native (the machines are shared: compare ratios within one run, not
//! absolute numbers across runs). `--baseline BINARY` adds another
//! build of `edgescore` (e.g. the previous commit's) to every row, for before/after ratios.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::root;

const BARE_PORT: u16 = 18001;
const OURS_PORT: u16 = 18002;
const BASELINE_PORT: u16 = 18003;
const NATIVE_PORT: u16 = 18004;

pub(crate) struct Server(pub(crate) Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub(crate) fn wait_healthy(port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bail!("nothing listens on port {port}")
}

/// Loads the server on a port once.
type Measure = Box<dyn Fn(u16) -> Result<Measured>>;

/// One measurement: events/s accepted and latency percentiles in ms; events accepted and
/// requests that failed (not 2xx, or no answer) in all.
pub(crate) struct Measured {
    pub(crate) events_per_sec: f64,
    pub(crate) p50: f64,
    pub(crate) p99: f64,
    pub(crate) accepted: u64,
    pub(crate) failed: u64,
    /// The Spin app's key-value calls per accepted event (from its answers' header).
    pub(crate) store_calls_per_event: Option<f64>,
}

/// A fresh `edgescore serve` of `binary` on `port`, logging to `log`, durable (its default) on a
/// new data directory beside the log.
pub(crate) fn fresh_service(binary: &Path, port: u16, log: &Path) -> Result<Server> {
    fresh_service_with(binary, port, log, &[])
}

/// [`fresh_service`] with more flags.
pub(crate) fn fresh_service_with(
    binary: &Path,
    port: u16,
    log: &Path,
    flags: &[&str],
) -> Result<Server> {
    let data = data_dir(log, port);
    if data.exists() {
        std::fs::remove_dir_all(&data)?;
    }
    start_service(binary, port, log, &data, flags)
}

/// The data directory of the service on `port`.
pub(crate) fn data_dir(log: &Path, port: u16) -> PathBuf {
    log.with_file_name(format!("data-{port}"))
}

/// `edgescore serve` on `data` as it is (a restart when it holds state).
pub(crate) fn start_service(
    binary: &Path,
    port: u16,
    log: &Path,
    data: &Path,
    flags: &[&str],
) -> Result<Server> {
    let server = Server(
        Command::new(binary)
            .args(["serve", "--port", &port.to_string(), "--data-dir"])
            .arg(data)
            .args(flags)
            .stdout(append_to(log)?)
            .spawn()
            .with_context(|| format!("starting {} serve", binary.display()))?,
    );
    wait_healthy(port)?;
    Ok(server)
}

/// A log file to append a server's output to.
pub(crate) fn append_to(log: &Path) -> Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .with_context(|| format!("opening {}", log.display()))
}

/// `edgescore bench-http [SECONDS] [--baseline BINARY]`.
#[derive(Debug, clap::Args)]
pub struct BenchHttpArgs {
    /// Seconds per measurement
    #[arg(default_value_t = 10)]
    seconds: u64,
    /// Another build of `edgescore` (e.g. the previous commit's), measured in every row too
    #[arg(long)]
    baseline: Option<PathBuf>,
}

/// With a baseline, every row also measures it, in the same run.
pub fn run(args: BenchHttpArgs) -> Result<()> {
    let BenchHttpArgs { seconds, baseline } = args;
    let release = super::release_dir()?;
    let logs = root().join("target/bench-http");
    std::fs::create_dir_all(&logs)?;
    let _bare = Server(
        Command::new(release.join("examples/bare_ingest"))
            .arg(BARE_PORT.to_string())
            .spawn()
            .context("starting bare_ingest")?,
    );
    wait_healthy(BARE_PORT)?;
    let serve_log = logs.join("serve.log");
    std::fs::write(&serve_log, "")?;
    let ours = release.join("edgescore");
    let table = Table {
        release: &release,
        logs: &logs,
        ours: &ours,
        baseline: baseline.as_deref(),
        seconds,
    };
    table.print()?;
    let seed = {
        let _ours = fresh_service(&ours, OURS_PORT, &serve_log)?;
        loadgen(&release, OURS_PORT, 10, 5000, 32, seconds)?
    };
    println!(
        "\nseed workload (5,000 events/s in batches of 10, 32 clients) on edgescore: p50 {:.2} ms, p99 {:.2} ms, {:.0} events/s accepted",
        seed.p50, seed.p99, seed.events_per_sec
    );
    println!("edgescore's log: {}", serve_log.display());
    Ok(())
}

/// The benchmark's rows: per client and batch size, the bare server, the native service, ours and
/// the baseline.
struct Table<'a> {
    release: &'a Path,
    logs: &'a Path,
    ours: &'a Path,
    baseline: Option<&'a Path>,
    seconds: u64,
}

impl Table<'_> {
    fn print(&self) -> Result<()> {
        println!(
            "HTTP benchmark, {} s per row, 10,000 users, 3 features; servers and clients share this machine ({} cores)",
            self.seconds,
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let baseline_columns = if self.baseline.is_some() {
            " baseline ev/s | baseline p99 ms | edgescore/baseline |"
        } else {
            ""
        };
        println!(
            "| client | batch | bare ev/s | bare p99 ms | native ev/s | native p99 ms | edgescore ev/s | edgescore p50 ms | edgescore p99 ms | edgescore/bare | edgescore/native |{baseline_columns}"
        );
        let separators = if self.baseline.is_some() { 14 } else { 11 };
        println!("| --- | ---: {}", "| ---: ".repeat(separators - 2) + "|");
        for batch in [10u32, 100] {
            for (name, measure) in self.clients(batch)? {
                self.row(name, batch, &measure)?;
            }
        }
        Ok(())
    }

    /// loadgen, and wrk where it is installed.
    fn clients(&self, batch: u32) -> Result<Vec<(&'static str, Measure)>> {
        let (release, seconds) = (self.release.to_path_buf(), self.seconds);
        let mut clients: Vec<(&str, Measure)> = vec![(
            "loadgen",
            Box::new(move |port| loadgen(&release, port, batch, 0, 64, seconds)),
        )];
        if Command::new("wrk").arg("--version").output().is_ok() {
            let script = wrk_script(self.logs, batch)?;
            clients.push((
                "wrk",
                Box::new(move |port| wrk_run(&script, port, batch, seconds)),
            ));
        }
        Ok(clients)
    }

    /// Each service that keeps windows is fresh, so that what earlier rows left in them (and
    /// what checkpointing that costs) does not weigh on the next row.
    fn row(&self, name: &str, batch: u32, measure: &Measure) -> Result<()> {
        let log = self.logs.join("serve.log");
        let bare = measure(BARE_PORT)?;
        let native = {
            let _native = Server(
                Command::new(self.release.join("examples/native_ingest"))
                    .arg(NATIVE_PORT.to_string())
                    .spawn()
                    .context("starting native_ingest")?,
            );
            wait_healthy(NATIVE_PORT)?;
            measure(NATIVE_PORT)?
        };
        let ours = {
            let _ours = fresh_service(self.ours, OURS_PORT, &log)?;
            measure(OURS_PORT)?
        };
        print!(
            "| {name} | {batch} | {:.0} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            bare.events_per_sec,
            bare.p99,
            native.events_per_sec,
            native.p99,
            ours.events_per_sec,
            ours.p50,
            ours.p99,
            ours.events_per_sec / bare.events_per_sec,
            ours.events_per_sec / native.events_per_sec
        );
        if let Some(binary) = self.baseline {
            let base = {
                let _base = fresh_service(binary, BASELINE_PORT, &log)?;
                measure(BASELINE_PORT)?
            };
            print!(
                " {:.0} | {:.2} | {:.2} |",
                base.events_per_sec,
                base.p99,
                ours.events_per_sec / base.events_per_sec
            );
        }
        println!();
        Ok(())
    }
}

pub(crate) fn loadgen(
    release: &Path,
    port: u16,
    batch: u32,
    rate: u32,
    concurrency: u32,
    seconds: u64,
) -> Result<Measured> {
    let a_day = Duration::from_secs(86_400);
    loadgen_within(release, port, batch, rate, concurrency, seconds, a_day)?
        .context("loadgen did not end within a day")
}

/// [`loadgen`], given up after `limit` (none then): at an offered rate a server cannot keep up
/// with, loadgen sends every request it scheduled, however long that takes.
pub(crate) fn loadgen_within(
    release: &Path,
    port: u16,
    batch: u32,
    rate: u32,
    concurrency: u32,
    seconds: u64,
    limit: Duration,
) -> Result<Option<Measured>> {
    let mut child = loadgen_command(release, port, batch, rate, concurrency, seconds)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()?;
    let deadline = Instant::now() + limit;
    while child.try_wait()?.is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            return Ok(None);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("loadgen failed ({})", out.status);
    }
    parse_loadgen(&String::from_utf8(out.stdout)?).map(Some)
}

fn loadgen_command(
    release: &Path,
    port: u16,
    batch: u32,
    rate: u32,
    concurrency: u32,
    seconds: u64,
) -> Command {
    let mut command = Command::new(release.join("edgescore"));
    command
        .args(["loadgen", "--json", "--url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--batch-size", &batch.to_string()])
        .args(["--events-per-sec", &rate.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--duration", &seconds.to_string()]);
    command
}

/// The figures of `edgescore loadgen --json`'s report.
fn parse_loadgen(text: &str) -> Result<Measured> {
    let field = |name: &str| -> Result<f64> {
        let at = text
            .find(&format!("\"{name}\""))
            .with_context(|| format!("no {name} in {text}"))?;
        let rest = &text[at + name.len() + 3..];
        let end = rest.find([',', '\n', '}']).unwrap_or(rest.len());
        Ok(rest[..end].trim().parse()?)
    };
    Ok(Measured {
        events_per_sec: field("events_per_sec")?,
        p50: field("p50")?,
        p99: field("p99")?,
        accepted: field("events_accepted")? as u64,
        failed: field("http_errors")? as u64,
        store_calls_per_event: field("store_calls_per_event").ok(),
    })
}

/// A Lua script cycling through 1,000 pre-built bodies of `batch` events over 10,000 users.
fn wrk_script(dir: &Path, batch: u32) -> Result<std::path::PathBuf> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let mut x: u64 = 7;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut bodies = Vec::new();
    for _ in 0..1000 {
        let events: Vec<String> = (0..batch)
            .map(|_| {
                let f = |v: u64| (v % 1000) as f64 / 1000.0;
                format!(
                    r#"{{"user_id":"user-{}","timestamp":{now},"features":[{},{},{}]}}"#,
                    next() % 10_000,
                    f(next()),
                    f(next()),
                    f(next())
                )
            })
            .collect();
        bodies.push(format!("[[{{\"events\":[{}]}}]]", events.join(",")));
    }
    let script = format!(
        "wrk.method = \"POST\"\nwrk.headers[\"Content-Type\"] = \"application/json\"\nlocal bodies = {{{}}}\nlocal i = 0\nrequest = function()\n  i = i % #bodies + 1\n  return wrk.format(nil, \"/ingest\", nil, bodies[i])\nend\n",
        bodies.join(",\n")
    );
    let path = dir.join(format!("wrk-batch-{batch}.lua"));
    std::fs::write(&path, script)?;
    Ok(path)
}

fn wrk_run(script: &Path, port: u16, batch: u32, seconds: u64) -> Result<Measured> {
    let out = Command::new("wrk")
        .args(["-t", "2", "-c", "64", "-d"])
        .arg(format!("{seconds}s"))
        .arg("--latency")
        .arg("-s")
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}/ingest"))
        .output()?;
    let text = String::from_utf8(out.stdout)?;
    let number = |prefix: &str| -> Result<f64> {
        let line = text
            .lines()
            .find(|l| l.trim_start().starts_with(prefix))
            .with_context(|| format!("no {prefix:?} in wrk's output:\n{text}"))?;
        let value = line.trim_start()[prefix.len()..].trim();
        let (digits, unit) = value.split_at(
            value
                .find(|c: char| c.is_alphabetic())
                .unwrap_or(value.len()),
        );
        let v: f64 = digits.trim().parse()?;
        Ok(match unit {
            "us" => v / 1e3,
            "s" => v * 1e3,
            _ => v,
        })
    };
    if text.contains("Non-2xx") {
        bail!("wrk saw non-2xx answers:\n{text}");
    }
    let events_per_sec = number("Requests/sec:")? * batch as f64;
    Ok(Measured {
        events_per_sec,
        p50: number("50%")?,
        p99: number("99%")?,
        accepted: (events_per_sec * seconds as f64) as u64,
        failed: 0,
        store_calls_per_event: None,
    })
}
