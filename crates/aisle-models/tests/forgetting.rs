//! Forgetting users on MovieLens-100k: after forgetting ten users, every counting model
//! scores every remaining user exactly as a refit without them does, and EASE (by rank-one
//! downdates) to within rounding.

use std::time::Instant;

use aisle_features::EventLog;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_models::{
    Ease, EaseConfig, Forgetting, Forgot, Model, ModelConfig, Query, Recommender, TrainData,
    TrainDataBuilder, UserKnn, UserKnnConfig,
};
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

/// The training data of `log`, ten of its users, and the training data without them.
fn with_and_without_ten_users(log: &EventLog) -> (TrainData, Vec<u32>, TrainData) {
    let data = TrainDataBuilder::new().build(log);
    let forgotten: Vec<u32> = (0..10).map(|k| 17 + 91 * k).collect();
    let kept_log = EventLog::from_events(
        log.events()
            .iter()
            .copied()
            .filter(|e| !forgotten.contains(&e.user))
            .collect(),
        log.n_users(),
        log.n_items(),
    );
    (data, forgotten, TrainDataBuilder::new().build(&kept_log))
}

fn scores(model: &dyn Recommender, data: &TrainData, user: u32) -> Vec<f32> {
    let history: Vec<u32> = data.matrix.row(user).0.to_vec();
    let mut s = vec![0.0; model.n_items()];
    model.score(
        &Query {
            user: Some(user),
            history: &history,
            ..Query::default()
        },
        &mut s,
    );
    s
}

fn top10(s: &[f32]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..s.len()).collect();
    idx.sort_by(|&a, &b| s[b].total_cmp(&s[a]).then(a.cmp(&b)));
    idx.truncate(10);
    idx
}

#[test]
fn forgetting_ten_users_equals_a_refit_without_them() {
    let Some(log) = movielens() else {
        return;
    };
    let (data, mut forgotten, kept) = with_and_without_ten_users(&log);
    let change = Forgetting::new(&mut forgotten, &data, &kept).expect("same id ranges");

    let mut ease = Ease::new(EaseConfig::default());
    ease.fit(&data).expect("fit");
    let started = Instant::now();
    assert_eq!(ease.forget(&change).expect("forget"), Forgot::UpToRounding);
    let forget_s = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let mut refit = Ease::new(EaseConfig::default());
    refit.fit(&kept).expect("refit");
    let refit_s = started.elapsed().as_secs_f64();
    println!("EASE: forgetting 10 users {forget_s:.3} s, refit {refit_s:.3} s");

    let (mut worst, mut same_top, mut users) = (0f32, 0, 0);
    for u in 0..data.n_users() as u32 {
        if change.is_forgotten(u) || data.matrix.row(u).0.is_empty() {
            continue;
        }
        users += 1;
        let (a, b) = (scores(&ease, &kept, u), scores(&refit, &kept, u));
        for (x, y) in a.iter().zip(&b) {
            worst = worst.max((x - y).abs());
        }
        same_top += usize::from(top10(&a) == top10(&b));
    }
    println!(
        "EASE: largest score difference {worst:e}; same top-10 for {same_top} of {users} users"
    );
    assert!(
        worst <= 1e-5,
        "EASE scores differ from the refit's by {worst}"
    );
    assert!(
        same_top as f64 >= 0.999 * users as f64,
        "{same_top} of {users}"
    );
    assert!(users > 900);
}

/// Every counting model, and a non-binary item-kNN and a Pearson user-kNN besides the
/// defaults: after forgetting, every remaining user's scores equal a refit's to the bit.
#[test]
fn every_counting_model_forgets_exactly_as_a_refit() {
    let Some(log) = movielens() else {
        return;
    };
    let (data, mut forgotten, kept) = with_and_without_ten_users(&log);
    let change = Forgetting::new(&mut forgotten, &data, &kept).expect("same id ranges");
    let configs = [
        r#"{"model": "pop"}"#,
        r#"{"model": "itemknn"}"#,
        r#"{"model": "itemknn", "binary": false, "k": 20}"#,
        r#"{"model": "userknn"}"#,
        r#"{"model": "userknn", "similarity": "pearson"}"#,
        r#"{"model": "rp3beta"}"#,
        r#"{"model": "sknn"}"#,
        r#"{"model": "sr"}"#,
    ];
    for json in configs {
        let config: ModelConfig = serde_json::from_str(json).expect("config");
        let mut model = Model::build(&config);
        model.fit(&data).expect("fit");
        let started = Instant::now();
        assert_eq!(
            model.forget(&change).expect(json),
            Forgot::Exactly,
            "{json}"
        );
        let forget_s = started.elapsed().as_secs_f64();
        let started = Instant::now();
        let mut refit = Model::build(&config);
        refit.fit(&kept).expect("refit");
        let refit_s = started.elapsed().as_secs_f64();
        let mut compared = 0;
        for u in 0..data.n_users() as u32 {
            if change.is_forgotten(u) || kept.matrix.row(u).0.is_empty() {
                continue;
            }
            compared += 1;
            let (a, b) = (scores(&model, &kept, u), scores(&refit, &kept, u));
            if a != b {
                let differ = a.iter().zip(&b).filter(|(x, y)| x != y).count();
                panic!("{json}: user {u}'s scores differ from a refit's in {differ} items");
            }
        }
        // The forgotten users' own histories: what an anonymous shopper with the same
        // items would be shown must not lean on their own past either.
        for &u in change.users() {
            let history = data.matrix.row(u).0;
            let query = Query {
                history,
                ..Query::default()
            };
            let (mut a, mut b) = (vec![0.0; data.n_items()], vec![0.0; data.n_items()]);
            model.score(&query, &mut a);
            refit.score(&query, &mut b);
            assert_eq!(a, b, "{json}: the history of forgotten user {u}");
        }
        assert!(compared > 900);
        println!("{json}: forgetting 10 users {forget_s:.3} s, refit {refit_s:.3} s");
    }
}

/// The forgotten users are nobody's neighbours in user-kNN afterwards, and the models that
/// cannot forget in place say so and name themselves.
#[test]
fn forgotten_users_are_no_ones_neighbours_and_refusals_name_the_model() {
    let Some(log) = movielens() else {
        return;
    };
    let (data, mut forgotten, kept) = with_and_without_ten_users(&log);
    let change = Forgetting::new(&mut forgotten, &data, &kept).expect("same id ranges");
    let mut knn = UserKnn::new(UserKnnConfig::default());
    knn.fit(&data).expect("fit");
    // A forgotten user's own profile finds them first before forgetting, never after.
    let u = change.users()[0];
    let (items, values) = data.matrix.row(u);
    let before = knn.similarities(items, values, None);
    assert!(before[u as usize] > 0.0);
    knn.forget(&change).expect("forget");
    let after = knn.similarities(items, values, None);
    for &v in change.users() {
        assert_eq!(after[v as usize], 0.0, "user {v} is still a neighbour");
    }

    let mut bpr = Model::build(&ModelConfig::default_for("bpr").expect("bpr"));
    let refusal = bpr.forget(&change).expect_err("bpr cannot forget in place");
    assert!(
        refusal.to_string().starts_with("bpr cannot forget"),
        "{refusal}"
    );
}

#[test]
fn a_loaded_ease_model_refuses_to_forget_without_its_inverse() {
    use aisle_core::EventKind;
    use aisle_features::Interaction;
    let events: Vec<Interaction> = [(0u32, 0u32), (0, 1), (1, 1), (1, 2)]
        .iter()
        .enumerate()
        .map(|(t, &(user, item))| Interaction {
            user,
            item,
            kind: EventKind::View,
            timestamp_ms: t as i64,
            session: 0,
            value: 0.0,
        })
        .collect();
    let data = TrainDataBuilder::new().build(&EventLog::from_events(events, 2, 3));
    let mut ease = Ease::new(EaseConfig::default());
    ease.fit(&data).expect("fit");
    let row = data.matrix.row(0);
    let bytes = postcard::to_stdvec(&ease).expect("encode");
    let mut loaded: Ease = postcard::from_bytes(&bytes).expect("decode");
    let before = loaded.weight(0, 1);
    assert!(
        loaded.forget_rows(&[row]).is_err(),
        "a loaded model cannot downdate"
    );
    assert_eq!(
        loaded.weight(0, 1),
        before,
        "a refused forget changes nothing"
    );
    assert!(ease.forget_rows(&[row]).is_ok());
    // Zero up to rounding: the downdate is exact arithmetic done in floating point.
    assert!(
        ease.weight(0, 1).abs() < 1e-9,
        "with user 0 gone, items 0 and 1 share no one, yet weigh {}",
        ease.weight(0, 1)
    );
}

/// How far item `i`'s factor is from the least-squares solution against the user factors
/// `y` and the observed users of `item_users`: |A x - b| / |b| of the ALS normal equations.
fn als_residual(
    config: &aisle_models::AlsConfig,
    y: &[f32],
    x: &[f32],
    observed: (&[u32], &[f32]),
) -> f64 {
    let k = config.factors;
    let c = 1.0 + f64::from(config.alpha);
    let reg = f64::from(config.regularization) * (1.0 + observed.0.len() as f64);
    let mut ax = vec![0f64; k];
    let mut b = vec![0f64; k];
    for row in y.chunks_exact(k) {
        let d: f64 = row
            .iter()
            .zip(x)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        for (acc, &v) in ax.iter_mut().zip(row) {
            *acc += d * f64::from(v);
        }
    }
    for &u in observed.0 {
        let row = &y[u as usize * k..(u as usize + 1) * k];
        let d: f64 = row
            .iter()
            .zip(x)
            .map(|(&a, &b)| f64::from(a) * f64::from(b))
            .sum();
        for a in 0..k {
            ax[a] += (c - 1.0) * d * f64::from(row[a]);
            b[a] += c * f64::from(row[a]);
        }
    }
    for a in 0..k {
        ax[a] += reg * f64::from(x[a]);
    }
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    let r: Vec<f64> = ax.iter().zip(&b).map(|(a, b)| a - b).collect();
    norm(&r) / norm(&b).max(1e-12)
}

#[test]
fn als_forgets_users_factors_and_re_solves_the_items_they_touched() {
    let Some(log) = movielens() else {
        return;
    };
    let (data, forgotten, kept) = with_and_without_ten_users(&log);
    let config = aisle_models::AlsConfig {
        factors: 16,
        iterations: 6,
        ..aisle_models::AlsConfig::default()
    };
    let mut als = aisle_models::Als::new(config.clone());
    als.fit(&data).expect("fit");
    let before = als.item_factors().to_vec();
    let mut touched: Vec<u32> = forgotten
        .iter()
        .flat_map(|&u| data.matrix.row(u).0.to_vec())
        .collect();
    touched.sort_unstable();
    touched.dedup();
    als.forget_users(&forgotten, &touched, &kept.item_users)
        .expect("forget");
    let k = config.factors;
    for &u in &forgotten {
        assert!(
            als.user_factors()[u as usize * k..(u as usize + 1) * k]
                .iter()
                .all(|&v| v == 0.0)
        );
    }
    let after = als.item_factors();
    for i in 0..data.n_items() {
        let (b, a) = (&before[i * k..(i + 1) * k], &after[i * k..(i + 1) * k]);
        if touched.binary_search(&(i as u32)).is_err() {
            assert_eq!(a, b, "item {i}, untouched by the forgotten users, changed");
        }
    }
    // Each touched item now solves its normal equations against the remaining users; its
    // old factor, fitted with the forgotten users, does not.
    let (mut worst_after, mut mean_before) = (0f64, 0f64);
    for &i in &touched {
        let i = i as usize;
        let observed = kept.item_users.row(i as u32);
        if observed.0.is_empty() {
            continue;
        }
        worst_after = worst_after.max(als_residual(
            &config,
            als.user_factors(),
            &after[i * k..(i + 1) * k],
            observed,
        ));
        mean_before += als_residual(
            &config,
            als.user_factors(),
            &before[i * k..(i + 1) * k],
            observed,
        ) / touched.len() as f64;
    }
    println!(
        "ALS: {} items re-solved; residual after {worst_after:.2e} (worst), before {mean_before:.2e} (mean)",
        touched.len()
    );
    assert!(
        worst_after < 1e-3,
        "a re-solved item is off its least-squares solution by {worst_after}"
    );
    assert!(
        mean_before > 10.0 * worst_after,
        "the old factors were already solutions ({mean_before})"
    );
}
