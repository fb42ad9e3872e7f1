//! The edgescore Spin HTTP app: the API of `shared/spec/http-api.md` as a WASIp3 HTTP component.
//!
//! Spin may run every request in a fresh instance (or reuse one for a while), so nothing durable
//! lives in the instance: windows, the watermark and the counters are in a `wasi:keyvalue` store
//! ([`state`]), written with compare-and-swap and `increment`; the loaded models are cached in the
//! instance ([`models`]). Parsing, rules, bodies and error sentences are `edgescore_core`'s, the
//! same code the native service runs.

mod config;
mod ingest;
mod models;
mod reads;
mod respond;
mod state;

use spin_sdk::http::{IntoResponse, Method, Request};
use spin_sdk::http_service;

use respond::{Answer, error};

#[http_service]
async fn handle(request: Request) -> impl IntoResponse {
    route(request).await
}

async fn route(request: Request) -> Answer {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let query = request.uri().query().unwrap_or("").to_string();
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let known = match segments.as_slice() {
        ["ingest"] => Some((Method::POST, Route::Ingest)),
        ["users", id, "median"] => Some((Method::GET, Route::Median(decode(id)))),
        ["stats"] => Some((Method::GET, Route::Stats)),
        ["predict"] => Some((Method::POST, Route::Predict)),
        ["models"] => Some((Method::GET, Route::Models)),
        ["health"] => Some((Method::GET, Route::Health)),
        ["ready"] => Some((Method::GET, Route::Ready)),
        _ => None,
    };
    let Some((allowed, route)) = known else {
        return error(404, edgescore_core::api::no_route(method.as_str(), &path));
    };
    if method != allowed {
        return error(
            405,
            edgescore_core::api::method_not_allowed(method.as_str(), &path),
        );
    }
    match route {
        Route::Ingest => ingest::ingest(request).await,
        Route::Median(user_id) => reads::median(&user_id),
        Route::Stats => reads::stats(),
        Route::Predict => models::predict(request, &query).await,
        Route::Models => models::list(),
        Route::Health => respond::ok(),
        Route::Ready => models::ready(),
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
}

/// A path segment with its `%XX` escapes decoded (user ids may hold any character).
fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}
