//! The service's shards as one: which shard owns a user, and an ingest request's accepted events
//! queued on every shard involved — all of them or none (503) — then collected once every part
//! is recorded. [`start`]: the shards at start-up, new or restored from the data directory.

pub mod start;

use std::hash::{BuildHasher, BuildHasherDefault, DefaultHasher};
use std::sync::Arc;

use edgescore_contract::ApiError;
use edgescore_contract::ingest::{Accepted, Ingest};
use tokio::sync::oneshot;

use crate::shard::{Command, Shard, ShardError, ShardReport};
use crate::telemetry::Counters;
use crate::watermark::Watermark;

pub struct Shards {
    shards: Vec<Shard>,
}

/// A request's parts, queued on their shards and not yet answered.
pub struct Pending {
    parts: Vec<Part>,
}

struct Part {
    shard: usize,
    positions: Vec<u32>,
    answer: oneshot::Receiver<Result<ShardReport, ShardError>>,
}

impl Shards {
    pub fn new(shards: Vec<Shard>) -> Shards {
        Shards { shards }
    }

    pub fn all(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard owning a user's window (a fixed hash: the same user always lands on the same
    /// shard, in this process and the next).
    pub fn shard_of(&self, user_id: &str) -> usize {
        let hash = BuildHasherDefault::<DefaultHasher>::default().hash_one(user_id);
        (hash % self.shards.len() as u64) as usize
    }

    pub fn get(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    /// Splits `events` by shard and queues every part, or nothing at all: a place in every queue
    /// involved is reserved before anything is sent, and a full queue answers 503.
    pub fn queue_ingest(
        &self,
        events: Vec<Accepted>,
        now: f64,
        counters: &Counters,
    ) -> Result<Pending, ApiError> {
        let mut split: Vec<Vec<Accepted>> = (0..self.shards.len()).map(|_| Vec::new()).collect();
        for accepted in events {
            split[self.shard_of(&accepted.event.user_id)].push(accepted);
        }
        for (shard, events) in split.iter().enumerate() {
            if !events.is_empty() && self.shards[shard].full() {
                return Err(full(shard, counters));
            }
        }
        let mut permits = Vec::new();
        for (shard, events) in split.iter().enumerate() {
            if events.is_empty() {
                continue;
            }
            match self.shards[shard].queue.try_reserve() {
                Ok(permit) => permits.push((shard, permit)),
                Err(_) => return Err(overloaded(shard, counters)),
            }
        }
        let mut parts = Vec::with_capacity(permits.len());
        for (shard, permit) in permits {
            let events = std::mem::take(&mut split[shard]);
            let positions = events.iter().map(|a| a.position).collect();
            let (reply, answer) = oneshot::channel();
            permit.send(Command::Ingest { events, now, reply });
            parts.push(Part {
                shard,
                positions,
                answer,
            });
        }
        Ok(Pending { parts })
    }

    /// Lets every shard finish its queue, then ends the shard threads.
    pub async fn stop(&self) {
        for shard in &self.shards {
            shard.stop().await;
        }
    }
}

/// 503 for a request that found a shard's queue full; nothing of it was queued anywhere.
pub fn overloaded(shard: usize, counters: &Counters) -> ApiError {
    Counters::count(&counters.overloaded, 1);
    ApiError::unavailable(
        format!(
            "overloaded: shard {shard}'s queue is full; nothing of this request was accepted, retry after 1 s"
        ),
        1,
    )
}

/// 503 for a request with events for a shard whose memory is full even for the users it holds.
fn full(shard: usize, counters: &Counters) -> ApiError {
    Counters::count(&counters.overloaded, 1);
    ApiError::unavailable(
        format!(
            "capacity: shard {shard} holds as much as its memory allows, even for the users it \
             holds; nothing of this request was accepted, retry after 1 s (windows expire)"
        ),
        1,
    )
}

impl Pending {
    /// Waits for every part and enters it in `ingest`; then raises the service watermark with
    /// what was recorded. Collected in a task of its own, so that the watermark is raised once
    /// every part is recorded even if the client goes away meanwhile.
    pub async fn collect(
        self,
        ingest: Ingest,
        watermark: Arc<Watermark>,
    ) -> Result<Ingest, ApiError> {
        let collected = tokio::spawn(async move {
            let mut ingest = ingest;
            let mut raised: Option<f64> = None;
            for part in self.parts {
                match part.answer.await {
                    Ok(Ok(report)) => {
                        ingest.recorded(report.accepted, report.rejections);
                        if let Some(w) = report.watermark {
                            raised = Some(raised.map_or(w, |r| r.max(w)));
                        }
                    }
                    Ok(Err(e)) => match e.to_api_error().retry_after {
                        Some(seconds) => {
                            ingest.not_recorded_for_now(part.positions, e.to_string(), seconds)
                        }
                        None => ingest.not_recorded(part.positions, e.to_string()),
                    },
                    Err(_) => ingest.not_recorded(
                        part.positions,
                        format!("shard {}: stopped before answering", part.shard),
                    ),
                }
            }
            if let Some(w) = raised {
                watermark.raise(w);
            }
            ingest
        });
        collected
            .await
            .map_err(|_| ApiError::internal("ingest: the request's task failed"))
    }
}
