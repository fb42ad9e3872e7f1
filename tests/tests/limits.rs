//! A guest that runs too long or asks for too much memory is stopped and reported; the host, and
//! the same Scorer or ScoringEngine, keep working.
//!
//! Stopping a call deterministically uses an instruction budget (fuel): the same call stops at
//! the same point on any machine, loaded or not. The wall-clock deadline is tested once, with a
//! margin wide enough for a busy machine.

use std::time::Duration;

use edgescore_runtime::{CallError, GuestLimits, Scorer, ScoringEngine};
use edgescore_tests::{rows, runtime_with, seed_onnx};
use edgescore_types::{EngineConfig, Event};

/// Loading the model takes ~2 ms, so 300 ms leaves a margin of over 100x on a busy machine, while
/// a million rows through two 128-wide layers take ~2 s (and ~1 GiB of activations: hence the
/// memory).
fn generous_deadline() -> GuestLimits {
    GuestLimits {
        call_timeout: Duration::from_millis(300),
        memory_bytes: 3 << 30,
        call_fuel: None,
    }
}

/// An instruction budget that loading the model and small calls fit in easily, and that
/// scoring 200,000 rows (~17,000 multiply-adds each) does not.
pub const BUDGET: u64 = 1_000_000_000;

fn budget() -> GuestLimits {
    GuestLimits {
        call_fuel: Some(BUDGET),
        memory_bytes: 2 << 30,
        ..GuestLimits::default()
    }
}

const MANY_ROWS: usize = 1_000_000;

#[test]
fn a_call_past_its_deadline_is_interrupted_and_the_next_call_works() {
    let runtime = runtime_with(generous_deadline());
    let mut scorer = Scorer::new(&runtime, &seed_onnx(1)).unwrap();
    let big = rows(MANY_ROWS, 3, 1, 1.0);
    assert_eq!(
        scorer.score(&big),
        Err(CallError::Deadline(Duration::from_millis(300)))
    );
    let small = scorer
        .score(&[0.1, 0.2, 0.3])
        .expect("a fresh instance answers");
    assert_eq!(small.len(), 1);
}

#[test]
fn a_call_over_its_budget_is_stopped_and_the_next_call_works() {
    let runtime = runtime_with(budget());
    let mut scorer = Scorer::new(&runtime, &seed_onnx(1)).unwrap();
    let big = rows(200_000, 3, 1, 1.0);
    assert_eq!(scorer.score(&big), Err(CallError::Budget(BUDGET)));
    assert_eq!(scorer.score(&[0.1, 0.2, 0.3]).unwrap().len(), 1);
}

#[test]
fn a_guest_over_its_memory_limit_traps_and_the_next_call_works() {
    let runtime = runtime_with(GuestLimits {
        memory_bytes: 96 << 20,
        ..GuestLimits::default()
    });
    let mut scorer = Scorer::new(&runtime, &seed_onnx(1)).unwrap();
    // 400,000 rows need 4.8 MB of input and 2 × 205 MB of hidden activations.
    let huge = rows(400_000, 3, 2, 1.0);
    match scorer.score(&huge) {
        Err(CallError::Trap(_)) => {}
        other => panic!("expected a trap, got {other:?}"),
    }
    assert_eq!(scorer.score(&[0.1, 0.2, 0.3]).unwrap().len(), 1);
}

#[test]
fn an_interrupted_engine_is_rebuilt_from_its_checkpoint() {
    let runtime = runtime_with(budget());
    let mut engine = ScoringEngine::new(&runtime, &seed_onnx(1), EngineConfig::default()).unwrap();
    let now = 1_700_000_000.0;
    let one = |user: &str, t: f64| Event {
        user_id: user.into(),
        timestamp: t,
        features: vec![0.1, 0.2, 0.3],
    };
    engine.ingest(&[one("kept", now)], now).unwrap();
    engine.checkpoint().unwrap();
    let kept = engine.median("kept").unwrap();

    // 200,000 events: far over the budget, and quicker to lower than a million.
    let flood: Vec<Event> = rows(200_000, 3, 3, 1.0)
        .chunks(3)
        .map(|f| Event {
            features: f.to_vec(),
            ..one("flood", now)
        })
        .collect();
    assert_eq!(engine.ingest(&flood, now), Err(CallError::Budget(BUDGET)));
    assert_eq!(
        engine.median("kept").unwrap(),
        kept,
        "state comes back from the checkpoint"
    );
    assert_eq!(
        engine.median("flood").unwrap().count,
        0,
        "nothing of the interrupted batch was recorded"
    );
    assert_eq!(engine.restarts(), 1);
}

/// A checkpoint released to its holder (the snapshot writer, then the file) is rebuilt from
/// while they hold it; once they drop it, a rebuild refuses — it never starts empty, which would
/// lose the state — until the holder gives it back.
#[test]
fn a_released_checkpoint_is_rebuilt_from_only_while_it_is_held_elsewhere() {
    let runtime = runtime_with(budget());
    let mut engine = ScoringEngine::new(&runtime, &seed_onnx(1), EngineConfig::default()).unwrap();
    let now = 1_700_000_000.0;
    let event = Event {
        user_id: "kept".into(),
        timestamp: now,
        features: vec![0.1, 0.2, 0.3],
    };
    engine.ingest(&[event], now).unwrap();
    let held = engine.checkpoint().unwrap();
    engine.release_checkpoint();
    let kept = engine.median("kept").unwrap();
    assert_eq!(kept.count, 1);

    engine.rebuild().unwrap();
    assert_eq!(
        engine.median("kept").unwrap(),
        kept,
        "rebuilt from the held copy"
    );

    let on_disk = (*held).clone();
    drop(held);
    assert!(!engine.holds_checkpoint());
    match engine.rebuild() {
        Err(CallError::Instantiate(reason)) => assert!(reason.contains("released"), "{reason}"),
        other => panic!("expected a refused rebuild, got {other:?}"),
    }
    assert!(
        engine.median("kept").is_err(),
        "no call starts an empty instance meanwhile"
    );

    let onnx = engine.model().clone();
    engine
        .restore_checkpoint(Some(std::sync::Arc::new(on_disk)), onnx)
        .unwrap();
    assert_eq!(
        engine.median("kept").unwrap(),
        kept,
        "restored by its holder"
    );
}
