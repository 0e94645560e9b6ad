//! Bayesian personalised ranking (Rendle et al., 2009): SGD on `ln σ(x_ui − x_uj)` over
//! sampled (user, seen item, unseen item) triples, with item biases.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use super::{init_factors, score_all};
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// BPR settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BprConfig {
    /// Latent factors (default 64).
    pub factors: usize,
    /// Passes over the interactions (default 50).
    pub epochs: usize,
    /// Learning rate (default 0.05).
    pub learning_rate: f32,
    /// L2 regularisation (default 0.01).
    pub regularization: f32,
    /// Random seed.
    pub seed: u64,
}

impl Default for BprConfig {
    fn default() -> Self {
        Self {
            factors: 64,
            epochs: 50,
            learning_rate: 0.05,
            regularization: 0.01,
            seed: 42,
        }
    }
}

/// The fitted BPR model. Users unknown to it are folded in as the mean of their items' factors.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Bpr {
    config: BprConfig,
    user_factors: Vec<f32>,
    item_factors: Vec<f32>,
    item_bias: Vec<f32>,
    n_items: usize,
}

impl Bpr {
    /// The trained user's factors, or the mean of the history's item factors.
    fn user_vector(&self, query: &Query<'_>) -> Vec<f32> {
        let k = self.config.factors;
        match query.user {
            Some(u) if (u as usize + 1) * k <= self.user_factors.len() => {
                self.user_factors[u as usize * k..(u as usize + 1) * k].to_vec()
            }
            _ => {
                let mut v = vec![0f32; k];
                let known: Vec<u32> = query
                    .history
                    .iter()
                    .copied()
                    .filter(|&i| (i as usize) < self.n_items)
                    .collect();
                for &i in &known {
                    let row = &self.item_factors[i as usize * k..(i as usize + 1) * k];
                    v.iter_mut()
                        .zip(row)
                        .for_each(|(a, b)| *a += b / known.len() as f32);
                }
                v
            }
        }
    }

    /// An unfitted model.
    pub fn new(config: BprConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

/// One BPR update of a user row, the positive and negative item rows and their biases;
/// answers `e^(−x_uij)`, whose `ln(1 + ·)` is the sample's loss (the caller takes logarithms
/// of products, one per many samples). Compiled for AVX2/FMA and AVX-512 too,
/// picked at run time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn bpr_step(
    xu: &mut [f32],
    xi: &mut [f32],
    xj: &mut [f32],
    bias: [&mut f32; 2],
    lr: f32,
    reg: f32,
) -> f32 {
    let [bi, bj] = bias;
    // x_ui − x_uj in one pass: u · (i − j), eight partial sums so that it vectorises.
    let mut acc = [0f32; 8];
    let mut chunks = xu
        .chunks_exact(8)
        .zip(xi.chunks_exact(8).zip(xj.chunks_exact(8)));
    for (u, (i, j)) in &mut chunks {
        for l in 0..8 {
            acc[l] += u[l] * (i[l] - j[l]);
        }
    }
    let tail = xu.len() - xu.len() % 8;
    let rest: f32 = (tail..xu.len()).map(|l| xu[l] * (xi[l] - xj[l])).sum();
    let x = *bi - *bj + acc.iter().sum::<f32>() + rest;
    // z = σ(−x), the gradient's weight, from one exponential.
    let e = (-x).exp();
    let z = e / (1.0 + e);
    for ((u, i), j) in xu.iter_mut().zip(xi.iter_mut()).zip(xj.iter_mut()) {
        let (w, yi, yj) = (*u, *i, *j);
        *u += lr * (z * (yi - yj) - reg * w);
        *i += lr * (z * w - reg * yi);
        *j += lr * (-z * w - reg * yj);
    }
    *bi += lr * (z - reg * *bi);
    *bj += lr * (-z - reg * *bj);
    e
}

/// `parts + 1` boundaries that cut `0..weights.len()` into contiguous ranges of about equal
/// total weight, none of them empty (so every block has rows to own).
fn balanced_cuts(weights: &[usize], parts: usize) -> Vec<usize> {
    let total: usize = weights.iter().sum();
    let mut cuts = vec![0];
    let mut running = 0usize;
    for (index, &w) in weights.iter().enumerate() {
        running += w;
        let block = cuts.len();
        let left = weights.len() - index - 1;
        if block < parts && running * parts >= total * block && left >= parts - block {
            cuts.push(index + 1);
        }
    }
    while cuts.len() < parts {
        // Fewer heavy rows than blocks: split the tail one row at a time.
        let last = *cuts.last().expect("starts with 0");
        cuts.push(last + 1);
    }
    cuts.push(weights.len());
    cuts
}

/// Cuts row-major `rows` (`k` columns) at the row boundaries `cuts` into disjoint slices.
fn split_rows<'a>(mut rows: &'a mut [f32], cuts: &[usize], k: usize) -> Vec<&'a mut [f32]> {
    let mut parts = Vec::with_capacity(cuts.len() - 1);
    for pair in cuts.windows(2) {
        let (head, tail) = rows.split_at_mut((pair[1] - pair[0]) * k);
        parts.push(head);
        rows = tail;
    }
    parts
}

/// One thread's share of a sub-epoch: the user rows of one block, the item rows and biases
/// of another, and the stratum of interactions where both meet, as (user, item row) pairs
/// local to the two blocks: a sample is one random read, where looking it up in the CSR
/// took four (owner, item, row of the item, the user's range), each a likely cache miss.
struct Stratum<'a> {
    users: &'a mut [f32],
    user_start: usize,
    items: &'a mut [f32],
    bias: &'a mut [f32],
    rows: std::ops::Range<usize>,
    pairs: &'a [[u32; 2]],
    seed: u64,
}

impl Recommender for Bpr {
    /// Parallel and deterministic: the stratified SGD of Gemulla et al. (KDD 2011). Users
    /// and items are cut into `T` blocks of equal interaction mass (`T` = the thread
    /// count); each epoch has `T` sub-epochs, and in sub-epoch `s` thread `t` samples only
    /// the interactions of user block `t` with item block `(t + s) mod T`, drawing the
    /// negative item from that item block too. No two threads touch the same row, so
    /// there are no races and no locks, and every thread's sample stream comes from its
    /// own generator seeded by (seed, epoch, sub-epoch, block): a fixed seed and thread
    /// count give the same factors bit for bit. The items are dealt into blocks afresh
    /// each epoch (a seeded shuffle), so that over the epochs every user draws negatives
    /// from the whole catalogue, not only from the blocks that hold their positives.
    /// With one thread it is plain BPR.
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let k = self.config.factors;
        if k == 0 {
            return Err(Error::InvalidConfig {
                model: "bpr",
                reason: "factors must be at least 1".into(),
            });
        }
        let n_items = data.n_items();
        let n_users = data.n_users();
        let mut rng = rand::rngs::StdRng::seed_from_u64(self.config.seed);
        // Uniform in ±1/(2k), as `implicit` starts from.
        let scale = 0.5 / k as f32;
        let mut users = init_factors(n_users, k, scale, &mut rng);
        // Item rows and biases are kept in the order of the epoch's deal: `slot_of[i]` is
        // item i's row, `item_at[row]` the item in a row.
        let mut items = init_factors(n_items, k, scale, &mut rng);
        let mut bias = vec![0f32; n_items];
        let m = &data.matrix;
        let nnz = m.nnz();
        if nnz == 0 || n_items < 2 {
            return Err(Error::Fit {
                model: "bpr",
                reason: "needs interactions and at least two items".into(),
            });
        }
        // Blocks of at least two items, so that a negative can always differ from the positive.
        let blocks = rayon::current_num_threads()
            .min(n_users)
            .min(n_items / 2)
            .max(1);
        let user_mass: Vec<usize> = (0..n_users)
            .map(|u| m.indptr()[u + 1] - m.indptr()[u])
            .collect();
        let mut item_mass = vec![0usize; n_items];
        for &i in m.indices() {
            item_mass[i as usize] += 1;
        }
        let user_cuts = balanced_cuts(&user_mass, blocks);
        let mut seen = SeenFilter::new(nnz);
        for u in 0..n_users {
            for &i in &m.indices()[m.indptr()[u]..m.indptr()[u + 1]] {
                seen.insert(u, i);
            }
        }
        let mut slot_of: Vec<u32> = (0..n_items as u32).collect();
        let mut item_at = slot_of.clone();
        let (mut next_items, mut next_bias) = (vec![0f32; items.len()], vec![0f32; n_items]);
        let mut strata: Vec<Vec<[u32; 2]>> = vec![Vec::new(); blocks * blocks];
        let (lr, reg) = (self.config.learning_rate, self.config.regularization);
        let (indptr, indices) = (m.indptr(), m.indices());
        let mut losses = Vec::with_capacity(self.config.epochs);
        for epoch in 0..self.config.epochs {
            // The epoch's deal: shuffle the rows (one copy of the factors), then cut them
            // into blocks of equal mass.
            let mut deal = rand::rngs::SmallRng::seed_from_u64(mix(self.config.seed, epoch, 0));
            let mut order = item_at.clone();
            if blocks > 1 {
                order.shuffle(&mut deal);
            }
            for (row, &item) in order.iter().enumerate() {
                let old = slot_of[item as usize] as usize;
                next_items[row * k..(row + 1) * k].copy_from_slice(&items[old * k..(old + 1) * k]);
                next_bias[row] = bias[old];
            }
            std::mem::swap(&mut items, &mut next_items);
            std::mem::swap(&mut bias, &mut next_bias);
            item_at = order;
            for (row, &item) in item_at.iter().enumerate() {
                slot_of[item as usize] = row as u32;
            }
            let row_mass: Vec<usize> = item_at.iter().map(|&i| item_mass[i as usize]).collect();
            let item_cuts = balanced_cuts(&row_mass, blocks);
            let mut block_of_row = vec![0u16; n_items];
            for (b, pair) in item_cuts.windows(2).enumerate() {
                block_of_row[pair[0]..pair[1]].fill(b as u16);
            }
            strata.iter_mut().for_each(Vec::clear);
            for (ub, pair) in user_cuts.windows(2).enumerate() {
                for u in pair[0]..pair[1] {
                    for &i in &indices[indptr[u]..indptr[u + 1]] {
                        let row = slot_of[i as usize] as usize;
                        let ib = block_of_row[row] as usize;
                        strata[ub * blocks + ib]
                            .push([(u - pair[0]) as u32, (row - item_cuts[ib]) as u32]);
                    }
                }
            }
            let shared = Lookup {
                seen: &seen,
                indptr,
                indices,
                item_at: &item_at,
            };
            let mut loss = 0f64;
            for sub in 0..blocks {
                let user_parts = split_rows(&mut users, &user_cuts, k);
                let mut item_parts: Vec<Option<(&mut [f32], &mut [f32])>> =
                    split_rows(&mut items, &item_cuts, k)
                        .into_iter()
                        .zip(split_rows(&mut bias, &item_cuts, 1))
                        .map(Some)
                        .collect();
                let work: Vec<Stratum<'_>> = user_parts
                    .into_iter()
                    .enumerate()
                    .map(|(ub, users)| {
                        let ib = (ub + sub) % blocks;
                        let (items, bias) = item_parts[ib].take().expect("each block once");
                        Stratum {
                            users,
                            user_start: user_cuts[ub],
                            items,
                            bias,
                            rows: item_cuts[ib]..item_cuts[ib + 1],
                            pairs: &strata[ub * blocks + ib],
                            seed: mix(self.config.seed, epoch, 1 + sub * blocks + ub),
                        }
                    })
                    .collect();
                let sums: Vec<f64> = work
                    .into_par_iter()
                    .map(|stratum| run_stratum(stratum, k, lr, reg, &shared))
                    .collect();
                // Summed in block order, so the reported loss is deterministic too.
                loss += sums.iter().sum::<f64>();
            }
            losses.push(loss / nnz as f64);
        }
        // Back to item order.
        for item in 0..n_items {
            let row = slot_of[item] as usize;
            next_items[item * k..(item + 1) * k].copy_from_slice(&items[row * k..(row + 1) * k]);
            next_bias[item] = bias[row];
        }
        self.user_factors = users;
        self.item_factors = next_items;
        self.item_bias = next_bias;
        self.n_items = n_items;
        Ok(FitReport {
            loss_curve: losses,
            ..FitReport::default()
        })
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let user = self.user_vector(query);
        score_all(&user, &self.item_factors, self.config.factors, scores);
        scores
            .iter_mut()
            .zip(&self.item_bias)
            .for_each(|(s, b)| *s += b);
    }

    fn item_factors(&self) -> Option<crate::ann::InnerProduct<'_>> {
        Some(crate::ann::InnerProduct {
            items: &self.item_factors,
            bias: Some(&self.item_bias),
            dimension: self.config.factors,
        })
    }

    fn query_factors(&self, query: &Query<'_>) -> Option<Vec<f32>> {
        Some(self.user_vector(query))
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}

/// A generator seed for one (epoch, stream) of a fit.
fn mix(seed: u64, epoch: usize, stream: usize) -> u64 {
    seed ^ (epoch as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15)
        ^ (stream as u64).wrapping_mul(0xc2b2_ae3d_27d4_eb4f)
}

/// A blocked Bloom filter over the (user, item) pairs of the training matrix: two bits of
/// one 64-bit word per pair, about 16 bits per pair, so about 2% false "maybe"s. Most
/// negative candidates are cleared by one read here, where the exact test, a binary search
/// of the user's items, is a chain of dependent cache misses (it took 60% of the fit). A
/// "maybe" still goes to the exact test, so the sampling is exactly what it was.
struct SeenFilter {
    words: Vec<u64>,
    shift: u32,
}

impl SeenFilter {
    fn new(pairs: usize) -> Self {
        let words = (pairs.max(1) / 4).next_power_of_two().max(1);
        Self {
            words: vec![0; words],
            shift: 64 - words.trailing_zeros(),
        }
    }

    /// The pair's word and its two bits: the word from the hash's top bits, the bits from
    /// its lowest twelve.
    fn bits(&self, user: usize, item: u32) -> (usize, u64) {
        let h = ((user as u64) << 32 | u64::from(item)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let word = if self.shift == 64 {
            0
        } else {
            (h >> self.shift) as usize
        };
        let h = h ^ (h >> 29);
        (word, 1 << (h & 63) | 1 << ((h >> 6) & 63))
    }

    fn insert(&mut self, user: usize, item: u32) {
        let (word, mask) = self.bits(user, item);
        self.words[word] |= mask;
    }

    fn may_contain(&self, user: usize, item: u32) -> bool {
        let (word, mask) = self.bits(user, item);
        self.words[word] & mask == mask
    }
}

/// What every thread reads and none writes: the interactions and the epoch's deal.
struct Lookup<'a> {
    seen: &'a SeenFilter,
    indptr: &'a [usize],
    indices: &'a [u32],
    item_at: &'a [u32],
}

/// Samples one stratum as many times as it has interactions, updating its rows in place;
/// answers the summed loss.
fn run_stratum(stratum: Stratum<'_>, k: usize, lr: f32, reg: f32, shared: &Lookup<'_>) -> f64 {
    let Stratum {
        users,
        user_start,
        items,
        bias,
        rows,
        pairs,
        seed,
    } = stratum;
    if pairs.is_empty() {
        return 0.0;
    }
    let mut rng = rand::rngs::SmallRng::seed_from_u64(seed);
    let first = rows.start;
    // The loss is summed as the logarithm of a running product of `1 + e`, taken whenever
    // the product grows large: one logarithm per many samples instead of one per sample.
    let (mut loss, mut product) = (0f64, 1f64);
    // Samples go in batches whose memory is read in independent passes before any update:
    // the positives, then each first negative candidate's filter bit and both item rows.
    // Within a pass no read waits for another, so the core keeps many cache misses in
    // flight, where one sample at a time waits for each miss in turn (a fit here is bound
    // by memory latency, not arithmetic).
    const BATCH: usize = 32;
    let mut batch = [([0u32; 2], 0usize, false); BATCH];
    let mut touched = 0f32;
    let mut left = pairs.len();
    while left > 0 {
        let size = left.min(BATCH);
        left -= size;
        for slot in &mut batch[..size] {
            slot.0 = pairs[rng.random_range(0..pairs.len())];
        }
        for slot in &mut batch[..size] {
            let u = user_start + slot.0[0] as usize;
            slot.1 = rng.random_range(rows.clone());
            slot.2 = shared.seen.may_contain(u, shared.item_at[slot.1]);
            for row in [slot.0[1] as usize, slot.1 - first] {
                touched += items[row * k..(row + 1) * k]
                    .iter()
                    .step_by(16)
                    .sum::<f32>();
            }
        }
        for &([lu, li], candidate, maybe_seen) in &batch[..size] {
            let (lu, li) = (lu as usize, li as usize);
            let u = user_start + lu;
            let seen = &shared.indices[shared.indptr[u]..shared.indptr[u + 1]];
            let unseen = |row: usize| {
                let item = shared.item_at[row];
                !shared.seen.may_contain(u, item) || seen.binary_search(&item).is_err()
            };
            // A negative from this block that the user has not seen; a few more tries
            // when the first fails, since a user may have seen most of a small block.
            let first_ok = !maybe_seen || seen.binary_search(&shared.item_at[candidate]).is_err();
            let Some(j) = first_ok.then_some(candidate).or_else(|| {
                (1..32)
                    .map(|_| rng.random_range(rows.clone()))
                    .find(|&row| unseen(row))
            }) else {
                continue;
            };
            let xu = &mut users[lu * k..(lu + 1) * k];
            let lj = j - first;
            let [xi, xj] = items
                .get_disjoint_mut([li * k..(li + 1) * k, lj * k..(lj + 1) * k])
                .expect("i was seen and j was not, so they differ");
            let [bi, bj] = bias
                .get_disjoint_mut([li, lj])
                .expect("i was seen and j was not, so they differ");
            let term = 1.0 + f64::from(bpr_step(xu, xi, xj, [bi, bj], lr, reg));
            if term > 1e100 {
                loss += term.ln();
            } else {
                product *= term;
                if product > 1e200 {
                    loss += product.ln();
                    product = 1.0;
                }
            }
        }
    }
    std::hint::black_box(touched);
    loss + product.ln()
}

#[cfg(test)]
mod tests {
    use super::balanced_cuts;

    #[test]
    fn blocks_share_the_mass_and_none_is_empty() {
        assert_eq!(balanced_cuts(&[1, 1, 1, 1], 2), vec![0, 2, 4]);
        assert_eq!(balanced_cuts(&[5, 1, 1, 1, 1, 1], 2), vec![0, 1, 6]);
        // One heavy row and three blocks: the rest is cut so that every block has a row.
        assert_eq!(balanced_cuts(&[0, 0, 9], 3), vec![0, 1, 2, 3]);
        assert_eq!(balanced_cuts(&[3, 3, 3], 1), vec![0, 3]);
    }
}
