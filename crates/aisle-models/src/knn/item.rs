//! Item-kNN: items similar to what the user had.

use serde::{Deserialize, Serialize};

use crate::sparse::SparseRows;
use crate::{Error, FitReport, Query, Recommender, Result, Scored, TrainData};

/// Item-kNN settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ItemKnnConfig {
    /// Neighbours kept per item (default 100).
    pub k: usize,
    /// Shrinkage added to the cosine denominator, damping similarities built on few users
    /// (default 10).
    pub shrink: f32,
    /// Treat every interaction as 1 instead of its kind weight (default true).
    pub binary: bool,
}

impl Default for ItemKnnConfig {
    fn default() -> Self {
        Self {
            k: 100,
            shrink: 10.0,
            binary: true,
        }
    }
}

/// Item-based collaborative filtering with cosine similarity:
/// `sim(i, j) = r_i · r_j / (|r_i| |r_j| + shrink)`, top-k neighbours per item, and
/// `score(j) = Σ_{i in history} sim(i, j)`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ItemKnn {
    config: ItemKnnConfig,
    sim: SparseRows,
    n_items: usize,
}

impl ItemKnn {
    /// An unfitted model.
    pub fn new(config: ItemKnnConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    /// The kept similarity of `i` to `j` (0 when `j` is not among `i`'s neighbours).
    pub fn similarity(&self, i: u32, j: u32) -> f32 {
        let (idx, val) = self.sim.row(i as usize);
        idx.iter().position(|&x| x == j).map_or(0.0, |p| val[p])
    }
}

impl Recommender for ItemKnn {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.k == 0 {
            return Err(Error::InvalidConfig {
                model: "itemknn",
                reason: "k must be at least 1".into(),
            });
        }
        let binary = self.config.binary;
        let value = |v: f32| if binary { 1.0 } else { v };
        let n_items = data.n_items();
        let norms: Vec<f32> = (0..n_items as u32)
            .map(|i| {
                data.item_users
                    .row(i)
                    .1
                    .iter()
                    .map(|&v| value(v) * value(v))
                    .sum::<f32>()
                    .sqrt()
            })
            .collect();
        let shrink = self.config.shrink;
        self.sim = SparseRows::build_top_k(n_items, n_items, self.config.k, |i, scratch| {
            let (users, a) = data.item_users.row(i as u32);
            for (&u, &a) in users.iter().zip(a) {
                let (items, b) = data.matrix.row(u);
                for (&j, &b) in items.iter().zip(b) {
                    scratch[j as usize] += value(a) * value(b);
                }
            }
            scratch[i] = 0.0;
            for (j, s) in scratch.iter_mut().enumerate() {
                if *s != 0.0 {
                    *s /= norms[i] * norms[j] + shrink;
                }
            }
        });
        self.n_items = n_items;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        self.sim.score_history(query.history, scores);
    }

    fn similar_items(&self, item: u32, k: usize) -> Vec<Scored> {
        if item as usize >= self.sim.n_rows() {
            return Vec::new();
        }
        let (idx, val) = self.sim.row(item as usize);
        idx.iter()
            .zip(val)
            .take(k)
            .map(|(&item, &score)| Scored { item, score })
            .collect()
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
