//! Each adapter on the real files, against the counts in the dataset's SOURCE.md.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use aisle_core::{Event, EventKind};
use aisle_import::{Adapter, ImportOptions, ImportReport, Source, import};
use aisle_store::{MemStore, ReadStore, RedbStore, Store};
use aisle_testkit::{bundled_sample, shared_dataset};

fn import_strict(store: &dyn Store, adapter: Adapter, paths: &[PathBuf]) -> ImportReport {
    let options = ImportOptions {
        strict: true,
        ..ImportOptions::default()
    };
    import(store, &Source::Adapter(adapter), paths, &options)
        .expect("the real files import cleanly")
}

fn events(store: &dyn ReadStore) -> Vec<Event> {
    let mut out = Vec::new();
    store.scan_events(&mut |e| out.push(e)).expect("scan");
    out
}

fn count_kind(events: &[Event], kind: EventKind) -> usize {
    events.iter().filter(|e| e.kind == kind).count()
}

#[test]
fn instacart_bundled_sample() {
    let store = MemStore::new();
    import_strict(&store, Adapter::Instacart, &[bundled_sample()]);
    let counts = store.counts().expect("counts");
    assert_eq!((counts.items, counts.users), (49_688, 593));
    let all = events(&store);
    assert_eq!(count_kind(&all, EventKind::Purchase), 150_000);
    assert_eq!(count_kind(&all, EventKind::AddToCart), 150_000);
    let orders: HashSet<_> = all.iter().map(|e| e.session).collect();
    assert_eq!(orders.len(), 15_183);
    let distinct_products: HashSet<_> = all.iter().map(|e| e.item).collect();
    assert_eq!(distinct_products.len(), 14_190);

    let cookies = store.item_id("1").expect("lookup").expect("product 1");
    let item = store.item(cookies).expect("get").expect("record");
    assert_eq!(item.title, "Chocolate Sandwich Cookies");
    assert_eq!(
        item.category,
        vec!["snacks".to_string(), "cookies cakes".to_string()]
    );

    // User 1's first order (order_dow 2, hour 8): cart adds from Tuesday 2017-01-03 08:00:01 UTC.
    let user1 = store.user_id("1").expect("lookup").expect("user 1");
    let first = all
        .iter()
        .find(|e| e.user == user1)
        .expect("user 1 has events");
    assert_eq!(first.kind, EventKind::AddToCart);
    assert_eq!(first.timestamp_ms, 1_483_430_400_000 + 1_000);
}

#[test]
fn yoochoose_files() {
    let Some(dir) = shared_dataset("yoochoose-100k") else {
        return;
    };
    for (file, rows, sessions, items) in [
        (
            "yoochoose-clicks-100k_train_full.txt",
            70_278,
            17_794,
            2_933,
        ),
        ("yoochoose-clicks-100k_test.txt", 13_568, 3_416, 1_771),
    ] {
        let store = MemStore::new();
        let report = import_strict(&store, Adapter::Yoochoose, &[dir.join(file)]);
        assert_eq!(report.rows_read, rows);
        let counts = store.counts().expect("counts");
        assert_eq!(
            (counts.events, counts.users, counts.items),
            (rows as usize, sessions, items),
            "{file}"
        );
        let all = events(&store);
        assert!(
            all.iter()
                .all(|e| e.kind == EventKind::Click && e.session.is_some())
        );
    }
}

#[test]
fn yoochoose_reimport_adds_nothing() {
    let Some(dir) = shared_dataset("yoochoose-100k") else {
        return;
    };
    let data = tempfile::tempdir().expect("tempdir");
    let store = RedbStore::open(data.path()).expect("open");
    let file = dir.join("yoochoose-clicks-100k_test.txt");
    let first = import_strict(&store, Adapter::Yoochoose, std::slice::from_ref(&file));
    let second = import_strict(&store, Adapter::Yoochoose, &[file]);
    assert_eq!(first.write.events_added, 13_568);
    assert_eq!(
        (second.write.events_added, second.write.events_duplicate),
        (0, 13_568)
    );
    assert_eq!(store.counts().expect("counts").events, 13_568);
}

#[test]
fn s3rec_beauty_and_sports() {
    let Some(dir) = shared_dataset("amazon-seq-s3rec") else {
        return;
    };
    for (file, users, items, interactions) in [
        ("Beauty.txt", 22_363, 12_101, 198_502),
        ("Sports_and_Outdoors.txt", 35_598, 18_357, 296_337),
    ] {
        let store = MemStore::new();
        import_strict(&store, Adapter::S3Rec, &[dir.join(file)]);
        let counts = store.counts().expect("counts");
        assert_eq!(
            (counts.users, counts.items, counts.events),
            (users, items, interactions),
            "{file}"
        );
    }
    // Order is kept: Beauty's user 2 reviewed 6 7 8 9 10 4 11, in that order.
    let store = MemStore::new();
    import_strict(&store, Adapter::S3Rec, &[dir.join("Beauty.txt")]);
    let user2 = store.user_id("2").expect("lookup").expect("user 2");
    let sequence: Vec<String> = events(&store)
        .into_iter()
        .filter(|e| e.user == user2)
        .map(|e| {
            store
                .item(e.item.expect("item"))
                .expect("get")
                .expect("record")
                .external_id
        })
        .collect();
    assert_eq!(sequence, ["6", "7", "8", "9", "10", "4", "11"]);
    // Attribute ids are kept: item 4 has attributes [1, 2, 3].
    let item4 = store
        .item(store.item_id("4").expect("lookup").expect("item 4"))
        .expect("get")
        .expect("record");
    assert_eq!(
        item4.attributes.get("attributes").map(String::as_str),
        Some("1 2 3")
    );
}

#[test]
fn movielens_100k() {
    let Some(dir) = shared_dataset("movielens-100k") else {
        return;
    };
    let store = MemStore::new();
    import_strict(&store, Adapter::MovieLens, &[dir]);
    let counts = store.counts().expect("counts");
    assert_eq!(
        (counts.events, counts.users, counts.items),
        (100_000, 943, 1_682)
    );
    let all = events(&store);
    assert!(all.iter().all(|e| e.kind == EventKind::Rating
        && e.payload.value.is_some_and(|v| (1.0..=5.0).contains(&v))));
    let toy_story = store
        .item(store.item_id("1").expect("lookup").expect("item 1"))
        .expect("get")
        .expect("record");
    assert_eq!(toy_story.title, "Toy Story");
    assert_eq!(
        toy_story.attributes.get("release_year").map(String::as_str),
        Some("1995")
    );
    let user1 = store
        .user(store.user_id("1").expect("lookup").expect("user 1"))
        .expect("get")
        .expect("record");
    assert_eq!(
        user1.attributes.get("occupation").map(String::as_str),
        Some("technician")
    );
    // 1997-09-20 .. 1998-04-22 UTC.
    assert!(all.first().expect("events").timestamp_ms >= 874_713_600_000);
    assert!(all.last().expect("events").timestamp_ms < 893_289_600_000);
}

#[test]
fn cdnow_master_and_sample() {
    let Some(dir) = shared_dataset("cdnow") else {
        return;
    };
    for (file, transactions, customers) in [
        ("CDNOW_master.txt", 69_659, 23_570),
        ("CDNOW_sample.txt", 6_919, 2_357),
    ] {
        let store = MemStore::new();
        import_strict(&store, Adapter::Cdnow, &[dir.join(file)]);
        let counts = store.counts().expect("counts");
        assert_eq!(
            (counts.events, counts.users),
            (transactions, customers),
            "{file}"
        );
        let all = events(&store);
        assert_eq!(
            all.first().expect("events").timestamp_ms,
            852_076_800_000,
            "1997-01-01"
        );
        assert_eq!(
            all.last().expect("events").timestamp_ms,
            899_164_800_000,
            "1998-06-30"
        );
        assert!(
            all.iter()
                .all(|e| e.item.is_none() && e.kind == EventKind::Purchase)
        );
    }
}

#[test]
fn groceries_baskets() {
    let Some(dir) = shared_dataset("groceries") else {
        return;
    };
    let store = MemStore::new();
    import_strict(&store, Adapter::Groceries, &[dir.join("groceries.csv")]);
    let counts = store.counts().expect("counts");
    assert_eq!(
        (counts.users, counts.items, counts.events),
        (9_835, 169, 43_367)
    );
    let milk = store
        .item_id("whole milk")
        .expect("lookup")
        .expect("whole milk");
    let mut baskets = HashMap::new();
    for e in events(&store) {
        if e.item == Some(milk) {
            *baskets.entry(e.user).or_insert(0) += 1;
        }
    }
    assert_eq!(baskets.len(), 2_513);
}

#[test]
fn completejourney_transactions_products_and_households() {
    let Some(dir) = shared_dataset("completejourney") else {
        return;
    };
    let store = MemStore::new();
    let report = import_strict(&store, Adapter::CompleteJourney, &[dir]);
    let counts = store.counts().expect("counts");
    // SOURCE.md: 1,469,307 transaction lines, 2,469 households, 92,331 products; the
    // transactions name 17 product ids that products.parquet lacks (counted with pyarrow),
    // and they become items too.
    assert_eq!(
        (counts.events, counts.users, counts.items),
        (1_469_307, 2_469, 92_331 + 17),
        "{report:?}"
    );
    let all = events(&store);
    assert!(
        all.iter()
            .all(|e| e.item.is_some() && e.kind == EventKind::Purchase)
    );
    // 2017-01-01 to 2018-01-01 (the period SOURCE.md states).
    let (first, last) = (
        all.iter().map(|e| e.timestamp_ms).min().expect("events"),
        all.iter().map(|e| e.timestamp_ms).max().expect("events"),
    );
    assert!(
        (1_483_228_800_000..1_483_315_200_000).contains(&first),
        "first event {first} is not on 2017-01-01"
    );
    assert!(
        last < 1_514_851_200_000,
        "last event {last} after 2018-01-02"
    );
    let baskets: HashSet<_> = all.iter().filter_map(|e| e.session).collect();
    assert_eq!(baskets.len(), 155_848, "SOURCE.md's basket count");
}
