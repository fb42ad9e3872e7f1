//! Snapshots as a host hands them back (possibly corrupt), whole and in chunks: restoring never
//! panics; an engine that restored one stays usable and its own snapshot restores to the same
//! state.
#![no_main]

use std::sync::OnceLock;

use edgescore_engine::{Engine, Model};
use edgescore_types::{EngineConfig, Event};
use libfuzzer_sys::fuzz_target;

const NOW: f64 = 1_700_000_000.0;

/// An empty engine; the model is loaded (parsed and optimized) once, then cloned.
fn engine() -> Engine {
    static MODEL: OnceLock<Model> = OnceLock::new();
    let model = MODEL.get_or_init(|| {
        Model::load(include_bytes!("../../fixtures/identity.onnx")).expect("model")
    });
    Engine::new(EngineConfig::default(), model.clone()).expect("engine")
}

fuzz_target!(|input: (u16, &[u8])| {
    let (split, bytes) = input;
    let mut whole = engine();
    if whole.restore(bytes).is_ok() {
        still_works(&mut whole);
    }
    // The same bytes as a header and one chunk of users.
    let split = usize::from(split).min(bytes.len());
    let (header, chunk) = bytes.split_at(split);
    let mut chunked = engine();
    if chunked.restore_begin(header).is_ok() && chunked.restore_next(chunk).is_ok() {
        chunked.restore_end();
        still_works(&mut chunked);
    }
});

fn still_works(engine: &mut Engine) {
    let stats = engine.stats();
    let again = engine.snapshot();
    let mut copy = self::engine();
    copy.restore(&again)
        .expect("an engine's own snapshot restores");
    assert_eq!(copy.stats(), stats, "the copy holds the same state");
    let event = Event {
        user_id: "fuzz".into(),
        timestamp: NOW,
        features: vec![0.5],
    };
    engine.ingest(&[event], NOW).expect("still scores");
    let _ = engine.median("fuzz");
}
