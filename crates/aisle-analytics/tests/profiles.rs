//! Portraits, item statistics and category affinity against fixtures counted by hand.

use aisle_analytics::profiles::{ItemFacts, category_affinity, item_stats, portrait};
use aisle_core::EventKind::{self, AddToCart, Purchase, View};
use aisle_features::{EventLog, Interaction};

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;

fn event(user: u32, item: u32, kind: EventKind, session: u64, t: i64) -> Interaction {
    Interaction {
        user,
        item,
        kind,
        timestamp_ms: t,
        session,
        value: 0.0,
    }
}

fn facts(category: &str, brand: Option<&str>, price: Option<f64>) -> ItemFacts {
    ItemFacts {
        category: Some(category.into()),
        brand: brand.map(Into::into),
        price,
    }
}

fn catalogue() -> Vec<ItemFacts> {
    vec![
        facts("dairy", Some("A"), Some(2.0)),
        facts("dairy", Some("B"), Some(4.0)),
        facts("bakery", Some("A"), Some(6.0)),
        facts("produce", None, Some(8.0)),
    ]
}

fn fixture() -> EventLog {
    // Day 0 is 1970-01-01, a Thursday.
    let events = vec![
        // User 0: order 1 on day 0 at 10:00 (items 0 and 2), order 2 on day 4 at 10:00 (item 0),
        // a view of item 1 on day 4 at 15:00, a cart add of item 3 on day 7 (Wednesday) at 20:00.
        event(0, 0, Purchase, 1, 10 * HOUR),
        event(0, 2, Purchase, 1, 10 * HOUR),
        event(0, 0, Purchase, 2, 4 * DAY + 10 * HOUR),
        event(0, 1, View, 3, 4 * DAY + 15 * HOUR),
        event(0, 3, AddToCart, 4, 7 * DAY + 20 * HOUR),
        // User 1: views item 0 twice, buys it once; buys items 1 and 3 together.
        event(1, 0, View, 5, DAY),
        event(1, 0, View, 5, DAY + 1),
        event(1, 0, Purchase, 5, DAY + 2),
        event(1, 1, Purchase, 6, 2 * DAY),
        event(1, 3, Purchase, 6, 2 * DAY),
        // The log ends on day 10.
        event(1, 3, View, 7, 10 * DAY),
    ];
    EventLog::from_events(events, 2, 4)
}

#[test]
fn portrait_by_hand() {
    let p = portrait(&fixture(), &catalogue(), 0, 5);
    assert_eq!(p.events["purchase"], 3);
    assert_eq!(p.events["view"], 1);
    assert_eq!(p.events["add_to_cart"], 1);
    assert_eq!(p.orders, 2);
    assert!((p.days_between_orders.unwrap() - 4.0).abs() < 1e-9);
    assert!((p.days_since_last_order.unwrap() - (6.0 - 10.0 / 24.0)).abs() < 1e-9);
    assert!((p.tenure_days - (7.0 + 10.0 / 24.0)).abs() < 1e-9);
    // Weights: purchases 3, cart 2, view 1. Dairy 3+3+1 = 7, bakery 3, produce 2; total 12.
    assert_eq!(p.categories[0].0, "dairy");
    assert!((p.categories[0].1 - 7.0 / 12.0).abs() < 1e-9);
    assert_eq!(p.categories[1], ("bakery".to_string(), 3.0 / 12.0));
    // Brands: A 3+3+3 = 9, B 1 (produce has none); total 10.
    assert_eq!(p.brands[0], ("A".to_string(), 0.9));
    // Bought items priced 2, 6 and 2: mean 10/3; one of the four prices (2) is below it.
    assert!((p.mean_price_bought.unwrap() - 10.0 / 3.0).abs() < 1e-9);
    assert!((p.price_percentile.unwrap() - 0.25).abs() < 1e-9);
    assert_eq!(p.hours[10], 3);
    assert_eq!(p.hours[15], 1);
    assert_eq!(p.hours[20], 1);
    // Day 0 Thursday (3) twice, day 4 Monday (0) twice, day 7 Thursday (3) once.
    assert_eq!(p.weekdays, vec![2, 0, 0, 3, 0, 0, 0]);
}

#[test]
fn item_stats_by_hand() {
    let stats = item_stats(&fixture());
    let of = |item: u32| stats.iter().find(|s| s.item == item).unwrap();
    // Item 0: bought by user 0 on two orders and by user 1 once; viewed twice.
    let s = of(0);
    assert_eq!((s.views, s.purchases, s.buyers), (2, 3, 2));
    assert!((s.repeat_buyer_share - 0.5).abs() < 1e-9);
    assert!((s.purchases_per_view.unwrap() - 1.5).abs() < 1e-9);
    assert_eq!(stats[0].item, 0, "most purchased first");
    let s = of(3);
    assert_eq!((s.views, s.carts, s.purchases, s.buyers), (1, 1, 1, 1));
    assert_eq!(s.purchases_per_cart, Some(1.0));
    assert_eq!(of(2).purchases_per_view, None);
}

#[test]
fn category_affinity_by_hand() {
    let items = catalogue();
    let categories: Vec<Option<String>> = items.iter().map(|f| f.category.clone()).collect();
    // Baskets: {dairy, bakery}, {dairy}, {dairy, produce}, {bakery, produce}, {dairy, bakery}.
    let baskets = vec![vec![0, 2], vec![0, 1], vec![1, 3], vec![2, 3], vec![1, 2]];
    let list = category_affinity(&baskets, &categories, 1);
    assert_eq!(list.len(), 3);
    let pair = |a: &str, b: &str| {
        list.iter()
            .find(|x| (x.a == a && x.b == b) || (x.a == b && x.b == a))
            .unwrap()
    };
    // bakery & produce: together in 1 of 5; bakery in 3, produce in 2: lift 1·5/(3·2).
    let bp = pair("bakery", "produce");
    assert_eq!(bp.baskets, 1);
    assert!((bp.lift - 5.0 / 6.0).abs() < 1e-9);
    // dairy & bakery: together in 2; dairy in 4, bakery in 3: lift 2·5/12.
    let db = pair("dairy", "bakery");
    assert_eq!(db.baskets, 2);
    assert!((db.lift - 10.0 / 12.0).abs() < 1e-9);
    // dairy & produce: 1 of 5; 4 and 2: lift 5/8, the lowest.
    assert!((list[2].lift - 5.0 / 8.0).abs() < 1e-9);
    assert!(category_affinity(&baskets, &categories, 2).len() == 1);
}
