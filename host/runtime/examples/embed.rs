//! A complete Rust host of the scoring component: load the component, score rows with the
//! registry's default model, ingest events into an engine and read a user's rolling median.
//!
//! cargo run -p edgescore-runtime --example embed

use anyhow::Result;
use edgescore_runtime::{GuestLimits, Runtime, Scorer, ScoringEngine};
use edgescore_types::{EngineConfig, Event};

/// What the example computes: two rows' scores, and user-7's median and count.
pub fn run() -> Result<(Vec<f32>, Option<f64>, u32)> {
    // Compiles the component once (then loads it from the .cwasm cache in ~1 ms).
    let runtime = Runtime::new(
        &edgescore_embedded::scoring_component(),
        GuestLimits::default(),
    )?;
    let registry = edgescore_registry::Registry::embedded();
    let onnx = &registry.select(None, None)?.onnx;

    // Stateless: rows in, one score per row out (features row-major in one flat list).
    let mut scorer = Scorer::new(&runtime, onnx)?;
    let scores = scorer.score(&[0.1, 0.2, 0.3, 0.9, 0.0, 0.5])?;

    // Stateful: the engine keeps every user's window of scores inside the component.
    let mut engine = ScoringEngine::new(&runtime, onnx, EngineConfig::default())?;
    let now = 1_700_000_000.0;
    let events: Vec<Event> = [0.1f32, 0.5, 0.9]
        .iter()
        .enumerate()
        .map(|(i, &x)| Event {
            user_id: "user-7".into(),
            timestamp: now - 10.0 + i as f64,
            features: vec![x, 0.2, 0.3],
        })
        .collect();
    let report = engine.ingest(&events, now)?;
    assert_eq!(report.accepted, 3);
    let median = engine.median("user-7")?;
    Ok((scores, median.median, median.count))
}

fn main() -> Result<()> {
    let (scores, median, count) = run()?;
    println!("scores {scores:?}; user-7: median {median:?} over {count} events");
    Ok(())
}
