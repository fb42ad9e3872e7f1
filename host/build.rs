//! Embeds the scoring component and the model registry in the host binary.
//!
//! The component is built for wasm32-wasip2 by `cargo xtask build` (the README's commands do it);
//! its path comes from `EDGESCORE_COMPONENT_WASM` or the default output location.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let root = manifest_dir.parent().unwrap().to_path_buf();
    println!("cargo:rerun-if-env-changed=EDGESCORE_COMPONENT_WASM");
    let component = std::env::var("EDGESCORE_COMPONENT_WASM")
        .map(PathBuf::from)
        .unwrap_or_else(|_| root.join("target/wasm32-wasip2/component/edgescore_scoring.wasm"));
    if !component.exists() {
        panic!(
            "the scoring component {} is missing: build it with `cargo xtask build` \
             (or set EDGESCORE_COMPONENT_WASM to a built component)",
            component.display()
        );
    }
    println!("cargo:rerun-if-changed={}", component.display());
    println!(
        "cargo:rustc-env=EDGESCORE_EMBEDDED_COMPONENT={}",
        component.display()
    );

    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_models.rs");
    std::fs::write(&out, embedded_models(&root.join("models"))).unwrap();
}

/// `(relative dir, manifest json, onnx bytes)` for every `models/<name>/<version>/` folder.
fn embedded_models(models: &Path) -> String {
    println!("cargo:rerun-if-changed={}", models.display());
    let mut dirs = Vec::new();
    for name in std::fs::read_dir(models).unwrap().flatten() {
        if !name.path().is_dir() {
            continue;
        }
        println!("cargo:rerun-if-changed={}", name.path().display());
        for version in std::fs::read_dir(name.path()).unwrap().flatten() {
            let dir = version.path();
            if dir.join("manifest.json").exists() && dir.join("model.onnx").exists() {
                println!("cargo:rerun-if-changed={}", dir.display());
                dirs.push(dir);
            }
        }
    }
    dirs.sort();
    let mut code = String::from("pub static EMBEDDED_MODELS: &[(&str, &str, &[u8])] = &[\n");
    for dir in dirs {
        let rel = dir.strip_prefix(models).unwrap().display().to_string();
        writeln!(
            code,
            "    ({rel:?}, include_str!({:?}), include_bytes!({:?})),",
            dir.join("manifest.json"),
            dir.join("model.onnx")
        )
        .unwrap();
    }
    code.push_str("];\n");
    code
}
