//! Contribution bounding: how much one user can move an answer, made finite before any
//! noise is added (as PipelineDP and Privacy on Beam do). Without it a user with a
//! thousand purchases moves a count by a thousand and no calibrated noise hides them.

use std::collections::{BTreeMap, HashMap};
use std::hash::Hash;

use rand::Rng;
use rand::seq::SliceRandom;

use crate::{Cost, Noise};

/// At most `max_partitions` partitions per user and `max_rows` rows of theirs in each.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Bounds {
    /// Partitions (items, categories, cohort cells...) one user may add to.
    pub max_partitions: usize,
    /// Rows one user may add to one partition.
    pub max_rows: usize,
}

impl Bounds {
    /// How far one user can move the vector of per-partition counts, in L1.
    pub fn count_l1(&self) -> f64 {
        (self.max_partitions * self.max_rows) as f64
    }

    /// How far one user can move one partition's count.
    pub fn count_linf(&self) -> f64 {
        self.max_rows as f64
    }

    /// Keeps at most the bounded rows of each user: the `max_partitions` partitions they have
    /// most rows in (ties broken at random, so no partition is favoured by its name) and the
    /// first `max_rows` rows of each, in the order given. Returns the rows kept, in the order
    /// given. The choice depends on the user's own rows alone, so it keeps the bound: adding
    /// or removing one user changes only that user's kept rows.
    pub fn apply<P, R>(&self, rows: &[(u32, P)], rng: &mut R) -> Vec<(u32, P)>
    where
        P: Clone + Eq + Hash + Ord,
        R: Rng + ?Sized,
    {
        let mut rows_in: HashMap<u32, HashMap<P, usize>> = HashMap::new();
        for (user, p) in rows {
            *rows_in
                .entry(*user)
                .or_default()
                .entry(p.clone())
                .or_default() += 1;
        }
        let mut partitions: HashMap<u32, Vec<(usize, P)>> = rows_in
            .into_iter()
            .map(|(u, m)| (u, m.into_iter().map(|(p, c)| (c, p)).collect()))
            .collect();
        // Sorted users, so a seeded generator gives the same choice every run.
        let mut users: Vec<u32> = partitions.keys().copied().collect();
        users.sort_unstable();
        let mut kept: HashMap<(u32, P), usize> = HashMap::new();
        for user in users {
            let Some(mine) = partitions.get_mut(&user) else {
                continue;
            };
            mine.sort();
            mine.shuffle(rng);
            // Stable: ties keep their shuffled order.
            mine.sort_by_key(|(count, _)| std::cmp::Reverse(*count));
            for (_, p) in mine.iter().take(self.max_partitions) {
                kept.insert((user, p.clone()), 0);
            }
        }
        let mut out = Vec::new();
        for (user, p) in rows {
            if let Some(used) = kept.get_mut(&(*user, p.clone()))
                && *used < self.max_rows
            {
                *used += 1;
                out.push((*user, p.clone()));
            }
        }
        out
    }
}

/// A noisy count per partition, with only partitions whose noisy count clears a threshold
/// released, so that a value only a few users have never appears (rare searches, rare
/// items).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Thresholded<P> {
    /// Released partitions and their noisy counts, largest first.
    pub counts: Vec<(P, i64)>,
    /// The noise added to each count.
    pub noise: Noise,
    /// Counts at or below it were withheld.
    pub threshold: i64,
    /// What the release cost (ε) and its δ: the chance that a partition of one user's
    /// alone is released.
    pub cost: Cost,
    /// The δ.
    pub delta: f64,
}

/// Counts bounded rows per partition and releases them with discrete Laplace noise and
/// Laplace thresholding: ε for the counts, and δ for the partitions' selection.
///
/// A partition only one user touched has a true count of at most `max_rows`; the chance
/// that its noisy count exceeds `max_rows + b ln(m / (2δ))` is below δ/m, and one user has at
/// most m partitions, so the chance any of theirs appears is below δ.
pub fn thresholded_counts<P, R>(
    bounded_rows: &[(u32, P)],
    bounds: Bounds,
    epsilon: f64,
    delta: f64,
    rng: &mut R,
) -> Thresholded<P>
where
    P: Clone + Ord,
    R: Rng + ?Sized,
{
    let noise = crate::laplace_for(epsilon, bounds.count_l1());
    let Noise::Laplace { scale } = noise else {
        unreachable!("laplace_for gives Laplace noise")
    };
    let m = bounds.max_partitions as f64;
    let threshold = (bounds.max_rows as f64 + scale * (m / (2.0 * delta)).ln()).ceil() as i64;
    let mut counts: BTreeMap<P, i64> = BTreeMap::new();
    for (_, p) in bounded_rows {
        *counts.entry(p.clone()).or_default() += 1;
    }
    let mut released: Vec<(P, i64)> = counts
        .into_iter()
        .map(|(p, c)| (p, c + noise.sample(rng)))
        .filter(|(_, c)| *c > threshold)
        .collect();
    released.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Thresholded {
        counts: released,
        noise,
        threshold,
        cost: Cost { epsilon, rho: 0.0 },
        delta,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn bounding_caps_partitions_and_rows_per_user() {
        let mut rows = Vec::new();
        for p in 0..10u32 {
            for _ in 0..5 {
                rows.push((7u32, p));
            }
        }
        // Partition 9 has the most rows of user 7: it is always among those kept.
        rows.push((7, 9));
        rows.push((8, 3));
        let bounds = Bounds {
            max_partitions: 3,
            max_rows: 2,
        };
        let kept = bounds.apply(&rows, &mut StdRng::seed_from_u64(1));
        let mine: Vec<_> = kept.iter().filter(|(u, _)| *u == 7).collect();
        assert_eq!(mine.len(), 6);
        let mut parts: Vec<u32> = mine.iter().map(|(_, p)| *p).collect();
        parts.dedup();
        assert_eq!(parts.len(), 3);
        assert!(parts.contains(&9));
        assert!(kept.contains(&(8, 3)));
    }

    #[test]
    fn a_partition_of_one_user_is_withheld() {
        // 200 users each in partition 0; one user alone in partition 1.
        let mut rows: Vec<(u32, u32)> = (0..200).map(|u| (u, 0)).collect();
        rows.push((500, 1));
        let bounds = Bounds {
            max_partitions: 1,
            max_rows: 1,
        };
        let mut rng = StdRng::seed_from_u64(2);
        let mut shown_rare = 0;
        for _ in 0..2000 {
            let t = thresholded_counts(&rows, bounds, 1.0, 1e-3, &mut rng);
            assert!(t.counts.iter().any(|(p, _)| *p == 0));
            shown_rare += t.counts.iter().filter(|(p, _)| *p == 1).count();
        }
        // δ = 1e-3 over 2000 releases: about 2 expected at most.
        assert!(
            shown_rare <= 10,
            "the rare partition appeared {shown_rare} times"
        );
    }
}
