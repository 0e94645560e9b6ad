//! Conversion funnels, cohort retention and RFM segmentation.

use std::collections::BTreeMap;

use aisle_core::EventKind;
use aisle_features::{EventLog, Interaction};
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::{Error, Result};

const DAY_MS: i64 = 86_400_000;

/// What a funnel follows through its steps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FunnelUnit {
    /// Each session separately (a visit converts or not).
    Session,
    /// Each user over the whole window.
    User,
}

/// One step's count in a funnel.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FunnelStep {
    /// The step's event kind.
    pub kind: String,
    /// Units that reached this step, having passed every earlier one in order.
    pub count: usize,
    /// Share of the previous step's units (1 for the first).
    pub from_previous: f64,
    /// Share of the first step's units.
    pub from_first: f64,
}

/// The shop funnel the log can show: view, click, add_to_cart and purchase, those of them
/// the log has events of, in that order.
pub fn default_funnel_steps(log: &EventLog) -> Vec<EventKind> {
    let mut present = [false; 4];
    let steps = [
        EventKind::View,
        EventKind::Click,
        EventKind::AddToCart,
        EventKind::Purchase,
    ];
    for e in log.events() {
        if let Some(k) = steps.iter().position(|s| *s == e.kind) {
            present[k] = true;
        }
    }
    steps
        .into_iter()
        .zip(present)
        .filter(|(_, p)| *p)
        .map(|(s, _)| s)
        .collect()
}

/// An ordered funnel: a unit reaches step k when it has events of steps 1..k in that time
/// order (other events in between are allowed). Events outside `[from_ms, to_ms)` are ignored.
pub fn funnel(
    log: &EventLog,
    steps: &[EventKind],
    unit: FunnelUnit,
    from_ms: i64,
    to_ms: i64,
    include_user: &dyn Fn(u32) -> bool,
) -> Result<Vec<FunnelStep>> {
    if steps.is_empty() {
        return Err(Error::InvalidSetting(
            "a funnel needs at least one step".into(),
        ));
    }
    let mut progress: FxHashMap<(u32, u64), usize> = FxHashMap::default();
    // The log is in time order, so each unit's events arrive in order.
    for e in log.events() {
        if e.timestamp_ms < from_ms || e.timestamp_ms >= to_ms || !include_user(e.user) {
            continue;
        }
        let key = match unit {
            FunnelUnit::Session => (e.user, e.session),
            FunnelUnit::User => (e.user, 0),
        };
        let state = progress.entry(key).or_insert(0);
        if *state < steps.len() && e.kind == steps[*state] {
            *state += 1;
        }
    }
    let mut counts = vec![0usize; steps.len()];
    for &state in progress.values() {
        for c in counts.iter_mut().take(state) {
            *c += 1;
        }
    }
    let first = counts[0].max(1) as f64;
    Ok(steps
        .iter()
        .enumerate()
        .map(|(k, kind)| FunnelStep {
            kind: kind.to_string(),
            count: counts[k],
            from_previous: if k == 0 {
                1.0
            } else {
                counts[k] as f64 / counts[k - 1].max(1) as f64
            },
            from_first: counts[k] as f64 / first,
        })
        .collect())
}

/// Cohort retention: users grouped by the period of their first `kind` event; for each
/// later period, the share of the cohort with a `kind` event in it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cohort {
    /// The cohort's period (index since the first period of the data).
    pub period: i64,
    /// Users whose first event fell in it.
    pub users: usize,
    /// `retention[p]`: share of the cohort active `p` periods later (`retention[0]` = 1).
    pub retention: Vec<f64>,
}

/// Retention by cohort, periods of `period_days` days counted from the first event.
pub fn cohorts(log: &EventLog, kind: Option<EventKind>, period_days: i64) -> Result<Vec<Cohort>> {
    if period_days <= 0 {
        return Err(Error::InvalidSetting(
            "the cohort period must be at least one day".into(),
        ));
    }
    let relevant = |e: &&Interaction| kind.is_none_or(|k| e.kind == k);
    let Some(start) = log
        .events()
        .iter()
        .filter(relevant)
        .map(|e| e.timestamp_ms)
        .min()
    else {
        return Ok(Vec::new());
    };
    let period = |t: i64| (t - start).div_euclid(period_days * DAY_MS);
    let mut active: FxHashMap<u32, Vec<i64>> = FxHashMap::default();
    for e in log.events().iter().filter(relevant) {
        active
            .entry(e.user)
            .or_default()
            .push(period(e.timestamp_ms));
    }
    let last = log
        .events()
        .iter()
        .filter(relevant)
        .map(|e| period(e.timestamp_ms))
        .max()
        .unwrap_or(0);
    let mut by_cohort: BTreeMap<i64, (usize, Vec<usize>)> = BTreeMap::new();
    for periods in active.values_mut() {
        periods.sort_unstable();
        periods.dedup();
        let first = periods[0];
        let entry = by_cohort
            .entry(first)
            .or_insert_with(|| (0, vec![0; (last - first + 1) as usize]));
        entry.0 += 1;
        for p in periods.iter() {
            entry.1[(p - first) as usize] += 1;
        }
    }
    Ok(by_cohort
        .into_iter()
        .map(|(period, (users, counts))| Cohort {
            period,
            users,
            retention: counts.iter().map(|&c| c as f64 / users as f64).collect(),
        })
        .collect())
}

/// One customer's recency, frequency and monetary value, their 1–5 scores and segment.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rfm {
    /// Dense user id.
    pub user: u32,
    /// Days from the last purchase to the reference time.
    pub recency_days: f64,
    /// Purchase days.
    pub frequency: usize,
    /// Total spend (or units, where prices are unknown).
    pub monetary: f64,
    /// Quintile scores, 5 best (most recent, most frequent, highest spend).
    pub r: u8,
    /// See `r`.
    pub f: u8,
    /// See `r`.
    pub m: u8,
    /// Segment name from the R and F scores.
    pub segment: &'static str,
}

/// The usual RFM segments from recency and frequency scores.
pub fn rfm_segment(r: u8, f: u8) -> &'static str {
    if r >= 4 && f >= 4 {
        "champions"
    } else if r >= 3 && f >= 3 {
        "loyal"
    } else if r >= 4 && f == 1 {
        "new"
    } else if r >= 3 {
        "promising"
    } else if f >= 4 {
        "cannot lose"
    } else if f >= 2 {
        "at risk"
    } else {
        "lost"
    }
}

/// Score 1–5 by quintile of `values` (higher value → higher score when `higher_is_better`;
/// for recency, where lower is better, the score is reversed after ranking).
fn quintile_scores(values: &[f64], higher_is_better: bool) -> Vec<u8> {
    let mut sorted: Vec<f64> = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    values
        .iter()
        .map(|&v| {
            // Share of customers strictly below v: ties share the lower score.
            let rank = sorted.partition_point(|&x| x < v) as f64 / n as f64;
            let score = ((rank * 5.0).floor() as u8 + 1).min(5);
            if higher_is_better { score } else { 6 - score }
        })
        .collect()
}

/// RFM for every customer with a purchase: `purchases` are (user, time ms, amount).
pub fn rfm(purchases: impl IntoIterator<Item = (u32, i64, f64)>, reference_ms: i64) -> Vec<Rfm> {
    let mut by_user: BTreeMap<u32, (i64, Vec<i64>, f64)> = BTreeMap::new();
    for (user, time, amount) in purchases {
        let entry = by_user.entry(user).or_insert((i64::MIN, Vec::new(), 0.0));
        entry.0 = entry.0.max(time);
        entry.1.push(time.div_euclid(DAY_MS));
        entry.2 += amount;
    }
    let rows: Vec<(u32, f64, usize, f64)> = by_user
        .into_iter()
        .map(|(user, (last, mut days, spend))| {
            days.sort_unstable();
            days.dedup();
            (
                user,
                (reference_ms - last) as f64 / DAY_MS as f64,
                days.len(),
                spend,
            )
        })
        .collect();
    let r = quintile_scores(&rows.iter().map(|x| x.1).collect::<Vec<_>>(), false);
    let f = quintile_scores(&rows.iter().map(|x| x.2 as f64).collect::<Vec<_>>(), true);
    let m = quintile_scores(&rows.iter().map(|x| x.3).collect::<Vec<_>>(), true);
    rows.iter()
        .enumerate()
        .map(|(i, &(user, recency_days, frequency, monetary))| Rfm {
            user,
            recency_days,
            frequency,
            monetary,
            r: r[i],
            f: f[i],
            m: m[i],
            segment: rfm_segment(r[i], f[i]),
        })
        .collect()
}
