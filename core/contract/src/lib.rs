//! The HTTP contract of `docs/http-api.md`, shared by every host that serves it (the native
//! service and the Spin app), so that both answer byte for byte alike:
//!
//! - [`ingest`]: the streaming body parser and the [`ingest::Ingest`] pipeline — parse, judge
//!   against the watermark, the accepted events for the host to record, the answer;
//! - [`predict`]: `/predict` and `/batch` bodies;
//! - [`inference`]: the Open Inference Protocol (KServe v2) under `/v2`;
//! - [`errors`]: [`ApiError`] (status, JSON body, `Retry-After`) and the shared sentences;
//! - [`responses`], [`models`]: the other bodies;
//! - [`latency`]: latency percentiles from per-bucket counters (the Spin app's `/stats`);
//! - [`stored_window`]: one user's window as a key-value value (the Spin app's state);
//! - [`store_layout`]: the Spin app's keys (long ids hashed within 256 bytes) and counters;
//! - [`openapi`]: the OpenAPI document, with the routes both hosts serve declared once;
//! - [`access`]: JSON bodies only (415), and the API token (401);
//! - [`clock`]: the wall clock events are judged against.
//!
//! ```
//! use edgescore_contract::ingest::Ingest;
//! use edgescore_types::{EngineConfig, Rules};
//!
//! let rules = Rules { config: EngineConfig::default(), width: 3 };
//! let body = br#"{"events":[{"user_id":"user-7","timestamp":1700000000,"features":[0.1,0.2,0.3]}]}"#;
//! let (mut ingest, judged) = Ingest::start(body, 10_000, &rules, None, 1.7e9).unwrap();
//! // ... the host records judged.events (here: all of them) ...
//! ingest.recorded(judged.events.len() as u32, []);
//! let answer = ingest.finish().unwrap();
//! assert_eq!(serde_json::to_string(&answer).unwrap(), r#"{"processed":1,"rejected":[]}"#);
//! ```

pub mod access;
pub mod clock;
pub mod errors;
pub mod inference;
pub mod ingest;
pub mod latency;
pub mod models;
pub mod openapi;
pub mod predict;
pub mod responses;
pub mod store_layout;
pub mod stored_window;

pub use errors::{ApiError, ErrorBody};
