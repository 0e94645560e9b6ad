//! Popularity: global, over a recent window, or ranked within the user's favourite categories.

use serde::{Deserialize, Serialize};

use crate::{FitReport, Query, Recommender, Result, TrainData};

/// Popularity settings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityConfig {
    /// Count only the last this many days of training events (default: all).
    pub window_days: Option<f64>,
    /// Rank the user's categories first (by their share of the history), popularity within.
    pub per_category: bool,
}

/// Most-popular items (by number of item events).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Popularity {
    config: PopularityConfig,
    counts: Vec<f32>,
    category: Vec<u32>,
}

impl Popularity {
    /// An unfitted model.
    pub fn new(config: PopularityConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl Popularity {
    /// Removes forgotten users' item events from the counts, exactly as a refit without
    /// them would count. With a window, a refit may move the window's end (when a
    /// forgotten user had the last event), so that case is refused: refit instead.
    pub fn forget_events(&mut self, events: &[aisle_features::Interaction]) -> Result<()> {
        if self.config.window_days.is_some() {
            return Err(crate::Error::Forget {
                model: "pop",
                reason: "a windowed popularity model forgets by a refit".into(),
            });
        }
        for e in events.iter().filter(|e| e.item().is_some()) {
            if let Some(c) = self.counts.get_mut(e.item as usize) {
                *c = (*c - 1.0).max(0.0);
            }
        }
        Ok(())
    }
}

impl Recommender for Popularity {
    fn forget(&mut self, change: &crate::Forgetting<'_>) -> Result<crate::Forgot> {
        let events: Vec<_> = change
            .before
            .item_events
            .iter()
            .filter(|e| change.is_forgotten(e.user))
            .copied()
            .collect();
        self.forget_events(&events)?;
        Ok(crate::Forgot::Exactly)
    }

    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        let since = self
            .config
            .window_days
            .map_or(i64::MIN, |d| data.end_ms - (d * 86_400_000.0) as i64);
        let mut counts = vec![0f32; data.n_items()];
        for e in &data.item_events {
            if e.timestamp_ms >= since {
                counts[e.item as usize] += 1.0;
            }
        }
        self.counts = counts;
        self.category = data.item_category.clone();
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        let max = self.counts.iter().copied().fold(1.0f32, f32::max);
        for (s, &c) in scores.iter_mut().zip(&self.counts) {
            *s = c / max;
        }
        if self.config.per_category && !query.history.is_empty() {
            let mut share = std::collections::HashMap::new();
            for &i in query.history {
                if let Some(&c) = self.category.get(i as usize) {
                    *share.entry(c).or_insert(0f32) += 1.0 / query.history.len() as f32;
                }
            }
            for (i, s) in scores.iter_mut().enumerate() {
                let c = self.category.get(i).copied().unwrap_or(u32::MAX);
                if c != u32::MAX {
                    *s += share.get(&c).copied().unwrap_or(0.0) * 2.0;
                }
            }
        }
    }

    fn n_items(&self) -> usize {
        self.counts.len()
    }
}
