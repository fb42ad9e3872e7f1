//! `POST /ingest`: the contract's pipeline, with the shards as the recorder — parse and judge
//! the batch in order against the service watermark, queue the accepted events on their shards
//! (all or none: 503), answer once every part is recorded.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use edgescore_contract::clock::unix_now;
use edgescore_contract::ingest::{Ingest, IngestResponse};

use crate::Service;
use crate::error::Result;
use crate::telemetry::Counters;

pub async fn ingest(
    State(service): State<Arc<Service>>,
    body: axum::body::Body,
) -> Result<Json<IngestResponse>> {
    // Requests and latency are counted per route by the request middleware (`/stats` reads the
    // seed's ingest figures from there).
    let body = super::read_body(&service, body).await?;
    let now = unix_now();
    // Held until every part is queued: a reload's swap lands before or after this request on
    // every shard, never between its parts.
    let catalog = service.catalog.read().await;
    // The shards judge again (concurrent requests may have moved the watermark since) and
    // theirs is the final word.
    let (ingest, judged) = Ingest::start(
        &body,
        service.config.max_events,
        &catalog.rules,
        service.watermark.get(),
        now,
    )?;
    let pending = service
        .shards
        .queue_ingest(judged.events, now, &service.counters)?;
    drop(catalog);
    for r in ingest.rejections() {
        service.counters.reject_front(r.reason);
    }
    let ingest = pending.collect(ingest, service.watermark.clone()).await?;
    let answer = ingest.finish().inspect_err(|_| {
        Counters::count(&service.counters.failed, 1);
    })?;
    Ok(Json(answer))
}
