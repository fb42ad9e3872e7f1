//! What the clients saw, counted: requests, events sent, accepted and rejected, errors by kind,
//! the Spin app's store calls, and latency in a histogram; merged over the clients, with the
//! percentiles the report gives.

use std::collections::HashMap;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::{EventOut, IngestAnswer};

/// What one client saw, or all of them merged.
pub struct ClientResult {
    /// Microseconds, from when each request was due.
    pub latency: Histogram<u64>,
    pub requests: u64,
    pub sent: u64,
    pub accepted: u64,
    pub rejected: u64,
    pub errors: HashMap<String, u64>,
    /// Key-value store calls the Spin app says its answers cost (`edgescore-store-calls`).
    pub store_calls: u64,
    /// Accepted events per user, when verifying: `(timestamp, features)`.
    pub record: HashMap<String, Vec<(f64, Vec<f32>)>>,
}

impl ClientResult {
    pub fn new() -> ClientResult {
        ClientResult {
            latency: Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid bounds"),
            requests: 0,
            sent: 0,
            accepted: 0,
            rejected: 0,
            errors: HashMap::new(),
            store_calls: 0,
            record: HashMap::new(),
        }
    }

    /// Counts a 200 answer; with `record`, keeps the accepted events to verify them later.
    pub fn answered(&mut self, events: &[EventOut], answer: &IngestAnswer, record: bool) {
        self.accepted += answer.processed;
        self.rejected += answer.rejected.len() as u64;
        if !record {
            return;
        }
        let mut rejected = vec![false; events.len()];
        for r in &answer.rejected {
            if let Some(slot) = rejected.get_mut(r.index) {
                *slot = true;
            }
        }
        for (e, rejected) in events.iter().zip(rejected) {
            if !rejected {
                self.record
                    .entry(e.user_id.clone())
                    .or_default()
                    .push((e.timestamp, e.features.clone()));
            }
        }
    }

    /// Every client's results as one.
    pub fn merge(results: Vec<ClientResult>) -> anyhow::Result<ClientResult> {
        let mut all = ClientResult::new();
        for r in results {
            all.latency.add(&r.latency)?;
            all.requests += r.requests;
            all.sent += r.sent;
            all.accepted += r.accepted;
            all.rejected += r.rejected;
            all.store_calls += r.store_calls;
            for (k, n) in r.errors {
                *all.errors.entry(k).or_default() += n;
            }
            for (user, mut events) in r.record {
                all.record.entry(user).or_default().append(&mut events);
            }
        }
        Ok(all)
    }
}

/// Latency percentiles, in milliseconds.
#[derive(Debug, Serialize)]
pub struct Percentiles {
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Percentiles {
    /// Of a histogram of microseconds.
    pub fn of(micros: &Histogram<u64>) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1e3;
        Percentiles {
            p50: ms(micros.value_at_quantile(0.5)),
            p95: ms(micros.value_at_quantile(0.95)),
            p99: ms(micros.value_at_quantile(0.99)),
            max: ms(micros.max()),
        }
    }
}

/// The exact median of `scores` (the mean of the two middle ones for an even count), as the
/// service defines it; none of no scores.
pub fn median(mut scores: Vec<f32>) -> Option<f64> {
    scores.sort_by(f32::total_cmp);
    let n = scores.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(scores[n / 2] as f64),
        _ => Some((scores[n / 2 - 1] as f64 + scores[n / 2] as f64) / 2.0),
    }
}

/// Whether the server's median is the one computed here. The server may run another build of
/// the component: the last float bits may differ.
pub fn same_median(expected: Option<f64>, served: Option<f64>) -> bool {
    match (expected, served) {
        (Some(a), Some(b)) => (a - b).abs() <= 1e-5 * a.abs().max(1.0),
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::RejectedAnswer;
    use super::*;

    fn event(user: &str, timestamp: f64) -> EventOut {
        EventOut {
            user_id: user.into(),
            timestamp,
            features: vec![timestamp as f32],
        }
    }

    #[test]
    fn an_answer_records_only_the_accepted_events() {
        let events = [event("a", 1.0), event("b", 2.0), event("a", 3.0)];
        let answer = IngestAnswer {
            processed: 2,
            rejected: vec![RejectedAnswer { index: 1 }, RejectedAnswer { index: 99 }],
        };
        let mut result = ClientResult::new();
        result.answered(&events, &answer, true);
        assert_eq!((result.accepted, result.rejected), (2, 2));
        assert_eq!(result.record["a"], vec![(1.0, vec![1.0]), (3.0, vec![3.0])]);
        assert!(!result.record.contains_key("b"));
        let mut counted_only = ClientResult::new();
        counted_only.answered(&events, &answer, false);
        assert!(counted_only.record.is_empty());
    }

    #[test]
    fn merging_adds_every_count_error_and_latency() {
        let client = |latencies: &[u64], error: &str| {
            let mut r = ClientResult::new();
            for &l in latencies {
                r.latency.record(l).unwrap();
            }
            r.requests = latencies.len() as u64;
            r.sent = 10 * r.requests;
            r.accepted = r.sent - 1;
            r.rejected = 1;
            r.store_calls = 7;
            r.errors.insert(error.into(), 1);
            r.record
                .insert("u".into(), vec![(r.requests as f64, vec![])]);
            r
        };
        let all = ClientResult::merge(vec![
            client(&[100, 200], "HTTP 503"),
            client(&[300], "HTTP 503"),
            client(&[400, 500, 600], "connection: refused"),
        ])
        .unwrap();
        assert_eq!(all.requests, 6);
        assert_eq!((all.sent, all.accepted, all.rejected), (60, 57, 3));
        assert_eq!(all.store_calls, 21);
        assert_eq!(all.errors["HTTP 503"], 2);
        assert_eq!(all.errors["connection: refused"], 1);
        assert_eq!(all.latency.len(), 6);
        assert_eq!(all.latency.max(), 600);
        assert_eq!(all.record["u"].len(), 3);
    }

    #[test]
    fn percentiles_are_read_from_the_histogram_in_milliseconds() {
        let mut micros = ClientResult::new().latency;
        for l in 1..=1000 {
            micros.record(l * 10).unwrap();
        }
        let p = Percentiles::of(&micros);
        // 3 significant digits: each within 0.1% of the exact rank's value.
        for (got, exact) in [(p.p50, 5.0), (p.p95, 9.5), (p.p99, 9.9), (p.max, 10.0)] {
            assert!((got - exact).abs() <= exact * 1e-3, "{got} against {exact}");
        }
    }

    #[test]
    fn the_median_is_exact() {
        assert_eq!(median(vec![]), None);
        assert_eq!(median(vec![3.0, -1.0, 2.0]), Some(2.0));
        assert_eq!(median(vec![4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(
            median(vec![0.1, 0.2]),
            Some((0.1f32 as f64 + 0.2f32 as f64) / 2.0)
        );
    }

    #[test]
    fn a_served_median_may_differ_only_in_its_last_bits() {
        assert!(same_median(Some(-0.145735), Some(-0.145735 + 1e-7)));
        assert!(!same_median(Some(-0.145735), Some(-0.1457)));
        assert!(!same_median(Some(1.0), None));
        assert!(same_median(None, None));
    }
}
