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

/// Pairwise lambdas weighted by |ΔNDCG| for every pair with different labels in each group,
/// written as each row's [gradient, hessian].
pub(super) fn gradients(labels: &[f32], groups: &[usize], scores: &[f32], gh: &mut [[f32; 2]]) {
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
            gh[start + k] = [g, h.max(1e-9)];
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
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::super::*;

    /// `queries` queries of 20 rows, drawn from `seed`. Features `[a, b, first_stage]`: the
    /// grade is 2 when `a ≥ 0.5` and `b ≥ 0.8`, 1 when `a ≥ 0.5`, else 0, and one grade in
    /// ten is replaced by a random one. `first_stage` stands for the retrieval score the
    /// rows arrive with: it knows the grade only weakly (grade / 4 plus uniform noise).
    fn ranking_set(queries: usize, seed: u64) -> (Vec<f32>, Vec<f32>, Vec<usize>) {
        let mut rng = StdRng::seed_from_u64(seed);
        let (mut x, mut y, mut groups) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..queries {
            for _ in 0..20 {
                let (a, b): (f32, f32) = (rng.random(), rng.random());
                let grade = if a >= 0.5 && b >= 0.8 {
                    2.0
                } else if a >= 0.5 {
                    1.0
                } else {
                    0.0
                };
                let first_stage = grade / 4.0 + rng.random::<f32>();
                let label = if rng.random::<f32>() < 0.1 {
                    f32::from(rng.random_range(0u8..3))
                } else {
                    grade
                };
                x.extend([a, b, first_stage]);
                y.push(label);
            }
            groups.push(20);
        }
        (x, y, groups)
    }

    /// Trained on one set of queries, measured on 300 others: LambdaMART re-ranks the rows
    /// far better than the first-stage score they arrive with, and about as well as on the
    /// queries it learnt from (it learnt the rule, not the rows).
    #[test]
    fn lambdamart_ranks_held_out_queries_better_than_the_first_stage() {
        let (x, y, groups) = ranking_set(300, 1);
        let (tx, ty, tgroups) = ranking_set(300, 2);
        let data = GbdtData {
            features: &x,
            n_features: 3,
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
        let predict =
            |x: &[f32]| -> Vec<f32> { x.chunks_exact(3).map(|r| model.predict_raw(r)).collect() };
        let held_out = super::mean_ndcg(&ty, &tgroups, &predict(&tx), 10);
        let trained = super::mean_ndcg(&y, &groups, &predict(&x), 10);
        let first_stage: Vec<f32> = tx.chunks_exact(3).map(|r| r[2]).collect();
        let baseline = super::mean_ndcg(&ty, &tgroups, &first_stage, 10);
        // The rule itself (grade from a and b), scored against the noisy labels: the best
        // any model can expect here.
        let rule: Vec<f32> = tx
            .chunks_exact(3)
            .map(|r| f32::from(u8::from(r[0] >= 0.5)) * (1.0 + f32::from(u8::from(r[1] >= 0.8))))
            .collect();
        let ceiling = super::mean_ndcg(&ty, &tgroups, &rule, 10);
        let report = format!(
            "held-out NDCG@10 {held_out:.4}, first stage {baseline:.4}, rule {ceiling:.4}, \
             on the training queries {trained:.4}"
        );
        // The measured values, for `--nocapture` (the note quotes them).
        eprintln!("{report}");
        assert!(held_out > baseline + 0.2, "{report}");
        assert!(held_out > ceiling - 0.03, "{report}");
        assert!(trained - held_out < 0.05, "{report}");
    }
}
