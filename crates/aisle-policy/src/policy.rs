//! Serving policies over a recommender's candidates, each able to say exactly how probable
//! the slate it served was, slot by slot.
//!
//! A slate is filled slot by slot; the propensity recorded for a slot is the probability
//! that the policy put that item there given the items above it, so the probability of the
//! whole ordered slate is their product. All policies but [`ServingPolicy::Deterministic`]
//! keep a floor under every candidate's chance, so any other policy over the same
//! candidates stays evaluable from their logs.

use rand::{Rng, RngCore};
use serde::{Deserialize, Serialize};

/// How a served list is drawn from scored candidates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind")]
pub enum ServingPolicy {
    /// The top scores in order (today's behaviour): every propensity is 1, and nothing else
    /// can be evaluated from its log.
    Deterministic,
    /// Each slot: the best remaining candidate with probability `1 - epsilon`, otherwise one
    /// of the remaining candidates uniformly.
    EpsilonGreedy {
        /// The chance of a uniform pick at each slot.
        epsilon: f64,
    },
    /// Plackett-Luce sampling without replacement from `softmax(score / temperature)`, mixed
    /// with a uniform floor of weight `floor`.
    PlackettLuce {
        /// Softmax temperature over the scores.
        temperature: f64,
        /// Weight of the uniform mixture (the minimum exploration).
        floor: f64,
    },
}

impl Default for ServingPolicy {
    fn default() -> Self {
        Self::EpsilonGreedy { epsilon: 0.05 }
    }
}

/// One served item.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Pick {
    /// Index into the candidate list.
    pub candidate: usize,
    /// Probability of this item in this slot given the slots above.
    pub propensity: f64,
}

impl ServingPolicy {
    /// A name for logs and reports.
    pub fn name(&self) -> String {
        match self {
            Self::Deterministic => "deterministic".into(),
            Self::EpsilonGreedy { epsilon } => format!("epsilon-greedy({epsilon})"),
            Self::PlackettLuce { temperature, floor } => {
                format!("plackett-luce(t={temperature},floor={floor})")
            }
        }
    }

    /// The setting that parses back into this policy (see its `FromStr`).
    pub fn setting(&self) -> String {
        match self {
            Self::Deterministic => "deterministic".into(),
            Self::EpsilonGreedy { epsilon } => format!("epsilon-greedy:{epsilon}"),
            Self::PlackettLuce { temperature, floor } => {
                format!("plackett-luce:{temperature}:{floor}")
            }
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<(), String> {
        match *self {
            Self::Deterministic => Ok(()),
            Self::EpsilonGreedy { epsilon } if (0.0..=1.0).contains(&epsilon) && epsilon > 0.0 => {
                Ok(())
            }
            Self::EpsilonGreedy { .. } => Err("epsilon must be in (0, 1]".into()),
            Self::PlackettLuce { temperature, floor }
                if temperature > 0.0 && temperature.is_finite() && (0.0..=1.0).contains(&floor) =>
            {
                Ok(())
            }
            Self::PlackettLuce { .. } => Err("temperature must be > 0 and floor in [0, 1]".into()),
        }
    }

    /// The probability of each remaining candidate for the next slot.
    pub fn slot_probabilities(&self, scores: &[f64], remaining: &[usize]) -> Vec<f64> {
        let m = remaining.len();
        if m == 0 {
            return Vec::new();
        }
        let best = argmax(scores, remaining);
        match *self {
            Self::Deterministic => remaining.iter().map(|&c| f64::from(c == best)).collect(),
            Self::EpsilonGreedy { epsilon } => remaining
                .iter()
                .map(|&c| epsilon / m as f64 + if c == best { 1.0 - epsilon } else { 0.0 })
                .collect(),
            Self::PlackettLuce { temperature, floor } => {
                let top = scores[best] / temperature;
                let e: Vec<f64> = remaining
                    .iter()
                    .map(|&c| (scores[c] / temperature - top).exp())
                    .collect();
                let z: f64 = e.iter().sum();
                e.iter()
                    .map(|v| (1.0 - floor) * v / z + floor / m as f64)
                    .collect()
            }
        }
    }

    /// Draws a slate of up to `k` of the candidates with these scores.
    pub fn choose(&self, scores: &[f64], k: usize, rng: &mut dyn RngCore) -> Vec<Pick> {
        let mut remaining: Vec<usize> = (0..scores.len()).collect();
        let mut picks = Vec::with_capacity(k.min(scores.len()));
        while picks.len() < k && !remaining.is_empty() {
            let probs = self.slot_probabilities(scores, &remaining);
            let mut u = rng.random::<f64>() * probs.iter().sum::<f64>();
            let mut at = probs.len() - 1;
            for (j, p) in probs.iter().enumerate() {
                if u < *p {
                    at = j;
                    break;
                }
                u -= p;
            }
            // A zero-probability pick can only come from rounding at the last slot; take the best.
            if probs[at] == 0.0 {
                at = probs.iter().position(|&p| p > 0.0).unwrap_or(0);
            }
            picks.push(Pick {
                candidate: remaining[at],
                propensity: probs[at],
            });
            remaining.remove(at);
        }
        picks
    }

    /// The per-slot probabilities this policy gives an already served ordered slate
    /// (`slate` are candidate indices): what off-policy evaluation of this policy needs.
    pub fn slate_probabilities(&self, scores: &[f64], slate: &[usize]) -> Vec<f64> {
        let mut remaining: Vec<usize> = (0..scores.len()).collect();
        slate
            .iter()
            .map(|&c| {
                let probs = self.slot_probabilities(scores, &remaining);
                let p = remaining
                    .iter()
                    .position(|&r| r == c)
                    .map_or(0.0, |j| probs[j]);
                remaining.retain(|&r| r != c);
                p
            })
            .collect()
    }
}

impl std::str::FromStr for ServingPolicy {
    type Err = String;

    /// `deterministic`, `epsilon-greedy:EPSILON` or `plackett-luce:TEMPERATURE:FLOOR`.
    fn from_str(text: &str) -> Result<Self, String> {
        let mut parts = text.split(':');
        let number = |p: Option<&str>, what: &str| -> Result<f64, String> {
            p.ok_or_else(|| format!("{text:?} needs its {what}"))?
                .parse::<f64>()
                .map_err(|_| format!("{text:?}: the {what} is not a number"))
        };
        let policy = match parts.next() {
            Some("deterministic") => Self::Deterministic,
            Some("epsilon-greedy") => Self::EpsilonGreedy {
                epsilon: number(parts.next(), "epsilon")?,
            },
            Some("plackett-luce") => Self::PlackettLuce {
                temperature: number(parts.next(), "temperature")?,
                floor: number(parts.next(), "floor")?,
            },
            _ => {
                return Err(format!(
                    "{text:?} is not a serving policy: use deterministic, epsilon-greedy:EPSILON or plackett-luce:TEMPERATURE:FLOOR"
                ));
            }
        };
        if parts.next().is_some() {
            return Err(format!("{text:?} has more parts than its policy takes"));
        }
        policy.validate().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(policy)
    }
}

fn argmax(scores: &[f64], among: &[usize]) -> usize {
    let mut best = among[0];
    for &c in among {
        if scores[c] > scores[best] {
            best = c;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SCORES: [f64; 5] = [0.9, 0.1, 0.5, 0.3, 0.7];

    #[test]
    fn slot_probabilities_sum_to_one_and_keep_the_floor() {
        for policy in [
            ServingPolicy::EpsilonGreedy { epsilon: 0.1 },
            ServingPolicy::PlackettLuce {
                temperature: 0.2,
                floor: 0.05,
            },
        ] {
            let p = policy.slot_probabilities(&SCORES, &[0, 1, 2, 3, 4]);
            assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{p:?}");
            assert!(
                p.iter().all(|&v| v >= 0.01 - 1e-12),
                "{} {p:?}",
                policy.name()
            );
        }
    }

    /// The logged propensities are the frequencies with which slates are actually drawn.
    #[test]
    fn logged_propensities_match_sampling_frequencies() {
        let policy = ServingPolicy::PlackettLuce {
            temperature: 0.3,
            floor: 0.1,
        };
        let mut rng = StdRng::seed_from_u64(4);
        let n = 200_000;
        let target = [0usize, 4];
        let mut hits = 0;
        for _ in 0..n {
            let s = policy.choose(&SCORES, 2, &mut rng);
            if s[0].candidate == target[0] && s[1].candidate == target[1] {
                hits += 1;
            }
        }
        let expected: f64 = policy
            .slate_probabilities(&SCORES, &target)
            .iter()
            .product();
        let observed = f64::from(hits) / f64::from(n);
        assert!(
            (observed - expected).abs() < 4.0 * (expected / f64::from(n)).sqrt(),
            "{observed} vs {expected}"
        );
        let drawn = policy.choose(&SCORES, 3, &mut rng);
        let again = policy.slate_probabilities(
            &SCORES,
            &drawn.iter().map(|p| p.candidate).collect::<Vec<_>>(),
        );
        for (p, q) in drawn.iter().zip(again) {
            assert!((p.propensity - q).abs() < 1e-12);
        }
    }

    #[test]
    fn policies_parse_from_settings() {
        assert_eq!(
            "epsilon-greedy:0.1".parse(),
            Ok(ServingPolicy::EpsilonGreedy { epsilon: 0.1 })
        );
        assert_eq!("deterministic".parse(), Ok(ServingPolicy::Deterministic));
        assert!("epsilon-greedy:1.5".parse::<ServingPolicy>().is_err());
        assert!("softmax".parse::<ServingPolicy>().is_err());
        assert!("plackett-luce:0.5".parse::<ServingPolicy>().is_err());
    }

    #[test]
    fn deterministic_is_top_k() {
        let mut rng = StdRng::seed_from_u64(1);
        let s = ServingPolicy::Deterministic.choose(&SCORES, 3, &mut rng);
        assert_eq!(s.iter().map(|p| p.candidate).collect::<Vec<_>>(), [0, 4, 2]);
        assert!(s.iter().all(|p| p.propensity == 1.0));
    }
}
