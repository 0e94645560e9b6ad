//! `aisle serve` as a process: killed with SIGKILL while events pour in, every event it
//! acknowledged is in the store exactly once afterwards.

use std::io::Write as _;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY: &str = "ingest-key-123";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("address")
        .port()
}

fn start_server(data: &str, port: u16) -> Child {
    Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(["serve", "--data-dir", data, "--no-encoder", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("AISLE_API_KEYS", format!("{KEY}:ingest"))
        .env("AISLE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aisle serve")
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into()
}

fn wait_healthy(port: u16) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while Instant::now() < deadline {
        if agent()
            .get(&format!("http://127.0.0.1:{port}/health"))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("aisle serve did not become healthy on port {port}");
}

/// Imports a small shop into `tmp/shop`: 40 users with two orders each.
fn small_shop(tmp: &std::path::Path) -> String {
    let data_arg = tmp.join("shop").display().to_string();
    let csv = tmp.join("events.csv");
    let mut file = std::fs::File::create(&csv).expect("csv");
    writeln!(file, "user,item,kind,timestamp,session").expect("write");
    for u in 0..40 {
        for order in 0..2 {
            for i in 0..3 {
                writeln!(
                    file,
                    "u{u},i{},purchase,{},o{u}-{order}",
                    (u + i + order) % 17,
                    1_700_000_000 + u * 1000 + order * 86_400 * 7
                )
                .expect("write");
            }
        }
    }
    drop(file);
    let out = Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(["import", "--data-dir", &data_arg, "--format", "csv"])
        .arg(&csv)
        .output()
        .expect("import");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    data_arg
}

/// Posts `body` to /v1/events with an idempotency key: (status, answer).
fn post_events(port: u16, key: &str, body: &str) -> (u16, String) {
    let mut response = agent()
        .post(&format!("http://127.0.0.1:{port}/v1/events"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .header("Idempotency-Key", key)
        .content_type("application/json")
        .send(body)
        .expect("request");
    let status = response.status().as_u16();
    (
        status,
        response.body_mut().read_to_string().unwrap_or_default(),
    )
}

#[test]
fn an_idempotent_request_repeated_after_a_sigkill_writes_nothing() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_arg = small_shop(tmp.path());
    let body = r#"[{"user": "idem", "kind": "view", "item": "i1", "timestamp": 1700000000000},
                   {"user": "idem", "kind": "view", "item": "i2", "timestamp": 1700000000001},
                   {"user": "idem", "kind": "purchase", "item": "i2", "timestamp": 1700000000002}]"#;
    let port = free_port();
    let mut server = start_server(&data_arg, port);
    wait_healthy(port);
    let (status, first) = post_events(port, "checkout-7", body);
    assert_eq!(status, 200, "{first}");
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");

    let port = free_port();
    let mut again = start_server(&data_arg, port);
    wait_healthy(port);
    let (status, replayed) = post_events(port, "checkout-7", body);
    assert_eq!(status, 200, "{replayed}");
    assert_eq!(replayed, first, "the same answer after the restart");
    let other = body.replace("purchase", "click");
    let (status, refused) = post_events(port, "checkout-7", &other);
    assert_eq!(status, 422, "{refused}");
    again.kill().expect("stop");
    let _ = again.wait();

    let store = aisle_store::open(&data_arg).expect("reopen");
    let user = store
        .user_id("idem")
        .expect("lookup")
        .expect("the user exists");
    let mut n = 0;
    store
        .scan_events(&mut |e| n += usize::from(e.user == user))
        .expect("scan");
    assert_eq!(n, 3, "the request's three events, once");
    eprintln!("after a SIGKILL: the retry got {replayed}, another body got 422, 3 events stored");
}

#[test]
fn events_acknowledged_before_a_sigkill_survive_exactly_once() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_arg = small_shop(tmp.path());
    let port = free_port();
    let mut server = start_server(&data_arg, port);
    wait_healthy(port);

    let acknowledged = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..4)
        .map(|t| {
            let acknowledged = acknowledged.clone();
            let stop = stop.clone();
            std::thread::spawn(move || {
                let agent = agent();
                let url = format!("http://127.0.0.1:{port}/v1/events");
                for n in 0..100_000 {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    // Five events per request, each from a user of its own.
                    let users: Vec<String> = (0..5).map(|k| format!("crash-{t}-{n}-{k}")).collect();
                    let body: Vec<serde_json::Value> = users
                        .iter()
                        .map(|u| serde_json::json!({"user": u, "kind": "view", "item": "i1", "timestamp": 1_700_000_000_000i64}))
                        .collect();
                    let answer = agent
                        .post(&url)
                        .header("Authorization", &format!("Bearer {KEY}"))
                        .header("Content-Type", "application/json")
                        .send(&serde_json::to_string(&body).expect("json"));
                    match answer {
                        Ok(r) if r.status().is_success() => {
                            acknowledged.lock().expect("lock").extend(users);
                        }
                        _ => return,
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(1500));
    server.kill().expect("SIGKILL");
    server.wait().expect("reap");
    stop.store(true, Ordering::SeqCst);
    for w in workers {
        w.join().expect("worker");
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(
        acknowledged.len() >= 50,
        "only {} events were acknowledged before the kill",
        acknowledged.len()
    );

    // Reopen the store as a restarted server would.
    let store = aisle_store::open(&data_arg).expect("reopen after the crash");
    let mut per_user: std::collections::HashMap<u32, usize> = Default::default();
    store
        .scan_events(&mut |e| *per_user.entry(e.user.0).or_default() += 1)
        .expect("scan");
    for user in &acknowledged {
        let id = store
            .user_id(user)
            .expect("lookup")
            .unwrap_or_else(|| panic!("acknowledged event of {user} is missing after the crash"));
        assert_eq!(per_user.get(&id.0), Some(&1), "{user}: not exactly once");
    }
    drop(store);
    // And the server starts again on the same directory.
    let port = free_port();
    let mut again = start_server(&data_arg, port);
    wait_healthy(port);
    again.kill().expect("stop");
    let _ = again.wait();
    eprintln!(
        "{} acknowledged events all present once",
        acknowledged.len()
    );
}

/// `aisle serve` rolls out the candidate that `policy.json` names, and when the canary does
/// worse online it rolls back and writes the verdict into the file, so the next start serves
/// the previous policy. The quality judgement itself is tested in the engine on real
/// shoppers (`crates/aisle-engine/tests/canary.rs`); here the simulated shopper clicks the
/// first item of a similar-items list only when it is the ranking's own choice, which the
/// planted candidate (uniform over the candidates) rarely shows first.
#[test]
fn a_worse_canary_is_rolled_back_and_policy_json_records_it() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let data_arg = small_shop(tmp.path());
    let file = std::path::Path::new(&data_arg).join("policy.json");
    std::fs::write(
        &file,
        r#"{"policy": "epsilon-greedy:1", "version": 2, "gate": "planted for the test", "stage": "canary",
            "previous": {"policy": "deterministic", "version": 1}}"#,
    )
    .expect("policy.json");
    let port = free_port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_aisle"))
        .args(["serve", "--data-dir", &data_arg, "--no-encoder", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .env("AISLE_API_KEYS", format!("{KEY}:ingest"))
        .env("AISLE_MODEL", "itemknn")
        .env("AISLE_CANARY_SHARE", "0.5")
        .env("AISLE_CANARY_MIN_LISTS", "30")
        .env("AISLE_CANARY_SHADOW_REQUESTS", "1")
        .env("AISLE_REWARD_WINDOW_SECONDS", "1")
        .env("AISLE_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start aisle serve");
    wait_healthy(port);
    let get = |path: &str| -> serde_json::Value {
        let mut r = agent()
            .get(&format!("http://127.0.0.1:{port}{path}"))
            .header("Authorization", &format!("Bearer {KEY}"))
            .call()
            .expect("request");
        assert_eq!(r.status(), 200, "{path}");
        serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json")
    };
    let mut served = std::collections::BTreeMap::<String, usize>::new();
    for n in 0..400 {
        let page = get(&format!("/v1/items/i{}?k=5", n % 17));
        let policy = page["served"]["policy"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        *served.entry(policy).or_default() += 1;
        let first = &page["similar"][0];
        if first["explored"] == false {
            let click = serde_json::json!({"user": format!("shopper-{n}"), "kind": "click",
                "item": first["id"], "impression": page["served"]["impression"]});
            let (status, answer) = post_events(port, &format!("click-{n}"), &click.to_string());
            assert_eq!(status, 200, "{answer}");
        }
        if n % 100 == 99 {
            // Let the reward windows close.
            std::thread::sleep(Duration::from_millis(1_100));
        }
        let record: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
        if record["stage"] == "rolled-back" {
            break;
        }
    }
    std::thread::sleep(Duration::from_millis(1_100));
    let status = get("/v1/policy");
    server.kill().expect("stop");
    server.wait().expect("reap");
    assert!(
        served.contains_key("epsilon-greedy(1)"),
        "the canary served lists: {served:?}"
    );
    assert_eq!(status["rollout"]["stage"], "rolled-back", "{status}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("json");
    assert_eq!(record["stage"], "rolled-back", "{record}");
    assert!(
        record["verdict"]
            .as_str()
            .is_some_and(|v| v.starts_with("rolled back: online reward")),
        "{record}"
    );
    // The next start serves the previous policy to everyone.
    let port = free_port();
    let mut again = start_server(&data_arg, port);
    wait_healthy(port);
    let mut r = agent()
        .get(&format!("http://127.0.0.1:{port}/v1/policy"))
        .header("Authorization", &format!("Bearer {KEY}"))
        .call()
        .expect("request");
    let after: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().expect("body")).expect("json");
    again.kill().expect("stop");
    again.wait().expect("reap");
    assert_eq!(after["policy"], "deterministic", "{after}");
    assert!(after["rollout"].is_null(), "{after}");
}
