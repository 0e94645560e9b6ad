//! Ranking metrics. Each implements [`Metric`]: it is updated with one ranked list and the
//! relevant items of that case, and its value is the mean over cases.

/// A metric over ranked lists.
pub trait Metric: Send {
    /// Name with cut-off, e.g. `ndcg@10`.
    fn name(&self) -> String;
    /// Adds one case: `ranked` best first (at least K long where available), `relevant`
    /// the held-out items.
    fn update(&mut self, ranked: &[u32], relevant: &[u32]);
    /// Mean over the cases added.
    fn value(&self) -> f64;
    /// Adds another accumulator of the same metric (for parallel evaluation).
    fn merge(&mut self, other: &dyn Metric);
    /// Sum and count, for merging.
    fn parts(&self) -> (f64, usize);
}

macro_rules! ranking_metric {
    ($(#[$doc:meta])* $name:ident, $label:literal, |$k:ident, $ranked:ident, $relevant:ident| $body:expr) => {
        $(#[$doc])*
        #[derive(Clone, Debug)]
        pub struct $name {
            k: usize,
            sum: f64,
            count: usize,
        }

        impl $name {
            /// The metric at cut-off `k`.
            pub fn new(k: usize) -> Self {
                Self { k, sum: 0.0, count: 0 }
            }

            /// The value for one case.
            pub fn of(k: usize, ranked: &[u32], relevant: &[u32]) -> f64 {
                let $k = k;
                let $ranked = &ranked[..ranked.len().min(k)];
                let $relevant = relevant;
                $body
            }
        }

        impl Metric for $name {
            fn name(&self) -> String {
                format!(concat!($label, "@{}"), self.k)
            }
            fn update(&mut self, ranked: &[u32], relevant: &[u32]) {
                self.sum += Self::of(self.k, ranked, relevant);
                self.count += 1;
            }
            fn value(&self) -> f64 {
                if self.count == 0 { 0.0 } else { self.sum / self.count as f64 }
            }
            fn merge(&mut self, other: &dyn Metric) {
                let (sum, count) = other.parts();
                self.sum += sum;
                self.count += count;
            }
            fn parts(&self) -> (f64, usize) {
                (self.sum, self.count)
            }
        }
    };
}

fn hits(ranked: &[u32], relevant: &[u32]) -> impl Iterator<Item = (usize, bool)> {
    ranked
        .iter()
        .enumerate()
        .map(move |(p, i)| (p, relevant.contains(i)))
}

ranking_metric!(
    /// 1 when any relevant item is in the top K.
    HitRate, "hr", |_k, ranked, relevant| f64::from(u8::from(ranked.iter().any(|i| relevant.contains(i))))
);
ranking_metric!(
    /// Share of the relevant items found in the top K.
    Recall, "recall", |_k, ranked, relevant| {
        if relevant.is_empty() { 0.0 } else { hits(ranked, relevant).filter(|h| h.1).count() as f64 / relevant.len() as f64 }
    }
);
ranking_metric!(
    /// Share of the top K that is relevant.
    Precision, "precision", |k, ranked, relevant| hits(ranked, relevant).filter(|h| h.1).count() as f64 / k as f64
);
ranking_metric!(
    /// Normalised discounted cumulative gain with binary relevance.
    Ndcg, "ndcg", |k, ranked, relevant| {
        let dcg: f64 = hits(ranked, relevant).filter(|h| h.1).map(|(p, _)| 1.0 / ((p + 2) as f64).log2()).sum();
        let ideal: f64 = (0..relevant.len().min(k)).map(|p| 1.0 / ((p + 2) as f64).log2()).sum();
        if ideal == 0.0 { 0.0 } else { dcg / ideal }
    }
);
ranking_metric!(
    /// Reciprocal rank of the first relevant item in the top K (0 when none).
    Mrr, "mrr", |_k, ranked, relevant| hits(ranked, relevant).find(|h| h.1).map_or(0.0, |(p, _)| 1.0 / (p + 1) as f64)
);
ranking_metric!(
    /// Average precision at K, normalised by `min(|relevant|, K)`.
    Map, "map", |k, ranked, relevant| {
        let mut found = 0usize;
        let mut sum = 0.0;
        for (p, hit) in hits(ranked, relevant) {
            if hit {
                found += 1;
                sum += found as f64 / (p + 1) as f64;
            }
        }
        let denominator = relevant.len().min(k);
        if denominator == 0 { 0.0 } else { sum / denominator as f64 }
    }
);

/// The standard set at each cut-off: hr, recall, precision, ndcg, mrr, map.
pub fn standard(ks: &[usize]) -> Vec<Box<dyn Metric>> {
    let mut out: Vec<Box<dyn Metric>> = Vec::new();
    for &k in ks {
        out.push(Box::new(HitRate::new(k)));
        out.push(Box::new(Recall::new(k)));
        out.push(Box::new(Precision::new(k)));
        out.push(Box::new(Ndcg::new(k)));
        out.push(Box::new(Mrr::new(k)));
        out.push(Box::new(Map::new(k)));
    }
    out
}

/// Beyond-accuracy measures of a set of top-K lists.
#[derive(Clone, Debug, Default)]
pub struct ListStats {
    recommended: Vec<u32>,
    novelty_sum: f64,
    popularity_sum: f64,
    diversity_sum: f64,
    diversity_lists: usize,
    items: usize,
}

impl ListStats {
    /// Adds one list. `popularity[i]` is the share of training users who had item i;
    /// `category[i]` its top-level category (`u32::MAX` when unknown).
    pub fn update(&mut self, list: &[u32], popularity: &[f64], category: &[u32]) {
        for &i in list {
            self.recommended.push(i);
            let p = popularity.get(i as usize).copied().unwrap_or(0.0).max(1e-9);
            self.novelty_sum += -p.log2();
            self.popularity_sum += p;
            self.items += 1;
        }
        let known: Vec<u32> = list
            .iter()
            .map(|&i| category.get(i as usize).copied().unwrap_or(u32::MAX))
            .collect();
        if known.len() >= 2 && known.iter().all(|&c| c != u32::MAX) {
            let mut different = 0usize;
            let mut pairs = 0usize;
            for a in 0..known.len() {
                for b in a + 1..known.len() {
                    pairs += 1;
                    different += usize::from(known[a] != known[b]);
                }
            }
            self.diversity_sum += different as f64 / pairs as f64;
            self.diversity_lists += 1;
        }
    }

    /// Adds another accumulator.
    pub fn merge(&mut self, other: ListStats) {
        self.recommended.extend(other.recommended);
        self.novelty_sum += other.novelty_sum;
        self.popularity_sum += other.popularity_sum;
        self.diversity_sum += other.diversity_sum;
        self.diversity_lists += other.diversity_lists;
        self.items += other.items;
    }

    /// Share of the `n_items` catalogue that appears in some list.
    pub fn coverage(&self, n_items: usize) -> f64 {
        let mut distinct = self.recommended.clone();
        distinct.sort_unstable();
        distinct.dedup();
        distinct.len() as f64 / n_items.max(1) as f64
    }

    /// Mean self-information `−log2(popularity)` of recommended items.
    pub fn novelty(&self) -> f64 {
        self.novelty_sum / self.items.max(1) as f64
    }

    /// Mean popularity (share of users) of recommended items (ARP).
    pub fn popularity_bias(&self) -> f64 {
        self.popularity_sum / self.items.max(1) as f64
    }

    /// Mean share of item pairs in a list from different categories; `None` without categories.
    pub fn diversity(&self) -> Option<f64> {
        (self.diversity_lists > 0).then(|| self.diversity_sum / self.diversity_lists as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EPS: f64 = 1e-12;

    #[test]
    fn hand_computed_values() {
        // Ranked: 5 3 8 1 9; relevant: 3 and 9 (ranks 2 and 5).
        let ranked = [5, 3, 8, 1, 9];
        let relevant = [3, 9];
        assert_eq!(HitRate::of(1, &ranked, &relevant), 0.0);
        assert_eq!(HitRate::of(2, &ranked, &relevant), 1.0);
        assert!((Recall::of(5, &ranked, &relevant) - 1.0).abs() < EPS);
        assert!((Recall::of(3, &ranked, &relevant) - 0.5).abs() < EPS);
        assert!((Precision::of(5, &ranked, &relevant) - 0.4).abs() < EPS);
        assert!((Mrr::of(5, &ranked, &relevant) - 0.5).abs() < EPS);
        // DCG = 1/log2(3) + 1/log2(6); IDCG = 1 + 1/log2(3).
        let dcg = 1.0 / 3f64.log2() + 1.0 / 6f64.log2();
        let idcg = 1.0 + 1.0 / 3f64.log2();
        assert!((Ndcg::of(5, &ranked, &relevant) - dcg / idcg).abs() < EPS);
        // AP@5 = (1/2 + 2/5) / 2 = 0.45.
        assert!((Map::of(5, &ranked, &relevant) - 0.45).abs() < EPS);
        // A single relevant item at rank 1: everything is 1 but precision 1/k.
        assert_eq!(Ndcg::of(10, &[7], &[7]), 1.0);
        assert_eq!(Precision::of(10, &[7], &[7]), 0.1);
    }

    #[test]
    fn means_and_merging() {
        let mut a = Ndcg::new(10);
        a.update(&[1, 2], &[1]);
        let mut b = Ndcg::new(10);
        b.update(&[1, 2], &[9]);
        a.merge(&b);
        assert!((a.value() - 0.5).abs() < EPS);
        assert_eq!(a.name(), "ndcg@10");
    }

    #[test]
    fn beyond_accuracy() {
        let mut s = ListStats::default();
        s.update(&[0, 1], &[0.5, 0.25, 0.125], &[0, 1, 1]);
        s.update(&[1, 2], &[0.5, 0.25, 0.125], &[0, 1, 1]);
        assert!((s.coverage(4) - 0.75).abs() < EPS);
        // Novelty: -log2 of 0.5, 0.25, 0.25, 0.125 = 1, 2, 2, 3 → mean 2.
        assert!((s.novelty() - 2.0).abs() < EPS);
        assert!((s.popularity_bias() - 0.28125).abs() < EPS);
        // First list: different categories (1), second: same (0).
        assert_eq!(s.diversity(), Some(0.5));
    }

    #[test]
    fn ndcg_stays_in_unit_interval() {
        for ranked in [[1u32, 2, 3], [3, 2, 1], [4, 5, 6]] {
            let v = Ndcg::of(3, &ranked, &[1, 2, 3, 4]);
            assert!((0.0..=1.0).contains(&v));
        }
    }
}
