//! Ingest through the engine: the live state follows what the store actually stored, and an
//! idempotency key makes a repeated request write nothing, also after a restart.

use std::sync::Arc;

use aisle_engine::{Engine, EngineConfig, ErrorKind, WriterThread};
use aisle_store::Store;

fn start(store: Arc<dyn Store>) -> (Arc<Engine>, WriterThread) {
    let config = EngineConfig {
        model: "pop".into(),
        ..EngineConfig::default()
    };
    Engine::start(config, store, None).expect("the engine starts")
}

fn sample() -> Arc<dyn Store> {
    Arc::new(
        aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
            .expect("the bundled sample imports"),
    )
}

/// A JSON body of `n` view events of `user`, from 2023.
fn views(user: &str, n: usize) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"user": "{user}", "kind": "view", "item": "196", "timestamp": {}, "session": "{user}-s"}}"#,
                1_700_000_000_000i64 + i as i64
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

fn events_of(store: &dyn aisle_store::ReadStore, user: &str) -> usize {
    let Some(id) = store.user_id(user).expect("lookup") else {
        return 0;
    };
    let mut n = 0;
    store
        .scan_events(&mut |e| n += usize::from(e.user == id))
        .expect("scan");
    n
}

#[test]
fn the_live_state_equals_the_store_after_retries_cancels_and_concurrent_identical_events() {
    let store = sample();
    let (engine, _writer) = start(store.clone());
    let wait = |body: &str| {
        engine
            .ingest(body.as_bytes(), false, None)
            .expect("queued")
            .wait()
    };

    // A retried request (the client timed out and sent it again, twice): stored once.
    let retried = views("retry-user", 3);
    for _ in 0..3 {
        assert_eq!(wait(&retried).expect("stored").accepted, 3);
    }
    // Requests whose caller went away before the answer: committed all the same.
    for i in 0..5 {
        let body = views(&format!("cancel-user-{i}"), 2);
        drop(engine.ingest(body.as_bytes(), false, None).expect("queued"));
    }
    // The same event from eight requests at once, so that several share a group commit.
    let same = views("concurrent-user", 1);
    std::thread::scope(|s| {
        for _ in 0..8 {
            s.spawn(|| wait(&same).expect("stored"));
        }
    });
    // Two identical events in one request are two occurrences (two purchases, two rows).
    let twice = r#"[{"user": "twice-user", "kind": "purchase", "item": "196", "timestamp": 1700000000000},
                    {"user": "twice-user", "kind": "purchase", "item": "196", "timestamp": 1700000000000}]"#;
    assert_eq!(wait(twice).expect("stored").accepted, 2);
    // The writer is first in, first out: once this is answered, everything above is in.
    wait(&views("last-user", 1)).expect("stored");

    let expected = [
        ("retry-user", 3),
        ("cancel-user-0", 2),
        ("cancel-user-4", 2),
        ("concurrent-user", 1),
        ("twice-user", 2),
    ];
    for (user, n) in expected {
        assert_eq!(events_of(store.as_ref(), user), n, "{user} in the store");
    }
    let (live, reloaded) = engine.live_and_stored_counts().expect("counts");
    assert_eq!(live.per_user.len(), reloaded.per_user.len());
    let differ: Vec<usize> = (0..live.per_user.len())
        .filter(|&u| live.per_user[u] != reloaded.per_user[u])
        .collect();
    assert!(
        differ.is_empty(),
        "users whose live events differ from the store's: {differ:?}"
    );
    assert_eq!(live.per_item, reloaded.per_item, "events per item");
    eprintln!(
        "live state = store: {} users, {} items compared",
        live.per_user.len(),
        live.per_item.len()
    );
}

#[test]
fn an_idempotency_key_replays_its_answer_and_survives_a_restart() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("shop").display().to_string();
    let body = views("idem-user", 3);
    let other = views("idem-user", 2);
    // A few purchases for the first generation to train on.
    seed(aisle_store::open(&path).expect("open").as_ref());
    let (engine, writer) = start(Arc::from(aisle_store::open(&path).expect("open")));
    let send = |body: &str| {
        engine
            .ingest(body.as_bytes(), false, Some("order-42"))
            .expect("queued")
            .wait()
    };
    assert_eq!(send(&body).expect("stored").accepted, 3);
    assert_eq!(send(&body).expect("replayed").accepted, 3);
    let refused = send(&other).expect_err("another body under the same key");
    assert_eq!(refused.kind, ErrorKind::KeyReused, "{refused}");
    assert_eq!(events_of(engine.store(), "idem-user"), 3);
    drop(engine);
    writer.join();

    // A restart: the key and its answer were committed with the events.
    let (engine, _writer) = start(Arc::from(aisle_store::open(&path).expect("reopen")));
    let again = engine
        .ingest(body.as_bytes(), false, Some("order-42"))
        .expect("queued")
        .wait()
        .expect("replayed after the restart");
    assert_eq!(again.accepted, 3);
    let refused = engine
        .ingest(other.as_bytes(), false, Some("order-42"))
        .expect("queued")
        .wait()
        .expect_err("still refused after the restart");
    assert_eq!(refused.kind, ErrorKind::KeyReused);
    assert_eq!(
        events_of(engine.store(), "idem-user"),
        3,
        "nothing written twice"
    );
    // A new key is a new request.
    engine
        .ingest(other.as_bytes(), false, Some("order-43"))
        .expect("queued")
        .wait()
        .expect("stored");
    assert_eq!(
        events_of(engine.store(), "idem-user"),
        3,
        "its events were already stored"
    );
}

/// Seeds an empty store with a few purchases so a generation can train.
fn seed(store: &dyn Store) {
    let mut writer = store.writer().expect("writer");
    for u in 0..20 {
        for i in 0..3 {
            let mut e = aisle_core::RawEvent::new(
                format!("seed-{u}"),
                Some(format!("{}", (u + i) % 7)),
                "purchase",
                1_690_000_000_000 + (u * 10 + i) as i64,
            );
            e.session = Some(format!("seed-{u}"));
            writer.add_event(&e).expect("add");
        }
    }
    let mut item = aisle_core::Item::new("196");
    item.title = "Soda".into();
    writer.upsert_item(item).expect("item");
    writer.commit().expect("commit");
}
