//! Churn features: recency, frequency and monetary behaviour of each customer as of a day,
//! for a classifier of "buys again in the next period".

use aisle_core::EventKind;
use aisle_features::EventLog;

use crate::bgnbd::Customer;

/// Feature names, in row order.
pub const CHURN_FEATURES: [&str; 7] = [
    "repeat_purchases",
    "weeks_first_to_last",
    "weeks_observed",
    "weeks_since_last",
    "purchase_rate",
    "units_bought",
    "units_per_purchase",
];

/// Units bought per user up to and including `end_day` (days since the epoch); a purchase
/// without a quantity counts as one unit.
pub fn units_bought(log: &EventLog, end_day: i64) -> Vec<f64> {
    let mut units = vec![0f64; log.n_users()];
    for e in log.events().iter().filter(|e| {
        e.kind == EventKind::Purchase && e.timestamp_ms.div_euclid(86_400_000) <= end_day
    }) {
        units[e.user as usize] += f64::from(e.value.max(1.0));
    }
    units
}

/// One customer's [`CHURN_FEATURES`], from their calibration summary and units bought.
pub fn churn_row(c: &Customer, units: f64) -> [f32; 7] {
    let purchases = c.x + 1.0;
    [
        c.x as f32,
        c.t_x as f32,
        c.t as f32,
        (c.t - c.t_x) as f32,
        (c.x / c.t.max(1.0)) as f32,
        units as f32,
        (units / purchases) as f32,
    ]
}

/// Fits the churn classifier: gradient-boosted trees (200 trees of depth 4, learning rate
/// 0.05) predicting "buys again in the holdout" from each customer's [`CHURN_FEATURES`] at
/// the calibration end. `units[user]` are the units bought by then.
pub fn fit_churn_gbdt(customers: &[&Customer], units: &[f64]) -> crate::Result<aisle_trees::Gbdt> {
    let x: Vec<f32> = customers
        .iter()
        .flat_map(|c| churn_row(c, units[c.user as usize]))
        .collect();
    let y: Vec<f32> = customers
        .iter()
        .map(|c| f32::from(u8::from(c.holdout > 0.0)))
        .collect();
    if y.iter().all(|&v| v == y[0]) {
        return Err(crate::Error::NotEnoughData(
            "every customer behaves alike in the holdout (all buy again, or none): choose another calibration end".into(),
        ));
    }
    let config = aisle_trees::GbdtConfig {
        trees: 200,
        learning_rate: 0.05,
        max_depth: 4,
        ..aisle_trees::GbdtConfig::default()
    };
    aisle_trees::Gbdt::fit(
        &config,
        &aisle_trees::GbdtData {
            features: &x,
            n_features: CHURN_FEATURES.len(),
            labels: &y,
            groups: &[],
        },
        None,
    )
    .map_err(|e| crate::Error::FitFailed(e.to_string()))
}
