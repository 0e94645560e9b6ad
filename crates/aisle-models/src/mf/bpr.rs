//! Bayesian personalised ranking (Rendle et al., 2009): SGD on `ln σ(x_ui − x_uj)` over
//! sampled (user, seen item, unseen item) triples, with item biases.

use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use super::{dot, init_factors, score_all};
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// BPR settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BprConfig {
    /// Latent factors (default 64).
    pub factors: usize,
    /// Passes over the interactions (default 50).
    pub epochs: usize,
    /// Learning rate (default 0.05).
    pub learning_rate: f32,
    /// L2 regularisation (default 0.01).
    pub regularization: f32,
    /// Random seed.
    pub seed: u64,
}

impl Default for BprConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            epochs: 50,
            learning_rate: 0.05,
            regularization: 0.01,
            seed: 42,
        }
    }
}

/// The fitted BPR model. Users unknown to it are folded in as the mean of their items' factors.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bpr {
    config: BprConfig,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    item_bias: Vec<f32>,
    n_items: usize,
}

impl Bpr {
    /// An unfitted model.
    pub fn new(config: BprConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

/// One BPR update of a user row and the positive and negative item rows, given
/// `z = σ(−x_uij)`. Compiled for AVX2/FMA and AVX-512 too, picked at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn sgd_step(xu: &mut [f32], xi: &mut [f32], xj: &mut [f32], z: f32, lr: f32, reg: f32) {
    for ((u, i), j) in xu.iter_mut().zip(xi.iter_mut()).zip(xj.iter_mut()) {
        let (w, yi, yj) = (*u, *i, *j);
        *u += lr * (z * (yi - yj) - reg * w);
        *i += lr * (z * w - reg * yi);
        *j += lr * (-z * w - reg * yj);
    }
}

impl Recommender for Bpr {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let k = self.config.factors;
        if k == 0 {
            return Err(Error::InvalidConfig {
                model: "bpr",
                reason: "factors must be at least 1".into(),
            });
        }
        let n_items = data.n_items();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.config.seed);
        // Uniform in ±1/(2k), as `implicit` starts from.
        let scale = 0.5 / k as f32;
        let mut users = init_factors(data.n_users(), k, scale, &mut rng);
        let mut items = init_factors(n_items, k, scale, &mut rng);
        let mut bias = vec![0f32; n_items];
        let m = &data.matrix;
        let nnz = m.nnz();
        if nnz == 0 || n_items < 2 {
            return Err(Error::Fit {
                model: "bpr",
                reason: "needs interactions and at least two items".into(),
            });
        }
        // Owner of every non-zero, to sample (user, item) pairs uniformly.
        let mut owner = Vec::with_capacity(nnz);
        for u in 0..m.n_users() {
            let len = m.indptr()[u + 1] - m.indptr()[u];
            owner.extend(std::iter::repeat_n(u as u32, len));
        }
        let (lr, reg) = (self.config.learning_rate, self.config.regularization);
        let mut losses = Vec::with_capacity(self.config.epochs);
        for _ in 0..self.config.epochs {
            let mut loss = 0f64;
            for _ in 0..nnz {
                let p = rng.random_range(0..nnz);
                let u = owner[p] as usize;
                let i = m.indices()[p] as usize;
                let seen = m.row(u as u32).0;
                let j = loop {
                    let j = rng.random_range(0..n_items as u32);
                    if seen.binary_search(&j).is_err() {
                        break j as usize;
                    }
                    if seen.len() >= n_items {
                        break i;
                    }
                };
                if j == i {
                    continue;
                }
                let xu = &mut users[u * k..(u + 1) * k];
                let [xi, xj] = items
                    .get_disjoint_mut([i * k..(i + 1) * k, j * k..(j + 1) * k])
                    .expect("i != j, both rows in range");
                let x = bias[i] - bias[j] + dot(xu, xi) - dot(xu, xj);
                let z = 1.0 / (1.0 + x.exp());
                loss += f64::from((1.0 + (-x).exp()).ln());
                sgd_step(xu, xi, xj, z, lr, reg);
                bias[i] += lr * (z - reg * bias[i]);
                bias[j] += lr * (-z - reg * bias[j]);
            }
            losses.push(loss / nnz as f64);
        }
        self.user_factors = users;
        self.item_factors = items;
        self.item_bias = bias;
        self.n_items = n_items;
        Ok(FitReport {
            loss_curve: losses,
            ..FitReport::default()
        })
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let k = self.config.factors;
        let user: Vec<f32> = match query.user {
            Some(u) if (u as usize + 1) * k <= self.user_factors.len() => {
                self.user_factors[u as usize * k..(u as usize + 1) * k].to_vec()
            }
            _ => {
                let mut v = vec![0f32; k];
                let known: Vec<u32> = query
                    .history
                    .iter()
                    .copied()
                    .filter(|&i| (i as usize) < self.n_items)
                    .collect();
                for &i in &known {
                    let row = &self.item_factors[i as usize * k..(i as usize + 1) * k];
                    v.iter_mut()
                        .zip(row)
                        .for_each(|(a, b)| *a += b / known.len() as f32);
                }
                v
            }
        };
        score_all(&user, &self.item_factors, k, scores);
        scores
            .iter_mut()
            .zip(&self.item_bias)
            .for_each(|(s, b)| *s += b);
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
