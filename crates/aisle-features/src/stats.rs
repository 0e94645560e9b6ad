//! Dataset statistics: what `aisle stats` prints.

use std::collections::BTreeMap;

use aisle_store::ReadStore;
use serde::Serialize;

use crate::{EventLog, InteractionMatrix, KindWeights, Result, SessionConfig, Sessions};

/// Count of one event kind.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct KindCount {
    /// Kind name.
    pub kind: String,
    /// Events of that kind.
    pub count: usize,
}

/// First and last event.
#[derive(Clone, Copy, Debug, Serialize, PartialEq)]
pub struct TimeSpan {
    /// First event, Unix milliseconds.
    pub first_ms: i64,
    /// Last event, Unix milliseconds.
    pub last_ms: i64,
    /// Length in days.
    pub days: f64,
}

/// Summary of a distribution of counts.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct DistributionStats {
    /// Mean.
    pub mean: f64,
    /// Median.
    pub median: f64,
    /// 90th percentile.
    pub p90: f64,
    /// Largest.
    pub max: f64,
}

impl DistributionStats {
    /// Summarises `values` (any order).
    pub fn of(mut values: Vec<f64>) -> Self {
        if values.is_empty() {
            return Self::default();
        }
        values.sort_by(f64::total_cmp);
        let n = values.len();
        let at = |q: f64| values[((q * (n - 1) as f64).round() as usize).min(n - 1)];
        Self {
            mean: values.iter().sum::<f64>() / n as f64,
            median: if n % 2 == 1 {
                values[n / 2]
            } else {
                (values[n / 2 - 1] + values[n / 2]) / 2.0
            },
            p90: at(0.9),
            max: values[n - 1],
        }
    }
}

/// How concentrated interactions are on few items.
#[derive(Clone, Copy, Debug, Default, Serialize, PartialEq)]
pub struct LongTailStats {
    /// Share of interactions on the most popular 1% of interacted items.
    pub top_1pct_share: f64,
    /// Share of interactions on the most popular 20% of interacted items.
    pub top_20pct_share: f64,
    /// Gini coefficient of item popularity (0 = even, 1 = one item has everything).
    pub gini: f64,
    /// Share of interacted items with at most 5 interactions.
    pub items_with_at_most_5: f64,
}

/// Everything `aisle stats` reports.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct DatasetStats {
    /// Users known.
    pub users: usize,
    /// Items known (the catalogue plus items seen only in events).
    pub items: usize,
    /// Events stored.
    pub events: usize,
    /// Events per kind, most frequent first.
    pub events_by_kind: Vec<KindCount>,
    /// First and last event, if any.
    pub time_span: Option<TimeSpan>,
    /// Users with at least one event.
    pub users_with_events: usize,
    /// Items with at least one event.
    pub items_with_events: usize,
    /// Distinct (user, item) pairs.
    pub interactions: usize,
    /// 1 − interactions / (users with events × items with events).
    pub sparsity: f64,
    /// Concentration of item popularity.
    pub long_tail: LongTailStats,
    /// Number of sessions (source ids, else 30-minute inactivity cuts).
    pub sessions: usize,
    /// Events per session.
    pub events_per_session: DistributionStats,
    /// Events per user with events.
    pub events_per_user: DistributionStats,
}

impl DatasetStats {
    /// Computes the statistics of a store's data.
    pub fn compute(store: &dyn ReadStore, log: &EventLog) -> Result<DatasetStats> {
        let counts = store.counts()?;
        let mut by_kind: BTreeMap<aisle_core::EventKind, usize> = BTreeMap::new();
        let mut per_user = vec![0usize; log.n_users()];
        for e in log.events() {
            *by_kind.entry(e.kind).or_insert(0) += 1;
            per_user[e.user as usize] += 1;
        }
        let mut events_by_kind = by_kind
            .into_iter()
            .map(|(kind, count)| {
                Ok(KindCount {
                    kind: store.kind_name(kind)?,
                    count,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        events_by_kind.sort_by(|a, b| b.count.cmp(&a.count).then(a.kind.cmp(&b.kind)));
        let time_span = match (log.events().first(), log.events().last()) {
            (Some(first), Some(last)) => Some(TimeSpan {
                first_ms: first.timestamp_ms,
                last_ms: last.timestamp_ms,
                days: (last.timestamp_ms - first.timestamp_ms) as f64 / 86_400_000.0,
            }),
            _ => None,
        };
        let matrix = InteractionMatrix::build(log, &KindWeights::uniform());
        let degrees = matrix.item_degrees();
        let mut popularity = vec![0f64; log.n_items()];
        for e in log.events() {
            if let Some(item) = e.item() {
                popularity[item.index()] += 1.0;
            }
        }
        let sessions = Sessions::build(log, &SessionConfig::default());
        let session_sizes = (0..sessions.len())
            .map(|s| sessions.events(s).len() as f64)
            .collect();
        let user_sizes = per_user
            .iter()
            .filter(|&&n| n > 0)
            .map(|&n| n as f64)
            .collect();
        Ok(DatasetStats {
            users: counts.users,
            items: counts.items,
            events: log.len(),
            events_by_kind,
            time_span,
            users_with_events: per_user.iter().filter(|&&n| n > 0).count(),
            items_with_events: degrees.iter().filter(|&&d| d > 0).count(),
            interactions: matrix.nnz(),
            sparsity: matrix.sparsity(),
            long_tail: long_tail(popularity),
            sessions: sessions.len(),
            events_per_session: DistributionStats::of(session_sizes),
            events_per_user: DistributionStats::of(user_sizes),
        })
    }
}

fn long_tail(popularity: Vec<f64>) -> LongTailStats {
    let mut counts: Vec<f64> = popularity.into_iter().filter(|&c| c > 0.0).collect();
    if counts.is_empty() {
        return LongTailStats::default();
    }
    counts.sort_by(|a, b| b.total_cmp(a));
    let n = counts.len();
    let total: f64 = counts.iter().sum();
    let share = |fraction: f64| {
        let k = ((n as f64 * fraction).ceil() as usize).clamp(1, n);
        counts[..k].iter().sum::<f64>() / total
    };
    // Gini over ascending values: sum_i (2i - n - 1) x_i / (n sum x), i = 1..n.
    let gini = counts
        .iter()
        .rev()
        .enumerate()
        .map(|(i, x)| (2.0 * (i as f64 + 1.0) - n as f64 - 1.0) * x)
        .sum::<f64>()
        / (n as f64 * total);
    LongTailStats {
        top_1pct_share: share(0.01),
        top_20pct_share: share(0.2),
        gini,
        items_with_at_most_5: counts.iter().filter(|&&c| c <= 5.0).count() as f64 / n as f64,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_of_known_values() {
        let d = DistributionStats::of(vec![4.0, 1.0, 3.0, 2.0]);
        assert_eq!(d.mean, 2.5);
        assert_eq!(d.median, 2.5);
        assert_eq!(d.max, 4.0);
    }

    #[test]
    fn gini_of_even_and_concentrated_popularity() {
        assert!(long_tail(vec![5.0; 10]).gini.abs() < 1e-12);
        // One of 4 items has everything: Gini = (n-1)/n = 0.75.
        let t = long_tail(vec![0.0, 0.0, 8.0, 0.0, 0.0]);
        assert!(
            (t.gini - 0.0).abs() < 1e-12,
            "a single interacted item is even among itself"
        );
        let t = long_tail(vec![1.0, 1.0, 1.0, 9.0]);
        // ascending 1,1,1,9: sum (2i-5)x = -3-1+1+27 = 24; / (4*12) = 0.5
        assert!((t.gini - 0.5).abs() < 1e-12, "{}", t.gini);
        assert!((t.top_20pct_share - 0.75).abs() < 1e-12);
    }
}
