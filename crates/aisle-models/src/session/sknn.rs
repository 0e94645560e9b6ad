//! Vector-multiplication session kNN, V-SKNN (Ludewig & Jannach, 2018): past sessions that
//! share items with the current one vote for their items, weighted by their similarity, where
//! later items of the current session count more.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::{Error, FitReport, Forgetting, Forgot, Query, Recommender, Result, TrainData};

/// Session-kNN settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionKnnConfig {
    /// Neighbour sessions that vote (default 100).
    pub k: usize,
    /// Most recent candidate sessions considered (default 500).
    pub sample_size: usize,
    /// Only the last this many items of the current session are used (default 20).
    pub max_history: usize,
}

impl Default for SessionKnnConfig {
    fn default() -> Self {
        Self {
            k: 100,
            sample_size: 500,
            max_history: 20,
        }
    }
}

/// The fitted session index.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct SessionKnn {
    config: SessionKnnConfig,
    /// Distinct items of each past session.
    sessions: Vec<Vec<u32>>,
    /// Per item: sessions containing it, most recent first.
    item_sessions: Vec<Vec<u32>>,
    n_items: usize,
}

impl SessionKnn {
    /// An unfitted model.
    pub fn new(config: SessionKnnConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl Recommender for SessionKnn {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.k == 0 || self.config.sample_size == 0 {
            return Err(Error::InvalidConfig {
                model: "sknn",
                reason: "k and sample_size must be at least 1".into(),
            });
        }
        let n = data.n_items();
        // Sessions in time order of their end, so "most recent" is the largest index.
        let mut order: Vec<usize> = (0..data.sessions.len()).collect();
        order.sort_by_key(|&s| data.session_end_ms[s]);
        let mut sessions = Vec::with_capacity(order.len());
        let mut item_sessions = vec![Vec::new(); n];
        for s in order {
            let mut items = data.sessions[s].clone();
            items.sort_unstable();
            items.dedup();
            let id = sessions.len() as u32;
            for &i in &items {
                item_sessions[i as usize].push(id);
            }
            sessions.push(items);
        }
        for list in &mut item_sessions {
            list.reverse();
        }
        self.sessions = sessions;
        self.item_sessions = item_sessions;
        self.n_items = n;
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let start = query.history.len().saturating_sub(self.config.max_history);
        let current = &query.history[start..];
        if current.is_empty() {
            return;
        }
        // Linear position weights: the last item weighs 1, the first 1/len.
        let mut weight: HashMap<u32, f32> = HashMap::new();
        for (p, &i) in current.iter().enumerate() {
            weight.insert(i, (p + 1) as f32 / current.len() as f32);
        }
        // Candidates: the most recent sessions containing any current item.
        let mut candidates: Vec<u32> = Vec::new();
        for &i in weight.keys() {
            if let Some(list) = self.item_sessions.get(i as usize) {
                candidates.extend(list.iter().take(self.config.sample_size));
            }
        }
        candidates.sort_unstable_by(|a, b| b.cmp(a));
        candidates.dedup();
        candidates.truncate(self.config.sample_size);
        let mut neighbours: Vec<(f32, u32)> = candidates
            .into_iter()
            .map(|s| {
                let sim: f32 = self.sessions[s as usize]
                    .iter()
                    .filter_map(|i| weight.get(i))
                    .sum();
                (sim, s)
            })
            .filter(|&(sim, _)| sim > 0.0)
            .collect();
        neighbours.sort_unstable_by(|a, b| b.0.total_cmp(&a.0).then(b.1.cmp(&a.1)));
        neighbours.truncate(self.config.k);
        for (sim, s) in neighbours {
            for &i in &self.sessions[s as usize] {
                scores[i as usize] += sim;
            }
        }
    }

    fn n_items(&self) -> usize {
        self.n_items
    }

    /// Removes the forgotten users' sessions from the index and renumbers the rest,
    /// keeping their order (a stable sort by end time of the remaining sessions gives the
    /// same order a refit does).
    fn forget(&mut self, change: &Forgetting<'_>) -> Result<Forgot> {
        let before = change.before;
        let gone = change.forgotten_sessions("sknn")?;
        if self.sessions.len() != before.sessions.len() {
            return Err(Error::Forget {
                model: "sknn",
                reason: format!(
                    "fitted on {} sessions, the data before has {}",
                    self.sessions.len(),
                    before.sessions.len()
                ),
            });
        }
        let mut order: Vec<usize> = (0..before.sessions.len()).collect();
        order.sort_by_key(|&s| before.session_end_ms[s]);
        // New id of each indexed session (by its position in time order); None when gone.
        let mut next = 0u32;
        let renumber: Vec<Option<u32>> = order
            .iter()
            .map(|&s| {
                (!gone[s]).then(|| {
                    next += 1;
                    next - 1
                })
            })
            .collect();
        let mut position = 0;
        self.sessions.retain(|_| {
            position += 1;
            renumber[position - 1].is_some()
        });
        for list in &mut self.item_sessions {
            *list = list.iter().filter_map(|&s| renumber[s as usize]).collect();
        }
        Ok(Forgot::Exactly)
    }
}
