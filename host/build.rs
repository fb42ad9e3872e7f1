//! Embeds the scoring component, the Spin app component (for `edgescore serve-app`) and the model
//! registry in the host binary.
//!
//! The components are built for wasm32-wasip2 by `cargo xtask build` (the README's commands do
//! it); their paths come from `EDGESCORE_COMPONENT_WASM` / `EDGESCORE_APP_WASM` or the default
//! output location.

use std::path::PathBuf;

#[path = "../models/embed.rs"]
mod embed;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    embed_component(
        &root,
        "EDGESCORE_COMPONENT_WASM",
        "edgescore_scoring.wasm",
        "EDGESCORE_EMBEDDED_COMPONENT",
    );
    embed_component(
        &root,
        "EDGESCORE_APP_WASM",
        "edgescore_app.wasm",
        "EDGESCORE_EMBEDDED_APP",
    );

    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_models.rs");
    std::fs::write(&out, embed::embedded_models(&root.join("models"))).unwrap();
}

/// Points `env` at a built component for `include_bytes!`, or stops the build saying how to get it.
fn embed_component(root: &std::path::Path, override_var: &str, file: &str, env: &str) {
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
}
