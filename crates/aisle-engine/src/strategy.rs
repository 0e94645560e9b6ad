//! Every list the engine serves goes through here: the serving policy draws the shown items
//! from the ranker's candidates with a known probability each, and the list is logged as an
//! impression (surface, policy and version, candidates, shown items with propensities), so
//! any other policy can later be evaluated on what shoppers did with it.
//!
//! Impressions wait in a bounded buffer that the writer empties into its next commit, or
//! every [`crate::writer::IMPRESSION_FLUSH`] when no events come: serving never waits for the
//! disk, never takes a place in the write queue that ingest needs, and a busy server makes
//! one commit per interval for them, not one per list. They are durable at that commit (at
//! most 100 ms later); a crash before it loses those lists, never an acknowledged event. A
//! full buffer drops new ones and counts them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use aisle_core::{Impression, ItemId, SessionId, ShownItem, UserId, impression_label};
use aisle_models::Scored;
use aisle_policy::policy::ServingPolicy;
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use utoipa::ToSchema;

use crate::Engine;
use crate::answers::{EstimateOut, PolicyEvaluation};
use crate::error::{EngineError, Result};
use crate::online::{PolicyReward, RolloutStatus};
use crate::requests::EvaluateParams;
use crate::writer::Change;
use aisle_policy::impressions::{RewardRule, RewardedList};
use aisle_policy::rollout::GateDecision;
use aisle_store::ReadStore;

/// Most impressions waiting for a commit; beyond it new ones are dropped (and counted).
pub const MAX_PENDING_IMPRESSIONS: usize = 100_000;
/// A burst this large wakes the writer at once rather than waiting for the interval.
const WAKE_AT: usize = 4_096;

/// How a served list is identified to the client: events that answer it carry `impression`.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ServedList {
    /// The impression id (16 hex digits); send it back as the `impression` of the clicks,
    /// carts and purchases this list led to.
    pub impression: String,
    /// The serving policy's id.
    pub policy: String,
    /// Its version.
    pub policy_version: u32,
}

/// The serving policy in use and what it has logged since the start.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PolicyStatus {
    /// The policy's id.
    pub policy: String,
    /// Its version.
    pub policy_version: u32,
    /// Its setting, as `exploration` takes it.
    pub setting: String,
    /// The candidates a list of `k` is drawn from.
    pub candidates: String,
    /// Surfaces it draws (the others are served as ranked, propensity 1).
    pub exploring_surfaces: Vec<String>,
    /// Surfaces served by a policy of their own instead.
    pub by_surface: Vec<SurfacePolicy>,
    /// Lists served and logged since the start.
    pub impressions_served: u64,
    /// Lists not logged because the buffer was full.
    pub impressions_dropped: u64,
    /// Lists waiting for the next commit.
    pub impressions_pending: usize,
    /// How long a list collects the rewards that name it before its reward counts.
    pub reward_window_seconds: f64,
    /// Online reward per policy served since the start (lists whose window has closed).
    pub online: Vec<PolicyReward>,
    /// A candidate being rolled out over the policy, if any, and where it stands.
    pub rollout: Option<RolloutStatus>,
    /// The latest off-policy evaluation run since the start (`GET /v1/policy/evaluate`).
    pub last_evaluation: Option<PolicyEvaluation>,
}

/// A surface served by its own policy.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SurfacePolicy {
    /// The surface.
    pub surface: String,
    /// The policy's id.
    pub policy: String,
    /// Its version.
    pub policy_version: u32,
    /// Its setting.
    pub setting: String,
}

/// The surfaces whose lists a serving policy draws (the others keep the ranking).
pub const EXPLORING_SURFACES: [&str; 5] =
    ["recommend", "session", "cart", "similar", "cross-category"];

/// The serving policy of the recommendation surfaces, with its identity.
#[derive(Clone, Debug)]
pub struct Strategy {
    /// How shown items are drawn from the candidates.
    pub policy: ServingPolicy,
    /// Its id in logs and answers.
    pub id: String,
    /// Its version.
    pub version: u32,
}

impl Strategy {
    /// A policy under its own name, at `version`.
    pub fn new(policy: ServingPolicy, version: u32) -> Self {
        Self {
            id: policy.name(),
            policy,
            version,
        }
    }

    /// A setting as `exploration` takes it (`epsilon-greedy:0.05`, ...), at `version`.
    pub fn parse(setting: &str, version: u32) -> std::result::Result<Self, String> {
        Ok(Self::new(setting.parse()?, version))
    }
}

impl Default for Strategy {
    fn default() -> Self {
        Self::new(ServingPolicy::default(), 1)
    }
}

/// One item of a served list.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shown {
    pub scored: Scored,
    /// Its probability at this position given the positions above it.
    pub propensity: f32,
    /// Its place (0-based) in the model's ranking of the candidates.
    pub model_rank: usize,
    /// The policy put it here in place of the ranking's choice: the answer says so.
    pub explored: bool,
}

/// The candidate pool a policy chooses `k` items from: enough to explore, bounded per request.
pub fn pool_size(k: usize) -> usize {
    (2 * k + 10).min(1_000)
}

/// The impressions waiting for the writer's next commit.
#[derive(Default)]
pub(crate) struct PendingImpressions {
    queue: Mutex<Vec<Impression>>,
    sequence: AtomicU64,
}

impl PendingImpressions {
    /// A new impression id: the time in milliseconds in the high bits, a counter below, so ids
    /// are unique in a process and sort by time.
    fn next_id(&self, now_ms: i64) -> u64 {
        let n = self.sequence.fetch_add(1, Ordering::Relaxed);
        ((now_ms.max(0) as u64) << 20) | (n & 0xF_FFFF)
    }

    /// Adds one; false when the buffer is full. `wake` is true when the buffer reaches a
    /// burst's size (the writer is told once per burst; otherwise its interval takes them).
    fn push(&self, impression: Impression) -> (bool, bool) {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        if queue.len() >= MAX_PENDING_IMPRESSIONS {
            return (false, false);
        }
        queue.push(impression);
        (true, queue.len() == WAKE_AT)
    }

    /// How many are waiting.
    pub(crate) fn len(&self) -> usize {
        self.queue
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// Everything waiting (the writer's side).
    pub(crate) fn take(&self) -> Vec<Impression> {
        std::mem::take(&mut *self.queue.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// The store's logged lists (of one surface, or all) joined with their rewards under `rule`:
/// what the off-policy estimators and the deployment gate judge a candidate on.
pub fn rewarded_lists(
    store: &dyn ReadStore,
    surface: Option<&str>,
    rule: &RewardRule,
) -> aisle_store::Result<Vec<RewardedList>> {
    let mut shown = Vec::new();
    store.scan_impressions(&mut |i| {
        if surface.is_none_or(|s| s == i.surface) {
            shown.push(i);
        }
    })?;
    if shown.is_empty() {
        return Ok(Vec::new());
    }
    let mut events = Vec::new();
    store.scan_events(&mut |e| events.push(e))?;
    Ok(aisle_policy::impressions::attribute(shown, &events, rule))
}

/// Who a list is for.
#[derive(Clone, Copy, Default)]
pub(crate) struct Audience {
    pub user: Option<u32>,
    pub session: Option<SessionId>,
}

impl Engine {
    /// The serving policy and its counts.
    pub fn policy_status(&self) -> PolicyStatus {
        let s = &self.config.strategy;
        let (online, rollout) = self.shared.online.status();
        PolicyStatus {
            policy: s.id.clone(),
            policy_version: s.version,
            setting: s.policy.setting(),
            candidates: "2k + 10 of the ranker's best (at most 1000)".into(),
            exploring_surfaces: EXPLORING_SURFACES.map(String::from).to_vec(),
            by_surface: self
                .config
                .strategy_by_surface
                .iter()
                .map(|(surface, s)| SurfacePolicy {
                    surface: surface.clone(),
                    policy: s.id.clone(),
                    policy_version: s.version,
                    setting: s.policy.setting(),
                })
                .collect(),
            impressions_served: self.shared.counters.impressions_served.get(),
            impressions_dropped: self.shared.counters.impressions_dropped.get(),
            impressions_pending: self.shared.impressions.len(),
            reward_window_seconds: self.config.reward.window_ms as f64 / 1000.0,
            online,
            rollout,
            last_evaluation: self
                .shared
                .last_evaluation
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        }
    }

    /// Judges a candidate serving policy on the store's logged impressions and their rewards
    /// (the reward rule of this engine): IPS and SNIPS with bootstrap intervals, the weights'
    /// diagnostics and the deployment gate's verdict. It reads every impression and event, so
    /// one runs at a time; another meanwhile is told to retry.
    pub fn evaluate_policy(&self, p: &EvaluateParams) -> Result<PolicyEvaluation> {
        let candidate = p.candidate()?;
        let surface = p.surface.map(|s| s.name());
        if self.shared.evaluating.swap(true, Ordering::AcqRel) {
            return Err(EngineError::busy(
                "an evaluation is already running; retry when it is done",
            ));
        }
        struct Release<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for Release<'_> {
            fn drop(&mut self) {
                self.0.store(false, Ordering::Release);
            }
        }
        let _release = Release(&self.shared.evaluating);
        let lists = rewarded_lists(self.shared.store.as_ref(), surface, &self.config.reward)
            .map_err(|e| EngineError::internal("reading impressions and events", e))?;
        if lists.is_empty() {
            return Err(EngineError::not_found(match surface {
                Some(s) => format!("no lists of surface {s:?} are logged yet: serve some first"),
                None => "no lists are logged yet: serve some first".to_string(),
            }));
        }
        let j = aisle_policy::impressions::judge(&lists, &candidate, p.bootstrap, 11);
        let (gate_passes, gate) = (matches!(j.gate, GateDecision::Pass { .. }), j.verdict());
        let answer = PolicyEvaluation {
            candidate: candidate.name(),
            lists: j.lists,
            slots: j.slots,
            logged_value: j.logged_value,
            estimates: j
                .estimates
                .iter()
                .map(|e| EstimateOut {
                    estimator: e.estimator.to_string(),
                    value: e.value,
                    low: e.low,
                    high: e.high,
                })
                .collect(),
            effective_sample_size: j.diagnostics.effective_sample_size,
            max_weight: j.diagnostics.max_weight,
            warning: j.diagnostics.warning,
            gate_passes,
            gate,
            at_ms: self.clock_ms(),
        };
        *self
            .shared
            .last_evaluation
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(answer.clone());
        Ok(answer)
    }

    /// Draws `k` of the ranked `candidates` with the serving policy (`explore`) or keeps the
    /// ranking (propensity 1 each), logs the impression, and returns the shown items with
    /// their propensities and the list's identity. Candidates not in the catalogue any more
    /// are left out first, so every logged item was one the client could see.
    pub(crate) fn serve(
        &self,
        surface: &str,
        audience: Audience,
        candidates: Vec<Scored>,
        k: usize,
        explore: bool,
    ) -> (Vec<Shown>, ServedList) {
        let candidates: Vec<Scored> = {
            let live = self.live();
            candidates
                .into_iter()
                .filter(|s| live.items.get(s.item as usize).is_some_and(Option::is_some))
                .collect()
        };
        let now = self.clock_ms();
        let id = self.shared.impressions.next_id(now);
        // A rollout splits by user, else by session; an anonymous list is its own unit.
        let unit = match (audience.user, audience.session) {
            (Some(user), _) => format!("user:{user}"),
            (None, Some(session)) => format!("session:{}", session.0),
            (None, None) => format!("list:{id}"),
        };
        let choice = self.shared.online.choose(&unit, surface, explore);
        let (policy, policy_id, version) = (choice.policy, choice.id.clone(), choice.version);
        let scores: Vec<f64> = candidates.iter().map(|s| f64::from(s.score)).collect();
        // One generator per list, seeded from its id: a replay of the log can redraw it.
        let mut rng = StdRng::seed_from_u64(id ^ 0x9E37_79B9_7F4A_7C15);
        let picks = policy.choose(&scores, k, &mut rng);
        let mut taken = vec![false; candidates.len()];
        let shown: Vec<Shown> = picks
            .iter()
            .map(|p| {
                // The ranking would have put the best candidate not yet shown here.
                let ranked_next = taken.iter().position(|t| !t);
                taken[p.candidate] = true;
                Shown {
                    scored: candidates[p.candidate],
                    propensity: p.propensity as f32,
                    model_rank: p.candidate,
                    explored: ranked_next != Some(p.candidate),
                }
            })
            .collect();
        let impression = Impression {
            id,
            at_ms: now,
            surface: surface.to_string(),
            policy: policy_id.clone(),
            policy_version: version,
            user: audience.user.map(UserId),
            session: audience.session,
            candidates: candidates.iter().map(|s| ItemId(s.item)).collect(),
            scores: candidates.iter().map(|s| s.score).collect(),
            shown: shown
                .iter()
                .map(|s| ShownItem {
                    item: ItemId(s.scored.item),
                    propensity: s.propensity,
                })
                .collect(),
        };
        let (kept, wake) = self.shared.impressions.push(impression);
        self.shared.online.served(id, &choice);
        if !kept {
            self.shared.counters.impressions_dropped.inc();
        } else {
            self.shared.counters.impressions_served.inc();
            if wake {
                // A full queue is fine: the writer empties the buffer at its next commit anyway.
                let _ = self.writer.submit(Change::Impressions);
            }
        }
        (
            shown,
            ServedList {
                impression: impression_label(id),
                policy: policy_id,
                policy_version: version,
            },
        )
    }
}
