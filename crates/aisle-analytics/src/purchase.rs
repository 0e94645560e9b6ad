//! Purchase prediction on order data, with features only from orders before the target order:
//! will a product the user bought before be in their next order (reorder), and will their next
//! order hold anything from a group of items (a department, or the items on promotion)?

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

/// Feature names of [`group_rows`], in row order.
pub const GROUP_FEATURES: [&str; 15] = [
    "user_orders",
    "user_mean_basket",
    "days_since_previous_order",
    "user_distinct_products",
    "group_order_share_all_users",
    "ug_order_share",
    "ug_item_share",
    "ug_items",
    "ug_orders_since_last",
    "ug_days_since_last",
    "ug_in_last_order",
    "ug_share_last_3_orders",
    "ug_first_order_share",
    "ug_lift_over_all_users",
    "ug_share_x_days_since_previous",
];

/// Rows of one split: features, labels and whom and what each row is about.
#[derive(Clone, Debug, Default)]
pub struct PurchaseRows {
    /// Row-major, one feature list ([`REORDER_FEATURES`] or [`GROUP_FEATURES`]) per row.
    pub features: Vec<f32>,
    /// 1 when the target order holds the product (or the group); 0 when it does not or when
    /// the target is the unknown next order.
    pub labels: Vec<f32>,
    /// Dense user id per row.
    pub users: Vec<u32>,
    /// The product (reorder rows) or group (group rows) of each row.
    pub subjects: Vec<u32>,
}

impl PurchaseRows {
    /// The rows of one user. `n` is the number of features per row.
    pub fn of_user(&self, user: u32, n: usize) -> PurchaseRows {
        let mut out = PurchaseRows::default();
        for (r, _) in self.users.iter().enumerate().filter(|(_, u)| **u == user) {
            out.features
                .extend_from_slice(&self.features[r * n..(r + 1) * n]);
            out.labels.push(self.labels[r]);
            out.users.push(user);
            out.subjects.push(self.subjects[r]);
        }
        out
    }

    /// Splits the rows by user, about `share` of the users (by a fixed hash) going to the
    /// second part, so that no user is on both sides. `n` is the number of features per row.
    pub fn split_by_user(&self, n: usize, share: f64) -> (PurchaseRows, PurchaseRows) {
        self.split_by_user_hash(n, share, 0x9E37_79B9_7F4A_7C15)
    }

    /// About `share` of the users' rows (by a fixed hash independent of
    /// [`PurchaseRows::split_by_user`]'s), every row of a kept user: a sample that keeps each
    /// user's rows together, so that a user's features stay consistent with their labels.
    pub fn sample_users(&self, n: usize, share: f64) -> PurchaseRows {
        self.split_by_user_hash(n, share, 0xD6E8_FEB8_6659_FD93).1
    }

    fn split_by_user_hash(&self, n: usize, share: f64, mix: u64) -> (PurchaseRows, PurchaseRows) {
        let (mut kept, mut held) = (PurchaseRows::default(), PurchaseRows::default());
        for (r, &user) in self.users.iter().enumerate() {
            let out = (u64::from(user).wrapping_mul(mix) >> 32) % 1000 < (share * 1000.0) as u64;
            let side = if out { &mut held } else { &mut kept };
            side.features
                .extend_from_slice(&self.features[r * n..(r + 1) * n]);
            side.labels.push(self.labels[r]);
            side.users.push(user);
            side.subjects.push(self.subjects[r]);
        }
        (kept, held)
    }
}

/// Which order the rows predict.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    /// Each user's order this many from the end (0 = the last); rows are labelled.
    Back(usize),
    /// The order after the last one, not yet placed: rows are unlabelled, and the gap before
    /// it is taken to be the user's mean gap between orders.
    Next,
}

impl Target {
    /// The history length t (orders before the target) and the target order, if placed.
    fn split(self, orders: &[Order]) -> Option<(usize, Option<&Order>)> {
        let t = match self {
            Target::Back(back) => orders.len().checked_sub(1 + back)?,
            Target::Next => orders.len(),
        };
        (t >= 2).then(|| (t, orders.get(t)))
    }
}

/// Days between the last history order and the target (or the mean gap, for the next order).
fn gap_days(history: &[Order], target: Option<&Order>) -> f64 {
    let last = history[history.len() - 1].start;
    match target {
        Some(order) => (order.start - last) as f64 / DAY_MS,
        None => (last - history[0].start) as f64 / DAY_MS / (history.len() - 1) as f64,
    }
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

/// Builds one row per (user, product bought before) for the target order of each user with at
/// least two orders before it. Product statistics use only orders before each user's target,
/// across all users.
pub fn reorder_rows(log: &EventLog, target: Target) -> PurchaseRows {
    let all = orders(log);
    let target_index = |orders: &[Order]| target.split(orders).map(|(t, _)| t);
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
    let mut rows = PurchaseRows::default();
    for (user, user_orders) in all.iter().enumerate() {
        let Some((t, target)) = target.split(user_orders) else {
            continue;
        };
        let history = &user_orders[..t];
        let n = history.len() as f32;
        let basket = history.iter().map(|o| o.products.len()).sum::<usize>() as f32 / n;
        let since_previous = gap_days(history, target);
        let target_start = history[t - 1].start + (since_previous * DAY_MS) as i64;
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
                ((target_start - history[last].start) as f64 / DAY_MS) as f32,
                positions / count,
                first as f32 / n,
                share * since_previous as f32,
            ]);
            rows.labels.push(f32::from(u8::from(
                target.is_some_and(|o| o.products.contains(&p)),
            )));
            rows.users.push(user as u32);
            rows.subjects.push(p);
        }
    }
    rows
}

/// Builds one row per (user, group) for the target order of each user with at least two
/// orders before it: will that order hold any item of the group? `item_group[item]` is the
/// item's group below `n_groups`, or any larger value for items in none (a department per
/// item, or 0 for the items on promotion). The all-users group shares use only orders before
/// each user's target.
pub fn group_rows(
    log: &EventLog,
    item_group: &[u32],
    n_groups: usize,
    target: Target,
) -> PurchaseRows {
    let all = orders(log);
    let groups_of = |order: &Order| -> Vec<u32> {
        let mut g: Vec<u32> = order
            .products
            .iter()
            .filter_map(|&p| item_group.get(p as usize).copied())
            .filter(|&g| (g as usize) < n_groups)
            .collect();
        g.sort_unstable();
        g.dedup();
        g
    };
    // Share of all users' history orders holding each group.
    let mut holding = vec![0.0f64; n_groups];
    let mut history_orders = 0.0f64;
    for user_orders in &all {
        let Some((t, _)) = target.split(user_orders) else {
            continue;
        };
        for order in &user_orders[..t] {
            history_orders += 1.0;
            for g in groups_of(order) {
                holding[g as usize] += 1.0;
            }
        }
    }
    let global: Vec<f32> = holding
        .iter()
        .map(|&h| (h / history_orders.max(1.0)) as f32)
        .collect();
    let mut rows = PurchaseRows::default();
    for (user, user_orders) in all.iter().enumerate() {
        let Some((t, target)) = target.split(user_orders) else {
            continue;
        };
        let history = &user_orders[..t];
        let n = t as f32;
        let basket = history.iter().map(|o| o.products.len()).sum::<usize>() as f32 / n;
        let since_previous = gap_days(history, target);
        let target_start = history[t - 1].start + (since_previous * DAY_MS) as i64;
        // Per group: orders holding it, items in it, first and last order index.
        let mut orders_with = vec![0.0f32; n_groups];
        let mut items_in = vec![0.0f32; n_groups];
        let mut first = vec![usize::MAX; n_groups];
        let mut last = vec![usize::MAX; n_groups];
        let mut last_three = vec![0.0f32; n_groups];
        let mut total_items = 0.0f32;
        for (k, order) in history.iter().enumerate() {
            for &p in &order.products {
                total_items += 1.0;
                if let Some(&g) = item_group
                    .get(p as usize)
                    .filter(|&&g| (g as usize) < n_groups)
                {
                    items_in[g as usize] += 1.0;
                }
            }
            for g in groups_of(order) {
                let g = g as usize;
                orders_with[g] += 1.0;
                if first[g] == usize::MAX {
                    first[g] = k;
                }
                last[g] = k;
                if k + 3 >= t {
                    last_three[g] += 1.0;
                }
            }
        }
        let distinct = {
            let mut all: Vec<u32> = history
                .iter()
                .flat_map(|o| o.products.iter().copied())
                .collect();
            all.sort_unstable();
            all.dedup();
            all.len() as f32
        };
        let target_groups = target.map(groups_of).unwrap_or_default();
        for g in 0..n_groups {
            let share = orders_with[g] / n;
            let never = last[g] == usize::MAX;
            let days_since_last = if never {
                // Never bought: as long ago as the user's first order, plus one gap.
                (target_start - history[0].start) as f64 / DAY_MS + since_previous
            } else {
                (target_start - history[last[g]].start) as f64 / DAY_MS
            };
            rows.features.extend([
                n,
                basket,
                since_previous as f32,
                distinct,
                global[g],
                share,
                items_in[g] / total_items.max(1.0),
                items_in[g],
                if never { n } else { (t - 1 - last[g]) as f32 },
                days_since_last as f32,
                f32::from(u8::from(last[g] == t - 1)),
                last_three[g] / 3.0f32.min(n),
                if never { 1.0 } else { first[g] as f32 / n },
                share / global[g].max(1e-6),
                share * since_previous as f32,
            ]);
            rows.labels.push(f32::from(u8::from(
                target_groups.binary_search(&(g as u32)).is_ok(),
            )));
            rows.users.push(user as u32);
            rows.subjects.push(g as u32);
        }
    }
    rows
}

/// Each item's department (the first level of its category path) as a dense group id for
/// [`group_rows`], `u32::MAX` for items without one, and the department names by id.
pub fn item_departments(
    store: &dyn aisle_store::ReadStore,
) -> aisle_store::Result<(Vec<u32>, Vec<String>)> {
    let mut names: Vec<String> = Vec::new();
    let mut index: FxHashMap<String, u32> = FxHashMap::default();
    let mut groups = vec![u32::MAX; store.counts()?.items];
    store.scan_items(&mut |id, item| {
        if let (Some(department), Some(slot)) = (item.category.first(), groups.get_mut(id.index()))
        {
            let next = index.len() as u32;
            *slot = *index.entry(department.clone()).or_insert_with(|| {
                names.push(department.clone());
                next
            });
        }
    })?;
    Ok((groups, names))
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

    #[test]
    fn a_user_sample_keeps_whole_users_and_is_independent_of_the_split() {
        // 10,000 users with 1 to 5 rows each; the single feature is the user id.
        let mut rows = PurchaseRows::default();
        for user in 0..10_000u32 {
            for k in 0..1 + user % 5 {
                rows.features.push(user as f32);
                rows.labels.push((k % 2) as f32);
                rows.users.push(user);
                rows.subjects.push(k);
            }
        }
        let count = |r: &PurchaseRows| {
            let mut by_user = std::collections::BTreeMap::new();
            for &u in &r.users {
                *by_user.entry(u).or_insert(0u32) += 1;
            }
            by_user
        };
        let sample = rows.sample_users(1, 0.3);
        let kept = count(&sample);
        assert!(
            (2_700..3_300).contains(&kept.len()),
            "{} users kept",
            kept.len()
        );
        for (&user, &n) in &kept {
            assert_eq!(n, 1 + user % 5, "user {user} kept whole");
        }
        for (r, &user) in sample.users.iter().enumerate() {
            assert_eq!(sample.features[r], user as f32, "rows stay aligned");
        }
        // The validation split of the sample holds about a fifth of its users. Were the two
        // hashes one, two thirds of a 30% sample would land in validation.
        let (_, valid) = sample.split_by_user(1, 0.2);
        let share = count(&valid).len() as f64 / kept.len() as f64;
        assert!((0.15..0.25).contains(&share), "validation share {share}");
    }
}
