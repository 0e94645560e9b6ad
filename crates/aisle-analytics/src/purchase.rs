//! Reorder prediction on order data: will a product the user bought before be in their next
//! order? Features come only from orders before the target order.

use aisle_core::EventKind;
use aisle_features::{EventLog, Interaction};
use rustc_hash::FxHashMap;

const DAY_MS: f64 = 86_400_000.0;

/// Feature names, in row order.
pub const REORDER_FEATURES: [&str; 14] = [
    "user_orders",
    "user_mean_basket",
    "user_distinct_products",
    "days_since_previous_order",
    "product_purchases",
    "product_reorder_rate",
    "product_buyers",
    "up_purchases",
    "up_order_share",
    "up_orders_since_last",
    "up_days_since_last",
    "up_mean_cart_position",
    "up_first_order_share",
    "up_share_x_days_since_previous",
];

/// Rows of one split: features, labels and which user each row belongs to.
#[derive(Clone, Debug, Default)]
pub struct ReorderRows {
    /// Row-major, [`REORDER_FEATURES`] per row.
    pub features: Vec<f32>,
    /// 1 when the product is in the target order.
    pub labels: Vec<f32>,
    /// Dense user id per row.
    pub users: Vec<u32>,
}

struct Order {
    start: i64,
    session: u64,
    /// Products in cart order.
    products: Vec<u32>,
}

fn orders(log: &EventLog) -> Vec<Vec<Order>> {
    let mut by_user: Vec<FxHashMap<u64, Vec<&Interaction>>> =
        vec![FxHashMap::default(); log.n_users()];
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase && e.item().is_some())
    {
        by_user[e.user as usize]
            .entry(e.session)
            .or_default()
            .push(e);
    }
    // Cart adds give the position within the order.
    let mut position: FxHashMap<(u32, u64, u32), i64> = FxHashMap::default();
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::AddToCart)
    {
        position
            .entry((e.user, e.session, e.item))
            .or_insert(e.timestamp_ms);
    }
    by_user
        .into_iter()
        .map(|sessions| {
            let mut list: Vec<Order> = sessions
                .into_iter()
                .map(|(session, events)| {
                    let mut items: Vec<(i64, u32)> = events
                        .iter()
                        .map(|e| {
                            (
                                *position
                                    .get(&(e.user, session, e.item))
                                    .unwrap_or(&e.timestamp_ms),
                                e.item,
                            )
                        })
                        .collect();
                    items.sort_unstable();
                    items.dedup_by_key(|x| x.1);
                    Order {
                        start: events.iter().map(|e| e.timestamp_ms).min().unwrap_or(0),
                        session,
                        products: items.into_iter().map(|x| x.1).collect(),
                    }
                })
                .collect();
            // Orders can share a start time (Instacart gives days between orders, and 0
            // happens); the session key breaks ties so the order is always the same.
            list.sort_by_key(|o| (o.start, o.session));
            list
        })
        .collect()
}

/// Builds the rows whose target is each user's order `back` from the end (0 = last order),
/// for users with at least two orders before it. Product statistics use only orders before
/// each user's target, across all users.
pub fn reorder_rows(log: &EventLog, back: usize) -> ReorderRows {
    let all = orders(log);
    let target_index = |orders: &[Order]| orders.len().checked_sub(1 + back).filter(|&t| t >= 2);
    // Product statistics over every user's history before their target.
    let mut purchases: FxHashMap<u32, f32> = FxHashMap::default();
    let mut reorders: FxHashMap<u32, f32> = FxHashMap::default();
    let mut buyers: FxHashMap<u32, f32> = FxHashMap::default();
    for user_orders in &all {
        let Some(t) = target_index(user_orders) else {
            continue;
        };
        let mut seen: FxHashMap<u32, ()> = FxHashMap::default();
        for order in &user_orders[..t] {
            for &p in &order.products {
                *purchases.entry(p).or_default() += 1.0;
                if seen.insert(p, ()).is_some() {
                    *reorders.entry(p).or_default() += 1.0;
                } else {
                    *buyers.entry(p).or_default() += 1.0;
                }
            }
        }
    }
    let mut rows = ReorderRows::default();
    for (user, user_orders) in all.iter().enumerate() {
        let Some(t) = target_index(user_orders) else {
            continue;
        };
        let history = &user_orders[..t];
        let target = &user_orders[t];
        let n = history.len() as f32;
        let basket = history.iter().map(|o| o.products.len()).sum::<usize>() as f32 / n;
        let since_previous = (target.start - history[t - 1].start) as f64 / DAY_MS;
        // Per product: count, last order index, first order index, summed cart position.
        let mut stats: FxHashMap<u32, (f32, usize, usize, f32)> = FxHashMap::default();
        for (k, order) in history.iter().enumerate() {
            for (pos, &p) in order.products.iter().enumerate() {
                let s = stats.entry(p).or_insert((0.0, k, k, 0.0));
                s.0 += 1.0;
                s.1 = k;
                s.3 += pos as f32 + 1.0;
            }
        }
        let distinct = stats.len() as f32;
        let mut products: Vec<u32> = stats.keys().copied().collect();
        products.sort_unstable();
        for p in products {
            let (count, last, first, positions) = stats[&p];
            let bought = purchases.get(&p).copied().unwrap_or(0.0);
            let share = count / n;
            rows.features.extend([
                n,
                basket,
                distinct,
                since_previous as f32,
                bought,
                reorders.get(&p).copied().unwrap_or(0.0) / bought.max(1.0),
                buyers.get(&p).copied().unwrap_or(0.0),
                count,
                share,
                (t - 1 - last) as f32,
                ((target.start - history[last].start) as f64 / DAY_MS) as f32,
                positions / count,
                first as f32 / n,
                share * since_previous as f32,
            ]);
            rows.labels
                .push(f32::from(u8::from(target.products.contains(&p))));
            rows.users.push(user as u32);
        }
    }
    rows
}

/// Area under the ROC curve (ties count half).
pub fn auc(scores: &[f32], labels: &[f32]) -> f64 {
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    let (mut rank_sum, mut positives) = (0.0, 0.0);
    let mut i = 0;
    while i < order.len() {
        let mut j = i;
        while j + 1 < order.len() && scores[order[j + 1]] == scores[order[i]] {
            j += 1;
        }
        let mid = (i + j) as f64 / 2.0 + 1.0;
        for &k in &order[i..=j] {
            if labels[k] > 0.5 {
                rank_sum += mid;
                positives += 1.0;
            }
        }
        i = j + 1;
    }
    let negatives = scores.len() as f64 - positives;
    if positives == 0.0 || negatives == 0.0 {
        return 0.5;
    }
    (rank_sum - positives * (positives + 1.0) / 2.0) / (positives * negatives)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_by_hand() {
        assert!((auc(&[0.1, 0.4, 0.35, 0.8], &[0.0, 0.0, 1.0, 1.0]) - 0.75).abs() < 1e-12);
        assert!((auc(&[0.5, 0.5], &[0.0, 1.0]) - 0.5).abs() < 1e-12);
    }
}
