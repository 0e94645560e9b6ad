//! Private analytics and the audit log over HTTP, on the bundled sample: a read key gets
//! noisy figures with their ε, a repeat is free, an exhausted budget is a clear 429, an
//! admin key gets exact figures, and every audited action is in the log once, in a chain
//! that `verify` checks.

mod common;

use std::time::{Duration, Instant};

use aisle_server::ServerConfig;
use common::{ADMIN, READ, call, config, start};
use serde_json::Value;

fn model_version(base: &str) -> u64 {
    let (_, ready) = call("GET", &format!("{base}/ready"), None, None);
    ready["model_version"].as_u64().expect("version")
}

/// Waits (at most two minutes) until the server serves a model version past `version`.
fn wait_for_version_past(base: &str, version: u64, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while model_version(base) <= version {
        assert!(Instant::now() < deadline, "{what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Forgets `user` through the API; its answer.
fn forget(base: &str, user: &str) -> Value {
    let (status, f) = call(
        "DELETE",
        &format!("{base}/v1/users/{user}"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{f}");
    f
}

fn retrain(base: &str) {
    let version = model_version(base);
    let (status, _) = call(
        "POST",
        &format!("{base}/v1/admin/retrain"),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 202);
    wait_for_version_past(base, version, "the retrain did not finish");
}

/// Where the server `s` keeps its audit log.
fn audit_path(s: &common::Server) -> std::path::PathBuf {
    s.app
        .engine
        .config()
        .data_dir
        .clone()
        .expect("a data directory")
        .join("audit.jsonl")
}

/// The audit log of the server `s` once it holds an `action` record (waiting at most two
/// minutes): its path, text and records.
fn audit_log_once(s: &common::Server, action: &str) -> (std::path::PathBuf, String, Vec<Value>) {
    let log = audit_path(s);
    let deadline = Instant::now() + Duration::from_secs(120);
    let needle = format!("\"{action}\"");
    while !fs_err::read_to_string(&log)
        .expect("audit log")
        .contains(&needle)
    {
        assert!(Instant::now() < deadline, "no {action} in the audit log");
        std::thread::sleep(Duration::from_millis(100));
    }
    let text = fs_err::read_to_string(&log).expect("audit log");
    let records = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("json"))
        .collect();
    (log, text, records)
}

fn funnel_counts(a: &Value) -> Vec<i64> {
    a["analytics"]["funnel"]
        .as_array()
        .expect("funnel")
        .iter()
        .map(|s| s["count"].as_i64().expect("count"))
        .collect()
}

#[test]
fn read_keys_get_private_analytics_within_a_budget_and_the_audit_log_records_it() {
    let s = start(
        ServerConfig {
            privacy_epsilon: 0.5,
            privacy_budget: 1.2,
            ..config()
        },
        false,
    );
    let url = format!("{}/v1/analytics", s.base);
    let (status, exact) = call("GET", &url, Some(ADMIN), None);
    assert_eq!(status, 200, "{exact}");
    assert!(
        exact["privacy"].is_null(),
        "an admin gets exact figures: {exact}"
    );
    let (status, first) = call("GET", &url, Some(READ), None);
    assert_eq!(status, 200, "{first}");
    let privacy = &first["privacy"];
    assert_eq!(privacy["epsilon"].as_f64(), Some(0.5), "{first}");
    assert_eq!(privacy["cached"].as_bool(), Some(false));
    assert_eq!(privacy["spent_epsilon"].as_f64(), Some(0.5));
    let parts = privacy["parts"].as_array().expect("parts");
    assert!(
        parts
            .iter()
            .all(|p| p["mechanism"] == "discrete_laplace" && p["scale"].as_f64() > Some(0.0))
    );
    // Noisy, but near the exact funnel at the stated scale (bounding three sessions a user
    // lowers the counts, so only an upper bound is tight).
    let funnel_scale = parts[0]["scale"].as_f64().expect("scale");
    for (noisy, truth) in funnel_counts(&first).into_iter().zip(funnel_counts(&exact)) {
        assert!(
            (noisy as f64) < truth as f64 + 15.0 * funnel_scale,
            "{noisy} against {truth}"
        );
    }
    // A repeat on the same generation is the same answer and costs nothing.
    let (_, again) = call("GET", &url, Some(READ), None);
    assert_eq!(again["privacy"]["cached"].as_bool(), Some(true));
    assert_eq!(again["analytics"], first["analytics"]);
    assert_eq!(again["privacy"]["spent_epsilon"].as_f64(), Some(0.5));
    // A new generation is a new release; the third does not fit in 1.2.
    retrain(&s.base);
    let (status, second) = call("GET", &url, Some(READ), None);
    assert_eq!(status, 200, "{second}");
    assert_eq!(second["privacy"]["spent_epsilon"].as_f64(), Some(1.0));
    retrain(&s.base);
    let (status, refused) = call("GET", &url, Some(READ), None);
    assert_eq!(status, 429, "{refused}");
    let message = refused["error"]["message"].as_str().expect("message");
    assert!(message.contains("privacy budget"), "{message}");
    // The admin still gets exact figures.
    let (status, _) = call("GET", &url, Some(ADMIN), None);
    assert_eq!(status, 200);
    // Forget a user: audited by fingerprint, not by id.
    forget(&s.base, "7");

    // The forget retrains in the background; the log records the generation without them.
    let (log, text, records) = audit_log_once(&s, "forget_applied");
    let dir = log.parent().expect("the data directory").to_path_buf();
    let verified = aisle_privacy::audit::verify(&log).expect("the audit log verifies");
    assert_eq!(verified.records as usize, records.len());
    let count = |action: &str| records.iter().filter(|r| r["action"] == action).count();
    assert_eq!(count("dp_release"), 2, "{text}");
    assert_eq!(count("forget"), 1, "{text}");
    assert_eq!(count("forget_applied"), 1, "{text}");
    let applied = records
        .iter()
        .find(|r| r["action"] == "forget_applied")
        .expect("applied");
    assert!(
        applied["detail"]["model_version_after"].as_u64()
            > applied["detail"]["model_version_before"].as_u64(),
        "{applied}"
    );
    // Before the retrain, the serving session-kNN (the server's default) forgot the user in
    // place, exactly.
    assert_eq!(count("forget_in_place"), 1, "{text}");
    let in_place = records
        .iter()
        .find(|r| r["action"] == "forget_in_place")
        .expect("in place");
    assert_eq!(in_place["detail"]["how"], "Exactly", "{in_place}");
    assert_eq!(in_place["detail"]["model"], "sknn", "{in_place}");
    let (then, now) = (
        in_place["detail"]["model_version_before"].as_u64(),
        in_place["detail"]["model_version_after"].as_u64(),
    );
    assert_eq!(now, then.map(|v| v + 1), "{in_place}");
    assert!(
        applied["detail"]["model_version_after"].as_u64() > now,
        "the retrain came before the in-place forget: {text}"
    );
    // Two retrains and one delete were the admin routes called.
    assert_eq!(count("admin_call"), 3, "{text}");
    assert!(
        !text.contains("\"7\""),
        "the forgotten user's id is in the audit log: {text}"
    );
    // The ledger holds the two releases.
    let ledger =
        aisle_privacy::ledger::read_entries(&dir.join("privacy/ledger.jsonl")).expect("ledger");
    assert_eq!(ledger.len(), 2);
    // A changed line is found.
    fs_err::write(&log, text.replacen("dp_release", "dp_relaese", 1)).expect("tamper");
    assert!(aisle_privacy::audit::verify(&log).is_err());
}

/// With a pseudonym secret, a shopper's id is used in requests but never stored: the store
/// and its file hold only the keyed pseudonym, and lookups and forgetting still work by id.
#[test]
fn pseudonymous_ids_are_stored_instead_of_the_shops_ids() {
    let s = start(
        ServerConfig {
            pseudonym_secret: Some("a secret of at least sixteen bytes".into()),
            ..config()
        },
        false,
    );
    let marker = "shopper-marker-7d1f";
    let body = format!(
        r#"[{{"user": "{marker}", "kind": "view", "item": "196"}}, {{"user": "{marker}", "kind": "add_to_cart", "item": "196"}}]"#
    );
    let (status, answer) = call(
        "POST",
        &format!("{}/v1/events", s.base),
        Some(common::INGEST),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, recs) = call(
        "GET",
        &format!("{}/v1/recommend?user={marker}&k=5", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 200, "the shopper is found by their own id: {recs}");
    let store = s.app.engine.store();
    assert_eq!(
        store.user_id(marker).expect("lookup"),
        None,
        "the raw id is stored"
    );
    let pseudonym = s.app.engine.stored_user_name(marker);
    assert!(pseudonym.starts_with("p_") && pseudonym != marker);
    assert!(store.user_id(&pseudonym).expect("lookup").is_some());
    let dir = s
        .app
        .engine
        .config()
        .data_dir
        .clone()
        .expect("a data directory");
    let mut raw = Vec::new();
    for entry in fs_err::read_dir(&dir).expect("data dir") {
        let path = entry.expect("entry").path();
        if path.is_file() {
            raw.extend(fs_err::read(&path).expect("read"));
        }
    }
    assert!(
        !raw.windows(marker.len()).any(|w| w == marker.as_bytes()),
        "the shopper's id is in the data directory's files"
    );
    let f = forget(&s.base, marker);
    assert_eq!(f["forgotten"], marker);
    assert_eq!(store.user_id(&pseudonym).expect("lookup"), None);
}

/// Retention deletes exactly the events older than the cut, from the store and the live
/// state, audits it and retrains.
#[test]
fn retention_deletes_the_events_older_than_the_cut_everywhere() {
    let s = start(config(), false);
    let engine = &s.app.engine;
    let mut times = Vec::new();
    engine
        .store()
        .scan_events(&mut |e| times.push(e.timestamp_ms))
        .expect("scan");
    times.sort_unstable();
    let median = times[times.len() / 2];
    let days = (engine.clock_ms() - median) as f64 / 86_400_000.0;
    let deleted = engine
        .apply_retention(days)
        .expect("queued")
        .wait()
        .expect("retention");
    let mut left = Vec::new();
    engine
        .store()
        .scan_events(&mut |e| left.push(e.timestamp_ms))
        .expect("scan");
    let cut = *left.iter().min().expect("events left");
    assert!(cut >= median - 1, "an event older than the cut survived");
    assert_eq!(deleted + left.len(), times.len());
    assert_eq!(
        deleted,
        times.iter().filter(|&&t| t < cut).count(),
        "retention deleted events after the cut"
    );
    assert!(deleted > 0);
    let (live, stored) = engine.live_and_stored_counts().expect("counts");
    assert_eq!(live, stored, "the live state still holds deleted events");
    let log = audit_path(&s);
    let text = fs_err::read_to_string(&log).expect("audit log");
    assert_eq!(text.matches("\"retention\"").count(), 1, "{text}");
}

/// A read key's dashboard lists the top searches by distinct searchers, with noise, and
/// never a query only one shopper searched; an admin key sees both, exactly.
#[test]
fn top_searches_for_read_keys_hide_a_query_of_one_shopper() {
    let s = start(
        ServerConfig {
            privacy_epsilon: 8.0,
            privacy_budget: 100.0,
            ..config()
        },
        false,
    );
    let mut events: Vec<serde_json::Value> = (0..60)
        .map(|u| serde_json::json!({"user": format!("searcher-{u}"), "kind": "search", "query": "Oat Milk"}))
        .collect();
    for _ in 0..30 {
        events.push(serde_json::json!({"user": "lonely-searcher", "kind": "search", "query": "my secret query"}));
    }
    let body = serde_json::Value::Array(events).to_string();
    let (status, answer) = call(
        "POST",
        &format!("{}/v1/events", s.base),
        Some(common::INGEST),
        Some(&body),
    );
    assert_eq!(status, 200, "{answer}");
    let (status, d) = call("GET", &format!("{}/v1/dashboard", s.base), Some(READ), None);
    assert_eq!(status, 200, "{d}");
    let top = d["search"]["top_queries"].as_array().expect("top queries");
    let queries: Vec<&str> = top.iter().filter_map(|q| q["query"].as_str()).collect();
    assert!(queries.contains(&"oat milk"), "{top:?}");
    assert!(
        !queries.contains(&"my secret query"),
        "a query of one shopper was shown: {top:?}"
    );
    let milk = top
        .iter()
        .find(|q| q["query"] == "oat milk")
        .expect("oat milk");
    let n = milk["searches"].as_u64().expect("searches");
    assert!((50..=70).contains(&n), "60 searchers counted as {n}");
    assert!(milk["zero_results"].is_null());
    // The same generation: the same answer, free.
    let (_, again) = call("GET", &format!("{}/v1/dashboard", s.base), Some(READ), None);
    assert_eq!(again["search"]["top_queries"], d["search"]["top_queries"]);
}

/// Search's re-ranking features hold no forgotten shopper: the item popularity it ranks by
/// is taken again from the log without them as soon as the models forget them in place.
#[test]
fn a_forgotten_shoppers_purchases_leave_the_search_ranking_features() {
    use aisle_features::EventLog;
    use aisle_search::popularity_features;
    let s = start(config(), true);
    let store = s.app.engine.store();
    let log = EventLog::load(store).expect("log");
    let before = s.app.engine.search_popularity().expect("search is set up");
    assert!(
        before == popularity_features(&log),
        "search does not rank by the log"
    );
    // The shopper with the most purchases: forgetting them must move the features.
    let mut bought = std::collections::HashMap::<u32, usize>::new();
    for e in log.events() {
        if e.kind == aisle_core::EventKind::Purchase {
            *bought.entry(e.user).or_default() += 1;
        }
    }
    let (&user, _) = bought
        .iter()
        .max_by_key(|(u, n)| (**n, **u))
        .expect("a buyer");
    let external = store
        .user(aisle_core::UserId(user))
        .expect("read")
        .expect("record")
        .external_id;
    let version = model_version(&s.base);
    forget(&s.base, &external);
    wait_for_version_past(&s.base, version, "the models did not forget");
    let after = s.app.engine.search_popularity().expect("search");
    let (all, recent) = popularity_features(&EventLog::load(store).expect("log"));
    let differ = |a: &[f32], b: &[f32]| {
        a.len().max(b.len()) - a.iter().zip(b).filter(|(x, y)| x == y).count()
    };
    assert_eq!(
        (differ(&after.0, &all), differ(&after.1, &recent)),
        (0, 0),
        "items whose popularity features still count the forgotten shopper (all time, recent)"
    );
    assert!(
        differ(&before.0, &all) > 0,
        "the check cannot see the shopper's purchases"
    );
}

/// A forget whose retrain fails is not reported as applied: the failure is audited, the
/// retrain is retried, and a deadline that passes meanwhile is audited once as overdue.
#[test]
fn a_forget_whose_retrain_fails_is_retried_and_audited_until_it_reaches_the_models() {
    let s = start(
        ServerConfig {
            // A deadline already past when the first retrain fails.
            forget_deadline_days: 1e-9,
            ..config()
        },
        false,
    );
    s.app.engine.inject_retrain_failure();
    forget(&s.base, "13");
    let (log, text, records) = audit_log_once(&s, "forget_applied");
    let find = |action: &str| -> Vec<&Value> {
        records.iter().filter(|r| r["action"] == action).collect()
    };
    let failed = find("forget_retrain_failed");
    assert_eq!(failed.len(), 1, "{text}");
    assert_eq!(failed[0]["detail"]["attempt"], 1, "{text}");
    assert_eq!(find("forget_overdue").len(), 1, "{text}");
    let applied = find("forget_applied");
    assert_eq!(applied.len(), 1, "{text}");
    assert_eq!(applied[0]["detail"]["attempts"], 2, "{text}");
    let order: Vec<&str> = records
        .iter()
        .filter_map(|r| r["action"].as_str())
        .filter(|a| a.starts_with("forget"))
        .collect();
    assert_eq!(
        order,
        [
            "forget",
            "forget_in_place",
            "forget_retrain_failed",
            "forget_overdue",
            "forget_applied"
        ],
        "{text}"
    );
    aisle_privacy::audit::verify(&log).expect("the audit log verifies");
}
