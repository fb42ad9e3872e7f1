//! The Open Inference Protocol (KServe v2) under `/v2`, for tritonclient, kserve and the other
//! clients of KServe, Triton and MLServer: the same models and scores as `/predict`, in the
//! protocol's bodies (`edgescore_contract::inference`).

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use edgescore_contract::inference::paths::ModelPath;
use edgescore_contract::inference::request::parse_inference;
use edgescore_contract::inference::response::{
    InferenceAnswer, ModelMetadata, RepositoryEntry, SERVER, ServerMetadata, inference_answer,
};
use edgescore_contract::inference::{self, HEADER_LENGTH, ModelSignature};
use serde_json::{Value, json};

use crate::Service;
use crate::catalog::Catalog;
use crate::error::Result;

/// The protocol's view of the versions served, and the active one's index.
fn signatures(catalog: &Catalog) -> (Vec<ModelSignature>, usize) {
    let served = catalog
        .predictors
        .iter()
        .map(|p| ModelSignature {
            name: p.model.name.clone(),
            version: p.model.version_label(),
            input_name: p.info.input_name.clone(),
            output_name: p.info.output_name.clone(),
            width: p.info.input_width as usize,
        })
        .collect();
    (served, catalog.models.active)
}

fn model_path(name: String, version: Option<String>) -> ModelPath {
    ModelPath { name, version }
}

pub async fn server() -> Json<ServerMetadata> {
    Json(SERVER)
}

pub async fn model(
    service: State<Arc<Service>>,
    Path(name): Path<String>,
) -> Result<Json<ModelMetadata>> {
    metadata(service, model_path(name, None)).await
}

pub async fn model_version(
    service: State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelMetadata>> {
    metadata(service, model_path(name, Some(version))).await
}

async fn metadata(
    State(service): State<Arc<Service>>,
    path: ModelPath,
) -> Result<Json<ModelMetadata>> {
    let catalog = service.catalog().await;
    let (served, active) = signatures(&catalog);
    let model = &served[inference::resolve(&path, &served, active)?];
    let versions = served.iter().map(|m| m.version.clone()).collect();
    Ok(Json(ModelMetadata::new(model, versions)))
}

pub async fn model_ready(
    service: State<Arc<Service>>,
    Path(name): Path<String>,
) -> Result<Json<Value>> {
    ready(service, model_path(name, None)).await
}

pub async fn model_version_ready(
    service: State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<Value>> {
    ready(service, model_path(name, Some(version))).await
}

/// A served version is loaded, so ready; another is a 404.
async fn ready(State(service): State<Arc<Service>>, path: ModelPath) -> Result<Json<Value>> {
    let catalog = service.catalog().await;
    let (served, active) = signatures(&catalog);
    let model = &served[inference::resolve(&path, &served, active)?];
    Ok(Json(
        json!({"name": model.name, "version": model.version, "ready": true}),
    ))
}

pub async fn repository_index(State(service): State<Arc<Service>>) -> Json<Vec<RepositoryEntry>> {
    let catalog = service.catalog().await;
    let (served, _) = signatures(&catalog);
    Json(served.iter().map(RepositoryEntry::of).collect())
}

pub async fn infer(
    service: State<Arc<Service>>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    run_inference(service, model_path(name, None), headers, body).await
}

pub async fn infer_version(
    service: State<Arc<Service>>,
    Path((name, version)): Path<(String, String)>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    run_inference(service, model_path(name, Some(version)), headers, body).await
}

async fn run_inference(
    State(service): State<Arc<Service>>,
    path: ModelPath,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Result<Response> {
    inference::check_content_type(headers.get(header::CONTENT_TYPE).map(|v| v.as_bytes()))?;
    let json_len = inference::header_length(headers.get(HEADER_LENGTH).map(|v| v.as_bytes()))?;
    let catalog = service.catalog().await;
    let (served, active) = signatures(&catalog);
    let index = inference::resolve(&path, &served, active)?;
    let model = &served[index];
    let predictor = catalog.predictors[index].clone();
    let body = super::read_body(&service, body).await?;
    let request = parse_inference(&body, json_len, model, service.config.max_events)?;
    if index == active {
        service.counters.observe_features(&request.rows);
    }
    let scores = super::predict::score(&service, predictor, request.rows).await?;
    let answer = inference_answer(model, request.id.as_deref(), &scores, request.binary_output);
    Ok(respond(answer))
}

fn respond(answer: InferenceAnswer) -> Response {
    let mut response = answer.body.into_response();
    let headers = response.headers_mut();
    match answer.json_len {
        Some(n) => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
        }
    }
    response
}
