//! Off-policy evaluation: what a new policy would have earned, estimated from a log that
//! another policy produced, with intervals and the diagnostics that say when not to trust it.
//!
//! The single-slot estimators follow the definitions of the Open Bandit Pipeline (Saito et
//! al., 2021), so their estimates can be checked against it row for row:
//! with `w = π_e(a|x,k) / π_b(a|x,k)` at the logged action `a` and position `k`,
//! `q̂(x,a,k)` a reward model and `dm(x,k) = Σ_a π_e(a|x,k) q̂(x,a,k)`,
//!
//! | estimator | per-round term, averaged over rounds |
//! |---|---|
//! | DM | `dm` |
//! | IPS | `w r` |
//! | SNIPS | `w r / mean(w)` |
//! | DR | `dm + w (r - q̂)` |
//! | SNDR | `dm + w (r - q̂) / mean(w)` |
//! | Switch-DR(λ) | `dm + 1[w ≤ λ] w (r - q̂)` |
//! | DR-os(λ) | `dm + λw/(w² + λ) (r - q̂)` |

use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;

use crate::log::BanditLog;
use crate::stats::{bootstrap_interval, mean};
use crate::{Error, Result};

/// The evaluation policy's probability of each action at each position, per round or shared
/// by all rounds (a context-free policy).
#[derive(Debug, Clone)]
pub struct ActionDist {
    /// Actions per position.
    pub n_actions: usize,
    /// Positions.
    pub len_list: usize,
    /// Whether `values` holds one table per round (else one table for all).
    pub per_round: bool,
    /// `[round][action][position]`, row-major.
    pub values: Vec<f64>,
}

impl ActionDist {
    /// `π_e(action | round, position)`.
    pub fn prob(&self, round: usize, action: usize, position: usize) -> f64 {
        let base = if self.per_round {
            round * self.n_actions * self.len_list
        } else {
            0
        };
        self.values[base + action * self.len_list + position]
    }

    /// Reads raw little-endian f64 values (the layout `numpy.ndarray.tofile` writes).
    pub fn from_le_bytes(
        bytes: &[u8],
        n_actions: usize,
        len_list: usize,
        per_round: bool,
    ) -> Result<Self> {
        if !bytes.len().is_multiple_of(8) {
            return Err(Error::Invalid(
                "action distribution: length is not a multiple of 8 bytes".into(),
            ));
        }
        let values: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let table = n_actions * len_list;
        if table == 0
            || !values.len().is_multiple_of(table)
            || (!per_round && values.len() != table)
        {
            return Err(Error::Invalid(format!(
                "action distribution: {} values do not fit {n_actions} actions x {len_list} positions",
                values.len()
            )));
        }
        Ok(Self {
            n_actions,
            len_list,
            per_round,
            values,
        })
    }

    /// The logging policy of a uniform-random log: `1 / n_actions` everywhere.
    pub fn uniform(n_actions: usize, len_list: usize) -> Self {
        Self {
            n_actions,
            len_list,
            per_round: false,
            values: vec![1.0 / n_actions as f64; n_actions * len_list],
        }
    }

    fn check(&self, log: &BanditLog) -> Result<()> {
        if self.n_actions < log.n_actions || self.len_list < log.len_list {
            return Err(Error::Invalid(format!(
                "the evaluation policy covers {} actions x {} positions; the log has {} x {}",
                self.n_actions, self.len_list, log.n_actions, log.len_list
            )));
        }
        if self.per_round && self.values.len() != log.rounds.len() * self.n_actions * self.len_list
        {
            return Err(Error::Invalid(
                "the per-round action distribution does not have one table per logged round".into(),
            ));
        }
        Ok(())
    }
}

/// What every single-slot estimator needs from one round.
#[derive(Debug, Clone, Copy, Default)]
pub struct RoundTerms {
    /// `π_e / π_b` at the logged action and position.
    pub weight: f64,
    /// The observed reward.
    pub reward: f64,
    /// `q̂` at the logged action.
    pub q_logged: f64,
    /// `Σ_a π_e(a) q̂(a)`: the reward model's value of the evaluation policy.
    pub q_policy: f64,
}

/// Per-round terms of a log under an evaluation policy, with a reward model's predictions
/// `q_hat[round][action]` at the round's position (none: the model-based terms are zero).
pub fn round_terms(
    log: &BanditLog,
    dist: &ActionDist,
    q_hat: Option<&[Vec<f64>]>,
) -> Result<Vec<RoundTerms>> {
    dist.check(log)?;
    log.rounds
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let (a, k) = (r.action as usize, usize::from(r.position));
            let (q_logged, q_policy) = match q_hat {
                Some(q) => {
                    let q = q
                        .get(i)
                        .filter(|q| q.len() >= log.n_actions)
                        .ok_or_else(|| {
                            Error::Invalid(format!(
                                "the reward model has no prediction for round {i}"
                            ))
                        })?;
                    let policy = (0..log.n_actions)
                        .map(|b| dist.prob(i, b, k) * q[b])
                        .sum::<f64>()
                        / (0..log.n_actions)
                            .map(|b| dist.prob(i, b, k))
                            .sum::<f64>()
                            .max(f64::MIN_POSITIVE);
                    (q[a], policy)
                }
                None => (0.0, 0.0),
            };
            Ok(RoundTerms {
                weight: dist.prob(i, a, k) / r.pscore,
                reward: r.reward,
                q_logged,
                q_policy,
            })
        })
        .collect()
}

/// A single-slot off-policy estimator.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "name")]
pub enum Estimator {
    /// Direct method: the reward model's value of the policy.
    Dm,
    /// Inverse propensity scoring.
    Ips,
    /// Self-normalised IPS.
    Snips,
    /// Doubly robust.
    Dr,
    /// Self-normalised doubly robust.
    Sndr,
    /// Doubly robust that drops the correction where the weight exceeds `lambda`.
    SwitchDr {
        /// The largest weight whose correction is kept.
        lambda: f64,
    },
    /// Doubly robust with optimistic shrinkage of the weights (Su et al., 2020).
    DrOs {
        /// The shrinkage strength.
        lambda: f64,
    },
}

impl Estimator {
    /// A short name (obp's estimator names).
    pub fn name(&self) -> &'static str {
        match self {
            Self::Dm => "dm",
            Self::Ips => "ipw",
            Self::Snips => "snipw",
            Self::Dr => "dr",
            Self::Sndr => "sndr",
            Self::SwitchDr { .. } => "switch-dr",
            Self::DrOs { .. } => "dr-os",
        }
    }

    /// Whether it needs a reward model.
    pub fn needs_reward_model(&self) -> bool {
        !matches!(self, Self::Ips | Self::Snips)
    }

    /// The estimate over `terms`.
    pub fn estimate(&self, terms: &[RoundTerms]) -> f64 {
        let all: Vec<usize> = (0..terms.len()).collect();
        self.estimate_on(terms, &all)
    }

    /// The estimate over the rounds `rows` of `terms` (a bootstrap resample).
    pub fn estimate_on(&self, terms: &[RoundTerms], rows: &[usize]) -> f64 {
        let n = rows.len().max(1) as f64;
        // With no weight at all (the candidate never takes a logged action in these rows)
        // the self-normalised terms are 0/0; they count as 0, as the weighted ones do.
        let mean_w = match rows.iter().map(|&i| terms[i].weight).sum::<f64>() / n {
            w if w > 0.0 => w,
            _ => f64::INFINITY,
        };
        rows.iter()
            .map(|&i| self.round_value(&terms[i], mean_w))
            .sum::<f64>()
            / n
    }

    /// One round's term; `mean_w` is the mean weight of the rounds it is averaged with (the
    /// self-normalised estimators divide by it).
    pub fn round_value(&self, t: &RoundTerms, mean_w: f64) -> f64 {
        match *self {
            Self::Dm => t.q_policy,
            Self::Ips => t.weight * t.reward,
            Self::Snips => t.weight * t.reward / mean_w,
            Self::Dr => t.q_policy + t.weight * (t.reward - t.q_logged),
            Self::Sndr => t.q_policy + t.weight * (t.reward - t.q_logged) / mean_w,
            Self::SwitchDr { lambda } => {
                let keep = if t.weight <= lambda { 1.0 } else { 0.0 };
                t.q_policy + keep * t.weight * (t.reward - t.q_logged)
            }
            Self::DrOs { lambda } => {
                let shrunk = if lambda.is_infinite() {
                    t.weight
                } else {
                    lambda * t.weight / (t.weight * t.weight + lambda)
                };
                t.q_policy + shrunk * (t.reward - t.q_logged)
            }
        }
    }

    /// The seven estimators with Switch-DR's and DR-os's λ chosen by SLOPE on `terms` from
    /// [`LAMBDAS`], as the Open Bandit protocol does.
    pub fn tuned(terms: &[RoundTerms]) -> Vec<Self> {
        let switch: Vec<Self> = LAMBDAS
            .iter()
            .rev()
            .map(|&lambda| Self::SwitchDr { lambda })
            .collect();
        let shrink: Vec<Self> = LAMBDAS
            .iter()
            .map(|&lambda| Self::DrOs { lambda })
            .collect();
        vec![
            Self::Dm,
            Self::Ips,
            Self::Snips,
            Self::Dr,
            Self::Sndr,
            slope(terms, &switch, 0.1),
            slope(terms, &shrink, 0.1),
        ]
    }
}

/// The λ candidates the Open Bandit protocol tunes Switch-DR and DR-os over.
pub const LAMBDAS: [f64; 8] = [
    10.0,
    50.0,
    100.0,
    500.0,
    1_000.0,
    5_000.0,
    10_000.0,
    f64::INFINITY,
];

/// SLOPE (Su, Srinath and Krishnamurthy, 2020; the SLOPE++ form of Tucker and Lee, 2021, as
/// the Open Bandit Pipeline implements it): candidates ordered from the widest one-sided
/// Student-t bound (least bias) to the narrowest; walk down while each estimate stays within
/// `width_i + (√6 − 1) width_j` of every one before it, and keep the last that did.
pub fn slope(terms: &[RoundTerms], candidates: &[Estimator], delta: f64) -> Estimator {
    let n = terms.len();
    let all: Vec<usize> = (0..n).collect();
    let mean_w = terms.iter().map(|t| t.weight).sum::<f64>() / n.max(1) as f64;
    let t_quantile = student_t_quantile(1.0 - delta, n.saturating_sub(1).max(1) as f64);
    let scored: Vec<(f64, f64)> = candidates
        .iter()
        .map(|e| {
            let values: Vec<f64> = all
                .iter()
                .map(|&i| e.round_value(&terms[i], mean_w))
                .collect();
            let m = mean(&values);
            let var = values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n.max(1) as f64;
            (m, (var / (n.max(2) - 1) as f64).sqrt() * t_quantile)
        })
        .collect();
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    // Widest first; among equal widths the later candidate first, as numpy's reversed argsort.
    order.sort_by(|&a, &b| scored[b].1.total_cmp(&scored[a].1).then(b.cmp(&a)));
    let c = 6f64.sqrt() - 1.0;
    let mut kept: Vec<usize> = Vec::new();
    for (i, &idx) in order.iter().enumerate() {
        let (theta_i, cnf_i) = scored[idx];
        if kept
            .iter()
            .all(|&j| (scored[j].0 - theta_i).abs() <= cnf_i + c * scored[j].1)
        {
            kept.push(idx);
        } else {
            return candidates[order[i - 1]];
        }
    }
    candidates[*order.last().unwrap_or(&0)]
}

/// The Student-t quantile by the Cornish-Fisher expansion around the normal one (error far
/// below 1e-4 for the hundreds of degrees of freedom that logs have).
pub fn student_t_quantile(p: f64, dof: f64) -> f64 {
    let z = crate::stats::normal_quantile(p);
    let (z3, z5) = (z.powi(3), z.powi(5));
    z + (z3 + z) / (4.0 * dof) + (5.0 * z5 + 16.0 * z3 + 3.0 * z) / (96.0 * dof * dof)
}

/// One estimator's answer with its uncertainty.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// The estimator.
    pub estimator: &'static str,
    /// The point estimate.
    pub value: f64,
    /// Lower bound of the bootstrap interval.
    pub low: f64,
    /// Upper bound of the bootstrap interval.
    pub high: f64,
}

/// How much the log can say about the policy: computed from the importance weights.
#[derive(Debug, Clone, Serialize)]
pub struct WeightDiagnostics {
    /// Rounds.
    pub rounds: usize,
    /// `(Σw)² / Σw²`: how many rounds the weighted log is worth.
    pub effective_sample_size: f64,
    /// The largest weight.
    pub max_weight: f64,
    /// The share of all weight that the heaviest round carries.
    pub max_weight_share: f64,
    /// Mean weight (1 in expectation when the policies share support).
    pub mean_weight: f64,
    /// A warning a person should read before trusting IPS-type estimates, if any.
    pub warning: Option<String>,
}

/// The effective sample size and the heaviest weight, with a warning when one round carries
/// more than 5 % of the weight or the log is worth less than 1 % of its rounds.
pub fn diagnostics(terms: &[RoundTerms]) -> WeightDiagnostics {
    let sum: f64 = terms.iter().map(|t| t.weight).sum();
    let sum_sq: f64 = terms.iter().map(|t| t.weight * t.weight).sum();
    let max_weight = terms.iter().map(|t| t.weight).fold(0.0, f64::max);
    let ess = if sum_sq > 0.0 {
        sum * sum / sum_sq
    } else {
        0.0
    };
    let share = if sum > 0.0 { max_weight / sum } else { 0.0 };
    let mut warnings = Vec::new();
    if share > 0.05 {
        warnings.push(format!(
            "one round carries {:.1}% of all weight (max weight {max_weight:.1})",
            share * 100.0
        ));
    }
    if ess < 0.01 * terms.len() as f64 {
        warnings.push(format!(
            "effective sample size {ess:.1} is under 1% of {} rounds",
            terms.len()
        ));
    }
    if sum == 0.0 {
        warnings.push(
            "the evaluation policy never takes a logged action: the log says nothing about it"
                .into(),
        );
    }
    WeightDiagnostics {
        rounds: terms.len(),
        effective_sample_size: ess,
        max_weight,
        max_weight_share: share,
        mean_weight: sum / terms.len().max(1) as f64,
        warning: (!warnings.is_empty()).then(|| warnings.join("; ")),
    }
}

/// Estimates with percentile-bootstrap intervals at level `1 - alpha` (rounds resampled,
/// the reward model held fixed).
pub fn evaluate(
    terms: &[RoundTerms],
    estimators: &[Estimator],
    resamples: usize,
    alpha: f64,
    seed: u64,
) -> Vec<Estimate> {
    estimators
        .iter()
        .map(|e| {
            let mut rng = StdRng::seed_from_u64(seed);
            let (low, high) = bootstrap_interval(terms.len(), resamples, alpha, &mut rng, |rows| {
                e.estimate_on(terms, rows)
            });
            Estimate {
                estimator: e.name(),
                value: e.estimate(terms),
                low,
                high,
            }
        })
        .collect()
}

/// One slot of a logged slate, with marginal propensities at that slot.
#[derive(Debug, Clone, Copy)]
pub struct SlotTerms {
    /// `π_e(item at slot) / π_b(item at slot)`, marginal over the rest of the slate.
    pub weight: f64,
    /// The slot's reward.
    pub reward: f64,
}

/// A logged slate.
#[derive(Debug, Clone)]
pub struct SlateTerms {
    /// Its slots in order.
    pub slots: Vec<SlotTerms>,
    /// `π_e(slate) / π_b(slate)` for the whole ordered slate.
    pub slate_weight: f64,
}

/// Estimators of a slate policy's value (the expected sum of slot rewards).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum SlateEstimator {
    /// IPS on the whole slate: unbiased for any reward, high variance.
    SlateIps,
    /// Independent IPS: each slot by its own marginal weight; unbiased when a slot's reward
    /// depends on that slot's item only (the position-based click model).
    IndependentIps,
    /// The pseudo-inverse estimator (Swaminathan et al., 2017): unbiased when the slate
    /// reward is additive over slots.
    PseudoInverse,
}

impl SlateEstimator {
    /// Its name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::SlateIps => "slate-ips",
            Self::IndependentIps => "iips",
            Self::PseudoInverse => "pi",
        }
    }

    /// The estimate over `slates`.
    pub fn estimate(&self, slates: &[SlateTerms]) -> f64 {
        let values: Vec<f64> = slates
            .iter()
            .map(|s| {
                let total: f64 = s.slots.iter().map(|t| t.reward).sum();
                match self {
                    Self::SlateIps => s.slate_weight * total,
                    Self::IndependentIps => s.slots.iter().map(|t| t.weight * t.reward).sum(),
                    Self::PseudoInverse => {
                        let w = s.slots.iter().map(|t| t.weight).sum::<f64>()
                            - s.slots.len() as f64
                            + 1.0;
                        w * total
                    }
                }
            })
            .collect();
        mean(&values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng;

    /// A synthetic log with a known truth: two actions, rewards Bernoulli(0.2) and (0.6);
    /// behaviour picks action 1 with 0.3, the target with 0.8. Truth: 0.2*0.2 + 0.8*0.6 = 0.52.
    fn synthetic(n: usize, seed: u64) -> Vec<RoundTerms> {
        let mut rng = StdRng::seed_from_u64(seed);
        (0..n)
            .map(|_| {
                let a = usize::from(rng.random::<f64>() < 0.3);
                let p_b = if a == 1 { 0.3 } else { 0.7 };
                let p_e = if a == 1 { 0.8 } else { 0.2 };
                let mean_r = [0.2, 0.6][a];
                let reward = f64::from(rng.random::<f64>() < mean_r);
                // A deliberately biased reward model: off by 0.1 on both actions.
                let q = [0.3, 0.5];
                RoundTerms {
                    weight: p_e / p_b,
                    reward,
                    q_logged: q[a],
                    q_policy: 0.2 * q[0] + 0.8 * q[1],
                }
            })
            .collect()
    }

    #[test]
    fn unbiased_estimators_find_the_truth_and_dm_keeps_its_bias() {
        let terms = synthetic(200_000, 1);
        for e in [
            Estimator::Ips,
            Estimator::Snips,
            Estimator::Dr,
            Estimator::Sndr,
        ] {
            let v = e.estimate(&terms);
            assert!((v - 0.52).abs() < 0.01, "{}: {v}", e.name());
        }
        let dm = Estimator::Dm.estimate(&terms);
        assert!((dm - 0.46).abs() < 1e-9, "DM is the model's value: {dm}");
        // Switch-DR with a λ under every weight is DM; with a λ above every weight it is DR.
        let switch_low = Estimator::SwitchDr { lambda: 0.1 }.estimate(&terms);
        assert!((switch_low - dm).abs() < 1e-12);
        let switch_high = Estimator::SwitchDr { lambda: 1e9 }.estimate(&terms);
        assert!((switch_high - Estimator::Dr.estimate(&terms)).abs() < 1e-12);
    }

    #[test]
    fn intervals_cover_the_truth_and_narrow_with_data() {
        let small = evaluate(&synthetic(2_000, 2), &[Estimator::Ips], 300, 0.05, 3);
        let large = evaluate(&synthetic(50_000, 2), &[Estimator::Ips], 300, 0.05, 3);
        assert!(small[0].low < 0.52 && 0.52 < small[0].high, "{small:?}");
        assert!(large[0].high - large[0].low < (small[0].high - small[0].low) / 3.0);
    }

    #[test]
    fn diagnostics_warn_about_one_dominant_weight() {
        let mut terms = vec![
            RoundTerms {
                weight: 1.0,
                ..Default::default()
            };
            100
        ];
        assert!(diagnostics(&terms).warning.is_none());
        assert!((diagnostics(&terms).effective_sample_size - 100.0).abs() < 1e-9);
        terms[0].weight = 500.0;
        let d = diagnostics(&terms);
        assert!(
            d.warning.is_some() && d.effective_sample_size < 2.0,
            "{d:?}"
        );
    }
}
