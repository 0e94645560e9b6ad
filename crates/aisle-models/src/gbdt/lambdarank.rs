//! LambdaMART's gradients and the NDCG it optimises.

use rayon::prelude::*;

fn gain(label: f32) -> f64 {
    2f64.powf(f64::from(label)) - 1.0
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 2) as f64).log2()
}

fn group_offsets(groups: &[usize]) -> Vec<(usize, usize)> {
    let mut start = 0;
    groups
        .iter()
        .map(|&len| {
            let span = (start, start + len);
            start += len;
            span
        })
        .collect()
}

fn ideal_dcg(labels: &[f32], k: usize) -> f64 {
    let mut sorted = labels.to_vec();
    sorted.sort_unstable_by(|a, b| b.total_cmp(a));
    sorted
        .iter()
        .take(k)
        .enumerate()
        .map(|(i, &l)| gain(l) * discount(i))
        .sum()
}

/// Pairwise lambdas weighted by |ΔNDCG| for every pair with different labels in each group.
pub(super) fn gradients(
    labels: &[f32],
    groups: &[usize],
    scores: &[f32],
    grad: &mut [f32],
    hess: &mut [f32],
) {
    let spans = group_offsets(groups);
    let per_group: Vec<Vec<(f32, f32)>> = spans
        .par_iter()
        .map(|&(start, end)| {
            let labels = &labels[start..end];
            let scores = &scores[start..end];
            let n = labels.len();
            let mut out = vec![(0f32, 0f32); n];
            let idcg = ideal_dcg(labels, n);
            if idcg <= 0.0 {
                return out;
            }
            let mut order: Vec<usize> = (0..n).collect();
            order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));
            let mut rank = vec![0usize; n];
            for (r, &d) in order.iter().enumerate() {
                rank[d] = r;
            }
            for i in 0..n {
                for j in 0..n {
                    if labels[i] <= labels[j] {
                        continue;
                    }
                    let delta = (gain(labels[i]) - gain(labels[j])).abs()
                        * (discount(rank[i]) - discount(rank[j])).abs()
                        / idcg;
                    let rho = 1.0 / (1.0 + f64::from(scores[i] - scores[j]).exp());
                    let lambda = (rho * delta) as f32;
                    let h = (rho * (1.0 - rho) * delta).max(1e-9) as f32;
                    out[i].0 -= lambda;
                    out[j].0 += lambda;
                    out[i].1 += h;
                    out[j].1 += h;
                }
            }
            out
        })
        .collect();
    for (&(start, _), values) in spans.iter().zip(per_group) {
        for (k, (g, h)) in values.into_iter().enumerate() {
            grad[start + k] = g;
            hess[start + k] = h.max(1e-9);
        }
    }
}

/// Mean NDCG@k over groups that have a relevant row.
pub(super) fn mean_ndcg(labels: &[f32], groups: &[usize], scores: &[f32], k: usize) -> f64 {
    let mut total = 0.0;
    let mut counted = 0usize;
    for (start, end) in group_offsets(groups) {
        let labels = &labels[start..end];
        let idcg = ideal_dcg(labels, k);
        if idcg <= 0.0 {
            continue;
        }
        let mut order: Vec<usize> = (0..labels.len()).collect();
        order.sort_by(|&a, &b| scores[start + b].total_cmp(&scores[start + a]));
        let dcg: f64 = order
            .iter()
            .take(k)
            .enumerate()
            .map(|(r, &d)| gain(labels[d]) * discount(r))
            .sum();
        total += dcg / idcg;
        counted += 1;
    }
    total / counted.max(1) as f64
}

#[cfg(test)]
mod tests {
    use super::super::*;

    #[test]
    fn lambdamart_learns_to_put_the_relevant_row_first() {
        // 300 queries of 20 rows; relevance depends on feature 1 only when feature 0 is high.
        let mut x = Vec::new();
        let mut y = Vec::new();
        let mut groups = Vec::new();
        for q in 0..300usize {
            for d in 0..20usize {
                let a = ((q * 13 + d * 7) % 20) as f32 / 20.0;
                let b = ((q * 29 + d * 11) % 20) as f32 / 20.0;
                x.extend([a, b]);
                y.push(if a >= 0.5 && b >= 0.9 {
                    2.0
                } else if a >= 0.5 {
                    1.0
                } else {
                    0.0
                });
            }
            groups.push(20);
        }
        let data = GbdtData {
            features: &x,
            n_features: 2,
            labels: &y,
            groups: &groups,
        };
        let config = GbdtConfig {
            objective: Objective::LambdaRank,
            trees: 50,
            min_data_in_leaf: 5,
            ..GbdtConfig::default()
        };
        let model = Gbdt::fit(&config, &data, None).unwrap();
        let scores: Vec<f32> = (0..y.len())
            .map(|r| model.predict_raw(data.row(r)))
            .collect();
        let ndcg = super::mean_ndcg(&y, &groups, &scores, 10);
        let flat = super::mean_ndcg(&y, &groups, &vec![0.0; y.len()], 10);
        assert!(ndcg > 0.99, "NDCG@10 {ndcg} (unordered {flat})");
    }
}
