//! Sequential rules (Ludewig & Jannach, 2018): "after a, then b" with weight falling with the
//! number of steps between them; the next item is scored by the rules of the last item.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::sparse::SparseRows;
use crate::{Error, FitReport, Forgetting, Forgot, Query, Recommender, Result, TrainData};

/// Sequential-rules settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SequentialRulesConfig {
    /// Largest number of steps from a to b that still makes a rule (default 10).
    pub steps: usize,
    /// Rules kept per item (default 500).
    pub max_rules: usize,
}

impl Default for SequentialRulesConfig {
    fn default() -> Self {
        Self {
            steps: 10,
            max_rules: 500,
        }
    }
}

/// `rule(a, b) = Σ_sessions Σ_{a at p, b at q, 0 < q − p ≤ steps} 1 / (q − p)`.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SequentialRules {
    config: SequentialRulesConfig,
    rules: SparseRows,
    n_items: usize,
}

impl SequentialRules {
    /// An unfitted model.
    pub fn new(config: SequentialRulesConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl SequentialRules {
    /// The rules of every item `a` with `of[a]`: the weight of each `b` after it.
    fn rules_from(&self, data: &TrainData, of: &[bool]) -> Vec<HashMap<u32, f32>> {
        let mut by_item: Vec<HashMap<u32, f32>> = vec![HashMap::new(); data.n_items()];
        for session in &data.sessions {
            for p in 0..session.len() {
                if !of[session[p] as usize] {
                    continue;
                }
                for q in p + 1..session.len().min(p + self.config.steps + 1) {
                    *by_item[session[p] as usize]
                        .entry(session[q])
                        .or_insert(0.0) += 1.0 / (q - p) as f32;
                }
            }
        }
        by_item
    }
}

impl Recommender for SequentialRules {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.steps == 0 {
            return Err(Error::InvalidConfig {
                model: "sr",
                reason: "steps must be at least 1".into(),
            });
        }
        let n = data.n_items();
        let by_item = self.rules_from(data, &vec![true; n]);
        let max_rules = self.config.max_rules;
        self.rules = SparseRows::build_top_k(n, n, max_rules, |i, scratch| {
            for (&j, &w) in &by_item[i] {
                scratch[j as usize] = w;
            }
        });
        self.n_items = n;
        Ok(FitReport::default())
    }

    /// Recomputes, from the sessions without the forgotten users, the rules of every item
    /// that starts a rule in one of their sessions; no other item's rules read those
    /// sessions. The sums run over the sessions in the same order as a fit's, so the rules
    /// equal a refit's.
    fn forget(&mut self, change: &Forgetting<'_>) -> Result<Forgot> {
        let gone = change.forgotten_sessions("sr")?;
        change.check_items("sr", self.rules.n_rows())?;
        let n = change.after.n_items();
        let mut starts = vec![false; n];
        for (session, _) in change
            .before
            .sessions
            .iter()
            .zip(&gone)
            .filter(|(_, g)| **g)
        {
            for &a in session.iter().take(session.len().saturating_sub(1)) {
                starts[a as usize] = true;
            }
        }
        let by_item = self.rules_from(change.after, &starts);
        let which: Vec<usize> = (0..n).filter(|&i| starts[i]).collect();
        let rows = SparseRows::top_k_rows(&which, n, self.config.max_rules, |i, scratch| {
            for (&j, &w) in &by_item[i] {
                scratch[j as usize] = w;
            }
        });
        self.rules
            .replace_rows(which.into_iter().zip(rows).collect());
        Ok(Forgot::Exactly)
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        if let Some(&last) = query.history.last() {
            self.rules.add_row(last as usize, 1.0, scores);
        }
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
