//! `POST /predict` (and `POST /batch`) bodies: `{"instances": [...]}` where each instance is a row
//! of numbers in the model's feature order, or an object keyed by the manifest's feature names.
//! Unlike ingest, a bad instance fails the whole request: there is no partial prediction.

use serde::Serialize;
use serde_json::Value;

/// Why a predict body is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictParseError {
    #[error("body: not valid JSON: {0}")]
    Syntax(String),
    /// JSON, but not instances this model can score; the sentence names the instance and field.
    #[error("{0}")]
    Invalid(String),
    #[error("instances: more than {limit} instances in one request (the limit)")]
    TooMany { limit: usize },
}

impl PredictParseError {
    pub fn status(&self) -> u16 {
        match self {
            PredictParseError::Syntax(_) => 400,
            PredictParseError::Invalid(_) => 422,
            PredictParseError::TooMany { .. } => 413,
        }
    }
}

/// What the parser needs to know of the model.
pub struct Features<'a> {
    /// The manifest's names, in input order; empty when the model has none (a bare ONNX file).
    pub names: &'a [String],
    pub width: usize,
}

/// Parses instances into one flat row-major buffer of `n × width` finite f32s.
pub fn parse_predict(
    body: &[u8],
    features: &Features,
    max_instances: usize,
) -> Result<Vec<f32>, PredictParseError> {
    let invalid = |m: String| Err(PredictParseError::Invalid(m));
    let value: Value =
        serde_json::from_slice(body).map_err(|e| PredictParseError::Syntax(e.to_string()))?;
    let Some(instances) = value.get("instances") else {
        return invalid(r#"instances: missing; the body must be {"instances": [...]}"#.into());
    };
    let Some(instances) = instances.as_array() else {
        return invalid("instances: must be an array of rows or objects".into());
    };
    if instances.len() > max_instances {
        return Err(PredictParseError::TooMany {
            limit: max_instances,
        });
    }
    if instances.is_empty() {
        return invalid("instances: must hold at least one instance".into());
    }
    let width = features.width;
    let mut rows = Vec::with_capacity(instances.len() * width);
    for (i, instance) in instances.iter().enumerate() {
        match instance {
            Value::Array(row) => {
                if row.len() != width {
                    return invalid(format!(
                        "instances[{i}]: expected {width} values, got {}",
                        row.len()
                    ));
                }
                for (j, v) in row.iter().enumerate() {
                    rows.push(number(v, || format!("instances[{i}][{j}]"))?);
                }
            }
            Value::Object(fields) => {
                if features.names.is_empty() {
                    return invalid(format!(
                        "instances[{i}]: this model has no feature names; send rows of {width} numbers"
                    ));
                }
                let unknown: Vec<&str> = fields
                    .keys()
                    .filter(|k| !features.names.contains(k))
                    .map(String::as_str)
                    .collect();
                let missing: Vec<&str> = features
                    .names
                    .iter()
                    .filter(|n| !fields.contains_key(*n))
                    .map(String::as_str)
                    .collect();
                if !missing.is_empty() || !unknown.is_empty() {
                    let mut problems = Vec::new();
                    if !missing.is_empty() {
                        problems.push(format!("missing {}", missing.join(", ")));
                    }
                    if !unknown.is_empty() {
                        problems.push(format!("unknown {}", unknown.join(", ")));
                    }
                    return invalid(format!(
                        "instances[{i}]: {} (the model's features: {})",
                        problems.join("; "),
                        features.names.join(", ")
                    ));
                }
                for name in features.names {
                    rows.push(number(&fields[name], || format!("instances[{i}].{name}"))?);
                }
            }
            _ => {
                return invalid(format!(
                    "instances[{i}]: must be an array of numbers or an object of named features"
                ));
            }
        }
    }
    Ok(rows)
}

/// A finite f32 from a JSON number (a double beyond f32's range is refused, never clamped).
fn number(v: &Value, field: impl Fn() -> String) -> Result<f32, PredictParseError> {
    match v.as_f64().map(|x| x as f32) {
        Some(x) if x.is_finite() => Ok(x),
        Some(_) => Err(PredictParseError::Invalid(format!(
            "{}: must be a finite 32-bit float",
            field()
        ))),
        None => Err(PredictParseError::Invalid(format!(
            "{}: must be a number",
            field()
        ))),
    }
}

/// `POST /predict` → 200.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PredictResponse {
    pub predictions: Vec<f64>,
    pub model_version: String,
    pub latency_ms: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        ["a", "b", "c"].map(String::from).to_vec()
    }

    fn parse(body: &str) -> Result<Vec<f32>, PredictParseError> {
        let names = names();
        parse_predict(
            body.as_bytes(),
            &Features {
                names: &names,
                width: 3,
            },
            2,
        )
    }

    #[test]
    fn rows_and_named_objects_give_the_same_buffer() {
        let rows = parse(r#"{"instances": [[1, 2, 3], [4, 5.5, 6]]}"#).unwrap();
        let named = parse(r#"{"instances": [{"c": 3, "a": 1, "b": 2}, [4, 5.5, 6]]}"#).unwrap();
        assert_eq!(rows, vec![1.0, 2.0, 3.0, 4.0, 5.5, 6.0]);
        assert_eq!(named, rows);
    }

    #[test]
    fn problems_name_the_instance_and_field() {
        let cases = [
            ("nope", 400, "body: not valid JSON"),
            (
                r#"{"instances": [[NaN, 1, 2]]}"#,
                400,
                "body: not valid JSON",
            ),
            ("{}", 422, "instances: missing"),
            (r#"{"instances": {}}"#, 422, "instances: must be an array"),
            (
                r#"{"instances": []}"#,
                422,
                "instances: must hold at least one",
            ),
            (
                r#"{"instances": [[1, 2]]}"#,
                422,
                "instances[0]: expected 3 values, got 2",
            ),
            (
                r#"{"instances": [[1, 2, 3], [1, "x", 3]]}"#,
                422,
                "instances[1][1]: must be a number",
            ),
            (
                r#"{"instances": [[1, 2, 1e39]]}"#,
                422,
                "instances[0][2]: must be a finite 32-bit float",
            ),
            (
                r#"{"instances": [{"a": 1, "b": 2, "d": 4}]}"#,
                422,
                "instances[0]: missing c; unknown d (the model's features: a, b, c)",
            ),
            (
                r#"{"instances": [{"a": 1, "b": 2, "c": null}]}"#,
                422,
                "instances[0].c: must be a number",
            ),
            (
                r#"{"instances": [7]}"#,
                422,
                "instances[0]: must be an array",
            ),
            (
                r#"{"instances": [[1, 2, 3], [1, 2, 3], [1, 2, 3]]}"#,
                413,
                "instances: more than 2",
            ),
        ];
        for (body, status, message) in cases {
            let err = parse(body).unwrap_err();
            assert_eq!(err.status(), status, "{body}: {err}");
            assert!(err.to_string().starts_with(message), "{body}: {err}");
        }
        let err = parse_predict(
            br#"{"instances": [{"a": 1}]}"#,
            &Features {
                names: &[],
                width: 1,
            },
            9,
        )
        .unwrap_err();
        assert!(err.to_string().contains("no feature names"), "{err}");
    }
}
