//! The Open Inference Protocol (KServe v2) under `/v2`: the embedded models in the protocol's
//! bodies, scored by the scoring component as `/predict` scores them
//! (`edgescore_contract::inference`).

use edgescore_contract::errors::scoring_failed;
use edgescore_contract::inference::paths::{ModelPath, Route};
use edgescore_contract::inference::request::parse_inference;
use edgescore_contract::inference::response::{
    ModelMetadata, RepositoryEntry, SERVER, inference_answer,
};
use edgescore_contract::inference::{self, HEADER_LENGTH, ModelSignature};
use edgescore_contract::predict::check_predictions;
use spin_sdk::http::{FullBody, HeaderMap, HeaderValue, Request, StatusCode};

use crate::config::MAX_EVENTS;
use crate::respond::{Result, json};
use crate::{body, models};

/// The protocol's view of the embedded versions; the active one is the last.
fn signatures() -> Vec<ModelSignature> {
    models::versions()
        .iter()
        .map(|v| ModelSignature {
            name: v.manifest.name.clone(),
            version: v.manifest.version.to_string(),
            input_name: v.manifest.input_name.clone(),
            output_name: v.manifest.output_name.clone(),
            width: v.manifest.input_width as usize,
        })
        .collect()
}

/// The signature `path` names and its index among the versions.
fn resolve(path: &ModelPath) -> Result<(ModelSignature, usize)> {
    let mut served = signatures();
    let index = inference::resolve(path, &served, served.len() - 1)?;
    Ok((served.swap_remove(index), index))
}

pub async fn handle(route: Route, request: Request) -> Result {
    match route {
        Route::Server => Ok(json(200, &SERVER)),
        Route::Live => Ok(crate::respond::ok()),
        Route::Ready => Ok(crate::ready()),
        Route::ModelMetadata(path) => {
            let (model, _) = resolve(&path)?;
            let versions = signatures().into_iter().map(|m| m.version).collect();
            Ok(json(200, &ModelMetadata::new(&model, versions)))
        }
        Route::ModelReady(path) => {
            let (model, index) = resolve(&path)?;
            models::versions()[index].model()?;
            let ready =
                serde_json::json!({"name": model.name, "version": model.version, "ready": true});
            Ok(json(200, &ready))
        }
        Route::RepositoryIndex => {
            let entries: Vec<RepositoryEntry> =
                signatures().iter().map(RepositoryEntry::of).collect();
            Ok(json(200, &entries))
        }
        Route::Infer(path) => infer(&path, request).await,
    }
}

async fn infer(path: &ModelPath, request: Request) -> Result {
    let headers = request.headers();
    inference::check_content_type(headers.get("content-type").map(|v| v.as_bytes()))?;
    let json_len = inference::header_length(headers.get(HEADER_LENGTH).map(|v| v.as_bytes()))?;
    let (model, index) = resolve(path)?;
    let body = body::read(request).await?;
    let request = parse_inference(&body, json_len, &model, MAX_EVENTS)?;
    let scores = models::versions()[index]
        .model()?
        .score(&request.rows)
        .map_err(|e| scoring_failed(&e))?;
    check_predictions(&scores)?;
    let answer = inference_answer(
        &model,
        request.id.as_deref(),
        &scores,
        request.binary_output,
    );
    let mut headers = HeaderMap::new();
    match answer.json_len {
        Some(n) => {
            headers.insert(
                "content-type",
                HeaderValue::from_static("application/octet-stream"),
            );
            headers.insert(HEADER_LENGTH, HeaderValue::from(n));
        }
        None => {
            headers.insert("content-type", HeaderValue::from_static("application/json"));
        }
    }
    Ok((StatusCode::OK, headers, FullBody::new(answer.body.into())))
}
