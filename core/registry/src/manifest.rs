//! `manifest.json`, beside each `model.onnx` of the registry (`models/<name>/<version>/`).

use serde::{Deserialize, Serialize};

/// Feature statistics of the traffic a model expects (for drift detection).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Baseline {
    pub sample_size: u64,
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// `manifest.json` beside each `model.onnx`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub name: String,
    pub version: u32,
    #[serde(default)]
    pub description: String,
    pub input_width: u32,
    pub feature_names: Vec<String>,
    pub input_name: String,
    pub output_name: String,
    pub sha256: String,
    pub baseline: Baseline,
}
