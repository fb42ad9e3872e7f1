//! Latency percentiles kept as plain counters, one per log-scale bucket, for a host whose only
//! state is a key-value store (the Spin app): each request increments one bucket's counter, and
//! `/stats` reads the percentiles back from the bucket counts. Four buckets per doubling: a
//! percentile is reported as its bucket's upper bound, at most 19% above the true value.

use serde::Serialize;

const PER_DOUBLING: f64 = 4.0;
/// Buckets cover 1 µs to 2^30 µs (~18 min); longer is counted in the last one.
pub const BUCKETS: u32 = 30 * PER_DOUBLING as u32 + 1;

/// The bucket a latency of `micros` falls in.
pub fn bucket_of(micros: u64) -> u32 {
    let exact = (micros.max(1) as f64).log2() * PER_DOUBLING;
    (exact.floor() as u32).min(BUCKETS - 1)
}

/// The largest latency in `bucket`, in seconds.
pub fn upper_seconds(bucket: u32) -> f64 {
    2f64.powf(f64::from(bucket + 1) / PER_DOUBLING) / 1e6
}

/// Seconds, as the native service's `/stats` gives them (`max` is the top bucket's bound).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LatencySummary {
    pub count: u64,
    pub avg: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

/// Percentiles from `(bucket, count)` pairs (any order) and the exact sum of the latencies.
pub fn summarize(buckets: &[(u32, u64)], sum_seconds: f64) -> LatencySummary {
    let mut sorted: Vec<(u32, u64)> = buckets.iter().copied().filter(|b| b.1 > 0).collect();
    sorted.sort_unstable();
    let count: u64 = sorted.iter().map(|b| b.1).sum();
    if count == 0 {
        return LatencySummary::default();
    }
    let quantile = |q: f64| {
        let rank = ((q * count as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for &(bucket, n) in &sorted {
            seen += n;
            if seen >= rank {
                return upper_seconds(bucket);
            }
        }
        upper_seconds(sorted[sorted.len() - 1].0)
    };
    LatencySummary {
        count,
        avg: sum_seconds / count as f64,
        p50: quantile(0.50),
        p95: quantile(0.95),
        p99: quantile(0.99),
        max: upper_seconds(sorted[sorted.len() - 1].0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// A latency lies in its bucket, whose bound is at most 19% above it.
        #[test]
        fn a_bucket_bounds_its_latencies(micros in 1u64..1_000_000_000) {
            let bound = upper_seconds(bucket_of(micros)) * 1e6;
            prop_assert!(bound >= micros as f64);
            prop_assert!(bound <= micros as f64 * 2f64.powf(0.25) * 1.000_001);
        }

        /// Percentiles from buckets are within one bucket of the exact ones (sorted samples).
        #[test]
        fn percentiles_track_the_exact_ones(
            samples in prop::collection::vec(1u64..10_000_000, 1..400),
        ) {
            let mut counts = std::collections::BTreeMap::new();
            for &s in &samples {
                *counts.entry(bucket_of(s)).or_insert(0u64) += 1;
            }
            let buckets: Vec<(u32, u64)> = counts.into_iter().collect();
            let sum: u64 = samples.iter().sum();
            let summary = summarize(&buckets, sum as f64 / 1e6);
            let mut sorted = samples.clone();
            sorted.sort_unstable();
            for (q, got) in [(0.5, summary.p50), (0.95, summary.p95), (0.99, summary.p99)] {
                let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
                let exact = sorted[rank - 1];
                prop_assert_eq!(got, upper_seconds(bucket_of(exact)));
            }
            prop_assert_eq!(summary.count, samples.len() as u64);
            prop_assert!(summary.p50 <= summary.p95 && summary.p95 <= summary.p99);
            prop_assert_eq!(summary.max, upper_seconds(bucket_of(sorted[sorted.len() - 1])));
        }
    }
}
