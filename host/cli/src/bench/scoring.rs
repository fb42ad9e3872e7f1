//! `edgescore bench`: scoring throughput of the component against the same core natively, in one
//! run (the machines are shared: compare the ratio, not the absolute numbers across runs).
//!
//! The native side is tract compiled into this binary, which doubles the release build's time; so
//! it is a cargo feature, `native-tract`, that `cargo xtask bench` turns on. Without it the table
//! has the component's column only.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Args;
use edgescore_runtime::Scorer;

use crate::args::{ModelArgs, RuntimeArgs};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Batch sizes (rows per call)
    #[arg(long, value_delimiter = ',', default_values_t = [1u32, 10, 100, 1000])]
    batches: Vec<u32>,
    /// Measuring time per batch size and side, in seconds
    #[arg(long, default_value_t = 2.0)]
    seconds: f64,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn run(args: BenchArgs) -> Result<()> {
    let chosen = args.model.choose()?;
    let native = native::Native::load(&chosen.onnx).context(chosen.label.clone())?;
    let started = Instant::now();
    let runtime = args.runtime.runtime()?;
    let runtime_load = started.elapsed();
    let mut wasm = Scorer::new(&runtime, &chosen.onnx).context(chosen.label.clone())?;
    start_up(&runtime, &chosen.onnx, runtime_load)?;
    let width = wasm.info().input_width as usize;
    let budget = Duration::from_secs_f64(args.seconds);

    println!(
        "model {}   {} s per measurement",
        chosen.label, args.seconds
    );
    if native.is_none() {
        println!(
            "native tract is not in this build: `cargo xtask bench` (or the `native-tract` feature) adds its column"
        );
    }
    println!(
        "{:>6} {:>16} {:>16} {:>12} {:>12} {:>11}",
        "batch", "native ev/s", "wasm ev/s", "native µs", "wasm µs", "wasm/native"
    );
    for &batch in &args.batches {
        let features = rows(batch as usize, width);
        let wasm_scores = wasm.score(&features)?;
        let native_rate = match &native {
            // On a thread of its own: on the thread that had just run native tract's AVX-512
            // kernels, the component ran ~200x slower (1,050 against 216,000 events/s at batch
            // 10), as if the SSE code Cranelift emits paid an AVX-SSE transition penalty.
            Some(native) => Some(std::thread::scope(|scope| {
                scope
                    .spawn(|| native_rate(native, &features, &wasm_scores, budget, batch))
                    .join()
                    .expect("the native side does not panic")
            })?),
            None => None,
        };
        let wasm_rate = measure(budget, batch, || {
            wasm.score(&features).map(drop).map_err(Into::into)
        })?;
        let or_dash =
            |v: Option<f64>, digits: usize| v.map_or("-".to_string(), |v| format!("{v:.digits$}"));
        println!(
            "{batch:>6} {:>16} {wasm_rate:>16.0} {:>12} {:>12.2} {:>11}",
            or_dash(native_rate, 0),
            or_dash(native_rate.map(|r| 1e6 * batch as f64 / r), 2),
            1e6 * batch as f64 / wasm_rate,
            or_dash(native_rate.map(|r| wasm_rate / r), 2)
        );
    }
    Ok(())
}

/// Native tract's events/s at `batch`, once its scores agree with the component's.
fn native_rate(
    native: &native::Native,
    features: &[f32],
    wasm_scores: &[f32],
    budget: Duration,
    batch: u32,
) -> Result<f64> {
    // Same inputs, same outputs (to float rounding: native tract fuses multiply-adds): a
    // benchmark of a wrong answer is no benchmark.
    let native_scores = native.score(features)?;
    let agree = native_scores.len() == wasm_scores.len()
        && native_scores
            .iter()
            .zip(wasm_scores)
            .all(|(x, y)| (x - y).abs() <= 1e-5 * x.abs().max(1.0));
    anyhow::ensure!(agree, "native and component scores differ at batch {batch}");
    measure(budget, batch, || native.score(features).map(drop))
}

/// What a cold start costs: the compiled component (from the cache after the first run), a
/// fresh instance from the `InstancePre`, and loading the model inside it.
fn start_up(
    runtime: &edgescore_runtime::Runtime,
    onnx: &[u8],
    runtime_load: Duration,
) -> Result<()> {
    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let instantiate = median(
        (0..50)
            .map(|_| {
                let t = Instant::now();
                runtime.instantiate_once().map(|()| t.elapsed())
            })
            .collect::<Result<_>>()?,
    );
    let with_model = median(
        (0..10)
            .map(|_| {
                let t = Instant::now();
                Scorer::new(runtime, onnx).map(|_| t.elapsed())
            })
            .collect::<Result<_, _>>()?,
    );
    println!(
        "start-up: component ready in {:.1} ms, instantiate {:.0} µs, instantiate + load model {:.2} ms (medians)",
        runtime_load.as_secs_f64() * 1e3,
        instantiate.as_secs_f64() * 1e6,
        with_model.as_secs_f64() * 1e3
    );
    Ok(())
}

/// Rows per second over repeated calls for about `budget`, after a short warm-up.
fn measure(budget: Duration, batch: u32, mut call: impl FnMut() -> Result<()>) -> Result<f64> {
    let warmup = Instant::now();
    while warmup.elapsed() < budget / 10 {
        call()?;
    }
    let start = Instant::now();
    let mut calls = 0u64;
    while start.elapsed() < budget {
        call()?;
        calls += 1;
    }
    Ok(calls as f64 * batch as f64 / start.elapsed().as_secs_f64())
}

/// Deterministic features in [0, 1), like the seed's generator sends.
fn rows(n: usize, width: usize) -> Vec<f32> {
    let mut x: u32 = 0x9e37_79b9;
    (0..n * width)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 8) as f32 / (1u32 << 24) as f32
        })
        .collect()
}

/// Native tract, the yardstick, when the binary is built with it.
#[cfg(feature = "native-tract")]
mod native {
    use anyhow::Result;

    pub struct Native(edgescore_engine::Model);

    impl Native {
        pub fn load(onnx: &[u8]) -> Result<Option<Native>> {
            Ok(Some(Native(edgescore_engine::Model::load(onnx)?)))
        }

        pub fn score(&self, features: &[f32]) -> Result<Vec<f32>> {
            Ok(self.0.score(features)?)
        }
    }
}

/// Without native tract there is no yardstick: `load` says so with `None`.
#[cfg(not(feature = "native-tract"))]
mod native {
    use anyhow::Result;

    pub enum Native {}

    impl Native {
        pub fn load(_onnx: &[u8]) -> Result<Option<Native>> {
            Ok(None)
        }

        pub fn score(&self, _features: &[f32]) -> Result<Vec<f32>> {
            match *self {}
        }
    }
}
