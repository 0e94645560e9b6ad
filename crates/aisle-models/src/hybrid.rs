//! A weighted hybrid: each component's scores are scaled to [0, 1] per query, then summed with
//! the component weights.

use serde::{Deserialize, Serialize};

use crate::model::{Model, ModelConfig};
use crate::{Error, FitReport, Query, Recommender, Result, TrainData};

/// One component of a hybrid.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HybridComponent {
    /// Model name, with its default settings.
    pub model: String,
    /// Weight of its scaled scores.
    pub weight: f32,
}

/// Hybrid settings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridConfig {
    /// Components (default: EASE-free trio rp3beta 0.5, itemknn 0.3, pop 0.2).
    pub components: Vec<HybridComponent>,
}

impl Default for HybridConfig {
    fn default() -> Self {
        let c = |model: &str, weight| HybridComponent {
            model: model.into(),
            weight,
        };
        Self {
            components: vec![c("rp3beta", 0.5), c("itemknn", 0.3), c("pop", 0.2)],
        }
    }
}

/// The fitted hybrid.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Hybrid {
    config: HybridConfig,
    parts: Vec<(Model, f32)>,
    n_items: usize,
}

impl Hybrid {
    /// An unfitted hybrid.
    pub fn new(config: HybridConfig) -> Self {
        Self {
            config,
            ..Self::default()
        }
    }
}

impl Recommender for Hybrid {
    fn fit(&mut self, data: &TrainData) -> Result<FitReport> {
        if self.config.components.is_empty() {
            return Err(Error::InvalidConfig {
                model: "hybrid",
                reason: "needs at least one component".into(),
            });
        }
        let mut parts = Vec::new();
        for c in &self.config.components {
            if c.model == "hybrid" {
                return Err(Error::InvalidConfig {
                    model: "hybrid",
                    reason: "a hybrid cannot contain a hybrid".into(),
                });
            }
            let mut model = Model::build(&ModelConfig::default_for(&c.model)?);
            model.fit(data)?;
            parts.push((model, c.weight));
        }
        self.parts = parts;
        self.n_items = data.n_items();
        Ok(FitReport::default())
    }

    fn score(&self, query: &Query<'_>, scores: &mut [f32]) {
        scores.iter_mut().for_each(|s| *s = 0.0);
        let mut part = vec![0f32; scores.len()];
        for (model, weight) in &self.parts {
            model.score(query, &mut part);
            let (lo, hi) = part
                .iter()
                .filter(|s| s.is_finite())
                .fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), &s| {
                    (lo.min(s), hi.max(s))
                });
            let range = hi - lo;
            if range.is_nan() || range <= 0.0 {
                continue;
            }
            for (s, p) in scores.iter_mut().zip(&part) {
                if p.is_finite() {
                    *s += weight * (p - lo) / range;
                }
            }
        }
    }

    fn n_items(&self) -> usize {
        self.n_items
    }
}
