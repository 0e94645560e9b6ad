//! Funnels, cohorts and RFM against small fixtures counted by hand.

use aisle_analytics::behaviour::{FunnelUnit, cohorts, funnel, rfm};
use aisle_core::EventKind::{AddToCart, Click, Purchase, View};
use aisle_features::{EventLog, Interaction};

const DAY: i64 = 86_400_000;

fn event(user: u32, session: u64, kind: aisle_core::EventKind, t: i64) -> Interaction {
    Interaction {
        user,
        item: 0,
        kind,
        timestamp_ms: t,
        session,
        value: 0.0,
    }
}

fn log(mut events: Vec<Interaction>) -> EventLog {
    events.sort_by_key(|e| e.timestamp_ms);
    EventLog::from_events(events, 10, 1)
}

#[test]
fn ordered_funnel_counts_by_session_and_by_user() {
    let log = log(vec![
        // user 0, session 1: view, click, cart, purchase: reaches all four steps.
        event(0, 1, View, 1),
        event(0, 1, Click, 2),
        event(0, 1, AddToCart, 3),
        event(0, 1, Purchase, 4),
        // user 1, session 2: view, cart (no click): stops after view.
        event(1, 2, View, 5),
        event(1, 2, AddToCart, 6),
        // user 1, session 3: click before view: the click does not count, so view only.
        event(1, 3, Click, 7),
        event(1, 3, View, 8),
        // user 2, session 4: view, click; session 5: cart, purchase (per user: all four).
        event(2, 4, View, 9),
        event(2, 4, Click, 10),
        event(2, 5, AddToCart, 11),
        event(2, 5, Purchase, 12),
        // user 3: purchase only: never enters the funnel.
        event(3, 6, Purchase, 13),
    ]);
    let steps = [View, Click, AddToCart, Purchase];
    let all = |_: u32| true;
    let by_session = funnel(&log, &steps, FunnelUnit::Session, i64::MIN, i64::MAX, &all).unwrap();
    assert_eq!(
        by_session.iter().map(|s| s.count).collect::<Vec<_>>(),
        [4, 2, 1, 1]
    );
    assert!((by_session[1].from_previous - 0.5).abs() < 1e-12);
    assert!((by_session[3].from_first - 0.25).abs() < 1e-12);
    let by_user = funnel(&log, &steps, FunnelUnit::User, i64::MIN, i64::MAX, &all).unwrap();
    assert_eq!(
        by_user.iter().map(|s| s.count).collect::<Vec<_>>(),
        [3, 3, 2, 2]
    );
    // A time window and a segment (users 1 and 2 only).
    let window = funnel(&log, &steps, FunnelUnit::Session, 5, 11, &|u| {
        u == 1 || u == 2
    })
    .unwrap();
    assert_eq!(
        window.iter().map(|s| s.count).collect::<Vec<_>>(),
        [3, 1, 0, 0]
    );
}

#[test]
fn weekly_cohorts_count_returning_users() {
    let log = log(vec![
        // Cohort week 0: users 0, 1, 2. User 0 returns in weeks 1 and 2, user 1 in week 2.
        event(0, 1, Purchase, 0),
        event(1, 2, Purchase, DAY),
        event(2, 3, Purchase, 2 * DAY),
        event(0, 4, Purchase, 8 * DAY),
        event(0, 5, Purchase, 15 * DAY),
        event(1, 6, Purchase, 16 * DAY),
        // Cohort week 1: users 3 and 4; user 3 returns in week 2.
        event(3, 7, Purchase, 9 * DAY),
        event(4, 8, Purchase, 10 * DAY),
        event(3, 9, Purchase, 17 * DAY),
        // A view does not count when the cohort is defined on purchases.
        event(4, 10, View, 18 * DAY),
    ]);
    let table = cohorts(&log, Some(Purchase), 7).unwrap();
    assert_eq!(table.len(), 2);
    assert_eq!((table[0].period, table[0].users), (0, 3));
    let close = |a: &[f64], b: &[f64]| {
        a.len() == b.len() && a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-12)
    };
    assert!(
        close(&table[0].retention, &[1.0, 1.0 / 3.0, 2.0 / 3.0]),
        "{:?}",
        table[0]
    );
    assert_eq!((table[1].period, table[1].users), (1, 2));
    assert!(close(&table[1].retention, &[1.0, 0.5]), "{:?}", table[1]);
    // Any kind: user 4's view in week 2 now counts.
    let any = cohorts(&log, None, 7).unwrap();
    assert!(close(&any[1].retention, &[1.0, 1.0]));
}

#[test]
fn rfm_scores_and_segments() {
    // Five customers: recency 1, 2, 10, 20, 40 days; frequency 5, 4, 1, 2, 1 days; spend.
    let now = 100 * DAY;
    let mut purchases = Vec::new();
    for (user, last_day_ago, days, spend) in [
        (0, 1, 5, 500.0),
        (1, 2, 4, 300.0),
        (2, 10, 1, 20.0),
        (3, 20, 2, 60.0),
        (4, 40, 1, 10.0),
    ] {
        for d in 0..days {
            purchases.push((
                user,
                now - (last_day_ago + d * 3) * DAY,
                spend / days as f64,
            ));
        }
    }
    let rows = rfm(purchases, now);
    assert_eq!(rows.len(), 5);
    let by_user = |u: u32| rows.iter().find(|r| r.user == u).unwrap();
    assert_eq!((by_user(0).r, by_user(0).f, by_user(0).m), (5, 5, 5));
    assert_eq!(by_user(0).segment, "champions");
    assert_eq!((by_user(4).r, by_user(4).m), (1, 1));
    assert_eq!(by_user(4).segment, "lost");
    assert_eq!(by_user(2).frequency, 1);
    assert!((by_user(3).recency_days - 20.0).abs() < 1e-9);
    assert!((by_user(1).monetary - 300.0).abs() < 1e-9);
}
