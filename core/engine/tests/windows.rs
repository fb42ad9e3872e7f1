//! `Windows` against a plain list of events: users come and go (their slots and index entries
//! are reused), windows grow past one event and shrink back, and every user's count and median
//! match the list's at every step.

use edgescore_engine::window::{MedianSummary, Windows};
use proptest::prelude::*;

fn naive_median(mut scores: Vec<f32>) -> Option<f64> {
    scores.sort_by(f32::total_cmp);
    let n = scores.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(scores[n / 2] as f64),
        _ => Some((scores[n / 2 - 1] as f64 + scores[n / 2] as f64) / 2.0),
    }
}

proptest! {
    #[test]
    fn matches_a_list_of_events(
        ops in proptest::collection::vec((0u8..6, 0usize..5, 0u16..40, -4i8..4), 1..300)
    ) {
        let users = ["a", "b", "c", "user-7", ""];
        let mut windows = Windows::new(10.0);
        let mut list: Vec<(usize, f64, f32)> = Vec::new();
        for (op, user, step, score) in ops {
            let t = step as f64;
            if op == 0 {
                windows.expire();
            } else if windows.cutoff().is_none_or(|cutoff| t > cutoff) {
                // Accepted: the watermark advances, then the event is recorded.
                windows.advance(t);
                windows.insert(users[user], t, score as f32 / 2.0);
                list.push((user, t, score as f32 / 2.0));
            }
            if let (0, Some(cutoff)) = (op, windows.cutoff()) {
                list.retain(|&(_, t, _)| t > cutoff);
            }
            let with_events = (0..users.len()).filter(|&u| list.iter().any(|e| e.0 == u));
            if op == 0 {
                prop_assert_eq!(windows.users(), with_events.count());
            }
            prop_assert_eq!(windows.events(), list.len());
            for (u, id) in users.iter().enumerate() {
                let scores: Vec<f32> = list.iter().filter(|e| e.0 == u).map(|e| e.2).collect();
                let expected = MedianSummary { count: scores.len() as u32, median: naive_median(scores) };
                prop_assert_eq!(windows.median(id), expected);
            }
        }
    }
}
