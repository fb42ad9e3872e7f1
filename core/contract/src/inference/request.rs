//! An inference request: one input tensor `[N, width]`, as JSON data (flat or nested, row-major)
//! or as raw little-endian bytes after the JSON (the binary tensor data extension), checked
//! against the model before anything is scored.

use serde::Deserialize;
use serde_json::Value;

use super::ModelSignature;
use crate::ApiError;

/// A request the model can score.
#[derive(Debug, Clone, PartialEq)]
pub struct Inference {
    pub id: Option<String>,
    /// `rows × width` features, row-major.
    pub rows: Vec<f32>,
    /// Whether the output goes back as binary data after the JSON.
    pub binary_output: bool,
}

#[derive(Deserialize)]
struct RequestBody {
    id: Option<String>,
    #[serde(default)]
    parameters: Parameters,
    inputs: Vec<InputTensor>,
    outputs: Option<Vec<RequestedOutput>>,
}

#[derive(Deserialize, Default)]
struct Parameters {
    binary_data_output: Option<bool>,
    binary_data_size: Option<usize>,
    binary_data: Option<bool>,
}

#[derive(Deserialize)]
struct InputTensor {
    name: String,
    shape: Vec<i64>,
    datatype: String,
    #[serde(default)]
    parameters: Parameters,
    data: Option<Value>,
}

#[derive(Deserialize)]
struct RequestedOutput {
    name: String,
    #[serde(default)]
    parameters: Parameters,
}

/// 400 in the protocol's words.
fn bad(message: impl Into<String>) -> ApiError {
    ApiError::bad_request(message)
}

/// Reads `body` (its first `json_len` bytes JSON, the rest binary tensors, when the request says
/// `Inference-Header-Content-Length`) for `model`, at most `max_rows` rows.
pub fn parse_inference(
    body: &[u8],
    json_len: Option<usize>,
    model: &ModelSignature,
    max_rows: usize,
) -> Result<Inference, ApiError> {
    let (json, mut binary) = match json_len {
        Some(n) if n <= body.len() => body.split_at(n),
        Some(n) => {
            return Err(bad(format!(
                "inference-header-content-length: {n} is longer than the body ({} bytes)",
                body.len()
            )));
        }
        None => (body, &[][..]),
    };
    let request: RequestBody = serde_json::from_slice(json)
        .map_err(|e| bad(format!("body: not an inference request ({e})")))?;
    let [input] = request.inputs.as_slice() else {
        return Err(bad(format!(
            "inputs: the model takes one input, {:?}, not {}",
            model.input_name,
            request.inputs.len()
        )));
    };
    if input.name != model.input_name {
        return Err(bad(format!(
            "inputs[0].name: the model has no input {:?}; it takes {:?}",
            input.name, model.input_name
        )));
    }
    let rows = check_shape(&input.shape, model.width, max_rows)?;
    let len = rows * model.width;
    let features = match input.parameters.binary_data_size {
        Some(size) => binary_features(&mut binary, size, len, &input.datatype)?,
        None => json_features(input.data.as_ref(), len, &input.datatype)?,
    };
    if !binary.is_empty() {
        return Err(bad(format!(
            "body: {} bytes after the tensors the request names",
            binary.len()
        )));
    }
    if let Some(bad_value) = features.iter().position(|f| !f.is_finite()) {
        return Err(bad(format!(
            "inputs[0].data[{bad_value}]: not a finite 32-bit number"
        )));
    }
    let binary_output = binary_output(&request, model)?;
    Ok(Inference {
        id: request.id,
        rows: features,
        binary_output,
    })
}

/// The rows of a `[N, width]` shape.
fn check_shape(shape: &[i64], width: usize, max_rows: usize) -> Result<usize, ApiError> {
    let wrong = || {
        bad(format!(
            "inputs[0].shape: {shape:?} is not [N, {width}] with 1 <= N <= {max_rows}"
        ))
    };
    match shape {
        [n, w] if *w == width as i64 && *n >= 1 && *n as u64 <= max_rows as u64 => Ok(*n as usize),
        _ => Err(wrong()),
    }
}

fn element_bytes(datatype: &str) -> Result<usize, ApiError> {
    match datatype {
        "FP32" => Ok(4),
        "FP64" => Ok(8),
        other => Err(bad(format!(
            "inputs[0].datatype: {other:?}; the model takes FP32 (or FP64, converted)"
        ))),
    }
}

/// `size` bytes off the front of `binary`: `len` little-endian numbers of `datatype`.
fn binary_features(
    binary: &mut &[u8],
    size: usize,
    len: usize,
    datatype: &str,
) -> Result<Vec<f32>, ApiError> {
    let width = element_bytes(datatype)?;
    if size != len * width || size > binary.len() {
        return Err(bad(format!(
            "inputs[0].parameters.binary_data_size: {size} bytes, where the shape needs {} and the body holds {}",
            len * width,
            binary.len()
        )));
    }
    let (bytes, rest) = binary.split_at(size);
    *binary = rest;
    Ok(match width {
        4 => bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect(),
        _ => bytes
            .chunks_exact(8)
            .map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes")) as f32)
            .collect(),
    })
}

/// The JSON data of the input: `len` numbers, flat or nested row-major.
fn json_features(data: Option<&Value>, len: usize, datatype: &str) -> Result<Vec<f32>, ApiError> {
    element_bytes(datatype)?;
    let data = data.ok_or_else(|| bad("inputs[0].data: missing (nor binary_data_size)"))?;
    let mut out = Vec::with_capacity(len);
    flatten(data, &mut out)?;
    if out.len() != len {
        return Err(bad(format!(
            "inputs[0].data: {} numbers, where the shape needs {len}",
            out.len()
        )));
    }
    Ok(out)
}

fn flatten(value: &Value, out: &mut Vec<f32>) -> Result<(), ApiError> {
    match value {
        Value::Array(items) => items.iter().try_for_each(|item| flatten(item, out)),
        Value::Number(n) => {
            let n = n.as_f64().unwrap_or(f64::NAN);
            out.push(n as f32);
            Ok(())
        }
        other => Err(bad(format!(
            "inputs[0].data[{}]: {other} is not a number",
            out.len()
        ))),
    }
}

/// Whether the output is to be binary: its own `binary_data`, else the request's
/// `binary_data_output`. Only the model's one output may be asked for.
fn binary_output(request: &RequestBody, model: &ModelSignature) -> Result<bool, ApiError> {
    let default = request.parameters.binary_data_output.unwrap_or(false);
    let Some(outputs) = &request.outputs else {
        return Ok(default);
    };
    let mut binary = default;
    for (i, output) in outputs.iter().enumerate() {
        if output.name != model.output_name {
            return Err(bad(format!(
                "outputs[{i}].name: the model has no output {:?}; it gives {:?}",
                output.name, model.output_name
            )));
        }
        binary = output.parameters.binary_data.unwrap_or(default);
    }
    Ok(binary)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> ModelSignature {
        crate::inference::tests::seed_mlp()
    }

    fn parse(body: &[u8], json_len: Option<usize>) -> Result<Inference, ApiError> {
        parse_inference(body, json_len, &model(), 100)
    }

    #[test]
    fn json_tensors_flat_or_nested_give_the_same_rows() {
        let flat = br#"{"id":"r1","inputs":[{"name":"features","shape":[2,3],"datatype":"FP32","data":[1,2,3,4,5,6]}]}"#;
        let nested = br#"{"inputs":[{"name":"features","shape":[2,3],"datatype":"FP64","data":[[1,2,3],[4,5,6]]}],"outputs":[{"name":"score"}]}"#;
        let a = parse(flat, None).unwrap();
        let b = parse(nested, None).unwrap();
        assert_eq!(a.rows, vec![1., 2., 3., 4., 5., 6.]);
        assert_eq!(a.rows, b.rows);
        assert_eq!((a.id.as_deref(), a.binary_output), (Some("r1"), false));
    }

    #[test]
    fn binary_tensors_follow_the_json_header() {
        let header = br#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","parameters":{"binary_data_size":12}}],"parameters":{"binary_data_output":true}}"#;
        let mut body = header.to_vec();
        for f in [0.5f32, -1.0, 2.25] {
            body.extend_from_slice(&f.to_le_bytes());
        }
        let parsed = parse(&body, Some(header.len())).unwrap();
        assert_eq!(parsed.rows, vec![0.5, -1.0, 2.25]);
        assert!(parsed.binary_output);
        // A byte too many, or too few, is refused.
        body.push(0);
        assert_eq!(parse(&body, Some(header.len())).unwrap_err().status, 400);
        body.truncate(body.len() - 2);
        assert_eq!(parse(&body, Some(header.len())).unwrap_err().status, 400);
    }

    #[test]
    fn the_header_length_is_a_byte_count_or_a_400() {
        use super::super::header_length;
        assert_eq!(header_length(None).unwrap(), None);
        assert_eq!(header_length(Some(b" 144")).unwrap(), Some(144));
        let e = header_length(Some(b"lots")).unwrap_err();
        assert_eq!(e.status, 400);
        assert!(e.message().starts_with("inference-header-content-length"));
    }

    #[test]
    fn what_the_model_does_not_take_is_a_400_naming_the_field() {
        let cases = [
            (
                r#"{"inputs":[{"name":"x","shape":[1,3],"datatype":"FP32","data":[1,2,3]}]}"#,
                "inputs[0].name",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[1,4],"datatype":"FP32","data":[1,2,3,4]}]}"#,
                "inputs[0].shape",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"INT64","data":[1,2,3]}]}"#,
                "inputs[0].datatype",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[2,3],"datatype":"FP32","data":[1,2,3]}]}"#,
                "inputs[0].data",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","data":[1,"a",3]}]}"#,
                "inputs[0].data[1]",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","data":[1,1e300,3]}]}"#,
                "inputs[0].data[1]",
            ),
            (
                r#"{"inputs":[{"name":"features","shape":[101,3],"datatype":"FP32","data":[]}]}"#,
                "inputs[0].shape",
            ),
            (r#"{"inputs":[]}"#, "inputs:"),
            (
                r#"{"inputs":[{"name":"features","shape":[1,3],"datatype":"FP32","data":[1,2,3]}],"outputs":[{"name":"y"}]}"#,
                "outputs[0].name",
            ),
            (r#"{"inputs": 5}"#, "body:"),
        ];
        for (body, field) in cases {
            let e = parse(body.as_bytes(), None).unwrap_err();
            assert_eq!(e.status, 400, "{body}");
            assert!(e.message().starts_with(field), "{body}: {}", e.message());
        }
    }
}
