//! The bodies that describe served models (`GET /models`, `/stats`' `model`), and how `?version=`
//! picks one of them.

use serde::Serialize;
use utoipa::ToSchema;

use crate::errors::ApiError;

/// One entry of `GET /models`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelEntry {
    pub name: String,
    /// The registry version; none for a bare ONNX file.
    pub version: Option<u32>,
    pub input_width: u32,
    pub feature_names: Vec<String>,
    pub sha256: String,
    pub active: bool,
}

/// `GET /models` → 200.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelsBody {
    pub models: Vec<ModelEntry>,
    /// Registry entries reported and never served (bad sha256, unreadable manifest ...).
    pub skipped: Vec<String>,
}

/// The active model, as `/stats` and a reload's answer name it.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
pub struct ModelLabel {
    pub name: String,
    pub version: Option<u32>,
    pub sha256: String,
    pub input_width: u32,
}

/// How a version is named in `?version=`, `/predict`'s `model_version` and `/stats`: its number,
/// or the model's name for a bare ONNX file.
pub fn version_label(name: &str, version: Option<u32>) -> String {
    version.map_or_else(|| name.to_string(), |v| v.to_string())
}

/// The served version `?version=` asks for (`2` or `v2`), among `labels` (see [`version_label`]);
/// else the 404 naming what is served.
pub fn choose_version(model: &str, labels: &[String], asked: &str) -> Result<usize, ApiError> {
    labels
        .iter()
        .position(|label| label == asked || format!("v{label}") == asked)
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "version: {model} has no version {asked:?} (served: {})",
                labels.join(", ")
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_is_asked_for_by_number_or_with_a_v() {
        let labels = vec!["1".to_string(), "2".to_string()];
        assert_eq!(choose_version("seed-mlp", &labels, "2"), Ok(1));
        assert_eq!(choose_version("seed-mlp", &labels, "v1"), Ok(0));
        let e = choose_version("seed-mlp", &labels, "3").unwrap_err();
        assert_eq!(e.status, 404);
        assert_eq!(
            e.message(),
            r#"version: seed-mlp has no version "3" (served: 1, 2)"#
        );
        assert_eq!(version_label("file", None), "file");
    }
}
