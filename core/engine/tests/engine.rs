//! The engine against the spec's rules, and against a naive reference of them.

mod common;

use std::collections::HashMap;

use common::{identity_model, seed_model};
use edgescore_engine::{Engine, Model};
use edgescore_types::{EngineConfig, Event, RejectionReason, SnapshotError};
use proptest::prelude::*;

const NOW: f64 = 1_700_000_000.0;

fn event(user: &str, timestamp: f64, score: f32) -> Event {
    Event {
        user_id: user.to_string(),
        timestamp,
        features: vec![score],
    }
}

fn engine(window: f64) -> Engine {
    Engine::new(
        EngineConfig {
            window_seconds: window,
            max_clock_skew_seconds: 300.0,
        },
        identity_model(),
    )
    .unwrap()
}

fn rejected(stats: &edgescore_types::EngineStats, reason: RejectionReason) -> u64 {
    stats.rejected.iter().find(|(r, _)| *r == reason).unwrap().1
}

#[test]
fn the_seed_example_scores_and_reports_a_median() {
    let mut engine = Engine::new(EngineConfig::default(), seed_model(1)).unwrap();
    let events = [Event {
        user_id: "user-7".into(),
        timestamp: NOW,
        features: vec![0.1, 0.2, 0.3],
    }];
    let report = engine.ingest(&events, NOW).unwrap();
    assert_eq!(report.accepted, 1);
    assert!(report.rejections.is_empty());
    let median = engine.median("user-7");
    let score = seed_model(1).score(&[0.1, 0.2, 0.3]).unwrap()[0];
    assert_eq!(median.median, Some(score as f64));
    assert_eq!((median.count, median.window_seconds), (1, 300.0));
    let stats = engine.stats();
    assert_eq!(
        (
            stats.events_accepted,
            stats.ingest_batches,
            stats.model_calls,
            stats.users_tracked
        ),
        (1, 1, 1, 1)
    );
    assert_eq!(stats.median_queries, 1);
}

#[test]
fn each_bad_event_is_rejected_alone_with_its_reason() {
    let mut engine = engine(300.0);
    let long_id = "x".repeat(257);
    let events = [
        event("a", NOW, 1.0),
        event("", NOW, 1.0),
        event(&long_id, NOW, 1.0),
        event("a", f64::NAN, 1.0),
        Event {
            user_id: "a".into(),
            timestamp: NOW,
            features: vec![1.0, 2.0],
        },
        event("a", NOW, f32::INFINITY),
        event("a", NOW + 301.0, 1.0),
        event("a", NOW - 300.0, 1.0),
        event("a", NOW - 299.5, 3.0),
        event(&"y".repeat(256), NOW + 300.0, 2.0),
    ];
    let report = engine.ingest(&events, NOW).unwrap();
    let reasons: Vec<(u32, RejectionReason)> = report
        .rejections
        .iter()
        .map(|r| (r.index, r.reason))
        .collect();
    use RejectionReason::*;
    assert_eq!(
        reasons,
        vec![
            (1, InvalidUserId),
            (2, InvalidUserId),
            (3, InvalidTimestamp),
            (4, WrongWidth),
            (5, NonFiniteFeature),
            (6, Future),
            (7, Late)
        ]
    );
    assert_eq!(report.accepted, 3);
    assert!(
        report.rejections[3]
            .message
            .starts_with("features: expected 1 values, got 2")
    );
    assert!(report.rejections[4].message.starts_with("features[0]"));
    assert!(report.rejections[6].message.starts_with("timestamp:"));
    // Index 9, 300 s ahead of the clock, is kept but does not move the watermark past NOW:
    // indexes 0 and 8 stay in a's window.
    assert_eq!(engine.median("a").count, 2);
    assert_eq!(engine.stats().watermark, Some(NOW));
    assert_eq!(engine.median(&"y".repeat(256)).count, 1);
    let stats = engine.stats();
    assert_eq!(stats.events_received, 10);
    assert_eq!(stats.events_accepted, 3);
    assert_eq!(rejected(&stats, InvalidUserId), 2);
    assert_eq!(rejected(&stats, Late), 1);
}

#[test]
fn windows_follow_the_watermark_and_empty_users_are_dropped() {
    let mut engine = engine(10.0);
    engine
        .ingest(
            &[
                event("a", 100.0, 1.0),
                event("a", 95.0, 5.0),
                event("b", 101.0, 2.0),
            ],
            1000.0,
        )
        .unwrap();
    assert_eq!(engine.median("a").median, Some(3.0));
    engine.ingest(&[event("b", 105.0, 4.0)], 1000.0).unwrap();
    assert_eq!(engine.median("a").count, 1, "95 <= 105 - 10 expired");
    engine.ingest(&[event("b", 111.0, 6.0)], 1000.0).unwrap();
    assert_eq!(engine.median("a").median, None);
    assert_eq!(
        engine.median("b").median,
        Some(5.0),
        "101 <= 111 - 10 expired too"
    );
    let stats = engine.stats();
    assert_eq!((stats.users_tracked, stats.events_in_windows), (1, 2));
}

#[test]
fn a_fast_clock_expires_nobody_and_its_event_is_kept() {
    let mut engine = engine(300.0);
    // A victim with events at the window's start and recent ones.
    let victim: Vec<Event> = (0..20)
        .map(|i| event("victim", NOW - 299.0 + 15.0 * i as f64, i as f32))
        .collect();
    engine.ingest(&victim, NOW).unwrap();
    let before = engine.median("victim");
    assert_eq!(before.count, 20);
    // 290 s ahead of the clock, within a 300 s skew: accepted, kept, and the watermark stays.
    let report = engine
        .ingest(&[event("fast", NOW + 290.0, 99.0)], NOW)
        .unwrap();
    assert_eq!(report.accepted, 1);
    assert_eq!(engine.median("victim"), before);
    assert_eq!(engine.median("fast").median, Some(99.0));
    assert_eq!(engine.stats().watermark, Some(NOW));
    // A snapshot keeps the event ahead of the watermark.
    let mut restored = self::engine(300.0);
    restored.restore(&engine.snapshot()).unwrap();
    assert_eq!(restored.median("fast").count, 1);
    // The clock moves the window: 10 s later, the events at or before NOW + 10 - 300 leave.
    engine
        .ingest(&[event("clock", NOW + 10.0, 0.0)], NOW + 10.0)
        .unwrap();
    let expired = victim.iter().filter(|e| e.timestamp <= NOW - 290.0).count();
    assert_eq!(expired, 1);
    assert_eq!(engine.median("victim").count, 20 - expired as u32);
    assert_eq!(engine.median("fast").count, 1);
}

#[test]
fn a_non_finite_score_rejects_that_event_alone() {
    // The fixture multiplies by 1e30: a finite input of 1e9 scores as infinity.
    let model = Model::load(&common::read("tests/fixtures/scale.onnx")).unwrap();
    let mut engine = Engine::new(EngineConfig::default(), model).unwrap();
    let events = [
        event("a", NOW, 1e-30),
        event("b", NOW, 1e9),
        event("a", NOW, 2e-30),
    ];
    let report = engine.ingest(&events, NOW).unwrap();
    assert_eq!(report.accepted, 2);
    assert_eq!(report.rejections.len(), 1);
    let r = &report.rejections[0];
    assert_eq!((r.index, r.reason), (1, RejectionReason::NonFiniteScore));
    assert!(
        r.message
            .starts_with("score: the model scored this event as inf"),
        "{}",
        r.message
    );
    assert_eq!(engine.median("a").count, 2);
    assert_eq!(engine.median("b").count, 0);
    let stats = engine.stats();
    assert_eq!(stats.events_accepted, 2);
    assert_eq!(rejected(&stats, RejectionReason::NonFiniteScore), 1);
}

#[test]
fn bad_configs_are_refused() {
    for (window, skew) in [
        (0.0, 1.0),
        (-1.0, 1.0),
        (f64::NAN, 1.0),
        (f64::INFINITY, 1.0),
        (1.0, -1.0),
        (1.0, f64::NAN),
    ] {
        let config = EngineConfig {
            window_seconds: window,
            max_clock_skew_seconds: skew,
        };
        assert!(Engine::new(config, identity_model()).is_err(), "{config:?}");
    }
}

#[test]
fn snapshots_restore_the_whole_state() {
    let mut source = engine(300.0);
    let events: Vec<Event> = (0..500)
        .map(|i| event(&format!("u{}", i % 17), NOW + (i % 200) as f64, i as f32))
        .collect();
    source.ingest(&events, NOW + 1000.0).unwrap();
    source.median("u3");
    let bytes = source.snapshot();
    assert!(
        bytes.len() < 12 * 500 + 17 * 16 + 128,
        "{} bytes",
        bytes.len()
    );

    let mut target = engine(300.0);
    target.restore(&bytes).unwrap();
    assert_eq!(target.stats(), source.stats());
    for u in 0..17 {
        let user = format!("u{u}");
        assert_eq!(target.median(&user), source.median(&user));
    }
    // A restored engine goes on like the original.
    let more = [event("u1", NOW + 250.0, 9.0), event("u1", NOW - 10.0, 1.0)];
    assert_eq!(
        target.ingest(&more, NOW + 1000.0).unwrap(),
        source.ingest(&more, NOW + 1000.0).unwrap()
    );
    assert_eq!(target.median("u1"), source.median("u1"));

    // A smaller window keeps only what is inside it.
    let mut narrow = engine(50.0);
    narrow.restore(&bytes).unwrap();
    assert!(narrow.stats().events_in_windows < source.stats().events_in_windows);
}

#[test]
fn bad_snapshots_are_typed_errors_and_change_nothing() {
    let mut engine = engine(300.0);
    engine.ingest(&[event("a", NOW, 1.0)], NOW).unwrap();
    let good = engine.snapshot();
    assert_eq!(engine.restore(b"hello"), Err(SnapshotError::NotASnapshot));
    let mut future_version = good.clone();
    future_version[8] = 9;
    assert_eq!(
        engine.restore(&future_version),
        Err(SnapshotError::UnsupportedVersion(9))
    );
    assert!(matches!(
        engine.restore(&good[..good.len() - 3]),
        Err(SnapshotError::Corrupt(_))
    ));
    assert_eq!(engine.median("a").count, 1);
}

/// The spec's rules written the slow, obvious way: every accepted event kept forever, windows
/// recomputed by filtering and sorting.
#[derive(Default)]
struct Reference {
    watermark: Option<f64>,
    accepted: Vec<(String, f64, f32)>,
}

impl Reference {
    fn ingest(
        &mut self,
        events: &[Event],
        now: f64,
        window: f64,
        skew: f64,
    ) -> Vec<Option<RejectionReason>> {
        events
            .iter()
            .map(|e| {
                if e.timestamp > now + skew {
                    return Some(RejectionReason::Future);
                }
                if self.watermark.is_some_and(|w| e.timestamp <= w - window) {
                    return Some(RejectionReason::Late);
                }
                let t = e.timestamp.min(now);
                self.watermark = Some(self.watermark.map_or(t, |w| w.max(t)));
                self.accepted
                    .push((e.user_id.clone(), e.timestamp, e.features[0]));
                None
            })
            .collect()
    }

    fn medians(&self, window: f64) -> HashMap<String, (f64, u32)> {
        let mut by_user: HashMap<String, Vec<f32>> = HashMap::new();
        let start = self.watermark.map_or(f64::NEG_INFINITY, |w| w - window);
        for (user, t, s) in &self.accepted {
            if *t > start {
                by_user.entry(user.clone()).or_default().push(*s);
            }
        }
        by_user
            .into_iter()
            .map(|(user, mut s)| {
                s.sort_by(f32::total_cmp);
                let n = s.len();
                let median = if n % 2 == 1 {
                    s[n / 2] as f64
                } else {
                    (s[n / 2 - 1] as f64 + s[n / 2] as f64) / 2.0
                };
                (user, (median, n as u32))
            })
            .collect()
    }
}

/// A batch of `(user, timestamp offset, score)` events and the clock's offset when it arrives.
type RawBatch = (Vec<(u8, i32, i16)>, i32);

fn batches() -> impl Strategy<Value = Vec<RawBatch>> {
    // (user, timestamp offset, score) events in batches, each with a clock offset.
    let event = (0u8..6, -400i32..900, -50i16..50);
    proptest::collection::vec((proptest::collection::vec(event, 0..25), 0i32..600), 1..25)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]
    #[test]
    fn matches_the_naive_reference(batches in batches(), window in 1u16..400) {
        let window = window as f64;
        let mut engine = engine(window);
        let mut reference = Reference::default();
        for (raw, clock) in batches {
            let now = NOW + clock as f64;
            let events: Vec<Event> = raw
                .iter()
                .map(|&(u, t, s)| event(&format!("user-{u}"), NOW + t as f64 / 2.0, s as f32 / 8.0))
                .collect();
            let report = engine.ingest(&events, now).unwrap();
            let expected = reference.ingest(&events, now, window, 300.0);
            let mut got = vec![None; events.len()];
            for r in &report.rejections {
                got[r.index as usize] = Some(r.reason);
            }
            prop_assert_eq!(&got, &expected);
            let medians = reference.medians(window);
            for u in 0..6 {
                let user = format!("user-{u}");
                let m = engine.median(&user);
                let want = medians.get(&user).copied();
                prop_assert_eq!(m.median, want.map(|(median, _)| median), "median of {}", user);
                prop_assert_eq!(m.count, want.map_or(0, |(_, n)| n));
            }
            prop_assert_eq!(engine.stats().users_tracked as usize, medians.len());
        }
    }
}

#[test]
fn advance_moves_the_watermark_forward_only_and_expires() {
    let mut engine = engine(100.0);
    let batch = [event("a", NOW - 50.0, 1.0), event("b", NOW, 2.0)];
    assert_eq!(engine.ingest(&batch, NOW).unwrap().accepted, 2);
    // Another engine of the service saw NOW + 60: a's event (NOW - 50) is now out of its window.
    engine.advance(NOW + 60.0);
    assert_eq!(engine.median("a").median, None);
    assert_eq!(engine.median("b").median, Some(2.0));
    assert_eq!(engine.stats().watermark, Some(NOW + 60.0));
    engine.advance(NOW);
    engine.advance(f64::NAN);
    assert_eq!(engine.stats().watermark, Some(NOW + 60.0), "never lowered");
    let late = engine.ingest(&[event("c", NOW - 40.0, 3.0)], NOW).unwrap();
    assert_eq!(late.rejections[0].reason, RejectionReason::Late);
    assert_eq!(engine.stats().users_tracked, 1);
}

#[test]
fn check_batch_judges_lateness_in_batch_order() {
    let rules = engine(100.0).rules();
    let batch = [
        event("a", NOW, 1.0),
        event("b", NOW - 100.0, 1.0),
        event("c", NOW - 99.0, 1.0),
        event("", NOW, 1.0),
    ];
    let (checked, watermark) = rules.check_batch(&batch, NOW, Some(NOW - 500.0));
    assert_eq!(checked.accepted, vec![0, 2]);
    let reasons: Vec<_> = checked
        .rejections
        .iter()
        .map(|r| (r.index, r.reason))
        .collect();
    use RejectionReason::*;
    assert_eq!(reasons, vec![(1, Late), (3, InvalidUserId)]);
    assert_eq!(watermark, Some(NOW));
}

#[test]
fn a_chunked_snapshot_restores_the_same_state() {
    let mut source = engine(300.0);
    let events: Vec<Event> = (0..500)
        .map(|i| event(&format!("u{}", i % 37), NOW - (i % 200) as f64, i as f32))
        .collect();
    source.ingest(&events, NOW).unwrap();
    let header = source.snapshot_begin();
    let mut chunks = Vec::new();
    while let Some(chunk) = source.snapshot_next(200) {
        chunks.push(chunk);
    }
    assert!(chunks.len() > 5, "small chunks: {}", chunks.len());
    let mut restored = engine(300.0);
    restored.ingest(&[event("gone", NOW, 1.0)], NOW).unwrap();
    restored.restore_begin(&header).unwrap();
    for chunk in &chunks {
        restored.restore_next(chunk).unwrap();
    }
    restored.restore_end();
    assert_eq!(restored.stats(), source.stats());
    for u in (0..37).map(|i| format!("u{i}")).chain(["gone".to_string()]) {
        assert_eq!(restored.median(&u), source.median(&u), "{u}");
    }
    assert!(matches!(
        restored.restore_next(b"EDGEUSRS\x04\x00\x00\x00\xff"),
        Err(SnapshotError::Corrupt(_))
    ));
    assert_eq!(
        restored.restore_next(&header),
        Err(SnapshotError::NotASnapshot)
    );
}

#[test]
fn with_a_capacity_new_users_are_refused_first_and_held_ones_last() {
    use edgescore_engine::capacity::{EVENT_BYTES, USER_BYTES};
    let mut engine = engine(300.0);
    // Room for ten users; new ones stop at nine tenths.
    engine.set_capacity(10 * USER_BYTES);
    let users: Vec<Event> = (0..12).map(|i| event(&format!("u{i}"), NOW, 1.0)).collect();
    let report = engine.ingest(&users, NOW).unwrap();
    assert_eq!(report.accepted, 9);
    let refused: Vec<u32> = report.rejections.iter().map(|r| r.index).collect();
    assert_eq!(refused, [9, 10, 11]);
    assert!(
        report
            .rejections
            .iter()
            .all(|r| r.reason == RejectionReason::Capacity)
    );
    assert!(
        report.rejections[0]
            .message
            .starts_with("user_id: this shard holds as many users")
    );
    // Held users still get in, until the budget is used.
    let room = (USER_BYTES / EVENT_BYTES) as usize;
    let more: Vec<Event> = (0..room + 5).map(|i| event("u0", NOW, i as f32)).collect();
    let report = engine.ingest(&more, NOW).unwrap();
    assert_eq!(report.accepted as usize, room);
    assert!(
        report.rejections[0]
            .message
            .starts_with("capacity: this shard's memory is full")
    );
    // Full: less room is left than one more event takes.
    let budget = 10 * USER_BYTES;
    let full_permille = 1000 * (budget - EVENT_BYTES) / budget;
    assert!(
        engine.fill_permille() as u64 >= full_permille,
        "{} < {full_permille}",
        engine.fill_permille()
    );
    assert_eq!(rejected(&engine.stats(), RejectionReason::Capacity), 3 + 5);
    // Expiry frees room: a later watermark drops every event, and new users get in again.
    engine.advance(NOW + 400.0);
    assert_eq!(engine.fill_permille(), 0);
    assert_eq!(
        engine
            .ingest(&[event("new", NOW + 400.0, 1.0)], NOW + 400.0)
            .unwrap()
            .accepted,
        1
    );
}
