//! Many queued ingest requests as one component call, and the call's report split back into one
//! answer per request. Every merged event remembers which request it came from and its position
//! in that request, so a rejection goes straight back to its request position.

use edgescore_contract::ingest::Accepted;
use edgescore_runtime::{GuestEvent, guest_event};
use edgescore_types::rules::raised_watermark;
use edgescore_types::{IngestReport, Rejection};

use super::{Reply, ShardError, ShardReport};

/// One queued ingest request's events for this shard.
pub struct Job {
    pub events: Vec<Accepted>,
    pub now: f64,
    pub reply: Reply<ShardReport>,
}

/// The events of several requests in one batch, in queue order.
pub struct Merged {
    pub events: Vec<GuestEvent>,
    /// The latest clock reading of the requests: every event is judged at it.
    pub now: f64,
    /// Per merged event: its request (an index into `replies`) and its position there.
    origin: Vec<(usize, u32)>,
    replies: Vec<Reply<ShardReport>>,
    /// Per request: the clock it was judged at.
    nows: Vec<f64>,
}

impl Merged {
    pub fn new(jobs: Vec<Job>) -> Merged {
        let total = jobs.iter().map(|j| j.events.len()).sum();
        let mut merged = Merged {
            events: Vec::with_capacity(total),
            now: f64::MIN,
            origin: Vec::with_capacity(total),
            replies: Vec::with_capacity(jobs.len()),
            nows: Vec::with_capacity(jobs.len()),
        };
        for (request, job) in jobs.into_iter().enumerate() {
            for accepted in job.events {
                merged.origin.push((request, accepted.position));
                merged.events.push(guest_event(accepted.event));
            }
            merged.now = merged.now.max(job.now);
            merged.nows.push(job.now);
            merged.replies.push(job.reply);
        }
        merged
    }

    /// Whether a report of the guest is about this batch: a sandboxed guest is not trusted, so an
    /// answer that does not fit is a guest failure, never an out-of-bounds index in the host.
    pub fn fits(&self, report: &IngestReport) -> bool {
        let len = self.events.len();
        report.rejections.iter().all(|r| (r.index as usize) < len)
            && report.accepted as usize + report.rejections.len() == len
    }

    /// Every request of the batch gets `e`.
    pub fn fail(self, e: &ShardError) {
        for reply in self.replies {
            let _ = reply.send(Err(e.clone()));
        }
    }

    /// Splits `report` (which [`Merged::fits`]) into every request's share; returns the events
    /// that were recorded, in call order, and the answers to send once they are counted (a
    /// client that has its answer may read `/stats` at once).
    pub fn answer(self, report: IngestReport) -> (Vec<GuestEvent>, Answers) {
        let mut answers: Vec<ShardReport> = (0..self.replies.len())
            .map(|_| ShardReport {
                accepted: 0,
                rejections: Vec::new(),
                watermark: None,
            })
            .collect();
        let mut rejected = vec![false; self.events.len()];
        for r in report.rejections {
            let (request, position) = self.origin[r.index as usize];
            rejected[r.index as usize] = true;
            answers[request].rejections.push(Rejection {
                index: position,
                ..r
            });
        }
        let mut recorded = Vec::with_capacity(report.accepted as usize);
        for ((event, (request, _)), rejected) in
            self.events.into_iter().zip(self.origin).zip(rejected)
        {
            if rejected {
                continue;
            }
            let answer = &mut answers[request];
            answer.accepted += 1;
            answer.watermark = Some(raised_watermark(
                answer.watermark,
                event.timestamp,
                self.nows[request],
            ));
            recorded.push(event);
        }
        let answers = Answers {
            replies: self.replies,
            answers,
        };
        (recorded, answers)
    }
}

/// Every request's share of a call's report, not yet sent.
pub struct Answers {
    replies: Vec<Reply<ShardReport>>,
    answers: Vec<ShardReport>,
}

impl Answers {
    /// Every request gets `e` instead of its answer.
    pub fn fail(self, e: &ShardError) {
        for reply in self.replies {
            let _ = reply.send(Err(e.clone()));
        }
    }

    pub fn send(self) {
        for (reply, answer) in self.replies.into_iter().zip(self.answers) {
            let _ = reply.send(Ok(answer));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use edgescore_types::{Event, RejectionReason};
    use tokio::sync::oneshot;

    fn job(
        positions: &[u32],
        base: f64,
    ) -> (Job, oneshot::Receiver<Result<ShardReport, ShardError>>) {
        let (reply, answer) = oneshot::channel();
        let events = positions
            .iter()
            .map(|&position| Accepted {
                position,
                event: Event {
                    user_id: format!("u{position}"),
                    timestamp: base + f64::from(position),
                    features: vec![0.0],
                },
            })
            .collect();
        (
            Job {
                events,
                now: base,
                reply,
            },
            answer,
        )
    }

    #[test]
    fn rejections_of_a_merged_call_go_back_to_their_request_positions() {
        let (a, mut answer_a) = job(&[0, 2, 5], 100.0);
        let (b, mut answer_b) = job(&[1, 3], 200.0);
        let merged = Merged::new(vec![a, b]);
        assert_eq!(merged.events.len(), 5);
        assert_eq!(merged.now, 200.0);
        let late = |index| Rejection {
            index,
            reason: RejectionReason::Late,
            message: String::new(),
        };
        // Merged index 1 is request a's position 2; merged index 4 is request b's position 3.
        let report = IngestReport {
            accepted: 3,
            rejections: vec![late(1), late(4)],
        };
        assert!(merged.fits(&report));
        let (recorded, answers) = merged.answer(report);
        answers.send();
        let ids: Vec<&str> = recorded.iter().map(|e| e.user_id.as_str()).collect();
        assert_eq!(ids, ["u0", "u5", "u1"]);
        let a = answer_a.try_recv().unwrap().unwrap();
        assert_eq!((a.accepted, a.rejections[0].index), (2, 2));
        // Request a's clock read 100: its events at 100 and 105 raise the watermark to 100 only.
        assert_eq!(a.watermark, Some(100.0));
        let b = answer_b.try_recv().unwrap().unwrap();
        assert_eq!((b.accepted, b.rejections[0].index), (1, 3));
        assert_eq!(b.watermark, Some(200.0));
    }

    #[test]
    fn a_report_that_does_not_fit_the_batch_is_caught() {
        let (a, _answer) = job(&[0, 1], 0.0);
        let merged = Merged::new(vec![a]);
        let wrong_count = IngestReport {
            accepted: 3,
            rejections: vec![],
        };
        let out_of_range = IngestReport {
            accepted: 1,
            rejections: vec![Rejection {
                index: 2,
                reason: RejectionReason::Late,
                message: String::new(),
            }],
        };
        assert!(!merged.fits(&wrong_count));
        assert!(!merged.fits(&out_of_range));
    }
}
