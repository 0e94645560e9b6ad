//! The engine's privacy side: analytics answered with differential privacy for every
//! caller but an admin, through a budget ledger in the data directory; and the audit log of
//! forgets, releases and admin calls.

use std::path::Path;
use std::sync::Mutex;

use aisle_analytics::behaviour::default_funnel_steps;
pub use aisle_analytics::private::PrivateSettings;
use aisle_analytics::private::{PrivateSummary, private_summary};
pub use aisle_privacy::Budget;
use aisle_privacy::audit::AuditLog;
use aisle_privacy::{Cost, Ledger, Noise};
use serde::{Deserialize, Serialize};

use crate::answers::{
    Analytics, AnalyticsSummary, Cohort, FunnelStep, PrivacyPart, PrivacyStatement, TopItem,
};
use crate::{EngineError, Generation, Result};

/// The ledger's file under the data directory.
pub const LEDGER_FILE: &str = "privacy/ledger.jsonl";
/// The audit log's file under the data directory.
pub const AUDIT_FILE: &str = "audit.jsonl";

/// How private answers spend the budget.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PrivacyConfig {
    /// The budget per window.
    pub budget: Budget,
    /// How one analytics release bounds users and spends ε.
    pub analytics: PrivateSettings,
}

pub(crate) struct Privacy {
    config: PrivacyConfig,
    ledger: Mutex<Ledger>,
    audit: Option<Mutex<AuditLog>>,
}

impl Privacy {
    /// Opens the ledger and the audit log under `data_dir` (in memory and none without one).
    pub fn open(config: PrivacyConfig, data_dir: Option<&Path>, now_ms: i64) -> Result<Privacy> {
        config
            .analytics
            .check()
            .map_err(|e| EngineError::bad_request(e.to_string()))?;
        let refuse = |e: aisle_privacy::Error| EngineError::bad_request(e.to_string());
        let (ledger, audit) = match data_dir {
            Some(dir) => (
                Ledger::open(&dir.join(LEDGER_FILE), config.budget, now_ms).map_err(refuse)?,
                Some(Mutex::new(
                    AuditLog::open(&dir.join(AUDIT_FILE)).map_err(refuse)?,
                )),
            ),
            None => (Ledger::in_memory(config.budget).map_err(refuse)?, None),
        };
        Ok(Privacy {
            config,
            ledger: Mutex::new(ledger),
            audit,
        })
    }

    /// Appends to the audit log; a failure to write it is logged, and the action it records
    /// has already happened.
    pub fn audit(&self, now_ms: i64, actor: &str, action: &str, detail: serde_json::Value) {
        let Some(log) = &self.audit else {
            return;
        };
        let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
        if let Err(e) = log.append(now_ms, actor, action, detail) {
            tracing::error!(error = %e, action, "the audit log could not be written");
        }
    }

    /// Audits a release that spent budget (a cached answer spent none, and is not audited).
    fn audit_release(
        &self,
        (cached, spent_epsilon): (bool, f64),
        query: &str,
        version: u64,
        epsilon: f64,
        now_ms: i64,
        actor: &str,
    ) {
        if cached {
            return;
        }
        self.audit(
            now_ms,
            actor,
            "dp_release",
            serde_json::json!({
                "query": query,
                "model_version": version,
                "epsilon": epsilon,
                "spent_epsilon": spent_epsilon,
            }),
        );
    }

    /// The most searched queries, by distinct searchers with noise, through the ledger (a
    /// repeat on the same generation is free). Each user adds at most five queries, once
    /// each, and a query is shown only when its noisy count clears the threshold that keeps
    /// a query of one searcher hidden with probability 1 - δ. Costs half the analytics' ε.
    pub fn top_searches(
        &self,
        generation: &Generation,
        store: &dyn aisle_store::ReadStore,
        now_ms: i64,
        actor: &str,
    ) -> Result<Vec<crate::answers::QueryCount>> {
        let epsilon = self.config.analytics.epsilon / 2.0;
        let delta = self.config.analytics.delta;
        let cost = Cost { epsilon, rho: 0.0 };
        let bounds = aisle_privacy::Bounds {
            max_partitions: 5,
            max_rows: 1,
        };
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        // A repeat is answered before the store is read: the dashboard asks every few seconds.
        let released = match ledger
            .cached::<Vec<(String, i64)>>("top_searches", generation.version, now_ms)
            .map_err(ledger_error)?
        {
            Some(r) => r,
            None => {
                let mut rows: Vec<(u32, String)> = Vec::new();
                store
                    .scan_events(&mut |e| {
                        if e.kind == aisle_core::EventKind::Search
                            && let Some(q) = &e.payload.query
                        {
                            let q = q.trim().to_lowercase();
                            if !q.is_empty() {
                                rows.push((e.user.0, q));
                            }
                        }
                    })
                    .map_err(|e| EngineError::internal("reading the searches", e))?;
                ledger
                    .release("top_searches", generation.version, cost, now_ms, || {
                        let kept = bounds.apply(&rows, &mut rand::rng());
                        let mut counts = aisle_privacy::thresholded_counts(
                            &kept,
                            bounds,
                            epsilon,
                            delta,
                            &mut rand::rng(),
                        )
                        .counts;
                        counts.truncate(10);
                        counts
                    })
                    .map_err(ledger_error)?
            }
        };
        drop(ledger);
        self.audit_release(
            (released.cached, released.spent_epsilon),
            "top_searches",
            generation.version,
            epsilon,
            now_ms,
            actor,
        );
        Ok(released
            .answer
            .into_iter()
            .map(|(query, n)| crate::answers::QueryCount {
                query,
                searches: n.max(0) as u64,
                zero_results: None,
            })
            .collect())
    }

    /// The generation's analytics with noise, released through the ledger (a repeat on the
    /// same generation is the stored answer and costs nothing).
    pub fn analytics(
        &self,
        generation: &Generation,
        store: &dyn aisle_store::ReadStore,
        now_ms: i64,
        actor: &str,
    ) -> Result<Analytics> {
        let Some(log) = generation.predictions.log.as_deref() else {
            return Err(EngineError::unavailable(
                "no analytics before the first training",
            ));
        };
        let settings = &self.config.analytics;
        let cost = Cost {
            epsilon: settings.epsilon,
            rho: 0.0,
        };
        let steps = default_funnel_steps(log);
        // The weeks of the cohorts and the recency of RFM count back from the latest event
        // (not later than the training): for a live shop that is the current week. It is
        // the one figure taken from the data without noise: when the shop last had
        // traffic, which says little of whom (one shopper moves it only when theirs is the
        // very latest event, and then by the gap to the one before).
        let reference_ms = log
            .events()
            .iter()
            .map(|e| e.timestamp_ms)
            .filter(|&t| t <= generation.trained_at_ms)
            .max()
            .unwrap_or(generation.trained_at_ms);
        let mut ledger = self.ledger.lock().unwrap_or_else(|p| p.into_inner());
        // A repeat is answered from the ledger; a new summary is computed before anything is
        // charged, so a failure costs nothing and stores nothing.
        let released = match ledger
            .cached::<PrivateSummary>("analytics", generation.version, now_ms)
            .map_err(ledger_error)?
        {
            Some(stored) => stored,
            None => {
                let summary =
                    private_summary(log, &steps, reference_ms, settings, &mut rand::rng())
                        .map_err(|e| EngineError::internal("computing private analytics", e))?;
                ledger
                    .release("analytics", generation.version, cost, now_ms, || summary)
                    .map_err(ledger_error)?
            }
        };
        drop(ledger);
        self.audit_release(
            (released.cached, released.spent_epsilon),
            "analytics",
            generation.version,
            settings.epsilon,
            now_ms,
            actor,
        );
        let summary = released.answer;
        let budget = released.budget;
        Ok(Analytics {
            as_of_model_version: generation.version,
            analytics: summary_answer(&summary, store),
            privacy: Some(PrivacyStatement {
                epsilon: summary.epsilon,
                delta: summary.delta,
                cached: released.cached,
                spent_epsilon: released.spent_epsilon,
                budget_epsilon: budget.epsilon,
                window_days: budget.window_days,
                parts: summary
                    .statement
                    .iter()
                    .map(|p| {
                        let (mechanism, scale) = match p.noise {
                            Noise::Laplace { scale } => ("discrete_laplace", scale),
                            Noise::Gaussian { sigma } => ("discrete_gaussian", sigma),
                        };
                        PrivacyPart {
                            part: p.part.clone(),
                            epsilon: p.epsilon,
                            mechanism: mechanism.into(),
                            scale,
                            sensitivity: p.sensitivity,
                            bounding: p.bounding.clone(),
                        }
                    })
                    .collect(),
            }),
        })
    }
}

/// A ledger refusal as the engine reports it: a spent budget is its own kind (a 429).
fn ledger_error(e: aisle_privacy::Error) -> EngineError {
    match e {
        aisle_privacy::Error::OverBudget { .. } => EngineError::budget_spent(e.to_string()),
        other => EngineError::internal("the privacy ledger", other),
    }
}

/// Noisy counts as the answer shows them: negative noise results clipped at zero, shares
/// computed from the clipped counts (post-processing, which costs no privacy).
fn summary_answer(s: &PrivateSummary, store: &dyn aisle_store::ReadStore) -> AnalyticsSummary {
    let clip = |x: i64| x.max(0) as usize;
    let first = s.funnel.first().map_or(0, |f| clip(f.1)).max(1) as f64;
    let mut previous = first;
    let funnel = s
        .funnel
        .iter()
        .enumerate()
        .map(|(k, (kind, count))| {
            let count = clip(*count);
            let step = FunnelStep {
                kind: kind.clone(),
                count,
                from_previous: if k == 0 {
                    1.0
                } else {
                    count as f64 / previous.max(1.0)
                },
                from_first: count as f64 / first,
            };
            previous = count as f64;
            step
        })
        .collect();
    let cohorts = s
        .cohorts
        .iter()
        .map(|c| {
            let users = clip(c.users);
            let mut retention = vec![1.0];
            retention.extend(
                c.active_later
                    .iter()
                    .map(|&a| (clip(a) as f64 / users.max(1) as f64).min(1.0)),
            );
            Cohort {
                period: c.week,
                users,
                retention,
            }
        })
        .collect();
    let top_items = s
        .top_items
        .iter()
        .map(|t| {
            let item = store.item(aisle_core::ItemId(t.item)).ok().flatten();
            TopItem {
                id: item.as_ref().map(|i| i.external_id.clone()),
                title: item.map(|i| i.title),
                purchases: clip(t.purchases),
                buyers: clip(t.buyers),
                repeat_buyer_share: None,
            }
        })
        .collect();
    AnalyticsSummary {
        funnel,
        cohorts,
        segments: s
            .segments
            .iter()
            .map(|(k, &v)| (k.clone(), clip(v)))
            .collect(),
        top_items,
    }
}
