//! What shoppers do with served lists, as it happens: each list's reward (the weights of the
//! rewarded events that name its impression within the attribution window), summed per
//! serving policy and per minute, and a canary's judgement on them.
//!
//! A list stays open for the reward rule's window after it is served; then its reward is
//! final and counts. Only events that carry the impression id count here, the exact
//! attribution the engine can make as events arrive; the offline path (`aisle policy`) also
//! credits events that follow a list within the window without naming it. Open lists are
//! bounded ([`MAX_OPEN_LISTS`]): past that the oldest is closed early with what it has.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use aisle_core::Event;
use aisle_policy::experiment::compare_means;
use aisle_policy::impressions::RewardRule;
use aisle_policy::policy::ServingPolicy;
use aisle_policy::rollout::{Rollout, RolloutConfig, Stage};
use serde::Serialize;
use utoipa::ToSchema;

use crate::strategy::Strategy;

/// Most served lists waiting for their reward window to close.
pub const MAX_OPEN_LISTS: usize = 200_000;
/// Minutes of reward history kept per policy (the dashboard's chart).
const MINUTES_KEPT: usize = 120;

/// Told when a canary's verdict is reached (rolled back or promoted), so that the verdict
/// outlives the process (the CLI rewrites the deployed policy's file).
#[derive(Clone)]
pub struct DecisionHook(pub Arc<dyn Fn(&Stage) + Send + Sync>);

impl fmt::Debug for DecisionHook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DecisionHook")
    }
}

/// A candidate policy rolled out over the current one: shadow, canary, then full traffic or
/// rollback, judged on the online reward of the lists each one served.
#[derive(Clone, Debug)]
pub struct Canary {
    /// The candidate.
    pub candidate: Strategy,
    /// Shadow length, canary share, the impressions needed and the confidence.
    pub config: RolloutConfig,
    /// Called once with the verdict.
    pub on_decision: Option<DecisionHook>,
}

/// Online reward of one policy.
#[derive(Clone, Debug, Default, Serialize, ToSchema)]
pub struct PolicyReward {
    /// The policy's id.
    pub policy: String,
    /// Its version.
    pub policy_version: u32,
    /// Lists whose reward window has closed.
    pub lists: u64,
    /// Those with any reward.
    pub rewarded: u64,
    /// Mean reward per closed list.
    pub mean_reward: f64,
    /// Per minute served, the latest 120 minutes with lists.
    pub minutes: Vec<MinuteReward>,
    #[serde(skip)]
    reward_sum: f64,
}

impl PolicyReward {
    fn add(&mut self, at_ms: i64, reward: f64) {
        self.lists += 1;
        self.rewarded += u64::from(reward > 0.0);
        self.reward_sum += reward;
        self.mean_reward = self.reward_sum / self.lists as f64;
        let minute = at_ms - at_ms.rem_euclid(60_000);
        match self.minutes.last_mut() {
            Some(m) if m.minute_ms == minute => {
                m.mean_reward = (m.mean_reward * m.lists as f64 + reward) / (m.lists + 1) as f64;
                m.lists += 1;
            }
            _ => {
                self.minutes.push(MinuteReward {
                    minute_ms: minute,
                    lists: 1,
                    mean_reward: reward,
                });
                if self.minutes.len() > MINUTES_KEPT {
                    self.minutes.remove(0);
                }
            }
        }
    }
}

/// The lists of one policy served in one minute.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MinuteReward {
    /// The minute's start, in ms since the epoch.
    pub minute_ms: i64,
    /// Lists served in it whose window has closed.
    pub lists: u64,
    /// Their mean reward.
    pub mean_reward: f64,
}

/// Welch's interval on a difference of means.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Difference {
    /// Candidate minus current.
    pub difference: f64,
    /// Lower end.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// A rollout as the status route shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct RolloutStatus {
    /// The candidate's id.
    pub candidate: String,
    /// Its version.
    pub candidate_version: u32,
    /// The policy it would replace.
    pub current: String,
    /// `shadow`, `canary`, `full` or `rolled-back`.
    pub stage: String,
    /// Why it was rolled back, with the numbers.
    pub reason: Option<String>,
    /// The canary's share of audiences.
    pub canary_share: f64,
    /// Shadow requests seen.
    pub shadow_seen: u64,
    /// Canary lists the candidate served whose reward is final, and their mean reward.
    pub candidate_lists: u64,
    /// The candidate's mean reward per list in the canary.
    pub candidate_reward: f64,
    /// Canary lists the current policy served, and their mean reward.
    pub current_lists: u64,
    /// The current policy's mean reward per list in the canary.
    pub current_reward: f64,
    /// The interval on the difference (candidate minus current) at the rollout's level, once
    /// both arms have lists.
    pub difference: Option<Difference>,
}

/// Which policy serves a list.
#[derive(Clone, Debug)]
pub(crate) struct Choice {
    pub policy: ServingPolicy,
    pub id: String,
    pub version: u32,
    /// `Some(true)` for the candidate's canary lists, `Some(false)` for the current policy's
    /// lists while a canary runs, `None` otherwise.
    arm: Option<bool>,
}

impl Choice {
    fn of(strategy: &Strategy, arm: Option<bool>) -> Self {
        Self {
            policy: strategy.policy,
            id: strategy.id.clone(),
            version: strategy.version,
            arm,
        }
    }
}

struct Open {
    policy: usize,
    arm: Option<bool>,
    reward: f64,
}

#[derive(Default)]
struct State {
    open: HashMap<u64, Open>,
    /// Open lists in the order served (their ids sort by time).
    order: VecDeque<u64>,
    /// Few: the policies this process serves.
    policies: Vec<PolicyReward>,
    rollout: Option<Rollout>,
    decided: bool,
}

/// The online rewards and the rollout, shared by the readers (who serve) and the writer
/// (who stores the rewarded events).
pub(crate) struct Online {
    state: Mutex<State>,
    rule: RewardRule,
    current: Strategy,
    by_surface: Vec<(String, Strategy)>,
    canary: Option<Canary>,
    fixed_clock_ms: Option<i64>,
}

/// When a list was served: its id carries the time in its high bits.
fn served_at(id: u64) -> i64 {
    i64::try_from(id >> 20).unwrap_or(i64::MAX)
}

impl Online {
    pub(crate) fn new(
        current: Strategy,
        by_surface: Vec<(String, Strategy)>,
        canary: Option<Canary>,
        rule: RewardRule,
        fixed_clock_ms: Option<i64>,
    ) -> Self {
        // The gate was passed offline (`aisle policy deploy`); the rollout starts in shadow.
        let rollout = canary
            .as_ref()
            .map(|c| Rollout::new(&c.candidate.id, &current.id, c.config));
        Self {
            state: Mutex::new(State {
                rollout,
                ..State::default()
            }),
            rule,
            current,
            by_surface,
            canary,
            fixed_clock_ms,
        }
    }

    fn now_ms(&self) -> i64 {
        self.fixed_clock_ms.unwrap_or_else(crate::now_ms)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The policy that serves a list for `audience` (a user, a session or, for an anonymous
    /// list, the list itself): the rollout's stage decides between the current policy and the
    /// candidate. A list that does not explore is served as ranked.
    pub(crate) fn choose(&self, audience: &str, surface: &str, explore: bool) -> Choice {
        if !explore {
            return Choice {
                policy: ServingPolicy::Deterministic,
                id: "ranking".into(),
                version: 1,
                arm: None,
            };
        }
        // A surface with its own policy keeps it; a rollout replaces the shared one only.
        if let Some((_, own)) = self.by_surface.iter().find(|(s, _)| s == surface) {
            return Choice::of(own, None);
        }
        let Some(canary) = &self.canary else {
            return Choice::of(&self.current, None);
        };
        let mut state = self.lock();
        let Some(rollout) = state.rollout.as_mut() else {
            return Choice::of(&self.current, None);
        };
        match rollout.stage {
            Stage::Shadow => {
                rollout.shadow_request();
                Choice::of(&self.current, None)
            }
            Stage::Canary { .. } if rollout.serves_candidate(audience) => {
                Choice::of(&canary.candidate, Some(true))
            }
            Stage::Canary { .. } => Choice::of(&self.current, Some(false)),
            Stage::Full => Choice::of(&canary.candidate, None),
            Stage::RolledBack { .. } => Choice::of(&self.current, None),
        }
    }

    /// A list was served (and logged) under `choice`; it is open for rewards until the window
    /// closes.
    pub(crate) fn served(&self, id: u64, choice: &Choice) {
        let now_ms = served_at(id);
        let verdict = {
            let mut state = self.lock();
            let policy = match state
                .policies
                .iter()
                .position(|p| p.policy == choice.id && p.policy_version == choice.version)
            {
                Some(at) => at,
                None => {
                    state.policies.push(PolicyReward {
                        policy: choice.id.clone(),
                        policy_version: choice.version,
                        ..PolicyReward::default()
                    });
                    state.policies.len() - 1
                }
            };
            let mut verdict = self.close_due(&mut state, now_ms);
            if state.open.len() >= MAX_OPEN_LISTS
                && let Some(oldest) = state.order.pop_front()
            {
                verdict = verdict.or(self.close(&mut state, oldest));
            }
            state.open.insert(
                id,
                Open {
                    policy,
                    arm: choice.arm,
                    reward: 0.0,
                },
            );
            state.order.push_back(id);
            verdict
        };
        self.tell(verdict);
    }

    /// Events a commit stored: those that name an open list add their weight to its reward.
    pub(crate) fn absorb(&self, added: &[Event]) {
        if added.iter().all(|e| e.payload.impression.is_none()) {
            return;
        }
        let verdict = {
            let mut state = self.lock();
            for e in added {
                let Some(id) = e.payload.impression else {
                    continue;
                };
                let weight = self
                    .rule
                    .weights
                    .iter()
                    .find(|(k, _)| *k == e.kind)
                    .map_or(0.0, |(_, w)| *w);
                if weight > 0.0
                    && let Some(open) = state.open.get_mut(&id)
                {
                    open.reward += weight;
                }
            }
            self.close_due(&mut state, self.now_ms())
        };
        self.tell(verdict);
    }

    /// Closes the lists whose window has passed; returns a verdict reached on the way.
    fn close_due(&self, state: &mut State, now_ms: i64) -> Option<Stage> {
        let mut verdict = None;
        while let Some(&id) = state.order.front() {
            if served_at(id).saturating_add(self.rule.window_ms) > now_ms {
                break;
            }
            state.order.pop_front();
            verdict = verdict.or(self.close(state, id));
        }
        verdict
    }

    fn close(&self, state: &mut State, id: u64) -> Option<Stage> {
        let open = state.open.remove(&id)?;
        state.policies[open.policy].add(served_at(id), open.reward);
        let arm = open.arm?;
        let rollout = state.rollout.as_mut()?;
        let stage = rollout.record_arm(arm, open.reward).clone();
        let decided = matches!(stage, Stage::Full | Stage::RolledBack { .. });
        if decided && !state.decided {
            state.decided = true;
            match &stage {
                Stage::RolledBack { reason } => {
                    tracing::warn!(candidate = %rollout.candidate, %reason, "canary rolled back");
                }
                _ => {
                    tracing::info!(candidate = %rollout.candidate, "canary promoted to all traffic")
                }
            }
            return Some(stage);
        }
        None
    }

    fn tell(&self, verdict: Option<Stage>) {
        if let (Some(stage), Some(hook)) = (
            verdict,
            self.canary.as_ref().and_then(|c| c.on_decision.as_ref()),
        ) {
            (hook.0)(&stage);
        }
    }

    /// Closes what is due and reports the per-policy rewards and the rollout.
    pub(crate) fn status(&self) -> (Vec<PolicyReward>, Option<RolloutStatus>) {
        let (policies, rollout, verdict) = {
            let mut state = self.lock();
            let verdict = self.close_due(&mut state, self.now_ms());
            let rollout = state.rollout.as_ref().map(|r| {
                let (c, o) = (r.candidate_stats, r.current_stats);
                let (stage, reason) = match &r.stage {
                    Stage::Shadow => ("shadow", None),
                    Stage::Canary { .. } => ("canary", None),
                    Stage::Full => ("full", None),
                    Stage::RolledBack { reason } => ("rolled-back", Some(reason.clone())),
                };
                RolloutStatus {
                    candidate: r.candidate.clone(),
                    candidate_version: self.canary.as_ref().map_or(0, |c| c.candidate.version),
                    current: r.current.clone(),
                    stage: stage.into(),
                    reason,
                    canary_share: r.config.canary_share,
                    shadow_seen: r.shadow_seen,
                    candidate_lists: c.n,
                    candidate_reward: c.mean(),
                    current_lists: o.n,
                    current_reward: o.mean(),
                    difference: (c.n > 1 && o.n > 1).then(|| {
                        let d = compare_means(&c, &o, r.config.alpha);
                        Difference {
                            difference: d.difference,
                            low: d.low,
                            high: d.high,
                        }
                    }),
                }
            });
            (state.policies.clone(), rollout, verdict)
        };
        self.tell(verdict);
        (policies, rollout)
    }
}
