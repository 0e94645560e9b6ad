//! Reorder prediction on the bundled Instacart sample: features from the past only, and a
//! GBDT that ranks next-order reorders well on held-out last orders.

use aisle_analytics::purchase::{REORDER_FEATURES, Target, auc, reorder_rows};
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
    let train = reorder_rows(&log, Target::Back(1));
    let test = reorder_rows(&log, Target::Back(0));
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
        Target::Back(0),
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

fn purchase(user: u32, order: u64, item: u32, day: i64) -> aisle_features::Interaction {
    aisle_features::Interaction {
        user,
        item,
        kind: aisle_core::EventKind::Purchase,
        timestamp_ms: day * 86_400_000,
        session: order,
        value: 1.0,
    }
}

/// One user, four orders on days 0, 10, 20 and 26; items 0 and 1 are in group 0, item 2 in
/// group 1, item 3 in none. Every feature below is counted by hand.
#[test]
fn group_rows_by_hand() {
    use aisle_analytics::purchase::{GROUP_FEATURES, group_rows};
    let events = vec![
        purchase(0, 1, 0, 0),
        purchase(0, 1, 2, 0),
        purchase(0, 2, 1, 10),
        purchase(0, 2, 3, 10),
        purchase(0, 3, 2, 20),
        purchase(0, 4, 0, 26),
    ];
    let log = EventLog::from_events(events, 1, 4);
    let groups = [0, 0, 1, u32::MAX];
    let rows = group_rows(&log, &groups, 2, Target::Back(0));
    assert_eq!(
        rows.labels,
        vec![1.0, 0.0],
        "the last order holds group 0 only"
    );
    assert_eq!(rows.subjects, vec![0, 1]);
    let n = GROUP_FEATURES.len();
    let feature = |row: usize, name: &str| {
        let j = GROUP_FEATURES.iter().position(|f| *f == name).unwrap();
        rows.features[row * n + j]
    };
    assert_eq!(feature(0, "user_orders"), 3.0);
    assert!((feature(0, "user_mean_basket") - 5.0 / 3.0).abs() < 1e-6);
    assert_eq!(feature(0, "days_since_previous_order"), 6.0);
    // Group items in history: group 0 twice, group 1 twice.
    assert!((feature(0, "user_group_entropy") - std::f32::consts::LN_2).abs() < 1e-6);
    assert!((feature(0, "ug_order_share") - 2.0 / 3.0).abs() < 1e-6);
    assert!((feature(1, "ug_order_share") - 2.0 / 3.0).abs() < 1e-6);
    assert_eq!(feature(0, "ug_items"), 2.0);
    assert_eq!(feature(0, "ug_orders_since_last"), 1.0);
    assert_eq!(feature(1, "ug_orders_since_last"), 0.0);
    assert_eq!(feature(0, "ug_days_since_last"), 16.0);
    assert_eq!(feature(1, "ug_days_since_last"), 6.0);
    assert_eq!(feature(0, "ug_in_last_order"), 0.0);
    assert_eq!(feature(1, "ug_in_last_order"), 1.0);
    assert_eq!(feature(0, "ug_first_order_share"), 0.0);

    // The next, unplaced order: all four orders are history, the gap is the mean one.
    let next = group_rows(&log, &groups, 2, Target::Next);
    assert_eq!(next.labels, vec![0.0, 0.0]);
    let j = GROUP_FEATURES
        .iter()
        .position(|f| *f == "days_since_previous_order")
        .unwrap();
    assert!((next.features[j] - 26.0 / 3.0).abs() < 1e-5);
    assert_eq!(next.features[0], 4.0, "four orders of history");

    // A user with only two orders has too little history for a labelled row.
    let short = EventLog::from_events(vec![purchase(0, 1, 0, 0), purchase(0, 2, 0, 5)], 1, 4);
    assert!(
        group_rows(&short, &groups, 2, Target::Back(0))
            .labels
            .is_empty()
    );
}
