//! `edgescore bench-app`: the Spin app's start-up cost and its state's size, measured in one run
//! through the wasmtime harness (no HTTP: the app's own time). Cold = a fresh instance for the
//! request (instantiate, load the model, score); warm = an instance that has served before.

use std::time::{Duration, Instant};

use anyhow::{Result, ensure};
use axum::body::Bytes;
use axum::http::Request;
use clap::Args;
use edgescore_app_harness::{App, AppConfig, StoreBackend};
use edgescore_runtime::GuestLimits;
use hdrhistogram::Histogram;

#[derive(Debug, Args)]
pub struct BenchAppArgs {
    /// Requests per row of the table
    #[arg(long, default_value_t = 100)]
    requests: usize,
    /// Users and events per user ingested to measure the stored bytes per event
    #[arg(long, default_value_t = 500)]
    users: usize,
    #[arg(long, default_value_t = 60)]
    events_per_user: usize,
}

fn app(reuse: usize) -> Result<std::sync::Arc<App>> {
    App::new(
        edgescore_embedded::APP,
        AppConfig {
            store: "default".into(),
            backend: StoreBackend::Memory,
            durability: edgescore_app_harness::Durability::Fsync,
            env: Vec::new(),
            variables: Vec::new(),
            reuse,
            max_instances: 1,
            instance_wait: std::time::Duration::from_secs(60),
            max_body_bytes: 8 << 20,
            limits: GuestLimits::default(),
        },
    )
}

fn predict() -> Request<Bytes> {
    Request::post("http://app/predict")
        .body(Bytes::from_static(br#"{"instances":[[0.1,0.2,0.3]]}"#))
        .expect("a valid request")
}

fn ingest(users: impl Iterator<Item = String>, now: f64) -> Request<Bytes> {
    let events: Vec<serde_json::Value> = users
        .enumerate()
        .map(|(i, u)| serde_json::json!({"user_id": u, "timestamp": now, "features": [0.001 * i as f32, 0.5, 0.9]}))
        .collect();
    let body = serde_json::json!({ "events": events }).to_string();
    Request::post("http://app/ingest")
        .body(Bytes::from(body))
        .expect("a valid request")
}

async fn measure(
    app: &App,
    requests: usize,
    request: impl Fn(usize) -> Request<Bytes>,
) -> Result<Histogram<u64>> {
    let mut h = Histogram::new_with_bounds(1, 60_000_000, 3)?;
    for i in 0..requests {
        let started = Instant::now();
        let response = app.handle(request(i)).await?;
        h.saturating_record(started.elapsed().as_micros() as u64);
        ensure!(response.status() == 200, "{:?}", response.body());
    }
    Ok(h)
}

fn row(name: &str, h: &Histogram<u64>) {
    let ms = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
    println!(
        "{name:<34} {:>9.3} {:>9.3} {:>9.3} {:>9.3}",
        ms(0.5),
        ms(0.99),
        h.mean() / 1e3,
        h.max() as f64 / 1e3
    );
}

pub fn run(args: BenchAppArgs) -> Result<()> {
    let tokio = tokio::runtime::Runtime::new()?;
    tokio.block_on(async {
        let started = Instant::now();
        let cold = app(1)?;
        println!(
            "app component ready (compiled or loaded from the cache) in {:.0} ms",
            started.elapsed().as_secs_f64() * 1e3
        );
        let warm = app(usize::MAX)?;
        let now = edgescore_contract::clock::unix_now();
        println!(
            "{:<34} {:>9} {:>9} {:>9} {:>9}",
            "request (ms)", "p50", "p99", "mean", "max"
        );
        let n = args.requests;
        row(
            "predict 1 row, cold instance",
            &measure(&cold, n, |_| predict()).await?,
        );
        measure(&warm, 1, |_| predict()).await?;
        row(
            "predict 1 row, warm instance",
            &measure(&warm, n, |_| predict()).await?,
        );
        let batch = |i: usize| ingest((0..10).map(move |u| format!("b{i}-{u}")), now);
        row(
            "ingest 10 events, cold instance",
            &measure(&cold, n, batch).await?,
        );
        row(
            "ingest 10 events, warm instance",
            &measure(&warm, n, batch).await?,
        );
        let health = |_| {
            Request::get("http://app/health")
                .body(Bytes::new())
                .expect("a valid request")
        };
        row(
            "health (no model), cold instance",
            &measure(&cold, n, health).await?,
        );
        stored_bytes(&args, now).await
    })
}

/// Stored bytes per event: users × events, in batches of 100 events, on a warm instance.
async fn stored_bytes(args: &BenchAppArgs, now: f64) -> Result<()> {
    {
        let store = app(usize::MAX)?;
        let total = args.users * args.events_per_user;
        let started = Instant::now();
        for b in 0..total.div_ceil(100) {
            let users =
                (b * 100..((b + 1) * 100).min(total)).map(|i| format!("user-{}", i % args.users));
            let response = store.handle(ingest(users, now)).await?;
            ensure!(response.status() == 200, "{:?}", response.body());
        }
        let elapsed = started.elapsed();
        let windows: usize = store
            .key_value()
            .values("default", "user/")
            .iter()
            .map(Vec::len)
            .sum();
        let (keys, bytes) = store.key_value().footprint();
        println!(
            "state: {total} events of {} users: window values {windows} bytes = {:.2} bytes/event; \
             all keys + values {bytes} bytes in {keys} keys = {:.2} bytes/event",
            args.users,
            windows as f64 / total as f64,
            bytes as f64 / total as f64
        );
        println!(
            "ingest of those batches of 100 (warm): {:.0} events/s",
            total as f64
                / elapsed
                    .as_secs_f64()
                    .max(Duration::from_micros(1).as_secs_f64())
        );
        Ok(())
    }
}
