//! `POST /predict` (and `POST /batch`) bodies: `{"instances": [...]}` where each instance is a row
//! of numbers in the model's feature order, or an object keyed by the manifest's feature names.
//! Unlike ingest, a bad instance fails the whole request: there is no partial prediction.

//!
//! The body is streamed straight into one flat buffer of `f32`s (no JSON tree is built, whatever
//! the body holds), and the parser stops at the instances limit.

mod parse;

use serde::Serialize;

use crate::errors::ApiError;
pub use parse::parse_predict;

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

impl From<PredictParseError> for ApiError {
    fn from(e: PredictParseError) -> Self {
        ApiError::new(e.status(), e.to_string())
    }
}

/// What the parser needs to know of the model.
pub struct Features<'a> {
    /// The manifest's names, in input order; empty when the model has none (a bare ONNX file).
    pub names: &'a [String],
    pub width: usize,
}

/// A prediction must be a number: an instance the model scores as NaN or infinite is a 422
/// naming it (JSON has no such number, and no partial prediction is given).
pub fn check_predictions(scores: &[f32]) -> Result<(), ApiError> {
    match scores.iter().position(|s| !s.is_finite()) {
        None => Ok(()),
        Some(i) => Err(ApiError::new(
            422,
            format!(
                "instances[{i}]: the model scored this instance as {}, which is not finite",
                scores[i]
            ),
        )),
    }
}

/// `POST /predict` → 200.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
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
    fn the_body_is_streamed_and_the_parse_stops_at_the_limit() {
        // The third instance passes the limit of 2: refused there, before the rest of the body
        // (not even JSON) is read.
        let body = r#"{"instances": [[1, 2, 3], [4, 5, 6], [7, 8, 9], this is never read"#;
        assert_eq!(parse(body), Err(PredictParseError::TooMany { limit: 2 }));
        // Anything else after the instances is skipped without being built.
        let rows = parse(r#"{"meta": {"deep": [[[[1]]], {"x": "y"}]}, "instances": [[1, 2, 3]]}"#);
        assert_eq!(rows, Ok(vec![1.0, 2.0, 3.0]));
    }

    proptest::proptest! {
        /// The streaming parser reads what a JSON tree says: rows, named objects in any key
        /// order, and values as f32.
        #[test]
        fn streams_what_the_tree_says(
            instances in proptest::collection::vec(
                (proptest::array::uniform3(-1e6f64..1e6), proptest::bool::ANY, 0usize..6),
                1..20,
            ),
        ) {
            let names = names();
            let json: Vec<serde_json::Value> = instances
                .iter()
                .map(|(v, named, order)| {
                    if *named {
                        let mut keys = [0, 1, 2];
                        keys.rotate_left(order % 3);
                        if order % 2 == 1 {
                            keys.reverse();
                        }
                        let fields: serde_json::Map<String, serde_json::Value> = keys
                            .iter()
                            .map(|&k| (names[k].clone(), serde_json::json!(v[k])))
                            .collect();
                        serde_json::Value::Object(fields)
                    } else {
                        serde_json::json!(v)
                    }
                })
                .collect();
            let body = serde_json::json!({"instances": json}).to_string();
            let expected: Vec<f32> = instances.iter().flat_map(|(v, ..)| v.map(|x| x as f32)).collect();
            let got = parse_predict(body.as_bytes(), &Features { names: &names, width: 3 }, 100);
            proptest::prop_assert_eq!(got, Ok(expected));
        }
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
