//! Matrix factorisation: ALS (implicit feedback), BPR and PureSVD.

mod als;
mod bpr;
mod puresvd;

pub use als::{Als, AlsConfig};
pub use bpr::{Bpr, BprConfig};
pub use puresvd::{PureSvd, PureSvdConfig};

/// `a · b`, with eight independent partial sums: a plain `sum()` of products is one serial
/// chain of float adds that the compiler may not reorder, so it would not vectorise.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let mut ca = a.chunks_exact(8);
    let mut cb = b.chunks_exact(8);
    for (x, y) in (&mut ca).zip(&mut cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    acc.iter().sum::<f32>() + tail
}

/// `scores[i] = user · items[i]` for row-major `items` with `k` columns.
#[multiversion::multiversion(targets("x86_64+avx512f+avx512vl+fma", "x86_64+avx2+fma"))]
pub(crate) fn score_all(user: &[f32], items: &[f32], k: usize, scores: &mut [f32]) {
    for (s, row) in scores.iter_mut().zip(items.chunks_exact(k)) {
        *s = dot(user, row);
    }
}

/// Small normal-ish random factors from a seeded generator.
pub(crate) fn init_factors(n: usize, k: usize, scale: f32, rng: &mut impl rand::Rng) -> Vec<f32> {
    (0..n * k)
        .map(|_| (rng.random::<f32>() - 0.5) * 2.0 * scale)
        .collect()
}
