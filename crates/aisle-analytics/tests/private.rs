//! Private analytics on the bundled Instacart sample: the noisy figures stay near the exact
//! ones at the stated scale, and an item bought by one shopper never appears.

use aisle_analytics::private::{PrivateSettings, private_summary};
use aisle_analytics::profiles::item_stats;
use aisle_core::EventKind;
use aisle_features::{EventLog, Interaction};
use rand::SeedableRng;
use rand::rngs::StdRng;

fn sample_log() -> EventLog {
    let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
        .expect("import the bundled sample");
    EventLog::load(&store).expect("load the log")
}

#[test]
fn private_figures_are_near_the_exact_ones_and_rare_items_stay_hidden() {
    let log = sample_log();
    let now = log.events().last().expect("events").timestamp_ms;
    // One shopper alone buys an item nobody else bought: it must never be shown.
    let mut events = log.events().to_vec();
    let lone_item = log.n_items() as u32;
    events.push(Interaction {
        user: 0,
        item: lone_item,
        kind: EventKind::Purchase,
        timestamp_ms: now - 1,
        ..events[0]
    });
    let log = EventLog::from_events(events, log.n_users(), log.n_items() + 1);
    let settings = PrivateSettings::default();
    let steps = aisle_analytics::behaviour::default_funnel_steps(&log);
    let exact_top = item_stats(&log);
    let mut rng = StdRng::seed_from_u64(5);
    let mut released_lone = 0;
    for _ in 0..50 {
        let s = private_summary(&log, &steps, now, &settings, &mut rng).expect("summary");
        released_lone += s.top_items.iter().filter(|t| t.item == lone_item).count();
        assert_eq!(s.funnel.len(), steps.len());
        assert!(
            (s.statement.iter().map(|p| p.epsilon).sum::<f64>() - settings.epsilon).abs() < 1e-12
        );
    }
    assert_eq!(released_lone, 0, "an item of one buyer was released");
    // On 593 shoppers the best sellers do not clear the threshold at the default ε: a
    // store this small shows none, which is the point. At ε = 40 the best seller does,
    // with its buyers near the truth (bounding keeps each user's five most bought items,
    // so it lowers the count).
    let loose = PrivateSettings {
        epsilon: 40.0,
        ..settings.clone()
    };
    let s = private_summary(&log, &steps, now, &loose, &mut rng).expect("summary");
    let best = &exact_top[0];
    let shown = s
        .top_items
        .iter()
        .find(|t| t.item == best.item)
        .expect("the best seller is shown");
    println!(
        "best seller: {} buyers shown, {} exact",
        shown.buyers, best.buyers
    );
    assert!(
        (shown.buyers as f64) < best.buyers as f64 + 20.0
            && (shown.buyers as f64) > 0.3 * best.buyers as f64,
        "buyers {} against {}",
        shown.buyers,
        best.buyers
    );
    let s = private_summary(&log, &steps, now, &settings, &mut rng).expect("summary");
    println!("funnel {:?}, top items {}", s.funnel, s.top_items.len());
    // The cart step of the funnel: bounded to three sessions a user, so below the truth,
    // and above zero on a sample with thousands of carts.
    let carts = s
        .funnel
        .iter()
        .find(|(k, _)| k == "add_to_cart")
        .expect("carts")
        .1;
    assert!(carts > 1000, "{carts}");
    // Segments cover the buyers: their noisy total is near the number of buyers.
    let buyers = log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
        .map(|e| e.user)
        .collect::<std::collections::HashSet<_>>()
        .len() as f64;
    let total: i64 = s.segments.values().sum();
    assert!(
        (total as f64 - buyers).abs() < 0.05 * buyers + 200.0,
        "{total} against {buyers}"
    );
}

#[test]
fn settings_that_protect_nothing_are_refused() {
    let log = EventLog::from_events(Vec::new(), 0, 0);
    let bad = PrivateSettings {
        epsilon: 0.0,
        ..PrivateSettings::default()
    };
    assert!(
        private_summary(
            &log,
            &[EventKind::Purchase],
            0,
            &bad,
            &mut StdRng::seed_from_u64(1)
        )
        .is_err()
    );
}
