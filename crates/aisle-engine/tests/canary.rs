//! A candidate policy rolled out live: it waits in shadow mode, then serves a canary share
//! of users, and is withdrawn automatically when the lists it serves earn less online reward
//! than the current policy's. The candidate here is planted worse: uniform over the ranker's
//! candidates (epsilon-greedy with epsilon 1) against the deterministic ranking. The
//! shoppers are the bundled sample's real Instacart users; each clicks a shown item in the
//! top three that they bought in their real orders, so the reward follows their recorded
//! taste, not the policy's label.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aisle_core::EventKind;
use aisle_engine::requests::RecommendParams;
use aisle_engine::{
    Canary, DecisionHook, Engine, EngineConfig, RewardRule, RolloutConfig, ServingPolicy, Stage,
    Strategy,
};

#[test]
fn a_canary_that_earns_less_online_is_rolled_back() {
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
    let store = aisle_store::open(&path).expect("open");
    // Each user's bought items (external ids), and the users in store order.
    let mut names = HashMap::new();
    store
        .scan_items(&mut |id, item| {
            names.insert(id.0, item.external_id);
        })
        .expect("items");
    let mut users = Vec::new();
    let mut user_names = HashMap::new();
    store
        .scan_users(&mut |id, u| {
            user_names.insert(id.0, u.external_id.clone());
            users.push(u.external_id);
        })
        .expect("users");
    let mut bought: HashMap<String, HashSet<String>> = HashMap::new();
    store
        .scan_events(&mut |e| {
            if e.kind == EventKind::Purchase
                && let (Some(item), Some(user)) = (e.item, user_names.get(&e.user.0))
            {
                bought
                    .entry(user.clone())
                    .or_default()
                    .insert(names[&item.0].clone());
            }
        })
        .expect("events");
    drop(store);

    let verdicts: Arc<Mutex<Vec<Stage>>> = Arc::default();
    let told = verdicts.clone();
    let current = ServingPolicy::Deterministic;
    let planted = ServingPolicy::EpsilonGreedy { epsilon: 1.0 };
    let config = EngineConfig {
        model: "itemknn".into(),
        strategy: Strategy::new(current, 1),
        canary: Some(Canary {
            candidate: Strategy::new(planted, 2),
            config: RolloutConfig {
                shadow_requests: 20,
                canary_share: 0.5,
                min_impressions: 80,
                alpha: 0.05,
            },
            on_decision: Some(DecisionHook(Arc::new(move |stage: &Stage| {
                told.lock().unwrap().push(stage.clone());
            }))),
        }),
        reward: RewardRule {
            window_ms: 2_000,
            ..RewardRule::default()
        },
        ..EngineConfig::default()
    };
    let (engine, writer) = Engine::start(
        config,
        Arc::from(aisle_store::open(&path).expect("open")),
        None,
    )
    .expect("the engine starts");
    assert_eq!(
        engine.policy_status().rollout.expect("a rollout").stage,
        "shadow"
    );

    let mut served_by_candidate = 0;
    let mut candidate_users = HashSet::new();
    for user in &users {
        let list = engine
            .recommend(&RecommendParams {
                user: user.clone(),
                k: 5,
                exclude_bought: false,
                category: None,
                explain: false,
            })
            .expect("recommend");
        if list.served.policy == planted.name() {
            served_by_candidate += 1;
            candidate_users.insert(user.clone());
        }
        let mine = bought.get(user);
        let liked = list
            .items
            .iter()
            .take(3)
            .find(|i| mine.is_some_and(|b| b.contains(&i.id)));
        if let Some(item) = liked {
            let body = format!(
                r#"{{"user": "{user}", "kind": "click", "item": "{}", "impression": "{}"}}"#,
                item.id, list.served.impression
            );
            engine
                .ingest(body.as_bytes(), false, None)
                .expect("queued")
                .wait()
                .expect("stored");
        }
    }
    // Past the reward window every list's reward is final.
    std::thread::sleep(Duration::from_millis(2_200));
    let status = engine.policy_status();
    let rollout = status.rollout.expect("a rollout");
    assert!(
        served_by_candidate >= 80,
        "the canary served {served_by_candidate} lists"
    );
    assert_eq!(rollout.stage, "rolled-back", "{rollout:?}");
    assert!(
        rollout
            .reason
            .as_deref()
            .is_some_and(|r| r.contains("online reward")),
        "{rollout:?}"
    );
    assert!(
        rollout.candidate_reward < rollout.current_reward,
        "{rollout:?}"
    );
    let told = verdicts.lock().unwrap().clone();
    assert!(
        matches!(told.as_slice(), [Stage::RolledBack { .. }]),
        "the hook hears the verdict once: {told:?}"
    );
    // Per policy, the online reward the dashboard charts.
    let of = |id: &str| {
        status
            .online
            .iter()
            .find(|p| p.policy == id)
            .unwrap_or_else(|| panic!("{id} in {:?}", status.online))
            .clone()
    };
    let (mine, theirs) = (of(&planted.name()), of(&current.name()));
    assert!(mine.lists > 0 && theirs.lists > 0, "{mine:?} {theirs:?}");
    assert!(mine.mean_reward < theirs.mean_reward, "{mine:?} {theirs:?}");
    assert!(!theirs.minutes.is_empty());

    // After the rollback the candidate's users are served by the current policy again.
    let back = candidate_users.iter().next().expect("a canary user");
    let list = engine
        .recommend(&RecommendParams {
            user: back.clone(),
            k: 5,
            exclude_bought: false,
            category: None,
            explain: false,
        })
        .expect("recommend");
    assert_eq!(list.served.policy, current.name());
    drop(engine);
    writer.join();
}
