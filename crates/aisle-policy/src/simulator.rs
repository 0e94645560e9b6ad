//! A user simulator fitted on logs: clicks follow a position-bias model whose item
//! attractiveness depends on the context, fitted with inverse-propensity weights so that it
//! describes users under any policy, not the one that logged them.
//!
//! A simulator is only as good as its prediction of what another policy would see: before
//! anything is trained in it, [`calibrate`] checks its predicted click rate for the rows of a
//! log made by another behaviour policy against the rate that log observed, and
//! [`Calibration::require`] refuses a simulator that misses by more than the set number of
//! standard errors.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use crate::log::BanditLog;
use crate::reward::LogisticRegression;
use crate::stats::wilson_interval;
use crate::{Error, Result};

/// How the click model is fitted.
#[derive(Debug, Clone)]
pub struct ClickModelConfig {
    /// L2 strengths tried (scikit-learn's `C`); kept is the one whose held-out folds of the
    /// fitting log have the best per-item calibration (the weighted Poisson deviance of
    /// predicted against observed clicks per item): what matters when another policy shows
    /// the items in other proportions, which per-row log-loss does not see.
    pub c_grid: Vec<f64>,
    /// Folds of that cross-validation.
    pub folds: usize,
    /// Clips tried for the normalised importance weights: the largest whose clipped weights
    /// keep at least half the log's effective sample size is used (a few near-zero
    /// propensities would otherwise decide the fit). One value: that clip.
    pub max_weight: f64,
    /// Seed of the folds.
    pub seed: u64,
}

impl Default for ClickModelConfig {
    fn default() -> Self {
        Self {
            c_grid: vec![0.01, 0.1, 1.0, 10.0, 100.0],
            folds: 3,
            max_weight: 0.0,
            seed: 7,
        }
    }
}

/// `P(click | context, item, position)`: a logistic model on the position, the item, the
/// user's affinity to the item and the user's features. With clicks this rare, the logit is
/// close to the log of a position-bias model's `examination(position) x attractiveness`.
#[derive(Debug, Clone, Serialize)]
pub struct ClickModel {
    #[serde(skip)]
    model: LogisticRegression,
    n_actions: usize,
    len_list: usize,
    context_width: usize,
    /// The L2 strength chosen.
    pub c: f64,
    /// The log it was fitted on.
    pub fitted_on: String,
}

impl ClickModel {
    /// Fits on `log`, weighting each round by `(1 / n_actions) / propensity` (the uniform
    /// policy's chance over the logging policy's).
    pub fn fit(log: &BanditLog, config: &ClickModelConfig) -> Result<Self> {
        if log.rounds.is_empty() {
            return Err(Error::Invalid(
                "cannot fit a click model on an empty log".into(),
            ));
        }
        let mut model = Self {
            model: LogisticRegression::default(),
            n_actions: log.n_actions,
            len_list: log.len_list,
            context_width: log.context.first().map_or(0, Vec::len),
            c: 0.0,
            fitted_on: log.source.clone(),
        };
        let x: Vec<Vec<f64>> = (0..log.rounds.len())
            .map(|i| {
                model.features(
                    log,
                    i,
                    log.rounds[i].action as usize,
                    usize::from(log.rounds[i].position),
                )
            })
            .collect();
        let y: Vec<f64> = log.rounds.iter().map(|r| r.reward.min(1.0)).collect();
        let weights = if config.max_weight > 0.0 {
            importance_weights(log, config.max_weight)
        } else {
            [50.0, 20.0, 10.0, 5.0, 2.0, 1.0]
                .iter()
                .map(|&clip| importance_weights(log, clip))
                .find(|w| effective_share(w) >= 0.5)
                .unwrap_or_else(|| importance_weights(log, 1.0))
        };
        // Pick C by cross-validation on this log alone: the held-out log is never looked at.
        let n = x.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.shuffle(&mut StdRng::seed_from_u64(config.seed));
        let folds = config.folds.max(2);
        let mut best = (f64::INFINITY, config.c_grid.first().copied().unwrap_or(1.0));
        for &c in &config.c_grid {
            let mut loss = 0.0;
            for fold in 0..folds {
                let (test, train): (Vec<usize>, Vec<usize>) =
                    (0..n).partition(|&k| k * folds / n == fold);
                let pick = |rows: &[usize]| -> (Vec<Vec<f64>>, Vec<f64>, Vec<f64>) {
                    (
                        rows.iter().map(|&k| x[order[k]].clone()).collect(),
                        rows.iter().map(|&k| y[order[k]]).collect(),
                        rows.iter().map(|&k| weights[order[k]]).collect(),
                    )
                };
                let (tx, ty, tw) = pick(&train);
                let fitted = LogisticRegression::fit_weighted(&tx, &ty, Some(&tw), c);
                let (vx, vy, vw) = pick(&test);
                let mut predicted = vec![0.0; model.n_actions];
                let mut observed = vec![0.0; model.n_actions];
                for (((row, t), w), &k) in vx.iter().zip(&vy).zip(&vw).zip(&test) {
                    let item = log.rounds[order[k]].action as usize;
                    predicted[item] += w * fitted.predict(row);
                    observed[item] += w * t;
                }
                for (p, o) in predicted.iter().zip(&observed) {
                    let p = p.max(1e-12);
                    loss += 2.0 * (if *o > 0.0 { o * (o / p).ln() } else { 0.0 } - (o - p));
                }
            }
            if loss < best.0 {
                best = (loss, c);
            }
        }
        model.c = best.1;
        model.model = LogisticRegression::fit_weighted(&x, &y, Some(&weights), model.c);
        Ok(model)
    }

    fn features(&self, log: &BanditLog, row: usize, action: usize, position: usize) -> Vec<f64> {
        let mut f =
            vec![0.0; self.len_list.saturating_sub(1) + self.n_actions + 1 + self.context_width];
        if position > 0 && position < self.len_list {
            f[position - 1] = 1.0;
        }
        let base = self.len_list.saturating_sub(1);
        if action < self.n_actions {
            f[base + action] = 1.0;
        }
        let affinity = log
            .affinity
            .get(row)
            .and_then(|a| a.get(action))
            .copied()
            .unwrap_or(0.0);
        f[base + self.n_actions] = f64::from(affinity);
        if let Some(context) = log.context.get(row) {
            let start = base + self.n_actions + 1;
            for (slot, v) in f[start..].iter_mut().zip(context) {
                *slot = *v;
            }
        }
        f
    }

    /// The click probability of `action` at `position` for the user of `row` in `log`.
    pub fn click_probability(
        &self,
        log: &BanditLog,
        row: usize,
        action: usize,
        position: usize,
    ) -> f64 {
        self.model
            .predict(&self.features(log, row, action, position))
    }

    /// The mean predicted click probability of the rounds `log` actually served.
    pub fn predicted_rate(&self, log: &BanditLog) -> f64 {
        let total: f64 = (0..log.rounds.len())
            .map(|i| {
                let r = log.rounds[i];
                self.click_probability(log, i, r.action as usize, usize::from(r.position))
            })
            .sum();
        total / log.rounds.len().max(1) as f64
    }
}

/// `(Σw)² / (n Σw²)`: the share of the log's rounds the weighted log is worth.
fn effective_share(w: &[f64]) -> f64 {
    let (s, s2) = w.iter().fold((0.0, 0.0), |(a, b), x| (a + x, b + x * x));
    if s2 == 0.0 {
        0.0
    } else {
        s * s / (s2 * w.len() as f64)
    }
}

/// Normalised, clipped inverse-propensity weights towards the uniform policy.
pub fn importance_weights(log: &BanditLog, max_weight: f64) -> Vec<f64> {
    let raw: Vec<f64> = log
        .rounds
        .iter()
        .map(|r| (1.0 / log.n_actions as f64) / r.pscore)
        .collect();
    let mean = raw.iter().sum::<f64>() / raw.len().max(1) as f64;
    raw.iter().map(|w| (w / mean).min(max_weight)).collect()
}

/// How well a simulator predicted a log it was not fitted on.
#[derive(Debug, Clone, Serialize)]
pub struct Calibration {
    /// The fitting log.
    pub fitted_on: String,
    /// The held-out log of another behaviour policy.
    pub checked_on: String,
    /// Its rounds.
    pub rounds: usize,
    /// Its clicks.
    pub clicks: f64,
    /// The simulator's predicted click rate on those rounds.
    pub predicted: f64,
    /// The observed click rate.
    pub observed: f64,
    /// The observed rate's 95 % Wilson interval.
    pub low: f64,
    /// Upper end of it.
    pub high: f64,
    /// `(predicted - observed) / standard error of observed`.
    pub z: f64,
}

impl Calibration {
    /// Whether the prediction is inside the observed rate's 95 % interval.
    pub fn inside(&self) -> bool {
        self.low <= self.predicted && self.predicted <= self.high
    }

    /// Refuses the simulator when its miss exceeds `max_abs_z` standard errors. 1.96 is the
    /// natural bound: a miss inside it cannot be told apart from the held-out log's own noise,
    /// a miss beyond it means the simulator would mislead whatever is trained in it.
    pub fn require(&self, max_abs_z: f64) -> Result<()> {
        if self.z.abs() <= max_abs_z {
            Ok(())
        } else {
            Err(Error::Invalid(format!(
                "the simulator fitted on {} predicts a click rate of {:.5} on {}, which observed {:.5} \
                 (95% interval {:.5} to {:.5}): a miss of {:.2} standard errors, over the allowed {max_abs_z}; \
                 refit it (more data, another model) before training a policy in it",
                self.fitted_on,
                self.predicted,
                self.checked_on,
                self.observed,
                self.low,
                self.high,
                self.z.abs()
            )))
        }
    }
}

/// Checks `model` against `held_out`, a log it was not fitted on.
pub fn calibrate(model: &ClickModel, held_out: &BanditLog) -> Calibration {
    let n = held_out.rounds.len() as f64;
    let clicks: f64 = held_out.rounds.iter().map(|r| r.reward.min(1.0)).sum();
    let observed = clicks / n.max(1.0);
    let predicted = model.predicted_rate(held_out);
    let (low, high) = wilson_interval(clicks, n, 0.05);
    let se = (observed.max(1.0 / n) * (1.0 - observed) / n.max(1.0)).sqrt();
    Calibration {
        fitted_on: model.fitted_on.clone(),
        checked_on: held_out.source.clone(),
        rounds: held_out.rounds.len(),
        clicks,
        predicted,
        observed,
        low,
        high,
        z: (predicted - observed) / se,
    }
}
