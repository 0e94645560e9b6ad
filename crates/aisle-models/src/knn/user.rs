//! User-kNN: what similar users had.

use serde::{Deserialize, Serialize};

use super::Similarity;
use crate::sparse::history_weights;
use crate::{Error, FitReport, Forgetting, Forgot, Query, Recommender, Result, TrainData, top_k};

/// User-kNN settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UserKnnConfig {
    /// Neighbours per prediction (default 50).
    pub k: usize,
    /// Similarity measure (default cosine).
    pub similarity: Similarity,
    /// Shrinkage added to the cosine denominator (default 10; not used by Pearson).
    pub shrink: f32,
}

impl Default for UserKnnConfig {
    fn default() -> Self {
        Self {
            k: 50,
            similarity: Similarity::Cosine,
            shrink: 10.0,
        }
    }
}

/// User-based collaborative filtering: the `k` users most similar to the query's history
/// vote with their interactions, `r̂(u, i) = Σ_{v ∈ N(u)} sim(u, v) · r(v, i)`.
///
/// Cosine similarity uses the interaction values with shrinkage. Pearson similarity is
/// computed over co-rated items, each user centred on the mean of all their values:
/// `Σ (r_ui − r̄_u)(r_vi − r̄_v) / (√Σ (r_ui − r̄_u)² · √Σ (r_vi − r̄_v)²)`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct UserKnn {
    config: UserKnnConfig,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    item_indptr: Vec<usize>,
    item_users: Vec<u32>,
    item_values: Vec<f32>,
    user_means: Vec<f32>,
    user_norms: Vec<f32>,
    n_items: usize,
}

impl UserKnn {
    /// An unfitted model.
    pub fn new(config: UserKnnConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }

    fn row(&self, u: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[u as usize], self.indptr[u as usize + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Similarity of the profile `(items, values)` to every user (`exclude` scores 0).
    pub fn similarities(&self, items: &[u32], values: &[f32], exclude: Option<u32>) -> Vec<f32> {
        let n_users = self.user_means.len();
        let mut sims = vec![0f32; n_users];
        match self.config.similarity {
            Similarity::Cosine => {
                let norm = values.iter().map(|v| v * v).sum::<f32>().sqrt();
                for (&i, &a) in items.iter().zip(values) {
                    let Some(range) = self.item_range(i) else {
                        continue;
                    };
                    for p in range {
                        sims[self.item_users[p] as usize] += a * self.item_values[p];
                    }
                }
                for (v, s) in sims.iter_mut().enumerate() {
                    if *s != 0.0 {
                        *s /= norm * self.user_norms[v] + self.config.shrink;
                    }
                }
            }
            Similarity::Pearson => {
                let mean = values.iter().sum::<f32>() / values.len().max(1) as f32;
                let mut cross = vec![0f32; n_users];
                let mut own = vec![0f32; n_users];
                let mut other = vec![0f32; n_users];
                for (&i, &a) in items.iter().zip(values) {
                    let Some(range) = self.item_range(i) else {
                        continue;
                    };
                    let da = a - mean;
                    for p in range {
                        let v = self.item_users[p] as usize;
                        let db = self.item_values[p] - self.user_means[v];
                        cross[v] += da * db;
                        own[v] += da * da;
                        other[v] += db * db;
                    }
                }
                for v in 0..n_users {
                    let denominator = (own[v] * other[v]).sqrt();
                    if denominator > 0.0 {
                        sims[v] = cross[v] / denominator;
                    }
                }
            }
        }
        if let Some(s) = exclude.and_then(|u| sims.get_mut(u as usize)) {
            *s = 0.0;
        }
        sims
    }

    fn item_range(&self, i: u32) -> Option<std::ops::Range<usize>> {
        let i = i as usize;
        (i + 1 < self.item_indptr.len()).then(|| self.item_indptr[i]..self.item_indptr[i + 1])
    }
}

impl Recommender for UserKnn {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.k == 0 {
            return Err(Error::InvalidConfig {
                model: "userknn",
                reason: "k must be at least 1".into(),
            });
        }
        let m = &data.matrix;
        self.indptr = m.indptr().to_vec();
        self.indices = m.indices().to_vec();
        self.values = m.values().to_vec();
        let t = &data.item_users;
        self.item_indptr = t.indptr().to_vec();
        self.item_users = t.indices().to_vec();
        self.item_values = t.values().to_vec();
        self.user_means = (0..m.n_users() as u32)
            .map(|u| {
                let v = m.row(u).1;
                if v.is_empty() {
                    0.0
                } else {
                    v.iter().sum::<f32>() / v.len() as f32
                }
            })
            .collect();
        self.user_norms = (0..m.n_users() as u32)
            .map(|u| m.row(u).1.iter().map(|x| x * x).sum::<f32>().sqrt())
            .collect();
        self.n_items = m.n_items();
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let (items, values): (Vec<u32>, Vec<f32>) = match query.user {
            Some(u) if (u as usize) < self.user_means.len() && !self.row(u).0.is_empty() => {
                let (i, v) = self.row(u);
                (i.to_vec(), v.to_vec())
            }
            _ => history_weights(query.history).into_iter().unzip(),
        };
        if items.is_empty() {
            return;
        }
        let sims = self.similarities(&items, &values, query.user);
        for neighbour in top_k(&sims, self.config.k, |_| true) {
            if neighbour.score <= 0.0 {
                break;
            }
            let (idx, val) = self.row(neighbour.item);
            for (&i, &r) in idx.iter().zip(val) {
                scores[i as usize] += neighbour.score * r;
            }
        }
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    /// Drops the forgotten users' rows, their entries in the item lists, their mean and
    /// norm: a memory-based model holds nothing else of them, and this is what a refit
    /// without them holds.
    fn forget(&mut self, change: &Forgetting<'_>) -> Result<Forgot> {
        let n_users = self.user_means.len();
        let gone = |u: u32| change.is_forgotten(u);
        let mut indptr = Vec::with_capacity(self.indptr.len());
        let (mut indices, mut values) = (Vec::new(), Vec::new());
        indptr.push(0);
        for u in 0..n_users as u32 {
            if !gone(u) {
                let (i, v) = self.row(u);
                indices.extend_from_slice(i);
                values.extend_from_slice(v);
            }
            indptr.push(indices.len());
        }
        let mut item_indptr = Vec::with_capacity(self.item_indptr.len());
        let (mut item_users, mut item_values) = (Vec::new(), Vec::new());
        item_indptr.push(0);
        for i in 0..self.item_indptr.len().saturating_sub(1) {
            for p in self.item_indptr[i]..self.item_indptr[i + 1] {
                if !gone(self.item_users[p]) {
                    item_users.push(self.item_users[p]);
                    item_values.push(self.item_values[p]);
                }
            }
            item_indptr.push(item_users.len());
        }
        for &u in change.users().iter().filter(|&&u| (u as usize) < n_users) {
            self.user_means[u as usize] = 0.0;
            self.user_norms[u as usize] = 0.0;
        }
        (self.indptr, self.indices, self.values) = (indptr, indices, values);
        (self.item_indptr, self.item_users, self.item_values) =
            (item_indptr, item_users, item_values);
        Ok(Forgot::Exactly)
    }
}
