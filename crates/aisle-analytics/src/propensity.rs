//! Propensity models for the next order, trained on the data at hand and explained per
//! prediction: which products a user will reorder, which departments their next order will
//! hold, and which users a promotion should reach.
//!
//! Training rows target each user's last order (features from the orders before it); the
//! predictions target the order after that, which nobody has placed yet. Early stopping
//! holds out a fifth of the users.

use aisle_features::EventLog;
use aisle_trees::{Gbdt, GbdtConfig, GbdtData};
use rayon::prelude::*;

use crate::purchase::{
    GROUP_FEATURES, PurchaseRows, REORDER_FEATURES, Target, group_rows, reorder_rows,
};
use crate::{Error, Result};

/// A fitted propensity model: gradient-boosted trees over one feature list.
#[derive(Clone, Debug)]
pub struct Propensity {
    model: Gbdt,
    features: &'static [&'static str],
}

/// One feature's part in a prediction.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Contribution {
    /// Feature name.
    pub feature: &'static str,
    /// The row's value of it.
    pub value: f32,
    /// Its TreeSHAP contribution to the log-odds.
    pub log_odds: f64,
}

/// A prediction for one (user, subject) row.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Prediction {
    /// Dense user id.
    pub user: u32,
    /// The product (reorder) or group (department, promotion) predicted.
    pub subject: u32,
    /// Probability that the next order holds it.
    pub probability: f32,
    /// Largest contributions first, when asked for; with the model's base log-odds they add
    /// up to the prediction's log-odds.
    pub because: Vec<Contribution>,
}

/// The trees' settings: at most 500 trees of depth 6, learning rate 0.05, early stopping
/// after 30 rounds without a better validation loss.
pub fn gbdt_config() -> GbdtConfig {
    GbdtConfig {
        trees: 500,
        learning_rate: 0.05,
        max_depth: 6,
        early_stopping_rounds: 30,
        ..GbdtConfig::default()
    }
}

/// Most rows the trees train on (training and validation together). A large shop's log has
/// one row per user and product bought, millions of them, and training on all of them was
/// most of a server's start at 10 million events (bench/results/serve-10m.md). A larger log
/// trains on a fixed sample of whole users. On Complete Journey's reorder task (1.67 million
/// training and validation rows) a sample of a million cost 0.0011 test AUC (0.8313 to
/// 0.8302) and took 6.5 s instead of 10.5 (`aisle-bench purchase --completejourney DIR
/// --max-training-rows 1000000`).
pub const MAX_TRAINING_ROWS: usize = 1_000_000;

fn fit(rows: &PurchaseRows, features: &'static [&'static str]) -> Result<Propensity> {
    let n = features.len();
    let sampled;
    let rows = if rows.labels.len() > MAX_TRAINING_ROWS {
        sampled = rows.sample_users(n, MAX_TRAINING_ROWS as f64 / rows.labels.len() as f64);
        &sampled
    } else {
        rows
    };
    let (train, valid) = rows.split_by_user(n, 0.2);
    if train.labels.iter().all(|&y| y == 0.0) || valid.labels.is_empty() {
        return Err(Error::NotEnoughData(
            "propensity models need users with at least three orders, and some repeat purchases"
                .into(),
        ));
    }
    let config = gbdt_config();
    fn data(r: &PurchaseRows, n: usize) -> GbdtData<'_> {
        GbdtData {
            features: &r.features,
            n_features: n,
            labels: &r.labels,
            groups: &[],
        }
    }
    let model = Gbdt::fit(&config, &data(&train, n), Some(&data(&valid, n)))
        .map_err(|e| Error::FitFailed(e.to_string()))?;
    Ok(Propensity { model, features })
}

impl Propensity {
    /// Learns which previously bought products a user's next order holds.
    pub fn fit_reorder(log: &EventLog) -> Result<Propensity> {
        fit(&reorder_rows(log, Target::Back(0)), &REORDER_FEATURES)
    }

    /// Learns whether a user's next order holds anything of a group; `item_group` gives
    /// each item's group below `n_groups` (departments, usually).
    pub fn fit_group(log: &EventLog, item_group: &[u32], n_groups: usize) -> Result<Propensity> {
        fit(
            &group_rows(log, item_group, n_groups, Target::Back(0)),
            &GROUP_FEATURES,
        )
    }

    /// The features, in row order.
    pub fn features(&self) -> &'static [&'static str] {
        self.features
    }

    /// Base log-odds: the model's expected raw output, where the contributions start.
    pub fn base_log_odds(&self) -> f64 {
        self.model.expected_value()
    }

    /// Global importance: each feature's share of the total split gain.
    pub fn importance(&self) -> Vec<(&'static str, f64)> {
        let gains = self.model.feature_gains();
        let total = gains.iter().sum::<f64>().max(1e-12);
        let mut named: Vec<(&'static str, f64)> = self
            .features
            .iter()
            .copied()
            .zip(gains.iter().map(|g| g / total))
            .collect();
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        named
    }

    /// Predicts every row, in parallel (the rows of a large log run to millions: one per
    /// user and product bought); with `explain`, each prediction carries its `explain`
    /// largest feature contributions (TreeSHAP).
    pub fn predict(&self, rows: &PurchaseRows, explain: usize) -> Vec<Prediction> {
        let n = self.features.len();
        rows.features
            .par_chunks_exact(n)
            .enumerate()
            .map(|(r, x)| {
                let mut because = Vec::new();
                if explain > 0 {
                    let phi = self.model.shap_values(x);
                    because = phi
                        .iter()
                        .enumerate()
                        .map(|(j, &c)| Contribution {
                            feature: self.features[j],
                            value: x[j],
                            log_odds: c,
                        })
                        .collect();
                    because.sort_by(|a, b| b.log_odds.abs().total_cmp(&a.log_odds.abs()));
                    because.truncate(explain);
                }
                Prediction {
                    user: rows.users[r],
                    subject: rows.subjects[r],
                    probability: self.model.predict_probability(x),
                    because,
                }
            })
            .collect()
    }

    /// Propensity of each user to buy any of `items` in their next order, best first. The
    /// model must come from [`Propensity::fit_group`]: the promotion is scored as one more
    /// group of items.
    pub fn promotion_targets(
        &self,
        log: &EventLog,
        items: &[u32],
        explain: usize,
    ) -> Result<Vec<Prediction>> {
        if self.features != GROUP_FEATURES.as_slice() {
            return Err(Error::InvalidSetting(
                "promotion targets need a group (department) propensity model".into(),
            ));
        }
        if items.is_empty() {
            return Err(Error::InvalidSetting("the promotion names no items".into()));
        }
        let mut in_promotion = vec![u32::MAX; log.n_items()];
        for &i in items {
            if let Some(slot) = in_promotion.get_mut(i as usize) {
                *slot = 0;
            }
        }
        let rows = group_rows(log, &in_promotion, 1, Target::Next);
        let mut predictions = self.predict(&rows, explain);
        predictions.sort_by(|a, b| b.probability.total_cmp(&a.probability));
        Ok(predictions)
    }
}

/// Expected number of buyers among the first `k` predictions: the sum of their probabilities.
pub fn expected_buyers(ranked: &[Prediction], k: usize) -> f64 {
    ranked
        .iter()
        .take(k)
        .map(|p| f64::from(p.probability))
        .sum()
}
