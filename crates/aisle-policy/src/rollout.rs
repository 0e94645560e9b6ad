//! From a trained policy to serving it: the off-policy gate, shadow mode, a canary share of
//! traffic, full rollout, and automatic rollback when the online reward says worse.

use serde::Serialize;

use crate::experiment::{Split, compare_means};
use crate::ope::Estimate;

/// The gate's verdict on a candidate policy.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "verdict")]
pub enum GateDecision {
    /// The lower bound of the candidate's estimated value clears the current policy's value.
    Pass {
        /// By how much the lower bound clears the current value.
        margin: f64,
    },
    /// It does not; the reason says by how much.
    Fail {
        /// Why, in words.
        reason: String,
    },
}

/// A candidate serves only if the lower end of its off-policy interval (at the level the
/// estimate was made, 95 % by default) is above the current policy's value. A warning on the
/// weights (one round dominating, a tiny effective sample) also fails it: such an interval
/// cannot be trusted.
pub fn gate(
    candidate: &Estimate,
    current_value: f64,
    weight_warning: Option<&str>,
) -> GateDecision {
    if let Some(w) = weight_warning {
        return GateDecision::Fail {
            reason: format!("the estimate is not trustworthy: {w}"),
        };
    }
    if candidate.low > current_value {
        GateDecision::Pass {
            margin: candidate.low - current_value,
        }
    } else {
        GateDecision::Fail {
            reason: format!(
                "{}: the candidate's value is {:.6} (95% interval {:.6} to {:.6}); its lower bound does not clear the current {:.6}",
                candidate.estimator, candidate.value, candidate.low, candidate.high, current_value
            ),
        }
    }
}

/// Where a rollout stands.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "stage")]
pub enum Stage {
    /// The candidate ranks every request beside the current policy; only the current one is served.
    Shadow,
    /// The candidate serves `share` of users (sticky by user).
    Canary {
        /// The share of users it serves.
        share: f64,
    },
    /// The candidate serves everyone.
    Full,
    /// The canary did worse online and was withdrawn.
    RolledBack {
        /// Why, with the numbers.
        reason: String,
    },
}

/// Thresholds of a rollout.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct RolloutConfig {
    /// Shadow requests before the canary starts.
    pub shadow_requests: u64,
    /// The canary's share of users.
    pub canary_share: f64,
    /// Rewarded impressions per arm before the canary is judged.
    pub min_impressions: u64,
    /// Confidence level of the judgement.
    pub alpha: f64,
}

impl Default for RolloutConfig {
    fn default() -> Self {
        Self {
            shadow_requests: 1_000,
            canary_share: 0.1,
            min_impressions: 2_000,
            alpha: 0.05,
        }
    }
}

/// Sums of the online reward of one arm.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ArmStats {
    /// Impressions.
    pub n: u64,
    /// Summed reward.
    pub sum: f64,
    /// Summed squared reward.
    pub sum_sq: f64,
}

impl ArmStats {
    /// Adds one impression's reward.
    pub fn add(&mut self, reward: f64) {
        self.n += 1;
        self.sum += reward;
        self.sum_sq += reward * reward;
    }

    /// Mean reward.
    pub fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum / self.n as f64
        }
    }

    /// Sample variance.
    pub fn variance(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        let n = self.n as f64;
        ((self.sum_sq - self.sum * self.sum / n) / (n - 1.0)).max(0.0)
    }
}

/// One candidate's way from shadow to full traffic.
#[derive(Debug, Clone, Serialize)]
pub struct Rollout {
    /// The candidate policy's id.
    pub candidate: String,
    /// The policy it would replace.
    pub current: String,
    /// Where it stands.
    pub stage: Stage,
    /// Its thresholds.
    pub config: RolloutConfig,
    /// Shadow requests seen.
    pub shadow_seen: u64,
    /// Online reward of the candidate's users.
    pub candidate_stats: ArmStats,
    /// Online reward of everyone else.
    pub current_stats: ArmStats,
    split: Split,
}

impl Rollout {
    /// Starts a rollout of a candidate that passed the gate (in shadow mode).
    pub fn start(
        candidate: &str,
        current: &str,
        gate: &GateDecision,
        config: RolloutConfig,
    ) -> Result<Self, String> {
        if let GateDecision::Fail { reason } = gate {
            return Err(format!("{candidate} did not pass the gate: {reason}"));
        }
        Ok(Self::new(candidate, current, config))
    }

    /// Starts a rollout in shadow mode for a candidate whose gate was passed elsewhere (a
    /// deployment judged offline and handed to the server).
    pub fn new(candidate: &str, current: &str, config: RolloutConfig) -> Self {
        Self {
            candidate: candidate.to_owned(),
            current: current.to_owned(),
            stage: Stage::Shadow,
            config,
            shadow_seen: 0,
            candidate_stats: ArmStats::default(),
            current_stats: ArmStats::default(),
            split: Split::new(
                &format!("rollout:{candidate}"),
                &[1.0 - config.canary_share, config.canary_share],
            ),
        }
    }

    /// Whether `user`'s request is served by the candidate now.
    pub fn serves_candidate(&self, user: &str) -> bool {
        match self.stage {
            Stage::Shadow | Stage::RolledBack { .. } => false,
            Stage::Full => true,
            Stage::Canary { .. } => self.split.assign(user) == 1,
        }
    }

    /// Counts a shadow request; after enough of them the canary starts.
    pub fn shadow_request(&mut self) {
        if self.stage == Stage::Shadow {
            self.shadow_seen += 1;
            if self.shadow_seen >= self.config.shadow_requests {
                self.stage = Stage::Canary {
                    share: self.config.canary_share,
                };
            }
        }
    }

    /// Records the reward of one impression served to `user`, then reviews the canary.
    pub fn record(&mut self, user: &str, reward: f64) -> &Stage {
        let candidate = self.serves_candidate(user);
        self.record_arm(candidate, reward)
    }

    /// Records the reward of one impression the candidate (`candidate`) or the current
    /// policy served during the canary, then reviews it. Rewards outside the canary (a list
    /// served in shadow mode, or one whose reward arrives after the verdict) are ignored.
    pub fn record_arm(&mut self, candidate: bool, reward: f64) -> &Stage {
        if matches!(self.stage, Stage::Canary { .. }) {
            if candidate {
                self.candidate_stats.add(reward);
            } else {
                self.current_stats.add(reward);
            }
            self.review();
        }
        &self.stage
    }

    /// Rolls back when the candidate's reward is worse at the set confidence, promotes it
    /// when it is better; otherwise the canary goes on.
    fn review(&mut self) {
        let (c, o) = (self.candidate_stats, self.current_stats);
        if c.n < self.config.min_impressions || o.n < self.config.min_impressions {
            return;
        }
        let cmp = compare_means(&c, &o, self.config.alpha);
        if cmp.high < 0.0 {
            self.stage = Stage::RolledBack {
                reason: format!(
                    "online reward {:.5} vs {:.5} for {}: difference {:.5} (95% interval {:.5} to {:.5}) after {} and {} impressions",
                    c.mean(),
                    o.mean(),
                    self.current,
                    cmp.difference,
                    cmp.low,
                    cmp.high,
                    c.n,
                    o.n
                ),
            };
        } else if cmp.low > 0.0 {
            self.stage = Stage::Full;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    fn estimate(value: f64, low: f64, high: f64) -> Estimate {
        Estimate {
            estimator: "snipw",
            value,
            low,
            high,
        }
    }

    #[test]
    fn the_gate_needs_the_lower_bound_above_the_current_value() {
        assert!(matches!(
            gate(&estimate(0.06, 0.052, 0.07), 0.05, None),
            GateDecision::Pass { .. }
        ));
        // Better on average, but the interval reaches under the current value.
        assert!(matches!(
            gate(&estimate(0.06, 0.045, 0.07), 0.05, None),
            GateDecision::Fail { .. }
        ));
        assert!(matches!(
            gate(
                &estimate(0.06, 0.055, 0.07),
                0.05,
                Some("one round carries 40%")
            ),
            GateDecision::Fail { .. }
        ));
    }

    /// A canary whose users click less is withdrawn; one whose users click more is promoted.
    #[test]
    fn a_worse_canary_is_rolled_back_and_a_better_one_promoted() {
        for (candidate_rate, expect_back) in [(0.03, true), (0.08, false)] {
            let pass = GateDecision::Pass { margin: 0.001 };
            let mut r = Rollout::start(
                "planted",
                "current",
                &pass,
                RolloutConfig {
                    shadow_requests: 10,
                    ..Default::default()
                },
            )
            .unwrap();
            for _ in 0..10 {
                r.shadow_request();
            }
            assert!(matches!(r.stage, Stage::Canary { .. }));
            let mut rng = StdRng::seed_from_u64(5);
            for u in 0..400_000 {
                let user = format!("user-{u}");
                let rate = if r.serves_candidate(&user) {
                    candidate_rate
                } else {
                    0.05
                };
                let reward = f64::from(rng.random::<f64>() < rate);
                if !matches!(r.record(&user, reward), Stage::Canary { .. }) {
                    break;
                }
            }
            assert_eq!(
                matches!(r.stage, Stage::RolledBack { .. }),
                expect_back,
                "{:?}",
                r.stage
            );
            assert_eq!(r.stage == Stage::Full, !expect_back, "{:?}", r.stage);
        }
    }
}
