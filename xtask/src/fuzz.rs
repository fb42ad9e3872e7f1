//! `cargo xtask fuzz [--secs N] [TARGET...]`: runs the fuzz targets of `tests/fuzz` (cargo-fuzz,
//! libFuzzer) for N seconds each (default 60), one after the other, then prints each target's
//! executions per second and whether it found a crash. Installs cargo-fuzz where it is missing.
//! Not part of `cargo xtask test`.
//!
//! cargo-fuzz passes nightly-only flags to rustc; `RUSTC_BOOTSTRAP=1` lets the machine's stable
//! toolchain take them. The targets run without a sanitizer (`-s none`): the code is safe Rust,
//! what the fuzzer looks for is panics, traps and broken invariants.

use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::{build_component, cargo, root, step};

const TARGETS: &[&str] = &[
    "ingest_body",
    "predict_body",
    "stored_window",
    "snapshot_restore",
    "component",
];

struct Run {
    target: String,
    executions: u64,
    seconds: f64,
    crashed: bool,
}

pub fn run(args: &[String]) -> Result<()> {
    let (secs, targets) = parse_args(args)?;
    ensure_cargo_fuzz()?;
    build_component()?;
    let mut runs = Vec::new();
    for target in &targets {
        runs.push(fuzz_one(target, secs)?);
    }
    println!("| target | executions | seconds | executions/s | result |");
    println!("|---|---|---|---|---|");
    for r in &runs {
        println!(
            "| {} | {} | {:.0} | {:.0} | {} |",
            r.target,
            r.executions,
            r.seconds,
            r.executions as f64 / r.seconds,
            if r.crashed {
                "CRASH (see tests/fuzz/artifacts)"
            } else {
                "no crash"
            }
        );
    }
    if runs.iter().any(|r| r.crashed) {
        bail!("a fuzz target crashed");
    }
    Ok(())
}

fn parse_args(args: &[String]) -> Result<(u64, Vec<String>)> {
    let mut secs = 60;
    let mut targets = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        if arg == "--secs" {
            let value = args.next().context("--secs: needs a number of seconds")?;
            secs = value
                .parse()
                .with_context(|| format!("--secs: not a number of seconds: {value}"))?;
        } else if TARGETS.contains(&arg.as_str()) {
            targets.push(arg.clone());
        } else {
            bail!(
                "unknown fuzz target or flag {arg:?} (targets: {})",
                TARGETS.join(", ")
            );
        }
    }
    if targets.is_empty() {
        targets = TARGETS.iter().map(|t| t.to_string()).collect();
    }
    Ok((secs, targets))
}

fn ensure_cargo_fuzz() -> Result<()> {
    let present = cargo()
        .args(["fuzz", "--version"])
        .output()
        .is_ok_and(|o| o.status.success());
    if present {
        return Ok(());
    }
    step(
        "installing cargo-fuzz",
        cargo().args(["install", "cargo-fuzz", "--locked"]),
    )
}

fn fuzz_one(target: &str, secs: u64) -> Result<Run> {
    let fuzz_dir = root().join("tests/fuzz");
    let corpus = fuzz_dir.join("corpus").join(target);
    let seeds = fuzz_dir.join("seeds").join(target);
    std::fs::create_dir_all(&corpus)?;
    std::fs::create_dir_all(&seeds)?; // a target may have no committed seeds
    eprintln!("xtask: fuzzing {target} for {secs} s");
    let start = Instant::now();
    let output = cargo()
        .env("RUSTC_BOOTSTRAP", "1")
        .args(["fuzz", "run", "--sanitizer", "none", "--fuzz-dir"])
        .arg(&fuzz_dir)
        .arg(target)
        .arg(&corpus)
        .arg(&seeds)
        .arg("--")
        .arg(format!("-max_total_time={secs}"))
        .arg("-print_final_stats=1")
        .output()
        .with_context(|| format!("running cargo fuzz for {target}"))?;
    let log = String::from_utf8_lossy(&output.stderr);
    std::fs::write(
        fuzz_dir.join(format!("corpus/{target}.log")),
        log.as_bytes(),
    )?;
    let executions = final_stat(&log, "stat::number_of_executed_units:").unwrap_or(0);
    let seconds = final_stat(&log, "stat::total_run_time:")
        .map_or_else(|| start.elapsed().as_secs_f64(), |s| s as f64);
    Ok(Run {
        target: target.to_string(),
        executions,
        seconds: seconds.max(1.0),
        crashed: !output.status.success(),
    })
}

/// A number from libFuzzer's `-print_final_stats` lines.
fn final_stat(log: &str, name: &str) -> Option<u64> {
    log.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.trim().parse().ok())
}
