//! The protocol's bodies: server and model metadata, the repository index, and the inference
//! response (its output as JSON data, or as binary data after the JSON).

use serde::Serialize;

use super::ModelSignature;

/// `GET /v2`.
#[derive(Debug, Serialize)]
pub struct ServerMetadata {
    pub name: &'static str,
    pub version: &'static str,
    pub extensions: [&'static str; 2],
}

pub const SERVER: ServerMetadata = ServerMetadata {
    name: "edgescore",
    version: env!("CARGO_PKG_VERSION"),
    extensions: ["binary_tensor_data", "model_repository"],
};

/// A tensor's name, datatype and shape (`-1`: any number of rows).
#[derive(Debug, Serialize)]
pub struct TensorMetadata {
    pub name: String,
    pub datatype: &'static str,
    pub shape: [i64; 2],
}

/// `GET /v2/models/{name}[/versions/{v}]`.
#[derive(Debug, Serialize)]
pub struct ModelMetadata {
    pub name: String,
    pub versions: Vec<String>,
    pub platform: &'static str,
    pub inputs: [TensorMetadata; 1],
    pub outputs: [TensorMetadata; 1],
}

impl ModelMetadata {
    /// `model`, one of `versions`.
    pub fn new(model: &ModelSignature, versions: Vec<String>) -> ModelMetadata {
        ModelMetadata {
            name: model.name.clone(),
            versions,
            platform: "onnx",
            inputs: [TensorMetadata {
                name: model.input_name.clone(),
                datatype: "FP32",
                shape: [-1, model.width as i64],
            }],
            outputs: [TensorMetadata {
                name: model.output_name.clone(),
                datatype: "FP32",
                shape: [-1, 1],
            }],
        }
    }
}

/// One entry of `POST /v2/repository/index`: a served version, always ready (a host serves
/// only the versions it loaded).
#[derive(Debug, Serialize)]
pub struct RepositoryEntry {
    pub name: String,
    pub version: String,
    pub state: &'static str,
}

impl RepositoryEntry {
    pub fn of(model: &ModelSignature) -> RepositoryEntry {
        RepositoryEntry {
            name: model.name.clone(),
            version: model.version.clone(),
            state: "READY",
        }
    }
}

/// An answer's body, and how much of it is JSON when binary data follows (the value of the
/// `Inference-Header-Content-Length` header; the content type is then
/// `application/octet-stream`).
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceAnswer {
    pub body: Vec<u8>,
    pub json_len: Option<usize>,
}

#[derive(Serialize)]
struct InferenceResponse<'a> {
    model_name: &'a str,
    model_version: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    outputs: [OutputTensor<'a>; 1],
}

#[derive(Serialize)]
struct OutputTensor<'a> {
    name: &'a str,
    datatype: &'static str,
    shape: [usize; 2],
    #[serde(skip_serializing_if = "Option::is_none")]
    data: Option<&'a [f32]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameters: Option<BinarySize>,
}

#[derive(Serialize)]
struct BinarySize {
    binary_data_size: usize,
}

/// The response to an inference of `model`: one score per row, `[N, 1]` FP32.
pub fn inference_answer(
    model: &ModelSignature,
    id: Option<&str>,
    scores: &[f32],
    binary: bool,
) -> InferenceAnswer {
    let output = OutputTensor {
        name: &model.output_name,
        datatype: "FP32",
        shape: [scores.len(), 1],
        data: (!binary).then_some(scores),
        parameters: binary.then_some(BinarySize {
            binary_data_size: scores.len() * 4,
        }),
    };
    let response = InferenceResponse {
        model_name: &model.name,
        model_version: &model.version,
        id,
        outputs: [output],
    };
    let mut body = serde_json::to_vec(&response).expect("a response serializes");
    if !binary {
        return InferenceAnswer {
            body,
            json_len: None,
        };
    }
    let json_len = body.len();
    for score in scores {
        body.extend_from_slice(&score.to_le_bytes());
    }
    InferenceAnswer {
        body,
        json_len: Some(json_len),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelSignature {
        crate::inference::tests::seed_mlp()
    }

    #[test]
    fn json_and_binary_answers_carry_the_same_scores() {
        let scores = [0.25f32, -0.145_735_05];
        let json = inference_answer(&model(), Some("r1"), &scores, false);
        assert_eq!(json.json_len, None);
        let value: serde_json::Value = serde_json::from_slice(&json.body).unwrap();
        assert_eq!(value["id"], "r1");
        assert_eq!(value["outputs"][0]["shape"], serde_json::json!([2, 1]));
        let data: Vec<f32> = serde_json::from_value(value["outputs"][0]["data"].clone()).unwrap();
        assert_eq!(data, scores);

        let binary = inference_answer(&model(), None, &scores, true);
        let n = binary.json_len.unwrap();
        let header: serde_json::Value = serde_json::from_slice(&binary.body[..n]).unwrap();
        assert_eq!(header["outputs"][0]["parameters"]["binary_data_size"], 8);
        assert!(header["outputs"][0].get("data").is_none());
        let tail: Vec<f32> = binary.body[n..]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
            .collect();
        assert_eq!(tail, scores);
    }
}
