//! One suite, run against every store implementation.

use aisle_core::{EventKind, Impression, Item, RawEvent, ShownItem, User};
use aisle_store::testing::FreshDatabase;
use aisle_store::{MemStore, PgStore, ReadStore, RedbStore, Store};

fn view(user: &str, item: &str, ts: i64) -> RawEvent {
    RawEvent::new(user, Some(item.to_string()), "view", ts)
}

fn all_events(store: &dyn ReadStore) -> Vec<aisle_core::Event> {
    let mut out = Vec::new();
    store.scan_events(&mut |e| out.push(e)).expect("scan");
    out
}

fn events_come_back_in_time_order(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("alice", "apple", 3_000)).expect("add");
    w.add_event(&view("bob", "pear", 1_000)).expect("add");
    w.add_event(&view("alice", "pear", 2_000)).expect("add");
    let report = w.commit().expect("commit");
    assert_eq!(report.events_added, 3);
    assert_eq!(report.users_created, 2);
    assert_eq!(report.items_created, 2);
    let events = all_events(store);
    let times: Vec<i64> = events.iter().map(|e| e.timestamp_ms).collect();
    assert_eq!(times, vec![1_000, 2_000, 3_000]);
    let alice = store
        .user_id("alice")
        .expect("lookup")
        .expect("alice exists");
    assert_eq!(events[2].user, alice);
    assert_eq!(events[2].item, store.item_id("apple").expect("lookup"));
    let counts = store.counts().expect("counts");
    assert_eq!((counts.users, counts.items, counts.events), (2, 2, 3));
}

fn rewriting_an_event_does_not_duplicate_it(store: &dyn Store) {
    for _ in 0..2 {
        let mut w = store.writer().expect("writer");
        w.add_event(&view("carol", "fig", 10)).expect("add");
        w.commit().expect("commit");
    }
    let mut w = store.writer().expect("writer");
    w.add_event(&view("carol", "fig", 10)).expect("add");
    let report = w.commit().expect("commit");
    assert_eq!((report.events_added, report.events_duplicate), (0, 1));
    assert_eq!(store.counts().expect("counts").events, 1);
}

fn search_text_comes_back_and_a_resent_search_is_a_duplicate(store: &dyn Store) {
    let mut search = RawEvent::new("gil", None, "search", 5);
    search.payload.query = Some("green tea".into());
    search.payload.results = vec!["fig".into(), "date".into()];
    for _ in 0..2 {
        let mut w = store.writer().expect("writer");
        w.add_event(&search).expect("add");
        w.commit().expect("commit");
    }
    let events = all_events(store);
    assert_eq!(events.len(), 1, "the resent search was stored twice");
    assert_eq!(events[0].payload.query.as_deref(), Some("green tea"));
    assert_eq!(events[0].payload.results, ["fig", "date"]);
}

fn identical_rows_within_one_write_are_kept(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("dan", "fig", 10)).expect("add");
    w.add_event(&view("dan", "fig", 10)).expect("add");
    w.commit().expect("commit");
    assert_eq!(store.counts().expect("counts").events, 2);
    // Writing the same two rows again adds nothing.
    let mut w = store.writer().expect("writer");
    w.add_event(&view("dan", "fig", 10)).expect("add");
    w.add_event(&view("dan", "fig", 10)).expect("add");
    let report = w.commit().expect("commit");
    assert_eq!(report.events_duplicate, 2);
    assert_eq!(store.counts().expect("counts").events, 2);
}

fn identical_batches_in_one_write_are_one_batch_sent_twice(store: &dyn Store) {
    // Two requests that share a group commit: the second is a retry of the first.
    let mut w = store.writer().expect("writer");
    for _ in 0..2 {
        w.start_batch();
        w.add_event(&view("eve", "fig", 10)).expect("add");
        w.add_event(&view("eve", "fig", 10)).expect("add");
    }
    w.start_batch();
    w.add_event(&view("eve", "fig", 10)).expect("add");
    let report = w.commit().expect("commit");
    assert_eq!((report.events_added, report.events_duplicate), (2, 3));
    assert_eq!(store.counts().expect("counts").events, 2);
}

fn a_dropped_writer_leaves_nothing(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("erin", "kiwi", 5)).expect("add");
    w.upsert_item(Item::new("melon")).expect("item");
    drop(w);
    assert_eq!(store.counts().expect("counts").events, 0);
    assert_eq!(store.user_id("erin").expect("lookup"), None);
    assert_eq!(store.item_id("melon").expect("lookup"), None);
    // Ids handed out by the dropped writer are handed out again.
    let mut w = store.writer().expect("writer");
    let id = w.upsert_item(Item::new("lime")).expect("item");
    w.commit().expect("commit");
    assert_eq!(id.0, 0);
}

fn kinds_must_be_known(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    let err = w
        .add_event(&RawEvent::new("u", Some("i".into()), "wishlist", 1))
        .expect_err("unregistered custom kind");
    assert!(err.is_user_error());
    assert!(err.to_string().contains("wishlist"), "{err}");
    let kind = w.register_kind("wishlist").expect("register");
    assert_eq!(kind, EventKind::Custom(0));
    w.add_event(&RawEvent::new("u", Some("i".into()), "wishlist", 1))
        .expect("registered kind");
    w.commit().expect("commit");
    let events = all_events(store);
    assert_eq!(events[0].kind, EventKind::Custom(0));
    assert_eq!(store.kind_name(events[0].kind).expect("name"), "wishlist");
}

fn ids_with_a_nul_are_refused(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    let err = w
        .add_event(&view("\0forgotten\u{0}0", "a", 1))
        .expect_err("a NUL in a user id");
    assert!(err.to_string().contains("NUL"), "{err}");
    assert!(
        w.add_event(&view("amy", "a\0", 1)).is_err(),
        "a NUL in an item id"
    );
    assert!(w.register_kind("wish\0list").is_err(), "a NUL in a kind");
}

fn upserts_replace_records(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    let mut item = Item::new("sku-1");
    item.title = "Old".into();
    let id = w.upsert_item(item.clone()).expect("item");
    w.upsert_user(User::new("zoe")).expect("user");
    w.commit().expect("commit");
    let mut w = store.writer().expect("writer");
    item.title = "New".into();
    item.price = Some(2.5);
    assert_eq!(w.upsert_item(item).expect("item"), id);
    let report = w.commit().expect("commit");
    assert_eq!(report.records_updated, 1);
    let stored = store.item(id).expect("get").expect("present");
    assert_eq!((stored.title.as_str(), stored.price), ("New", Some(2.5)));
    assert_eq!(store.counts().expect("counts").items, 1);
}

fn forgetting_a_user_removes_them_and_their_events(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("amy", "a", 1)).expect("add");
    w.add_event(&view("ben", "a", 2)).expect("add");
    w.add_event(&view("amy", "b", 3)).expect("add");
    w.commit().expect("commit");
    let ben = store.user_id("ben").expect("lookup").expect("ben");
    let mut w = store.writer().expect("writer");
    assert!(w.forget_user("amy").expect("forget"));
    assert!(!w.forget_user("nobody").expect("forget"));
    let report = w.commit().expect("commit");
    assert_eq!((report.users_forgotten, report.events_deleted), (1, 2));
    assert_eq!(store.user_id("amy").expect("lookup"), None);
    let events = all_events(store);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].user, ben);
    // Ids stay dense and stable: the counts keep the forgotten slot, a new user gets a new id.
    assert_eq!(store.counts().expect("counts").users, 2);
    let mut w = store.writer().expect("writer");
    w.add_event(&view("amy", "a", 4)).expect("add");
    w.commit().expect("commit");
    assert_eq!(store.user_id("amy").expect("lookup").map(|u| u.0), Some(2));
}

/// Retention deletes exactly the events stamped before the cut (negative times included),
/// keeps every later one and every record, and counts what it deleted.
fn retention_deletes_exactly_the_events_before_the_cut(store: &dyn Store) {
    let times = [-5_000i64, -1, 0, 999, 1_000, 1_001, 50_000];
    let mut w = store.writer().expect("writer");
    for (k, &t) in times.iter().enumerate() {
        w.add_event(&view(&format!("u{k}"), "a", t)).expect("add");
        w.add_event(&view("keeper", &format!("i{k}"), t))
            .expect("add");
    }
    w.commit().expect("commit");
    let mut w = store.writer().expect("writer");
    w.delete_events_before(1_000);
    let report = w.commit().expect("commit");
    let expected_gone = 2 * times.iter().filter(|&&t| t < 1_000).count();
    assert_eq!(report.events_deleted, expected_gone);
    let left: Vec<i64> = all_events(store).iter().map(|e| e.timestamp_ms).collect();
    assert_eq!(left, vec![1_000, 1_000, 1_001, 1_001, 50_000, 50_000]);
    // Users and items stay: retention removes events, not records.
    assert!(store.user_id("u0").expect("lookup").is_some());
    assert_eq!(store.counts().expect("counts").events, 6);
}

fn deleting_an_item_keeps_its_events(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.upsert_item(Item::new("sku-1")).expect("item");
    w.upsert_item(Item::new("sku-2")).expect("item");
    w.add_event(&view("amy", "sku-1", 1)).expect("add");
    w.commit().expect("commit");
    let id = store.item_id("sku-1").expect("lookup").expect("id");
    let mut w = store.writer().expect("writer");
    assert!(w.delete_item("sku-1").expect("delete"));
    assert!(!w.delete_item("sku-9").expect("delete"));
    assert_eq!(w.commit().expect("commit").items_deleted, 1);
    assert_eq!(store.item(id).expect("get"), None);
    let mut left = Vec::new();
    store
        .scan_items(&mut |_, item| left.push(item.external_id))
        .expect("scan");
    assert_eq!(left, vec!["sku-2".to_string()]);
    assert_eq!(all_events(store).len(), 1, "its past events stay");
    // Upserting it again brings it back under the same id.
    let mut w = store.writer().expect("writer");
    assert_eq!(w.upsert_item(Item::new("sku-1")).expect("item"), id);
    w.commit().expect("commit");
    assert!(store.item(id).expect("get").is_some());
}

fn a_snapshot_sees_one_commit_and_nothing_later(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("amy", "a", 1)).expect("add");
    w.commit().expect("commit");
    let snapshot = store.snapshot().expect("snapshot");
    let mut w = store.writer().expect("writer");
    w.add_event(&view("ben", "b", 2)).expect("add");
    w.add_event(&view("amy", "c", 3)).expect("add");
    w.commit().expect("commit");
    let then = snapshot.counts().expect("counts");
    assert_eq!((then.users, then.items, then.events), (1, 1, 1));
    assert_eq!(snapshot.user_id("ben").expect("lookup"), None);
    assert_eq!(all_events(snapshot.as_ref()).len(), 1);
    let now = store.snapshot().expect("snapshot");
    let counts = now.counts().expect("counts");
    assert_eq!((counts.users, counts.items, counts.events), (2, 3, 3));
    assert!(now.user_id("ben").expect("lookup").is_some());
}

fn impressions_are_logged_with_their_events_and_forgotten_with_their_user(store: &dyn Store) {
    let mut w = store.writer().expect("writer");
    w.add_event(&view("amy", "a", 1)).expect("add");
    w.add_event(&view("ben", "b", 1)).expect("add");
    w.commit().expect("commit");
    let (amy, ben) = (
        store.user_id("amy").expect("lookup"),
        store.user_id("ben").expect("lookup"),
    );
    let a = store.item_id("a").expect("lookup").expect("a");
    let b = store.item_id("b").expect("lookup").expect("b");
    let shown = |id: u64, user| Impression {
        id,
        at_ms: 5,
        surface: "recommend".into(),
        policy: "epsilon-greedy".into(),
        policy_version: 1,
        user,
        session: None,
        candidates: vec![a, b],
        scores: vec![0.5, 0.25],
        shown: vec![
            ShownItem {
                item: b,
                propensity: 0.975,
            },
            ShownItem {
                item: a,
                propensity: 1.0,
            },
        ],
    };
    let mut w = store.writer().expect("writer");
    w.log_impression(&shown(7, amy));
    w.log_impression(&shown(9, ben));
    // A dropped writer logs nothing.
    drop(w);
    assert_eq!(store.impression(7).expect("get"), None);
    let mut w = store.writer().expect("writer");
    w.log_impression(&shown(7, amy));
    w.log_impression(&shown(9, ben));
    w.log_impression(&shown(11, amy));
    w.commit().expect("commit");
    assert_eq!(store.impression(7).expect("get"), Some(shown(7, amy)));
    let mut ids = Vec::new();
    store
        .scan_impressions(&mut |i| ids.push(i.id))
        .expect("scan");
    assert_eq!(ids, [7, 9, 11]);
    let mut w = store.writer().expect("writer");
    w.forget_user("amy").expect("forget");
    w.commit().expect("commit");
    let mut ids = Vec::new();
    store
        .scan_impressions(&mut |i| ids.push(i.id))
        .expect("scan");
    assert_eq!(ids, [9], "amy's impressions go with her");
    assert_eq!(store.impression(11).expect("get"), None);
}

/// A conformance case: takes a fresh, empty store.
type Case = fn(&dyn Store);

const SUITE: &[(&str, Case)] = &[
    ("time order", events_come_back_in_time_order),
    ("no duplicates", rewriting_an_event_does_not_duplicate_it),
    (
        "search text",
        search_text_comes_back_and_a_resent_search_is_a_duplicate,
    ),
    (
        "identical rows kept",
        identical_rows_within_one_write_are_kept,
    ),
    (
        "batches in one write",
        identical_batches_in_one_write_are_one_batch_sent_twice,
    ),
    ("dropped writer", a_dropped_writer_leaves_nothing),
    ("kinds", kinds_must_be_known),
    ("upserts", upserts_replace_records),
    ("NUL ids", ids_with_a_nul_are_refused),
    ("forget", forgetting_a_user_removes_them_and_their_events),
    (
        "retention",
        retention_deletes_exactly_the_events_before_the_cut,
    ),
    ("delete item", deleting_an_item_keeps_its_events),
    ("snapshot", a_snapshot_sees_one_commit_and_nothing_later),
    (
        "impressions",
        impressions_are_logged_with_their_events_and_forgotten_with_their_user,
    ),
];

#[test]
fn redb_forgotten_users_stay_forgotten_after_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RedbStore::open(dir.path()).expect("open");
        let mut w = store.writer().expect("writer");
        w.add_event(&view("amy", "a", 1)).expect("add");
        w.add_event(&view("ben", "a", 2)).expect("add");
        w.commit().expect("commit");
        let mut w = store.writer().expect("writer");
        w.forget_user("amy").expect("forget");
        w.commit().expect("commit");
    }
    let store = RedbStore::open(dir.path()).expect("reopen");
    assert_eq!(store.user_id("amy").expect("lookup"), None);
    assert_eq!(store.counts().expect("counts").users, 2);
    assert_eq!(all_events(&store).len(), 1);
    let mut w = store.writer().expect("writer");
    w.add_event(&view("cy", "a", 3)).expect("add");
    w.commit().expect("commit");
    assert_eq!(store.user_id("cy").expect("lookup").map(|u| u.0), Some(2));
}

#[test]
fn mem_store_conforms() {
    for (name, case) in SUITE {
        eprintln!("mem: {name}");
        case(&MemStore::new());
    }
}

#[test]
fn redb_store_conforms() {
    for (name, case) in SUITE {
        eprintln!("redb: {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        case(&RedbStore::open(dir.path()).expect("open"));
    }
}

#[test]
fn encrypted_redb_store_conforms() {
    for (name, case) in SUITE {
        eprintln!("encrypted redb: {name}");
        let dir = tempfile::tempdir().expect("tempdir");
        let master = Some(aisle_store::keys::MasterKey::Raw([0x2a; 32]));
        case(&RedbStore::open_keyed(dir.path(), master).expect("open"));
    }
}

#[test]
fn postgres_store_conforms() {
    for (name, case) in SUITE {
        eprintln!("postgres: {name}");
        let db = FreshDatabase::new();
        case(&PgStore::open(db.url()).expect("open"));
    }
}

#[test]
fn postgres_ids_kinds_and_forgets_survive_reopen() {
    let db = FreshDatabase::new();
    {
        let store = PgStore::open(db.url()).expect("open");
        let mut w = store.writer().expect("writer");
        w.register_kind("wishlist").expect("register");
        w.add_event(&view("amy", "a", 1)).expect("add");
        w.add_event(&view("ben", "b", 2)).expect("add");
        w.commit().expect("commit");
        let mut w = store.writer().expect("writer");
        w.forget_user("amy").expect("forget");
        w.commit().expect("commit");
    }
    let store = PgStore::open(db.url()).expect("reopen");
    assert_eq!(store.user_id("amy").expect("lookup"), None);
    assert_eq!(store.user_id("ben").expect("lookup").map(|u| u.0), Some(1));
    assert_eq!(
        store.custom_kinds().expect("kinds"),
        vec!["wishlist".to_string()]
    );
    let mut w = store.writer().expect("writer");
    w.add_event(&view("cy", "c", 3)).expect("add");
    w.commit().expect("commit");
    assert_eq!(store.user_id("cy").expect("lookup").map(|u| u.0), Some(2));
    let counts = store.counts().expect("counts");
    assert_eq!((counts.users, counts.items, counts.events), (3, 3, 2));
}

/// Two processes over one database (two replicas): each sees the other's commits, ids stay
/// dense and distinct whoever writes, and a retry of one's write through the other is a
/// duplicate.
#[test]
fn two_postgres_stores_on_one_database_share_ids_and_deduplicate() {
    let db = FreshDatabase::new();
    let a = PgStore::open(db.url()).expect("open a");
    let b = PgStore::open(db.url()).expect("open b");
    let mut w = a.writer().expect("writer");
    w.add_event(&view("amy", "apple", 10)).expect("add");
    w.commit().expect("commit");
    let mut w = b.writer().expect("writer");
    w.add_event(&view("ben", "pear", 20)).expect("add");
    w.add_event(&view("amy", "pear", 30)).expect("add");
    w.commit().expect("commit");
    // a learns of ben and pear only from the database.
    let mut w = a.writer().expect("writer");
    w.add_event(&view("cy", "fig", 40)).expect("add");
    w.add_event(&view("ben", "pear", 20)).expect("add");
    let report = w.commit().expect("commit");
    assert_eq!((report.events_added, report.events_duplicate), (1, 1));
    for store in [&a, &b] {
        let ids: Vec<Option<u32>> = ["amy", "ben", "cy"]
            .iter()
            .map(|u| store.user_id(u).expect("lookup").map(|u| u.0))
            .collect();
        assert_eq!(ids, vec![Some(0), Some(1), Some(2)]);
        assert_eq!(store.item_id("fig").expect("lookup").map(|i| i.0), Some(2));
        assert_eq!(all_events(store).len(), 4);
        assert_eq!(store.counts().expect("counts").events, 4);
    }
    // A forget on b reaches a's next write: a must not reuse or resurrect amy's id.
    let mut w = b.writer().expect("writer");
    w.forget_user("amy").expect("forget");
    w.commit().expect("commit");
    let mut w = a.writer().expect("writer");
    w.add_event(&view("amy", "apple", 50)).expect("add");
    w.commit().expect("commit");
    assert_eq!(a.user_id("amy").expect("lookup").map(|u| u.0), Some(3));
    assert_eq!(b.user_id("amy").expect("lookup").map(|u| u.0), Some(3));
}

/// A write larger than the `COPY` threshold, with duplicates of a committed write among it,
/// spread over several months: counted, stored once, partitioned, and expired by month.
#[test]
fn a_large_postgres_write_goes_through_copy_and_retention_drops_months() {
    let db = FreshDatabase::new();
    let store = PgStore::open(db.url()).expect("open");
    const DAY: i64 = 86_400_000;
    // 2021-01-01 and the 120 days after it.
    let start = 1_609_459_200_000;
    let event = |i: i64| {
        view(
            &format!("u{}", i % 97),
            &format!("i{}", i % 31),
            start + i * DAY / 40,
        )
    };
    let mut w = store.writer().expect("writer");
    w.keep_added_events();
    for i in 0..100 {
        w.add_event(&event(i)).expect("add");
    }
    assert_eq!(w.commit_listing_added().expect("commit").added.len(), 100);
    let mut w = store.writer().expect("writer");
    for i in 0..4_800 {
        w.add_event(&event(i)).expect("add");
    }
    let report = w.commit().expect("commit");
    assert_eq!((report.events_added, report.events_duplicate), (4_700, 100));
    assert_eq!(store.counts().expect("counts").events, 4_800);
    let times: Vec<i64> = all_events(&store).iter().map(|e| e.timestamp_ms).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "time order");
    let months = store.event_partitions().expect("partitions");
    for month in ["2021_01", "2021_02", "2021_03", "2021_04"] {
        assert!(
            months.contains(&format!("aisle_events_{month}")),
            "{month} in {months:?}"
        );
    }
    // Retention at 2021-03-15: January and February go whole, March in part.
    let cut = 1_615_766_400_000;
    let expected = times.iter().filter(|t| **t < cut).count();
    let mut w = store.writer().expect("writer");
    w.delete_events_before(cut);
    assert_eq!(w.commit().expect("commit").events_deleted, expected);
    let left = all_events(&store);
    assert_eq!(left.len(), 4_800 - expected);
    assert!(left.iter().all(|e| e.timestamp_ms >= cut));
    assert_eq!(store.counts().expect("counts").events, left.len());
    let months = store.event_partitions().expect("partitions");
    assert!(
        !months
            .iter()
            .any(|m| m.ends_with("2021_01") || m.ends_with("2021_02")),
        "months before the cut are dropped whole: {months:?}"
    );
    assert!(months.iter().any(|m| m.ends_with("2021_03")), "{months:?}");
}

/// The outbox holds exactly the events a commit newly stored, under the keys the commit
/// reports, until they are marked published; a duplicate does not enter it again, and a
/// forgotten user's events leave it.
#[test]
fn the_postgres_outbox_holds_what_was_committed_until_published() {
    let db = FreshDatabase::new();
    let store = PgStore::open(db.url()).expect("open");
    assert!(store.enable_outbox());
    let mut w = store.writer().expect("writer");
    w.keep_added_events();
    w.add_event(&view("amy", "a", 1)).expect("add");
    w.add_event(&view("ben", "b", 2)).expect("add");
    w.add_event(&view("amy", "c", 3)).expect("add");
    let committed = w.commit_listing_added().expect("commit");
    assert_eq!(committed.keys.len(), 3);
    let waiting = store.unpublished(10).expect("outbox");
    assert_eq!(
        waiting.iter().map(|w| w.0).collect::<Vec<_>>(),
        committed.keys
    );
    assert_eq!(
        waiting.into_iter().map(|w| w.1).collect::<Vec<_>>(),
        committed.added
    );
    store.mark_published(&committed.keys[..1]).expect("mark");
    assert_eq!(store.unpublished(10).expect("outbox").len(), 2);
    // A retry of the first write adds nothing to the outbox.
    let mut w = store.writer().expect("writer");
    w.add_event(&view("amy", "a", 1)).expect("add");
    assert_eq!(w.commit().expect("commit").events_duplicate, 1);
    assert_eq!(store.unpublished(10).expect("outbox").len(), 2);
    let mut w = store.writer().expect("writer");
    w.forget_user("amy").expect("forget");
    w.commit().expect("commit");
    assert_eq!(
        store.forgotten_users().expect("forgotten"),
        vec![aisle_core::UserId(0)]
    );
    let left = store.unpublished(10).expect("outbox");
    assert_eq!(left.len(), 1);
    assert_eq!(Some(left[0].1.user), store.user_id("ben").expect("lookup"));
    // The embedded stores have no outbox.
    assert!(!MemStore::new().enable_outbox());
}

#[test]
fn redb_ids_and_kinds_survive_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = RedbStore::open(dir.path()).expect("open");
        let mut w = store.writer().expect("writer");
        w.register_kind("wishlist").expect("register");
        w.add_event(&view("amy", "a", 1)).expect("add");
        w.add_event(&view("ben", "b", 2)).expect("add");
        w.commit().expect("commit");
    }
    let store = RedbStore::open(dir.path()).expect("reopen");
    assert_eq!(store.user_id("ben").expect("lookup").map(|u| u.0), Some(1));
    assert_eq!(store.item_id("a").expect("lookup").map(|i| i.0), Some(0));
    assert_eq!(
        store.custom_kinds().expect("kinds"),
        vec!["wishlist".to_string()]
    );
    // New ids continue after the old ones.
    let mut w = store.writer().expect("writer");
    w.add_event(&view("cy", "c", 3)).expect("add");
    w.commit().expect("commit");
    assert_eq!(store.user_id("cy").expect("lookup").map(|u| u.0), Some(2));
    assert_eq!(store.counts().expect("counts").events, 3);
}

#[test]
fn a_second_process_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = RedbStore::open(dir.path()).expect("open");
    match RedbStore::open(dir.path()) {
        Err(err) => assert!(err.to_string().contains("in use"), "{err}"),
        Ok(_) => panic!("a second open of the same directory must fail"),
    }
}
