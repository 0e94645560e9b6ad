//! The server over HTTP on a real loopback port, on the bundled sample: real time, keys,
//! limits, clear errors, the OpenAPI document against the real routes, zero-downtime retrain.

mod common;

use std::time::Duration;

use common::{ADMIN, INGEST, READ, call, config, shared, start};
use serde_json::{Value, json};

/// Sends only the head of a request that announces a `length`-byte JSON body, and reads
/// the answer (a server that refuses the size answers without reading the body).
fn announce_body(base: &str, method: &str, path: &str, key: &str, length: usize) -> (u16, Value) {
    use std::io::{Read, Write};
    let address = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n["
    )
    .expect("write");
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = stream.read(&mut buf) {
        if n == 0 {
            break;
        }
        text.push_str(&String::from_utf8_lossy(&buf[..n]));
        if text.contains("\r\n\r\n") && text.trim_end().ends_with('}') {
            break;
        }
    }
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or_default();
    (
        status,
        serde_json::from_str(body).unwrap_or(Value::String(text.clone())),
    )
}

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("a list")
        .iter()
        .map(|i| i["id"].as_str().expect("id").to_string())
        .collect()
}

#[test]
fn an_ingested_event_changes_that_users_recommendations_at_once() {
    let s = shared();
    let url = format!("{}/v1/recommend?user=1&k=10", s.base);
    let (status, before) = call("GET", &url, Some(READ), None);
    assert_eq!(status, 200, "{before}");
    let before = ids(&before["items"]);
    assert_eq!(before.len(), 10);
    assert!(!before[0].is_empty());
    // User 1 puts five baby products in the cart (a department they never used).
    let (status, items) = call(
        "GET",
        &format!("{}/v1/search?q=baby%20wipes&limit=5", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 200, "{items}");
    let baby = ids(&items["hits"]);
    assert_eq!(baby.len(), 5);
    let events: Vec<Value> = baby
        .iter()
        .map(|i| json!({"user": "1", "kind": "add_to_cart", "item": i, "session": "s-live-1"}))
        .collect();
    let (status, answer) = call(
        "POST",
        &format!("{}/v1/events", s.base),
        Some(INGEST),
        Some(&serde_json::to_string(&events).expect("json")),
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["accepted"], 5);
    let (_, after) = call("GET", &url, Some(READ), None);
    let after_ids = ids(&after["items"]);
    assert_ne!(before, after_ids, "the new events must change the list");
    // The session's own recommendations come from its events.
    let (status, session) = call(
        "POST",
        &format!("{}/v1/recommend/session?k=5", s.base),
        Some(READ),
        Some(r#"{"session": "s-live-1"}"#),
    );
    assert_eq!(status, 200, "{session}");
    assert_eq!(session["items"].as_array().map(Vec::len), Some(5));
    // Its reasons are the session's own items.
    let reasons: Vec<String> = session["items"]
        .as_array()
        .expect("items")
        .iter()
        .flat_map(|i| i["because"].as_array().cloned().unwrap_or_default())
        .filter_map(|b| b["id"].as_str().map(str::to_string))
        .collect();
    assert!(
        !reasons.is_empty() && reasons.iter().all(|r| baby.contains(r)),
        "{session}"
    );
    // Cart complements explain themselves.
    let (status, cart) = call(
        "POST",
        &format!("{}/v1/recommend/cart?k=5", s.base),
        Some(READ),
        Some(&json!({"items": [baby[0]]}).to_string()),
    );
    assert_eq!(status, 200, "{cart}");
    // The serving policy explores (epsilon-greedy), so an explored slot may
    // sit anywhere in the list; every item the model chose says what it goes with.
    let chosen: Vec<&Value> = cart["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|i| i["explored"] == false)
        .collect();
    assert!(!chosen.is_empty(), "{cart}");
    assert!(
        chosen
            .iter()
            .all(|i| i["why"].as_str().is_some_and(|w| w.contains("goes with"))),
        "{cart}"
    );
}

#[test]
fn keys_roles_limits_and_clear_errors() {
    let s = shared();
    let events = format!("{}/v1/events", s.base);
    let one = r#"{"user": "sec-1", "kind": "view", "item": "196"}"#;
    let (status, body) = call("POST", &events, None, Some(one));
    assert_eq!(status, 401, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("API key"))
    );
    let (status, body) = call("POST", &events, Some(READ), Some(one));
    assert_eq!(status, 403, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("the read role"))
    );
    let (status, _) = call("POST", &events, Some("not-a-key-at-all"), Some(one));
    assert_eq!(status, 401);
    let (status, _) = call(
        "GET",
        &format!("{}/v1/recommend?user=1", s.base),
        None,
        None,
    );
    assert_eq!(status, 401, "reads need a key unless public_reads is set");
    let (status, _) = call(
        "PUT",
        &format!("{}/v1/items", s.base),
        Some(INGEST),
        Some("[]"),
    );
    assert_eq!(status, 403, "an ingest key cannot edit the catalogue");

    // Malformed and wrong-shaped bodies.
    let (status, body) = call("POST", &events, Some(INGEST), Some("{\"user\": "));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("not an event")),
        "{body}"
    );
    let (status, body) = call(
        "POST",
        &events,
        Some(INGEST),
        Some(
            r#"[{"user": "sec-1", "kind": "view", "item": "196"}, {"user": "sec-1", "kind": "teleport", "item": "196"}]"#,
        ),
    );
    assert_eq!(status, 400);
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("event 1") && message.contains("teleport"),
        "{message}"
    );
    let (status, body) = call(
        "POST",
        &events,
        Some(INGEST),
        Some(r#"{"user": "sec-1", "kind": "purchase"}"#),
    );
    assert_eq!(status, 400);
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("needs an item")),
        "{body}"
    );
    // Nothing of a rejected request was stored: sec-1 is still unknown.
    let (status, _) = call(
        "GET",
        &format!("{}/v1/recommend?user=sec-1", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 404);
    // Oversized bodies: the server answers 413 from the declared length, before reading.
    let (status, body) = announce_body(&s.base, "PUT", "/v1/items", ADMIN, 4 << 20);
    assert_eq!(status, 413, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("larger")),
        "{body}"
    );
    // Too many events in one request: the document's maxItems, so a 400 like any other
    // rule of the schema.
    let many = format!("[{}]", vec![one; 10_001].join(","));
    let (status, body) = call("POST", &events, Some(INGEST), Some(&many));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("at most 10000")),
        "{body}"
    );
    // Unknown routes and bad parameters are JSON errors too.
    let (status, body) = call("GET", &format!("{}/v1/nothing", s.base), Some(READ), None);
    assert_eq!(status, 404);
    assert!(body["error"]["message"].is_string());
    let (status, body) = call(
        "GET",
        &format!("{}/v1/recommend?user=1&k=abc", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(
        "GET",
        &format!("{}/v1/search?q=x&filter=price%3Ccheap", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 400, "{body}");
}

#[test]
fn rate_limits_answer_429() {
    let mut config = config();
    config.rate_limit_per_second = 2.0;
    let s = start(config, false);
    let statuses: Vec<u16> = (0..12)
        .map(|_| {
            call(
                "GET",
                &format!("{}/v1/trending?k=1", s.base),
                Some(READ),
                None,
            )
            .0
        })
        .collect();
    assert!(
        statuses.iter().filter(|&&c| c == 200).count() >= 4,
        "{statuses:?}"
    );
    assert!(statuses.contains(&429), "{statuses:?}");
}

#[test]
fn openapi_matches_the_routes_that_answer() {
    let s = shared();
    let (status, doc) = call("GET", &format!("{}/openapi.json", s.base), None, None);
    assert_eq!(status, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    let paths = doc["paths"].as_object().expect("paths");
    assert_eq!(
        paths
            .values()
            .map(|p| p.as_object().map_or(0, |m| m.len()))
            .sum::<usize>(),
        aisle_server::api::ROUTES.len()
    );
    for (path, methods) in paths {
        for method in methods.as_object().expect("methods").keys() {
            let method = method.to_uppercase();
            if method == "DELETE" {
                // Deleting what does not exist reaches the handler, which says so.
                let url = format!("{}{}", s.base, path.replace("{id}", "no-such-id"));
                let (code, answer) = call(&method, &url, Some(ADMIN), None);
                assert_eq!(code, 404, "{method} {path}: {answer}");
                assert!(
                    !answer.to_string().contains("no such route"),
                    "{method} {path}: {answer}"
                );
                continue;
            }
            if path.contains("retrain") {
                // Covered by the retrain test, which counts model versions.
                continue;
            }
            // Fill path parameters with a real item id.
            let url = format!("{}{}", s.base, path.replace("{id}", "196"));
            let body = if path.contains("cart") || path.contains("session") {
                Some(r#"{"items": ["196"]}"#)
            } else if path == "/v1/promo" {
                Some(r#"{"category": "yogurt"}"#)
            } else if path == "/v1/events" {
                Some(r#"{"user": "doc-1", "kind": "view", "item": "196"}"#)
            } else if path.ends_with("items") || path.ends_with("users") {
                Some("[]")
            } else {
                None
            };
            let (code, answer) = call(&method, &url, Some(ADMIN), body);
            assert!(
                code != 404 && code != 405 && code < 500,
                "{method} {path}: {code} {answer}"
            );
        }
    }
    // A route the document does not list does not exist.
    let (code, _) = call("GET", &format!("{}/v1/secret", s.base), Some(ADMIN), None);
    assert_eq!(code, 404);
}

#[test]
fn catalogue_edits_forgetting_and_a_retrain_without_a_failed_request() {
    let s = shared();
    let items = r#"[{"id": "new-1", "title": "Zorblax Sparkling Yuzu Drink", "category": "beverages > soft drinks", "price": 2.5}]"#;
    let (status, body) = call(
        "PUT",
        &format!("{}/v1/items", s.base),
        Some(ADMIN),
        Some(items),
    );
    assert_eq!(status, 200, "{body}");
    let (_, found) = call(
        "GET",
        &format!("{}/v1/search?q=zorblax", s.base),
        Some(READ),
        None,
    );
    assert_eq!(ids(&found["hits"]), vec!["new-1".to_string()], "{found}");
    let (status, _) = call(
        "DELETE",
        &format!("{}/v1/items/new-1", s.base),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    let (_, gone) = call(
        "GET",
        &format!("{}/v1/search?q=zorblax", s.base),
        Some(READ),
        None,
    );
    assert_eq!(gone["total"], 0, "{gone}");
    let (status, _) = call(
        "DELETE",
        &format!("{}/v1/items/new-1", s.base),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 404);

    // Forget a user: their events go, and they are unknown afterwards.
    let ev = r#"[{"user": "forget-me", "kind": "view", "item": "196"}, {"user": "forget-me", "kind": "purchase", "item": "196"}]"#;
    assert_eq!(
        call(
            "POST",
            &format!("{}/v1/events", s.base),
            Some(INGEST),
            Some(ev)
        )
        .0,
        200
    );
    let (_, ready) = call("GET", &format!("{}/ready", s.base), None, None);
    let before_forget = ready["model_version"].as_u64().expect("version");
    let (status, body) = call(
        "DELETE",
        &format!("{}/v1/users/forget-me", s.base),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["events_deleted"], 2);
    let (status, _) = call(
        "GET",
        &format!("{}/v1/recommend?user=forget-me", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 404);
    // The forget moves the version on twice: the recommender (session-kNN) forgets the user in
    // place at once, then a retrain in the background leaves them in no model.
    let deadline = std::time::Instant::now() + Duration::from_secs(240);
    loop {
        let (_, r) = call("GET", &format!("{}/ready", s.base), None, None);
        if r["model_version"].as_u64() >= Some(before_forget + 2) {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the forget's retrain never came"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // Retrain while requests keep coming: every one succeeds, and the version moves on.
    let (_, ready) = call("GET", &format!("{}/ready", s.base), None, None);
    let version = ready["model_version"].as_u64().expect("version");
    let base = s.base.clone();
    let load = std::thread::spawn(move || {
        let mut codes = Vec::new();
        // Generous: on a loaded 2-core CI machine the retrain shares the cores with the
        // other tests of this binary.
        let deadline = std::time::Instant::now() + Duration::from_secs(240);
        loop {
            codes.push(
                call(
                    "GET",
                    &format!("{base}/v1/recommend?user=2&k=5"),
                    Some(READ),
                    None,
                )
                .0,
            );
            let (_, r) = call("GET", &format!("{base}/ready"), None, None);
            if r["model_version"].as_u64() > Some(version) || std::time::Instant::now() > deadline {
                return (codes, r);
            }
        }
    });
    let (status, _) = call(
        "POST",
        &format!("{}/v1/admin/retrain", s.base),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 202);
    let (codes, ready) = load.join().expect("load thread");
    assert_eq!(
        ready["model_version"].as_u64(),
        Some(version + 1),
        "the retrain never moved the version on: {ready}"
    );
    assert!(codes.iter().all(|&c| c == 200), "{codes:?}");
    // The metrics show the requests and the new version (the gauge moves a moment after
    // the new generation serves, so it is read until it does, for at most 5 s).
    let mut text = String::new();
    for _ in 0..50 {
        let (_, metrics) = call("GET", &format!("{}/metrics", s.base), None, None);
        text = metrics.as_str().expect("text").to_string();
        if text.contains(&format!("aisle_model_version {}", version + 1)) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        text.contains("aisle_request_duration_seconds_bucket"),
        "{text}"
    );
    assert!(text.contains("route=\"/v1/recommend\""));
    assert!(
        text.contains(&format!("aisle_model_version {}", version + 1)),
        "{text}"
    );
}

#[test]
fn predictions_analytics_and_pages() {
    let s = shared();
    let (status, p) = call(
        "GET",
        &format!("{}/v1/predict/purchase?user=1&k=3", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 200, "{p}");
    assert_eq!(p["products"].as_array().map(Vec::len), Some(3));
    let (status, c) = call(
        "GET",
        &format!("{}/v1/predict/churn?user=1", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 200, "{c}");
    let alive = c["p_alive"].as_f64().expect("p_alive");
    assert!((0.0..=1.0).contains(&alive));
    let (status, promo) = call(
        "POST",
        &format!("{}/v1/promo?k=50&top=5", s.base),
        Some(READ),
        Some(r#"{"category": "yogurt"}"#),
    );
    assert_eq!(status, 200, "{promo}");
    assert_eq!(promo["targets"].as_array().map(Vec::len), Some(5));
    let (status, a) = call("GET", &format!("{}/v1/analytics", s.base), Some(READ), None);
    assert_eq!(status, 200);
    // The sample has carts and purchases; other tests of this shared server add views and
    // clicks and may retrain, so the funnel starts with views, clicks or carts, and always
    // has the carts.
    let kinds: Vec<&str> = a["analytics"]["funnel"]
        .as_array()
        .map(|steps| steps.iter().filter_map(|s| s["kind"].as_str()).collect())
        .unwrap_or_default();
    assert!(
        kinds.contains(&"add_to_cart") && ["view", "click", "add_to_cart"].contains(&kinds[0]),
        "{a}"
    );
    let (status, e) = call(
        "GET",
        &format!("{}/v1/explain?user=1&item=196", s.base),
        Some(READ),
        None,
    );
    assert_eq!(status, 200, "{e}");
    assert!(e["rank_for_user"].as_u64().is_some());
    // A read key's dashboard withholds the stream of individual events and the shoppers'
    // ids, and states how its analytics were protected.
    let (status, d) = call("GET", &format!("{}/v1/dashboard", s.base), Some(READ), None);
    assert_eq!(status, 200);
    assert_eq!(d["feed"].as_array().map(Vec::len), Some(0), "{}", d["feed"]);
    assert_eq!(d["sample_users"].as_array().map(Vec::len), Some(0));
    assert!(
        d["withheld"]
            .as_str()
            .is_some_and(|w| w.contains("admin keys only")),
        "{d}"
    );
    assert!(
        d["privacy"]["epsilon"].as_f64().is_some(),
        "{}",
        d["privacy"]
    );
    let (status, d) = call(
        "GET",
        &format!("{}/v1/dashboard", s.base),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 200);
    assert!(d["privacy"].is_null() && d["withheld"].is_null(), "{d}");
    // 49,688 in the sample, and another test may have added one.
    let items = d["counts"]["items"].as_u64().expect("items");
    assert!((49_688..=49_689).contains(&items), "{items}");
    assert_eq!(
        d["sample_users"].as_array().map(Vec::len),
        Some(8),
        "{}",
        d["sample_users"]
    );
    assert_eq!(d["sample_users"][0], "1");
    for page in ["/", "/shop"] {
        let (status, html) = call("GET", &format!("{}{page}", s.base), None, None);
        assert_eq!(status, 200);
        assert!(html.as_str().is_some_and(|h| h.contains("<script>")));
    }
}

/// Every list the server answers names its impression, its serving policy and version, and
/// gives each item a propensity above zero; an event may send the impression back.
#[test]
fn every_served_list_carries_its_impression_policy_and_propensities() {
    let s = shared();
    let get = |path: &str| {
        let (status, v) = call("GET", &format!("{}{path}", s.base), Some(READ), None);
        assert_eq!(status, 200, "{path}: {v}");
        v
    };
    let post = |path: &str, body: &str| {
        let (status, v) = call("POST", &format!("{}{path}", s.base), Some(READ), Some(body));
        assert_eq!(status, 200, "{path}: {v}");
        v
    };
    let lists = [
        (get("/v1/recommend?user=1&k=10"), "items"),
        (
            post("/v1/recommend/session?k=5", r#"{"items": ["196"]}"#),
            "items",
        ),
        (
            post("/v1/recommend/cart?k=5", r#"{"items": ["196"]}"#),
            "items",
        ),
        (get("/v1/recommend/cross-category?user=1&k=5"), "items"),
        (get("/v1/trending?k=5"), "items"),
        (get("/v1/items/196?k=5"), "similar"),
        (get("/v1/search?q=organic%20milk&limit=5"), "hits"),
    ];
    let mut seen = std::collections::HashSet::new();
    for (answer, field) in &lists {
        let served = &answer["served"];
        let id = served["impression"].as_str().unwrap_or_default();
        assert!(
            id.len() == 16 && id.bytes().all(|b| b.is_ascii_hexdigit()),
            "{answer}"
        );
        assert!(
            seen.insert(id.to_string()),
            "impression ids are unique: {id}"
        );
        assert!(
            served["policy"].as_str().is_some_and(|p| !p.is_empty()),
            "{answer}"
        );
        assert!(
            served["policy_version"].as_u64().is_some_and(|v| v >= 1),
            "{answer}"
        );
        let items = answer[*field].as_array().expect("a list");
        assert!(!items.is_empty(), "{answer}");
        for item in items {
            let p = item["propensity"].as_f64().expect("a propensity");
            assert!(p > 0.0 && p <= 1.0, "{item}");
        }
    }
    let status = get("/v1/policy");
    assert!(
        status["impressions_served"]
            .as_u64()
            .is_some_and(|n| n >= 7),
        "{status}"
    );
    // A click that names the list it came from is accepted; a malformed id is a 400.
    let first = &lists[0].0;
    let click = json!({"user": "1", "kind": "click", "item": first["items"][0]["id"],
                       "impression": first["served"]["impression"]});
    let (status, answer) = call(
        "POST",
        &format!("{}/v1/events", s.base),
        Some(INGEST),
        Some(&click.to_string()),
    );
    assert_eq!(status, 200, "{answer}");
    let bad =
        json!({"user": "1", "kind": "click", "item": "196", "impression": "not-an-impression"});
    let (status, answer) = call(
        "POST",
        &format!("{}/v1/events", s.base),
        Some(INGEST),
        Some(&bad.to_string()),
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("impression")),
        "{answer}"
    );
    // Those lists judge a candidate policy: admin only, IPS and SNIPS with intervals, a gate.
    let evaluate = format!(
        "{}/v1/policy/evaluate?policy=epsilon-greedy&epsilon=0.2&bootstrap=50",
        s.base
    );
    let (status, answer) = call("GET", &evaluate, Some(READ), None);
    assert_eq!(status, 403, "a read key may not scan the store: {answer}");
    let (status, answer) = call("GET", &evaluate, Some(ADMIN), None);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["lists"].as_u64().is_some_and(|n| n >= 6), "{answer}");
    let estimates = answer["estimates"].as_array().expect("estimates");
    assert_eq!(estimates.len(), 2, "{answer}");
    for e in estimates {
        let (low, value, high) = (
            e["low"].as_f64().expect("low"),
            e["value"].as_f64().expect("value"),
            e["high"].as_f64().expect("high"),
        );
        assert!(low <= value && value <= high, "{e}");
    }
    assert!(answer["gate"].as_str().is_some_and(|g| !g.is_empty()));
    // The dashboard's policy panel shows the latest evaluation.
    let status = get("/v1/policy");
    assert_eq!(
        status["last_evaluation"]["candidate"], answer["candidate"],
        "{status}"
    );
    let (status, answer) = call(
        "GET",
        &format!(
            "{}/v1/policy/evaluate?policy=epsilon-greedy&epsilon=1.5",
            s.base
        ),
        Some(ADMIN),
        None,
    );
    assert_eq!(status, 400, "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("epsilon")),
        "{answer}"
    );
}

/// `Aisle-Token` on a read: a malformed one is a 400 naming the header; a well-formed one on
/// a single server (whose own writes are always applied) answers at once and fresh.
#[test]
fn a_read_with_a_bad_token_is_refused_and_a_good_one_answers_fresh() {
    let s = shared();
    let read = |token: &str| {
        common::agent()
            .get(format!("{}/v1/trending?k=1", s.base))
            .header("Authorization", format!("Bearer {READ}"))
            .header("Aisle-Token", token)
            .call()
            .expect("answer")
    };
    let mut bad = read("not-a-token");
    assert_eq!(bad.status(), 400);
    let body = bad.body_mut().read_to_string().expect("body");
    assert!(body.contains("Aisle-Token"), "{body}");
    let good = read("another-replica:12");
    assert_eq!(good.status(), 200);
    assert!(good.headers().get("aisle-stale").is_none());
}
