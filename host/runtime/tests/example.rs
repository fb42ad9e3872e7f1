//! The embedding example runs, and computes what the engine library computes natively.

#[path = "../examples/embed.rs"]
#[allow(dead_code)]
mod example;

use edgescore_engine::{Engine, Model};
use edgescore_types::{EngineConfig, Event};

#[test]
fn the_example_scores_and_ingests_like_the_native_engine() {
    let (scores, median, count) = example::run().unwrap();
    let onnx = &edgescore_registry::Registry::embedded()
        .select(None, None)
        .unwrap()
        .onnx
        .clone();
    let model = Model::load(onnx).unwrap();
    let native = model.score(&[0.1, 0.2, 0.3, 0.9, 0.0, 0.5]).unwrap();
    assert_eq!(scores.len(), 2);
    for (a, b) in scores.iter().zip(&native) {
        assert!((a - b).abs() <= 1e-5 * b.abs().max(1.0), "{a} vs {b}");
    }
    // The median of three scores is the middle one, scored natively here.
    let mut engine = Engine::new(EngineConfig::default(), model).unwrap();
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
    engine.ingest(&events, now).unwrap();
    let want = engine.median("user-7");
    assert_eq!(count, 3);
    assert_eq!(want.count, 3);
    let (got, want) = (median.unwrap(), want.median.unwrap());
    assert!(
        (got - want).abs() <= 1e-5 * want.abs().max(1.0),
        "{got} vs {want}"
    );
}
