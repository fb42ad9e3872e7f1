//! `edgescore bench-durable [SECONDS]` (run by `cargo xtask bench-durable`): what durability
//! costs, in one run on this machine.
//!
//! 1. The seed workload (batches of 10, 32 clients) against `edgescore serve` with
//!    `--durability none`, `interval` and `fsync`: events/s at saturation with p50/p99, then p99
//!    at a fixed 5,000 events/s. The modes take turns for [`ROUNDS`] rounds and each figure is
//!    the median of its rounds, so that a noisy neighbour for a few seconds does not decide a
//!    ratio.
//! 2. Start to ready with 1.5M events in the windows (10,000 users): after a SIGTERM (the last
//!    snapshot covers almost everything) and after a SIGKILL (the log since the last snapshot is
//!    replayed).
//! 3. Bytes on disk per event in the windows.

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::http::{
    Measured, Server, data_dir, fresh_service_with, loadgen, start_service, wait_healthy,
};
use super::root;

const PORT: u16 = 18010;
const WINDOW_EVENTS: u64 = 1_500_000;
const ROUNDS: usize = 3;

pub fn run(args: super::SecondsArgs) -> Result<()> {
    let seconds = args.seconds;
    let release = super::release_dir()?;
    let ours = release.join("edgescore");
    let logs = root().join("target/bench-durable");
    std::fs::create_dir_all(&logs)?;
    let log = logs.join("serve.log");
    std::fs::write(&log, "")?;

    println!(
        "Durability, seed workload (batches of 10, 32 clients, 10,000 users), {seconds} s per measurement, \
         median of {ROUNDS} rounds, this machine ({} cores, clients and server share it)",
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let (sync_p50, sync_p99) = super::disk_sync_latency(&logs)?;
    println!(
        "floor: this disk's fdatasync p50 {sync_p50:.2} ms, p99 {sync_p99:.2} ms (an acknowledged \
         write under --durability fsync waits for one at least)"
    );
    println!("| durability | events/s | p50 ms | p99 ms | ÷ none | p99 ms at 5,000 events/s |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    let modes: [(&str, &[&str]); 3] = [
        ("none", &["--durability", "none"]),
        ("interval (1 s)", &["--durability", "interval"]),
        ("fsync (default)", &["--durability", "fsync"]),
    ];
    let mut rounds: Vec<Vec<(Measured, Measured)>> = modes.iter().map(|_| Vec::new()).collect();
    for _ in 0..ROUNDS {
        for ((_, flags), measured) in modes.iter().zip(&mut rounds) {
            let saturated = {
                settle_disk()?;
                let _server = fresh_service_with(&ours, PORT, &log, flags)?;
                loadgen(&release, PORT, 10, 0, 32, seconds)?
            };
            let paced = {
                settle_disk()?;
                let _server = fresh_service_with(&ours, PORT, &log, flags)?;
                loadgen(&release, PORT, 10, 5000, 32, seconds)?
            };
            measured.push((saturated, paced));
        }
    }
    let mut none = None;
    for ((name, _), measured) in modes.iter().zip(&rounds) {
        let median = |f: &dyn Fn(&(Measured, Measured)) -> f64| {
            let mut values: Vec<f64> = measured.iter().map(f).collect();
            values.sort_by(f64::total_cmp);
            values[values.len() / 2]
        };
        let events_per_sec = median(&|(s, _)| s.events_per_sec);
        let base = *none.get_or_insert(events_per_sec);
        println!(
            "| {name} | {events_per_sec:.0} | {:.2} | {:.2} | {:.2} | {:.2} |",
            median(&|(s, _)| s.p50),
            median(&|(s, _)| s.p99),
            events_per_sec / base,
            median(&|(_, p)| p.p99),
        );
    }

    restart_times(&ours, &release, &log)?;
    println!("edgescore's log: {}", log.display());
    Ok(())
}

/// Writes back what the previous measurement left dirty in the page cache, so that its
/// writeback does not stall this one's fsyncs.
fn settle_disk() -> Result<()> {
    let status = Command::new("sync").status().context("running sync")?;
    anyhow::ensure!(status.success(), "sync failed ({status})");
    Ok(())
}

/// Fills a service to 1.5M events in the windows, then times restarts.
fn restart_times(ours: &Path, release: &Path, log: &Path) -> Result<()> {
    let data = data_dir(log, PORT);
    let server = fresh_service_with(ours, PORT, log, &[])?;
    let started = Instant::now();
    while events_in_windows()? < WINDOW_EVENTS {
        if started.elapsed() > Duration::from_secs(600) {
            bail!("the windows did not reach {WINDOW_EVENTS} events in 10 minutes");
        }
        loadgen(release, PORT, 100, 0, 32, 5)?;
    }
    let events = events_in_windows()?;
    let filled = started.elapsed();
    // Let a checkpoint happen (at most 10 s after the last), as it would in a steady service.
    std::thread::sleep(Duration::from_secs(1));
    let bytes = disk_bytes(&data)?;
    println!(
        "\n{events} events in the windows (10,000 users), filled in {:.0} s: {bytes} bytes on disk, {:.1} bytes per event",
        filled.as_secs_f64(),
        bytes as f64 / events as f64
    );
    stop(server, libc_signal::TERM)?;
    let after_term = time_to_ready(ours, log, &data)?;
    let server = start_service(ours, PORT, log, &data, &[])?;
    wait_healthy(PORT)?;
    // Some more load, so that the log since the last snapshot is not empty, then SIGKILL.
    loadgen(release, PORT, 100, 0, 32, 3)?;
    let events = events_in_windows()?;
    stop(server, libc_signal::KILL)?;
    let after_kill = time_to_ready(ours, log, &data)?;
    println!("| restart | events in windows | start to ready |");
    println!("| --- | ---: | ---: |");
    println!(
        "| after SIGTERM | {WINDOW_EVENTS}+ | {:.2} s |",
        after_term.as_secs_f64()
    );
    println!(
        "| after SIGKILL | {events} | {:.2} s |",
        after_kill.as_secs_f64()
    );
    Ok(())
}

mod libc_signal {
    pub const TERM: &str = "TERM";
    pub const KILL: &str = "KILL";
}

fn stop(mut server: Server, signal: &str) -> Result<()> {
    let status = Command::new("kill")
        .args(["-s", signal, &server.0.id().to_string()])
        .status()?;
    if !status.success() {
        bail!("kill -s {signal} failed");
    }
    server.0.wait()?;
    Ok(())
}

/// Spawn to `/ready` 200, on `data` as it is.
fn time_to_ready(ours: &Path, log: &Path, data: &Path) -> Result<Duration> {
    let started = Instant::now();
    let _server = start_service(ours, PORT, log, data, &[])?;
    loop {
        if let Ok((200, _)) = get("/ready") {
            return Ok(started.elapsed());
        }
        if started.elapsed() > Duration::from_secs(300) {
            bail!("not ready in 5 minutes");
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn events_in_windows() -> Result<u64> {
    let (_, body) = get("/stats")?;
    let at = body
        .find("\"events_in_windows\":")
        .context("no events_in_windows in /stats")?;
    let rest = &body[at + "\"events_in_windows\":".len()..];
    let end = rest.find([',', '}']).unwrap_or(rest.len());
    Ok(rest[..end].trim().parse()?)
}

/// A plain HTTP/1.1 GET on the service.
fn get(path: &str) -> Result<(u16, String)> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", PORT))?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    let status = answer.get(9..12).context("no status")?.parse()?;
    let body = answer.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    Ok((status, body.to_string()))
}

/// Bytes of the files under `dir`.
fn disk_bytes(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        total += if meta.is_dir() {
            disk_bytes(&entry.path())?
        } else {
            meta.len()
        };
    }
    Ok(total)
}
