//! One ingest request on its way through a host. Both hosts run the same steps here and supply
//! only what differs between them — recording the accepted events (sharded engine instances
//! natively, compare-and-swap on key-value in the Spin app):
//!
//! 1. [`Ingest::start`] parses the body (400/422/413: nothing accepted) and judges its events in
//!    order against the watermark, as if they came one by one (`edgescore-types`' rules);
//! 2. the host records the [`Accepted`] events, each carrying its position in the request, and
//!    reports back with [`Ingest::recorded`] (with any rejections of its own) or
//!    [`Ingest::not_recorded`];
//! 3. [`Ingest::finish`] gives the 200 body, or the error naming what was not recorded.
//!
//! Positions stay request positions all the way: a host never remaps an index.

use serde::Serialize;

use edgescore_types::{Event, Rejection, RejectionReason, Rules};

use super::parse::{ParsedEvent, parse_ingest};
use crate::errors::{ApiError, PartialIngest};

/// An event that passed judgment, and its position in the request's `events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Accepted {
    pub position: u32,
    pub event: Event,
}

/// What judging a request leaves for the host to record.
#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    /// In request order.
    pub events: Vec<Accepted>,
    /// The watermark once all of them are recorded (none while nothing was ever accepted).
    pub watermark: Option<f64>,
}

/// A request's events, parsed and not yet judged.
#[derive(Debug)]
pub struct Parsed(Vec<ParsedEvent>);

impl Parsed {
    /// The users of the well-formed events, in request order (repeated when they repeat).
    pub fn user_ids(&self) -> impl Iterator<Item = &str> {
        self.0.iter().filter_map(|p| match p {
            ParsedEvent::Event(e) => Some(e.user_id.as_str()),
            ParsedEvent::Invalid(..) => None,
        })
    }
}

/// The request's account: what was rejected, recorded or lost on the way.
#[derive(Debug)]
pub struct Ingest {
    rejections: Vec<Rejection>,
    processed: u32,
    not_recorded: Vec<u32>,
    failures: Vec<String>,
    /// Set when every failure so far was one a retry may get past (nothing of it was done):
    /// the longest wait any of them asked for.
    retry_after: Option<u32>,
}

impl Ingest {
    /// Parses `body` (at most `max_events` events) and judges its events in order at wall-clock
    /// time `now` against `watermark`. Malformed events and events the rules refuse become
    /// rejections; the rest are the host's to record.
    pub fn start(
        body: &[u8],
        max_events: usize,
        rules: &Rules,
        watermark: Option<f64>,
        now: f64,
    ) -> Result<(Ingest, Judged), ApiError> {
        Ok(Ingest::judge(
            Ingest::parse(body, max_events)?,
            rules,
            watermark,
            now,
        ))
    }

    /// The first half of [`Ingest::start`], for a host that reads what it needs to judge (the
    /// watermark) together with what the events will touch (their users' windows).
    pub fn parse(body: &[u8], max_events: usize) -> Result<Parsed, ApiError> {
        Ok(Parsed(parse_ingest(body, max_events)?))
    }

    /// The second half of [`Ingest::start`].
    pub fn judge(
        parsed: Parsed,
        rules: &Rules,
        watermark: Option<f64>,
        now: f64,
    ) -> (Ingest, Judged) {
        let parsed = parsed.0;
        let mut rejections = Vec::new();
        let mut events = Vec::with_capacity(parsed.len());
        let mut positions = Vec::with_capacity(parsed.len());
        for (position, p) in parsed.into_iter().enumerate() {
            match p {
                ParsedEvent::Event(e) => {
                    events.push(e);
                    positions.push(position as u32);
                }
                ParsedEvent::Invalid(reason, message) => rejections.push(Rejection {
                    index: position as u32,
                    reason,
                    message,
                }),
            }
        }
        let (checked, watermark) = rules.check_batch(&events, now, watermark);
        rejections.extend(checked.rejections.into_iter().map(|mut r| {
            r.index = positions[r.index as usize];
            r
        }));
        let mut accepted = checked.accepted.into_iter().peekable();
        let events = events
            .into_iter()
            .zip(positions)
            .enumerate()
            .filter(|(i, _)| accepted.next_if_eq(&(*i as u32)).is_some())
            .map(|(_, (event, position))| Accepted { position, event })
            .collect();
        let ingest = Ingest {
            rejections,
            processed: 0,
            not_recorded: Vec::new(),
            failures: Vec::new(),
            retry_after: None,
        };
        (ingest, Judged { events, watermark })
    }

    /// Rejections so far, at request positions (for counting them by reason).
    pub fn rejections(&self) -> &[Rejection] {
        &self.rejections
    }

    /// The host recorded `count` events, and rejected these itself (at request positions: e.g. a
    /// shard's final judgment against a watermark that moved since [`Ingest::start`]).
    pub fn recorded(&mut self, count: u32, rejections: impl IntoIterator<Item = Rejection>) {
        self.processed += count;
        self.rejections.extend(rejections);
    }

    /// The host could not record the events at these positions, and says why.
    pub fn not_recorded(&mut self, positions: impl IntoIterator<Item = u32>, why: String) {
        self.not_recorded.extend(positions);
        self.failures.push(why);
        self.retry_after = None;
    }

    /// The host could not record the events at these positions *now* and did nothing with them
    /// (a full queue, a failing disk): a retry after `seconds` may succeed.
    pub fn not_recorded_for_now(
        &mut self,
        positions: impl IntoIterator<Item = u32>,
        why: String,
        seconds: u32,
    ) {
        let only_retryable = self.failures.is_empty() || self.retry_after.is_some();
        self.not_recorded(positions, why);
        if only_retryable {
            self.retry_after = Some(seconds.max(self.retry_after.unwrap_or(0)));
        }
    }

    /// Events recorded so far.
    pub fn processed(&self) -> u32 {
        self.processed
    }

    /// The 200 body; or, if anything accepted was not recorded, an error naming those positions
    /// and what was recorded all the same: 503 with `Retry-After` when nothing was recorded and
    /// every failure was one a retry may get past, else 500.
    pub fn finish(mut self) -> Result<IngestResponse, ApiError> {
        if !self.failures.is_empty() {
            self.not_recorded.sort_unstable();
            let message = format!(
                "{} of this request's events were not recorded: {}",
                self.not_recorded.len(),
                self.failures.join("; ")
            );
            // 503 means nothing of the request was done; a part recorded makes it a 500.
            let mut error = match self.retry_after {
                Some(seconds) if self.processed == 0 => ApiError::unavailable(message, seconds),
                _ => ApiError::internal(message),
            };
            error.body.partial = Some(PartialIngest {
                processed: self.processed,
                not_recorded: self.not_recorded,
            });
            return Err(error);
        }
        self.rejections.sort_by_key(|r| r.index);
        Ok(IngestResponse {
            processed: self.processed,
            rejected: self
                .rejections
                .into_iter()
                .map(|r| RejectedEvent {
                    index: r.index,
                    error: RejectionReason::as_str(r.reason),
                    message: r.message,
                })
                .collect(),
        })
    }
}

/// `POST /ingest` → 200. `processed` is a seed field.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct IngestResponse {
    pub processed: u32,
    pub rejected: Vec<RejectedEvent>,
}

/// One rejected event of an ingest: `error` is the reason's stable name, `message` the sentence.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct RejectedEvent {
    pub index: u32,
    pub error: &'static str,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgescore_types::EngineConfig;

    const RULES: Rules = Rules {
        config: EngineConfig {
            window_seconds: 300.0,
            max_clock_skew_seconds: 300.0,
        },
        width: 1,
    };

    fn body(events: &[&str]) -> Vec<u8> {
        format!(r#"{{"events":[{}]}}"#, events.join(",")).into_bytes()
    }

    fn event(user: &str, t: f64) -> String {
        format!(r#"{{"user_id":"{user}","timestamp":{t},"features":[1]}}"#)
    }

    #[test]
    fn accepted_events_keep_their_request_positions_and_rejections_come_back_in_order() {
        let body = body(&[
            &event("a", 1000.0),
            "null",
            &event("b", 600.0), // late against the first
            &event("", 1000.0),
            &event("c", 999.0),
        ]);
        let (mut ingest, judged) = Ingest::start(&body, 10, &RULES, None, 1000.0).unwrap();
        let positions: Vec<u32> = judged.events.iter().map(|a| a.position).collect();
        assert_eq!(positions, vec![0, 4]);
        assert_eq!(judged.events[1].event.user_id, "c");
        assert_eq!(judged.watermark, Some(1000.0));
        // The host rejects position 4 itself (its own, final judgment) and records the other.
        let late = Rejection {
            index: 4,
            reason: RejectionReason::Late,
            message: "late".into(),
        };
        ingest.recorded(1, [late]);
        let answer = ingest.finish().unwrap();
        assert_eq!(answer.processed, 1);
        let rejected: Vec<(u32, &str)> =
            answer.rejected.iter().map(|r| (r.index, r.error)).collect();
        assert_eq!(
            rejected,
            vec![
                (1, "malformed_event"),
                (2, "late"),
                (3, "invalid_user_id"),
                (4, "late")
            ]
        );
    }

    #[test]
    fn what_a_host_could_not_record_fails_the_request_naming_the_positions() {
        let body = body(&[&event("a", 10.0), &event("b", 11.0), &event("c", 12.0)]);
        let (mut ingest, judged) = Ingest::start(&body, 10, &RULES, None, 20.0).unwrap();
        assert_eq!(judged.events.len(), 3);
        ingest.recorded(1, []);
        ingest.not_recorded([2, 1], "shard 1: trapped".into());
        let error = ingest.finish().unwrap_err();
        assert_eq!(error.status, 500);
        assert_eq!(
            error.message(),
            "2 of this request's events were not recorded: shard 1: trapped"
        );
        let partial = error.body.partial.unwrap();
        assert_eq!((partial.processed, partial.not_recorded), (1, vec![1, 2]));
    }

    #[test]
    fn what_could_not_be_recorded_for_now_is_a_503_unless_something_else_failed() {
        let body = body(&[&event("a", 10.0), &event("b", 11.0), &event("c", 12.0)]);
        let start = || Ingest::start(&body, 10, &RULES, None, 20.0).unwrap().0;
        let mut ingest = start();
        ingest.not_recorded_for_now([0], "shard 0: disk full".into(), 1);
        ingest.not_recorded_for_now([1, 2], "shard 1: disk full".into(), 2);
        let error = ingest.finish().unwrap_err();
        assert_eq!((error.status, error.retry_after), (503, Some(2)));
        assert_eq!(error.body.partial.unwrap().processed, 0);
        // A part recorded makes it a 500: a 503 says that nothing was done.
        let mut ingest = start();
        ingest.recorded(1, []);
        ingest.not_recorded_for_now([1, 2], "shard 1: disk full".into(), 1);
        let error = ingest.finish().unwrap_err();
        assert_eq!((error.status, error.retry_after), (500, None));
        // One failure that a retry does not get past makes it a 500, in either order.
        for retryable_first in [true, false] {
            let mut ingest = start();
            let (for_now, failed) = ([0u32], [1u32]);
            if retryable_first {
                ingest.not_recorded_for_now(for_now, "disk full".into(), 1);
                ingest.not_recorded(failed, "trapped".into());
            } else {
                ingest.not_recorded(failed, "trapped".into());
                ingest.not_recorded_for_now(for_now, "disk full".into(), 1);
            }
            let error = ingest.finish().unwrap_err();
            assert_eq!((error.status, error.retry_after), (500, None));
        }
    }

    #[test]
    fn a_bad_body_is_refused_whole() {
        let err = Ingest::start(b"nope", 10, &RULES, None, 0.0).unwrap_err();
        assert_eq!(err.status, 400);
        let err = Ingest::start(&body(&["1", "2"]), 1, &RULES, None, 0.0).unwrap_err();
        assert_eq!(err.status, 413);
    }
}
