//! The edgescore Spin HTTP app: the API of `docs/http-api.md` as a WASIp3 HTTP component.
//!
//! Spin may run every request in a fresh instance (or reuse one for a while), so nothing durable
//! lives in the instance: windows, the watermark and the counters are in a `wasi:keyvalue` store
//! ([`state`]), written with compare-and-swap and `increment`; the loaded models are cached in the
//! instance ([`models`]). Parsing, the ingest pipeline, rules, bodies and error sentences are
//! `edgescore-contract`'s, the same code the native service runs; this crate supplies what is
//! Spin's own: routing, reading the body, and recording accepted events in the store.

mod body;
mod config;
mod inference;
mod ingest;
mod models;
mod predict;
mod reads;
mod respond;
mod state;

use edgescore_contract::access::{check_json_body, is_public};
use edgescore_contract::errors;
use edgescore_contract::inference::paths::Route as InferenceRoute;
use edgescore_contract::openapi::{HostFacts, ModelInput, ServedModels};
use edgescore_contract::responses::StatusBody;
use spin_sdk::http::{HeaderValue, IntoResponse, Method, Request};
use spin_sdk::http_service;

use respond::{Answer, json};

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    // The request's id (`x-request-id`, or a new UUID when it brings none): echoed, and named
    // in an error body. The app makes it itself, since not every host does (Spin does not).
    let request_id = errors::request_id(
        request
            .headers()
            .get(errors::REQUEST_ID_HEADER)
            .map(|v| v.as_bytes()),
    )
    .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let mut answer = route(request)
        .await
        .unwrap_or_else(|e| respond::error(e.with_request_id(Some(&request_id))));
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        answer.1.insert(errors::REQUEST_ID_HEADER, value);
    }
    answer
}

/// The route table: each route's method and handler, behind what a request must bring (the
/// token, a JSON body), as the native service checks them.
async fn route(request: Request) -> respond::Result {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (allowed, route) = match segments.as_slice() {
        ["ingest"] => (Method::POST, Route::Ingest),
        ["users", id, "median"] => (Method::GET, Route::Median(decode(id))),
        ["stats"] => (Method::GET, Route::Stats),
        ["predict"] => (Method::POST, Route::Predict),
        ["models"] => (Method::GET, Route::Models),
        ["health"] => (Method::GET, Route::Health),
        ["ready"] => (Method::GET, Route::Ready),
        ["openapi.json"] => (Method::GET, Route::OpenApi),
        ["v2", rest @ ..] => {
            let decoded: Vec<String> = rest.iter().map(|s| decode(s)).collect();
            let decoded: Vec<&str> = decoded.iter().map(String::as_str).collect();
            match InferenceRoute::of(&decoded) {
                Some((route, "POST")) => (Method::POST, Route::Inference(route)),
                Some((route, _)) => (Method::GET, Route::Inference(route)),
                None => return Err(errors::no_route(method.as_str(), &path)),
            }
        }
        _ => return Err(errors::no_route(method.as_str(), &path)),
    };
    if method != allowed {
        let allow = if allowed == Method::GET {
            "GET"
        } else {
            "POST"
        };
        return Err(errors::method_not_allowed_with(
            method.as_str(),
            &path,
            allow,
        ));
    }
    if !is_public(&path)
        && let Some(token) = config::api_token().await?
    {
        let authorization = request.headers().get("authorization");
        token.check(authorization.map(|v| v.as_bytes()))?;
    }
    // An inference body may carry binary tensors after its JSON: it checks its own content type.
    if allowed == Method::POST && !matches!(route, Route::Inference(_)) {
        check_json_body(request.headers().get("content-type").map(|v| v.as_bytes()))?;
    }
    match route {
        Route::Ingest => ingest::ingest(request).await,
        Route::Median(user_id) => reads::median(&user_id),
        Route::Stats => reads::stats(),
        Route::Predict => predict::predict(request, &query).await,
        Route::Models => Ok(json(200, &models::body())),
        Route::Health => Ok(respond::ok()),
        Route::Ready => Ok(ready()),
        Route::OpenApi => openapi().await,
        Route::Inference(route) => crate::inference::handle(route, request).await,
    }
}

enum Route {
    Ingest,
    Median(String),
    Stats,
    Predict,
    Models,
    Health,
    Ready,
    OpenApi,
    Inference(InferenceRoute),
}

/// The routes only the app serves beside the contract's shared ones.
#[derive(utoipa::OpenApi)]
#[openapi(paths(reads::stats))]
struct Own;

/// `GET /openapi.json`: this app's OpenAPI document, with its limits, its token and its models'
/// input.
async fn openapi() -> respond::Result {
    let names = models::versions().iter().map(|v| &v.manifest.feature_names);
    let facts = HostFacts {
        max_events: config::MAX_EVENTS,
        input: ModelInput::common(names),
        token_required: config::api_token().await?.is_some(),
        served: Some(ServedModels {
            name: models::active().manifest.name.clone(),
            versions: models::versions()
                .iter()
                .map(models::Version::label)
                .collect(),
        }),
        body_timeout: false,
    };
    let own = <Own as utoipa::OpenApi>::openapi();
    Ok(json(
        200,
        &edgescore_contract::openapi::document(own, &facts),
    ))
}

/// `GET /ready`: the active model loads and scores.
pub(crate) fn ready() -> Answer {
    match models::active().model() {
        Ok(_) => respond::ok(),
        Err(e) => json(503, &StatusBody::unavailable(e.message())),
    }
}

/// A path segment with its `%XX` escapes decoded (user ids may hold any character).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
