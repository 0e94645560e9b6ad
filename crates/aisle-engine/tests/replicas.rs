//! Replicas over one PostgreSQL database and one NATS JetStream stream (the real services:
//! scripts/services.sh starts them): what one replica stores, every other replica's live
//! state holds, once; a replica started later catches up from the database and the stream;
//! a redelivered event is applied once; and events a crashed replica committed but never
//! published reach the others through the outbox.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisle_engine::replication::Replication;
use aisle_engine::{Engine, EngineConfig, WriterThread};
use aisle_store::testing::FreshDatabase;
use aisle_store::{PgStore, ReadStore, Store};
use aisle_stream::EventStream;

fn nats() -> String {
    std::env::var("AISLE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn stream(name: &str) -> Arc<EventStream> {
    Arc::new(EventStream::connect(&nats(), name).unwrap_or_else(|e| {
        panic!(
            "NATS with JetStream is needed ({e}): run scripts/services.sh, or set AISLE_TEST_NATS"
        )
    }))
}

fn replica(db: &FreshDatabase, stream_name: &str, name: &str) -> (Arc<Engine>, WriterThread) {
    let store: Arc<dyn Store> = Arc::new(PgStore::open(db.url()).expect("open the database"));
    let config = EngineConfig {
        model: "pop".into(),
        replication: Some(Replication {
            stream: stream(stream_name),
            replica: name.into(),
        }),
        ..EngineConfig::default()
    };
    Engine::start(config, store, None).expect("the replica starts")
}

fn views(user: &str, n: usize, from: i64) -> String {
    let events: Vec<String> = (0..n)
        .map(|i| {
            format!(
                r#"{{"user": "{user}", "kind": "view", "item": "{}", "timestamp": {}}}"#,
                196 + i,
                from + i as i64
            )
        })
        .collect();
    format!("[{}]", events.join(","))
}

fn ingest(engine: &Engine, body: &str) {
    engine
        .ingest(body.as_bytes(), false, None)
        .expect("queued")
        .wait()
        .expect("stored");
}

/// Waits until the replica's live state holds exactly what the database holds.
fn converges(engine: &Engine, name: &str) -> Duration {
    let started = Instant::now();
    loop {
        let (live, stored) = engine.live_and_stored_counts().expect("counts");
        if live == stored {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "replica {name} did not converge to the database: live {:?} vs stored {:?}",
            live.per_user.iter().sum::<usize>(),
            stored.per_user.iter().sum::<usize>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn replicas_converge_on_what_any_of_them_stored() {
    let db = FreshDatabase::new();
    let name = format!("AISLE_TEST_REPLICAS_{}", rand::random::<u32>());
    {
        // The bundled sample, imported once into the shared database.
        let store = PgStore::open(db.url()).expect("open");
        aisle_import::import(
            &store,
            &aisle_import::Source::Adapter(aisle_import::Adapter::Instacart),
            &[aisle_testkit::bundled_sample()],
            &aisle_import::ImportOptions::default(),
        )
        .expect("import");
    }
    let (a, _wa) = replica(&db, &name, "a");
    let (b, _wb) = replica(&db, &name, "b");
    let t = 1_700_000_000_000;
    ingest(&a, &views("new-on-a", 3, t));
    ingest(&a, &views("1", 2, t + 10));
    ingest(&b, &views("new-on-b", 4, t + 20));
    converges(&a, "a");
    let lag = converges(&b, "b");
    eprintln!("b converged {lag:?} after the last write");
    let replicated = |e: &Engine| e.counters().events_replicated.get();
    assert_eq!(replicated(&a), 4, "a heard of b's 4 events, and only those");
    assert_eq!(replicated(&b), 5, "b heard of a's 5 events, and only those");

    // Read your writes on another replica: a write's token is applied on b exactly when
    // b's live state holds the write. Without waiting, some reads right after the write
    // would be stale.
    let (mut lags, mut stale_without_token) = (Vec::new(), 0);
    for i in 0..40 {
        let user = format!("ryw-{i}");
        let token = a
            .ingest(views(&user, 1, t + 100 + i).as_bytes(), false, None)
            .expect("queued")
            .wait()
            .expect("stored")
            .token
            .expect("a replica's answer carries a token");
        stale_without_token += usize::from(b.live_events_of(&user) == 0);
        let started = Instant::now();
        while !b.token_applied(&token).expect("a good token") {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "b never applied {token}"
            );
            std::thread::sleep(Duration::from_millis(1));
        }
        lags.push(started.elapsed().as_secs_f64() * 1e3);
        assert_eq!(
            b.live_events_of(&user),
            1,
            "the token is applied, so the write must be visible"
        );
        assert!(
            a.token_applied(&token).expect("own token"),
            "a has its own writes"
        );
    }
    lags.sort_by(f64::total_cmp);
    eprintln!(
        "read-your-writes on b: {stale_without_token} of 40 reads right after the write would have been stale; wait for the token p50 {:.1} ms, max {:.1} ms",
        lags[20], lags[39]
    );
    assert!(
        b.token_applied("no colon here").is_err(),
        "a bad token is refused"
    );
    assert_eq!(replicated(&b), 45);

    // The same idempotency key sent to two replicas: one row, the same answer.
    let body = views("keyed", 1, t + 25);
    let answers: Vec<usize> = [&a, &b]
        .iter()
        .map(|e| {
            e.ingest(body.as_bytes(), false, Some("key-sent-to-two-replicas"))
                .expect("queued")
                .wait()
                .expect("stored")
                .accepted
        })
        .collect();
    assert_eq!(answers, vec![1, 1]);
    let store = PgStore::open(db.url()).expect("open");
    let keyed = store.user_id("keyed").expect("lookup").expect("stored");
    let mut rows = 0;
    store
        .scan_events(&mut |e| rows += usize::from(e.user == keyed))
        .expect("scan");
    assert_eq!(rows, 1, "one row for the key, whichever replica got it");
    let other_body = views("keyed", 2, t + 26);
    let reused = b.ingest(
        other_body.as_bytes(),
        false,
        Some("key-sent-to-two-replicas"),
    );
    assert!(
        reused.is_err() || reused.expect("queued").wait().is_err(),
        "another body under a key a different replica stored is refused"
    );

    // A replica started now loads the database and follows the stream from its end.
    ingest(&b, &views("late", 2, t + 30));
    let (c, _wc) = replica(&db, &name, "c");
    ingest(&a, &views("after-c", 1, t + 40));
    for (e, n) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        converges(e, n);
    }
    assert_eq!(replicated(&c), 1, "c loaded the rest from the database");

    // A message delivered again under another id (a republish outside the stream's
    // deduplication window) is applied once.
    let again = stream(&name);
    let stored = PgStore::open(db.url()).expect("open");
    let mut one = Vec::new();
    stored
        .scan_events(&mut |e| {
            if e.timestamp_ms == t + 40 {
                one.push((7u128, e));
            }
        })
        .expect("scan");
    assert_eq!(one.len(), 1);
    again.publish("someone", &one, None).expect("publish");
    std::thread::sleep(Duration::from_millis(500));
    for (e, n) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        converges(e, n);
    }
    assert_eq!(
        replicated(&c),
        1,
        "the redelivered event was not applied again"
    );

    // A replica that crashed after its commit and before publishing: its events wait in
    // the outbox, and the next sweep of a live replica delivers them to all.
    assert!(stored.enable_outbox());
    let mut w = stored.writer().expect("writer");
    w.add_event(&aisle_core::RawEvent::new(
        "crashed",
        Some("196".into()),
        "purchase",
        t + 50,
    ))
    .expect("add");
    w.commit().expect("commit");
    assert_eq!(stored.unpublished(10).expect("outbox").len(), 1);
    let started = Instant::now();
    for (e, n) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        converges(e, n);
    }
    eprintln!(
        "the outbox's event reached every replica in {:?}",
        started.elapsed()
    );
    assert!(stored.unpublished(10).expect("outbox").is_empty());

    // A user forgotten on one replica is gone from every replica's live state.
    a.forget_user("new-on-b")
        .expect("queued")
        .wait()
        .expect("forgotten");
    let started = Instant::now();
    for (e, n) in [(&a, "a"), (&b, "b"), (&c, "c")] {
        converges(e, n);
    }
    eprintln!(
        "the forget reached every replica in {:?}",
        started.elapsed()
    );
    again.delete().expect("delete the test's stream");
}
