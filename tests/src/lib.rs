//! Shared helpers of the end-to-end tests in `tests/tests/`, and the HTTP contract suite that
//! every host serving `docs/http-api.md` must pass ([`contract`]).

pub mod contract;
pub mod http;
pub mod spin;

use std::path::PathBuf;
use std::sync::OnceLock;

use edgescore_runtime::{GuestLimits, Runtime};

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

pub fn read(relative: &str) -> Vec<u8> {
    let path = repo_root().join(relative);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

pub fn seed_onnx(version: u32) -> Vec<u8> {
    read(&format!("models/seed-mlp/{version}/model.onnx"))
}

/// Hex sha256, as manifests give it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Copies version `version` of the seed model from the repository's registry into the registry
/// folder `dir` (as a deployment would drop a new version in).
pub fn add_seed_version(dir: &std::path::Path, version: u32) {
    let to = dir.join(format!("seed-mlp/{version}"));
    std::fs::create_dir_all(&to).unwrap();
    for file in ["manifest.json", "model.onnx"] {
        std::fs::write(
            to.join(file),
            read(&format!("models/seed-mlp/{version}/{file}")),
        )
        .unwrap();
    }
}

/// The embedded component with default limits, compiled once per test binary (and cached on disk
/// across binaries and runs).
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| runtime_with(GuestLimits::default()))
}

pub fn runtime_with(limits: GuestLimits) -> Runtime {
    Runtime::new(&edgescore_embedded::scoring_component(), limits)
        .expect("the embedded component loads")
}

/// Deterministic rows in [0, 1) (or wider with `scale`).
pub fn rows(n: usize, width: usize, seed: u32, scale: f32) -> Vec<f32> {
    let mut x = seed | 1;
    (0..n * width)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            scale * ((x >> 8) as f32 / (1u32 << 24) as f32)
        })
        .collect()
}

/// The Python the README's test command prepares (target/pyenv, with models/requirements.txt and
/// tests/requirements.txt pinned).
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EDGESCORE_PYTHON") {
        return p.into();
    }
    let venv = repo_root().join("target/pyenv/bin/python");
    assert!(
        venv.exists(),
        "no Python with the tests' packages: run the tests with `cargo xtask test`, which installs models/ and tests/requirements.txt"
    );
    venv
}
