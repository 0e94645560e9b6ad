//! The reward model the model-based estimators (DM, DR and its variants) need: a logistic
//! regression per position on the context joined with the item's features, cross-fitted so
//! that no round is scored by a model that saw it.
//!
//! Written here rather than taken from a crate: it is a few dozen lines of Newton's method on
//! a small dense problem, and the crates that offer it (linfa) bring a large dependency tree.

use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::log::BanditLog;

/// L2-regularised logistic regression (the intercept is not penalised), fitted by Newton's
/// method with a backtracking line search.
#[derive(Debug, Clone, Default)]
pub struct LogisticRegression {
    /// One weight per feature.
    pub weights: Vec<f64>,
    /// The bias.
    pub intercept: f64,
}

impl LogisticRegression {
    /// Fits on rows `x` and 0/1 (or fractional) targets `y`; `c` is the inverse strength of the
    /// L2 penalty on the summed log-loss (scikit-learn's `C`).
    pub fn fit(x: &[Vec<f64>], y: &[f64], c: f64) -> Self {
        Self::fit_weighted(x, y, None, c)
    }

    /// As [`fit`](Self::fit) with a weight per row (inverse propensities, to fit a model of
    /// what users would do under another policy than the one that logged them).
    pub fn fit_weighted(x: &[Vec<f64>], y: &[f64], weights: Option<&[f64]>, c: f64) -> Self {
        let d = x.first().map_or(0, Vec::len);
        let weight = |i: usize| weights.map_or(1.0, |w| w[i]);
        let mut beta = vec![0.0; d + 1]; // the intercept last
        let total_w: f64 = (0..y.len()).map(weight).sum();
        let mean_y = ((0..y.len()).map(|i| weight(i) * y[i]).sum::<f64>()
            / total_w.max(f64::MIN_POSITIVE))
        .clamp(1e-6, 1.0 - 1e-6);
        beta[d] = (mean_y / (1.0 - mean_y)).ln();
        let objective = |beta: &[f64]| -> f64 {
            let mut loss = 0.0;
            for (i, (row, &t)) in x.iter().zip(y).enumerate() {
                let z = dot(row, &beta[..d]) + beta[d];
                loss += weight(i) * (softplus(z) - t * z);
            }
            loss + beta[..d].iter().map(|w| w * w).sum::<f64>() / (2.0 * c)
        };
        let mut current = objective(&beta);
        for _ in 0..100 {
            let mut grad = vec![0.0; d + 1];
            let mut hess = Mat::<f64>::zeros(d + 1, d + 1);
            let mut nonzero: Vec<(usize, f64)> = Vec::with_capacity(d + 1);
            for (n, (row, &t)) in x.iter().zip(y).enumerate() {
                let z = dot(row, &beta[..d]) + beta[d];
                let p = sigmoid(z);
                let w = weight(n);
                let h = w * p * (1.0 - p);
                // Only the non-zero features (one-hot rows are sparse), the intercept last.
                nonzero.clear();
                nonzero.extend(
                    row.iter()
                        .enumerate()
                        .filter(|(_, v)| **v != 0.0)
                        .map(|(i, v)| (i, *v)),
                );
                nonzero.push((d, 1.0));
                for (a, &(i, xi)) in nonzero.iter().enumerate() {
                    grad[i] += w * (p - t) * xi;
                    for &(j, xj) in &nonzero[..=a] {
                        hess[(i.max(j), i.min(j))] += h * xi * xj;
                    }
                }
            }
            for i in 0..=d {
                for j in 0..i {
                    hess[(j, i)] = hess[(i, j)];
                }
            }
            for i in 0..d {
                grad[i] += beta[i] / c;
                hess[(i, i)] += 1.0 / c;
            }
            hess[(d, d)] += 1e-9;
            let Ok(llt) = hess.llt(Side::Lower) else {
                break;
            };
            let rhs = Mat::from_fn(d + 1, 1, |i, _| grad[i]);
            let step = llt.solve(&rhs);
            let mut t = 1.0;
            let mut improved = false;
            for _ in 0..30 {
                let trial: Vec<f64> = (0..=d).map(|i| beta[i] - t * step[(i, 0)]).collect();
                let value = objective(&trial);
                if value <= current {
                    let change = (current - value).abs();
                    beta = trial;
                    current = value;
                    improved = change > 1e-12 * current.abs().max(1.0);
                    break;
                }
                t /= 2.0;
            }
            if !improved {
                break;
            }
        }
        LogisticRegression {
            intercept: beta[d],
            weights: beta[..d].to_vec(),
        }
    }

    /// The predicted probability for one row.
    pub fn predict(&self, row: &[f64]) -> f64 {
        sigmoid(dot(row, &self.weights) + self.intercept)
    }
}

/// Options for the reward model.
#[derive(Debug, Clone, Copy)]
pub struct RewardModelConfig {
    /// Inverse L2 strength (scikit-learn's `C`).
    pub c: f64,
    /// Cross-fitting folds (1: fit and predict on all rounds).
    pub folds: usize,
    /// Seed of the fold assignment.
    pub seed: u64,
}

impl Default for RewardModelConfig {
    fn default() -> Self {
        Self {
            c: 100.0,
            folds: 3,
            seed: 12345,
        }
    }
}

/// The features of round `row` paired with `action`: the context, then the item's features.
pub fn pair_features(log: &BanditLog, row: usize, action: usize) -> Vec<f64> {
    let mut f = log.context.get(row).cloned().unwrap_or_default();
    if let Some(a) = log.action_context.get(action) {
        f.extend_from_slice(a);
    }
    f
}

/// Cross-fitted predicted reward of every action at each round's own position:
/// `q[row][action]`. One model per position, as the Open Bandit Pipeline fits them.
pub fn cross_fit(log: &BanditLog, config: RewardModelConfig) -> Vec<Vec<f64>> {
    let n = log.rounds.len();
    let folds = config.folds.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    order.shuffle(&mut StdRng::seed_from_u64(config.seed));
    let mut fold_of = vec![0usize; n];
    for (k, &i) in order.iter().enumerate() {
        fold_of[i] = k * folds / n.max(1);
    }
    let mut q = vec![Vec::new(); n];
    for fold in 0..folds {
        for position in 0..log.len_list.max(1) {
            let train: Vec<usize> = (0..n)
                .filter(|&i| {
                    (folds == 1 || fold_of[i] != fold)
                        && usize::from(log.rounds[i].position) == position
                })
                .collect();
            let x: Vec<Vec<f64>> = train
                .iter()
                .map(|&i| pair_features(log, i, log.rounds[i].action as usize))
                .collect();
            let y: Vec<f64> = train.iter().map(|&i| log.rounds[i].reward).collect();
            let model = LogisticRegression::fit(&x, &y, config.c);
            for i in (0..n)
                .filter(|&i| fold_of[i] == fold && usize::from(log.rounds[i].position) == position)
            {
                q[i] = (0..log.n_actions)
                    .map(|a| model.predict(&pair_features(log, i, a)))
                    .collect();
            }
        }
    }
    q
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

fn softplus(z: f64) -> f64 {
    if z > 30.0 { z } else { z.exp().ln_1p() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    #[test]
    fn logistic_regression_recovers_known_weights() {
        let mut rng = StdRng::seed_from_u64(7);
        let (w, b) = ([1.5, -2.0], -0.5);
        let x: Vec<Vec<f64>> = (0..20_000)
            .map(|_| {
                vec![
                    rng.random::<f64>() * 2.0 - 1.0,
                    rng.random::<f64>() * 2.0 - 1.0,
                ]
            })
            .collect();
        let y: Vec<f64> = x
            .iter()
            .map(|r| f64::from(rng.random::<f64>() < sigmoid(w[0] * r[0] + w[1] * r[1] + b)))
            .collect();
        let model = LogisticRegression::fit(&x, &y, 1e6);
        assert!((model.weights[0] - w[0]).abs() < 0.1, "{model:?}");
        assert!((model.weights[1] - w[1]).abs() < 0.1, "{model:?}");
        assert!((model.intercept - b).abs() < 0.1, "{model:?}");
    }
}
