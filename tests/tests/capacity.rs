//! What state costs inside the component, measured in its linear memory (allocator slack and
//! growth included), against the estimate the engine admits events by (`core/engine/src/
//! capacity.rs`): the estimate must never be below what the memory shows. Also what a user costs
//! with 1 event and with 150, for docs/performance.md.

use edgescore_engine::capacity::{EVENT_BYTES, USER_BYTES, estimate};
use edgescore_runtime::{GuestLimits, ScoringEngine};
use edgescore_tests::{runtime_with, seed_onnx};
use edgescore_types::{EngineConfig, Event};

const NOW: f64 = 1_700_000_000.0;

/// Linear memory grown by `users` users with `per_user` events each, ingested in batches.
fn growth(users: usize, per_user: usize) -> u64 {
    let runtime = runtime_with(GuestLimits {
        memory_bytes: 2 << 30,
        ..GuestLimits::default()
    });
    let mut engine = ScoringEngine::new(&runtime, &seed_onnx(2), EngineConfig::default()).unwrap();
    // One event first, so that the baseline holds what every call needs (model, buffers).
    engine.ingest(&[event("warm-up", 0, 0)], NOW).unwrap();
    let baseline = engine.memory_bytes();
    let all: Vec<Event> = (0..per_user)
        .flat_map(|e| (0..users).map(move |u| event(&format!("user-{u:07}"), u, e)))
        .collect();
    for batch in all.chunks(4096) {
        let report = engine.ingest(batch, NOW).unwrap();
        assert_eq!(
            report.accepted as usize,
            batch.len(),
            "{:?}",
            report.rejections.first()
        );
    }
    let stats = engine.stats().unwrap();
    assert_eq!(stats.events_in_windows as usize, users * per_user + 1);
    engine.memory_bytes() - baseline
}

fn event(user: &str, u: usize, e: usize) -> Event {
    Event {
        user_id: user.into(),
        timestamp: NOW - 200.0 + e as f64 * 0.5 + (u % 7) as f64 * 0.01,
        features: vec![0.1 * (u % 10) as f32, 0.2, 0.01 * (e % 100) as f32],
    }
}

#[test]
fn the_estimate_holds_what_state_costs_in_the_component() {
    for (users, per_user) in [(100_000, 1), (2_000, 150)] {
        let grown = growth(users, per_user);
        let estimated = estimate(users, users * per_user);
        println!(
            "{users} users x {per_user} events: linear memory +{grown} bytes = {:.0} per user, \
             {:.1} per event; estimate {estimated} ({USER_BYTES} per user, {EVENT_BYTES} per \
             further event)",
            grown as f64 / users as f64,
            grown as f64 / (users * per_user) as f64,
        );
        assert!(
            estimated >= grown,
            "{users} x {per_user}: the estimate {estimated} is below the {grown} bytes grown"
        );
        // ... but not wildly above (a half), or capacity would go unused.
        assert!(
            estimated <= grown + grown / 2,
            "{users} x {per_user}: the estimate {estimated} is far above the {grown} bytes grown"
        );
    }
}
