//! The ingest batch as the benchmark's yardsticks parse it: what `edgescore serve` parses, without
//! its checks.

use serde::Deserialize;

#[derive(Deserialize)]
#[allow(dead_code)] // the bare server parses the events, like the real service, but uses none
pub struct Event {
    pub user_id: String,
    pub timestamp: f64,
    pub features: Vec<f64>,
}

#[derive(Deserialize)]
pub struct Batch {
    pub events: Vec<Event>,
}
