//! Against the real NATS server (scripts/services.sh starts it): a published event comes back
//! with its key, origin and sequence; a republished key is dropped by the server; a follower
//! that starts after a sequence sees only what came later.

use std::sync::mpsc;
use std::time::Duration;

use aisle_core::{Event, EventKind, EventPayload, ItemId, UserId};
use aisle_stream::{EventStream, Message, Notice};

fn url() -> String {
    std::env::var("AISLE_TEST_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn fresh() -> EventStream {
    let name = format!(
        "AISLE_TEST_{}_{}",
        std::process::id(),
        rand::random::<u32>()
    );
    EventStream::connect(&url(), &name).unwrap_or_else(|e| {
        panic!("NATS with JetStream is needed for this test ({e}): run scripts/services.sh, or set AISLE_TEST_NATS")
    })
}

fn event(user: u32, ts: i64) -> Event {
    Event {
        user: UserId(user),
        item: Some(ItemId(7)),
        kind: EventKind::Purchase,
        timestamp_ms: ts,
        session: None,
        payload: EventPayload {
            price: Some(2.5),
            ..EventPayload::default()
        },
    }
}

#[test]
fn events_come_back_once_in_order_with_their_keys() {
    let stream = fresh();
    assert_eq!(stream.last_seq().expect("seq"), 0);
    let batch = vec![(11u128 << 64 | 1, event(1, 100)), (22, event(2, 200))];
    stream
        .publish("replica-a", &batch, Some(1))
        .expect("publish");
    // A republish of the same keys (the outbox after a crash) is dropped by the server.
    stream
        .publish("replica-a", &batch, None)
        .expect("republish");
    stream
        .publish("replica-b", &[(33, event(3, 300))], None)
        .expect("publish");
    assert_eq!(stream.last_seq().expect("seq"), 3);
    let (tx, rx) = mpsc::channel();
    let _following = stream
        .follow(1, move |e| tx.send(e.expect("decodes")).expect("send"))
        .expect("follow");
    let got: Vec<_> = (0..2)
        .map(|_| rx.recv_timeout(Duration::from_secs(10)).expect("delivered"))
        .collect();
    assert_eq!(
        got.iter()
            .map(|s| (s.seq, s.origin.as_str(), s.key))
            .collect::<Vec<_>>(),
        vec![(2, "replica-a", 22), (3, "replica-b", 33)]
    );
    assert_eq!(got[1].message, Message::Event(event(3, 300)));
    assert_eq!(
        (got[0].commit, got[1].commit),
        (Some(1), None),
        "a commit's number rides on its last message"
    );
    assert!(
        rx.recv_timeout(Duration::from_millis(300)).is_err(),
        "nothing else"
    );
    // Notices are never deduplicated away: two of the same kind are two messages.
    for _ in 0..2 {
        stream
            .publish_notice("replica-a", &Notice::Items(vec![4, 5]))
            .expect("notice");
    }
    for seq in [4, 5] {
        let n = rx.recv_timeout(Duration::from_secs(10)).expect("notice");
        assert_eq!((n.seq, n.key), (seq, 0));
        assert_eq!(n.message, Message::Notice(Notice::Items(vec![4, 5])));
    }
    stream.delete().expect("delete the test's stream");
}
