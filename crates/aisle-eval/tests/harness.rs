//! The harness on real data: splits leak nothing (no held-out event is trained on, and
//! none is earlier than what the model learnt from), and a trained model beats popularity.

use std::collections::{HashMap, HashSet};

use aisle_eval::{EvalSettings, Protocol, run_leaderboard};
use aisle_features::{EventLog, Interaction, KindWeights};
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_models::TrainDataBuilder;
use aisle_store::MemStore;

fn movielens() -> Option<EventLog> {
    let dir = aisle_testkit::shared_dataset("movielens-100k")?;
    let store = MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(Adapter::MovieLens),
        &[dir],
        &ImportOptions::default(),
    )
    .expect("import");
    Some(EventLog::load(&store).expect("events"))
}

/// (user, item, time) of each event, counted.
type Key = (u32, u32, i64);

fn counts<'a>(events: impl IntoIterator<Item = &'a Interaction>) -> HashMap<Key, usize> {
    let mut out = HashMap::new();
    for e in events {
        *out.entry((e.user, e.item, e.timestamp_ms)).or_insert(0) += 1;
    }
    out
}

/// The events of `log` that are not in `train`: what the split held out. Fails if training
/// holds an event the log does not.
fn held_out(log: &EventLog, train: &EventLog) -> Vec<Key> {
    let mut left = counts(train.events());
    let mut out = Vec::new();
    for e in log.events() {
        let key = (e.user, e.item, e.timestamp_ms);
        match left.get_mut(&key) {
            Some(n) if *n > 0 => *n -= 1,
            _ => out.push(key),
        }
    }
    assert!(
        left.values().all(|&n| n == 0),
        "training holds events the log does not"
    );
    out
}

#[test]
fn leave_one_out_holds_out_each_users_last_rating_and_nothing_else() {
    let Some(log) = movielens() else { return };
    let split = Protocol::LeaveOneOut
        .split(&log, &KindWeights::default())
        .expect("split");
    // Every MovieLens user has 20+ ratings, so every user is a case.
    assert_eq!(split.cases.len(), 943);
    let held = held_out(&log, &split.train);
    // No (user, item, time) is both trained on and held out.
    let train_keys = counts(split.train.events());
    if let Some(k) = held.iter().find(|k| train_keys.contains_key(k)) {
        panic!("{k:?} is in training and held out");
    }
    let mut held_by_user: HashMap<u32, Vec<Key>> = HashMap::new();
    for &k in &held {
        held_by_user.entry(k.0).or_default().push(k);
    }
    let mut train_by_user: HashMap<u32, Vec<&Interaction>> = HashMap::new();
    for e in split.train.events() {
        train_by_user.entry(e.user).or_default().push(e);
    }
    let mut latest_by_user: HashMap<u32, i64> = HashMap::new();
    for e in log.events() {
        let t = latest_by_user.entry(e.user).or_insert(i64::MIN);
        *t = (*t).max(e.timestamp_ms);
    }
    for case in &split.cases {
        let user = case.user.expect("known user");
        // Exactly one rating per user left training: the case's item, at the user's latest
        // time, with no training event of that user later.
        let held = &held_by_user[&user];
        assert_eq!(held.len(), 1, "user {user}: {held:?}");
        let (_, item, at) = held[0];
        assert_eq!(case.relevant, vec![item], "user {user}");
        assert_eq!(
            at, latest_by_user[&user],
            "user {user}: not the last rating"
        );
        let train = &train_by_user[&user];
        let last_train = train.iter().map(|e| e.timestamp_ms).max().expect("history");
        assert!(
            last_train <= at,
            "user {user}: trained on {last_train} > {at}"
        );
        // MovieLens users rate a film once: the held-out film is nowhere in their training.
        assert!(
            train.iter().all(|e| e.item != item),
            "user {user} item {item}"
        );
        // The history is the user's training events, oldest first.
        assert_eq!(case.history.len(), train.len());
        assert!(case.times_ms.windows(2).all(|w| w[0] <= w[1]));
        assert!(case.times_ms.iter().all(|&t| t <= at));
    }
    assert_eq!(held.len(), 943);
}

#[test]
fn temporal_split_trains_on_the_past_and_tests_on_the_future() {
    let Some(log) = movielens() else { return };
    for exclude_seen in [false, true] {
        let split = Protocol::Temporal {
            test_fraction: 0.2,
            exclude_seen,
        }
        .split(&log, &KindWeights::default())
        .expect("split");
        let held = held_out(&log, &split.train);
        let share = held.len() as f64 / log.len() as f64;
        assert!((0.19..=0.21).contains(&share), "test period share {share}");
        // Every test-period event is later than every training event, and none is both.
        let last_train = split
            .train
            .events()
            .iter()
            .map(|e| e.timestamp_ms)
            .max()
            .expect("training events");
        let first_test = held.iter().map(|k| k.2).min().expect("test events");
        assert!(
            last_train < first_test,
            "trained up to {last_train}, tested from {first_test}"
        );
        let train_keys = counts(split.train.events());
        if let Some(k) = held.iter().find(|k| train_keys.contains_key(k)) {
            panic!("{k:?} is in training and in the test period");
        }
        let held_keys: HashSet<(u32, u32)> = held.iter().map(|k| (k.0, k.1)).collect();
        let mut train_items: HashMap<u32, HashSet<u32>> = HashMap::new();
        for e in split.train.events() {
            train_items.entry(e.user).or_default().insert(e.item);
        }
        assert!(split.cases.len() > 50, "{} cases", split.cases.len());
        for case in &split.cases {
            let user = case.user.expect("known user");
            // The history is the past only; the relevant items were rated in the future.
            assert!(case.times_ms.iter().all(|&t| t <= last_train));
            assert_eq!(case.history.len(), case.times_ms.len());
            let seen = &train_items[&user];
            assert!(case.history.iter().all(|i| seen.contains(i)));
            for &item in &case.relevant {
                assert!(
                    held_keys.contains(&(user, item)),
                    "user {user} item {item} is not from the test period"
                );
                if exclude_seen {
                    assert!(!seen.contains(&item), "user {user} item {item} was seen");
                }
            }
        }
    }
}

#[test]
fn tuned_itemknn_beats_popularity_on_movielens() {
    let Some(log) = movielens() else { return };
    let settings = EvalSettings {
        configs: Vec::new(),
        protocol: Protocol::LeaveOneOut,
        ks: vec![5, 10, 20],
        tune: true,
        tune_budget: 2,
        tune_seconds: None,
        max_validation_cases: 500,
        weights: KindWeights::default(),
        builder: TrainDataBuilder::new(),
        progress: None,
        seed: None,
    };
    let rows = run_leaderboard(&log, &["pop".to_string(), "itemknn".to_string()], &settings)
        .expect("leaderboard");
    let hr = |name: &str| rows.iter().find(|r| r.model == name).expect("row").metrics["hr@10"];
    assert!(
        hr("itemknn") > hr("pop"),
        "itemknn {} vs pop {}",
        hr("itemknn"),
        hr("pop")
    );
    assert_eq!(rows[1].tuning.len(), 2, "two settings tried");
}
