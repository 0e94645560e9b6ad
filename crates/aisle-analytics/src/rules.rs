//! Frequent itemsets (Eclat: depth-first intersection of transaction bitsets) and association
//! rules `X ⇒ y` with a single item on the right, as R's arules `apriori` makes them.
//!
//! Eclat rather than FP-growth: with baskets as bitsets, support counting is a word-wise AND
//! and a popcount, which is simple and fast at the scale of a shop's categories; the itemsets
//! found are the same.

use aisle_core::EventKind;
use aisle_features::EventLog;
use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::Serialize;

use crate::{Error, Result};

/// Thresholds of [`association_rules`].
#[derive(Clone, Copy, Debug)]
pub struct RuleSettings {
    /// Smallest share of baskets holding the whole rule (arules' `supp`).
    pub min_support: f64,
    /// Smallest share of the antecedent's baskets that also hold the consequent.
    pub min_confidence: f64,
    /// Largest itemset, antecedent and consequent together (arules' `maxlen`, default 10).
    pub max_len: usize,
}

impl Default for RuleSettings {
    fn default() -> Self {
        Self {
            min_support: 0.001,
            min_confidence: 0.5,
            max_len: 10,
        }
    }
}

/// `antecedent ⇒ consequent`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Rule {
    /// Items on the left, ascending ids.
    pub antecedent: Vec<u32>,
    /// The item on the right.
    pub consequent: u32,
    /// Share of baskets with every item of the rule.
    pub support: f64,
    /// support(rule) / support(antecedent).
    pub confidence: f64,
    /// confidence / support(consequent).
    pub lift: f64,
    /// Baskets with every item of the rule.
    pub count: usize,
}

/// Each basket's distinct items: purchases grouped by session (an order, a basket), or by
/// user where events have no session.
pub fn baskets(log: &EventLog) -> Vec<Vec<u32>> {
    let mut by_key: FxHashMap<(u32, u64), Vec<u32>> = FxHashMap::default();
    for e in log
        .events()
        .iter()
        .filter(|e| e.kind == EventKind::Purchase)
    {
        if let Some(item) = e.item() {
            by_key.entry((e.user, e.session)).or_default().push(item.0);
        }
    }
    let mut out: Vec<Vec<u32>> = by_key
        .into_values()
        .map(|mut items| {
            items.sort_unstable();
            items.dedup();
            items
        })
        .collect();
    out.sort();
    out
}

type Bits = Vec<u64>;

fn count(bits: &Bits) -> usize {
    bits.iter().map(|w| w.count_ones() as usize).sum()
}

fn and(a: &Bits, b: &Bits) -> Bits {
    a.iter().zip(b).map(|(x, y)| x & y).collect()
}

/// Every itemset (ascending ids) in at least `min_count` baskets, at most `max_len` items,
/// with its count.
pub fn frequent_itemsets(
    baskets: &[Vec<u32>],
    min_count: usize,
    max_len: usize,
) -> FxHashMap<Vec<u32>, usize> {
    let words = baskets.len().div_ceil(64);
    let mut columns: FxHashMap<u32, Bits> = FxHashMap::default();
    for (t, basket) in baskets.iter().enumerate() {
        for &item in basket {
            columns.entry(item).or_insert_with(|| vec![0; words])[t / 64] |= 1 << (t % 64);
        }
    }
    let mut singles: Vec<(u32, Bits)> = columns
        .into_iter()
        .filter(|(_, bits)| count(bits) >= min_count)
        .collect();
    singles.sort_by_key(|s| s.0);
    let found: Vec<Vec<(Vec<u32>, usize)>> = (0..singles.len())
        .into_par_iter()
        .map(|i| {
            let mut out = Vec::new();
            let (item, bits) = &singles[i];
            let tail: Vec<(u32, Bits)> = singles[i + 1..].to_vec();
            extend(&mut out, vec![*item], bits, &tail, min_count, max_len);
            out
        })
        .collect();
    found.into_iter().flatten().collect()
}

fn extend(
    out: &mut Vec<(Vec<u32>, usize)>,
    prefix: Vec<u32>,
    bits: &Bits,
    tail: &[(u32, Bits)],
    min_count: usize,
    max_len: usize,
) {
    out.push((prefix.clone(), count(bits)));
    if prefix.len() >= max_len {
        return;
    }
    let next: Vec<(u32, Bits)> = tail
        .iter()
        .map(|(item, other)| (*item, and(bits, other)))
        .filter(|(_, b)| count(b) >= min_count)
        .collect();
    for (k, (item, b)) in next.iter().enumerate() {
        let mut longer = prefix.clone();
        longer.push(*item);
        extend(out, longer, b, &next[k + 1..], min_count, max_len);
    }
}

/// Association rules with one consequent, best lift first (then confidence, support).
pub fn association_rules(baskets: &[Vec<u32>], settings: &RuleSettings) -> Result<Vec<Rule>> {
    if !(settings.min_support > 0.0 && settings.min_support <= 1.0) {
        return Err(Error::InvalidSetting(format!(
            "min_support must be in (0, 1], got {}",
            settings.min_support
        )));
    }
    if !(0.0..=1.0).contains(&settings.min_confidence) {
        return Err(Error::InvalidSetting(format!(
            "min_confidence must be in [0, 1], got {}",
            settings.min_confidence
        )));
    }
    if baskets.is_empty() {
        return Err(Error::NotEnoughData(
            "no baskets (purchases grouped by session or user)".into(),
        ));
    }
    let n = baskets.len() as f64;
    // A small tolerance so that 0.001 × 9,835 = 9.835 asks for 10 baskets, as arules does.
    let min_count = ((settings.min_support * n) - 1e-9).ceil().max(1.0) as usize;
    let sets = frequent_itemsets(baskets, min_count, settings.max_len.max(2));
    let mut rules = Vec::new();
    for (set, &together) in sets.iter().filter(|(s, _)| s.len() >= 2) {
        for (k, &consequent) in set.iter().enumerate() {
            let mut antecedent = set.clone();
            antecedent.remove(k);
            let Some(&lhs) = sets.get(&antecedent) else {
                continue;
            };
            let confidence = together as f64 / lhs as f64;
            if confidence + 1e-12 < settings.min_confidence {
                continue;
            }
            let rhs = sets.get(&vec![consequent]).copied().unwrap_or(together);
            rules.push(Rule {
                antecedent,
                consequent,
                support: together as f64 / n,
                confidence,
                lift: confidence / (rhs as f64 / n),
                count: together,
            });
        }
    }
    rules.sort_by(|a, b| {
        b.lift
            .total_cmp(&a.lift)
            .then(b.confidence.total_cmp(&a.confidence))
            .then(b.support.total_cmp(&a.support))
            .then_with(|| a.antecedent.cmp(&b.antecedent))
            .then(a.consequent.cmp(&b.consequent))
    });
    Ok(rules)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_counted_baskets() {
        // 5 baskets over items 1..4; counted by hand:
        // {1}:4 {2}:3 {3}:2 {1,2}:3 {1,3}:2 {2,3}:1 {1,2,3}:1
        let baskets = vec![vec![1, 2], vec![1, 2, 3], vec![1, 3], vec![1, 2], vec![4]];
        let sets = frequent_itemsets(&baskets, 2, 10);
        assert_eq!(sets[&vec![1]], 4);
        assert_eq!(sets[&vec![1, 2]], 3);
        assert_eq!(sets[&vec![1, 3]], 2);
        assert!(!sets.contains_key(&vec![2, 3]), "below the minimum count");
        let rules = association_rules(
            &baskets,
            &RuleSettings {
                min_support: 0.4,
                min_confidence: 0.6,
                max_len: 10,
            },
        )
        .unwrap();
        // 2⇒1 (conf 1, lift 1.25), 3⇒1 (conf 1, lift 1.25), 1⇒2 (conf 0.75, lift 1.25).
        assert_eq!(rules.len(), 3);
        let r = rules
            .iter()
            .find(|r| r.antecedent == [2] && r.consequent == 1)
            .unwrap();
        assert!((r.confidence - 1.0).abs() < 1e-12 && (r.lift - 1.25).abs() < 1e-12);
        assert_eq!(r.count, 3);
        assert!((r.support - 0.6).abs() < 1e-12);
        let r = rules
            .iter()
            .find(|r| r.antecedent == [1] && r.consequent == 2)
            .unwrap();
        assert!((r.confidence - 0.75).abs() < 1e-12);
    }
}
