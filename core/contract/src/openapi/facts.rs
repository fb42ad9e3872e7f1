//! What a host enforces beyond the types, written into its document so that a client generated
//! from it (or a tester such as schemathesis) sends only what the host accepts: the batch limits,
//! the models' input when every served model takes the same, and the bearer token when one is
//! configured (and only then).

use serde_json::{Value, json};

use crate::access::is_public;
use edgescore_types::MAX_USER_ID_BYTES;

/// Where a JSON number stops being a finite `f32`: numbers are read as the nearest `f32`, and
/// from halfway between `f32::MAX` and 2^128 on that is infinity (so rejected). Just below it a
/// number still rounds to `f32::MAX` and is taken.
const F32_OVERFLOW: f64 = f32::MAX as f64 + (1u128 << 103) as f64;

/// What a host enforces that its document states.
#[derive(Debug, Clone)]
pub struct HostFacts {
    /// Events per ingest and instances per prediction or batch.
    pub max_events: usize,
    /// The input every served model takes (none: the models differ, or none loads).
    pub input: Option<ModelInput>,
    /// Every route but the public ones needs `Authorization: Bearer <token>`.
    pub token_required: bool,
    /// The model served and its version labels, which the inference protocol's paths name.
    pub served: Option<ServedModels>,
    /// A body not all sent within the host's body timeout is a 408.
    pub body_timeout: bool,
}

/// The one model a host serves, by name, and its versions.
#[derive(Debug, Clone, PartialEq)]
pub struct ServedModels {
    pub name: String,
    pub versions: Vec<String>,
}

/// A model's input: its features' names, in order (as many as its width).
#[derive(Debug, Clone, PartialEq)]
pub struct ModelInput {
    pub feature_names: Vec<String>,
}

impl ModelInput {
    /// The input every model takes (their features' names), if they all take the same.
    pub fn common<'a>(mut names: impl Iterator<Item = &'a Vec<String>>) -> Option<ModelInput> {
        let first = names.next()?;
        names.all(|n| n == first).then(|| ModelInput {
            feature_names: first.clone(),
        })
    }
}

impl HostFacts {
    pub(super) fn apply(&self, doc: &mut Value) {
        let schemas = &mut doc["components"]["schemas"];
        let events = &mut schemas["IngestRequest"]["properties"]["events"];
        events["maxItems"] = json!(self.max_events);
        // Each item is judged on its own: one that is not an event is a rejection by position in
        // a 200 answer (`invalid_user_id`, `wrong_width`, ...), not a request refused.
        events["items"] = json!({"anyOf": [
            {"$ref": "#/components/schemas/EventIn"},
            {"description": "Anything else: rejected on its own, by its position."},
        ]});
        events["description"] = json!(format!(
            "At most {} events (none is a valid, empty ingest).",
            self.max_events
        ));
        let instances = &mut schemas["PredictRequest"]["properties"]["instances"];
        instances["minItems"] = json!(1);
        instances["maxItems"] = json!(self.max_events);
        instances["description"] = json!(format!("1 to {} instances.", self.max_events));
        schemas["Instance"]["oneOf"] = json!([self.row(), self.named()]);
        self.user_id_parameters(doc);
        if let Some(served) = &self.served {
            served.model_parameters(doc);
        }
        self.host_answers(doc);
        if self.token_required {
            require_token(doc);
        }
    }

    /// A row of features: finite `f32`s, exactly the width when it is known.
    fn row(&self) -> Value {
        let mut row = json!({
            "type": "array",
            "items": feature(),
            "description": "The model's input, in its feature order.",
        });
        if let Some(input) = &self.input {
            row["minItems"] = json!(input.feature_names.len());
            row["maxItems"] = json!(input.feature_names.len());
        }
        row
    }

    /// An instance by feature name: every name, and only those, when they are known.
    fn named(&self) -> Value {
        match &self.input {
            Some(input) => json!({
                "type": "object",
                "properties": input
                    .feature_names
                    .iter()
                    .map(|name| (name.clone(), feature()))
                    .collect::<serde_json::Map<_, _>>(),
                "required": input.feature_names,
                "additionalProperties": false,
                "description": "The model's input, keyed by feature name.",
            }),
            None => json!({
                "type": "object",
                "additionalProperties": feature(),
                "description": "The model's input, keyed by feature name.",
            }),
        }
    }

    /// The user id in a path: 1 to 256 bytes of UTF-8 (longer is a 400). JSON Schema counts
    /// characters, not bytes: the bound is exact for ASCII ids, and the description says bytes.
    fn user_id_parameters(&self, doc: &mut Value) {
        for schema in parameter_schemas(doc, "user_id") {
            schema["minLength"] = json!(1);
            schema["maxLength"] = json!(MAX_USER_ID_BYTES);
        }
    }
}

impl ServedModels {
    /// The model's name and its versions (`2` or `v2`) as the only values of the inference
    /// protocol's path parameters: any other is a 404.
    fn model_parameters(&self, doc: &mut Value) {
        let versions: Vec<String> = self
            .versions
            .iter()
            .flat_map(|v| [v.clone(), format!("v{v}")])
            .collect();
        for schema in parameter_schemas(doc, "name") {
            schema["enum"] = json!([self.name]);
        }
        for schema in parameter_schemas(doc, "version") {
            schema["enum"] = json!(versions);
        }
    }
}

/// The schema of every parameter named `name`, in every operation.
fn parameter_schemas<'a>(doc: &'a mut Value, name: &str) -> Vec<&'a mut Value> {
    let mut found = Vec::new();
    let Some(paths) = doc["paths"].as_object_mut() else {
        return found;
    };
    for item in paths.values_mut() {
        for operation in operations(item) {
            if let Some(parameters) = operation
                .get_mut("parameters")
                .and_then(Value::as_array_mut)
            {
                found.extend(
                    parameters
                        .iter_mut()
                        .filter(|p| p["name"] == name)
                        .map(|p| &mut p["schema"]),
                );
            }
        }
    }
    found
}

fn feature() -> Value {
    json!({
        "type": "number",
        "format": "float",
        "exclusiveMinimum": -F32_OVERFLOW,
        "exclusiveMaximum": F32_OVERFLOW,
    })
}

impl HostFacts {
    /// What the host itself may answer on any route but the probes, before or around its
    /// handler: 503 when it has no place for the request (or the request ran out of time), and
    /// 408 for a body sent too slowly.
    fn host_answers(&self, doc: &mut Value) {
        let error =
            json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}});
        let Some(paths) = doc["paths"].as_object_mut() else {
            return;
        };
        for (path, item) in paths.iter_mut() {
            if is_public(path) {
                continue;
            }
            let posts = item.get("post").is_some();
            for operation in operations(item) {
                let responses = &mut operation["responses"];
                if responses.get("503").is_none() {
                    responses["503"] = json!({
                        "description": "The host has no place for the request now, or it ran out of time: nothing was done; retry after `Retry-After` seconds",
                        "headers": {"retry-after": {"schema": {"type": "integer"}}},
                        "content": error,
                    });
                }
                if self.body_timeout && posts && responses.get("408").is_none() {
                    responses["408"] = json!({
                        "description": "The body was not all sent within the body timeout: nothing was done",
                        "content": error,
                    });
                }
            }
        }
    }
}

/// The bearer scheme, required by every route but the public ones, which can answer 401.
fn require_token(doc: &mut Value) {
    doc["components"]["securitySchemes"] = json!({"bearer": {"type": "http", "scheme": "bearer"}});
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        if is_public(path) {
            continue;
        }
        for operation in operations(item) {
            operation["security"] = json!([{"bearer": []}]);
            operation["responses"]["401"] = json!({
                "description": "The bearer token is missing or wrong",
                "headers": {"www-authenticate": {"schema": {"type": "string"}}},
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}},
            });
        }
    }
}

/// The operations of a path item.
fn operations(item: &mut Value) -> impl Iterator<Item = &mut Value> {
    item.as_object_mut()
        .into_iter()
        .flat_map(|methods| methods.iter_mut())
        .filter(|(method, _)| ["get", "post", "put", "delete", "patch"].contains(&method.as_str()))
        .map(|(_, operation)| operation)
}
