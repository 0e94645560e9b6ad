//! RP3beta (Paudel et al., 2017; as tuned by Dacrema et al., 2019): a three-step random walk
//! user → item → user → item, with item popularity penalised by `beta`.

use serde::{Deserialize, Serialize};

use crate::sparse::SparseRows;
use crate::{Error, FitReport, Forgetting, Forgot, Query, Recommender, Result, TrainData};

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

/// What every row of the walk needs: `deg(u)^-α` per user and `deg(i)` per item.
struct Walk<'a> {
    data: &'a TrainData,
    user_w: Vec<f32>,
    degree: Vec<f32>,
    alpha: f32,
    beta: f32,
}

impl<'a> Walk<'a> {
    fn new(data: &'a TrainData, config: &Rp3BetaConfig) -> Self {
        let alpha = config.alpha;
        Self {
            data,
            user_w: (0..data.n_users() as u32)
                .map(|u| (data.matrix.row(u).0.len().max(1) as f32).powf(-alpha))
                .collect(),
            degree: (0..data.n_items() as u32)
                .map(|i| data.item_users.row(i).0.len() as f32)
                .collect(),
            alpha,
            beta: config.beta,
        }
    }

    /// Row `i` before pruning, into `scratch`.
    fn row(&self, i: usize, scratch: &mut [f32]) {
        let users = self.data.item_users.row(i as u32).0;
        if users.is_empty() {
            return;
        }
        let from = (self.degree[i]).powf(-self.alpha);
        for &u in users {
            let w = from * self.user_w[u as usize];
            for &j in self.data.matrix.row(u).0 {
                scratch[j as usize] += w;
            }
        }
        scratch[i] = 0.0;
        for (j, s) in scratch.iter_mut().enumerate() {
            if *s != 0.0 {
                *s /= self.degree[j].max(1.0).powf(self.beta);
            }
        }
    }
}

/// Scales a kept row to sum 1.
fn normalise(values: &mut [f32]) {
    let sum: f32 = values.iter().sum();
    if sum > 0.0 {
        values.iter_mut().for_each(|v| *v /= sum);
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
        let walk = Walk::new(data, &self.config);
        let mut sim =
            SparseRows::build_top_k(n_items, n_items, self.config.k, |i, s| walk.row(i, s));
        for r in 0..sim.n_rows() {
            let (a, b) = (sim.indptr[r], sim.indptr[r + 1]);
            normalise(&mut sim.values[a..b]);
        }
        self.sim = sim;
        self.n_items = n_items;
        Ok(FitReport::default())
    }

    /// Recomputes, from the data without the forgotten users, the rows of the items they
    /// touched (their degree changed) and of every item that shares a remaining user with
    /// one of those (its walk ends on an item whose degree changed). No other row reads
    /// anything the forgotten users changed, so the rest stay, and the model equals a
    /// refit. Each row is normalised over its kept neighbours, so a row is recomputed
    /// whole rather than merged.
    fn forget(&mut self, change: &Forgetting<'_>) -> Result<Forgot> {
        change.check_items("rp3beta", self.sim.n_rows())?;
        let data = change.after;
        let mut affected = vec![false; data.n_items()];
        for j in change.touched_items() {
            affected[j as usize] = true;
            for &u in data.item_users.row(j).0 {
                for &i in data.matrix.row(u).0 {
                    affected[i as usize] = true;
                }
            }
        }
        let which: Vec<usize> = (0..affected.len()).filter(|&i| affected[i]).collect();
        let walk = Walk::new(data, &self.config);
        let rows =
            SparseRows::top_k_rows(&which, data.n_items(), self.config.k, |i, s| walk.row(i, s));
        let replaced = which
            .into_iter()
            .zip(rows)
            .map(|(i, row)| {
                let (idx, mut val): (Vec<u32>, Vec<f32>) = row.into_iter().unzip();
                normalise(&mut val);
                (i, idx.into_iter().zip(val).collect())
            })
            .collect();
        self.sim.replace_rows(replaced);
        Ok(Forgot::Exactly)
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.sim.score_history(query.history, scores);
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
