//! Online experiments: sticky traffic splits with intervals on the reward difference, and
//! team-draft interleaving (Radlinski, Kurup and Joachims, 2008) to compare two rankings on
//! the same users.

use rand::Rng;
use serde::Serialize;

use crate::rollout::ArmStats;
use crate::stats::normal_quantile;

/// A sticky split of users into arms by a salted hash of the user id.
#[derive(Debug, Clone, Serialize)]
pub struct Split {
    salt: String,
    cumulative: Vec<f64>,
}

impl Split {
    /// Arms with these traffic shares (normalised), for experiment `salt`.
    pub fn new(salt: &str, shares: &[f64]) -> Self {
        let total: f64 = shares.iter().sum();
        let mut acc = 0.0;
        let cumulative = shares
            .iter()
            .map(|s| {
                acc += s / total;
                acc
            })
            .collect();
        Self {
            salt: salt.to_owned(),
            cumulative,
        }
    }

    /// The arm of `user`: the same user always gets the same arm.
    pub fn assign(&self, user: &str) -> usize {
        let u = (fnv1a(self.salt.as_bytes(), user.as_bytes()) >> 11) as f64 / (1u64 << 53) as f64;
        self.cumulative
            .iter()
            .position(|&c| u < c)
            .unwrap_or(self.cumulative.len().saturating_sub(1))
    }
}

/// FNV-1a over the salt, a separator and the user: stable across builds and platforms
/// (std's hasher is not), which a sticky split needs; written here because it is six lines.
fn fnv1a(salt: &[u8], user: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in salt.iter().chain(b"\x1f").chain(user) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    // A final avalanche, so nearby ids spread over the unit interval.
    h ^= h >> 33;
    h = h.wrapping_mul(0xff51_afd7_ed55_8ccd);
    h ^ (h >> 33)
}

/// A difference of two arms' mean rewards with its normal interval.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Comparison {
    /// `mean(a) - mean(b)`.
    pub difference: f64,
    /// Lower end of the interval.
    pub low: f64,
    /// Upper end.
    pub high: f64,
}

/// Welch's interval on `mean(a) - mean(b)` at level `1 - alpha`.
pub fn compare_means(a: &ArmStats, b: &ArmStats, alpha: f64) -> Comparison {
    let difference = a.mean() - b.mean();
    let se = (a.variance() / a.n.max(1) as f64 + b.variance() / b.n.max(1) as f64).sqrt();
    let z = normal_quantile(1.0 - alpha / 2.0);
    Comparison {
        difference,
        low: difference - z * se,
        high: difference + z * se,
    }
}

/// Which ranker contributed an interleaved item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Team {
    /// The first ranker.
    A,
    /// The second ranker.
    B,
}

/// Team-draft interleaving of two rankings into one list of `k`: in each round a coin decides
/// which team picks first; each team adds its highest-ranked item not yet in the list.
pub fn team_draft(a: &[u32], b: &[u32], k: usize, rng: &mut impl Rng) -> Vec<(u32, Team)> {
    let mut out: Vec<(u32, Team)> = Vec::with_capacity(k);
    let (mut count_a, mut count_b) = (0usize, 0usize);
    let next = |list: &[u32], out: &[(u32, Team)]| {
        list.iter()
            .copied()
            .find(|i| !out.iter().any(|(o, _)| o == i))
    };
    while out.len() < k {
        let a_first = count_a < count_b || (count_a == count_b && rng.random::<bool>());
        let (team, list) = if a_first { (Team::A, a) } else { (Team::B, b) };
        let pick = next(list, &out).or_else(|| next(if a_first { b } else { a }, &out));
        let Some(item) = pick else { break };
        out.push((item, team));
        if team == Team::A {
            count_a += 1;
        } else {
            count_b += 1;
        }
    }
    out
}

/// The interleaving outcome of one impression: which team's items got more clicks.
pub fn credit(list: &[(u32, Team)], clicked: &[bool]) -> Option<Team> {
    let (mut a, mut b) = (0, 0);
    for ((_, team), &c) in list.iter().zip(clicked) {
        if c {
            match team {
                Team::A => a += 1,
                Team::B => b += 1,
            }
        }
    }
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => Some(Team::A),
        std::cmp::Ordering::Less => Some(Team::B),
        std::cmp::Ordering::Equal => None,
    }
}

/// Whether wins of A over B are significant (a two-sided sign test, normal approximation).
pub fn sign_test(wins_a: u64, wins_b: u64, alpha: f64) -> bool {
    let n = (wins_a + wins_b) as f64;
    if n == 0.0 {
        return false;
    }
    let z = (wins_a as f64 - n / 2.0) / (n / 4.0).sqrt();
    z > normal_quantile(1.0 - alpha / 2.0)
}

/// A simulated comparison of two rankers (a simulation, not data): items with
/// attractiveness drawn once from a seeded generator, clicks from a position-based model,
/// ranker A ordering by attractiveness plus small noise, ranker B by attractiveness plus
/// more noise (the planted worse one).
#[derive(Debug, Clone, Serialize)]
pub struct PowerStudy {
    /// Items to rank.
    pub items: usize,
    /// Slots shown.
    pub slots: usize,
    /// Examination probability of each slot (the position bias).
    pub examination: Vec<f64>,
    /// Noise of ranker A's scores (per user).
    pub noise_a: f64,
    /// Noise of ranker B's scores.
    pub noise_b: f64,
    /// Shoppers differ in how much they click: each impression's user multiplies every click
    /// chance by a Gamma(shape, 1/shape) activity (mean 1; smaller shapes, more spread).
    pub activity_shape: f64,
    /// Repetitions per sample size.
    pub trials: usize,
    /// Confidence level of each test.
    pub alpha: f64,
}

impl Default for PowerStudy {
    fn default() -> Self {
        Self {
            items: 100,
            slots: 5,
            examination: vec![1.0, 0.7, 0.5, 0.35, 0.25],
            noise_a: 0.05,
            noise_b: 0.12,
            activity_shape: 0.5,
            trials: 200,
            alpha: 0.05,
        }
    }
}

/// How often each method detects the better ranker at one sample size.
#[derive(Debug, Clone, Serialize)]
pub struct PowerRow {
    /// Impressions per trial (A/B: split between the arms; interleaving: all interleaved).
    pub impressions: usize,
    /// Share of trials where the A/B test found A better at the level.
    pub ab_power: f64,
    /// Share of trials where interleaving found A better.
    pub interleaving_power: f64,
}

impl PowerStudy {
    /// Runs every trial at each of `sizes`.
    pub fn run(&self, sizes: &[usize], seed: u64) -> Vec<PowerRow> {
        use rand::SeedableRng;
        use rand_distr::{Distribution, Gamma, Normal};
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
        // Attractiveness: mostly low, a few strong items (a long tail).
        let attractiveness: Vec<f64> = (0..self.items)
            .map(|_| 0.02 + 0.4 * rng.random::<f64>().powi(3))
            .collect();
        let rank = |noise: f64, rng: &mut rand::rngs::StdRng| -> Vec<u32> {
            let normal = Normal::new(0.0, noise)
                .unwrap_or_else(|_| Normal::new(0.0, 1.0).expect("unit normal"));
            let mut scored: Vec<(f64, u32)> = attractiveness
                .iter()
                .enumerate()
                .map(|(i, &a)| (a + normal.sample(rng), i as u32))
                .collect();
            scored.sort_by(|x, y| y.0.total_cmp(&x.0));
            scored
                .into_iter()
                .take(self.slots)
                .map(|(_, i)| i)
                .collect()
        };
        let activity = Gamma::new(self.activity_shape, 1.0 / self.activity_shape)
            .unwrap_or_else(|_| Gamma::new(1.0, 1.0).expect("the unit gamma"));
        let clicks = |list: &[u32], rng: &mut rand::rngs::StdRng| -> Vec<bool> {
            let m: f64 = activity.sample(rng);
            list.iter()
                .enumerate()
                .map(|(k, &i)| {
                    rng.random::<f64>()
                        < m * self.examination[k.min(self.examination.len() - 1)]
                            * attractiveness[i as usize]
                })
                .collect()
        };
        sizes
            .iter()
            .map(|&n| {
                let (mut ab_hits, mut il_hits) = (0, 0);
                for _ in 0..self.trials {
                    let (mut a, mut b) = (ArmStats::default(), ArmStats::default());
                    for u in 0..n {
                        let (list, arm) = if u % 2 == 0 {
                            (rank(self.noise_a, &mut rng), &mut a)
                        } else {
                            (rank(self.noise_b, &mut rng), &mut b)
                        };
                        let c = clicks(&list, &mut rng);
                        arm.add(c.iter().filter(|&&x| x).count() as f64);
                    }
                    if compare_means(&a, &b, self.alpha).low > 0.0 {
                        ab_hits += 1;
                    }
                    let (mut wins_a, mut wins_b) = (0, 0);
                    for _ in 0..n {
                        let (la, lb) = (rank(self.noise_a, &mut rng), rank(self.noise_b, &mut rng));
                        let list = team_draft(&la, &lb, self.slots, &mut rng);
                        let items: Vec<u32> = list.iter().map(|(i, _)| *i).collect();
                        match credit(&list, &clicks(&items, &mut rng)) {
                            Some(Team::A) => wins_a += 1,
                            Some(Team::B) => wins_b += 1,
                            None => {}
                        }
                    }
                    if sign_test(wins_a, wins_b, self.alpha) {
                        il_hits += 1;
                    }
                }
                PowerRow {
                    impressions: n,
                    ab_power: f64::from(ab_hits) / self.trials as f64,
                    interleaving_power: f64::from(il_hits) / self.trials as f64,
                }
            })
            .collect()
    }
}

/// The smallest sample size whose power reaches `target`, if any.
pub fn needed(rows: &[PowerRow], target: f64, power: impl Fn(&PowerRow) -> f64) -> Option<usize> {
    rows.iter()
        .find(|r| power(r) >= target)
        .map(|r| r.impressions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    #[test]
    fn splits_are_sticky_and_follow_the_shares() {
        let split = Split::new("exp-1", &[0.8, 0.2]);
        let n = 50_000;
        let in_b = (0..n)
            .filter(|u| split.assign(&format!("u{u}")) == 1)
            .count();
        assert!((in_b as f64 / f64::from(n) - 0.2).abs() < 0.01, "{in_b}");
        assert!((0..100).all(|u| split.assign(&format!("u{u}")) == split.assign(&format!("u{u}"))));
        let other = Split::new("exp-2", &[0.8, 0.2]);
        let same = (0..2_000)
            .filter(|u| split.assign(&format!("u{u}")) == other.assign(&format!("u{u}")))
            .count();
        assert!(same < 1_900, "salts must decorrelate experiments: {same}");
    }

    /// The planted better ranker is found with fewer interleaved impressions than an A/B test
    /// needs for the same power.
    #[test]
    fn interleaving_needs_fewer_impressions_than_ab() {
        let study = PowerStudy {
            trials: 40,
            items: 30,
            ..Default::default()
        };
        let rows = study.run(&[250, 500, 1_000, 2_000, 4_000], 17);
        let il =
            needed(&rows, 0.8, |r| r.interleaving_power).expect("interleaving reaches 80% power");
        let ab = needed(&rows, 0.8, |r| r.ab_power).unwrap_or(usize::MAX);
        assert!(il < ab, "interleaving {il} vs A/B {ab}: {rows:?}");
    }

    #[test]
    fn team_draft_is_fair_and_complete() {
        let mut rng = StdRng::seed_from_u64(3);
        let a = [1, 2, 3, 4, 5];
        let b = [3, 6, 1, 7, 8];
        for _ in 0..100 {
            let list = team_draft(&a, &b, 5, &mut rng);
            assert_eq!(list.len(), 5);
            let na = list.iter().filter(|(_, t)| *t == Team::A).count();
            assert!(na == 2 || na == 3, "{list:?}");
            let mut items: Vec<u32> = list.iter().map(|(i, _)| *i).collect();
            items.sort_unstable();
            items.dedup();
            assert_eq!(items.len(), 5);
        }
        // Identical rankings never give a significant preference on average.
        let mut wins = [0u64; 2];
        for _ in 0..2_000 {
            let list = team_draft(&a, &a, 3, &mut rng);
            let clicks: Vec<bool> = (0..3).map(|p| p == 0).collect();
            match credit(&list, &clicks) {
                Some(Team::A) => wins[0] += 1,
                Some(Team::B) => wins[1] += 1,
                None => {}
            }
        }
        assert!(
            !sign_test(wins[0], wins[1], 0.05) && !sign_test(wins[1], wins[0], 0.05),
            "{wins:?}"
        );
    }
}
