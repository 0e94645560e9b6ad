//! Alternating least squares for implicit feedback (Hu, Koren & Volinsky, 2008), solved with
//! a few conjugate-gradient steps per row (Takács, Pilászy & Tikk, 2011), as in `implicit`.
//!
//! Loss: `Σ_ui c_ui (p_ui − x_u·y_i)² + λ(|X|² + |Y|²)` with `p_ui = 1` and
//! `c_ui = 1 + α r_ui` for observed cells, `p = 0` and `c = 1` for the rest. The dense part
//! `YᵀY` is shared by all rows, so each row costs `O(k² + n_u k)` per CG step.

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{dot, score_all};
use crate::sparse::history_weights;
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// ALS settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlsConfig {
    /// Latent factors (default 64).
    pub factors: usize,
    /// Alternations (default 15).
    pub iterations: usize,
    /// L2 regularisation λ (default 0.01).
    pub regularization: f32,
    /// Confidence scaling α in `c = 1 + α r` (default 10).
    pub alpha: f32,
    /// CG steps per row and iteration (default 3).
    pub cg_steps: usize,
    /// Scale each row's regularisation by its number of observations, `λ (1 + n_u)`, as
    /// Rendle et al. (2022, "Revisiting the performance of iALS") recommend (default true).
    pub frequency_scaled_regularization: bool,
    /// Treat every interaction as 1 before scaling (default true).
    pub binary: bool,
    /// Random seed of the initial factors.
    pub seed: u64,
}

impl Default for AlsConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            iterations: 15,
            regularization: 0.01,
            alpha: 10.0,
            cg_steps: 3,
            frequency_scaled_regularization: true,
            binary: true,
            seed: 42,
        }
    }
}

/// The fitted ALS model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Als {
    config: AlsConfig,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    n_items: usize,
}

impl Als {
    /// The trained user's factors, or the history folded in for anyone else.
    fn user_vector(&self, query: &Query<'_>) -> Vec<f32> {
        let k = self.config.factors;
        match query.user {
            Some(u) if (u as usize + 1) * k <= self.user_factors.len() => {
                self.user_factors[u as usize * k..(u as usize + 1) * k].to_vec()
            }
            _ => self.fold_in(query.history),
        }
    }

    /// An unfitted model.
    pub fn new(config: AlsConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// Row-major user factors.
    pub fn user_factors(&self) -> &[f32] {
        &self.user_factors
    }

    /// Row-major item factors.
    pub fn item_factors(&self) -> &[f32] {
        &self.item_factors
    }
}

/// `YᵀY + λI` for row-major `y` with `k` columns.
///
/// The rows are summed in fixed blocks, in parallel, and the blocks' sums are then added in
/// block order: the same association for any thread count and any run, so a fit is
/// repeatable bit for bit (rayon's `reduce` associates as the work happened to be split).
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn gramian(y: &[f32], k: usize, reg: f32) -> Vec<f32> {
    // At least 1,024 rows a block, at most 256 blocks: the partial sums stay a few MiB.
    let rows = y.len() / k.max(1);
    let block_rows = rows.div_ceil(256).max(1024);
    let partials: Vec<Vec<f32>> = y
        .par_chunks(k * block_rows)
        .map(|block| {
            let mut g = vec![0f32; k * k];
            for row in block.chunks_exact(k) {
                for a in 0..k {
                    let ra = row[a];
                    if ra == 0.0 {
                        continue;
                    }
                    let g_row = &mut g[a * k..(a + 1) * k];
                    for (gv, &rb) in g_row.iter_mut().zip(row) {
                        *gv += ra * rb;
                    }
                }
            }
            g
        })
        .collect();
    let mut g = vec![0f32; k * k];
    for partial in &partials {
        g.iter_mut().zip(partial).for_each(|(x, y)| *x += y);
    }
    for d in 0..k {
        g[d * k + d] += reg;
    }
    g
}

/// Per-thread buffers of the CG solver, so a row solve allocates nothing.
#[derive(Default)]
struct Scratch {
    /// Regularisation of this row beyond the λ already in the shared Gramian.
    extra_reg: f32,
    cells: Vec<(u32, f32)>,
    r: Vec<f32>,
    p: Vec<f32>,
    ap: Vec<f32>,
}

/// A few CG steps on `(YᵀY + λI + Σ_i (c_i − 1) y_i y_iᵀ) x = Σ_i c_i y_i`, from `x`, for
/// the observed `cells` (item, confidence) in `scratch`.
///
/// Compiled for AVX2/FMA and AVX-512 as well, picked at run time: this loop is where ALS
/// spends its time, and the portable baseline (SSE2) is about half as fast.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn cg_solve(x: &mut [f32], gram: &[f32], y: &[f32], k: usize, scratch: &mut Scratch, steps: usize) {
    let Scratch {
        extra_reg,
        cells,
        r,
        p,
        ap,
    } = scratch;
    let extra_reg = *extra_reg;
    r.clear();
    r.resize(k, 0.0);
    ap.clear();
    ap.resize(k, 0.0);
    // r = b − A x
    for a in 0..k {
        r[a] = -dot(&gram[a * k..(a + 1) * k], x) - extra_reg * x[a];
    }
    for &(i, c) in cells.iter() {
        let yi = &y[i as usize * k..(i as usize + 1) * k];
        let coef = c - (c - 1.0) * dot(yi, x);
        r.iter_mut().zip(yi).for_each(|(rv, &yv)| *rv += coef * yv);
    }
    p.clear();
    p.extend_from_slice(r);
    let mut rs_old = dot(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        for a in 0..k {
            ap[a] = dot(&gram[a * k..(a + 1) * k], p) + extra_reg * p[a];
        }
        for &(i, c) in cells.iter() {
            let yi = &y[i as usize * k..(i as usize + 1) * k];
            let coef = (c - 1.0) * dot(yi, p);
            ap.iter_mut().zip(yi).for_each(|(av, &yv)| *av += coef * yv);
        }
        let step = rs_old / dot(p, ap);
        x.iter_mut()
            .zip(p.iter())
            .for_each(|(xv, &pv)| *xv += step * pv);
        r.iter_mut()
            .zip(ap.iter())
            .for_each(|(rv, &av)| *rv -= step * av);
        let rs_new = dot(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        p.iter_mut()
            .zip(r.iter())
            .for_each(|(pv, &rv)| *pv = rv + beta * *pv);
        rs_old = rs_new;
    }
}

impl Als {
    fn confidence(&self, r: f32) -> f32 {
        let r = if self.config.binary { 1.0 } else { r };
        1.0 + self.config.alpha * r
    }

    /// Regularisation of a row with `observed` cells on top of the shared λ.
    fn extra_regularization(&self, observed: usize) -> f32 {
        if self.config.frequency_scaled_regularization {
            self.config.regularization * observed as f32
        } else {
            0.0
        }
    }

    /// Solves every row of `x` against fixed `y`, rows given by `matrix`.
    fn half_step(&self, x: &mut [f32], y: &[f32], matrix: &aisle_features::InteractionMatrix) {
        let k = self.config.factors;
        let gram = gramian(y, k, self.config.regularization);
        x.par_chunks_mut(k)
            .enumerate()
            .for_each_init(Scratch::default, |scratch, (row, xr)| {
                let (idx, val) = matrix.row(row as u32);
                if idx.is_empty() {
                    // Nothing observed: the least-squares solution is the zero vector.
                    xr.iter_mut().for_each(|v| *v = 0.0);
                    return;
                }
                scratch.extra_reg = self.extra_regularization(idx.len());
                scratch.cells.clear();
                scratch
                    .cells
                    .extend(idx.iter().zip(val).map(|(&i, &v)| (i, self.confidence(v))));
                cg_solve(xr, &gram, y, k, scratch, self.config.cg_steps);
            });
    }

    /// Forgets users as the issue of forgetting prescribes for ALS: their factors become
    /// zero (so they take part in no solve and no score), and the factors of every item they
    /// had touched (`touched`) are solved again against the remaining users, whose rows
    /// `item_users` gives (the item × user matrix without the forgotten users). The other
    /// factors stay: this is not a refit, but no factor is fitted to a forgotten user's
    /// interactions any more.
    pub fn forget_users(
        &mut self,
        users: &[u32],
        touched: &[u32],
        item_users: &aisle_features::InteractionMatrix,
    ) -> Result<()> {
        let k = self.config.factors;
        if self.user_factors.is_empty() {
            return Err(Error::Forget {
                model: "als",
                reason: "forgetting needs a fitted model".into(),
            });
        }
        for &u in users {
            if let Some(row) = self
                .user_factors
                .get_mut(u as usize * k..(u as usize + 1) * k)
            {
                row.fill(0.0);
            }
        }
        let gram = gramian(&self.user_factors, k, self.config.regularization);
        // A converged solve: the warm start is the old factor, far from the new optimum.
        let steps = self.config.cg_steps.max(3) * 5;
        let mut scratch = Scratch::default();
        for &i in touched {
            if (i as usize + 1) * k > self.item_factors.len() {
                continue;
            }
            let (idx, val) = item_users.row(i);
            scratch.extra_reg = self.extra_regularization(idx.len());
            scratch.cells.clear();
            scratch
                .cells
                .extend(idx.iter().zip(val).map(|(&u, &v)| (u, self.confidence(v))));
            let row = &mut self.item_factors[i as usize * k..(i as usize + 1) * k];
            if idx.is_empty() {
                row.fill(0.0);
                continue;
            }
            cg_solve(row, &gram, &self.user_factors, k, &mut scratch, steps);
        }
        Ok(())
    }

    /// Folds a history in: solves a user vector against the fixed item factors.
    fn fold_in(&self, history: &[u32]) -> Vec<f32> {
        let k = self.config.factors;
        let gram = gramian(&self.item_factors, k, self.config.regularization);
        let cells: Vec<(u32, f32)> = history_weights(history)
            .into_iter()
            .filter(|&(i, _)| (i as usize) < self.n_items)
            .map(|(i, w)| (i, self.confidence(w)))
            .collect();
        let mut scratch = Scratch {
            extra_reg: self.extra_regularization(cells.len()),
            cells,
            ..Scratch::default()
        };
        let mut x = vec![0f32; k];
        let steps = self.config.cg_steps.max(3) * 3;
        cg_solve(&mut x, &gram, &self.item_factors, k, &mut scratch, steps);
        x
    }
}

impl Recommender for Als {
    fn forget(&mut self, change: &crate::Forgetting<'_>) -> Result<crate::Forgot> {
        self.forget_users(
            change.users(),
            &change.touched_items(),
            &change.after.item_users,
        )?;
        Ok(crate::Forgot::Resolved)
    }

    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let k = self.config.factors;
        if k == 0 || self.config.iterations == 0 {
            return Err(Error::InvalidConfig {
                model: "als",
                reason: "factors and iterations must be at least 1".into(),
            });
        }
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.config.seed);
        // Small positive factors, as `implicit` starts from.
        let mut users: Vec<f32> = (0..data.n_users() * k)
            .map(|_| rng.random::<f32>() * 0.01)
            .collect();
        let mut items: Vec<f32> = (0..data.n_items() * k)
            .map(|_| rng.random::<f32>() * 0.01)
            .collect();
        self.n_items = data.n_items();
        for _ in 0..self.config.iterations {
            self.half_step(&mut users, &items, &data.matrix);
            self.half_step(&mut items, &users, &data.item_users);
        }
        self.user_factors = users;
        self.item_factors = items;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let user = self.user_vector(query);
        score_all(&user, &self.item_factors, self.config.factors, scores);
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    fn item_factors(&self) -> Option<crate::ann::InnerProduct<'_>> {
        Some(crate::ann::InnerProduct {
            items: &self.item_factors,
            bias: None,
            dimension: self.config.factors,
        })
    }

    fn query_factors(&self, query: &Query<'_>) -> Option<Vec<f32>> {
        Some(self.user_vector(query))
    }
}
