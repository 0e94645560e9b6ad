//! Small sparse helpers: a row-major sparse similarity matrix with top-k rows.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::topk::top_k;

/// Item × item (or user × user) similarities, keeping each row's `k` best neighbours.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SparseRows {
    pub indptr: Vec<usize>,
    pub indices: Vec<u32>,
    pub values: Vec<f32>,
}

impl SparseRows {
    /// Builds `n` rows in parallel; `row(i, scratch)` fills a dense scratch vector of width
    /// `width` with row i's values and returns them; the `k` largest positive ones are kept.
    pub fn build_top_k(
        n: usize,
        width: usize,
        k: usize,
        row: impl Fn(usize, &mut [f32]) + Sync,
    ) -> SparseRows {
        let rows: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || vec![0f32; width],
                |scratch, i| {
                    scratch.iter_mut().for_each(|x| *x = 0.0);
                    row(i, scratch);
                    top_k(scratch, k, |_| true)
                        .into_iter()
                        .filter(|s| s.score > 0.0)
                        .map(|s| (s.item, s.score))
                        .collect()
                },
            )
            .collect();
        let mut out = SparseRows {
            indptr: Vec::with_capacity(n + 1),
            indices: Vec::new(),
            values: Vec::new(),
        };
        out.indptr.push(0);
        for r in rows {
            for (j, v) in r {
                out.indices.push(j);
                out.values.push(v);
            }
            out.indptr.push(out.indices.len());
        }
        out
    }

    /// Row `i`: neighbour ids and values.
    pub fn row(&self, i: usize) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[i], self.indptr[i + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.indptr.len().saturating_sub(1)
    }

    /// Scores of an item-to-item model: `Σ_{i in history} count(i) × row(i)`, into `scores`.
    pub fn score_history(&self, history: &[u32], scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        for (i, w) in history_weights(history) {
            self.add_row(i as usize, w, scores);
        }
    }

    /// Adds `weight × row(i)` into `out`.
    pub fn add_row(&self, i: usize, weight: f32, out: &mut [f32]) {
        if i >= self.n_rows() {
            return;
        }
        let (idx, val) = self.row(i);
        for (&j, &v) in idx.iter().zip(val) {
            out[j as usize] += weight * v;
        }
    }
}

/// Counts of each history item (an item seen twice weighs twice), for item-based scoring.
pub fn history_weights(history: &[u32]) -> Vec<(u32, f32)> {
    let mut sorted = history.to_vec();
    sorted.sort_unstable();
    let mut out: Vec<(u32, f32)> = Vec::with_capacity(sorted.len());
    for i in sorted {
        match out.last_mut() {
            Some((last, w)) if *last == i => *w += 1.0,
            _ => out.push((i, 1.0)),
        }
    }
    out
}
