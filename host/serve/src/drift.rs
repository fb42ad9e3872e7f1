//! Feature drift of the active model: rolling per-feature means over the last N scored events,
//! compared with the manifest's baseline means. A feature whose relative deviation
//! `|mean - baseline| / |baseline|` exceeds the threshold is drifting; entering and leaving drift
//! is logged once each, not per event. Signals are raised only over a full window.

use serde::Serialize;

#[derive(Debug, Clone, Copy)]
pub struct DriftConfig {
    /// Scored events the rolling means cover.
    pub window_events: usize,
    /// Relative deviation from the baseline mean above which a feature drifts.
    pub threshold: f64,
}

/// The rolling window: a ring of the last N rows and each feature's running sum.
#[derive(Debug)]
pub struct Drift {
    config: DriftConfig,
    model_version: String,
    names: Vec<String>,
    baseline: Vec<f64>,
    ring: Vec<f32>,
    next: usize,
    filled: usize,
    sums: Vec<f64>,
    observed: u64,
    drifting: Vec<bool>,
}

/// One feature in `GET /drift`.
#[derive(Debug, Clone, Serialize)]
pub struct FeatureDrift {
    pub feature: String,
    pub baseline_mean: f64,
    pub rolling_mean: Option<f64>,
    pub relative_deviation: Option<f64>,
    pub drifting: bool,
}

/// `GET /drift`.
#[derive(Debug, Clone, Serialize)]
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
    /// `names` and `baseline` in input order; an empty baseline disables the detector.
    pub fn new(
        config: DriftConfig,
        model_version: String,
        names: Vec<String>,
        baseline: Vec<f64>,
    ) -> Drift {
        let width = baseline.len();
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
        self.baseline.len()
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
            let drifting = self.deviation(i).is_some_and(|d| d > self.config.threshold);
            if drifting != self.drifting[i] {
                self.drifting[i] = drifting;
                let (mean, baseline) = (self.mean(i).unwrap_or(f64::NAN), self.baseline[i]);
                if drifting {
                    tracing::warn!(
                        feature = self.names[i],
                        model_version,
                        rolling_mean = mean,
                        baseline_mean = baseline,
                        threshold = self.config.threshold,
                        "feature drift: entered"
                    );
                } else {
                    tracing::info!(
                        feature = self.names[i],
                        model_version,
                        rolling_mean = mean,
                        baseline_mean = baseline,
                        "feature drift: cleared"
                    );
                }
            }
        }
    }

    fn mean(&self, i: usize) -> Option<f64> {
        (self.filled > 0).then(|| self.sums[i] / self.filled as f64)
    }

    fn deviation(&self, i: usize) -> Option<f64> {
        let baseline = self.baseline[i];
        let mean = self.mean(i)?;
        Some(if baseline == 0.0 {
            mean.abs()
        } else {
            (mean - baseline).abs() / baseline.abs()
        })
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
                    baseline_mean: self.baseline[i],
                    rolling_mean: self.mean(i),
                    relative_deviation: self.deviation(i),
                    drifting: self.drifting[i],
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drift() -> Drift {
        let config = DriftConfig {
            window_events: 4,
            threshold: 0.2,
        };
        Drift::new(
            config,
            "1".into(),
            vec!["a".into(), "b".into()],
            vec![1.0, 2.0],
        )
    }

    #[test]
    fn raised_over_a_full_window_and_cleared_when_traffic_returns() {
        let mut d = drift();
        d.observe(&[1.0, 2.0, 5.0, 2.0, 5.0, 2.0]);
        assert!(!d.is_drifting(), "not before the window is full");
        d.observe(&[5.0, 2.0]);
        let r = d.report();
        assert_eq!(r.features[0].rolling_mean, Some(4.0));
        assert_eq!(r.features[0].relative_deviation, Some(3.0));
        assert!(r.features[0].drifting && !r.features[1].drifting);
        // Four baseline-like rows push every shifted one out of the ring.
        d.observe(&[1.1, 2.0, 0.9, 2.0, 1.0, 2.1, 1.0, 1.9]);
        let r = d.report();
        assert!(!r.drifting, "{r:?}");
        assert!((r.features[0].rolling_mean.unwrap() - 1.0).abs() < 1e-9);
        assert_eq!(r.events_observed, 8);
        assert_eq!(r.events_in_window, 4);
    }
}
