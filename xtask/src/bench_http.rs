//! `cargo xtask bench-http`: the HTTP benchmark of issue 3. Builds the release host and the bare
//! axum + serde_json yardstick (`host/examples/bare_ingest.rs`), starts both, and loads each with
//! the same clients in the same run: our `edgescore loadgen` and, when installed, `wrk`. Prints
//! events/s and latency per server and the ratio ours/bare (the machines are shared: compare
//! ratios within one run, not absolute numbers across runs).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{host_env, root};

const BARE_PORT: u16 = 18001;
const OURS_PORT: u16 = 18002;

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_healthy(port: u16) -> Result<()> {
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

/// One measurement: events/s accepted and latency percentiles in ms.
struct Measured {
    events_per_sec: f64,
    p50: f64,
    p99: f64,
}

pub fn run(args: &[String]) -> Result<()> {
    let seconds: u64 = args.first().and_then(|s| s.parse().ok()).unwrap_or(10);
    crate::build_component()?;
    crate::step(
        "building the release host and the bare yardstick",
        host_env(crate::cargo().args([
            "build",
            "--release",
            "--package",
            "edgescore-host",
            "--bin",
            "edgescore",
            "--example",
            "bare_ingest",
        ])),
    )?;
    let release = root().join("target/release");
    let logs = root().join("target/bench-http");
    std::fs::create_dir_all(&logs)?;
    let _bare = Server(
        Command::new(release.join("examples/bare_ingest"))
            .arg(BARE_PORT.to_string())
            .spawn()
            .context("starting bare_ingest")?,
    );
    wait_healthy(BARE_PORT)?;
    // Each row gets a fresh service, so that what earlier rows left in the windows (and what
    // checkpointing that costs) does not weigh on the next row.
    let serve_log = logs.join("serve.log");
    std::fs::write(&serve_log, "")?;
    let fresh_ours = {
        let release = release.clone();
        move || -> Result<Server> {
            let server = Server(
                host_env(&mut Command::new(release.join("edgescore")))
                    .args(["serve", "--port", &OURS_PORT.to_string()])
                    .stdout(
                        std::fs::OpenOptions::new()
                            .create(true)
                            .append(true)
                            .open(&serve_log)?,
                    )
                    .spawn()
                    .context("starting edgescore serve")?,
            );
            wait_healthy(OURS_PORT)?;
            Ok(server)
        }
    };
    let wrk = Command::new("wrk").arg("--version").output().is_ok();

    println!(
        "HTTP benchmark, {seconds} s per row, 10,000 users, 3 features; servers and clients share this machine ({} cores)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!(
        "| client | batch | bare ev/s | bare p99 ms | edgescore ev/s | edgescore p50 ms | edgescore p99 ms | edgescore/bare |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    for batch in [10u32, 100] {
        let release = release.clone();
        let mut clients: Vec<(&str, Measure)> = vec![(
            "loadgen",
            Box::new(move |port| loadgen(&release, port, batch, 0, 64, seconds)),
        )];
        if wrk {
            let script = wrk_script(&logs, batch)?;
            clients.push((
                "wrk",
                Box::new(move |port| wrk_run(&script, port, batch, seconds)),
            ));
        }
        for (name, measure) in &clients {
            let bare = measure(BARE_PORT)?;
            let ours = {
                let _ours = fresh_ours()?;
                measure(OURS_PORT)?
            };
            println!(
                "| {name} | {batch} | {:.0} | {:.2} | {:.0} | {:.2} | {:.2} | {:.2} |",
                bare.events_per_sec,
                bare.p99,
                ours.events_per_sec,
                ours.p50,
                ours.p99,
                ours.events_per_sec / bare.events_per_sec
            );
        }
    }
    let seed = {
        let _ours = fresh_ours()?;
        loadgen(&release, OURS_PORT, 10, 5000, 32, seconds)?
    };
    println!(
        "\nseed workload (5,000 events/s in batches of 10, 32 clients) on edgescore: p50 {:.2} ms, p99 {:.2} ms, {:.0} events/s accepted",
        seed.p50, seed.p99, seed.events_per_sec
    );
    println!("edgescore's log: {}", logs.join("serve.log").display());
    Ok(())
}

fn loadgen(
    release: &Path,
    port: u16,
    batch: u32,
    rate: u32,
    concurrency: u32,
    seconds: u64,
) -> Result<Measured> {
    let out = Command::new(release.join("edgescore"))
        .args(["loadgen", "--json", "--url"])
        .arg(format!("http://127.0.0.1:{port}"))
        .args(["--batch-size", &batch.to_string()])
        .args(["--events-per-sec", &rate.to_string()])
        .args(["--concurrency", &concurrency.to_string()])
        .args(["--duration", &seconds.to_string()])
        .stderr(Stdio::inherit())
        .output()?;
    if !out.status.success() {
        bail!("loadgen failed ({})", out.status);
    }
    let text = String::from_utf8(out.stdout)?;
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
    Ok(Measured {
        events_per_sec: number("Requests/sec:")? * batch as f64,
        p50: number("50%")?,
        p99: number("99%")?,
    })
}
