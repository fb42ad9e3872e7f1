//! `--verify`: a sample of users' medians asked of the server, and each computed again from what
//! was sent, scored here by the same component.

use std::collections::HashMap;

use anyhow::{Context, Result};
use edgescore_runtime::Scorer;
use serde::{Deserialize, Serialize};

use super::LoadgenArgs;
use super::stats::{median, same_median};

/// How many users' medians were checked, and how many differed.
#[derive(Serialize)]
pub struct Verified {
    pub users_checked: u32,
    pub mismatches: u32,
}

#[derive(Deserialize)]
struct MedianAnswer {
    median: Option<f64>,
    count: u32,
    window_seconds: f64,
}

/// Asks the server for a sample of users' medians and recomputes each from what was sent.
pub async fn verify(
    args: &LoadgenArgs,
    client: &reqwest::Client,
    base: &str,
    record: &HashMap<String, Vec<(f64, Vec<f32>)>>,
) -> Result<Verified> {
    let chosen = args.model.choose()?;
    let runtime = args.runtime.runtime()?;
    let mut model = Scorer::new(&runtime, &chosen.onnx).context(chosen.label.clone())?;
    let watermark = record
        .values()
        .flatten()
        .map(|(t, _)| *t)
        .fold(f64::MIN, f64::max);
    let mut users: Vec<&String> = record.keys().collect();
    users.sort();
    fastrand::Rng::with_seed(args.seed).shuffle(&mut users);
    let mut checked = 0;
    let mut mismatches = 0;
    for user in users.into_iter().take(args.verify as usize) {
        let answer: MedianAnswer = client
            .get(format!("{base}/users/{user}/median"))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        let cutoff = watermark - answer.window_seconds;
        let rows: Vec<f32> = record[user]
            .iter()
            .filter(|(t, _)| *t > cutoff)
            .flat_map(|(_, f)| f.iter().copied())
            .collect();
        let scores = if rows.is_empty() {
            Vec::new()
        } else {
            model.score(&rows)?
        };
        let expected = (scores.len() as u32, median(scores));
        if !same_median(expected.1, answer.median) || expected.0 != answer.count {
            mismatches += 1;
            eprintln!(
                "verify: {user}: server median {:?} over {} events, expected {:?} over {}",
                answer.median, answer.count, expected.1, expected.0
            );
        }
        checked += 1;
    }
    Ok(Verified {
        users_checked: checked,
        mismatches,
    })
}
