//! The Open Inference Protocol's REST API (KServe v2), as KServe, Triton, Seldon MLServer and
//! their clients (`tritonclient`, `kserve`) speak it, for both hosts:
//!
//! - [`paths`]: the routes, and which model and version a path names;
//! - [`request`]: an inference request, with JSON tensors or the binary tensor data extension
//!   (`Inference-Header-Content-Length`), checked against the model's one input;
//! - [`response`]: the metadata bodies and the inference response, JSON or binary.
//!
//! Errors are the protocol's shape, `{"error": "..."}` (with the request's id beside it, as on
//! every route): a shape, datatype or tensor name the model does not take is a 400, an unknown
//! model or version a 404.

pub mod paths;
pub mod request;
pub mod response;

/// What the protocol needs to know of a served model version.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelSignature {
    /// The model's name in the registry (`seed-mlp`).
    pub name: String,
    /// Its version label (`2`).
    pub version: String,
    /// The name of its one input tensor, `[N, width]` FP32.
    pub input_name: String,
    /// The name of its one output tensor, `[N, 1]` FP32.
    pub output_name: String,
    pub width: usize,
}

/// The index in `served` of the version `path` names (`served`: the versions of the one model a
/// host serves, the active one at `active`): 404 for another model's name or an unknown version.
pub fn resolve(
    path: &paths::ModelPath,
    served: &[ModelSignature],
    active: usize,
) -> Result<usize, crate::ApiError> {
    let name = &served[active].name;
    if &path.name != name {
        return Err(crate::ApiError::not_found(format!(
            "model: no model named {:?} (served: {name})",
            path.name
        )));
    }
    let Some(version) = &path.version else {
        return Ok(active);
    };
    let labels: Vec<String> = served.iter().map(|m| m.version.clone()).collect();
    crate::models::choose_version(name, &labels, version)
}

/// 415 unless an inference body is JSON, or JSON followed by binary tensors
/// (`application/octet-stream`); a missing content type is read as JSON.
pub fn check_content_type(content_type: Option<&[u8]>) -> Result<(), crate::ApiError> {
    if content_type.is_some_and(|v| v.starts_with(b"application/octet-stream")) {
        return Ok(());
    }
    crate::access::check_json_body(content_type)
}

/// The header that says how many bytes of a body are its JSON (the rest: binary tensors).
pub const HEADER_LENGTH: &str = "inference-header-content-length";

/// The value of [`HEADER_LENGTH`], when the request has the header: 400 unless a byte count.
pub fn header_length(value: Option<&[u8]>) -> Result<Option<usize>, crate::ApiError> {
    let Some(value) = value else {
        return Ok(None);
    };
    std::str::from_utf8(value)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .map(Some)
        .ok_or_else(|| {
            crate::ApiError::bad_request(format!(
                "{HEADER_LENGTH}: {:?} is not a byte count",
                String::from_utf8_lossy(value)
            ))
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use paths::ModelPath;

    /// The signature of the registry's seed model, version 2.
    pub(crate) fn seed_mlp() -> ModelSignature {
        ModelSignature {
            name: "seed-mlp".into(),
            version: "2".into(),
            input_name: "features".into(),
            output_name: "score".into(),
            width: 3,
        }
    }

    #[test]
    fn a_path_names_the_active_version_or_the_one_asked_for() {
        let v1 = ModelSignature {
            version: "1".into(),
            ..seed_mlp()
        };
        let served = [v1, seed_mlp()];
        let path = |name: &str, version: Option<&str>| ModelPath {
            name: name.into(),
            version: version.map(Into::into),
        };
        assert_eq!(resolve(&path("seed-mlp", None), &served, 1).unwrap(), 1);
        assert_eq!(
            resolve(&path("seed-mlp", Some("v1")), &served, 1).unwrap(),
            0
        );
        assert_eq!(
            resolve(&path("seed-mlp", Some("9")), &served, 1)
                .unwrap_err()
                .status,
            404
        );
        assert_eq!(
            resolve(&path("other", None), &served, 1)
                .unwrap_err()
                .status,
            404
        );
    }
}
