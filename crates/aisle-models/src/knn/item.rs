//! Item-kNN: items similar to what the user had.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::sparse::{SparseRows, kept};
use crate::{Error, FitReport, Forgetting, Forgot, Query, Recommender, Result, Scored, TrainData};

/// One similarity row: (neighbour, score) pairs.
type Row = Vec<(u32, f32)>;

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

/// Each item's norm `|r_i|` over its users (every value 1 when `binary`).
fn norms(data: &TrainData, binary: bool) -> Vec<f32> {
    let value = |v: f32| if binary { 1.0 } else { v };
    (0..data.n_items() as u32)
        .map(|i| {
            data.item_users
                .row(i)
                .1
                .iter()
                .map(|&v| value(v) * value(v))
                .sum::<f32>()
                .sqrt()
        })
        .collect()
}

/// Row `i` of the similarity matrix before pruning, into `scratch`.
fn similarity_row(
    data: &TrainData,
    norms: &[f32],
    config: &ItemKnnConfig,
    i: usize,
    scratch: &mut [f32],
) {
    let value = |v: f32| if config.binary { 1.0 } else { v };
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
            *s /= norms[i] * norms[j] + config.shrink;
        }
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
        let n_items = data.n_items();
        let norms = norms(data, self.config.binary);
        let config = &self.config;
        self.sim = SparseRows::build_top_k(n_items, n_items, config.k, |i, scratch| {
            similarity_row(data, &norms, config, i, scratch)
        });
        self.n_items = n_items;
        Ok(FitReport::default())
    }

    /// Recomputes the rows of the items the forgotten users touched (set T) from the data
    /// without them, and merges the others. A row `i` outside T keeps every value but
    /// those of T's items: its co-occurrences are unchanged (no forgotten user had `i`),
    /// and only the norms of T's items shrink, so their similarities to `i` can only
    /// grow. Its new top-k therefore lies in its old kept neighbours plus T, whose values
    /// are read off T's recomputed rows (the matrix is symmetric before pruning, and the
    /// same sums come out in the same order). The cost is |T| rows, not the catalogue, but T
    /// is what the users had, often the popular items whose rows cost the most
    /// (bench/results/forget.md: about a refit's time on a grocery log).
    fn forget(&mut self, change: &Forgetting<'_>) -> Result<Forgot> {
        change.check_items("itemknn", self.sim.n_rows())?;
        let data = change.after;
        let touched = change.touched_items();
        let which: Vec<usize> = touched.iter().map(|&j| j as usize).collect();
        let norms = norms(data, self.config.binary);
        let (config, n) = (&self.config, data.n_items());
        // Each touched row: its kept neighbours, and every positive similarity (for the
        // untouched rows' side of the merge).
        let rows: Vec<(Row, Row)> = which
            .par_iter()
            .map_init(
                || vec![0f32; n],
                |scratch, &j| {
                    scratch.iter_mut().for_each(|x| *x = 0.0);
                    similarity_row(data, &norms, config, j, scratch);
                    let positive = scratch
                        .iter()
                        .enumerate()
                        .filter(|(_, s)| **s > 0.0)
                        .map(|(i, &s)| (i as u32, s))
                        .collect();
                    (kept(scratch, config.k), positive)
                },
            )
            .collect();
        let is_touched = |i: u32| touched.binary_search(&i).is_ok();
        let mut extra: FxHashMap<u32, Row> = FxHashMap::default();
        for (&j, (_, positive)) in touched.iter().zip(&rows) {
            for &(i, s) in positive {
                if !is_touched(i) {
                    extra.entry(i).or_default().push((j, s));
                }
            }
        }
        let mut replaced: Vec<(usize, Row)> = Vec::with_capacity(rows.len() + extra.len());
        for (i, mut candidates) in extra {
            let (idx, val) = self.sim.row(i as usize);
            candidates.extend(
                idx.iter()
                    .zip(val)
                    .filter(|(j, _)| !is_touched(**j))
                    .map(|(&j, &v)| (j, v)),
            );
            candidates.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
            candidates.retain(|&(_, v)| v > 0.0);
            candidates.truncate(config.k);
            replaced.push((i as usize, candidates));
        }
        replaced.extend(which.into_iter().zip(rows.into_iter().map(|(k, _)| k)));
        self.sim.replace_rows(replaced);
        Ok(Forgot::Exactly)
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
