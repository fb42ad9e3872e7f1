//! The Python host (`host/python`): `cargo xtask wheel` builds it as a wheel in `target/wheels`,
//! with the shipped scoring component (pre-initialized) and the registry's default model inside;
//! `cargo xtask test` installs that wheel in a fresh venv and runs its pytest suite there, as a
//! user would after `pip install`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::{component_path, root, step};

fn package_dir() -> PathBuf {
    root().join("host/python/src/edgescore")
}

/// The registry's default model: the only model of `models/`, its highest version.
fn default_model() -> Result<PathBuf> {
    let models = root().join("models");
    let mut found = Vec::new();
    for model in std::fs::read_dir(&models)? {
        let model = model?.path();
        if !model.is_dir() {
            continue;
        }
        for version in std::fs::read_dir(&model)? {
            let version = version?.path();
            let number = version
                .file_name()
                .and_then(|n| n.to_str()?.parse::<u32>().ok());
            if let Some(number) = number {
                found.push((model.clone(), number, version.join("model.onnx")));
            }
        }
    }
    found.sort_by_key(|(_, number, _)| *number);
    match found.last() {
        Some((_, _, onnx)) if onnx.is_file() => Ok(onnx.clone()),
        _ => bail!(
            "no model version with a model.onnx under {}",
            models.display()
        ),
    }
}

/// A venv with pip alone (`target/wheel-build`), to build the wheel with: pip fetches the build
/// backend, hatchling, from PyPI into an isolated environment of its own.
fn build_python() -> Result<PathBuf> {
    let venv = root().join("target/wheel-build");
    let python = venv.join("bin/python");
    if !python.exists() {
        step(
            "a venv to build the wheel with (target/wheel-build)",
            Command::new("python3").args(["-m", "venv"]).arg(&venv),
        )?;
    }
    Ok(python)
}

/// Builds `target/wheels/edgescore-<version>-py3-none-any.whl`; the component must be built.
pub(crate) fn build() -> Result<PathBuf> {
    let python = build_python()?;
    std::fs::copy(
        component_path(),
        package_dir().join("edgescore_scoring.wasm"),
    )
    .context("copying the scoring component into host/python (build it first)")?;
    std::fs::copy(default_model()?, package_dir().join("default_model.onnx"))?;
    let wheels = root().join("target/wheels");
    if wheels.exists() {
        std::fs::remove_dir_all(&wheels)?;
    }
    step(
        "building the Python wheel (host/python)",
        Command::new(python)
            .args([
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
            ])
            .arg("--wheel-dir")
            .arg(&wheels)
            .arg(root().join("host/python")),
    )?;
    let wheel = std::fs::read_dir(&wheels)?
        .filter_map(|entry| Some(entry.ok()?.path()))
        .find(|path| path.extension().is_some_and(|e| e == "whl"))
        .context("pip wrote no wheel")?;
    eprintln!("xtask: wheel {}", wheel.display());
    Ok(wheel)
}

/// The wheel installed in a fresh venv (`target/wheel-venv`), and its tests run there.
pub(crate) fn test() -> Result<()> {
    let wheel = build()?;
    let venv = root().join("target/wheel-venv");
    if venv.exists() {
        std::fs::remove_dir_all(&venv)?;
    }
    step(
        "a fresh venv for the wheel (target/wheel-venv)",
        Command::new("python3").args(["-m", "venv"]).arg(&venv),
    )?;
    let venv_python = venv.join("bin/python");
    step(
        "installing the wheel and its tests' packages",
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
            ])
            .arg(&wheel)
            .arg("-r")
            .arg(root().join("host/python/tests/requirements.txt")),
    )?;
    step(
        "Python host tests (pytest, on the installed wheel)",
        Command::new(&venv_python)
            .args(["-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"])
            .env("EDGESCORE_MODELS_DIR", root().join("models"))
            .current_dir(root().join("host/python")),
    )
}
