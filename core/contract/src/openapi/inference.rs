//! The Open Inference Protocol's routes (`crate::inference`), as the OpenAPI document gives them.
//! The bodies are described by types of their own here: the protocol's are written for
//! serializing (fixed arrays, borrowed strings), these for the document.

#![allow(dead_code)] // Only their schemas are used.

use utoipa::ToSchema;

use crate::errors::ErrorBody;
use crate::responses::StatusBody;

/// `GET /v2`: who answers, and the protocol's extensions it speaks.
#[derive(ToSchema)]
#[schema(as = ServerMetadata)]
struct ServerMetadataDoc {
    name: String,
    version: String,
    extensions: Vec<String>,
}

/// A tensor: its name, datatype and shape (`-1`: any number of rows).
#[derive(ToSchema)]
#[schema(as = TensorMetadata)]
struct TensorMetadataDoc {
    name: String,
    datatype: String,
    shape: Vec<i64>,
}

/// A model: its versions served, its one input `[N, width]` and its one output `[N, 1]`, FP32.
#[derive(ToSchema)]
#[schema(as = ModelMetadata)]
struct ModelMetadataDoc {
    name: String,
    versions: Vec<String>,
    platform: String,
    inputs: Vec<TensorMetadataDoc>,
    outputs: Vec<TensorMetadataDoc>,
}

/// A served version, ready.
#[derive(ToSchema)]
#[schema(as = ModelReady)]
struct ModelReadyDoc {
    name: String,
    version: String,
    ready: bool,
}

/// A version in the repository; every version served is `READY`.
#[derive(ToSchema)]
#[schema(as = RepositoryEntry)]
struct RepositoryEntryDoc {
    name: String,
    version: String,
    state: String,
}

/// The request's parameters.
#[derive(ToSchema)]
#[schema(as = InferenceParameters)]
struct InferenceParametersDoc {
    /// Every output as binary data after the JSON (unless an output says otherwise).
    #[schema(nullable = false)]
    binary_data_output: Option<bool>,
}

/// A tensor's parameters.
#[derive(ToSchema)]
#[schema(as = TensorParameters)]
struct TensorParametersDoc {
    /// An input: its data is this many bytes after the JSON (little-endian), not `data`.
    #[schema(nullable = false)]
    binary_data_size: Option<u64>,
    /// An output asked for: as binary data after the JSON.
    #[schema(nullable = false)]
    binary_data: Option<bool>,
}

/// The model's one input.
#[derive(ToSchema)]
#[schema(as = InputTensor)]
struct InputTensorDoc {
    /// The model's input name (`GET /v2/models/{name}`).
    name: String,
    /// `[N, width]`, 1 <= N <= the instance limit.
    #[schema(min_items = 2, max_items = 2)]
    shape: Vec<i64>,
    /// `FP32`, or `FP64` (converted).
    datatype: String,
    /// N × width numbers, row-major, flat or as nested rows; absent when the data is binary.
    #[schema(nullable = false)]
    data: Option<Vec<f64>>,
    #[schema(nullable = false)]
    parameters: Option<TensorParametersDoc>,
}

/// An output asked for.
#[derive(ToSchema)]
#[schema(as = RequestedOutput)]
struct RequestedOutputDoc {
    /// The model's output name.
    name: String,
    #[schema(nullable = false)]
    parameters: Option<TensorParametersDoc>,
}

/// An inference request. With the binary tensor data extension, the body is this JSON followed
/// by the tensors' bytes, and the `Inference-Header-Content-Length` header says where the JSON
/// ends.
#[derive(ToSchema)]
#[schema(as = InferenceRequest)]
struct InferenceRequestDoc {
    /// Echoed in the response.
    #[schema(nullable = false)]
    id: Option<String>,
    #[schema(nullable = false)]
    parameters: Option<InferenceParametersDoc>,
    #[schema(min_items = 1, max_items = 1)]
    inputs: Vec<InputTensorDoc>,
    #[schema(nullable = false)]
    outputs: Option<Vec<RequestedOutputDoc>>,
}

/// The output: `[N, 1]` FP32, one score per row, as `data` or as binary data after the JSON.
#[derive(ToSchema)]
#[schema(as = OutputTensor)]
struct OutputTensorDoc {
    name: String,
    datatype: String,
    shape: Vec<i64>,
    #[schema(nullable = false)]
    data: Option<Vec<f32>>,
    #[schema(nullable = false)]
    parameters: Option<TensorParametersDoc>,
}

/// An inference response.
#[derive(ToSchema)]
#[schema(as = InferenceResponse)]
struct InferenceResponseDoc {
    model_name: String,
    model_version: String,
    #[schema(nullable = false)]
    id: Option<String>,
    outputs: Vec<OutputTensorDoc>,
}

/// The server's metadata (Open Inference Protocol)
#[utoipa::path(get, path = "/v2", tag = "inference protocol",
    responses((status = 200, description = "The server", body = ServerMetadataDoc)))]
pub fn v2_server() {}

/// Liveness (Open Inference Protocol)
#[utoipa::path(get, path = "/v2/health/live", tag = "inference protocol",
    responses((status = 200, description = "The process answers", body = StatusBody)))]
pub fn v2_live() {}

/// Readiness (Open Inference Protocol): the active model loads and scores
#[utoipa::path(get, path = "/v2/health/ready", tag = "inference protocol",
    responses(
        (status = 200, description = "Ready", body = StatusBody),
        (status = 503, description = "Not ready, and why", body = StatusBody),
    ))]
pub fn v2_ready() {}

/// A model's metadata, its active version's signature
#[utoipa::path(get, path = "/v2/models/{name}", tag = "inference protocol",
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "The model", body = ModelMetadataDoc),
        (status = 404, description = "No such model", body = ErrorBody),
    ))]
pub fn v2_model() {}

/// A model version's metadata
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}", tag = "inference protocol",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("version" = String, Path, description = "A served version (`2` or `v2`)"),
    ),
    responses(
        (status = 200, description = "The model version", body = ModelMetadataDoc),
        (status = 404, description = "No such model or version", body = ErrorBody),
    ))]
pub fn v2_model_version() {}

/// Whether a model is ready
#[utoipa::path(get, path = "/v2/models/{name}/ready", tag = "inference protocol",
    params(("name" = String, Path, description = "The model's name")),
    responses(
        (status = 200, description = "Ready", body = ModelReadyDoc),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 503, description = "The model does not load; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub fn v2_model_ready() {}

/// Whether a model version is ready
#[utoipa::path(get, path = "/v2/models/{name}/versions/{version}/ready", tag = "inference protocol",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("version" = String, Path, description = "A served version (`2` or `v2`)"),
    ),
    responses(
        (status = 200, description = "Ready", body = ModelReadyDoc),
        (status = 404, description = "No such model or version", body = ErrorBody),
        (status = 503, description = "The model does not load; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub fn v2_model_version_ready() {}

/// Score a tensor with a model's active version
#[utoipa::path(post, path = "/v2/models/{name}/infer", tag = "inference protocol",
    params(("name" = String, Path, description = "The model's name")),
    request_body(content(
        (InferenceRequestDoc = "application/json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "One score per row", content(
            (InferenceResponseDoc = "application/json"),
            (Vec<u8> = "application/octet-stream"),
        )),
        (status = 400, description = "A tensor the model does not take (name, shape, datatype, data), named with its field", body = ErrorBody),
        (status = 404, description = "No such model", body = ErrorBody),
        (status = 413, description = "The body is over its limit", body = ErrorBody),
        (status = 415, description = "The content type is neither JSON nor application/octet-stream", body = ErrorBody),
        (status = 503, description = "The model does not load; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub fn v2_infer() {}

/// Score a tensor with a model version
#[utoipa::path(post, path = "/v2/models/{name}/versions/{version}/infer", tag = "inference protocol",
    params(
        ("name" = String, Path, description = "The model's name"),
        ("version" = String, Path, description = "A served version (`2` or `v2`)"),
    ),
    request_body(content(
        (InferenceRequestDoc = "application/json"),
        (Vec<u8> = "application/octet-stream"),
    )),
    responses(
        (status = 200, description = "One score per row", content(
            (InferenceResponseDoc = "application/json"),
            (Vec<u8> = "application/octet-stream"),
        )),
        (status = 400, description = "A tensor the model does not take (name, shape, datatype, data), named with its field", body = ErrorBody),
        (status = 404, description = "No such model or version", body = ErrorBody),
        (status = 413, description = "The body is over its limit", body = ErrorBody),
        (status = 415, description = "The content type is neither JSON nor application/octet-stream", body = ErrorBody),
        (status = 503, description = "The model does not load; retry after `Retry-After` seconds", body = ErrorBody),
    ))]
pub fn v2_infer_version() {}

/// The versions served
#[utoipa::path(post, path = "/v2/repository/index", tag = "inference protocol",
    responses((status = 200, description = "Every version served, ready", body = Vec<RepositoryEntryDoc>)))]
pub fn v2_repository_index() {}
