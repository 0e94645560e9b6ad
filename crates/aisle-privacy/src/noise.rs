//! Exact integer noise: the discrete Laplace and discrete Gaussian distributions, sampled
//! with integer arithmetic only (Canonne, Kamath and Steinke, "The Discrete Gaussian for
//! Differential Privacy", 2020, algorithms 1-3).
//!
//! Written here rather than taken from a crate: no maintained Rust crate samples these
//! distributions exactly, and floating-point samplers (the textbook `-b ln U`) leak through
//! the gaps of the float grid (Mironov, 2012). The only floating point is in turning a
//! configured scale into a rational, which rounds the scale *up* (more noise, never less).

use rand::Rng;

/// Denominator of the rationals that configured scales are rounded to.
const DENOMINATOR: u128 = 1_000_000;

/// A positive rational `num / den`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ratio {
    num: u128,
    den: u128,
}

impl Ratio {
    /// The smallest multiple of 10⁻⁶ at or above `x` (`x` must be finite and positive).
    pub fn at_least(x: f64) -> Ratio {
        assert!(x.is_finite() && x > 0.0, "a noise scale must be positive");
        let num = (x * DENOMINATOR as f64).ceil() as u128;
        Ratio {
            num: num.max(1),
            den: DENOMINATOR,
        }
    }

    /// The value as a float.
    pub fn value(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// True with probability `num / den` (`num <= den`).
fn bernoulli<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    rng.random_range(0..den) < num
}

/// True with probability `exp(-num / den)`, exactly.
fn bernoulli_exp<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let mut num = num;
    // exp(-γ) = exp(-1)^⌊γ⌋ · exp(-(γ - ⌊γ⌋)).
    while num > den {
        if !bernoulli_exp_below_one(rng, den, den) {
            return false;
        }
        num -= den;
    }
    bernoulli_exp_below_one(rng, num, den)
}

/// True with probability `exp(-γ)` for `γ = num / den` in [0, 1]: draws A_k ~ Bernoulli(γ/k)
/// until one is false; the count of draws is odd with probability exp(-γ).
fn bernoulli_exp_below_one<R: Rng + ?Sized>(rng: &mut R, num: u128, den: u128) -> bool {
    let mut k: u128 = 1;
    while bernoulli(rng, num, den * k) {
        k += 1;
    }
    k % 2 == 1
}

/// One draw of the discrete Laplace distribution with scale `scale`:
/// `P(x) ∝ exp(-|x| / scale)` over the integers.
pub fn discrete_laplace<R: Rng + ?Sized>(rng: &mut R, scale: Ratio) -> i64 {
    // Scale t/s with t = num, s = den (algorithm 2).
    let (t, s) = (scale.num, scale.den);
    loop {
        let u = rng.random_range(0..t);
        if !bernoulli_exp(rng, u, t) {
            continue;
        }
        let mut v: u128 = 0;
        while bernoulli_exp(rng, 1, 1) {
            v += 1;
        }
        let y = (u + t * v) / s;
        let negative = rng.random_bool(0.5);
        if negative && y == 0 {
            continue;
        }
        let y = i64::try_from(y).unwrap_or(i64::MAX);
        return if negative { -y } else { y };
    }
}

/// One draw of the discrete Gaussian distribution with variance parameter `sigma2`:
/// `P(x) ∝ exp(-x² / (2 σ²))` over the integers (algorithm 3: discrete Laplace proposals
/// accepted with the right probability).
pub fn discrete_gaussian<R: Rng + ?Sized>(rng: &mut R, sigma2: Ratio) -> i64 {
    let (n, d) = (sigma2.num, sigma2.den);
    // t = ⌊σ⌋ + 1, from the integer square root of ⌊σ²⌋.
    let t = (n / d).isqrt() + 1;
    let proposal = Ratio { num: t, den: 1 };
    loop {
        let y = discrete_laplace(rng, proposal);
        let a = y.unsigned_abs() as u128;
        // Accept with exp(-(|y| - σ²/t)² / (2σ²)) = exp(-(|y| d t - n)² / (2 n d t²)).
        let gap = (a * d * t).abs_diff(n);
        let (Some(num), Some(den)) = (
            gap.checked_mul(gap),
            (2 * n).checked_mul(d).and_then(|x| x.checked_mul(t * t)),
        ) else {
            // Only a proposal beyond ~10¹² could overflow; its acceptance is ~0.
            continue;
        };
        if bernoulli_exp(rng, num, den) {
            return y;
        }
    }
}

/// The noise a release adds.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "mechanism", rename_all = "snake_case")]
pub enum Noise {
    /// Discrete Laplace with this scale (pure ε-DP: ε = L1 sensitivity / scale).
    Laplace {
        /// The scale b: `P(x) ∝ exp(-|x| / b)`.
        scale: f64,
    },
    /// Discrete Gaussian with this σ (ρ-zCDP: ρ = L2 sensitivity² / (2σ²)).
    Gaussian {
        /// The σ: `P(x) ∝ exp(-x² / (2σ²))`.
        sigma: f64,
    },
}

impl Noise {
    /// One draw.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> i64 {
        match *self {
            Noise::Laplace { scale } => discrete_laplace(rng, Ratio::at_least(scale)),
            Noise::Gaussian { sigma } => discrete_gaussian(rng, Ratio::at_least(sigma * sigma)),
        }
    }

    /// The probability of each value from `-radius` to `radius` (for tests and reports).
    pub fn pmf(&self, radius: i64) -> Vec<f64> {
        let weight = |x: i64| match *self {
            Noise::Laplace { scale } => (-(x.abs() as f64) / Ratio::at_least(scale).value()).exp(),
            Noise::Gaussian { sigma } => {
                let s2 = Ratio::at_least(sigma * sigma).value();
                (-(x as f64).powi(2) / (2.0 * s2)).exp()
            }
        };
        // Normalised over a range wide enough that the tails beyond it are below 1e-15.
        let wide = self.wide_radius().max(radius);
        let total: f64 = (-wide..=wide).map(weight).sum();
        (-radius..=radius).map(|x| weight(x) / total).collect()
    }

    fn wide_radius(&self) -> i64 {
        match *self {
            Noise::Laplace { scale } => (40.0 * scale).ceil() as i64 + 10,
            Noise::Gaussian { sigma } => (10.0 * sigma).ceil() as i64 + 10,
        }
    }

    /// The variance of the noise, exactly (Laplace) or summed over its support (Gaussian).
    pub fn variance(&self) -> f64 {
        match *self {
            Noise::Laplace { scale } => {
                let p = (-1.0 / Ratio::at_least(scale).value()).exp();
                2.0 * p / (1.0 - p).powi(2)
            }
            Noise::Gaussian { .. } => {
                let r = self.wide_radius();
                let pmf = self.pmf(r);
                (-r..=r).zip(pmf).map(|(x, p)| (x * x) as f64 * p).sum()
            }
        }
    }

    /// The mean absolute value of the noise (the expected error of a noisy count).
    pub fn mean_absolute(&self) -> f64 {
        match *self {
            Noise::Laplace { scale } => {
                let p = (-1.0 / Ratio::at_least(scale).value()).exp();
                2.0 * p / (1.0 - p * p)
            }
            Noise::Gaussian { .. } => {
                let r = self.wide_radius();
                let pmf = self.pmf(r);
                (-r..=r).zip(pmf).map(|(x, p)| x.abs() as f64 * p).sum()
            }
        }
    }

    /// `P(noise <= x)`.
    pub fn cdf(&self, x: i64) -> f64 {
        match *self {
            Noise::Laplace { scale } => {
                let p = (-1.0 / Ratio::at_least(scale).value()).exp();
                if x >= 0 {
                    1.0 - p.powi((x + 1) as i32) / (1.0 + p)
                } else {
                    p.powi((-x) as i32) / (1.0 + p)
                }
            }
            Noise::Gaussian { .. } => {
                let r = self.wide_radius();
                if x < -r {
                    return 0.0;
                }
                let pmf = self.pmf(r);
                pmf.iter().take((x.min(r) + r + 1) as usize).sum()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn bernoulli_exp_matches_its_probability() {
        let mut rng = StdRng::seed_from_u64(3);
        for (num, den) in [(1u128, 2u128), (1, 1), (5, 2), (0, 1)] {
            let n = 200_000;
            let hits = (0..n).filter(|_| bernoulli_exp(&mut rng, num, den)).count();
            let expected = (-(num as f64) / den as f64).exp();
            let observed = hits as f64 / n as f64;
            let se = (expected * (1.0 - expected) / n as f64).sqrt().max(1e-9);
            assert!(
                (observed - expected).abs() < 5.0 * se + 1e-9,
                "exp(-{num}/{den}): {observed} against {expected}"
            );
        }
    }

    #[test]
    fn the_pmf_sums_to_one_and_the_cdf_agrees_with_it() {
        for noise in [
            Noise::Laplace { scale: 2.5 },
            Noise::Gaussian { sigma: 3.0 },
        ] {
            let pmf = noise.pmf(200);
            let total: f64 = pmf.iter().sum();
            assert!((total - 1.0).abs() < 1e-9, "{noise:?}: {total}");
            let up_to_2: f64 = pmf[..=202].iter().sum();
            assert!((noise.cdf(2) - up_to_2).abs() < 1e-9, "{noise:?}");
            assert!((noise.cdf(-3) - pmf[..=197].iter().sum::<f64>()).abs() < 1e-9);
        }
    }

    #[test]
    fn scales_round_up() {
        assert_eq!(Ratio::at_least(0.1).value(), 0.1);
        assert!(Ratio::at_least(1.0 / 3.0).value() >= 1.0 / 3.0);
    }
}
