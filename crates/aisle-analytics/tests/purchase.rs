//! Reorder prediction on the bundled Instacart sample: features from the past only, and a
//! GBDT that ranks next-order reorders well on held-out last orders.

use aisle_analytics::purchase::{REORDER_FEATURES, auc, reorder_rows};
use aisle_features::EventLog;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_models::{Gbdt, GbdtConfig, GbdtData};
use aisle_store::MemStore;

#[test]
fn gbdt_predicts_reorders_of_the_last_order() {
    let store = MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(Adapter::Instacart),
        &[aisle_testkit::bundled_sample()],
        &ImportOptions::default(),
    )
    .unwrap();
    let log = EventLog::load(&store).unwrap();
    let train = reorder_rows(&log, 1);
    let test = reorder_rows(&log, 0);
    let n = REORDER_FEATURES.len();
    assert_eq!(train.features.len(), train.labels.len() * n);
    assert!(test.labels.len() > 40_000);
    // Leakage check: the test rows' features are unchanged when the target orders' events
    // are removed from the log (only the labels may depend on them).
    // Each user's last order as reorder_rows orders them: latest purchase start, then session.
    let mut last: Vec<Option<(i64, u64)>> = vec![None; log.n_users()];
    let mut starts: std::collections::HashMap<(u32, u64), i64> = Default::default();
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == aisle_core::EventKind::Purchase)
    {
        let start = starts.entry((e.user, e.session)).or_insert(e.timestamp_ms);
        *start = (*start).min(e.timestamp_ms);
    }
    for (&(user, session), &start) in &starts {
        let slot = &mut last[user as usize];
        if slot.is_none_or(|l| (start, session) > l) {
            *slot = Some((start, session));
        }
    }
    let truncated: Vec<_> = log
        .events()
        .iter()
        .filter(|e| last[e.user as usize].is_none_or(|l| l.1 != e.session))
        .copied()
        .collect();
    let without_targets = reorder_rows(
        &EventLog::from_events(truncated, log.n_users(), log.n_items()),
        0,
    );
    // Without its last order each user's "last" is the old second-to-last: the train rows.
    assert_eq!(without_targets.features.len(), train.features.len());
    if let Some(i) =
        (0..train.features.len()).find(|&i| without_targets.features[i] != train.features[i])
    {
        panic!(
            "row {} feature {}: {} without the target orders, {} with them",
            i / n,
            REORDER_FEATURES[i % n],
            without_targets.features[i],
            train.features[i]
        );
    }

    let config = GbdtConfig {
        trees: 80,
        learning_rate: 0.1,
        ..GbdtConfig::default()
    };
    let model = Gbdt::fit(
        &config,
        &GbdtData {
            features: &train.features,
            n_features: n,
            labels: &train.labels,
            groups: &[],
        },
        None,
    )
    .unwrap();
    let scores: Vec<f32> = test
        .features
        .chunks_exact(n)
        .map(|r| model.predict_probability(r))
        .collect();
    let value = auc(&scores, &test.labels);
    assert!(value > 0.82, "AUC {value}");
}
