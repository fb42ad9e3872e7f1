//! `edgescore replay FILE`: every batch of the file through the engine, then each user's median
//! and the engine's stats.

use std::collections::BTreeSet;
use std::path::PathBuf;

use anyhow::{Context, Result};
use clap::Args;
use edgescore_contract::clock::unix_now as now;
use edgescore_runtime::ScoringEngine;
use edgescore_types::{EngineStats, Rejection, UserMedian};
use serde_json::json;

use crate::args::{EngineArgs, ModelArgs, RuntimeArgs};
use crate::input::read_event_batches;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Events: one `{"events": [...]}` document, or JSON lines of batches or single events
    file: PathBuf,
    #[command(flatten)]
    engine: EngineArgs,
    /// The clock to judge `future` events by, in Unix seconds [default: now]
    #[arg(long)]
    now: Option<f64>,
    /// Print one JSON document instead of tables
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    runtime: RuntimeArgs,
}

pub fn run(args: ReplayArgs) -> Result<()> {
    let text = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let batches = read_event_batches(&text).with_context(|| args.file.display().to_string())?;
    let config = args.engine.config()?;
    let model = args.model.choose()?;
    let mut engine = ScoringEngine::new(&args.runtime.runtime()?, &model.onnx, config)
        .context(model.label.clone())?;
    let now = args.now.unwrap_or_else(now);

    let mut rejections = Vec::new();
    let mut offset = 0u64;
    for batch in &batches {
        let report = engine.ingest(batch, now)?;
        rejections.extend(
            report
                .rejections
                .into_iter()
                .map(|r| (offset + r.index as u64, r)),
        );
        offset += batch.len() as u64;
    }
    let users: BTreeSet<&str> = batches
        .iter()
        .flatten()
        .map(|e| e.user_id.as_str())
        .collect();
    let mut medians = Vec::new();
    for user in users {
        medians.push((user, engine.median(user)?));
    }
    let stats = engine.stats()?;
    let replayed = Replayed {
        model: model.label,
        batches: batches.len(),
        medians,
        rejections,
        stats,
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&replayed.json())?);
    } else {
        replayed.print();
    }
    Ok(())
}

/// What a replay found.
struct Replayed<'a> {
    model: String,
    batches: usize,
    medians: Vec<(&'a str, UserMedian)>,
    /// By position in the whole file.
    rejections: Vec<(u64, Rejection)>,
    stats: EngineStats,
}

impl Replayed<'_> {
    fn json(&self) -> serde_json::Value {
        let Replayed {
            model,
            medians,
            rejections,
            stats,
            ..
        } = self;
        json!({
            "model": model,
            "users": medians.iter().map(|(u, m)| json!({"user_id": u, "median": m.median, "count": m.count})).collect::<Vec<_>>(),
            "rejected": rejections.iter().map(|(i, r)| json!({"index": i, "reason": r.reason.as_str(), "error": r.message})).collect::<Vec<_>>(),
            "stats": {
                "events_received": stats.events_received,
                "events_accepted": stats.events_accepted,
                "rejected_by_reason": stats.rejected.iter().map(|(r, n)| (r.as_str().to_string(), json!(n))).collect::<serde_json::Map<_, _>>(),
                "users_tracked": stats.users_tracked,
                "events_in_windows": stats.events_in_windows,
                "watermark": stats.watermark,
                "window_seconds": stats.window_seconds,
            },
        })
    }

    fn print(&self) {
        let Replayed {
            model,
            batches,
            medians,
            rejections,
            stats,
        } = self;
        println!(
            "model: {model}   window: {} s   batches: {batches}",
            stats.window_seconds,
        );
        println!();
        println!("{:<24} {:>14} {:>8}", "user", "median", "count");
        for (user, m) in medians {
            let median = m.median.map_or("-".to_string(), |v| format!("{v:.6}"));
            println!("{user:<24} {median:>14} {:>8}", m.count);
        }
        println!();
        println!("events received   {}", stats.events_received);
        println!("events accepted   {}", stats.events_accepted);
        for (reason, n) in stats.rejected.iter().filter(|(_, n)| *n > 0) {
            println!("rejected {:<18} {n}", reason.as_str());
        }
        println!("users in windows  {}", stats.users_tracked);
        println!("events in windows {}", stats.events_in_windows);
        if let Some(w) = stats.watermark {
            println!("watermark         {w}");
        }
        for (index, r) in rejections.iter().take(10) {
            println!("  event {index}: {}", r.message);
        }
        if rejections.len() > 10 {
            println!("  ... and {} more rejections", rejections.len() - 10);
        }
    }
}
