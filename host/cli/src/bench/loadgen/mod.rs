//! `edgescore loadgen`: the seed's event generator, done well. Concurrent clients post batches of
//! random events to `/ingest` at a fixed total rate (or as fast as the server answers), then a
//! table of what was sent, accepted and rejected, HTTP errors, throughput and latency percentiles.
//! With `--verify` it then asks the server for a sample of users' medians and compares them with
//! its own record of what it sent, scored here with the core library.
//!
//! At a fixed rate, latency is measured from when a request was due, not when it was sent, so a
//! stalled server cannot hide its stall by delaying the requests (coordinated omission).
//!
//! - [`pacing`]: when each client sends;
//! - [`stats`]: what the clients saw, counted and merged, and the percentiles;
//! - [`verify`]: the served medians against what was sent.

mod pacing;
mod stats;
mod verify;

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use serde::{Deserialize, Serialize};

use pacing::Pacing;
use stats::{ClientResult, Percentiles};
use verify::Verified;

use crate::args::{ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct LoadgenArgs {
    /// The service's base URL
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    url: String,
    /// Total events per second to send (0: as fast as the server answers)
    #[arg(long, default_value_t = 5000)]
    events_per_sec: u64,
    /// How long to send, in seconds
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// Distinct users the events are spread over
    #[arg(long, default_value_t = 10_000)]
    users: u32,
    /// Events per request
    #[arg(long, default_value_t = 10)]
    batch_size: u32,
    /// Features per event (the model's input width)
    #[arg(long, default_value_t = 3)]
    features: u32,
    /// Requests in flight at once
    #[arg(long, default_value_t = 32)]
    concurrency: u32,
    /// Afterwards, compare this many users' medians with what was sent (0: no check). Needs a
    /// server that received nothing else, serving the model chosen by the model options
    #[arg(long, default_value_t = 0)]
    verify: u32,
    /// Print the result as one JSON object instead of a table
    #[arg(long)]
    json: bool,
    /// Seed of the random events
    #[arg(long, default_value_t = 7)]
    seed: u64,
    #[command(flatten)]
    model: ModelArgs,
    // The component `--verify` scores with.
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[derive(Serialize)]
struct Batch<'a> {
    events: &'a [EventOut],
}

#[derive(Serialize, Clone)]
pub struct EventOut {
    user_id: String,
    timestamp: f64,
    features: Vec<f32>,
}

#[derive(Deserialize)]
pub struct IngestAnswer {
    processed: u64,
    rejected: Vec<RejectedAnswer>,
}

#[derive(Deserialize)]
pub struct RejectedAnswer {
    index: usize,
}

/// The final report.
#[derive(Serialize)]
pub struct Report {
    url: String,
    seconds: f64,
    requests: u64,
    events_sent: u64,
    events_accepted: u64,
    events_rejected: u64,
    http_errors: u64,
    errors: HashMap<String, u64>,
    events_per_sec: f64,
    latency_ms: Percentiles,
    /// The Spin app's key-value store calls per accepted event (none from a service that does
    /// not count them).
    #[serde(skip_serializing_if = "Option::is_none")]
    store_calls_per_event: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    verify: Option<Verified>,
}

pub fn run(args: LoadgenArgs) -> Result<()> {
    if args.batch_size == 0 || args.concurrency == 0 || args.users == 0 {
        bail!("batch-size, concurrency and users: must be at least 1");
    }
    if !(args.duration.is_finite() && args.duration > 0.0) {
        bail!("duration: must be a number of seconds above 0");
    }
    let tokio = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    let report = tokio.block_on(generate(&args))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print_table(&report, &args);
    }
    if let Some(v) = &report.verify
        && v.mismatches > 0
    {
        bail!(
            "verify: {} of {} users' medians differ from what was sent",
            v.mismatches,
            v.users_checked
        );
    }
    Ok(())
}

async fn generate(args: &LoadgenArgs) -> Result<Report> {
    let base = args.url.trim_end_matches('/').to_string();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.concurrency as usize)
        .timeout(Duration::from_secs(30))
        .build()?;
    // Fail early and clearly when nothing is listening.
    client
        .get(format!("{base}/health"))
        .send()
        .await
        .with_context(|| format!("{base}/health: the service does not answer"))?;

    let sent = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let progress = progress_bar(args, sent.clone(), done.clone());
    let started = Instant::now();
    let results = run_clients(args, &client, &base, started, sent).await?;
    let seconds = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    if let Some(p) = progress {
        let _ = p.await;
    }

    let merged = ClientResult::merge(results)?;
    let verify = if args.verify > 0 {
        Some(verify::verify(args, &client, &base, &merged.record).await?)
    } else {
        None
    };
    Ok(Report {
        url: base,
        seconds,
        requests: merged.requests,
        events_sent: merged.sent,
        events_accepted: merged.accepted,
        events_rejected: merged.rejected,
        http_errors: merged.errors.values().sum(),
        events_per_sec: merged.accepted as f64 / seconds,
        errors: merged.errors,
        latency_ms: Percentiles::of(&merged.latency),
        store_calls_per_event: (merged.store_calls > 0)
            .then(|| merged.store_calls as f64 / merged.accepted.max(1) as f64),
        verify,
    })
}

/// `--concurrency` clients posting from `started` for `--duration`, each on its share.
async fn run_clients(
    args: &LoadgenArgs,
    client: &reqwest::Client,
    base: &str,
    started: Instant,
    sent: Arc<AtomicU64>,
) -> Result<Vec<ClientResult>> {
    let duration = Duration::from_secs_f64(args.duration);
    let mut clients = Vec::new();
    for c in 0..args.concurrency {
        let client = client.clone();
        let url = format!("{base}/ingest");
        let sent = sent.clone();
        let spec = ClientSpec {
            index: c,
            clients: args.concurrency,
            users: args.users,
            batch_size: args.batch_size,
            features: args.features,
            events_per_sec: args.events_per_sec,
            record: args.verify > 0,
            seed: args.seed,
        };
        clients.push(tokio::spawn(async move {
            run_client(spec, client, url, started, duration, sent).await
        }));
    }
    let mut results = Vec::new();
    for c in clients {
        results.push(c.await?);
    }
    Ok(results)
}

struct ClientSpec {
    index: u32,
    clients: u32,
    users: u32,
    batch_size: u32,
    features: u32,
    events_per_sec: u64,
    record: bool,
    seed: u64,
}

async fn run_client(
    spec: ClientSpec,
    client: reqwest::Client,
    url: String,
    started: Instant,
    duration: Duration,
    sent: Arc<AtomicU64>,
) -> ClientResult {
    let mut rng = fastrand::Rng::with_seed(spec.seed.wrapping_mul(1_000_003) + spec.index as u64);
    let mut result = ClientResult::new();
    let mut pacing = Pacing::new(
        spec.events_per_sec,
        spec.batch_size,
        (spec.index, spec.clients),
        started,
        duration,
    );
    let mut events = Vec::with_capacity(spec.batch_size as usize);
    let mut previous_answer = started;
    while let Some(scheduled) = pacing.next_due(Instant::now()) {
        tokio::time::sleep_until(scheduled.into()).await;
        let counted_from = pacing::latency_start(scheduled, previous_answer, Instant::now());
        let now = edgescore_contract::clock::unix_now();
        events.clear();
        for _ in 0..spec.batch_size {
            events.push(EventOut {
                user_id: format!("user-{}", rng.u32(0..spec.users)),
                timestamp: now,
                features: (0..spec.features).map(|_| rng.f32()).collect(),
            });
        }
        let body = serde_json::to_vec(&Batch { events: &events }).expect("serializable");
        let answer = client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await;
        result.requests += 1;
        result.sent += events.len() as u64;
        sent.fetch_add(events.len() as u64, Ordering::Relaxed);
        let outcome = match answer {
            Ok(response) if response.status().is_success() => {
                result.store_calls += store_calls(&response);
                response
                    .json::<IngestAnswer>()
                    .await
                    .map_err(|e| format!("bad answer: {}", e.without_url()))
            }
            Ok(response) => Err(format!("HTTP {}", response.status().as_u16())),
            Err(e) => Err(format!("connection: {}", e.without_url())),
        };
        previous_answer = Instant::now();
        let micros = (previous_answer - counted_from).as_micros() as u64;
        result.latency.saturating_record(micros.max(1));
        match outcome {
            Ok(answer) => result.answered(&events, &answer, spec.record),
            Err(kind) => *result.errors.entry(kind).or_default() += 1,
        }
    }
    result
}

/// The store calls an answer of the Spin app says it cost (0 if it does not say).
fn store_calls(response: &reqwest::Response) -> u64 {
    response
        .headers()
        .get("edgescore-store-calls")
        .and_then(|v| v.to_str().ok()?.parse().ok())
        .unwrap_or(0)
}

fn progress_bar(
    args: &LoadgenArgs,
    sent: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
) -> Option<tokio::task::JoinHandle<()>> {
    use std::io::IsTerminal;
    if args.json || !std::io::stderr().is_terminal() {
        return None;
    }
    let millis = (args.duration * 1e3) as u64;
    let bar = indicatif::ProgressBar::new(millis);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:40} {elapsed}/{duration}  {msg}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let started = Instant::now();
    Some(tokio::spawn(async move {
        while !done.load(Ordering::Relaxed) {
            let elapsed = started.elapsed();
            bar.set_position((elapsed.as_millis() as u64).min(millis));
            let sent = sent.load(Ordering::Relaxed);
            bar.set_message(format!(
                "{sent} events sent, {:.0}/s",
                sent as f64 / elapsed.as_secs_f64().max(1e-3)
            ));
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        bar.finish_and_clear();
    }))
}

fn print_table(r: &Report, args: &LoadgenArgs) {
    let rate = if args.events_per_sec == 0 {
        "as fast as possible".to_string()
    } else {
        format!("{} events/s", args.events_per_sec)
    };
    println!(
        "loadgen: {:.1} s against {}, {rate}, batches of {}, {} users, {} clients",
        r.seconds, r.url, args.batch_size, args.users, args.concurrency
    );
    let mut rows: Vec<(&str, String)> = vec![
        ("requests", r.requests.to_string()),
        ("events sent", r.events_sent.to_string()),
        ("events accepted", r.events_accepted.to_string()),
        ("events rejected", r.events_rejected.to_string()),
        ("HTTP errors", r.http_errors.to_string()),
        ("events/s accepted", format!("{:.0}", r.events_per_sec)),
        ("latency p50", format!("{:.2} ms", r.latency_ms.p50)),
        ("latency p95", format!("{:.2} ms", r.latency_ms.p95)),
        ("latency p99", format!("{:.2} ms", r.latency_ms.p99)),
        ("latency max", format!("{:.2} ms", r.latency_ms.max)),
    ];
    if let Some(calls) = r.store_calls_per_event {
        rows.push(("store calls/event", format!("{calls:.2}")));
    }
    for (name, value) in rows {
        println!("  {name:<18} {value:>14}");
    }
    let mut errors: Vec<_> = r.errors.iter().collect();
    errors.sort();
    for (kind, n) in errors {
        println!("  error {kind}: {n}");
    }
    if let Some(v) = &r.verify {
        println!(
            "  verify             {} users checked, {} mismatches",
            v.users_checked, v.mismatches
        );
    }
}
