//! Personalised re-ranking: features of a (shopper, query, product) triple and a LambdaMART
//! model over them.

use std::path::Path;

use aisle_core::{EventKind, Item, ItemId};
use aisle_trees::{Gbdt, GbdtConfig, GbdtData, Objective};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// The re-ranker's inputs, in order.
pub const FEATURE_NAMES: [&str; 15] = [
    "lexical_score",
    "lexical_rank",
    "semantic_similarity",
    "semantic_rank",
    "fused_score",
    "popularity",
    "recent_popularity",
    "user_item_count",
    "user_item_recency",
    "user_category_share",
    "user_department_share",
    "user_brand_share",
    "recommender_rank",
    "price_distance",
    "history_length",
];

/// Number of features.
pub const N_FEATURES: usize = FEATURE_NAMES.len();
const DAY_MS: f64 = 86_400_000.0;

/// How much each kind of event says about interest, for the profile's counts.
fn kind_weight(kind: EventKind) -> f32 {
    match kind {
        EventKind::Purchase => 1.0,
        EventKind::AddToCart => 0.5,
        EventKind::Click => 0.3,
        EventKind::View => 0.2,
        EventKind::Rating => 0.5,
        EventKind::Search | EventKind::RemoveFromCart => 0.0,
        EventKind::Custom(_) => 0.1,
    }
}

/// A shopper's behaviour, summarised for ranking: what they bought or looked at, in which
/// categories and brands, at what prices.
#[derive(Clone, Debug, Default)]
pub struct BehaviourProfile {
    items: FxHashMap<ItemId, (f32, i64)>,
    leaf: FxHashMap<String, f32>,
    department: FxHashMap<String, f32>,
    brand: FxHashMap<String, f32>,
    total: f32,
    log_prices: Vec<f32>,
}

impl BehaviourProfile {
    /// Builds a profile from the shopper's events (item, kind, time in ms); `item` looks up
    /// the catalogue.
    pub fn from_events<'a>(
        events: impl IntoIterator<Item = (ItemId, EventKind, i64)>,
        item: impl Fn(ItemId) -> Option<&'a Item>,
    ) -> Self {
        let mut profile = Self::default();
        for (id, kind, time) in events {
            let w = kind_weight(kind);
            if w == 0.0 {
                continue;
            }
            let entry = profile.items.entry(id).or_insert((0.0, i64::MIN));
            entry.0 += w;
            entry.1 = entry.1.max(time);
            profile.total += w;
            if let Some(item) = item(id) {
                if !item.category.is_empty() {
                    *profile.leaf.entry(item.category.join("/")).or_default() += w;
                    *profile
                        .department
                        .entry(item.category[0].clone())
                        .or_default() += w;
                }
                if let Some(brand) = &item.brand {
                    *profile.brand.entry(brand.clone()).or_default() += w;
                }
                if let Some(price) = item.price.filter(|p| *p > 0.0) {
                    profile.log_prices.push(price.ln() as f32);
                }
            }
        }
        profile
    }

    /// True when there is no behaviour to personalise with.
    pub fn is_empty(&self) -> bool {
        self.total == 0.0
    }

    /// The shopper's weighted interactions with `item` and when the last one was.
    pub fn item(&self, item: ItemId) -> Option<(f32, i64)> {
        self.items.get(&item).copied()
    }

    /// Items the shopper interacted with.
    pub fn items(&self) -> impl Iterator<Item = ItemId> + '_ {
        self.items.keys().copied()
    }

    /// Share of the shopper's interest in this category path.
    pub fn category_share(&self, path: &[String]) -> f32 {
        if self.total == 0.0 || path.is_empty() {
            return 0.0;
        }
        self.leaf.get(&path.join("/")).copied().unwrap_or(0.0) / self.total
    }

    fn department_share(&self, path: &[String]) -> f32 {
        match path.first() {
            Some(top) if self.total > 0.0 => {
                self.department.get(top).copied().unwrap_or(0.0) / self.total
            }
            _ => 0.0,
        }
    }

    fn brand_share(&self, brand: Option<&String>) -> f32 {
        match brand {
            Some(b) if self.total > 0.0 => self.brand.get(b).copied().unwrap_or(0.0) / self.total,
            _ => 0.0,
        }
    }

    /// How many standard deviations the price is from the shopper's usual (log) price; −1
    /// when either is unknown.
    fn price_distance(&self, price: Option<f64>) -> f32 {
        let Some(p) = price.filter(|p| *p > 0.0) else {
            return -1.0;
        };
        if self.log_prices.len() < 2 {
            return -1.0;
        }
        let n = self.log_prices.len() as f32;
        let mean = self.log_prices.iter().sum::<f32>() / n;
        let var = self
            .log_prices
            .iter()
            .map(|x| (x - mean).powi(2))
            .sum::<f32>()
            / n;
        ((p.ln() as f32 - mean).abs() / (var.sqrt() + 0.1)).min(10.0)
    }
}

/// What the re-ranker knows about the request beyond the query.
#[derive(Clone, Copy, Debug, Default)]
pub struct RankingContext<'a> {
    /// The shopper's behaviour, if known.
    pub profile: Option<&'a BehaviourProfile>,
    /// A recommender's score for every item (indexed by item id) for this shopper.
    pub recommender_scores: Option<&'a [f32]>,
    /// The time of the request in ms (for recency features).
    pub now_ms: i64,
}

/// One candidate's retrieval signals, as the engine found them.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Signals {
    pub lexical: Option<(f32, usize)>,
    pub semantic_rank: Option<usize>,
    pub similarity: f32,
    pub fused: f32,
    pub popularity: f32,
    pub recent_popularity: f32,
    pub recommender_rank: f32,
}

/// Appends one feature row to `out`.
pub(crate) fn features(
    id: ItemId,
    item: &Item,
    signals: &Signals,
    ctx: &RankingContext<'_>,
    out: &mut Vec<f32>,
) {
    let recip = |rank: Option<usize>| rank.map_or(0.0, |r| 1.0 / (1.0 + r as f32));
    let empty = BehaviourProfile::default();
    let profile = ctx.profile.unwrap_or(&empty);
    let (count, recency) = match profile.item(id) {
        Some((count, last)) => {
            let days = ((ctx.now_ms - last).max(0) as f64 / DAY_MS) as f32;
            ((1.0 + count).ln(), 1.0 / (1.0 + days))
        }
        None => (0.0, 0.0),
    };
    out.extend([
        signals.lexical.map_or(0.0, |l| l.0),
        recip(signals.lexical.map(|l| l.1)),
        signals.similarity,
        recip(signals.semantic_rank),
        signals.fused,
        signals.popularity,
        signals.recent_popularity,
        count,
        recency,
        profile.category_share(&item.category),
        profile.department_share(&item.category),
        profile.brand_share(item.brand.as_ref()),
        signals.recommender_rank,
        profile.price_distance(item.price),
        (1.0 + profile.total).ln(),
    ]);
}

/// Re-scores candidates from their feature rows ([`FEATURE_NAMES`] order).
pub trait Ranker: Send + Sync {
    /// A short name for reports.
    fn name(&self) -> &str;
    /// One score per row of `features` (rows of [`FEATURE_NAMES`].len()); higher first.
    fn score(&self, features: &[f32]) -> Vec<f32>;
}

/// Settings of [`LearnedRanker::train`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RankerConfig {
    /// The boosted trees (the objective is always LambdaRank).
    pub gbdt: GbdtConfig,
    /// How many of the fused list's head are re-ranked. Default 100.
    pub depth: usize,
}

impl Default for RankerConfig {
    fn default() -> Self {
        Self {
            gbdt: GbdtConfig {
                objective: Objective::LambdaRank,
                trees: 300,
                learning_rate: 0.05,
                max_depth: 6,
                min_data_in_leaf: 50,
                early_stopping_rounds: 30,
                ..GbdtConfig::default()
            },
            depth: 100,
        }
    }
}

/// One training query: a feature row per candidate and its relevance label (0 = not
/// relevant; higher = more relevant, e.g. 1 click, 2 cart, 3 purchase).
#[derive(Clone, Debug, Default)]
pub struct TrainingQuery {
    /// Row-major features, [`FEATURE_NAMES`] order.
    pub features: Vec<f32>,
    /// One label per candidate.
    pub labels: Vec<f32>,
}

/// LambdaMART over [`FEATURE_NAMES`].
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LearnedRanker {
    model: Gbdt,
    features: Vec<String>,
    /// How many of the fused list's head are re-ranked.
    pub depth: usize,
}

fn stack(queries: &[TrainingQuery]) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
    let mut features = Vec::new();
    let mut labels = Vec::new();
    let mut groups = Vec::new();
    for q in queries.iter().filter(|q| !q.labels.is_empty()) {
        features.extend_from_slice(&q.features);
        labels.extend_from_slice(&q.labels);
        groups.push(q.labels.len());
    }
    (features, labels, groups)
}

impl LearnedRanker {
    /// Trains on `train`, stopping early on `validation` NDCG.
    pub fn train(
        config: &RankerConfig,
        train: &[TrainingQuery],
        validation: &[TrainingQuery],
    ) -> Result<Self> {
        for q in train.iter().chain(validation) {
            if q.features.len() != q.labels.len() * N_FEATURES {
                return Err(Error::Ranker {
                    message: format!(
                        "a training query has {} feature values for {} candidates",
                        q.features.len(),
                        q.labels.len()
                    ),
                });
            }
        }
        let mut gbdt = config.gbdt.clone();
        gbdt.objective = Objective::LambdaRank;
        let (x, y, g) = stack(train);
        let (vx, vy, vg) = stack(validation);
        let data = GbdtData {
            features: &x,
            n_features: N_FEATURES,
            labels: &y,
            groups: &g,
        };
        let valid = GbdtData {
            features: &vx,
            n_features: N_FEATURES,
            labels: &vy,
            groups: &vg,
        };
        let model = Gbdt::fit(&gbdt, &data, (!vy.is_empty()).then_some(&valid))?;
        Ok(Self {
            model,
            features: FEATURE_NAMES.iter().map(|s| s.to_string()).collect(),
            depth: config.depth,
        })
    }

    /// The trees.
    pub fn model(&self) -> &Gbdt {
        &self.model
    }

    /// Feature names with their total split gain, largest first.
    pub fn importance(&self) -> Vec<(String, f64)> {
        let mut gains: Vec<(String, f64)> = self
            .features
            .iter()
            .cloned()
            .zip(self.model.feature_gains())
            .collect();
        gains.sort_by(|a, b| b.1.total_cmp(&a.1));
        gains
    }

    /// Writes the ranker atomically ([`aisle_core::fs::write_atomic`]: never half-written),
    /// sealed under `key` in an encrypted data directory ([`aisle_seal`]).
    pub fn save(&self, path: &Path, key: Option<&aisle_seal::Key>) -> Result<()> {
        let bytes = postcard::to_allocvec(self).map_err(|e| Error::Ranker {
            message: format!("cannot encode the ranker: {e}"),
        })?;
        aisle_core::fs::write_atomic(path, &aisle_seal::seal_file(path, &bytes, key))?;
        Ok(())
    }

    /// Reads a ranker written by [`LearnedRanker::save`] (with the same `key`).
    pub fn load(path: &Path, key: Option<&aisle_seal::Key>) -> Result<Self> {
        let bytes = aisle_seal::open_file(path, fs_err::read(path)?, key)?;
        let ranker: Self = postcard::from_bytes(&bytes).map_err(|e| Error::Corrupt {
            path: path.to_path_buf(),
            message: format!("not a ranker file: {e}"),
        })?;
        if ranker.features != FEATURE_NAMES {
            return Err(Error::Corrupt {
                path: path.to_path_buf(),
                message: "trained on other features; retrain it".into(),
            });
        }
        Ok(ranker)
    }
}

impl Ranker for LearnedRanker {
    fn name(&self) -> &str {
        "lambdamart"
    }

    fn score(&self, features: &[f32]) -> Vec<f32> {
        features
            .chunks_exact(N_FEATURES)
            .map(|row| self.model.predict_raw(row))
            .collect()
    }
}
