//! Embeds the components built for wasm32-wasip2 by `cargo xtask build` (or named by
//! `EDGESCORE_COMPONENT_WASM` and `EDGESCORE_APP_WASM`), with the scoring component's sha256, or
//! stops the build saying how to get them. The Spin app only with the `spin-app` feature.

use std::path::{Path, PathBuf};

fn main() {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../..");
    embed(
        &root,
        "EDGESCORE_COMPONENT_WASM",
        "edgescore_scoring.wasm",
        "EDGESCORE_EMBEDDED_COMPONENT",
    );
    if std::env::var_os("CARGO_FEATURE_SPIN_APP").is_some() {
        embed(
            &root,
            "EDGESCORE_APP_WASM",
            "edgescore_app.wasm",
            "EDGESCORE_EMBEDDED_APP",
        );
    }
}

/// Sets the env var `env` to the component's path: `override_var`'s value, else `file` in the
/// workspace's component output folder (`root`: the workspace root).
fn embed(root: &Path, override_var: &str, file: &str, env: &str) {
    println!("cargo:rerun-if-env-changed={override_var}");
    let component = std::env::var(override_var)
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/wasm32-wasip2/component").join(file));
    if !component.exists() {
        panic!(
            "the component {} is missing: build it with `cargo xtask build` \
             (or set {override_var} to a built component)",
            component.display()
        );
    }
    println!("cargo:rerun-if-changed={}", component.display());
    println!("cargo:rustc-env={env}={}", component.display());
    // Its digest too, so that a host whose compiled copy is cached never reads the embedded
    // bytes (which would make them resident: megabytes per process for nothing).
    let bytes = std::fs::read(&component).expect("reading the component to embed");
    let digest =
        sha2::Digest::finalize(sha2::Digest::chain_update(sha2::Sha256::default(), &bytes));
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    println!("cargo:rustc-env={env}_SHA256={hex}");
}
