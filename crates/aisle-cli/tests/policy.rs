//! `aisle policy` end to end: off-policy evaluation and the simulator's calibration gate on
//! the Open Bandit sample, and the deployment gate on a store's own impressions.

mod common;

use aisle_core::{Impression, Item, ItemId, RawEvent, ShownItem};
use aisle_policy::policy::ServingPolicy;
use common::{aisle, dir_arg, stderr, stdout};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

#[test]
fn evaluate_and_simulate_on_the_open_bandit_sample() {
    let Some(obd) = aisle_testkit::shared_dataset("open-bandit-sample") else {
        return;
    };
    let obd = obd.display().to_string();
    let out = aisle(&[
        "policy",
        "evaluate",
        "--obd",
        &obd,
        "--behavior",
        "random",
        "--target-log",
        "bts",
        "--bootstrap",
        "50",
        "--json",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let v: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("json");
    let names: Vec<&str> = v["estimates"]
        .as_array()
        .expect("estimates")
        .iter()
        .filter_map(|e| e["estimator"].as_str())
        .collect();
    assert_eq!(
        names,
        ["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"]
    );
    // The truth is bts's own click rate; the unbiased estimators' intervals must hold it.
    let truth = v["truth"].as_f64().expect("truth");
    assert!((truth - 0.0042).abs() < 1e-12);
    for e in v["estimates"].as_array().expect("estimates") {
        let (low, high) = (
            e["low"].as_f64().expect("low"),
            e["high"].as_f64().expect("high"),
        );
        assert!(
            low <= e["value"].as_f64().expect("value")
                && e["value"].as_f64().expect("value") <= high,
            "{e}"
        );
        if e["estimator"] == "ipw" || e["estimator"] == "snipw" {
            assert!(low < truth && truth < high, "{e}");
        }
    }
    assert!(
        v["diagnostics"]["effective_sample_size"]
            .as_f64()
            .expect("ess")
            > 100.0,
        "{v}"
    );
    // The simulator fitted on the uniform log predicts bts's click rate on `all`, and is
    // refused on `men`, where it misses by more than 1.96 standard errors.
    let ok = aisle(&[
        "policy",
        "simulate",
        "--obd",
        &obd,
        "--campaign",
        "all",
        "--fit",
        "random",
        "--check",
        "bts",
    ]);
    assert!(ok.status.success(), "{}{}", stdout(&ok), stderr(&ok));
    assert!(stdout(&ok).contains("calibrated"), "{}", stdout(&ok));
    let refused = aisle(&[
        "policy",
        "simulate",
        "--obd",
        &obd,
        "--campaign",
        "men",
        "--fit",
        "random",
        "--check",
        "bts",
    ]);
    assert!(!refused.status.success(), "{}", stdout(&refused));
    assert!(
        stderr(&refused).contains("refit it"),
        "{}",
        stderr(&refused)
    );
}

/// A store whose lists were drawn by epsilon-greedy (0.5) over four candidates, where
/// shoppers click the best-scored item far more than the others.
fn store_with_impressions(dir: &std::path::Path) {
    let store = aisle_store::open(&dir.display().to_string()).expect("open");
    let logged = ServingPolicy::EpsilonGreedy { epsilon: 0.5 };
    let scores = [4.0, 3.0, 2.0, 1.0];
    let mut rng = StdRng::seed_from_u64(42);
    let mut w = store.writer().expect("writer");
    for i in 0..4 {
        w.upsert_item(Item::new(format!("i{i}"))).expect("item");
    }
    let mut shown = Vec::new();
    for n in 0..3_000i64 {
        let user = format!("u{n}");
        let at = 1_700_000_000_000 + n * 1_000;
        w.add_event(&RawEvent::new(
            user.clone(),
            Some("i3".into()),
            "view",
            at - 500,
        ))
        .expect("add");
        let picks = logged.choose(&scores, 2, &mut rng);
        for p in &picks {
            let chance = if p.candidate == 0 { 0.5 } else { 0.05 };
            if rng.random::<f64>() < chance {
                w.add_event(&RawEvent::new(
                    user.clone(),
                    Some(format!("i{}", p.candidate)),
                    "click",
                    at + 100,
                ))
                .expect("add");
            }
        }
        shown.push((user, at, picks));
    }
    w.commit().expect("commit");
    let mut w = store.writer().expect("writer");
    for (n, (user, at, picks)) in shown.into_iter().enumerate() {
        let item = |i: usize| {
            store
                .item_id(&format!("i{i}"))
                .expect("lookup")
                .expect("item")
        };
        w.log_impression(&Impression {
            id: n as u64 + 1,
            at_ms: at,
            surface: "recommend".into(),
            policy: logged.name(),
            policy_version: 1,
            user: store.user_id(&user).expect("lookup"),
            session: None,
            candidates: (0..4).map(item).collect::<Vec<ItemId>>(),
            scores: scores.iter().map(|&s| s as f32).collect(),
            shown: picks
                .iter()
                .map(|p| ShownItem {
                    item: item(p.candidate),
                    propensity: p.propensity as f32,
                })
                .collect(),
        });
    }
    w.commit().expect("commit");
}

#[test]
fn the_gate_refuses_a_worse_policy_and_deploys_a_better_one() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path().join("shop");
    store_with_impressions(&dir);
    let d = dir_arg(&dir);
    // Uniform draws show the best item less often than the logged policy: refused.
    let worse = aisle(&[
        "policy",
        "deploy",
        "--data-dir",
        &d,
        "--candidate",
        "plackett-luce:1:1",
    ]);
    assert!(!worse.status.success(), "{}", stdout(&worse));
    assert!(
        stderr(&worse).contains("the gate refuses"),
        "{}",
        stderr(&worse)
    );
    assert!(
        !dir.join("policy.json").exists(),
        "a refused policy is not deployed"
    );
    // Less exploration shows the best item first more often: its lower bound clears today's value.
    let better = aisle(&[
        "policy",
        "deploy",
        "--data-dir",
        &d,
        "--candidate",
        "epsilon-greedy:0.1",
    ]);
    assert!(
        better.status.success(),
        "{}{}",
        stdout(&better),
        stderr(&better)
    );
    let deployed: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("policy.json")).expect("policy.json"),
    )
    .expect("json");
    assert_eq!(deployed["policy"], "epsilon-greedy:0.1");
    assert_eq!(deployed["version"], 2);
    assert_eq!(
        deployed["stage"], "canary",
        "a deployed policy is rolled out, not switched on for everyone"
    );
    let list = aisle(&["policy", "list", "--data-dir", &d, "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let v: serde_json::Value = serde_json::from_str(&stdout(&list)).expect("json");
    assert_eq!(v["deployed"]["version"], 2);
    assert_eq!(v["policies"][0]["lists"], 3_000);
    // Off-policy, the better candidate's estimate is above the logged value.
    let e = aisle(&[
        "policy",
        "evaluate",
        "--data-dir",
        &d,
        "--candidate",
        "epsilon-greedy:0.1",
        "--json",
    ]);
    let v: serde_json::Value = serde_json::from_str(&stdout(&e)).expect("json");
    assert!(
        v["estimates"][1]["value"].as_f64().expect("snips")
            > v["logged_value"].as_f64().expect("logged"),
        "{v}"
    );
}

/// A log written in the Open Bandit layout reads back as the same log: rounds, contexts,
/// item features (the export that `aisle policy` logs can be handed to obp with).
#[test]
fn an_open_bandit_log_written_out_reads_back_the_same() {
    let Some(obd) = aisle_testkit::shared_dataset("open-bandit-sample") else {
        return;
    };
    let log = aisle_policy::log::BanditLog::read_obd(&obd, "random", "men").expect("read");
    let dir = tempfile::tempdir().expect("tempdir");
    log.write_obd(dir.path(), "random", "men").expect("write");
    let back = aisle_policy::log::BanditLog::read_obd(dir.path(), "random", "men").expect("reread");
    assert_eq!(back.rounds.len(), log.rounds.len());
    assert!(back.rounds.len() > 1_000);
    for (a, b) in log.rounds.iter().zip(&back.rounds) {
        assert_eq!((a.action, a.position), (b.action, b.position));
        assert_eq!(a.reward, b.reward);
        assert_eq!(a.pscore, b.pscore, "propensities survive exactly");
    }
    assert_eq!(
        (back.n_actions, back.len_list),
        (log.n_actions, log.len_list)
    );
    assert_eq!(back.context, log.context);
    assert_eq!(back.action_context, log.action_context);
    assert_eq!(back.affinity, log.affinity);
    assert_eq!(back.timestamps, log.timestamps);
}
