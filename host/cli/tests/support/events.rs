//! Events with known scores for the durability tests, and the check that windows hold exactly
//! what was acknowledged, with the exact medians.

use std::collections::{BTreeMap, HashMap};

use serde_json::{Value, json};

use super::Served;

pub fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

/// An event: its user, its timestamp, its features.
#[derive(Debug, Clone)]
pub struct Event {
    pub user: String,
    pub timestamp: f64,
    pub features: [f32; 3],
}

impl Event {
    /// The `n`th event of a run: features that differ per event (so every score differs).
    pub fn new(user: String, timestamp: f64, n: u64) -> Event {
        let x = (n % 997) as f32 / 997.0;
        let y = ((n * 7919) % 1009) as f32 / 1009.0;
        Event {
            user,
            timestamp,
            features: [x, y, 1.0 - x * y],
        }
    }

    pub fn json(&self) -> Value {
        json!({"user_id": self.user, "timestamp": self.timestamp, "features": self.features})
    }
}

pub fn body(events: &[Event]) -> String {
    json!({ "events": events.iter().map(Event::json).collect::<Vec<_>>() }).to_string()
}

/// The median as the spec defines it, of `scores`.
pub fn median(mut scores: Vec<f64>) -> Option<f64> {
    scores.sort_by(f64::total_cmp);
    let n = scores.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(scores[n / 2]),
        _ => Some((scores[n / 2 - 1] + scores[n / 2]) / 2.0),
    }
}

/// The scores of `events` as `/predict` gives them (the model the windows were scored with).
pub fn scores(served: &Served, events: &[&Event]) -> Vec<f64> {
    if events.is_empty() {
        return Vec::new();
    }
    let instances: Vec<_> = events.iter().map(|e| e.features.to_vec()).collect();
    let (status, _, answer) =
        served.post("/predict", &json!({ "instances": instances }).to_string());
    assert_eq!(status, 200, "{answer}");
    answer["predictions"]
        .as_array()
        .unwrap()
        .iter()
        // Scores are f32: the JSON's shortest form read back as one.
        .map(|p| p.as_f64().unwrap() as f32 as f64)
        .collect()
}

pub fn user_median(served: &Served, user: &str) -> (u64, Option<f64>) {
    let (status, answer) = served.get(&format!("/users/{user}/median"));
    assert_eq!(status, 200, "{answer}");
    (answer["count"].as_u64().unwrap(), answer["median"].as_f64())
}

/// Checks that every user's window holds exactly `acked` (and, for a user with an answer lost
/// when the process died, possibly that request's events too, all or none), with the exact
/// median of their scores. Returns the events in the windows.
pub fn check_windows(
    served: &Served,
    acked: &BTreeMap<String, Vec<Event>>,
    in_doubt: &HashMap<String, Vec<Event>>,
) -> u64 {
    let mut total = 0;
    for (user, events) in acked {
        let (count, got) = user_median(served, user);
        let doubtful = in_doubt.get(user).map_or(&[][..], Vec::as_slice);
        let mut held: Vec<&Event> = events.iter().collect();
        if count as usize == held.len() + doubtful.len() && !doubtful.is_empty() {
            held.extend(doubtful);
        }
        assert_eq!(
            count as usize,
            held.len(),
            "{user}: {count} events in the window, {} acknowledged ({} in doubt)",
            events.len(),
            doubtful.len()
        );
        let want = median(scores(served, &held));
        // The same events' scores: equal to f32 precision (`/predict` batches them otherwise
        // than ingest did, and the kernels may round the last bit differently).
        let close = match (got, want) {
            (Some(g), Some(w)) => (g - w).abs() <= 1e-6 * w.abs().max(1.0),
            (g, w) => g == w,
        };
        assert!(
            close,
            "{user}: the median after the restart: {got:?}, want {want:?}"
        );
        total += count;
    }
    total
}
