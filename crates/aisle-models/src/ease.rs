//! EASE (Steck, 2019): a closed-form item-item linear model,
//! `B = I − P · diag(1 / diag(P))` with `P = (XᵀX + λI)⁻¹`, zero diagonal.
//!
//! The item × item matrix is dense, so this model is for catalogues of up to some 20,000
//! interacted items (20,000² × 4 bytes = 1.6 GB). Only items with interactions take part.

use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::sparse::history_weights;
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// EASE settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EaseConfig {
    /// L2 regularisation λ (default 500).
    pub lambda: f64,
    /// Treat every interaction as 1 (default true).
    pub binary: bool,
    /// Refuse catalogues with more interacted items than this (default 25,000).
    pub max_items: usize,
}

impl Default for EaseConfig {
    fn default() -> Self {
        Self {
            lambda: 500.0,
            binary: true,
            max_items: 25_000,
        }
    }
}

/// The fitted EASE model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Ease {
    config: EaseConfig,
    /// Dense index of each item, `u32::MAX` for items without interactions.
    dense: Vec<u32>,
    /// Item id of each dense index.
    items: Vec<u32>,
    /// Row-major `B`, dense × dense.
    weights: Vec<f32>,
    /// Row-major `P = (XᵀX + λI)⁻¹`, kept in memory (not in the model file) so that
    /// forgetting users is a rank-one downdate per user instead of a refit; empty after a
    /// load, when forgetting needs a refit.
    #[serde(skip)]
    inverse: Vec<f64>,
}

impl Ease {
    /// An unfitted model.
    pub fn new(config: EaseConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The learnt weight from item `i` to item `j`.
    pub fn weight(&self, i: u32, j: u32) -> f32 {
        let (a, b) = (self.dense[i as usize], self.dense[j as usize]);
        if a == u32::MAX || b == u32::MAX {
            return 0.0;
        }
        self.weights[a as usize * self.items.len() + b as usize]
    }
}

/// `B = I − P · diag(1 / diag(P))` with a zero diagonal, row-major (rows in parallel).
fn weights_of(p: &[f64], n: usize) -> Vec<f32> {
    let diag: Vec<f64> = (0..n).map(|j| p[j * n + j]).collect();
    let mut weights = vec![0f32; n * n];
    weights
        .par_chunks_mut(n.max(1))
        .zip(p.par_chunks(n.max(1)))
        .enumerate()
        .for_each(|(i, (w, row))| {
            for (j, (w, (&pij, &pjj))) in w.iter_mut().zip(row.iter().zip(&diag)).enumerate() {
                if i != j {
                    *w = (-pij / pjj) as f32;
                }
            }
        });
    weights
}

/// Users removed from P per pass over it: the pass costs n² memory traffic whatever the
/// block, the k × k solve and the n²k arithmetic grow with it.
const DOWNDATE_BLOCK: usize = 64;

impl Ease {
    /// Removes users from the model as a refit without them would, given each one's row of
    /// the interaction matrix (items and weights). Removing the rows X (k users) from XᵀX
    /// changes its inverse by the Woodbury identity, P ← P + U (I − XU)⁻¹ Uᵀ with U = PXᵀ:
    /// the rank-one (Sherman-Morrison) downdate of each user, done for a block of users in
    /// one pass over P, O(n²k) against the refit's O(n³). Items left without interactions
    /// stay in the dense set with zero weights (a refit drops them; both score them 0).
    ///
    /// Fails, changing nothing, when the model was loaded from a file (P is not saved).
    pub fn forget_rows(&mut self, rows: &[(&[u32], &[f32])]) -> Result<()> {
        let n = self.items.len();
        if self.inverse.len() != n * n {
            return Err(Error::Forget {
                model: "ease",
                reason: "this model was loaded from a file, which does not keep (XᵀX + λI)⁻¹: refit to forget".into(),
            });
        }
        let users: Vec<Vec<(usize, f64)>> = rows
            .iter()
            .map(|(idx, val)| {
                idx.iter()
                    .zip(val.iter())
                    .filter_map(|(&i, &v)| {
                        let d = *self.dense.get(i as usize)?;
                        let v = if self.config.binary {
                            1.0
                        } else {
                            f64::from(v)
                        };
                        (d != u32::MAX).then_some((d as usize, v))
                    })
                    .collect::<Vec<_>>()
            })
            .filter(|x| !x.is_empty())
            .collect();
        for block in users.chunks(DOWNDATE_BLOCK) {
            downdate(&mut self.inverse, n, block)?;
        }
        self.weights = weights_of(&self.inverse, n);
        Ok(())
    }
}

/// One Woodbury downdate of the row-major n × n inverse `p` by the sparse rows `x`.
fn downdate(p: &mut [f64], n: usize, x: &[Vec<(usize, f64)>]) -> Result<()> {
    let k = x.len();
    // U = P Xᵀ, n × k row-major (P is symmetric: its rows at each user's items).
    let mut u = vec![0f64; n * k];
    for (c, row) in x.iter().enumerate() {
        for &(d, v) in row {
            for (i, &pdi) in p[d * n..(d + 1) * n].iter().enumerate() {
                u[i * k + c] += v * pdi;
            }
        }
    }
    // C = I − X U, symmetric positive definite while λ > 0 (XᵀX without the rows plus λI
    // stays so), and its inverse.
    let c = Mat::from_fn(k, k, |a, b| {
        let xu: f64 = x[a].iter().map(|&(d, v)| v * u[d * k + b]).sum();
        f64::from(u8::from(a == b)) - xu
    });
    let inverse = c
        .llt(Side::Lower)
        .map_err(|e| Error::Fit {
            model: "ease",
            reason: format!(
                "forgetting users left XᵀX + λI singular ({e:?}; cannot happen with λ > 0)"
            ),
        })?
        .inverse();
    let m: Vec<f64> = (0..k * k).map(|i| inverse[(i / k, i % k)]).collect();
    p.par_chunks_mut(n).enumerate().for_each(|(i, row)| {
        // w = U[i, :] C⁻¹, then row i += w Uᵀ.
        let ui = &u[i * k..(i + 1) * k];
        let w: Vec<f64> = (0..k)
            .map(|b| (0..k).map(|a| ui[a] * m[a * k + b]).sum())
            .collect();
        if w.iter().all(|&v| v == 0.0) {
            return;
        }
        for (pij, uj) in row.iter_mut().zip(u.chunks_exact(k)) {
            *pij += w.iter().zip(uj).map(|(a, b)| a * b).sum::<f64>();
        }
    });
    Ok(())
}

impl Recommender for Ease {
    fn forget(&mut self, change: &crate::Forgetting<'_>) -> Result<crate::Forgot> {
        let rows: Vec<(&[u32], &[f32])> = change
            .users()
            .iter()
            .filter(|&&u| (u as usize) < change.before.n_users())
            .map(|&u| change.before.matrix.row(u))
            .collect();
        self.forget_rows(&rows)?;
        Ok(crate::Forgot::UpToRounding)
    }

    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.lambda <= 0.0 {
            return Err(Error::InvalidConfig {
                model: "ease",
                reason: "lambda must be positive".into(),
            });
        }
        let n_items = data.n_items();
        let mut dense = vec![u32::MAX; n_items];
        let mut items = Vec::new();
        for (i, slot) in dense.iter_mut().enumerate() {
            if !data.item_users.row(i as u32).0.is_empty() {
                *slot = items.len() as u32;
                items.push(i as u32);
            }
        }
        let n = items.len();
        if n > self.config.max_items {
            return Err(Error::Fit {
                model: "ease",
                reason: format!(
                    "{n} interacted items need dense {n}×{n} matrices (about {:.1} GiB; the \
                     limit, max_items, is {}): raise max_items if memory allows, or use \
                     itemknn, rp3beta or als, which grow with the interactions instead",
                    // The Gramian and its inverse in f64, and the weights in f32.
                    (n as f64).powi(2) * 20.0 / f64::from(1u32 << 30),
                    self.config.max_items
                ),
            });
        }
        let binary = self.config.binary;
        let mut gram = Mat::<f64>::zeros(n, n);
        for u in 0..data.n_users() as u32 {
            let (idx, val) = data.matrix.row(u);
            for (&i, &a) in idx.iter().zip(val) {
                let a = if binary { 1.0 } else { f64::from(a) };
                let di = dense[i as usize] as usize;
                for (&j, &b) in idx.iter().zip(val) {
                    let b = if binary { 1.0 } else { f64::from(b) };
                    gram[(di, dense[j as usize] as usize)] += a * b;
                }
            }
        }
        for d in 0..n {
            gram[(d, d)] += self.config.lambda;
        }
        let llt = gram.llt(Side::Lower).map_err(|e| Error::Fit {
            model: "ease",
            reason: format!("XᵀX + λI is not positive definite: {e:?}"),
        })?;
        let p = llt.inverse();
        let mut inverse = vec![0f64; n * n];
        for j in 0..n {
            for i in 0..n {
                inverse[i * n + j] = p[(i, j)];
            }
        }
        self.dense = dense;
        self.items = items;
        self.inverse = inverse;
        self.weights = weights_of(&self.inverse, n);
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let n = self.items.len();
        for (i, w) in history_weights(query.history) {
            let Some(&d) = self.dense.get(i as usize) else {
                continue;
            };
            if d == u32::MAX {
                continue;
            }
            let row = &self.weights[d as usize * n..(d as usize + 1) * n];
            for (k, &b) in row.iter().enumerate() {
                scores[self.items[k] as usize] += w.min(1.0) * b;
            }
        }
    }

    fn n_items(&self) -> usize {
        self.dense.len()
    }
}
