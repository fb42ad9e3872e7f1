//! The API as an OpenAPI 3 document (utoipa), built from the bodies' own types. The routes both
//! hosts serve are declared here, once ([`routes`]); each host adds its own routes from its
//! handlers and serves the whole with [`document`] at `GET /openapi.json`.

use std::collections::HashMap;

use serde::Deserialize;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, PathItem};
use utoipa::{OpenApi, ToSchema};

use crate::access::is_public;

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
            (status = 413, description = "Over 10,000 instances", body = ErrorBody),
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
        routes::openapi
    ),
    components(schemas(crate::errors::ErrorBody))
)]
struct Shared;

/// The whole document of a host: the shared routes and `own` (the host's own routes, from its
/// handlers), with the bearer token required on every route but the public ones.
pub fn document(own: Document) -> Document {
    let mut doc = Shared::openapi().merge_from(own);
    if let Some(components) = doc.components.as_mut() {
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
    }
    for (path, item) in doc.paths.paths.iter_mut() {
        if !is_public(path) {
            for operation in operations(item) {
                operation.security = Some(vec![SecurityRequirement::new(
                    "bearer",
                    Vec::<String>::new(),
                )]);
            }
        }
    }
    doc
}

fn operations(item: &mut PathItem) -> impl Iterator<Item = &mut utoipa::openapi::path::Operation> {
    [
        &mut item.get,
        &mut item.post,
        &mut item.put,
        &mut item.delete,
        &mut item.patch,
    ]
    .into_iter()
    .filter_map(Option::as_mut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::Ingest;
    use crate::predict::{Features, parse_predict};
    use edgescore_types::{EngineConfig, Rules};

    fn example(schema: &str) -> serde_json::Value {
        let doc = serde_json::to_value(document(Document::default())).unwrap();
        doc["components"]["schemas"][schema]["example"].clone()
    }

    #[test]
    fn the_documented_examples_are_what_the_parsers_accept() {
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
    fn only_the_probes_and_the_document_are_public() {
        let doc = serde_json::to_value(document(Document::default())).unwrap();
        let secured = |path: &str, method: &str| doc["paths"][path][method]["security"].is_array();
        assert!(secured("/ingest", "post"));
        assert!(secured("/users/{user_id}/median", "get"));
        assert!(!secured("/health", "get"));
        assert!(!secured("/openapi.json", "get"));
        assert_eq!(
            doc["components"]["securitySchemes"]["bearer"]["scheme"],
            "bearer"
        );
    }
}
