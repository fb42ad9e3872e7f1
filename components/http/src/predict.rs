//! `POST /predict`: scores only, no state touched; `?version=` picks a version.

use edgescore_contract::errors::scoring_failed;
use edgescore_contract::predict::{Features, PredictResponse, check_predictions, parse_predict};
use spin_sdk::http::Request;

use crate::config::MAX_EVENTS;
use crate::respond::{Result, json};
use crate::{body, models};

pub async fn predict(request: Request, query: &str) -> Result {
    let started = std::time::Instant::now();
    let asked = query
        .split('&')
        .find_map(|pair| pair.strip_prefix("version="));
    let version = models::choose(asked)?;
    let body = body::read(request).await?;
    let features = Features {
        names: &version.manifest.feature_names,
        width: version.manifest.input_width as usize,
    };
    let rows = parse_predict(&body, &features, MAX_EVENTS)?;
    let scores = version
        .model()?
        .score(&rows)
        .map_err(|e| scoring_failed(&e))?;
    check_predictions(&scores)?;
    Ok(json(
        200,
        &PredictResponse {
            predictions: scores.into_iter().map(f64::from).collect(),
            model_version: version.label(),
            latency_ms: started.elapsed().as_secs_f64() * 1e3,
        },
    ))
}
