//! Matrix factorisation: ALS (implicit feedback), BPR and PureSVD.

mod als;
mod bpr;
mod puresvd;

pub use als::{Als, AlsConfig};
pub use bpr::{Bpr, BprConfig};
pub use puresvd::{PureSvd, PureSvdConfig};

/// `a · b`.
#[inline]
pub(crate) fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// `scores[i] = user · items[i]` for row-major `items` with `k` columns.
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
