//! The models the app serves: the repository's registry embedded in the component, every version
//! of its model; the highest version is active. Each is loaded on first use and cached for the
//! instance's life; no model is loaded until a request needs one.
//!
//! Scoring is the scoring component's: the app imports its `scorer` interface (the
//! `scoring-client` world of `wit/scoring.wit`), and composition — Spin's component
//! dependencies, or `wac` for one file — plugs the scoring component in.

use std::cell::OnceCell;

use edgescore_core::api::{self, Features, PredictResponse};
use edgescore_core::manifest::Manifest;
use serde::Serialize;
use spin_sdk::http::Request;

use crate::config::MAX_EVENTS;
use crate::respond::{Answer, error, json};

mod embedded {
    include!(concat!(env!("OUT_DIR"), "/embedded_models.rs"));
}

mod bindings {
    spin_sdk::wit_bindgen::generate!({
        runtime_path: "spin_sdk::wit_bindgen::rt",
        world: "scoring-client",
        path: "../../wit",
    });
}

use bindings::edgescore::scoring::scorer;
use bindings::edgescore::scoring::types::{ModelError, ScoreError};

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
    pub fn score(&self, rows: &[f32]) -> Result<Vec<f32>, String> {
        self.model.score(rows).map_err(|e| match e {
            ScoreError::EmptyBatch => "empty batch".to_string(),
            ScoreError::WrongWidth(w) => {
                format!("{} values are not rows of {}", w.len, w.width)
            }
            ScoreError::NonFinite(row) => format!("row {row} holds a NaN or infinite value"),
            ScoreError::Inference(m) => format!("inference: {m}"),
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
        self.manifest.version.to_string()
    }

    /// The loaded model, or why it cannot be (a sha256 that does not match, tract's error).
    pub fn model(&self) -> Result<&Model, String> {
        self.model
            .get_or_init(|| {
                let model = scorer::Model::load(self.onnx).map_err(|e| match e {
                    ModelError::Invalid(m) => format!("not a model tract can load: {m}"),
                    ModelError::UnsupportedSignature(m) => format!("unsupported signature: {m}"),
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
            })
            .as_ref()
            .map_err(|e| {
                let m = &self.manifest;
                format!("model {} version {}: {e}", m.name, m.version)
            })
    }
}

thread_local! {
    /// Sorted by version; the instance's cache (a WASIp3 instance is single-threaded).
    static VERSIONS: &'static [Version] = Box::leak(embedded_versions().into_boxed_slice());
}

fn embedded_versions() -> Vec<Version> {
    let mut versions: Vec<Version> = embedded::EMBEDDED_MODELS
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

/// `GET /ready`: the active model loads and scores.
pub fn ready() -> Answer {
    match active().model() {
        Ok(_) => crate::respond::ok(),
        Err(e) => json(
            503,
            &api::StatusBody {
                status: "unavailable",
                reason: Some(e),
            },
        ),
    }
}

#[derive(Serialize)]
struct Entry<'a> {
    name: &'a str,
    version: u32,
    input_width: u32,
    feature_names: &'a [String],
    sha256: &'a str,
    active: bool,
}

/// `GET /models`.
pub fn list() -> Answer {
    let active = active().manifest.version;
    let models: Vec<Entry> = versions()
        .iter()
        .map(|v| Entry {
            name: &v.manifest.name,
            version: v.manifest.version,
            input_width: v.manifest.input_width,
            feature_names: &v.manifest.feature_names,
            sha256: &v.manifest.sha256,
            active: v.manifest.version == active,
        })
        .collect();
    #[derive(Serialize)]
    struct Body<'a> {
        models: Vec<Entry<'a>>,
        skipped: [String; 0],
    }
    json(
        200,
        &Body {
            models,
            skipped: [],
        },
    )
}

/// `POST /predict`: scores only, no state touched; `?version=` picks a version.
pub async fn predict(request: Request, query: &str) -> Answer {
    let started = std::time::Instant::now();
    let asked = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("version="));
    let version = match asked {
        None => active(),
        Some(asked) => match versions()
            .iter()
            .find(|v| v.label() == asked || format!("v{}", v.label()) == asked)
        {
            Some(v) => v,
            None => {
                let served: Vec<String> = versions().iter().map(Version::label).collect();
                return error(
                    404,
                    format!(
                        "version: {} has no version {asked:?} (served: {})",
                        active().manifest.name,
                        served.join(", ")
                    ),
                );
            }
        },
    };
    let body = match crate::ingest::read_body(request).await {
        Ok(body) => body,
        Err(answer) => return answer,
    };
    let features = Features {
        names: &version.manifest.feature_names,
        width: version.manifest.input_width as usize,
    };
    let rows = match api::parse_predict(&body, &features, MAX_EVENTS) {
        Ok(rows) => rows,
        Err(e) => return error(e.status(), e.to_string()),
    };
    let model = match version.model() {
        Ok(model) => model,
        Err(e) => return error(503, e),
    };
    match model.score(&rows) {
        Ok(scores) => json(
            200,
            &PredictResponse {
                predictions: scores.into_iter().map(f64::from).collect(),
                model_version: version.label(),
                latency_ms: started.elapsed().as_secs_f64() * 1e3,
            },
        ),
        Err(e) => error(500, format!("scoring failed: {e}")),
    }
}
