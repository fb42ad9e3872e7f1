//! The model registry: `models/<name>/<version>/{model.onnx, manifest.json}`. A version whose
//! manifest does not parse or whose sha256 does not match its file is reported and never served.
//! The repository's `models/` is embedded in this crate ([`EMBEDDED_MODELS`]) as the default
//! registry of every host: the native binary and the Spin app serve it without reading a file.
//!
//! ```
//! let registry = edgescore_registry::Registry::embedded();
//! let active = registry.select(None, None).unwrap(); // the only model, its highest version
//! assert_eq!(active.manifest.input_width as usize, active.manifest.feature_names.len());
//! ```

mod manifest;

use std::path::Path;

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};

pub use manifest::{Baseline, Manifest};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

/// `(folder under models/, manifest.json, model.onnx)` of every version in the repository.
pub use embedded::EMBEDDED_MODELS;

/// One servable model version.
#[derive(Debug, Clone)]
pub struct ModelVersion {
    pub manifest: Manifest,
    pub onnx: Vec<u8>,
}

#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// Sorted by name, then version.
    pub versions: Vec<ModelVersion>,
    /// One sentence per version that was skipped, naming it and why.
    pub problems: Vec<String>,
}

impl Registry {
    /// The registry compiled into this binary (the repository's `models/`).
    pub fn embedded() -> Self {
        let mut registry = Registry::default();
        for (dir, manifest, onnx) in embedded::EMBEDDED_MODELS {
            registry.add(dir, manifest.as_bytes(), onnx.to_vec());
        }
        registry.sort();
        registry
    }

    /// Scans `dir/<name>/<version>/` folders.
    pub fn scan(dir: &Path) -> Result<Self> {
        let mut registry = Registry::default();
        let names = std::fs::read_dir(dir)
            .with_context(|| format!("reading the models folder {}", dir.display()))?;
        for name in names.flatten().filter(|e| e.path().is_dir()) {
            for version in std::fs::read_dir(name.path())?.flatten() {
                let folder = version.path();
                let manifest_path = folder.join("manifest.json");
                if !manifest_path.exists() {
                    continue;
                }
                let label = folder
                    .strip_prefix(dir)
                    .unwrap_or(&folder)
                    .display()
                    .to_string();
                let read = std::fs::read(&manifest_path)
                    .and_then(|m| Ok((m, std::fs::read(folder.join("model.onnx"))?)));
                match read {
                    Ok((manifest, onnx)) => registry.add(&label, &manifest, onnx),
                    Err(e) => registry.problems.push(format!("{label}: {e}")),
                }
            }
        }
        registry.sort();
        Ok(registry)
    }

    fn add(&mut self, label: &str, manifest: &[u8], onnx: Vec<u8>) {
        match check(manifest, &onnx) {
            Ok(manifest) => self.versions.push(ModelVersion { manifest, onnx }),
            Err(e) => self.problems.push(format!("{label}: {e:#}")),
        }
    }

    fn sort(&mut self) {
        self.versions.sort_by(|a, b| {
            (&a.manifest.name, a.manifest.version).cmp(&(&b.manifest.name, b.manifest.version))
        });
    }

    /// The version to serve: `version` if given, else the highest; of model `name` if given, else
    /// of the only model name in the registry.
    pub fn select(&self, name: Option<&str>, version: Option<u32>) -> Result<&ModelVersion> {
        let names: std::collections::BTreeSet<&str> = self
            .versions
            .iter()
            .map(|v| v.manifest.name.as_str())
            .collect();
        let name = match name {
            Some(name) => name,
            None if names.len() == 1 => names.into_iter().next().unwrap(),
            None if names.is_empty() => bail!(
                "the model registry holds no valid model{}",
                self.problem_suffix()
            ),
            None => bail!("the registry holds several models ({names:?}): choose one by name"),
        };
        let candidates = self.versions.iter().filter(|v| v.manifest.name == name);
        let chosen = match version {
            Some(version) => candidates
                .into_iter()
                .find(|v| v.manifest.version == version),
            None => candidates.into_iter().max_by_key(|v| v.manifest.version),
        };
        chosen.with_context(|| match version {
            Some(v) => format!(
                "model {name:?} has no version {v} in the registry{}",
                self.problem_suffix()
            ),
            None => format!("the registry has no model {name:?}"),
        })
    }

    fn problem_suffix(&self) -> String {
        if self.problems.is_empty() {
            String::new()
        } else {
            format!(" (skipped: {})", self.problems.join("; "))
        }
    }
}

/// Hex sha256, as manifests give it.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn check(manifest: &[u8], onnx: &[u8]) -> Result<Manifest> {
    let manifest: Manifest = serde_json::from_slice(manifest).context("manifest.json")?;
    let actual = sha256_hex(onnx);
    if actual != manifest.sha256.to_ascii_lowercase() {
        bail!(
            "model.onnx has sha256 {actual}, the manifest says {}",
            manifest.sha256
        );
    }
    if manifest.feature_names.len() != manifest.input_width as usize {
        bail!(
            "manifest names {} features for an input width of {}",
            manifest.feature_names.len(),
            manifest.input_width
        );
    }
    Ok(manifest)
}
