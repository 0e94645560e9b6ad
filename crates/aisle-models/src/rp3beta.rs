//! RP3beta (Paudel et al., 2017; as tuned by Dacrema et al., 2019): a three-step random walk
//! user → item → user → item, with item popularity penalised by `beta`.

use serde::{Deserialize, Serialize};

use crate::sparse::SparseRows;
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// RP3beta settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rp3BetaConfig {
    /// Exponent on the transition probabilities (default 1).
    pub alpha: f32,
    /// Popularity penalty: similarities to item j are divided by `degree(j)^beta` (default 0.5).
    pub beta: f32,
    /// Neighbours kept per item (default 100).
    pub k: usize,
}

impl Default for Rp3BetaConfig {
    fn default() -> Self {
        Self {
            alpha: 1.0,
            beta: 0.5,
            k: 100,
        }
    }
}

/// `W_ij = deg(i)^-α · Σ_{u ∈ U_i ∩ U_j} deg(u)^-α · deg(j)^-β` over binary interactions,
/// top-k per row, each row scaled to sum 1; `score(j) = Σ_{i in history} W_ij`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Rp3Beta {
    config: Rp3BetaConfig,
    sim: SparseRows,
    n_items: usize,
}

impl Rp3Beta {
    /// An unfitted model.
    pub fn new(config: Rp3BetaConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl Recommender for Rp3Beta {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.k == 0 {
            return Err(Error::InvalidConfig {
                model: "rp3beta",
                reason: "k must be at least 1".into(),
            });
        }
        let n_items = data.n_items();
        let alpha = self.config.alpha;
        let user_w: Vec<f32> = (0..data.n_users() as u32)
            .map(|u| (data.matrix.row(u).0.len().max(1) as f32).powf(-alpha))
            .collect();
        let degree: Vec<f32> = (0..n_items as u32)
            .map(|i| data.item_users.row(i).0.len() as f32)
            .collect();
        let beta = self.config.beta;
        let mut sim = SparseRows::build_top_k(n_items, n_items, self.config.k, |i, scratch| {
            let users = data.item_users.row(i as u32).0;
            if users.is_empty() {
                return;
            }
            let from = (degree[i]).powf(-alpha);
            for &u in users {
                let w = from * user_w[u as usize];
                for &j in data.matrix.row(u).0 {
                    scratch[j as usize] += w;
                }
            }
            scratch[i] = 0.0;
            for (j, s) in scratch.iter_mut().enumerate() {
                if *s != 0.0 {
                    *s /= degree[j].max(1.0).powf(beta);
                }
            }
        });
        for r in 0..sim.n_rows() {
            let (a, b) = (sim.indptr[r], sim.indptr[r + 1]);
            let sum: f32 = sim.values[a..b].iter().sum();
            if sum > 0.0 {
                sim.values[a..b].iter_mut().for_each(|v| *v /= sum);
            }
        }
        self.sim = sim;
        self.n_items = n_items;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.sim.score_history(query.history, scores);
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
