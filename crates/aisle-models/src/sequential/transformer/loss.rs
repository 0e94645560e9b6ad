//! The next-item loss, fused: logits, softmax cross-entropy and both gradients in one pass
//! over row chunks.
//!
//! Written here rather than with candle's ops because the logits (positions × catalogue)
//! are the largest tensor of training by far: materialising them for autograd costs a dozen
//! passes over hundreds of megabytes per batch on a 2-core CPU. The result feeds back into
//! autograd through a surrogate `Σ h·∂h + Σ E·∂E` whose gradients are exactly these.

use faer::linalg::matmul::matmul;
use faer::{Accum, MatMut, MatRef, Par};
use rand::Rng;
use rand::rngs::StdRng;
use rayon::prelude::*;

/// Loss and gradients of one batch.
pub(super) struct LossGrad {
    /// Mean cross-entropy over the positions.
    pub loss: f64,
    /// Gradient with respect to the hidden states, `[positions, dim]`.
    pub d_hidden: Vec<f32>,
    /// Gradient with respect to the item table, `[n_items, dim]`.
    pub d_items: Vec<f32>,
}

const CHUNK: usize = 512;

/// Softmax cross-entropy of `hidden · tableᵀ` against `targets`, over the whole catalogue
/// (`negatives = 0`) or over the target plus `negatives` items sampled uniformly and shared
/// by the batch (sampled softmax, for large catalogues).
pub(super) fn next_item_loss(
    hidden: &[f32],
    table: &[f32],
    dim: usize,
    targets: &[u32],
    negatives: usize,
    rng: &mut StdRng,
) -> LossGrad {
    let n_items = table.len() / dim;
    let positions = targets.len();
    let mut d_hidden = vec![0f32; positions * dim];
    let mut d_items = vec![0f32; n_items * dim];
    if positions == 0 {
        return LossGrad {
            loss: 0.0,
            d_hidden,
            d_items,
        };
    }
    let inv = 1.0 / positions as f32;
    let par = Par::rayon(0);
    // Candidate items: the whole catalogue, or the sampled negatives (the target's own
    // logit is then computed separately and sits in column 0).
    let sampled: Option<Vec<u32>> = (negatives > 0 && negatives < n_items).then(|| {
        (0..negatives)
            .map(|_| rng.random_range(0..n_items as u32))
            .collect()
    });
    let cand_table: Vec<f32>;
    let (cands, n_cands) = match &sampled {
        None => (table, n_items),
        Some(ids) => {
            cand_table = ids
                .iter()
                .flat_map(|&i| {
                    table[i as usize * dim..(i as usize + 1) * dim]
                        .iter()
                        .copied()
                })
                .collect();
            (cand_table.as_slice(), ids.len())
        }
    };
    let width = n_cands + usize::from(sampled.is_some());
    let cand = MatRef::from_row_major_slice(cands, n_cands, dim);
    let mut d_cands = vec![0f32; n_cands * dim];
    let mut logits = vec![0f32; CHUNK.min(positions) * width];
    let mut loss = 0f64;
    for start in (0..positions).step_by(CHUNK) {
        let rows = CHUNK.min(positions - start);
        let h = &hidden[start * dim..(start + rows) * dim];
        let h_mat = MatRef::from_row_major_slice(h, rows, dim);
        let chunk_targets = &targets[start..start + rows];
        let logits = &mut logits[..rows * width];
        {
            let offset = width - n_cands;
            let all = MatMut::from_row_major_slice_mut(logits, rows, width);
            let dst = all.subcols_mut(offset, n_cands);
            matmul(dst, Accum::Replace, h_mat, cand.transpose(), 1.0, par);
        }
        loss += logits
            .par_chunks_mut(width)
            .zip(chunk_targets.par_iter())
            .enumerate()
            .map(|(r, (row, &target))| {
                let target_col = match &sampled {
                    None => target as usize,
                    Some(ids) => {
                        let e = &table[target as usize * dim..(target as usize + 1) * dim];
                        row[0] = dot(&h[r * dim..(r + 1) * dim], e);
                        // A sampled negative that is the target is not a negative.
                        for (c, &id) in ids.iter().enumerate() {
                            if id == target {
                                row[c + 1] = f32::NEG_INFINITY;
                            }
                        }
                        0
                    }
                };
                let target_logit = row[target_col];
                let (max, sum) = softmax_in_place(row, inv);
                row[target_col] -= inv;
                f64::from(sum.ln() + max - target_logit)
            })
            .sum::<f64>();
        let offset = width - n_cands;
        let g = MatRef::from_row_major_slice(logits, rows, width);
        let g_cands = g.subcols(offset, n_cands);
        let dh = MatMut::from_row_major_slice_mut(
            &mut d_hidden[start * dim..(start + rows) * dim],
            rows,
            dim,
        );
        matmul(dh, Accum::Replace, g_cands, cand, 1.0, par);
        let de = MatMut::from_row_major_slice_mut(&mut d_cands, n_cands, dim);
        matmul(de, Accum::Add, g_cands.transpose(), h_mat, 1.0, par);
        if sampled.is_some() {
            // The target column: ∂h += g₀·e_target, ∂e_target += g₀·h.
            for (r, &target) in chunk_targets.iter().enumerate() {
                let g0 = logits[r * width];
                let t = target as usize;
                for k in 0..dim {
                    d_hidden[(start + r) * dim + k] += g0 * table[t * dim + k];
                    d_items[t * dim + k] += g0 * h[r * dim + k];
                }
            }
        }
    }
    match &sampled {
        None => d_items = d_cands,
        Some(ids) => {
            for (c, &id) in ids.iter().enumerate() {
                for k in 0..dim {
                    d_items[id as usize * dim + k] += d_cands[c * dim + k];
                }
            }
        }
    }
    LossGrad {
        loss: loss / positions as f64,
        d_hidden,
        d_items,
    }
}

/// Turns `row` into `scale · softmax(row)`; returns the row's max and its sum of
/// `exp(x − max)`. Compiled for AVX2 and AVX-512 too: with libm's scalar `expf` this loop
/// took a third of training time.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
fn softmax_in_place(row: &mut [f32], scale: f32) -> (f32, f32) {
    let mut lanes = [f32::NEG_INFINITY; 16];
    let mut chunks = row.chunks_exact(16);
    for c in &mut chunks {
        for (l, &v) in lanes.iter_mut().zip(c) {
            *l = if v > *l { v } else { *l };
        }
    }
    let mut max = chunks
        .remainder()
        .iter()
        .copied()
        .fold(f32::NEG_INFINITY, f32::max);
    max = lanes.iter().copied().fold(max, f32::max);
    let mut sums = [0f32; 16];
    let mut chunks = row.chunks_exact_mut(16);
    for c in &mut chunks {
        for (s, v) in sums.iter_mut().zip(c.iter_mut()) {
            *v = fast_exp(*v - max);
            *s += *v;
        }
    }
    let mut sum: f32 = 0.0;
    for v in chunks.into_remainder() {
        *v = fast_exp(*v - max);
        sum += *v;
    }
    sum += sums.iter().sum::<f32>();
    let k = scale / sum;
    for v in row.iter_mut() {
        *v *= k;
    }
    (max, sum)
}

/// `e^x` for x ≤ 0, to a few 1e-6 relative (f32 rounding of x·log2 e dominates): 2^(x·log2 e) split into an integer power,
/// set through the exponent bits, and a degree-6 polynomial on the fraction. Branch-free
/// (rounding by the 1.5·2^23 trick), so loops over it vectorise.
#[inline(always)]
fn fast_exp(x: f32) -> f32 {
    const ROUND: f32 = 12_582_912.0;
    let t = x.max(-126.0 * std::f32::consts::LN_2) * std::f32::consts::LOG2_E;
    let n = (t + ROUND) - ROUND;
    let f = (t - n) * std::f32::consts::LN_2;
    let p = 1.0
        + f * (1.0
            + f * (0.5
                + f * (1.0 / 6.0 + f * (1.0 / 24.0 + f * (1.0 / 120.0 + f * (1.0 / 720.0))))));
    f32::from_bits(((n as i32 + 127) << 23) as u32) * p
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    /// A fixed `n × dim` embedding table and two hidden states, small enough for finite
    /// differences.
    fn small_table_and_hidden(n: usize, dim: usize) -> (Vec<f32>, Vec<f32>) {
        let table = (0..n * dim)
            .map(|k| ((k * 7 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let hidden = (0..2 * dim)
            .map(|k| ((k * 5 % 7) as f32 - 3.0) / 4.0)
            .collect();
        (table, hidden)
    }

    /// The fused gradients against finite differences of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let dim = 3;
        let (table, hidden) = small_table_and_hidden(5, dim);
        let targets = [1u32, 4];
        let mut rng = StdRng::seed_from_u64(0);
        let base = next_item_loss(&hidden, &table, dim, &targets, 0, &mut rng);
        let eps = 1e-3;
        for k in 0..hidden.len() {
            let mut h = hidden.clone();
            h[k] += eps;
            let up = next_item_loss(&h, &table, dim, &targets, 0, &mut rng).loss;
            h[k] -= 2.0 * eps;
            let down = next_item_loss(&h, &table, dim, &targets, 0, &mut rng).loss;
            let numeric = (up - down) / (2.0 * f64::from(eps));
            assert!(
                (numeric - f64::from(base.d_hidden[k])).abs() < 1e-3,
                "hidden {k}"
            );
        }
        for k in 0..table.len() {
            let mut t = table.clone();
            t[k] += eps;
            let up = next_item_loss(&hidden, &t, dim, &targets, 0, &mut rng).loss;
            t[k] -= 2.0 * eps;
            let down = next_item_loss(&hidden, &t, dim, &targets, 0, &mut rng).loss;
            let numeric = (up - down) / (2.0 * f64::from(eps));
            assert!(
                (numeric - f64::from(base.d_items[k])).abs() < 1e-3,
                "item {k}"
            );
        }
    }

    #[test]
    fn fast_exp_is_accurate() {
        for k in 0..2000 {
            let x = -(k as f32) * 0.05;
            let (fast, exact) = (fast_exp(x), x.exp());
            assert!(
                (fast - exact).abs() <= 4e-6 * exact + 1e-37,
                "{x}: {fast} vs {exact}"
            );
        }
        assert_eq!(fast_exp(f32::NEG_INFINITY), fast_exp(-1000.0));
    }

    /// A small catalogue whose logits differ item by item (and whose last item has the
    /// largest), so that a sampler missing an item or a target counted as a negative shows.
    fn sampled_fixture() -> (Vec<f32>, Vec<f32>, usize, usize) {
        let (dim, n) = (4, 50);
        let table: Vec<f32> = (0..n * dim)
            .map(|k| ((k * 13 % 17) as f32 - 8.0) / 9.0 + if k / dim == n - 1 { 0.8 } else { 0.0 })
            .collect();
        let hidden: Vec<f32> = (0..dim).map(|k| k as f32 / 4.0 + 0.5).collect();
        (table, hidden, dim, n)
    }

    /// Exhaustive case: asking for at least the whole catalogue as negatives is the full
    /// softmax, loss and gradients alike.
    #[test]
    fn sampled_softmax_over_the_whole_catalogue_is_the_full_softmax() {
        let (table, hidden, dim, n) = sampled_fixture();
        let hidden: Vec<f32> = hidden.iter().chain(&hidden).map(|h| h * 0.7).collect();
        let targets = [3u32, 49];
        let mut rng = StdRng::seed_from_u64(1);
        let full = next_item_loss(&hidden, &table, dim, &targets, 0, &mut rng);
        // The reference: log Σ_j exp(h·e_j) − h·e_target, in f64.
        let reference: f64 = targets
            .iter()
            .enumerate()
            .map(|(r, &t)| {
                let h = &hidden[r * dim..(r + 1) * dim];
                let logit = |j: usize| f64::from(dot(h, &table[j * dim..(j + 1) * dim]));
                let z: f64 = (0..n).map(|j| logit(j).exp()).sum();
                z.ln() - logit(t as usize)
            })
            .sum::<f64>()
            / targets.len() as f64;
        assert!(
            (full.loss - reference).abs() < 1e-5,
            "{} vs {reference}",
            full.loss
        );
        for negatives in [n, n + 1, 10 * n] {
            let all = next_item_loss(&hidden, &table, dim, &targets, negatives, &mut rng);
            assert!(
                (all.loss - full.loss).abs() < 1e-6,
                "{negatives} negatives: {} vs {}",
                all.loss,
                full.loss
            );
            let close = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-6);
            assert!(close(&all.d_hidden, &full.d_hidden), "{negatives}: ∂hidden");
            assert!(close(&all.d_items, &full.d_items), "{negatives}: ∂items");
        }
    }

    /// Sampled case: the gradients are those of the sampled loss. The draws depend on the
    /// seed only, so reseeding gives the same negatives for every finite difference; across
    /// seeds the draws repeat items and hit the targets.
    #[test]
    fn sampled_gradients_match_finite_differences() {
        let dim = 3;
        let n = 6;
        let (table, hidden) = small_table_and_hidden(n, dim);
        let targets = [1u32, 4];
        let eps = 1e-3;
        for seed in 0..10 {
            let loss = |h: &[f32], t: &[f32]| {
                next_item_loss(h, t, dim, &targets, 4, &mut StdRng::seed_from_u64(seed))
            };
            let base = loss(&hidden, &table);
            let numeric = |up: f64, down: f64| (up - down) / (2.0 * f64::from(eps));
            for k in 0..hidden.len() {
                let (mut up, mut down) = (hidden.clone(), hidden.clone());
                up[k] += eps;
                down[k] -= eps;
                let d = numeric(loss(&up, &table).loss, loss(&down, &table).loss);
                let got = f64::from(base.d_hidden[k]);
                assert!(
                    (d - got).abs() < 1e-3,
                    "seed {seed} hidden {k}: {d} vs {got}"
                );
            }
            for k in 0..table.len() {
                let (mut up, mut down) = (table.clone(), table.clone());
                up[k] += eps;
                down[k] -= eps;
                let d = numeric(loss(&hidden, &up).loss, loss(&hidden, &down).loss);
                let got = f64::from(base.d_items[k]);
                assert!((d - got).abs() < 1e-3, "seed {seed} item {k}: {d} vs {got}");
            }
        }
    }

    /// What the sampled loss estimates. With `k` negatives drawn uniformly (with replacement)
    /// from the `n` items and draws of the target dropped, the negatives' mass
    /// `N = Σ_sampled exp(s_j)` has expectation `(k / n) · Σ_{j ≠ target} exp(s_j)`; the loss
    /// is `ln(exp(s_t) + N) − s_t`, so `N = exp(s_t) · (exp(loss) − 1)`. The logQ-corrected
    /// estimate `(n / k) · N` is then unbiased for the full softmax's negative mass, and the
    /// corrected loss `ln(exp(s_t) + (n / k) · N) − s_t` approaches the full loss.
    #[test]
    fn sampled_softmax_is_an_unbiased_estimate_of_the_full_partition_function() {
        let (table, hidden, dim, n) = sampled_fixture();
        let target = 3u32;
        let mut rng = StdRng::seed_from_u64(1);
        let full = next_item_loss(&hidden, &table, dim, &[target], 0, &mut rng).loss;
        let s_t = f64::from(dot(
            &hidden,
            &table[target as usize * dim..(target as usize + 1) * dim],
        ));
        let full_mass = s_t.exp() * full.exp_m1();
        for k in [5usize, 20, 45] {
            let draws = 20_000;
            let masses: Vec<f64> = (0..draws)
                .map(|_| {
                    let loss = next_item_loss(&hidden, &table, dim, &[target], k, &mut rng).loss;
                    s_t.exp() * loss.exp_m1() * n as f64 / k as f64
                })
                .collect();
            let mean = masses.iter().sum::<f64>() / draws as f64;
            let var = masses.iter().map(|m| (m - mean).powi(2)).sum::<f64>() / (draws - 1) as f64;
            let se = (var / draws as f64).sqrt();
            // Four standard errors, and the standard error itself is under 1% of the mass.
            assert!(
                se < 0.01 * full_mass,
                "k {k}: standard error {se} of {full_mass}"
            );
            assert!(
                (mean - full_mass).abs() < 4.0 * se,
                "k {k}: corrected negative mass {mean:.4} ± {se:.4}, full softmax {full_mass:.4}"
            );
            let corrected = masses
                .iter()
                .map(|m| (s_t.exp() + m).ln() - s_t)
                .sum::<f64>()
                / draws as f64;
            // Jensen: the corrected loss is low by about var / (2 (e^s_t + N)²) per draw.
            let bias = var / (2.0 * (s_t.exp() + full_mass).powi(2));
            assert!(
                corrected <= full + 1e-3 && corrected > full - 2.0 * bias - 1e-3,
                "k {k}: corrected loss {corrected:.5}, full {full:.5}, bias bound {bias:.5}"
            );
        }
    }
}
