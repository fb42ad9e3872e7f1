//! Build-script helper of `host/runtime` and `host/app-harness`: points `include_bytes!` at a
//! component built for wasm32-wasip2 by `cargo xtask build` (and gives its sha256), or stops the
//! build saying how to get it.

use std::path::{Path, PathBuf};

/// Sets the env var `env` to the component's path: `override_var`'s value, else `file` in the
/// workspace's component output folder (`root`: the workspace root).
pub fn embed_component(root: &Path, override_var: &str, file: &str, env: &str) {
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
