//! Differentially private analytics: the funnel, cohort retention, RFM segments and best
//! sellers, each computed on per-user bounded data with exact discrete Laplace noise.
//!
//! What differs from the exact figures, and why:
//! - every user's contribution is bounded first (sessions in the funnel, items among the
//!   best sellers, purchases per item), so that one shopper moves each answer by a known
//!   amount;
//! - everything that decides *what* is shown is public or noisy: the funnel's steps are
//!   the caller's (which events a shop tracks is a fact of its integration, not of a
//!   shopper), cohorts are weeks of the calendar ending at the release's date (not at the
//!   data's first or last event, which one shopper can move), RFM scores use fixed
//!   thresholds (quintiles would let one shopper move many others across a boundary), and
//!   best sellers pass a noisy threshold, so an item only a few bought never appears.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use aisle_core::EventKind;
use aisle_features::EventLog;
use aisle_privacy::{Bounds, Noise, laplace_for, thresholded_counts};
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::behaviour::rfm_segment;
use crate::{Error, Result};

const DAY_MS: i64 = 86_400_000;

/// The kinds a private funnel may have as steps, in funnel order.
pub const FUNNEL_KINDS: [EventKind; 4] = [
    EventKind::View,
    EventKind::Click,
    EventKind::AddToCart,
    EventKind::Purchase,
];

/// How a private summary spends its ε and bounds each user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivateSettings {
    /// ε of one whole summary, split evenly over its four parts.
    pub epsilon: f64,
    /// δ of the best sellers' selection.
    pub delta: f64,
    /// Sessions of one user counted in the funnel.
    pub max_sessions_per_user: usize,
    /// Items of one user counted among the best sellers.
    pub max_items_per_user: usize,
    /// Purchases of one user counted per item.
    pub max_purchases_per_item: usize,
    /// Weekly cohorts shown, ending with the release's week.
    pub cohorts: usize,
    /// Best sellers shown (at most).
    pub top_items: usize,
}

impl Default for PrivateSettings {
    fn default() -> Self {
        PrivateSettings {
            epsilon: 0.5,
            delta: 1e-6,
            max_sessions_per_user: 3,
            max_items_per_user: 5,
            max_purchases_per_item: 3,
            cohorts: 12,
            top_items: 10,
        }
    }
}

impl PrivateSettings {
    /// Refuses settings that protect nothing.
    pub fn check(&self) -> Result<()> {
        let positive = [
            self.max_sessions_per_user,
            self.max_items_per_user,
            self.max_purchases_per_item,
            self.cohorts,
            self.top_items,
        ];
        let protects =
            self.epsilon.is_finite() && self.epsilon > 0.0 && self.delta > 0.0 && self.delta < 1e-2;
        if !protects || positive.contains(&0) {
            return Err(Error::InvalidSetting(
                "private analytics need epsilon > 0, delta in (0, 0.01) and bounds of at least 1"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// How one part of the summary was protected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PartStatement {
    /// Which part.
    pub part: String,
    /// ε it spent.
    pub epsilon: f64,
    /// The noise on each of its counts.
    pub noise: Noise,
    /// How far one user can move its counts (L1), after bounding.
    pub sensitivity: f64,
    /// How each user's contribution was bounded.
    pub bounding: String,
}

/// A cohort's noisy counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivateCohort {
    /// The cohort's week (weeks since 1970-01-01, a Thursday).
    pub week: i64,
    /// Noisy count of users whose first purchase fell in it.
    pub users: i64,
    /// Noisy count of them buying again `p` weeks later, for p = 1, 2, ...
    pub active_later: Vec<i64>,
}

/// A best seller's noisy counts.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivateTopItem {
    /// Dense item id.
    pub item: u32,
    /// Noisy distinct buyers.
    pub buyers: i64,
    /// Noisy purchases.
    pub purchases: i64,
}

/// The private summary.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PrivateSummary {
    /// Noisy sessions reaching each step.
    pub funnel: Vec<(String, i64)>,
    /// Weekly purchase cohorts, oldest first.
    pub cohorts: Vec<PrivateCohort>,
    /// Noisy customers per RFM segment (fixed thresholds).
    pub segments: BTreeMap<String, i64>,
    /// Best sellers that passed the threshold, most purchased first.
    pub top_items: Vec<PrivateTopItem>,
    /// The protection of each part.
    pub statement: Vec<PartStatement>,
    /// Total ε.
    pub epsilon: f64,
    /// Total δ.
    pub delta: f64,
}

/// RFM scores on fixed thresholds: recency in days, frequency in purchase days.
fn fixed_scores(recency_days: i64, purchase_days: usize) -> (u8, u8) {
    let r = match recency_days {
        ..=7 => 5,
        8..=30 => 4,
        31..=90 => 3,
        91..=180 => 2,
        _ => 1,
    };
    let f = match purchase_days {
        10.. => 5,
        6..=9 => 4,
        3..=5 => 3,
        2 => 2,
        _ => 1,
    };
    (r, f)
}

/// Every segment name [`rfm_segment`] gives, so each is released (zero or not).
fn segment_names() -> BTreeSet<&'static str> {
    (1..=5u8)
        .flat_map(|r| (1..=5u8).map(move |f| rfm_segment(r, f)))
        .collect()
}

fn noisy<R: Rng + ?Sized>(count: usize, noise: Noise, rng: &mut R) -> i64 {
    count as i64 + noise.sample(rng)
}

/// The summary of `log` as of `now_ms` (public: the release's time), with the funnel over
/// `steps` (kinds of [`FUNNEL_KINDS`], in order) and noise from `rng`.
pub fn private_summary<R: Rng + ?Sized>(
    log: &EventLog,
    steps: &[EventKind],
    now_ms: i64,
    settings: &PrivateSettings,
    rng: &mut R,
) -> Result<PrivateSummary> {
    settings.check()?;
    if steps.is_empty() || steps.iter().any(|k| !FUNNEL_KINDS.contains(k)) {
        return Err(Error::InvalidSetting(
            "a private funnel's steps are view, click, add_to_cart and purchase".into(),
        ));
    }
    let part_epsilon = settings.epsilon / 4.0;
    let mut statement = Vec::new();
    let events = log.events();

    // The funnel: each user's sessions bounded, each session adds one to every step it
    // reaches.
    let mut progress: HashMap<(u32, u64), usize> = HashMap::new();
    for e in events {
        let state = progress.entry((e.user, e.session)).or_insert(0);
        if *state < steps.len() && e.kind == steps[*state] {
            *state += 1;
        }
    }
    let mut sessions: Vec<(u32, u64)> = progress.keys().copied().collect();
    sessions.sort_unstable();
    let session_bounds = Bounds {
        max_partitions: settings.max_sessions_per_user,
        max_rows: 1,
    };
    let kept = session_bounds.apply(&sessions, rng);
    let mut counts = vec![0usize; steps.len()];
    for key in &kept {
        for c in counts.iter_mut().take(progress[key]) {
            *c += 1;
        }
    }
    let sensitivity = (settings.max_sessions_per_user * steps.len()) as f64;
    let noise = laplace_for(part_epsilon, sensitivity);
    let funnel = steps
        .iter()
        .zip(counts)
        .map(|(k, c)| (k.to_string(), noisy(c, noise, rng)))
        .collect();
    statement.push(PartStatement {
        part: "funnel".into(),
        epsilon: part_epsilon,
        noise,
        sensitivity,
        bounding: format!(
            "at most {} sessions per user, each counted once per step",
            settings.max_sessions_per_user
        ),
    });

    // Purchases by user: the days and weeks they bought, for cohorts and RFM.
    let week = |t: i64| t.div_euclid(7 * DAY_MS);
    let mut bought: BTreeMap<u32, (BTreeSet<i64>, BTreeSet<i64>, i64)> = BTreeMap::new();
    for e in events.iter().filter(|e| e.kind == EventKind::Purchase) {
        if e.timestamp_ms > now_ms {
            continue;
        }
        let b = bought
            .entry(e.user)
            .or_insert_with(|| (BTreeSet::new(), BTreeSet::new(), i64::MIN));
        b.0.insert(week(e.timestamp_ms));
        b.1.insert(e.timestamp_ms.div_euclid(DAY_MS));
        b.2 = b.2.max(e.timestamp_ms);
    }

    // Cohorts: a user is in the cohort of their first purchase week and adds one to each
    // later week they bought in.
    let last = week(now_ms);
    let first_week = last - settings.cohorts as i64 + 1;
    let mut table: BTreeMap<i64, (usize, Vec<usize>)> = (first_week..=last)
        .map(|w| (w, (0, vec![0; (last - w) as usize])))
        .collect();
    for (weeks, _, _) in bought.values() {
        let Some(&first) = weeks.iter().next() else {
            continue;
        };
        if let Some((users, later)) = table.get_mut(&first) {
            *users += 1;
            for w in weeks.iter().filter(|&&w| w > first && w <= last) {
                later[(w - first - 1) as usize] += 1;
            }
        }
    }
    let sensitivity = settings.cohorts as f64;
    let noise = laplace_for(part_epsilon, sensitivity);
    let cohorts = table
        .into_iter()
        .map(|(week, (users, later))| PrivateCohort {
            week,
            users: noisy(users, noise, rng),
            active_later: later.into_iter().map(|c| noisy(c, noise, rng)).collect(),
        })
        .collect();
    statement.push(PartStatement {
        part: "cohorts".into(),
        epsilon: part_epsilon,
        noise,
        sensitivity,
        bounding: format!(
            "one cohort per user, counted once in each of the {} later weeks at most",
            settings.cohorts - 1
        ),
    });

    // RFM segments on fixed thresholds: each buyer in exactly one.
    let mut segments: BTreeMap<String, usize> = segment_names()
        .into_iter()
        .map(|s| (s.to_string(), 0))
        .collect();
    for (_, days, latest) in bought.values() {
        let recency = (now_ms - latest).div_euclid(DAY_MS);
        let (r, f) = fixed_scores(recency, days.len());
        *segments.entry(rfm_segment(r, f).to_string()).or_default() += 1;
    }
    let noise = laplace_for(part_epsilon, 1.0);
    let segments = segments
        .into_iter()
        .map(|(s, c)| (s, noisy(c, noise, rng)))
        .collect();
    statement.push(PartStatement {
        part: "segments".into(),
        epsilon: part_epsilon,
        noise,
        sensitivity: 1.0,
        bounding:
            "one segment per buyer (recency 7/30/90/180 days, frequency 2/3/6/10 purchase days)"
                .into(),
    });

    // Best sellers: distinct buyers per item, thresholded (half the part's ε), then
    // purchases of the items released (the other half).
    // Every purchase row, repeats included: bounding then keeps each user's most bought
    // items, and with one row per item each kept item counts that user once.
    let purchase_rows: Vec<(u32, u32)> = events
        .iter()
        .filter(|e| e.kind == EventKind::Purchase && e.item().is_some())
        .map(|e| (e.user, e.item))
        .collect();
    let buyer_bounds = Bounds {
        max_partitions: settings.max_items_per_user,
        max_rows: 1,
    };
    let kept = buyer_bounds.apply(&purchase_rows, rng);
    let selected = thresholded_counts(&kept, buyer_bounds, part_epsilon / 2.0, settings.delta, rng);
    let purchase_bounds = Bounds {
        max_partitions: settings.max_items_per_user,
        max_rows: settings.max_purchases_per_item,
    };
    let mut purchases: HashMap<u32, usize> = HashMap::new();
    for (_, item) in purchase_bounds.apply(&purchase_rows, rng) {
        *purchases.entry(item).or_default() += 1;
    }
    let purchase_noise = laplace_for(part_epsilon / 2.0, purchase_bounds.count_l1());
    let mut top_items: Vec<PrivateTopItem> = selected
        .counts
        .iter()
        .map(|&(item, buyers)| PrivateTopItem {
            item,
            buyers,
            purchases: noisy(
                purchases.get(&item).copied().unwrap_or(0),
                purchase_noise,
                rng,
            ),
        })
        .collect();
    top_items.sort_by(|a, b| b.purchases.cmp(&a.purchases).then(a.item.cmp(&b.item)));
    top_items.truncate(settings.top_items);
    statement.push(PartStatement {
        part: "top_items (buyers, and which items appear)".into(),
        epsilon: part_epsilon / 2.0,
        noise: selected.noise,
        sensitivity: buyer_bounds.count_l1(),
        bounding: format!(
            "at most {} items per user; an item is shown only when its noisy buyer count exceeds {}",
            settings.max_items_per_user, selected.threshold
        ),
    });
    statement.push(PartStatement {
        part: "top_items (purchases)".into(),
        epsilon: part_epsilon / 2.0,
        noise: purchase_noise,
        sensitivity: purchase_bounds.count_l1(),
        bounding: format!(
            "at most {} items per user and {} purchases of each",
            settings.max_items_per_user, settings.max_purchases_per_item
        ),
    });
    Ok(PrivateSummary {
        funnel,
        cohorts,
        segments,
        top_items,
        statement,
        epsilon: settings.epsilon,
        delta: settings.delta,
    })
}
