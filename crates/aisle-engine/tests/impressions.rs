//! Every list the engine serves is logged as an impression (surface, policy and version,
//! candidates with scores, shown items with the probability the policy gave them), durably,
//! and events that carry its id come back as its rewards.

use std::sync::Arc;

use aisle_core::parse_impression_label;
use aisle_engine::requests::{CartIn, KParam, RecommendParams, SessionIn, TrendingParams};
use aisle_engine::{Engine, EngineConfig, ServingPolicy, Strategy};
use aisle_policy::impressions::{RewardRule, attribute};
use aisle_store::Store;

fn start(
    store: Arc<dyn Store>,
    policy: ServingPolicy,
) -> (Arc<Engine>, aisle_engine::WriterThread) {
    let config = EngineConfig {
        model: "itemknn".into(),
        strategy: Strategy::new(policy, 3),
        // The cart surface keeps the ranking: a policy of its own beside the shared one.
        strategy_by_surface: vec![(
            "cart".into(),
            Strategy::new(ServingPolicy::Deterministic, 3),
        )],
        ..EngineConfig::default()
    };
    Engine::start(config, store, None).expect("the engine starts")
}

#[test]
fn served_lists_are_logged_durably_with_their_propensities_and_rewards() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop").display().to_string();
    {
        let store = aisle_store::open(&path).expect("open");
        aisle_import::import(
            store.as_ref(),
            &aisle_import::Source::Adapter(aisle_import::Adapter::Instacart),
            &[aisle_testkit::bundled_sample()],
            &aisle_import::ImportOptions::default(),
        )
        .expect("the bundled sample imports");
    }
    let policy = ServingPolicy::EpsilonGreedy { epsilon: 0.2 };
    let (engine, writer) = start(Arc::from(aisle_store::open(&path).expect("open")), policy);
    let store = engine.store();
    let user = {
        let mut first = None;
        store
            .scan_users(&mut |_, u| {
                first.get_or_insert(u.external_id);
            })
            .expect("users");
        first.expect("a user")
    };
    let recommended = engine
        .recommend(&RecommendParams {
            user: user.clone(),
            k: 10,
            exclude_bought: false,
            category: None,
            explain: false,
        })
        .expect("recommend");
    let session = engine
        .recommend_session(
            &KParam { k: 5 },
            &SessionIn {
                session: Some("s-1".into()),
                items: Some(vec![recommended.items[0].id.clone()]),
            },
        )
        .expect("session");
    let cart = engine
        .recommend_cart(
            &KParam { k: 5 },
            &CartIn {
                items: vec![recommended.items[0].id.clone()],
            },
        )
        .expect("cart");
    let trending = engine
        .trending(&TrendingParams {
            k: 5,
            category: None,
        })
        .expect("trending");
    let lists = [
        (
            &recommended.served,
            recommended
                .items
                .iter()
                .map(|i| i.propensity)
                .collect::<Vec<_>>(),
        ),
        (
            &session.served,
            session.items.iter().map(|i| i.propensity).collect(),
        ),
        (
            &cart.served,
            cart.items.iter().map(|i| i.propensity).collect(),
        ),
        (
            &trending.served,
            trending.items.iter().map(|i| i.propensity).collect(),
        ),
    ];
    for (served, propensities) in &lists {
        assert!(
            parse_impression_label(&served.impression).is_some(),
            "{served:?}"
        );
        assert!(
            !served.policy.is_empty() && served.policy_version >= 1,
            "{served:?}"
        );
        assert!(
            !propensities.is_empty() && propensities.iter().all(|&p| p > 0.0 && p <= 1.0),
            "{served:?} {propensities:?}"
        );
    }
    assert_eq!(recommended.served.policy_version, 3);
    assert_eq!(recommended.served.policy, policy.name());
    assert_eq!(cart.served.policy, "deterministic", "the cart's own policy");
    assert!(
        cart.items
            .iter()
            .all(|i| i.propensity == 1.0 && !i.explored)
    );
    assert_eq!(
        trending.served.policy, "ranking",
        "trending is served as ranked"
    );

    // The shopper clicks the second recommended item, naming the list.
    let clicked = &recommended.items[1].id;
    let body = format!(
        r#"{{"user": "{user}", "kind": "click", "item": "{clicked}", "impression": "{}", "timestamp": 1700000000000}}"#,
        recommended.served.impression
    );
    engine
        .ingest(body.as_bytes(), false, None)
        .expect("queued")
        .wait()
        .expect("stored");
    let bad = format!(
        r#"{{"user": "{user}", "kind": "click", "item": "{clicked}", "impression": "nope"}}"#
    );
    let refused = engine
        .ingest(bad.as_bytes(), false, None)
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
        + &engine
            .ingest(bad.as_bytes(), false, None)
            .map(|p| p.wait().err().map(|e| e.to_string()).unwrap_or_default())
            .unwrap_or_default();
    assert!(refused.contains("impression"), "{refused}");
    drop(engine);
    writer.join();

    // After a restart the lists are in the store, exactly as served.
    let store = aisle_store::open(&path).expect("reopen");
    let mut logged = Vec::new();
    store
        .scan_impressions(&mut |i| logged.push(i))
        .expect("scan");
    assert_eq!(logged.len(), 4, "{logged:?}");
    let id = parse_impression_label(&recommended.served.impression).expect("id");
    let first = logged
        .iter()
        .find(|i| i.id == id)
        .expect("the recommend list");
    assert_eq!(first.surface, "recommend");
    assert_eq!(
        (first.policy.as_str(), first.policy_version),
        (policy.name().as_str(), 3)
    );
    assert_eq!(first.shown.len(), 10);
    assert_eq!(first.candidates.len(), first.scores.len());
    // The logged propensities are the policy's own probabilities for that slate.
    let scores: Vec<f64> = first.scores.iter().map(|&s| f64::from(s)).collect();
    let slate: Vec<usize> = first
        .shown
        .iter()
        .map(|s| {
            first
                .candidates
                .iter()
                .position(|&c| c == s.item)
                .expect("shown from the candidates")
        })
        .collect();
    for (s, p) in first
        .shown
        .iter()
        .zip(policy.slate_probabilities(&scores, &slate))
    {
        assert!(
            (f64::from(s.propensity) - p).abs() < 1e-6,
            "{} vs {p}",
            s.propensity
        );
    }
    for (s, r) in first.shown.iter().zip(&recommended.items) {
        assert!(
            (s.propensity - r.propensity).abs() < 1e-9,
            "answered and logged propensities agree"
        );
    }
    // An item the policy put in place of the ranking's choice is marked, and its reason says so.
    let mut taken = vec![false; first.candidates.len()];
    for (&pick, item) in slate.iter().zip(&recommended.items) {
        let ranked_next = taken.iter().position(|t| !t).expect("a candidate left");
        taken[pick] = true;
        assert_eq!(item.explored, pick != ranked_next, "{item:?}");
        assert_eq!(
            item.why.starts_with("shown to explore"),
            item.explored,
            "{item:?}"
        );
    }
    // The click names the list: it is the reward of slot 2 and nothing else.
    let mut events = Vec::new();
    store.scan_events(&mut |e| events.push(e)).expect("events");
    let rewarded = attribute(logged, &events, &RewardRule::default());
    let mine = rewarded
        .iter()
        .find(|l| l.impression.id == id)
        .expect("the list");
    assert_eq!(mine.rewards.iter().sum::<f64>(), 1.0, "{:?}", mine.rewards);
    assert_eq!(mine.rewards[1], 1.0);
}
