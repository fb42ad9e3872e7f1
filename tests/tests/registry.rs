//! The model registry: the committed versions, their digests, and the generator reproducing them.

use std::path::PathBuf;
use std::process::Command;

use edgescore_host::Registry;
use edgescore_tests::{repo_root, sha256_hex};

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

/// The Python the README's test command prepares (models/requirements.txt, pinned).
fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGESCORE_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join("target/pyenv/bin/python");
    assert!(
        venv.exists(),
        "no Python with onnx: run the tests with `cargo xtask test`, which installs models/requirements.txt"
    );
    venv
}

#[test]
fn the_generator_reproduces_the_committed_models_byte_for_byte() {
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
        for file in ["model.onnx", "manifest.json", "reference.json"] {
            let relative = format!("seed-mlp/{version}/{file}");
            let committed = std::fs::read(repo_root().join("models").join(&relative)).unwrap();
            let fresh = std::fs::read(out.path().join("models").join(&relative)).unwrap();
            assert!(
                committed == fresh,
                "{relative} differs from a fresh generation"
            );
        }
        let manifest: serde_json::Value = serde_json::from_slice(
            &std::fs::read(
                out.path()
                    .join(format!("models/seed-mlp/{version}/manifest.json")),
            )
            .unwrap(),
        )
        .unwrap();
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
