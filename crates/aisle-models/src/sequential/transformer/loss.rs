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

    /// The fused gradients against finite differences of the loss.
    #[test]
    fn gradients_match_finite_differences() {
        let dim = 3;
        let table: Vec<f32> = (0..5 * dim)
            .map(|k| ((k * 7 % 11) as f32 - 5.0) / 7.0)
            .collect();
        let hidden: Vec<f32> = (0..2 * dim)
            .map(|k| ((k * 5 % 7) as f32 - 3.0) / 4.0)
            .collect();
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

    /// With every other item drawn as a negative, the sampled loss is close to the full one.
    #[test]
    fn sampled_softmax_approaches_full_softmax() {
        let dim = 4;
        let n = 50;
        let table: Vec<f32> = (0..n * dim)
            .map(|k| ((k * 13 % 17) as f32 - 8.0) / 9.0)
            .collect();
        let hidden: Vec<f32> = (0..dim).map(|k| k as f32 / 4.0).collect();
        let mut rng = StdRng::seed_from_u64(1);
        let full = next_item_loss(&hidden, &table, dim, &[3], 0, &mut rng).loss;
        let sampled = next_item_loss(&hidden, &table, dim, &[3], 49, &mut rng).loss;
        assert!(
            sampled < full,
            "fewer negatives, lower loss: {sampled} vs {full}"
        );
        assert!(sampled > 0.3 * full);
    }
}
