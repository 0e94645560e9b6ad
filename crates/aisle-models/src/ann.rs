//! Serving the embedding models at catalogue scale: an approximate index over their item
//! factors, so that a top-N request scores a few percent of the catalogue instead of all.
//!
//! ALS, BPR and PureSVD score an item as an inner product, `q · v_i (+ b_i)`. The
//! [`aisle_ann::VectorIndex`] finds nearest unit vectors, so the items are first made
//! unit length without changing the order of any query's scores (the transform of
//! Bachrach et al., RecSys 2014): with `a_i = [v_i, b_i]` and `M` the largest `|a_i|`,
//! item `i` is stored as `[a_i, sqrt(M² − |a_i|²)] / M`, and the query as `[q, 1, 0]`.
//! Then `query · item_i = (q · v_i + b_i) / M` for every item: the same ranking, and the
//! true score is that times `M`.

use aisle_ann::VectorIndex;
use aisle_core::ItemId;

use crate::{Query, RecOptions, Recommender, Scored};

/// Item factors of a model whose score is an inner product.
pub struct InnerProduct<'a> {
    /// Row-major item factors, `dimension` columns.
    pub items: &'a [f32],
    /// Per-item bias added to the product, where the model has one.
    pub bias: Option<&'a [f32]>,
    /// Columns of `items`.
    pub dimension: usize,
}

/// Extra candidates fetched beyond `k + excluded`, so that a few items the request's
/// exclusions remove do not leave the list short.
const SLACK: usize = 16;

/// An approximate top-N index over one fitted model's item factors.
pub struct MipsIndex {
    index: VectorIndex,
    with_bias: bool,
    max_norm: f32,
    n_items: usize,
}

impl MipsIndex {
    /// Indexes `model`'s items; `None` for models whose score is not an inner product.
    /// Deterministic for a seed.
    pub fn build(model: &dyn Recommender, seed: u64) -> Option<MipsIndex> {
        let factors = model.item_factors()?;
        Some(Self::from_factors(&factors, seed))
    }

    /// Indexes the given item factors (item `i` is row `i`).
    pub fn from_factors(factors: &InnerProduct<'_>, seed: u64) -> MipsIndex {
        let k = factors.dimension;
        let n = factors.items.len() / k.max(1);
        let augmented = |i: usize| {
            let mut a = factors.items[i * k..(i + 1) * k].to_vec();
            if let Some(bias) = factors.bias {
                a.push(bias[i]);
            }
            a
        };
        let norm2 = |a: &[f32]| a.iter().map(|x| x * x).sum::<f32>();
        let max_norm = (0..n)
            .map(|i| norm2(&augmented(i)).sqrt())
            .fold(0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let entries = (0..n)
            .map(|i| {
                let mut a = augmented(i);
                let rest = (max_norm * max_norm - norm2(&a)).max(0.0).sqrt();
                a.push(rest);
                a.iter_mut().for_each(|x| *x /= max_norm);
                (ItemId(i as u32), a)
            })
            .collect();
        let dimension = k + usize::from(factors.bias.is_some()) + 1;
        MipsIndex {
            index: VectorIndex::build(dimension, entries, seed),
            with_bias: factors.bias.is_some(),
            max_norm,
            n_items: n,
        }
    }

    /// Inverted lists scanned per request (more: higher recall, slower); 0 is the index's
    /// default, and more than there are lists makes every request exact.
    pub fn set_probes(&mut self, probes: usize) {
        self.index.set_probes(probes);
    }

    /// Number of inverted lists (0 means every request scans every item).
    pub fn n_lists(&self) -> usize {
        self.index.n_lists()
    }

    /// The `k` best items for `query` by the index, without `options.exclude`, with the
    /// model's own scores; `None` where the index cannot answer alone (a model without
    /// factors, or a filter, which could reject most candidates: use
    /// [`crate::recommend`]).
    pub fn recommend(
        &self,
        model: &dyn Recommender,
        query: &Query<'_>,
        k: usize,
        options: &RecOptions<'_>,
    ) -> Option<Vec<Scored>> {
        if options.filter.is_some() {
            return None;
        }
        let q = model.query_factors(query)?;
        let wanted = (k + options.exclude.len() + SLACK).min(self.n_items);
        let excluded: rustc_hash::FxHashSet<u32> = options.exclude.iter().copied().collect();
        let mut found = self.search(&q, wanted);
        found.retain(|s| !excluded.contains(&s.item));
        found.truncate(k);
        Some(found)
    }

    /// The `k` items of highest inner product with the query vector `q` (the model's
    /// [`Recommender::query_factors`]), best first, with their scores.
    pub fn search(&self, q: &[f32], k: usize) -> Vec<Scored> {
        let mut query = q.to_vec();
        if self.with_bias {
            query.push(1.0);
        }
        query.push(0.0);
        self.index
            .search(&query, k)
            .into_iter()
            .map(|(item, score)| Scored {
                item: item.0,
                score: score * self.max_norm,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random factors with varied norms and biases.
    fn factors(n: usize, k: usize) -> (Vec<f32>, Vec<f32>) {
        let mut state = 1u64;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            ((state >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let items = (0..n * k).map(|_| next()).collect();
        let bias = (0..n).map(|_| next()).collect();
        (items, bias)
    }

    #[test]
    fn the_transform_keeps_every_score_and_the_index_finds_the_exact_best() {
        let (k, n) = (8, 6000);
        let (items, bias) = factors(n, k);
        let ip = InnerProduct {
            items: &items,
            bias: Some(&bias),
            dimension: k,
        };
        let mut index = MipsIndex::from_factors(&ip, 3);
        assert!(index.n_lists() > 0, "6000 items use inverted lists");
        // Scanning every list is exact: the transform must not change any ranking.
        index.set_probes(index.n_lists());
        let (queries, _) = factors(20, k);
        for q in queries.chunks_exact(k) {
            let mut exact: Vec<(u32, f32)> = (0..n)
                .map(|i| {
                    let v = &items[i * k..(i + 1) * k];
                    (
                        i as u32,
                        q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() + bias[i],
                    )
                })
                .collect();
            exact.sort_by(|a, b| b.1.total_cmp(&a.1));
            let found = index.search(q, 5);
            assert_eq!(found.len(), 5);
            for (got, (want, want_score)) in found.iter().zip(&exact) {
                assert_eq!(got.item, *want);
                assert!((got.score - want_score).abs() < 1e-4);
            }
        }
    }
}
