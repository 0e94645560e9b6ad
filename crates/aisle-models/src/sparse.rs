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
        let rows = Self::top_k_rows(&(0..n).collect::<Vec<_>>(), width, k, row);
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

    /// The rows `which` as [`SparseRows::build_top_k`] builds them, in parallel, each as
    /// its kept `(neighbour, value)` pairs, best first.
    pub fn top_k_rows(
        which: &[usize],
        width: usize,
        k: usize,
        row: impl Fn(usize, &mut [f32]) + Sync,
    ) -> Vec<Vec<(u32, f32)>> {
        which
            .par_iter()
            .map_init(
                || vec![0f32; width],
                |scratch, &i| {
                    scratch.iter_mut().for_each(|x| *x = 0.0);
                    row(i, scratch);
                    kept(scratch, k)
                },
            )
            .collect()
    }

    /// Replaces the given rows (row index, new contents); every other row stays.
    pub fn replace_rows(&mut self, mut rows: Vec<(usize, Vec<(u32, f32)>)>) {
        rows.sort_unstable_by_key(|(i, _)| *i);
        let mut out = SparseRows {
            indptr: Vec::with_capacity(self.indptr.len()),
            indices: Vec::with_capacity(self.indices.len()),
            values: Vec::with_capacity(self.values.len()),
        };
        out.indptr.push(0);
        let mut next = rows.into_iter().peekable();
        for i in 0..self.n_rows() {
            match next.next_if(|(r, _)| *r == i) {
                Some((_, row)) => {
                    for (j, v) in row {
                        out.indices.push(j);
                        out.values.push(v);
                    }
                }
                None => {
                    let (idx, val) = self.row(i);
                    out.indices.extend_from_slice(idx);
                    out.values.extend_from_slice(val);
                }
            }
            out.indptr.push(out.indices.len());
        }
        *self = out;
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

/// The `k` largest positive values of a dense row, best first (ties to the lower id).
pub fn kept(scores: &[f32], k: usize) -> Vec<(u32, f32)> {
    top_k(scores, k, |_| true)
        .into_iter()
        .filter(|s| s.score > 0.0)
        .map(|s| (s.item, s.score))
        .collect()
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
