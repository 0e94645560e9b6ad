//! Linear contextual bandits: LinUCB (Li et al., 2010) and linear Thompson sampling
//! (Agrawal and Goyal, 2013), with a ridge model kept as `A⁻¹` by Sherman-Morrison updates.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use serde::{Deserialize, Serialize};

/// A ridge-regression reward model with its uncertainty: `A = λI + Σ x xᵀ`, `b = Σ r x`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ridge {
    dim: usize,
    a_inv: Vec<f64>,
    b: Vec<f64>,
    theta: Vec<f64>,
    /// Updates seen.
    pub updates: u64,
}

impl Ridge {
    /// An empty model over `dim` features with prior precision `lambda`.
    pub fn new(dim: usize, lambda: f64) -> Self {
        let mut a_inv = vec![0.0; dim * dim];
        for i in 0..dim {
            a_inv[i * dim + i] = 1.0 / lambda;
        }
        Self {
            dim,
            a_inv,
            b: vec![0.0; dim],
            theta: vec![0.0; dim],
            updates: 0,
        }
    }

    /// Feature count.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Adds one observation of reward `r` for features `x`, with importance `weight`.
    pub fn update(&mut self, x: &[f64], r: f64, weight: f64) {
        let d = self.dim;
        let ax: Vec<f64> = (0..d)
            .map(|i| (0..d).map(|j| self.a_inv[i * d + j] * x[j]).sum())
            .collect();
        let denom = 1.0 / weight + x.iter().zip(&ax).map(|(a, b)| a * b).sum::<f64>();
        for i in 0..d {
            for j in 0..d {
                self.a_inv[i * d + j] -= ax[i] * ax[j] / denom;
            }
        }
        for (bi, xi) in self.b.iter_mut().zip(x) {
            *bi += weight * r * xi;
        }
        for i in 0..d {
            self.theta[i] = (0..d).map(|j| self.a_inv[i * d + j] * self.b[j]).sum();
        }
        self.updates += 1;
    }

    /// The point prediction `θᵀx`.
    pub fn predict(&self, x: &[f64]) -> f64 {
        self.theta.iter().zip(x).map(|(t, v)| t * v).sum()
    }

    /// `xᵀ A⁻¹ x`: the variance factor of the prediction.
    pub fn variance(&self, x: &[f64]) -> f64 {
        let d = self.dim;
        let mut s = 0.0;
        for i in 0..d {
            if x[i] == 0.0 {
                continue;
            }
            let row = &self.a_inv[i * d..(i + 1) * d];
            s += x[i] * row.iter().zip(x).map(|(a, b)| a * b).sum::<f64>();
        }
        s.max(0.0)
    }
}

/// How a linear bandit turns predictions into a choice.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum Explorer {
    /// The best prediction (no exploration).
    Greedy,
    /// The best upper confidence bound `θᵀx + α √(xᵀA⁻¹x)`.
    LinUcb {
        /// The width of the bound.
        alpha: f64,
    },
    /// The best of one posterior draw, `θᵀx + v √(xᵀA⁻¹x) z` per arm.
    Thompson {
        /// The scale of the posterior draw.
        v: f64,
    },
}

/// One ridge model per arm (the disjoint model of LinUCB's paper).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DisjointBandit {
    /// One model per arm.
    pub arms: Vec<Ridge>,
    /// How it chooses.
    pub explorer: Explorer,
}

impl DisjointBandit {
    /// `arms` empty models over `dim` features.
    pub fn new(arms: usize, dim: usize, lambda: f64, explorer: Explorer) -> Self {
        Self {
            arms: vec![Ridge::new(dim, lambda); arms],
            explorer,
        }
    }

    /// The score of each arm for context `x` (random for Thompson sampling).
    pub fn scores(&self, x: &[f64], rng: &mut impl Rng) -> Vec<f64> {
        self.arms
            .iter()
            .map(|arm| {
                let mean = arm.predict(x);
                match self.explorer {
                    Explorer::Greedy => mean,
                    Explorer::LinUcb { alpha } => mean + alpha * arm.variance(x).sqrt(),
                    Explorer::Thompson { v } => {
                        let z: f64 = StandardNormal.sample(rng);
                        mean + v * arm.variance(x).sqrt() * z
                    }
                }
            })
            .collect()
    }

    /// The arm to play for context `x` (ties to the lowest index).
    pub fn choose(&self, x: &[f64], rng: &mut impl Rng) -> usize {
        let s = self.scores(x, rng);
        (0..s.len()).fold(0, |best, a| if s[a] > s[best] { a } else { best })
    }

    /// Learns from the reward `r` of arm `arm` in context `x`.
    pub fn learn(&mut self, x: &[f64], arm: usize, r: f64) {
        self.arms[arm].update(x, r, 1.0);
    }

    /// Warm start from a log: every logged (context, arm, reward) is learnt. The ridge fit
    /// conditions on the arm, so a log of another policy needs no reweighting for the mean
    /// model to be consistent; it only leaves some arms with fewer rows (wider bounds).
    pub fn warm_start<'a>(&mut self, log: impl IntoIterator<Item = (&'a [f64], usize, f64)>) {
        for (x, arm, r) in log {
            self.learn(x, arm, r);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn ridge_matches_the_closed_form() {
        let mut m = Ridge::new(2, 1.0);
        let data = [([1.0, 0.0], 1.0), ([1.0, 1.0], 2.0), ([0.0, 1.0], 0.5)];
        for (x, r) in data {
            m.update(&x, r, 1.0);
        }
        // A = I + XᵀX = [[3,1],[1,3]], b = [3, 2.5]; θ = A⁻¹b = [6.5/8, 4.5/8].
        assert!((m.predict(&[1.0, 0.0]) - 6.5 / 8.0).abs() < 1e-12);
        assert!((m.predict(&[0.0, 1.0]) - 4.5 / 8.0).abs() < 1e-12);
        assert!((m.variance(&[1.0, 0.0]) - 3.0 / 8.0).abs() < 1e-12);
    }

    /// On a problem where the best arm depends on the context, both explorers learn it.
    #[test]
    fn explorers_learn_a_contextual_problem() {
        for explorer in [
            Explorer::LinUcb { alpha: 0.5 },
            Explorer::Thompson { v: 0.3 },
        ] {
            let mut rng = StdRng::seed_from_u64(9);
            let mut bandit = DisjointBandit::new(3, 3, 1.0, explorer);
            let mut late = 0.0;
            for t in 0..6_000 {
                let c = rng.random_range(0..3);
                let mut x = vec![0.0; 3];
                x[c] = 1.0;
                let arm = bandit.choose(&x, &mut rng);
                let p = if arm == (c + 1) % 3 { 0.8 } else { 0.2 };
                let r = f64::from(rng.random::<f64>() < p);
                bandit.learn(&x, arm, r);
                if t >= 5_000 {
                    late += r;
                }
            }
            assert!(late / 1_000.0 > 0.7, "{explorer:?}: {}", late / 1_000.0);
        }
    }
}
