//! The models the app serves: the repository's registry embedded in the component
//! (`edgescore-registry`), every version of its model; the highest version is active. Each is
//! loaded on first use and cached for the instance's life; no model is loaded until a request
//! needs one.
//!
//! Scoring is the scoring component's: the app imports its `scorer` interface (the
//! `scoring-client` world of `wit/scoring.wit`), and composition — Spin's component
//! dependencies, or `wac` for one file — plugs the scoring component in.

use std::cell::OnceCell;

use edgescore_contract::ApiError;
use edgescore_contract::models::{ModelEntry, ModelsBody, choose_version, version_label};
use edgescore_registry::{EMBEDDED_MODELS, Manifest};
use edgescore_types::{ModelError, ScoreError};

mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "spin_sdk::wit_bindgen::rt",
        world: "scoring-client",
        path: "../../wit",
    });
}

use bindings::edgescore::scoring::scorer;
use bindings::edgescore::scoring::types as wit;

/// A model loaded in the scoring component.
pub struct Model {
    model: scorer::Model,
    width: usize,
}

impl Model {
    pub fn input_width(&self) -> usize {
        self.width
    }

    /// One score per row of `rows × width` features, in one call.
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, ScoreError> {
        self.model.score(rows).map_err(|e| match e {
            wit::ScoreError::EmptyBatch => ScoreError::EmptyBatch,
            wit::ScoreError::WrongWidth(w) => ScoreError::WrongWidth {
                width: w.width,
                len: w.len,
            },
            wit::ScoreError::NonFinite(row) => ScoreError::NonFinite { row },
            wit::ScoreError::Inference(m) => ScoreError::Inference(m),
        })
    }
}

pub struct Version {
    pub manifest: Manifest,
    onnx: &'static [u8],
    model: OnceCell<Result<Model, String>>,
}

impl Version {
    pub fn label(&self) -> String {
        version_label(&self.manifest.name, Some(self.manifest.version))
    }

    /// The loaded model, or why it cannot be (503: a sha256 that does not match, tract's error).
    pub fn model(&self) -> Result<&Model, ApiError> {
        self.model
            .get_or_init(|| self.load())
            .as_ref()
            .map_err(|e| {
                let m = &self.manifest;
                ApiError::unavailable(format!("model {} version {}: {e}", m.name, m.version), 1)
            })
    }

    fn load(&self) -> Result<Model, String> {
        let model = scorer::Model::load(self.onnx).map_err(|e| {
            match e {
                wit::ModelError::Invalid(m) => ModelError::Invalid(m),
                wit::ModelError::UnsupportedSignature(m) => ModelError::UnsupportedSignature(m),
            }
            .to_string()
        })?;
        let info = model.info();
        if info.sha256 != self.manifest.sha256.to_ascii_lowercase() {
            return Err(format!(
                "model.onnx has sha256 {}, the manifest says {}",
                info.sha256, self.manifest.sha256
            ));
        }
        Ok(Model {
            model,
            width: info.input_width as usize,
        })
    }
}

thread_local! {
    /// Sorted by version; the instance's cache (a WASIp3 instance is single-threaded).
    static VERSIONS: &'static [Version] = Box::leak(embedded_versions().into_boxed_slice());
}

fn embedded_versions() -> Vec<Version> {
    let mut versions: Vec<Version> = EMBEDDED_MODELS
        .iter()
        .filter_map(|(_, manifest, onnx)| {
            Some(Version {
                manifest: serde_json::from_str(manifest).ok()?,
                onnx,
                model: OnceCell::new(),
            })
        })
        .collect();
    versions.sort_by_key(|v| v.manifest.version);
    versions
}

pub fn versions() -> &'static [Version] {
    VERSIONS.with(|v| *v)
}

pub fn active() -> &'static Version {
    versions().last().expect("the registry embeds a model")
}

/// `?version=` (`2` or `v2`), else the active version; 404 naming what is served.
pub fn choose(asked: Option<&str>) -> Result<&'static Version, ApiError> {
    let Some(asked) = asked else {
        return Ok(active());
    };
    let labels: Vec<String> = versions().iter().map(Version::label).collect();
    let index = choose_version(&active().manifest.name, &labels, asked)?;
    Ok(&versions()[index])
}

/// `GET /models`.
pub fn body() -> ModelsBody {
    let active = active().manifest.version;
    ModelsBody {
        models: versions()
            .iter()
            .map(|v| ModelEntry {
                name: v.manifest.name.clone(),
                version: Some(v.manifest.version),
                input_width: v.manifest.input_width,
                feature_names: v.manifest.feature_names.clone(),
                sha256: v.manifest.sha256.clone(),
                active: v.manifest.version == active,
            })
            .collect(),
        skipped: Vec::new(),
    }
}
