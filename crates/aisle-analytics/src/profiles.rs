//! Who a shopper is and how items and categories sell: user portraits, item statistics and
//! cross-category affinity.

use std::collections::BTreeMap;

use aisle_core::EventKind;
use aisle_features::EventLog;
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;

const DAY_MS: i64 = 86_400_000;

/// What the portraits need to know about each item (indexed by dense item id).
#[derive(Clone, Debug, Default)]
pub struct ItemFacts {
    /// Top-level category (department), if any.
    pub category: Option<String>,
    /// Brand, if any.
    pub brand: Option<String>,
    /// Price, if known.
    pub price: Option<f64>,
}

/// A shopper's portrait.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Portrait {
    /// Dense user id.
    pub user: u32,
    /// Events per kind.
    pub events: BTreeMap<String, usize>,
    /// Days from the first to the last event.
    pub tenure_days: f64,
    /// Distinct orders (purchase sessions; purchase days where events have no session).
    pub orders: usize,
    /// Mean days between consecutive orders, from two orders on.
    pub days_between_orders: Option<f64>,
    /// Days from the last order to the last event in the whole log.
    pub days_since_last_order: Option<f64>,
    /// Categories by share of the shopper's item events (purchases weigh 3, carts 2, others 1).
    pub categories: Vec<(String, f64)>,
    /// Brands, likewise.
    pub brands: Vec<(String, f64)>,
    /// Mean price of what they bought, where prices are known.
    pub mean_price_bought: Option<f64>,
    /// Where that mean sits among all priced items: the share of items cheaper (0 to 1).
    pub price_percentile: Option<f64>,
    /// Events per hour of the day (UTC), 24 entries.
    pub hours: Vec<usize>,
    /// Events per weekday, Monday first, 7 entries.
    pub weekdays: Vec<usize>,
}

fn kind_weight(kind: EventKind) -> f64 {
    match kind {
        EventKind::Purchase => 3.0,
        EventKind::AddToCart => 2.0,
        EventKind::RemoveFromCart => 0.0,
        _ => 1.0,
    }
}

fn shares(counts: FxHashMap<&str, f64>, top: usize) -> Vec<(String, f64)> {
    let total: f64 = counts.values().sum();
    let mut list: Vec<(String, f64)> = counts
        .into_iter()
        .map(|(k, v)| (k.to_string(), v / total.max(1e-12)))
        .collect();
    list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    list.truncate(top);
    list
}

/// The portrait of `user`; `top` limits the category and brand lists.
pub fn portrait(log: &EventLog, items: &[ItemFacts], user: u32, top: usize) -> Portrait {
    let mine: Vec<_> = log.events().iter().filter(|e| e.user == user).collect();
    let mut events: BTreeMap<String, usize> = BTreeMap::new();
    let mut hours = vec![0usize; 24];
    let mut weekdays = vec![0usize; 7];
    let mut categories: FxHashMap<&str, f64> = FxHashMap::default();
    let mut brands: FxHashMap<&str, f64> = FxHashMap::default();
    let mut order_start: BTreeMap<u64, i64> = BTreeMap::new();
    let (mut spent, mut priced) = (0.0, 0.0);
    for e in &mine {
        *events.entry(e.kind.to_string()).or_default() += 1;
        let day = e.timestamp_ms.div_euclid(DAY_MS);
        hours[(e.timestamp_ms.rem_euclid(DAY_MS) / 3_600_000) as usize] += 1;
        // 1970-01-01 was a Thursday: day 0 is weekday 3 counting Monday as 0.
        weekdays[(day + 3).rem_euclid(7) as usize] += 1;
        let Some(facts) = e.item().and_then(|i| items.get(i.index())) else {
            continue;
        };
        let w = kind_weight(e.kind);
        if let Some(c) = &facts.category {
            *categories.entry(c).or_default() += w;
        }
        if let Some(b) = &facts.brand {
            *brands.entry(b).or_default() += w;
        }
        if e.kind == EventKind::Purchase {
            let key = if e.session != 0 {
                e.session
            } else {
                day as u64
            };
            let start = order_start.entry(key).or_insert(e.timestamp_ms);
            *start = (*start).min(e.timestamp_ms);
            if let Some(p) = facts.price {
                spent += p;
                priced += 1.0;
            }
        }
    }
    let mut starts: Vec<i64> = order_start.values().copied().collect();
    starts.sort_unstable();
    let first = mine.first().map_or(0, |e| e.timestamp_ms);
    let last = mine.last().map_or(0, |e| e.timestamp_ms);
    let log_end = log.events().last().map_or(0, |e| e.timestamp_ms);
    let mean_price = (priced > 0.0).then(|| spent / priced);
    let price_percentile = mean_price.map(|m| {
        let prices: Vec<f64> = items.iter().filter_map(|i| i.price).collect();
        prices.iter().filter(|&&p| p < m).count() as f64 / prices.len().max(1) as f64
    });
    Portrait {
        user,
        events,
        tenure_days: (last - first) as f64 / DAY_MS as f64,
        orders: starts.len(),
        days_between_orders: (starts.len() >= 2).then(|| {
            (starts[starts.len() - 1] - starts[0]) as f64
                / DAY_MS as f64
                / (starts.len() - 1) as f64
        }),
        days_since_last_order: starts.last().map(|&s| (log_end - s) as f64 / DAY_MS as f64),
        categories: shares(categories, top),
        brands: shares(brands, top),
        mean_price_bought: mean_price,
        price_percentile,
        hours,
        weekdays,
    }
}

/// How one item sells.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemStats {
    /// Dense item id.
    pub item: u32,
    /// Views.
    pub views: usize,
    /// Clicks.
    pub clicks: usize,
    /// Cart adds.
    pub carts: usize,
    /// Purchases.
    pub purchases: usize,
    /// Distinct buyers.
    pub buyers: usize,
    /// Share of buyers who bought it on two or more orders.
    pub repeat_buyer_share: f64,
    /// Purchases per view, where the item has views.
    pub purchases_per_view: Option<f64>,
    /// Purchases per cart add, where it has cart adds.
    pub purchases_per_cart: Option<f64>,
}

/// Statistics of every item with events, most purchased first.
pub fn item_stats(log: &EventLog) -> Vec<ItemStats> {
    let mut stats: FxHashMap<u32, ItemStats> = FxHashMap::default();
    let mut orders: FxHashMap<(u32, u32), FxHashSet<u64>> = FxHashMap::default();
    for e in log.events().iter().filter(|e| e.item().is_some()) {
        let s = stats.entry(e.item).or_insert(ItemStats {
            item: e.item,
            views: 0,
            clicks: 0,
            carts: 0,
            purchases: 0,
            buyers: 0,
            repeat_buyer_share: 0.0,
            purchases_per_view: None,
            purchases_per_cart: None,
        });
        match e.kind {
            EventKind::View => s.views += 1,
            EventKind::Click => s.clicks += 1,
            EventKind::AddToCart => s.carts += 1,
            EventKind::Purchase => {
                s.purchases += 1;
                let key = if e.session != 0 {
                    e.session
                } else {
                    e.timestamp_ms.div_euclid(DAY_MS) as u64
                };
                orders.entry((e.item, e.user)).or_default().insert(key);
            }
            _ => {}
        }
    }
    let mut repeaters: FxHashMap<u32, (usize, usize)> = FxHashMap::default();
    for ((item, _), set) in &orders {
        let r = repeaters.entry(*item).or_default();
        r.0 += 1;
        r.1 += usize::from(set.len() >= 2);
    }
    let mut list: Vec<ItemStats> = stats
        .into_values()
        .map(|mut s| {
            let (buyers, repeat) = repeaters.get(&s.item).copied().unwrap_or_default();
            s.buyers = buyers;
            s.repeat_buyer_share = repeat as f64 / buyers.max(1) as f64;
            s.purchases_per_view = (s.views > 0).then(|| s.purchases as f64 / s.views as f64);
            s.purchases_per_cart = (s.carts > 0).then(|| s.purchases as f64 / s.carts as f64);
            s
        })
        .collect();
    list.sort_by(|a, b| b.purchases.cmp(&a.purchases).then(a.item.cmp(&b.item)));
    list
}

/// How much more often two categories share a basket than chance would have it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Affinity {
    /// One category.
    pub a: String,
    /// The other.
    pub b: String,
    /// Baskets holding both.
    pub baskets: usize,
    /// Share of all baskets holding both.
    pub support: f64,
    /// Share of `a`'s baskets that also hold `b`.
    pub confidence_a_to_b: f64,
    /// Share of `b`'s baskets that also hold `a`.
    pub confidence_b_to_a: f64,
    /// support / (share holding a × share holding b); above 1, bought together more than by chance.
    pub lift: f64,
}

/// Category pairs seen together in at least `min_baskets` baskets, highest lift first.
/// `item_category[item]` names each item's category (none for items without one).
pub fn category_affinity(
    baskets: &[Vec<u32>],
    item_category: &[Option<String>],
    min_baskets: usize,
) -> Vec<Affinity> {
    let mut names: Vec<&str> = Vec::new();
    let mut index: FxHashMap<&str, usize> = FxHashMap::default();
    let mut single: Vec<usize> = Vec::new();
    let mut pairs: FxHashMap<(usize, usize), usize> = FxHashMap::default();
    for basket in baskets {
        let mut cats: Vec<usize> = basket
            .iter()
            .filter_map(|&i| item_category.get(i as usize)?.as_deref())
            .map(|name| {
                *index.entry(name).or_insert_with(|| {
                    names.push(name);
                    single.push(0);
                    names.len() - 1
                })
            })
            .collect();
        cats.sort_unstable();
        cats.dedup();
        for (k, &a) in cats.iter().enumerate() {
            single[a] += 1;
            for &b in &cats[k + 1..] {
                *pairs.entry((a, b)).or_default() += 1;
            }
        }
    }
    let n = baskets.len().max(1) as f64;
    let mut list: Vec<Affinity> = pairs
        .into_iter()
        .filter(|&(_, count)| count >= min_baskets)
        .map(|((a, b), count)| {
            let (sa, sb) = (single[a] as f64, single[b] as f64);
            Affinity {
                a: names[a].to_string(),
                b: names[b].to_string(),
                baskets: count,
                support: count as f64 / n,
                confidence_a_to_b: count as f64 / sa,
                confidence_b_to_a: count as f64 / sb,
                lift: count as f64 * n / (sa * sb),
            }
        })
        .collect();
    list.sort_by(|x, y| {
        y.lift
            .total_cmp(&x.lift)
            .then(x.a.cmp(&y.a))
            .then(x.b.cmp(&y.b))
    });
    list
}
