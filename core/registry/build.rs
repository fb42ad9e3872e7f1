//! Embeds the repository's model registry (`models/`: every `<name>/<version>/` with a manifest
//! and a model) as a Rust table, so that a binary or a component serves the repository's models
//! without reading any file.

use std::fmt::Write;
use std::path::{Path, PathBuf};

fn main() {
    let models = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("../../models");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("embedded_models.rs");
    std::fs::write(&out, embedded_models(&models)).unwrap();
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
