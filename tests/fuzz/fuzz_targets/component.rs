//! The scoring component's WIT interface, called through our wasmtime host with arbitrary
//! input: model bytes, rows of features, events and snapshots. A call may refuse its input with a
//! typed error, but the guest must never trap, and the host never panics.
//!
//! Needs the built component: `EDGESCORE_COMPONENT_WASM` or the workspace's
//! `target/wasm32-wasip2/component/edgescore_scoring.wasm` (`cargo xtask build`).
#![no_main]

use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};

use arbitrary::Arbitrary;
use edgescore_runtime::{CallError, ComponentSource, GuestLimits, Runtime, Scorer, ScoringEngine};
use edgescore_types::{EngineConfig, Event};
use libfuzzer_sys::fuzz_target;

const NOW: f64 = 1_700_000_000.0;
const SEED_MODEL: &[u8] = include_bytes!("../../../models/seed-mlp/2/model.onnx");

#[derive(Debug, Arbitrary)]
enum Call {
    /// Loads arbitrary bytes as a model.
    Load(Vec<u8>),
    /// Scores arbitrary features (any count, not only whole rows) with the seed model.
    Score(Vec<f32>),
    /// Ingests arbitrary events into the engine (arbitrary ids, times, features).
    Ingest(Vec<(String, f64, Vec<f32>)>, f64),
    /// Restores arbitrary bytes as a snapshot.
    Restore(Vec<u8>),
    Median(String),
    Advance(f64),
}

struct Guests {
    runtime: Runtime,
    scorer: Scorer,
    engine: ScoringEngine,
}

fn guests() -> &'static Mutex<Guests> {
    static GUESTS: OnceLock<Mutex<Guests>> = OnceLock::new();
    GUESTS.get_or_init(|| {
        let path = std::env::var_os("EDGESCORE_COMPONENT_WASM")
            .map(PathBuf::from)
            .unwrap_or_else(|| {
                PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                    .join("../../target/wasm32-wasip2/component/edgescore_scoring.wasm")
            });
        let limits = GuestLimits {
            memory_bytes: 256 << 20,
            ..GuestLimits::default()
        };
        let runtime = Runtime::new(&ComponentSource::Path(path), limits).expect("component");
        let scorer = Scorer::new(&runtime, SEED_MODEL).expect("seed model");
        let engine =
            ScoringEngine::new(&runtime, SEED_MODEL, EngineConfig::default()).expect("engine");
        Mutex::new(Guests {
            runtime,
            scorer,
            engine,
        })
    })
}

fn no_trap<T>(what: &str, result: Result<T, CallError>) {
    if let Err(e) = result {
        assert!(!e.is_guest_failure(), "{what}: {e}");
    }
}

fuzz_target!(|calls: Vec<Call>| {
    let mut guests = guests().lock().unwrap();
    let Guests {
        runtime,
        scorer,
        engine,
    } = &mut *guests;
    for call in calls.into_iter().take(8) {
        match call {
            Call::Load(bytes) => no_trap("load", Scorer::new(runtime, &bytes).map(drop)),
            Call::Score(features) => no_trap("score", scorer.score(&features)),
            Call::Ingest(events, now) => {
                let events: Vec<Event> = events
                    .into_iter()
                    .map(|(user_id, t, features)| Event {
                        user_id,
                        timestamp: NOW + t % 1000.0,
                        features,
                    })
                    .collect();
                no_trap("ingest", engine.ingest(&events, NOW + now % 1000.0));
            }
            Call::Restore(bytes) => no_trap("restore", engine.restore(&bytes)),
            Call::Median(user) => no_trap("median", engine.median(&user)),
            Call::Advance(w) => no_trap("advance", engine.advance(NOW + w % 1000.0)),
        }
    }
    no_trap("stats", engine.stats());
});
