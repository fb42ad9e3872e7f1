//! The model runner against the ONNX reference evaluator's outputs (models/*/reference.json,
//! written by models/generate.py with onnx's numpy implementation).

mod common;

use common::{identity_model, read, seed_model};
use edgescore_engine::Model;
use edgescore_types::{ModelError, ScoreError};
use serde_json::Value;

fn reference(version: u32) -> (Vec<Vec<f32>>, Vec<f32>) {
    let json: Value =
        serde_json::from_slice(&read(&format!("models/seed-mlp/{version}/reference.json")))
            .unwrap();
    let inputs = json["inputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| {
            row.as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect()
        })
        .collect();
    let outputs = json["outputs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect();
    (inputs, outputs)
}

#[test]
fn committed_models_match_the_onnx_reference_evaluator() {
    for version in [1, 2] {
        let model = seed_model(version);
        let (inputs, expected) = reference(version);
        assert!(inputs.len() >= 64);
        let flat: Vec<f32> = inputs.concat();
        let scores = model.score(&flat).unwrap();
        assert_eq!(scores.len(), expected.len());
        for (i, (got, want)) in scores.iter().zip(&expected).enumerate() {
            let tolerance = 1e-5 * want.abs().max(1.0);
            assert!(
                (got - want).abs() <= tolerance,
                "v{version} row {i}: tract {got}, reference {want}"
            );
        }
    }
}

#[test]
fn versions_differ_and_rows_score_alike_alone_or_batched() {
    let (v1, v2) = (seed_model(1), seed_model(2));
    let (inputs, _) = reference(1);
    let batched = v1.score(&inputs.concat()).unwrap();
    assert_ne!(batched, v2.score(&inputs.concat()).unwrap());
    for (row, want) in inputs.iter().zip(&batched) {
        let alone = v1.score(row).unwrap()[0];
        assert!(
            (alone - want).abs() <= 1e-6 * want.abs().max(1.0),
            "{alone} vs {want}"
        );
    }
}

#[test]
fn info_describes_the_signature_and_digest() {
    let model = seed_model(1);
    let info = model.info();
    assert_eq!(info.input_width, 3);
    assert_eq!(info.input_name, "features");
    assert_eq!(info.output_name, "score");
    let manifest: Value = serde_json::from_slice(&read("models/seed-mlp/1/manifest.json")).unwrap();
    assert_eq!(info.sha256, manifest["sha256"].as_str().unwrap());
}

#[test]
fn n_by_one_outputs_are_accepted() {
    let model = identity_model();
    assert_eq!(model.input_width(), 1);
    assert_eq!(
        model.score(&[0.25, -3.5, 7.0]).unwrap(),
        vec![0.25, -3.5, 7.0]
    );
}

#[test]
fn invalid_models_are_typed_errors() {
    assert!(matches!(
        Model::load(b"not an onnx file"),
        Err(ModelError::Invalid(_))
    ));
    assert!(matches!(
        Model::load(&[]),
        Err(ModelError::Invalid(_)) | Err(ModelError::UnsupportedSignature(_))
    ));
    let rank3 = Model::load(&read("tests/fixtures/rank3.onnx"));
    assert!(
        matches!(rank3, Err(ModelError::UnsupportedSignature(ref why)) if why.contains("[N, width]")),
        "{rank3:?}"
    );
}

#[test]
fn bad_batches_are_typed_errors() {
    let model = seed_model(1);
    assert_eq!(model.score(&[]), Err(ScoreError::EmptyBatch));
    assert_eq!(
        model.score(&[0.1, 0.2]),
        Err(ScoreError::WrongWidth { width: 3, len: 2 })
    );
    assert_eq!(
        model.score(&[0.1, 0.2, 0.3, 0.0, f32::NAN, 0.0]),
        Err(ScoreError::NonFinite { row: 1 })
    );
    assert_eq!(
        model.score(&[f32::INFINITY, 0.2, 0.3]),
        Err(ScoreError::NonFinite { row: 0 })
    );
}
