//! The API as an OpenAPI 3 document (utoipa), built from the bodies' own types. The routes both
//! hosts serve are declared here, once ([`routes`]); each host adds its own routes from its
//! handlers and serves the whole with [`document`] at `GET /openapi.json`, made exact by what it
//! enforces ([`HostFacts`]: its limits, its models' input, its token).

mod facts;
mod inference;

use std::collections::HashMap;

use serde::Deserialize;
use serde_json::Value;
use utoipa::openapi::OpenApi as Document;
use utoipa::{OpenApi, ToSchema};

pub use facts::{HostFacts, ModelInput, ServedModels};

/// `POST /ingest`'s body, as documented (the ingest parser reads it without building this type).
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"events": [{"user_id": "user-7", "timestamp": 1700000000, "features": [0.1, 0.2, 0.3]}]}))]
pub struct IngestRequest {
    /// At most 10,000 events; each is accepted or rejected on its own.
    pub events: Vec<EventIn>,
}

/// One event of an ingest.
#[derive(Debug, Deserialize, ToSchema)]
pub struct EventIn {
    /// 1 to 256 bytes.
    pub user_id: String,
    /// Seconds since the Unix epoch; judged against the watermark and the host's clock.
    pub timestamp: f64,
    /// The model's input width of finite numbers, in the model's feature order.
    pub features: Vec<f32>,
}

/// `POST /predict`'s and `POST /batch`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(example = json!({"instances": [{"feature_a": 0.1, "feature_b": 0.2, "feature_c": 0.3}, [0.9, 0.0, 0.5]]}))]
pub struct PredictRequest {
    /// 1 to 10,000 instances.
    pub instances: Vec<Instance>,
}

/// One instance: a row in the model's feature order, or an object keyed by its feature names.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum Instance {
    Row(Vec<f32>),
    Named(HashMap<String, f32>),
}

/// The routes both hosts serve, declared once: each host's handler of the same path serves it
/// with the contract's parsers and bodies.
pub mod routes {
    use crate::errors::ErrorBody;
    use crate::ingest::IngestResponse;
    use crate::models::ModelsBody;
    use crate::predict::PredictResponse;
    use crate::responses::{MedianResponse, StatusBody};

    use super::{IngestRequest, PredictRequest};

    /// Score a batch of events and record them in their users' windows
    ///
    /// Each event is accepted or rejected on its own; `processed` counts the accepted ones.
    #[utoipa::path(post, path = "/ingest", tag = "events",
        request_body = IngestRequest,
        responses(
            (status = 200, description = "Every event accepted or rejected, by position", body = IngestResponse),
            (status = 400, description = "The body is not JSON", body = ErrorBody),
            (status = 413, description = "The body or the batch is over its limit", body = ErrorBody),
            (status = 415, description = "The content type is not JSON", body = ErrorBody),
            (status = 422, description = "The body is JSON but not an ingest", body = ErrorBody),
            (status = 500, description = "Some accepted events were not recorded: named in `not_recorded`", body = ErrorBody),
            (status = 503, description = "Nothing of the request was recorded; retry after `Retry-After` seconds", body = ErrorBody,
                headers(("retry-after" = u32, description = "Seconds to wait"))),
        ))]
    pub fn ingest() {}

    /// A user's median score over the window
    #[utoipa::path(get, path = "/users/{user_id}/median", tag = "events",
        params(("user_id" = String, Path, description = "1 to 256 bytes, percent-encoded")),
        responses(
            (status = 200, description = "The median (null for a user without events in the window)", body = MedianResponse),
            (status = 400, description = "The user id is empty or over 256 bytes", body = ErrorBody),
        ))]
    pub fn median() {}

    /// Score instances without touching any window
    #[utoipa::path(post, path = "/predict", tag = "predictions",
        params(("version" = Option<String>, Query, description = "A served model version (`2` or `v2`); the active one by default")),
        request_body = PredictRequest,
        responses(
            (status = 200, description = "One prediction per instance, in order", body = PredictResponse),
            (status = 400, description = "The body is not JSON", body = ErrorBody),
            (status = 404, description = "No such model version", body = ErrorBody),
            (status = 413, description = "The body or the instances are over their limit", body = ErrorBody),
            (status = 415, description = "The content type is not JSON", body = ErrorBody),
            (status = 422, description = "An instance is not valid, named with its field", body = ErrorBody),
        ))]
    pub fn predict() {}

    /// The models served, and the registry entries that were skipped
    #[utoipa::path(get, path = "/models", tag = "models",
        responses((status = 200, description = "The served models", body = ModelsBody)))]
    pub fn models() {}

    /// Liveness
    #[utoipa::path(get, path = "/health", tag = "probes",
        responses((status = 200, description = "The process answers", body = StatusBody)))]
    pub fn health() {}

    /// Readiness: the active model loads and scores
    #[utoipa::path(get, path = "/ready", tag = "probes",
        responses(
            (status = 200, description = "Ready", body = StatusBody),
            (status = 503, description = "Not ready, and why", body = StatusBody),
        ))]
    pub fn ready() {}

    /// This document
    #[utoipa::path(get, path = "/openapi.json", tag = "probes",
        responses((status = 200, description = "The OpenAPI 3 document of this host's API", content_type = "application/json")))]
    pub fn openapi() {}
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "edgescore",
        description = "Scores events with an ONNX model inside a sandboxed WebAssembly component and keeps a rolling median per user. Every error is a JSON object whose `error` names the field and the problem."
    ),
    paths(
        routes::ingest,
        routes::median,
        routes::predict,
        routes::models,
        routes::health,
        routes::ready,
        routes::openapi,
        inference::v2_server,
        inference::v2_live,
        inference::v2_ready,
        inference::v2_model,
        inference::v2_model_version,
        inference::v2_model_ready,
        inference::v2_model_version_ready,
        inference::v2_infer,
        inference::v2_infer_version,
        inference::v2_repository_index
    ),
    components(schemas(crate::errors::ErrorBody))
)]
struct Shared;

/// The whole document of a host: the shared routes and `own` (the host's own routes, from its
/// handlers), made exact with what the host enforces ([`HostFacts`]).
pub fn document(own: Document, facts: &HostFacts) -> Value {
    let doc = Shared::openapi().merge_from(own);
    let mut doc = serde_json::to_value(doc).expect("the OpenAPI document serializes");
    facts.apply(&mut doc);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Ingest;
    use crate::predict::{Features, parse_predict};
    use crate::{ApiError, errors::PartialIngest};
    use edgescore_types::{EngineConfig, Rules};

    fn facts(token_required: bool) -> HostFacts {
        HostFacts {
            max_events: 500,
            input: Some(ModelInput {
                feature_names: ["feature_a", "feature_b", "feature_c"]
                    .map(String::from)
                    .to_vec(),
            }),
            token_required,
            served: Some(ServedModels {
                name: "seed-mlp".into(),
                versions: vec!["1".into(), "2".into()],
            }),
            body_timeout: true,
        }
    }

    fn doc(token_required: bool) -> Value {
        document(Document::default(), &facts(token_required))
    }

    #[test]
    fn the_documented_examples_are_what_the_parsers_accept() {
        let doc = doc(false);
        let example = |schema: &str| doc["components"]["schemas"][schema]["example"].clone();
        let ingest = example("IngestRequest");
        let parsed: IngestRequest = serde_json::from_value(ingest.clone()).unwrap();
        assert_eq!(parsed.events.len(), 1);
        let rules = Rules {
            config: EngineConfig::default(),
            width: 3,
        };
        let body = ingest.to_string();
        let (_, judged) = Ingest::start(body.as_bytes(), 10, &rules, None, 1.7e9).unwrap();
        assert_eq!(judged.events.len(), 1);

        let predict = example("PredictRequest");
        let parsed: PredictRequest = serde_json::from_value(predict.clone()).unwrap();
        assert!(matches!(
            parsed.instances[..],
            [Instance::Named(_), Instance::Row(_)]
        ));
        let names = ["feature_a", "feature_b", "feature_c"].map(String::from);
        let features = Features {
            names: &names,
            width: 3,
        };
        let rows = parse_predict(predict.to_string().as_bytes(), &features, 10).unwrap();
        assert_eq!(rows.len(), 6);
    }

    #[test]
    fn the_token_is_declared_only_when_the_host_requires_one() {
        let with = doc(true);
        let secured = |doc: &Value, path: &str, method: &str| {
            let operation = &doc["paths"][path][method];
            (
                operation["security"].is_array(),
                operation["responses"]["401"].is_object(),
            )
        };
        assert_eq!(secured(&with, "/ingest", "post"), (true, true));
        assert_eq!(
            secured(&with, "/users/{user_id}/median", "get"),
            (true, true)
        );
        assert_eq!(secured(&with, "/health", "get"), (false, false));
        assert_eq!(secured(&with, "/openapi.json", "get"), (false, false));
        assert_eq!(
            with["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
        let without = doc(false);
        assert_eq!(secured(&without, "/ingest", "post"), (false, false));
        // What the host answers around any handler, on every route but the probes.
        let responses =
            |path: &str, method: &str| without["paths"][path][method]["responses"].clone();
        assert!(responses("/predict", "post")["503"].is_object());
        assert!(responses("/predict", "post")["408"].is_object());
        assert!(responses("/models", "get")["408"].is_null());
        assert!(responses("/health", "get")["503"].is_null());
        assert!(without["components"]["securitySchemes"].is_null());
    }

    #[test]
    fn the_bounds_are_the_parsers_and_the_models() {
        let doc = doc(false);
        let schemas = &doc["components"]["schemas"];
        let instances = &schemas["PredictRequest"]["properties"]["instances"];
        assert_eq!(
            (&instances["minItems"], &instances["maxItems"]),
            (&1.into(), &500.into())
        );
        let [row, named] = schemas["Instance"]["oneOf"].as_array().unwrap().as_slice() else {
            panic!("{}", schemas["Instance"]);
        };
        assert_eq!((&row["minItems"], &row["maxItems"]), (&3.into(), &3.into()));
        assert_eq!(
            named["required"],
            serde_json::json!(["feature_a", "feature_b", "feature_c"])
        );
        assert_eq!(named["additionalProperties"], false);
        let infer = &doc["paths"]["/v2/models/{name}/versions/{version}/infer"]["post"];
        let enums: Vec<&Value> = infer["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| &p["schema"]["enum"])
            .collect();
        assert_eq!(
            enums,
            [
                &serde_json::json!(["seed-mlp"]),
                &serde_json::json!(["1", "v1", "2", "v2"])
            ]
        );
        // Models of different inputs: neither the width nor the names are stated.
        let mixed = HostFacts {
            input: None,
            ..facts(false)
        };
        let doc = document(Document::default(), &mixed);
        let row = &doc["components"]["schemas"]["Instance"]["oneOf"][0];
        assert!(row["minItems"].is_null(), "{row}");
    }

    /// The bound on a feature is where the parser's reading of a number as `f32` overflows.
    #[test]
    fn the_feature_bound_is_where_f32_overflows() {
        let doc = doc(false);
        let row = &doc["components"]["schemas"]["Instance"]["oneOf"][0];
        let bound = row["items"]["exclusiveMaximum"].as_f64().unwrap();
        assert_eq!(row["items"]["exclusiveMinimum"].as_f64(), Some(-bound));
        let parse = |x: f64| serde_json::from_str::<f32>(&x.to_string()).unwrap();
        assert!(parse(bound).is_infinite());
        assert_eq!(parse(bound.next_down()), f32::MAX);
    }

    #[test]
    fn the_host_facts_leave_no_null_behind() {
        fn nulls(value: &Value, at: &str, found: &mut Vec<String>) {
            match value {
                Value::Null => found.push(at.to_string()),
                Value::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        nulls(item, &format!("{at}/{i}"), found);
                    }
                }
                Value::Object(fields) => {
                    for (key, item) in fields {
                        nulls(item, &format!("{at}/{key}"), found);
                    }
                }
                _ => {}
            }
        }
        for token_required in [false, true] {
            let mut found = Vec::new();
            nulls(&doc(token_required), "", &mut found);
            assert!(found.is_empty(), "{found:?}");
        }
    }

    #[test]
    fn every_error_body_has_exactly_the_documented_fields() {
        let doc = doc(false);
        let schema = &doc["components"]["schemas"]["ErrorBody"];
        assert_eq!(schema["type"], "object", "{schema}");
        assert_eq!(schema["required"], serde_json::json!(["error"]));
        let mut partial = ApiError::internal("shard 1: ...")
            .with_request_id(Some("r-1"))
            .body;
        partial.partial = Some(PartialIngest {
            processed: 3,
            not_recorded: vec![4],
        });
        let plain = ApiError::bad_request("body: ...").body;
        for body in [partial, plain] {
            let body = serde_json::to_value(&body).unwrap();
            for (field, value) in body.as_object().unwrap() {
                let declared = &schema["properties"][field]["type"];
                let kind = match value {
                    Value::String(_) => "string",
                    Value::Number(_) => "integer",
                    Value::Array(_) => "array",
                    other => panic!("{field}: {other}"),
                };
                assert_eq!(declared, kind, "{field} in {body}");
            }
        }
    }
}
