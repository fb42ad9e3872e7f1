//! The model registry: the committed versions, their digests, and the generator reproducing them.

use std::process::Command;

use edgescore_registry::Registry;
use edgescore_tests::{python, repo_root, sha256_hex};
use serde_json::Value;

#[test]
fn the_embedded_registry_serves_both_versions_and_picks_the_highest() {
    let registry = Registry::embedded();
    assert!(registry.problems.is_empty(), "{:?}", registry.problems);
    let versions: Vec<u32> = registry
        .versions
        .iter()
        .map(|v| v.manifest.version)
        .collect();
    assert_eq!(versions, vec![1, 2]);
    assert_eq!(registry.select(None, None).unwrap().manifest.version, 2);
    assert_eq!(
        registry
            .select(Some("seed-mlp"), Some(1))
            .unwrap()
            .manifest
            .version,
        1
    );
    let err = registry.select(None, Some(9)).unwrap_err().to_string();
    assert!(err.contains("no version 9"), "{err}");
    for v in &registry.versions {
        assert_eq!(sha256_hex(&v.onnx), v.manifest.sha256);
        assert_eq!(v.manifest.feature_names.len(), 3);
        assert_eq!(v.manifest.baseline.mean.len(), 3);
    }
}

#[test]
fn a_version_whose_file_does_not_match_its_digest_is_skipped() {
    let dir = tempfile::tempdir().unwrap();
    for version in ["1", "2"] {
        let from = repo_root().join("models/seed-mlp").join(version);
        let to = dir.path().join("seed-mlp").join(version);
        std::fs::create_dir_all(&to).unwrap();
        for file in ["model.onnx", "manifest.json"] {
            std::fs::copy(from.join(file), to.join(file)).unwrap();
        }
    }
    let tampered = dir.path().join("seed-mlp/2/model.onnx");
    let mut bytes = std::fs::read(&tampered).unwrap();
    *bytes.last_mut().unwrap() ^= 1;
    std::fs::write(&tampered, bytes).unwrap();

    let registry = Registry::scan(dir.path()).unwrap();
    assert_eq!(registry.versions.len(), 1);
    assert_eq!(
        registry.select(None, None).unwrap().manifest.version,
        1,
        "the broken v2 is never served"
    );
    assert_eq!(registry.problems.len(), 1);
    assert!(
        registry.problems[0].contains("sha256"),
        "{}",
        registry.problems[0]
    );
}

/// Reference outputs are floats computed by numpy, whose matrix product goes through OpenBLAS:
/// OpenBLAS picks its kernel by processor (or `OPENBLAS_CORETYPE`), and another kernel sums in
/// another order, so the last bits differ between machines (seen: 3e-8). They are compared to
/// this relative tolerance, 10x tighter than the 1e-5 the scorers are held to against them.
const REFERENCE_TOLERANCE: f64 = 1e-6;

#[test]
fn the_generator_reproduces_the_committed_models() {
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(python())
        .arg(repo_root().join("models/generate.py"))
        .arg("--out")
        .arg(out.path().join("models"))
        .arg("--fixtures")
        .arg(out.path().join("fixtures"))
        .status()
        .expect("running models/generate.py");
    assert!(status.success());
    for version in ["1", "2"] {
        // Deterministic on every machine: compared byte for byte.
        for file in ["model.onnx", "manifest.json"] {
            let relative = format!("seed-mlp/{version}/{file}");
            let committed = std::fs::read(repo_root().join("models").join(&relative)).unwrap();
            let fresh = std::fs::read(out.path().join("models").join(&relative)).unwrap();
            assert!(
                committed == fresh,
                "{relative} differs from a fresh generation"
            );
        }
        let relative = format!("seed-mlp/{version}/reference.json");
        let json = |path: std::path::PathBuf| -> Value {
            serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
        };
        same_reference(
            &json(repo_root().join("models").join(&relative)),
            &json(out.path().join("models").join(&relative)),
            &relative,
        );
        let manifest = json(
            out.path()
                .join(format!("models/seed-mlp/{version}/manifest.json")),
        );
        let onnx = std::fs::read(
            out.path()
                .join(format!("models/seed-mlp/{version}/model.onnx")),
        )
        .unwrap();
        assert_eq!(manifest["sha256"], sha256_hex(&onnx));
    }
    for fixture in ["identity.onnx", "scale.onnx", "rank3.onnx"] {
        let committed = std::fs::read(repo_root().join("tests/fixtures").join(fixture)).unwrap();
        assert_eq!(
            committed,
            std::fs::read(out.path().join("fixtures").join(fixture)).unwrap(),
            "{fixture}"
        );
    }
}

/// Same inputs exactly (they are generated, not computed by BLAS), same note, and outputs
/// within [`REFERENCE_TOLERANCE`].
fn same_reference(committed: &Value, fresh: &Value, what: &str) {
    assert_eq!(committed["note"], fresh["note"], "{what}");
    assert_eq!(committed["inputs"], fresh["inputs"], "{what}: inputs");
    let outputs = |v: &Value| -> Vec<f64> {
        v["outputs"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: no outputs"))
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect()
    };
    let (committed, fresh) = (outputs(committed), outputs(fresh));
    assert_eq!(committed.len(), fresh.len(), "{what}: outputs");
    assert!(!committed.is_empty(), "{what}: no outputs");
    for (i, (a, b)) in committed.iter().zip(&fresh).enumerate() {
        assert!(
            within_reference_tolerance(*a, *b),
            "{what}: output {i} is {b} in a fresh generation, {a} committed"
        );
    }
}

fn within_reference_tolerance(a: f64, b: f64) -> bool {
    (a - b).abs() <= REFERENCE_TOLERANCE * a.abs().max(1.0)
}

#[test]
fn the_reference_tolerance_takes_a_kernel_change_and_nothing_more() {
    // The difference measured between OpenBLAS kernels passes ...
    assert!(within_reference_tolerance(
        -0.145_735_05,
        -0.145_735_05 + 3e-8
    ));
    // ... a difference the scorers' 1e-5 tolerance would still take does not.
    assert!(!within_reference_tolerance(0.5, 0.5 + 5e-6));
    assert!(!within_reference_tolerance(1000.0, 1000.0 + 2e-3));
}
