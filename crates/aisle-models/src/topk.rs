//! Top-k selection.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// An item with its score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Item id.
    pub item: u32,
    /// Score (higher is better).
    pub score: f32,
}

/// Min-heap entry: the worst of the current best k on top.
#[derive(PartialEq)]
struct Entry(f32, u32);

impl Eq for Entry {}

impl PartialOrd for Entry {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Entry {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reverse score order so the heap's top is the smallest; ties prefer the lower id.
        other.0.total_cmp(&self.0).then(self.1.cmp(&other.1))
    }
}

/// The `k` best-scoring items that `keep` accepts, best first; ties go to the lower id.
/// Items scored `-inf` or NaN are never returned.
pub fn top_k(scores: &[f32], k: usize, keep: impl Fn(u32) -> bool) -> Vec<Scored> {
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Entry> = BinaryHeap::with_capacity(k + 1);
    for (item, &score) in scores.iter().enumerate() {
        if score == f32::NEG_INFINITY || score.is_nan() {
            continue;
        }
        if heap.len() == k {
            let worst = heap.peek().expect("the heap holds k > 0 entries");
            if score <= worst.0 {
                continue;
            }
        }
        if !keep(item as u32) {
            continue;
        }
        heap.push(Entry(score, item as u32));
        if heap.len() > k {
            heap.pop();
        }
    }
    let mut out: Vec<Scored> = heap
        .into_iter()
        .map(|Entry(score, item)| Scored { item, score })
        .collect();
    out.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.item.cmp(&b.item)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_best_in_order_and_skips_excluded() {
        let scores = [0.1, 0.9, f32::NEG_INFINITY, 0.5, 0.9, 0.3];
        let top: Vec<u32> = top_k(&scores, 3, |_| true).iter().map(|s| s.item).collect();
        assert_eq!(top, vec![1, 4, 3]);
        let odd: Vec<u32> = top_k(&scores, 2, |i| i % 2 == 1)
            .iter()
            .map(|s| s.item)
            .collect();
        assert_eq!(odd, vec![1, 3]);
        assert_eq!(top_k(&scores, 10, |_| true).len(), 5);
    }
}
