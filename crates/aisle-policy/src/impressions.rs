//! aisle's own logs: served lists (impressions) joined with what shoppers did afterwards.
//!
//! An event is a reward of a shown item when it names the item and either carries the
//! list's impression id or, carrying none, comes from the same user within the attribution
//! window after the list was served. Each slot's reward is the largest weight among its
//! events (a click then a purchase of the same item counts as the purchase).

use std::collections::HashMap;

use aisle_core::{Event, EventKind, Impression};
use serde::Serialize;

use crate::ope::RoundTerms;
use crate::policy::ServingPolicy;

/// Which events reward a shown item, and by how much.
#[derive(Debug, Clone, Serialize)]
pub struct RewardRule {
    /// Weight per event kind; kinds not listed earn nothing.
    pub weights: Vec<(EventKind, f64)>,
    /// Events without an impression id count within this long after the list was served.
    pub window_ms: i64,
    /// Multiply a purchase's weight by its value (price x quantity) where it has one.
    pub purchase_value: bool,
}

impl Default for RewardRule {
    fn default() -> Self {
        Self {
            weights: vec![
                (EventKind::Click, 1.0),
                (EventKind::AddToCart, 1.0),
                (EventKind::Purchase, 1.0),
            ],
            window_ms: 30 * 60 * 1000,
            purchase_value: false,
        }
    }
}

impl RewardRule {
    /// Parses `kind=weight,kind=weight` (kinds as events name them: click, add_to_cart, ...).
    pub fn parse_weights(text: &str) -> Result<Vec<(EventKind, f64)>, String> {
        text.split(',')
            .filter(|p| !p.trim().is_empty())
            .map(|pair| {
                let (kind, weight) = pair
                    .split_once('=')
                    .ok_or_else(|| format!("{pair:?} is not kind=weight"))?;
                let kind = EventKind::parse_builtin(kind.trim())
                    .ok_or_else(|| format!("{kind:?} is not a built-in event kind"))?;
                let weight: f64 = weight
                    .trim()
                    .parse()
                    .map_err(|_| format!("{weight:?} is not a number"))?;
                Ok((kind, weight))
            })
            .collect()
    }

    fn reward_of(&self, e: &Event) -> f64 {
        let Some(&(_, w)) = self.weights.iter().find(|(k, _)| *k == e.kind) else {
            return 0.0;
        };
        if self.purchase_value && e.kind == EventKind::Purchase {
            let value =
                e.payload.price.unwrap_or(1.0) * f64::from(e.payload.quantity.unwrap_or(1.0));
            w * value
        } else {
            w
        }
    }
}

/// A served list with the reward of each shown item.
#[derive(Debug, Clone)]
pub struct RewardedList {
    /// The list.
    pub impression: Impression,
    /// One reward per shown item.
    pub rewards: Vec<f64>,
}

/// Joins impressions with the events that reward them.
pub fn attribute(
    impressions: Vec<Impression>,
    events: &[Event],
    rule: &RewardRule,
) -> Vec<RewardedList> {
    let mut by_impression: HashMap<u64, Vec<&Event>> = HashMap::new();
    let mut by_user: HashMap<u32, Vec<&Event>> = HashMap::new();
    for e in events {
        if rule.reward_of(e) == 0.0 || e.item.is_none() {
            continue;
        }
        match e.payload.impression {
            Some(id) => by_impression.entry(id).or_default().push(e),
            None => by_user.entry(e.user.0).or_default().push(e),
        }
    }
    for list in by_user.values_mut() {
        list.sort_by_key(|e| e.timestamp_ms);
    }
    impressions
        .into_iter()
        .map(|imp| {
            let tagged = by_impression.get(&imp.id).map_or(&[][..], Vec::as_slice);
            let nearby: &[&Event] = imp
                .user
                .and_then(|u| by_user.get(&u.0))
                .map_or(&[][..], Vec::as_slice);
            let start = nearby.partition_point(|e| e.timestamp_ms < imp.at_ms);
            let end = nearby.partition_point(|e| e.timestamp_ms <= imp.at_ms + rule.window_ms);
            let rewards = imp
                .shown
                .iter()
                .map(|s| {
                    tagged
                        .iter()
                        .chain(&nearby[start..end])
                        .filter(|e| e.item == Some(s.item))
                        .map(|e| rule.reward_of(e))
                        .fold(0.0, f64::max)
                })
                .collect();
            RewardedList {
                impression: imp,
                rewards,
            }
        })
        .collect()
}

/// Per-slot off-policy terms of `candidate` on logged lists, with prefix weights: slot `l`'s
/// weight is the product over slots `1..=l` of the candidate's probability over the logged
/// one, each given the slots above. That is unbiased for a slot's reward when it depends on
/// the items at and above that slot (a user reads down the list), whatever the list length.
/// The reward-model terms are zero (no features are logged for a model).
pub fn slot_terms(lists: &[RewardedList], candidate: &ServingPolicy) -> Vec<RoundTerms> {
    let mut out = Vec::new();
    for list in lists {
        let imp = &list.impression;
        let scores: Vec<f64> = imp.scores.iter().map(|&s| f64::from(s)).collect();
        let shown: Vec<usize> = imp
            .shown
            .iter()
            .filter_map(|s| imp.candidates.iter().position(|&c| c == s.item))
            .collect();
        if shown.len() != imp.shown.len() || scores.len() != imp.candidates.len() {
            continue; // a malformed record says nothing
        }
        let target = candidate.slate_probabilities(&scores, &shown);
        let mut weight = 1.0;
        for ((s, p_e), r) in imp.shown.iter().zip(target).zip(&list.rewards) {
            weight *= p_e / f64::from(s.propensity).max(f64::MIN_POSITIVE);
            out.push(RoundTerms {
                weight,
                reward: *r,
                q_logged: 0.0,
                q_policy: 0.0,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use aisle_core::{EventPayload, ItemId, ShownItem, UserId};

    fn event(user: u32, item: u32, kind: EventKind, t: i64, impression: Option<u64>) -> Event {
        Event {
            user: UserId(user),
            item: Some(ItemId(item)),
            kind,
            timestamp_ms: t,
            session: None,
            payload: EventPayload {
                impression,
                ..Default::default()
            },
        }
    }

    fn list(id: u64, user: u32, at: i64) -> Impression {
        Impression {
            id,
            at_ms: at,
            surface: "recommend".into(),
            policy: "p".into(),
            policy_version: 1,
            user: Some(UserId(user)),
            session: None,
            candidates: vec![ItemId(1), ItemId(2), ItemId(3)],
            scores: vec![3.0, 2.0, 1.0],
            shown: vec![
                ShownItem {
                    item: ItemId(1),
                    propensity: 0.9,
                },
                ShownItem {
                    item: ItemId(3),
                    propensity: 0.05,
                },
            ],
        }
    }

    #[test]
    fn rewards_come_from_tagged_events_and_the_window() {
        let rule = RewardRule {
            window_ms: 1_000,
            ..Default::default()
        };
        let events = [
            event(7, 1, EventKind::Click, 1_500, None), // in the window: slot 0
            event(7, 3, EventKind::Purchase, 9_000, Some(5)), // tagged, late: slot 1
            event(7, 3, EventKind::Click, 9_500, None), // outside the window
            event(8, 1, EventKind::Click, 1_200, None), // another user
            event(7, 1, EventKind::View, 1_100, None),  // not a rewarded kind
        ];
        let out = attribute(vec![list(5, 7, 1_000)], &events, &rule);
        assert_eq!(out[0].rewards, [1.0, 1.0]);
        let out = attribute(vec![list(6, 8, 5_000)], &events, &rule);
        assert_eq!(out[0].rewards, [0.0, 0.0]);
    }

    #[test]
    fn prefix_weights_multiply_down_the_list() {
        let lists = [RewardedList {
            impression: list(5, 7, 0),
            rewards: vec![1.0, 0.0],
        }];
        // The logging policy's own probabilities give weight 1 on every slot.
        let logged = ServingPolicy::EpsilonGreedy { epsilon: 0.15 };
        let p = logged.slate_probabilities(&[3.0, 2.0, 1.0], &[0, 2]);
        assert!(
            (p[0] - 0.9).abs() < 1e-12 && (p[1] - 0.075).abs() < 1e-12,
            "{p:?}"
        );
        let terms = slot_terms(&lists, &ServingPolicy::Deterministic);
        assert!((terms[0].weight - 1.0 / 0.9).abs() < 1e-6);
        assert_eq!(
            terms[1].weight, 0.0,
            "the ranking never shows item 3 second"
        );
    }
}

/// What the log says of a candidate policy: its IPS and SNIPS values per shown slot with
/// bootstrap intervals, the weights' diagnostics, the logging policies' own value and the
/// deployment gate's verdict (SNIPS's lower bound against that value).
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// Lists judged on.
    pub lists: usize,
    /// Their shown slots.
    pub slots: usize,
    /// Slots the estimators used (a malformed list's are left out).
    pub rounds: usize,
    /// The logging policies' mean reward per shown slot, on-policy.
    pub logged_value: f64,
    /// IPS then SNIPS.
    pub estimates: Vec<crate::ope::Estimate>,
    /// Effective sample size, the largest weight, a warning.
    pub diagnostics: crate::ope::WeightDiagnostics,
    /// Whether it may serve.
    pub gate: crate::rollout::GateDecision,
}

impl Judgement {
    /// The SNIPS estimate, the one the gate reads.
    pub fn snips(&self) -> &crate::ope::Estimate {
        &self.estimates[1]
    }

    /// The gate's verdict in words.
    pub fn verdict(&self) -> String {
        match &self.gate {
            crate::rollout::GateDecision::Pass { margin } => format!(
                "SNIPS lower bound {:.6} clears the current {:.6} by {margin:.6}",
                self.snips().low,
                self.logged_value
            ),
            crate::rollout::GateDecision::Fail { reason } => reason.clone(),
        }
    }
}

/// Judges `candidate` on rewarded lists (`resamples` bootstrap draws, 95% intervals).
pub fn judge(
    lists: &[RewardedList],
    candidate: &ServingPolicy,
    resamples: usize,
    seed: u64,
) -> Judgement {
    use crate::ope::{Estimator, diagnostics, evaluate};
    let terms = slot_terms(lists, candidate);
    let rewards: Vec<f64> = lists
        .iter()
        .flat_map(|l| l.rewards.iter().copied())
        .collect();
    let logged_value = crate::stats::mean(&rewards);
    let estimates = evaluate(
        &terms,
        &[Estimator::Ips, Estimator::Snips],
        resamples,
        0.05,
        seed,
    );
    let diagnostics = diagnostics(&terms);
    let gate = crate::rollout::gate(&estimates[1], logged_value, diagnostics.warning.as_deref());
    Judgement {
        lists: lists.len(),
        slots: rewards.len(),
        rounds: terms.len(),
        logged_value,
        estimates,
        diagnostics,
        gate,
    }
}
