//! PureSVD (Cremonesi, Koren & Turrin, 2010): the top singular vectors of the interaction
//! matrix, scoring `x_u V Vᵀ`. The truncated SVD is computed by randomised range finding
//! (Halko, Martinsson & Tropp, 2011) with power iterations, so only k + 10 columns are dense.

use faer::Mat;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::sparse::history_weights;
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// PureSVD settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PureSvdConfig {
    /// Singular vectors kept (default 64).
    pub factors: usize,
    /// Power iterations of the randomised SVD (default 4).
    pub power_iterations: usize,
    /// Random seed.
    pub seed: u64,
}

impl Default for PureSvdConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            power_iterations: 4,
            seed: 42,
        }
    }
}

/// The fitted PureSVD model: item factors `V` (items × factors).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct PureSvd {
    config: PureSvdConfig,
    item_factors: Vec<f32>,
    n_items: usize,
}

impl PureSvd {
    /// The sum of the history's item factors: the query's point in factor space.
    fn profile(&self, query: &Query<'_>) -> Vec<f32> {
        let k = self.config.factors;
        let mut profile = vec![0f32; k];
        for (i, _) in history_weights(query.history) {
            if (i as usize) < self.n_items {
                let row = &self.item_factors[i as usize * k..(i as usize + 1) * k];
                profile.iter_mut().zip(row).for_each(|(p, v)| *p += v);
            }
        }
        profile
    }

    /// An unfitted model.
    pub fn new(config: PureSvdConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

/// Orthonormal basis of the columns of `m` (thin QR).
fn orthonormalize(m: &Mat<f64>) -> Mat<f64> {
    m.qr().compute_thin_Q()
}

impl Recommender for PureSvd {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let k = self.config.factors;
        let (n_users, n_items) = (data.n_users(), data.n_items());
        let width = (k + 10).min(n_users.min(n_items));
        if k == 0 || width == 0 {
            return Err(Error::InvalidConfig {
                model: "puresvd",
                reason: "factors must be at least 1 and the data non-empty".into(),
            });
        }
        let m = &data.matrix;
        // X (users × items, binary) times a dense items × w matrix, and Xᵀ times users × w.
        let x_times = |b: &Mat<f64>| {
            let mut out = Mat::<f64>::zeros(n_users, b.ncols());
            for u in 0..n_users {
                for &i in m.row(u as u32).0 {
                    for c in 0..b.ncols() {
                        out[(u, c)] += b[(i as usize, c)];
                    }
                }
            }
            out
        };
        let xt_times = |b: &Mat<f64>| {
            let mut out = Mat::<f64>::zeros(n_items, b.ncols());
            for u in 0..n_users {
                for &i in m.row(u as u32).0 {
                    for c in 0..b.ncols() {
                        out[(i as usize, c)] += b[(u, c)];
                    }
                }
            }
            out
        };
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.config.seed);
        let omega = Mat::<f64>::from_fn(n_items, width, |_, _| rng.random::<f64>() - 0.5);
        let mut q = orthonormalize(&x_times(&omega));
        for _ in 0..self.config.power_iterations {
            let z = orthonormalize(&xt_times(&q));
            q = orthonormalize(&x_times(&z));
        }
        // B = Qᵀ X is w × items; its right singular vectors are X's.
        let bt = xt_times(&q); // items × w = (Qᵀ X)ᵀ
        let svd = bt.thin_svd().map_err(|e| Error::Fit {
            model: "puresvd",
            reason: format!("SVD did not converge: {e:?}"),
        })?;
        let u = svd.U(); // items × w: the right singular vectors of B, singular values descending
        let k = k.min(u.ncols());
        let mut item_factors = vec![0f32; n_items * k];
        for i in 0..n_items {
            for f in 0..k {
                item_factors[i * k + f] = u[(i, f)] as f32;
            }
        }
        self.config.factors = k;
        self.item_factors = item_factors;
        self.n_items = n_items;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let profile = self.profile(query);
        super::score_all(&profile, &self.item_factors, self.config.factors, scores);
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
        Some(self.profile(query))
    }
}
