//! What a release costs and what a sequence of releases has cost.
//!
//! Pure ε adds up (basic composition); zCDP's ρ adds up and turns into (ε, δ) by the optimal
//! conversion of Canonne, Kamath and Steinke (2020, proposition 12 and corollary 13), found by
//! bisection as OpenDP does. A ledger that holds both reports ε_pure + ε(ρ_total, δ).

use serde::{Deserialize, Serialize};

use crate::Noise;

/// The privacy cost of one release.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Cost {
    /// Pure differential privacy spent.
    pub epsilon: f64,
    /// Zero-concentrated differential privacy spent.
    pub rho: f64,
}

impl Cost {
    /// The cost of `noise` on a query of this sensitivity (L1 for Laplace, L2 for Gaussian).
    pub fn of(noise: Noise, sensitivity: f64) -> Cost {
        match noise {
            Noise::Laplace { scale } => Cost {
                epsilon: sensitivity / scale,
                rho: 0.0,
            },
            Noise::Gaussian { sigma } => Cost {
                epsilon: 0.0,
                rho: (sensitivity / sigma).powi(2) / 2.0,
            },
        }
    }

    /// Both costs together (basic composition).
    pub fn plus(self, other: Cost) -> Cost {
        Cost {
            epsilon: self.epsilon + other.epsilon,
            rho: self.rho + other.rho,
        }
    }

    /// The ε of this cost as (ε, δ)-DP.
    pub fn epsilon_at(self, delta: f64) -> f64 {
        self.epsilon + zcdp_epsilon(self.rho, delta)
    }
}

/// The discrete Laplace scale that spends `epsilon` on a query of L1 sensitivity
/// `sensitivity`.
pub fn laplace_for(epsilon: f64, sensitivity: f64) -> Noise {
    Noise::Laplace {
        scale: sensitivity / epsilon,
    }
}

/// δ of ρ-zCDP at ε, minimised over the Rényi order α (the optimal conversion).
pub fn zcdp_delta(rho: f64, epsilon: f64) -> f64 {
    if rho <= 0.0 {
        return 0.0;
    }
    // The objective is convex in α; its derivative (2α - 1)ρ - ε + ln(1 - 1/α) has one root
    // in (1, (ε + 1) / (2ρ) + 2].
    let (mut low, mut high) = (1.01_f64, (epsilon + 1.0) / (2.0 * rho) + 2.0);
    for _ in 0..1000 {
        let alpha = (low + high) / 2.0;
        let derivative = (2.0 * alpha - 1.0) * rho - epsilon + (-1.0 / alpha).ln_1p();
        if derivative < 0.0 {
            low = alpha;
        } else {
            high = alpha;
        }
    }
    let alpha = (low + high) / 2.0;
    let delta = ((alpha - 1.0) * (alpha * rho - epsilon) + alpha * (-1.0 / alpha).ln_1p()).exp()
        / (alpha - 1.0);
    delta.min(1.0)
}

/// The smallest ε with ρ-zCDP ⇒ (ε, δ)-DP, by bisection from the textbook bound
/// ρ + 2√(ρ ln(1/δ)).
pub fn zcdp_epsilon(rho: f64, delta: f64) -> f64 {
    if rho <= 0.0 || delta >= 1.0 {
        return 0.0;
    }
    if delta <= 0.0 {
        return f64::INFINITY;
    }
    let mut low = 0.0_f64;
    let mut high = rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt();
    loop {
        let mid = low + (high - low) / 2.0;
        if mid == low || mid == high {
            return high;
        }
        if zcdp_delta(rho, mid) <= delta {
            high = mid;
        } else {
            low = mid;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn costs_follow_the_formulas() {
        let c = Cost::of(Noise::Laplace { scale: 4.0 }, 2.0);
        assert_eq!(c.epsilon, 0.5);
        let g = Cost::of(Noise::Gaussian { sigma: 2.0 }, 1.0);
        assert_eq!(g.rho, 0.125);
        assert_eq!(c.plus(c).epsilon, 1.0);
    }

    #[test]
    fn the_conversion_beats_the_textbook_bound_and_inverts_delta() {
        let (rho, delta) = (0.5, 1e-6);
        let eps = zcdp_epsilon(rho, delta);
        let textbook = rho + 2.0 * (rho * (1.0 / delta).ln()).sqrt();
        assert!(eps < textbook, "{eps} against {textbook}");
        assert!(eps > rho, "{eps}");
        assert!((zcdp_delta(rho, eps) - delta).abs() / delta < 1e-3);
    }
}
