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
use rayon::prelude::*;

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

/// Recall@10 against the exact scan that the default number of probes is calibrated to
/// reach on a sample of the model's own queries: issue 19's serving target is 0.95, and a
/// 200-query estimate is good to about ±0.015, hence the margin.
pub const CALIBRATED_RECALL: f64 = 0.96;
/// Queries sampled for that calibration.
const CALIBRATION_QUERIES: usize = 200;

/// Extra candidates fetched beyond `k + excluded`, so that a few items the request's
/// exclusions remove do not leave the list short.
const SLACK: usize = 16;
/// Largest head (items of largest norm scanned exactly by every request) calibration tries.
const HEAD_MAX: usize = 8192;

/// An approximate top-N index over one fitted model's item factors.
///
/// Items whose factors are all zero (in a real catalogue most of them: items nobody has
/// interacted with yet, 35,498 of the 49,688 in the Instacart sample under ALS) are kept
/// aside, ordered by bias: each scores exactly its bias for every query, so the best of them
/// are known without search. Left in the inverted lists they would all share one list (they
/// are the same point after the transform), which a request either skips, missing them when
/// they belong in the top N, or scans at the cost of most of the catalogue.
///
/// The items of largest norm also form a head, scanned exactly by every request. An inner
/// product favours long vectors, and under ALS the longest are the items bought most. After
/// the transform those items are spread over most of the lists (the lists group directions,
/// not lengths), so without a head the lists alone needed 62 of 262 probes for recall@10 0.97
/// on Complete Journey (bench/results/ann.md as of commit 66a260e) and 134 of 378 on the
/// 10-million-event log (a serve-10m run before the head, not kept). With the 4,096 longest of Complete Journey's 68,509 items
/// with factors as the head, one probe found 0.994 (a trial run; the ann bench reports what
/// calibration picks). Calibration chooses the head's size and the probes together, for the
/// fewest bytes read per request.
pub struct MipsIndex {
    index: VectorIndex,
    /// Rows `[v_i, b_i]` (the model's own, untransformed) of the longest items, longest
    /// first, up to [`HEAD_MAX`]; a request scans the first `head_len`.
    head: Vec<f32>,
    head_items: Vec<u32>,
    head_len: usize,
    with_bias: bool,
    max_norm: f32,
    n_items: usize,
    /// Zero-factor items with their score (the bias, or 0), best first, ties by id.
    constant: Vec<(u32, f32)>,
    /// Lists a request scans by default: the index's rule of thumb until calibrated.
    default_probes: usize,
}

impl MipsIndex {
    /// Indexes `model`'s items and calibrates the default probes on the vectors of a sample
    /// of its first `n_users` users (see [`MipsIndex::calibrate`]); `None` for models whose
    /// score is not an inner product. Deterministic for a seed.
    pub fn build(model: &dyn Recommender, n_users: usize, seed: u64) -> Option<MipsIndex> {
        let factors = model.item_factors()?;
        let mut index = Self::from_factors(&factors, seed);
        // Every other stride's user: a sample spread over the ids, not the first ones.
        let stride = (n_users / CALIBRATION_QUERIES).max(1);
        let queries: Vec<Vec<f32>> = (stride / 2..n_users)
            .step_by(stride)
            .filter_map(|user| {
                model.query_factors(&Query {
                    user: Some(user as u32),
                    ..Query::default()
                })
            })
            .collect();
        index.calibrate(&queries, CALIBRATED_RECALL);
        Some(index)
    }

    /// Sets the head's size and the default probes to the pair that reads the fewest bytes
    /// per request among those whose top 10 holds `target` of the exact top 10 over
    /// `queries`: for each head size (none, then 256 items doubling to [`HEAD_MAX`]) the
    /// fewest probes that reach the target.
    ///
    /// Why: how many lists reach a recall depends on the factors, not only on their count.
    /// The rule of thumb (one list in 14) found 0.98 of the exact top 10 on the synthetic
    /// log (bench/results/ann.md before calibration) and 0.80 on ALS over the real Instacart
    /// sample (tests/ann.rs, which then failed in CI). Measuring is cheap next to training:
    /// one exact scan per sampled query, in parallel.
    pub fn calibrate(&mut self, queries: &[Vec<f32>], target: f64) {
        let lists = self.n_lists();
        if lists == 0 || queries.is_empty() {
            return;
        }
        self.index.set_probes(usize::MAX);
        let exact: Vec<Vec<u32>> = queries
            .par_iter()
            .map(|q| self.search(q, 10).iter().map(|s| s.item).collect())
            .collect();
        let wanted: usize = exact.iter().map(Vec::len).sum();
        let list_len = self.n_indexed() as f64 / lists as f64;
        let mut heads = vec![0];
        let mut h = 256;
        while h <= self.head_items.len() {
            heads.push(h);
            h *= 2;
        }
        let mut best: Option<(f64, usize, usize)> = None;
        for head in heads {
            self.head_len = head;
            let probes = self.fewest_probes(queries, &exact, target * wanted as f64);
            // Bytes read per request: the head's rows in f32, the lists' codes in bytes.
            let cost = 4.0 * head as f64 + probes as f64 * list_len;
            if best.is_none_or(|(c, _, _)| cost < c) {
                best = Some((cost, head, probes));
            }
        }
        let (_, head, probes) = best.expect("at least the empty head was tried");
        self.head_len = head;
        self.default_probes = probes.min(lists);
        self.index.set_probes(self.default_probes);
    }

    /// The fewest probes whose top 10 over `queries` holds `found_target` of `exact`'s items.
    fn fewest_probes(
        &mut self,
        queries: &[Vec<f32>],
        exact: &[Vec<u32>],
        found_target: f64,
    ) -> usize {
        let lists = self.n_lists();
        let mut reaches = |probes: usize| {
            self.index.set_probes(probes);
            let found: usize = queries
                .par_iter()
                .zip(exact)
                .map(|(q, want)| {
                    self.search(q, 10)
                        .iter()
                        .filter(|s| want.contains(&s.item))
                        .count()
                })
                .sum();
            found as f64 >= found_target
        };
        // Up a ×1.5 ladder to the first count that reaches the target, then halving the
        // interval to the one below it that failed (recall grows with the probes).
        let (mut failed, mut probes) = (0usize, 1usize);
        while probes < lists && !reaches(probes) {
            failed = probes;
            probes = (probes * 3 / 2).max(probes + 1).min(lists);
        }
        while probes - failed > 1 {
            let middle = failed + (probes - failed) / 2;
            if reaches(middle) {
                probes = middle;
            } else {
                failed = middle;
            }
        }
        probes
    }

    /// Indexes the given item factors (item `i` is row `i`).
    pub fn from_factors(factors: &InnerProduct<'_>, seed: u64) -> MipsIndex {
        let k = factors.dimension;
        let n = factors.items.len() / k.max(1);
        let row = |i: usize| &factors.items[i * k..(i + 1) * k];
        let bias = |i: usize| factors.bias.map_or(0.0, |b| b[i]);
        let (varying, constant): (Vec<usize>, Vec<usize>) =
            (0..n).partition(|&i| row(i).iter().any(|&x| x != 0.0));
        let mut constant: Vec<(u32, f32)> =
            constant.into_iter().map(|i| (i as u32, bias(i))).collect();
        constant.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        let augmented = |i: usize| {
            let mut a = row(i).to_vec();
            if factors.bias.is_some() {
                a.push(bias(i));
            }
            a
        };
        let norm2 = |a: &[f32]| a.iter().map(|x| x * x).sum::<f32>();
        let mut longest: Vec<(u32, f32)> = varying
            .iter()
            .map(|&i| (i as u32, norm2(&augmented(i))))
            .collect();
        longest.sort_unstable_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        longest.truncate(HEAD_MAX.min(varying.len() / 4));
        let head_items: Vec<u32> = longest.iter().map(|&(i, _)| i).collect();
        let head = head_items
            .iter()
            .flat_map(|&i| augmented(i as usize))
            .collect();
        let max_norm = varying
            .iter()
            .map(|&i| norm2(&augmented(i)).sqrt())
            .fold(0f32, f32::max)
            .max(f32::MIN_POSITIVE);
        let entries = varying
            .iter()
            .map(|&i| {
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
            head,
            head_items,
            head_len: 0,
            with_bias: factors.bias.is_some(),
            max_norm,
            n_items: n,
            default_probes: 0,
            constant,
        }
        .with_rule_of_thumb()
    }

    fn with_rule_of_thumb(mut self) -> Self {
        self.default_probes = self.index.default_probes().min(self.n_lists());
        self.index.set_probes(self.default_probes);
        self
    }

    /// Inverted lists scanned per request (more: higher recall, slower); 0 restores the
    /// default, and more than there are lists makes every request exact.
    pub fn set_probes(&mut self, probes: usize) {
        self.index.set_probes(if probes == 0 {
            self.default_probes
        } else {
            probes
        });
    }

    /// Lists a request scans unless [`MipsIndex::set_probes`] says otherwise: calibrated
    /// by [`MipsIndex::build`], one list in 14 (at least 16) from
    /// [`MipsIndex::from_factors`].
    pub fn default_probes(&self) -> usize {
        self.default_probes
    }

    /// Items searched through the lists; the rest have all-zero factors.
    pub fn n_indexed(&self) -> usize {
        self.index.len()
    }

    /// Items every request scans exactly besides the lists (the longest; see
    /// [`MipsIndex`]): chosen by [`MipsIndex::calibrate`], none before.
    pub fn head_len(&self) -> usize {
        self.head_len
    }

    /// Sets the head's size (at most the longest items kept for it); calibration sets it too.
    pub fn set_head_len(&mut self, items: usize) {
        self.head_len = items.min(self.head_items.len());
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
        let by_score =
            |a: &Scored, b: &Scored| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item));
        // The head, exactly, in the model's own coordinates: `[q, 1] · [v_i, b_i]`.
        let width = query.len() - 1;
        let mut found: Vec<Scored> = self.head[..self.head_len * width]
            .chunks_exact(width)
            .zip(&self.head_items)
            .map(|(row, &item)| Scored {
                item,
                score: aisle_ann::dot(row, &query[..width]),
            })
            .collect();
        if found.len() > k && k > 0 {
            found.select_nth_unstable_by(k - 1, by_score);
        }
        found.truncate(k);
        // The lists (which hold the head's items too) and the zero-factor items.
        let mut in_head: Vec<u32> = found.iter().map(|s| s.item).collect();
        in_head.sort_unstable();
        found.extend(
            self.index
                .search(&query, k)
                .into_iter()
                .filter(|(item, _)| in_head.binary_search(&item.0).is_err())
                .map(|(item, score)| Scored {
                    item: item.0,
                    score: score * self.max_norm,
                }),
        );
        found.extend(
            self.constant
                .iter()
                .take(k)
                .map(|&(item, score)| Scored { item, score }),
        );
        found.sort_unstable_by(by_score);
        found.truncate(k);
        found
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

    /// Every item by `q · v_i + b_i`, best first: what the index must reproduce.
    fn exact_ranking(q: &[f32], items: &[f32], bias: &[f32], k: usize) -> Vec<(u32, f32)> {
        let mut exact: Vec<(u32, f32)> = items
            .chunks_exact(k)
            .zip(bias)
            .enumerate()
            .map(|(i, (v, b))| {
                (
                    i as u32,
                    q.iter().zip(v).map(|(a, b)| a * b).sum::<f32>() + b,
                )
            })
            .collect();
        exact.sort_by(|a, b| b.1.total_cmp(&a.1));
        exact
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
            let exact = exact_ranking(q, &items, &bias, k);
            let found = index.search(q, 5);
            assert_eq!(found.len(), 5);
            for (got, (want, want_score)) in found.iter().zip(&exact) {
                assert_eq!(got.item, *want);
                assert!((got.score - want_score).abs() < 1e-4);
            }
        }
    }

    #[test]
    fn the_head_adds_the_longest_items_exactly_and_calibration_weighs_it() {
        // Factors whose lengths fall off as popularity does: item i scaled by 1 / (1 + i/200).
        let (k, n) = (8, 20_000);
        let (mut items, _) = factors(n, k);
        for (i, row) in items.chunks_exact_mut(k).enumerate() {
            let scale = 1.0 / (1.0 + i as f32 / 200.0);
            row.iter_mut().for_each(|x| *x *= scale);
        }
        let ip = InnerProduct {
            items: &items,
            bias: None,
            dimension: k,
        };
        let mut index = MipsIndex::from_factors(&ip, 5);
        let (queries, _) = factors(400, k);
        let queries: Vec<Vec<f32>> = queries.chunks_exact(k).map(<[f32]>::to_vec).collect();
        let no_bias = vec![0f32; n];
        // A head overlapping the lists gives each item once, with its exact score; with
        // every list scanned the answer is the exact ranking.
        index.head_len = 1024;
        for probes in [1, index.n_lists()] {
            index.set_probes(probes);
            for q in &queries[..20] {
                let found = index.search(q, 10);
                let mut ids: Vec<u32> = found.iter().map(|s| s.item).collect();
                ids.sort_unstable();
                ids.dedup();
                assert_eq!(ids.len(), 10, "no item twice");
                let exact = exact_ranking(q, &items, &no_bias, k);
                for s in &found {
                    assert!(
                        (s.score - exact.iter().find(|e| e.0 == s.item).unwrap().1).abs() < 1e-4
                    );
                }
                if probes == index.n_lists() {
                    let want: Vec<u32> = exact[..10].iter().map(|e| e.0).collect();
                    assert_eq!(found.iter().map(|s| s.item).collect::<Vec<_>>(), want);
                }
            }
        }
        // Calibrated on half the queries, the pair it picks reaches the target on the other
        // half, and here a head pays: the long items hold most top-10 places.
        index.calibrate(&queries[..200], 0.96);
        assert!(index.head_len() > 0, "a head was chosen");
        let (mut hits, mut wanted) = (0, 0);
        for q in &queries[200..] {
            let exact: Vec<u32> = exact_ranking(q, &items, &no_bias, k)[..10]
                .iter()
                .map(|e| e.0)
                .collect();
            wanted += exact.len();
            hits += index
                .search(q, 10)
                .iter()
                .filter(|s| exact.contains(&s.item))
                .count();
        }
        let recall = hits as f64 / wanted as f64;
        assert!(recall >= 0.93, "recall@10 {recall} on held-out queries");
        assert!(index.default_probes() < index.n_lists() / 2);
    }

    #[test]
    fn items_without_factors_are_found_by_their_bias_whatever_the_probes() {
        let (k, n) = (8, 6000);
        let (mut items, mut bias) = factors(n, k);
        // Every third item has no factors, as items nobody has touched have after ALS, and a
        // bias high enough to compete for the top.
        for i in (0..n).step_by(3) {
            items[i * k..(i + 1) * k].fill(0.0);
            bias[i] += 0.02;
        }
        let ip = InnerProduct {
            items: &items,
            bias: Some(&bias),
            dimension: k,
        };
        let mut index = MipsIndex::from_factors(&ip, 3);
        assert_eq!(index.n_indexed(), n - n.div_ceil(3));
        let (queries, _) = factors(20, k);
        for q in queries.chunks_exact(k) {
            // Scaled down so that biases decide much of the top.
            let q: Vec<f32> = q.iter().map(|x| x * 0.05).collect();
            let exact = exact_ranking(&q, &items, &bias, k);
            let expected: Vec<u32> = exact[..20]
                .iter()
                .map(|e| e.0)
                .filter(|i| i % 3 == 0)
                .collect();
            assert!(!expected.is_empty());
            index.set_probes(1);
            let found: Vec<u32> = index.search(&q, 20).iter().map(|s| s.item).collect();
            for item in &expected {
                assert!(found.contains(item), "item {item} without factors missed");
            }
            index.set_probes(index.n_lists());
            let all = index.search(&q, 20);
            for (got, (_, want)) in all.iter().zip(&exact) {
                assert!((got.score - want).abs() < 1e-4, "{got:?} vs {want}");
            }
        }
    }
}
