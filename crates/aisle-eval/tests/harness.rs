//! The harness on real data: splits leak nothing, and a trained model beats popularity.

use aisle_eval::{EvalSettings, Protocol, run_leaderboard};
use aisle_features::{EventLog, KindWeights};
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

#[test]
fn leave_one_out_holds_out_exactly_one_event_per_user() {
    let Some(log) = movielens() else { return };
    let split = Protocol::LeaveOneOut
        .split(&log, &KindWeights::default())
        .expect("split");
    // Every MovieLens user has 20+ ratings, so every user is a case, and exactly one rating
    // per user left training (ratings are one event each, none later than the held-out one
    // except same-second ties, which also leave).
    assert_eq!(split.cases.len(), 943);
    assert!(split.train.len() <= 100_000 - 943);
    for case in &split.cases {
        let user = case.user.expect("known user");
        let last_train = split
            .train
            .events()
            .iter()
            .filter(|e| e.user == user)
            .map(|e| e.timestamp_ms)
            .max();
        assert!(last_train.is_some());
        assert_eq!(case.relevant.len(), 1);
        assert_eq!(
            case.history.len(),
            split
                .train
                .events()
                .iter()
                .filter(|e| e.user == user)
                .count()
        );
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
