//! Feature drift of the active model: rolling per-feature means over the last N scored events,
//! compared with the manifest's baseline. A feature drifts when its rolling mean has moved from
//! the baseline mean by more than the threshold in baseline standard deviations — the
//! standardized shift `(mean - μ) / σ`. Measured in σ, the signal means the same for every
//! feature, a standardized one with μ = 0 included (a shift relative to μ would explode there).
//! The window's own noise is far below any useful threshold: over N events a mean wanders by
//! about σ / √N (0.03 σ for the default 1,000). Entering and leaving drift is logged once each,
//! not per event. Signals are raised only over a full window.

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct DriftConfig {
    /// Scored events the rolling means cover.
    pub window_events: usize,
    /// Shift of the rolling mean from the baseline mean, in baseline standard deviations, above
    /// which a feature drifts.
    pub threshold: f64,
}

/// A model's features as its training data had them (the manifest's `baseline`), in input order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Baseline {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

/// A standard deviation this small (or zero: a feature constant in the training data) is taken
/// as this, so that any move of such a feature counts as a large shift instead of dividing by 0.
const SMALLEST_STD: f64 = 1e-9;

/// The rolling window: a ring of the last N rows and each feature's running sum.
#[derive(Debug)]
pub struct Drift {
    config: DriftConfig,
    model_version: String,
    names: Vec<String>,
    baseline: Baseline,
    ring: Vec<f32>,
    next: usize,
    filled: usize,
    sums: Vec<f64>,
    observed: u64,
    drifting: Vec<bool>,
}

/// One feature in `GET /drift`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FeatureDrift {
    pub feature: String,
    pub baseline_mean: f64,
    pub baseline_std: f64,
    pub rolling_mean: Option<f64>,
    /// `(rolling_mean - baseline_mean) / baseline_std`.
    pub standardized_shift: Option<f64>,
    pub drifting: bool,
}

/// `GET /drift`.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DriftReport {
    pub model_version: String,
    pub threshold: f64,
    pub window_events: usize,
    /// Events in the window now (signals wait for a full window).
    pub events_in_window: usize,
    pub events_observed: u64,
    pub drifting: bool,
    pub features: Vec<FeatureDrift>,
}

impl Drift {
    /// `names` and `baseline` in input order; an empty baseline (or one whose means and standard
    /// deviations disagree in number) disables the detector.
    pub fn new(
        config: DriftConfig,
        model_version: String,
        names: Vec<String>,
        baseline: Baseline,
    ) -> Drift {
        let baseline = if baseline.mean.len() == baseline.std.len() {
            baseline
        } else {
            Baseline::default()
        };
        let width = baseline.mean.len();
        Drift {
            config,
            model_version,
            names,
            ring: vec![0.0; config.window_events.max(1) * width],
            next: 0,
            filled: 0,
            sums: vec![0.0; width],
            observed: 0,
            drifting: vec![false; width],
            baseline,
        }
    }

    pub fn width(&self) -> usize {
        self.baseline.mean.len()
    }

    /// Takes scored rows (row-major, the model's width); logs features entering or leaving drift.
    pub fn observe(&mut self, rows: &[f32]) {
        let model_version = self.model_version.as_str();
        let width = self.width();
        if width == 0 || !rows.len().is_multiple_of(width) {
            return;
        }
        let capacity = self.ring.len() / width;
        for row in rows.chunks_exact(width) {
            let slot = &mut self.ring[self.next * width..(self.next + 1) * width];
            for (i, (&new, old)) in row.iter().zip(slot.iter_mut()).enumerate() {
                if self.filled == capacity {
                    self.sums[i] -= *old as f64;
                }
                self.sums[i] += new as f64;
                *old = new;
            }
            self.next = (self.next + 1) % capacity;
            self.filled = (self.filled + 1).min(capacity);
            self.observed += 1;
        }
        if self.filled < capacity {
            return;
        }
        for i in 0..width {
            let shift = self.shift(i);
            let drifting = shift.is_some_and(|z| z.abs() > self.config.threshold);
            if drifting != self.drifting[i] {
                self.drifting[i] = drifting;
                let mean = self.mean(i).unwrap_or(f64::NAN);
                let baseline_mean = self.baseline.mean[i];
                let shift = shift.unwrap_or(f64::NAN);
                if drifting {
                    tracing::warn!(
                        feature = self.names[i],
                        model_version,
                        rolling_mean = mean,
                        baseline_mean,
                        standardized_shift = shift,
                        threshold = self.config.threshold,
                        "feature drift: entered"
                    );
                } else {
                    tracing::info!(
                        feature = self.names[i],
                        model_version,
                        rolling_mean = mean,
                        baseline_mean,
                        standardized_shift = shift,
                        "feature drift: cleared"
                    );
                }
            }
        }
    }

    fn mean(&self, i: usize) -> Option<f64> {
        (self.filled > 0).then(|| self.sums[i] / self.filled as f64)
    }

    /// The rolling mean's shift from the baseline mean, in baseline standard deviations.
    fn shift(&self, i: usize) -> Option<f64> {
        let mean = self.mean(i)?;
        let std = self.baseline.std[i];
        let std = if std.is_finite() {
            std.max(SMALLEST_STD)
        } else {
            SMALLEST_STD
        };
        Some((mean - self.baseline.mean[i]) / std).filter(|z| z.is_finite())
    }

    /// The drifting features' names.
    pub fn drifting_features(&self) -> Vec<String> {
        (0..self.width())
            .filter(|&i| self.drifting[i])
            .map(|i| self.names[i].clone())
            .collect()
    }

    pub fn is_drifting(&self) -> bool {
        self.drifting.iter().any(|&d| d)
    }

    pub fn report(&self) -> DriftReport {
        DriftReport {
            model_version: self.model_version.clone(),
            threshold: self.config.threshold,
            window_events: self.config.window_events,
            events_in_window: self.filled,
            events_observed: self.observed,
            drifting: self.is_drifting(),
            features: (0..self.width())
                .map(|i| FeatureDrift {
                    feature: self.names[i].clone(),
                    baseline_mean: self.baseline.mean[i],
                    baseline_std: self.baseline.std[i],
                    rolling_mean: self.mean(i),
                    standardized_shift: self.shift(i),
                    drifting: self.drifting[i],
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift(threshold: f64, mean: Vec<f64>, std: Vec<f64>, window_events: usize) -> Drift {
        let names = (0..mean.len()).map(|i| format!("f{i}")).collect();
        let config = DriftConfig {
            window_events,
            threshold,
        };
        Drift::new(config, "1".into(), names, Baseline { mean, std })
    }

    /// Uniform on [-√3, √3): mean 0, standard deviation 1. A fixed sequence (xorshift), so the
    /// test sees the same noise on every machine.
    fn unit_noise(seed: u64) -> impl FnMut() -> f32 {
        let mut x = seed.max(1);
        move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let u = (x >> 11) as f64 / (1u64 << 53) as f64;
            ((u * 2.0 - 1.0) * 3f64.sqrt()) as f32
        }
    }

    #[test]
    fn raised_over_a_full_window_and_cleared_when_traffic_returns() {
        let mut d = drift(0.5, vec![1.0, 2.0], vec![1.0, 2.0], 4);
        d.observe(&[1.0, 2.0, 5.0, 2.0, 5.0, 2.0]);
        assert!(!d.is_drifting(), "not before the window is full");
        d.observe(&[5.0, 2.0]);
        let r = d.report();
        assert_eq!(r.features[0].rolling_mean, Some(4.0));
        assert_eq!(r.features[0].standardized_shift, Some(3.0));
        assert_eq!(r.features[1].standardized_shift, Some(0.0));
        assert!(r.features[0].drifting && !r.features[1].drifting);
        // Four baseline-like rows push every shifted one out of the ring.
        d.observe(&[1.1, 2.0, 0.9, 2.0, 1.0, 2.1, 1.0, 1.9]);
        let r = d.report();
        assert!(!r.drifting, "{r:?}");
        assert!((r.features[0].rolling_mean.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(r.events_observed, 8);
        assert_eq!(r.events_in_window, 4);
    }

    /// A standardized feature (baseline mean 0, std 1) and one whose mean is merely near 0: noise
    /// around the baseline never drifts, a shift of half a standard deviation or more does, in
    /// either direction. (The old rule, |mean - μ| / |μ|, flagged the noise of both.)
    #[test]
    fn a_zero_mean_feature_drifts_on_a_real_shift_and_not_on_noise() {
        let mut d = drift(0.5, vec![0.0, 0.001], vec![1.0, 1.0], 1000);
        let mut noise = unit_noise(7);
        let mut feed = |d: &mut Drift, shift: f32| {
            for _ in 0..1000 {
                d.observe(&[noise() + shift, noise() + shift]);
            }
        };
        let mut old_rule_drifted = 0;
        for round in 0..20 {
            feed(&mut d, 0.0);
            let r = d.report();
            assert!(!r.drifting, "noise drifted in round {round}: {r:?}");
            let mean = r.features[1].rolling_mean.unwrap();
            if (mean - 0.001).abs() / 0.001 > 0.2 {
                old_rule_drifted += 1;
            }
        }
        // The old relative rule calls this noise drift nearly every time.
        assert!(old_rule_drifted >= 15, "{old_rule_drifted} of 20");
        feed(&mut d, 0.6);
        assert_eq!(d.drifting_features(), ["f0", "f1"]);
        let shift = d.report().features[0].standardized_shift.unwrap();
        assert!((shift - 0.6).abs() < 0.15, "{shift}");
        feed(&mut d, 0.0);
        assert!(!d.is_drifting());
        feed(&mut d, -0.6);
        assert_eq!(d.drifting_features(), ["f0", "f1"]);
    }

    /// A feature constant in the training data (σ = 0) drifts as soon as it moves, without a
    /// division by zero; a baseline with more means than deviations disables the detector.
    #[test]
    fn a_constant_feature_and_a_broken_baseline() {
        let mut d = drift(0.5, vec![1.0], vec![0.0], 2);
        d.observe(&[1.0, 1.0]);
        assert!(!d.is_drifting());
        assert_eq!(d.report().features[0].standardized_shift, Some(0.0));
        d.observe(&[1.5, 1.5]);
        assert!(d.is_drifting());

        let mut d = drift(0.5, vec![1.0, 2.0], vec![1.0], 2);
        assert_eq!(d.width(), 0);
        d.observe(&[9.0, 9.0, 9.0, 9.0]);
        assert!(!d.is_drifting());
    }
}
