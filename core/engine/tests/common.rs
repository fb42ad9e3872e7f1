//! Helpers shared by the core's integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use edgescore_engine::Model;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

pub fn read(relative: &str) -> Vec<u8> {
    let path = repo_root().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn seed_model(version: u32) -> Model {
    Model::load(&read(&format!("models/seed-mlp/{version}/model.onnx"))).expect("seed model loads")
}

/// Scores equal to the single feature, exactly: lets tests choose the scores.
pub fn identity_model() -> Model {
    Model::load(&read("tests/fixtures/identity.onnx")).expect("identity model loads")
}
