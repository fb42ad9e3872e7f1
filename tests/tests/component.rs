//! The scoring component through wasmtime, against the same core run natively.

use edgescore_engine::{Engine, Model};
use edgescore_runtime::{CallError, Scorer, ScoringEngine};
use edgescore_tests::{read, rows, runtime, seed_onnx};
use edgescore_types::{EngineConfig, Event, ModelError, ScoreError, SnapshotError};

const NOW: f64 = 1_700_000_000.0;

/// Native tract on x86-64 uses fused multiply-add kernels; the simd128 component multiplies and
/// adds separately, so the last bits of a score can differ: measured here up to ~1e-6, most rows
/// bit-identical. The tolerance is the one the model is checked against its reference with.
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-5 * a.abs().max(1.0)
}

#[test]
fn scores_match_the_native_core_to_float_rounding() {
    for version in [1, 2] {
        let onnx = seed_onnx(version);
        let native = Model::load(&onnx).unwrap();
        let mut wasm = Scorer::new(runtime(), &onnx).unwrap();
        assert_eq!(wasm.info(), native.info());
        for (n, scale) in [(1, 1.0), (7, 1.0), (64, 10.0), (1000, 1.0), (4096, 100.0)] {
            let features = rows(n, 3, n as u32 * version, scale);
            let (a, b) = (
                native.score(&features).unwrap(),
                wasm.score(&features).unwrap(),
            );
            assert_eq!(a.len(), n);
            let worst = a
                .iter()
                .zip(&b)
                .map(|(x, y)| (x - y).abs())
                .fold(0.0, f32::max);
            let identical = a
                .iter()
                .zip(&b)
                .filter(|(x, y)| x.to_bits() == y.to_bits())
                .count();
            println!(
                "v{version} batch {n}: {identical}/{n} bit-identical, worst difference {worst:e}"
            );
            assert!(
                a.iter().zip(&b).all(|(x, y)| close(*x as f64, *y as f64)),
                "v{version}, batch {n}: {worst:e} apart"
            );
        }
    }
}

#[test]
fn bad_models_and_batches_are_typed_errors() {
    let invalid = Scorer::new(runtime(), b"definitely not onnx");
    assert!(matches!(
        invalid,
        Err(CallError::Model(ModelError::Invalid(_)))
    ));
    let rank3 = Scorer::new(runtime(), &read("tests/fixtures/rank3.onnx"));
    assert!(matches!(
        rank3,
        Err(CallError::Model(ModelError::UnsupportedSignature(_)))
    ));

    let mut scorer = Scorer::new(runtime(), &seed_onnx(1)).unwrap();
    assert_eq!(
        scorer.score(&[]),
        Err(CallError::Score(ScoreError::EmptyBatch))
    );
    assert_eq!(
        scorer.score(&[1.0; 4]),
        Err(CallError::Score(ScoreError::WrongWidth {
            width: 3,
            len: 4
        }))
    );
    assert_eq!(
        scorer.score(&[0.0, 0.0, 0.0, f32::NAN, 0.0, 0.0]),
        Err(CallError::Score(ScoreError::NonFinite { row: 1 }))
    );
    // Refusing input is not a guest failure: the same instance goes on.
    assert_eq!(scorer.score(&[0.1, 0.2, 0.3]).unwrap().len(), 1);

    let bad_window = EngineConfig {
        window_seconds: 0.0,
        max_clock_skew_seconds: 1.0,
    };
    match ScoringEngine::new(runtime(), &seed_onnx(1), bad_window) {
        Err(CallError::Config(why)) => assert!(why.starts_with("window_seconds"), "{why}"),
        other => panic!("expected a config error, got {:?}", other.err()),
    }
}

fn workload() -> Vec<Vec<Event>> {
    let features = rows(3000, 3, 42, 1.0);
    let events: Vec<Event> = (0..3000)
        .map(|i| Event {
            user_id: format!("user-{}", i % 37),
            // Mostly increasing, some out of order, some late, a few from the future.
            timestamp: NOW + (i / 4) as f64
                - if i % 11 == 0 {
                    400.0
                } else {
                    (i % 7) as f64 * 3.0
                }
                + if i % 97 == 0 { 1e6 } else { 0.0 },
            features: features[i * 3..i * 3 + 3].to_vec(),
        })
        .collect();
    events.chunks(250).map(<[Event]>::to_vec).collect()
}

#[test]
fn the_engine_in_the_component_matches_the_native_engine() {
    let config = EngineConfig::default();
    let mut native = Engine::new(config, Model::load(&seed_onnx(2)).unwrap()).unwrap();
    let mut wasm = ScoringEngine::new(runtime(), &seed_onnx(2), config).unwrap();
    let now = NOW + 800.0;
    for batch in workload() {
        let (a, b) = (
            native.ingest(&batch, now).unwrap(),
            wasm.ingest(&batch, now).unwrap(),
        );
        assert_eq!(a, b);
    }
    for u in 0..40 {
        let user = format!("user-{u}");
        let (a, b) = (native.median(&user), wasm.median(&user).unwrap());
        assert_eq!(
            (a.count, a.median.is_some()),
            (b.count, b.median.is_some()),
            "{user}"
        );
        if let (Some(x), Some(y)) = (a.median, b.median) {
            assert!(close(x, y), "{user}: native {x}, component {y}");
        }
    }
    let stats = wasm.stats().unwrap();
    assert_eq!(native.stats(), stats);
    assert!(stats.events_accepted > 500 && stats.users_tracked == 37);
    assert!(
        stats
            .rejected
            .iter()
            .any(|(r, n)| r.as_str() == "late" && *n > 0)
    );
    assert!(
        stats
            .rejected
            .iter()
            .any(|(r, n)| r.as_str() == "future" && *n > 0)
    );
}

#[test]
fn state_moves_between_instances_and_the_native_core() {
    let config = EngineConfig::default();
    let mut first = ScoringEngine::new(runtime(), &seed_onnx(1), config).unwrap();
    for batch in workload() {
        first.ingest(&batch, NOW + 800.0).unwrap();
    }
    let snapshot = first.snapshot().unwrap();

    let mut second = ScoringEngine::new(runtime(), &seed_onnx(1), config).unwrap();
    second.restore(&snapshot).unwrap();
    let mut native = Engine::new(config, Model::load(&seed_onnx(1)).unwrap()).unwrap();
    native.restore(&snapshot).unwrap();
    assert_eq!(second.stats().unwrap(), first.stats().unwrap());
    assert_eq!(native.stats(), first.stats().unwrap());
    for u in 0..37 {
        let user = format!("user-{u}");
        let m = first.median(&user).unwrap();
        assert!(m.count > 0, "{user} has events");
        assert_eq!(second.median(&user).unwrap(), m);
    }

    assert_eq!(
        second.restore(b"nope"),
        Err(CallError::Snapshot(SnapshotError::NotASnapshot))
    );
    assert!(matches!(
        second.restore(&snapshot[..20]),
        Err(CallError::Snapshot(SnapshotError::Corrupt(_)))
    ));
    assert_eq!(
        second.median("user-3").unwrap(),
        first.median("user-3").unwrap(),
        "a failed restore changes nothing"
    );
}
