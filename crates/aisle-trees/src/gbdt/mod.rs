//! Gradient-boosted decision trees: binary log-loss (purchase and churn prediction) and
//! LambdaMART (learning to rank, for search re-ranking).
//!
//! Our own, histogram-based like LightGBM: features are cut into at most 255 quantile bins
//! once, and each split is found from per-bin gradient sums. No pure-Rust crate offers
//! LambdaMART together with the tree access that TreeSHAP explanations need, and the C++
//! libraries would add a native build. Trees grow level by level to `max_depth`.

mod lambdarank;
mod shap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// What the trees are fitted to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Labels 0 or 1; the output is a log-odds.
    Binary,
    /// Graded relevance labels within query groups; pairwise lambdas weighted by the change
    /// in NDCG (Burges, 2010).
    LambdaRank,
}

/// Settings of [`Gbdt::fit`]. Defaults follow LightGBM's where they exist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GbdtConfig {
    /// The loss. Default binary.
    pub objective: Objective,
    /// Most boosting rounds. Default 200.
    pub trees: usize,
    /// Shrinkage of each tree. Default 0.1.
    pub learning_rate: f32,
    /// Depth of each tree. Default 6.
    pub max_depth: usize,
    /// Fewest rows in a leaf. Default 20.
    pub min_data_in_leaf: usize,
    /// Smallest hessian sum in a leaf. Default 1e-3.
    pub min_sum_hessian: f64,
    /// L2 penalty on leaf values. Default 1.
    pub lambda_l2: f64,
    /// Most bins per feature (at most 255). Default 255.
    pub max_bins: usize,
    /// Stop when the validation metric has not improved for this many rounds (needs
    /// validation data). Default 20.
    pub early_stopping_rounds: usize,
    /// Cut-off of the NDCG that early stopping watches for `lambda_rank`. Default 10.
    pub eval_at: usize,
}

impl Default for GbdtConfig {
    fn default() -> Self {
        Self {
            objective: Objective::Binary,
            trees: 200,
            learning_rate: 0.1,
            max_depth: 6,
            min_data_in_leaf: 20,
            min_sum_hessian: 1e-3,
            lambda_l2: 1.0,
            max_bins: 255,
            early_stopping_rounds: 20,
            eval_at: 10,
        }
    }
}

/// Rows of features with labels, and for ranking the size of each query group (rows of a
/// group are consecutive).
#[derive(Clone, Copy, Debug)]
pub struct GbdtData<'a> {
    /// Row-major features, `labels.len()` rows of `n_features`.
    pub features: &'a [f32],
    /// Number of features per row.
    pub n_features: usize,
    /// One label per row.
    pub labels: &'a [f32],
    /// Group sizes for ranking; empty for classification.
    pub groups: &'a [usize],
}

impl GbdtData<'_> {
    fn n_rows(&self) -> usize {
        self.labels.len()
    }

    fn row(&self, r: usize) -> &[f32] {
        &self.features[r * self.n_features..(r + 1) * self.n_features]
    }

    fn validate(&self, objective: Objective) -> Result<()> {
        let fail = |reason: String| {
            Err(Error::Fit {
                model: "gbdt",
                reason,
            })
        };
        if self.n_features == 0 || self.features.len() != self.labels.len() * self.n_features {
            return fail(format!(
                "{} feature values for {} rows of {} features",
                self.features.len(),
                self.labels.len(),
                self.n_features
            ));
        }
        if self.labels.is_empty() {
            return fail("no training rows".into());
        }
        if objective == Objective::LambdaRank && self.groups.iter().sum::<usize>() != self.n_rows()
        {
            return fail("query group sizes do not add up to the number of rows".into());
        }
        if objective == Objective::Binary && self.labels.iter().any(|&y| y != 0.0 && y != 1.0) {
            return fail("binary labels must be 0 or 1".into());
        }
        if let Some(bad) = self.features.iter().position(|x| !x.is_finite()) {
            return fail(format!(
                "feature {} of row {} is not finite; encode missing values as a number",
                bad % self.n_features,
                bad / self.n_features
            ));
        }
        Ok(())
    }
}

/// One node: a split (`feature`, go left when the value ≤ `threshold`) or a leaf.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Node {
    /// Split feature; `u32::MAX` for a leaf.
    pub feature: u32,
    /// Split threshold.
    pub threshold: f32,
    /// Child indices (unused for leaves).
    pub left: u32,
    /// Right child.
    pub right: u32,
    /// Leaf output (already scaled by the learning rate); for inner nodes, the value the
    /// node would have had as a leaf.
    pub value: f32,
    /// Training rows that reached the node (TreeSHAP weighs paths by it).
    pub count: u32,
    /// Loss reduction of the split.
    pub gain: f32,
}

impl Node {
    /// True for a leaf.
    pub fn is_leaf(&self) -> bool {
        self.feature == u32::MAX
    }
}

/// A regression tree; node 0 is the root.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    /// The nodes.
    pub nodes: Vec<Node>,
}

impl Tree {
    /// The output for one row.
    pub fn predict(&self, row: &[f32]) -> f32 {
        let mut n = 0usize;
        loop {
            let node = &self.nodes[n];
            if node.is_leaf() {
                return node.value;
            }
            n = if row[node.feature as usize] <= node.threshold {
                node.left as usize
            } else {
                node.right as usize
            };
        }
    }
}

/// A fitted ensemble: `base + Σ tree(x)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Gbdt {
    /// The settings it was fitted with.
    pub config: GbdtConfig,
    /// Output before any tree.
    pub base: f32,
    /// The trees, in boosting order.
    pub trees: Vec<Tree>,
    /// Number of input features.
    pub n_features: usize,
    /// Validation metric after each round (log-loss or NDCG), where validation data was given.
    pub validation_curve: Vec<f64>,
}

/// Per-feature quantile bins.
struct Binned {
    /// Column-major bin of each value.
    bins: Vec<Vec<u8>>,
    /// Upper bound of each bin, per feature.
    uppers: Vec<Vec<f32>>,
}

fn bin_features(data: &GbdtData<'_>, max_bins: usize) -> Binned {
    let n = data.n_rows();
    let max_bins = max_bins.clamp(2, 255);
    let (bins, uppers) = (0..data.n_features)
        .into_par_iter()
        .map(|f| {
            let mut values: Vec<f32> = (0..n).map(|r| data.row(r)[f]).collect();
            values.sort_unstable_by(f32::total_cmp);
            values.dedup();
            let mut uppers: Vec<f32> = if values.len() <= max_bins {
                values.windows(2).map(|w| (w[0] + w[1]) / 2.0).collect()
            } else {
                let mut cuts: Vec<f32> = (1..max_bins)
                    .map(|b| {
                        let i = b * values.len() / max_bins;
                        (values[i - 1] + values[i]) / 2.0
                    })
                    .collect();
                cuts.dedup();
                cuts
            };
            uppers.push(f32::INFINITY);
            let bins = (0..n)
                .map(|r| uppers.partition_point(|&u| u < data.row(r)[f]) as u8)
                .collect();
            (bins, uppers)
        })
        .unzip();
    Binned { bins, uppers }
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    g: f64,
    h: f64,
    n: u32,
}

struct Split {
    feature: usize,
    bin: usize,
    gain: f64,
}

impl Gbdt {
    /// Fits the ensemble; with `validation`, stops early and keeps the best round.
    pub fn fit(
        config: &GbdtConfig,
        train: &GbdtData<'_>,
        validation: Option<&GbdtData<'_>>,
    ) -> Result<Self> {
        train.validate(config.objective)?;
        if let Some(v) = validation {
            v.validate(config.objective)?;
            if v.n_features != train.n_features {
                return Err(Error::Fit {
                    model: "gbdt",
                    reason: "validation rows have a different number of features".into(),
                });
            }
        }
        if config.learning_rate <= 0.0 || config.max_depth == 0 || config.trees == 0 {
            return Err(Error::InvalidConfig {
                model: "gbdt",
                reason: "trees, learning_rate and max_depth must be positive".into(),
            });
        }
        let n = train.n_rows();
        let binned = bin_features(train, config.max_bins);
        let base = match config.objective {
            Objective::Binary => {
                let p = (train.labels.iter().map(|&y| f64::from(y)).sum::<f64>() / n as f64)
                    .clamp(1e-6, 1.0 - 1e-6);
                (p / (1.0 - p)).ln() as f32
            }
            Objective::LambdaRank => 0.0,
        };
        let mut model = Gbdt {
            config: config.clone(),
            base,
            trees: Vec::new(),
            n_features: train.n_features,
            validation_curve: Vec::new(),
        };
        let mut scores = vec![base; n];
        let mut valid_scores = validation.map(|v| vec![base; v.n_rows()]);
        let mut grad = vec![0f32; n];
        let mut hess = vec![0f32; n];
        let mut best = (f64::NEG_INFINITY, 0usize);
        for round in 0..config.trees {
            match config.objective {
                Objective::Binary => {
                    for r in 0..n {
                        let p = sigmoid(scores[r]);
                        grad[r] = p - train.labels[r];
                        hess[r] = (p * (1.0 - p)).max(1e-6);
                    }
                }
                Objective::LambdaRank => {
                    lambdarank::gradients(train.labels, train.groups, &scores, &mut grad, &mut hess)
                }
            }
            let tree = grow_tree(config, &binned, &grad, &hess);
            for (r, s) in scores.iter_mut().enumerate() {
                *s += tree.predict(train.row(r));
            }
            if let (Some(v), Some(vs)) = (validation, valid_scores.as_mut()) {
                for (r, s) in vs.iter_mut().enumerate() {
                    *s += tree.predict(v.row(r));
                }
                // Higher is better for both: negative log-loss, NDCG.
                let quality = match config.objective {
                    Objective::Binary => -log_loss(v.labels, vs),
                    Objective::LambdaRank => {
                        lambdarank::mean_ndcg(v.labels, v.groups, vs, config.eval_at)
                    }
                };
                model.validation_curve.push(quality.abs());
                model.trees.push(tree);
                if quality > best.0 + 1e-9 {
                    best = (quality, round + 1);
                } else if round + 1 - best.1 >= config.early_stopping_rounds {
                    break;
                }
            } else {
                model.trees.push(tree);
            }
        }
        if validation.is_some() {
            model.trees.truncate(best.1.max(1));
        }
        Ok(model)
    }

    /// The raw output (log-odds for binary, a ranking score for LambdaRank).
    pub fn predict_raw(&self, row: &[f32]) -> f32 {
        self.base + self.trees.iter().map(|t| t.predict(row)).sum::<f32>()
    }

    /// The probability of the positive class (binary objective).
    pub fn predict_probability(&self, row: &[f32]) -> f32 {
        sigmoid(self.predict_raw(row))
    }

    /// Total split gain per feature: a global importance.
    pub fn feature_gains(&self) -> Vec<f64> {
        let mut gains = vec![0.0; self.n_features];
        for node in self.trees.iter().flat_map(|t| &t.nodes) {
            if !node.is_leaf() {
                gains[node.feature as usize] += f64::from(node.gain);
            }
        }
        gains
    }
}

fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

fn log_loss(labels: &[f32], raw: &[f32]) -> f64 {
    labels
        .iter()
        .zip(raw)
        .map(|(&y, &s)| {
            let p = f64::from(sigmoid(s)).clamp(1e-12, 1.0 - 1e-12);
            -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / labels.len().max(1) as f64
}

fn leaf_value(g: f64, h: f64, config: &GbdtConfig) -> f32 {
    (-g / (h + config.lambda_l2) * f64::from(config.learning_rate)) as f32
}

fn grow_tree(config: &GbdtConfig, binned: &Binned, grad: &[f32], hess: &[f32]) -> Tree {
    let all: Vec<u32> = (0..grad.len() as u32).collect();
    let sums = |rows: &[u32]| {
        rows.iter().fold((0.0, 0.0), |(g, h), &r| {
            (
                g + f64::from(grad[r as usize]),
                h + f64::from(hess[r as usize]),
            )
        })
    };
    let (g, h) = sums(&all);
    let mut nodes = vec![Node {
        feature: u32::MAX,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: leaf_value(g, h, config),
        count: all.len() as u32,
        gain: 0.0,
    }];
    let mut frontier = vec![(0usize, all, g, h)];
    for _ in 0..config.max_depth {
        let mut next = Vec::new();
        for (node, rows, g, h) in frontier {
            if rows.len() < 2 * config.min_data_in_leaf {
                continue;
            }
            let Some(split) = best_split(config, binned, grad, hess, &rows, g, h) else {
                continue;
            };
            let column = &binned.bins[split.feature];
            let (left, right): (Vec<u32>, Vec<u32>) = rows
                .iter()
                .partition(|&&r| usize::from(column[r as usize]) <= split.bin);
            let (lg, lh) = sums(&left);
            let (rg, rh) = (g - lg, h - lh);
            let l = nodes.len();
            for (count, g, h) in [(left.len(), lg, lh), (right.len(), rg, rh)] {
                nodes.push(Node {
                    feature: u32::MAX,
                    threshold: 0.0,
                    left: 0,
                    right: 0,
                    value: leaf_value(g, h, config),
                    count: count as u32,
                    gain: 0.0,
                });
            }
            let parent = &mut nodes[node];
            parent.feature = split.feature as u32;
            parent.threshold = binned.uppers[split.feature][split.bin];
            parent.left = l as u32;
            parent.right = l as u32 + 1;
            parent.gain = split.gain as f32;
            next.push((l, left, lg, lh));
            next.push((l + 1, right, rg, rh));
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Tree { nodes }
}

fn best_split(
    config: &GbdtConfig,
    binned: &Binned,
    grad: &[f32],
    hess: &[f32],
    rows: &[u32],
    g: f64,
    h: f64,
) -> Option<Split> {
    let lambda = config.lambda_l2;
    let parent = g * g / (h + lambda);
    let min_rows = config.min_data_in_leaf as u32;
    (0..binned.bins.len())
        .into_par_iter()
        .filter_map(|f| {
            let n_bins = binned.uppers[f].len();
            if n_bins < 2 {
                return None;
            }
            let column = &binned.bins[f];
            let mut hist = vec![Bucket::default(); n_bins];
            for &r in rows {
                let b = &mut hist[usize::from(column[r as usize])];
                b.g += f64::from(grad[r as usize]);
                b.h += f64::from(hess[r as usize]);
                b.n += 1;
            }
            let mut left = Bucket::default();
            let mut best: Option<Split> = None;
            for (bin, bucket) in hist.iter().enumerate().take(n_bins - 1) {
                left.g += bucket.g;
                left.h += bucket.h;
                left.n += bucket.n;
                let (rg, rh, rn) = (g - left.g, h - left.h, rows.len() as u32 - left.n);
                if left.n < min_rows || rn < min_rows {
                    continue;
                }
                if left.h < config.min_sum_hessian || rh < config.min_sum_hessian {
                    continue;
                }
                let gain = left.g * left.g / (left.h + lambda) + rg * rg / (rh + lambda) - parent;
                if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Split {
                        feature: f,
                        bin,
                        gain,
                    });
                }
            }
            best
        })
        .max_by(|a, b| a.gain.total_cmp(&b.gain).then(b.feature.cmp(&a.feature)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binary_trees_learn_an_interaction_and_stop_early() {
        // y = x0 > 0.5 XOR x1 > 0.5, a pattern no single split can show.
        let grid = |n: usize, offset: f32| -> (Vec<f32>, Vec<f32>) {
            let mut x = Vec::new();
            let mut y = Vec::new();
            for i in 0..n {
                let a = ((i * 37 + 11) % 100) as f32 / 100.0 + offset;
                let b = ((i * 61 + 7) % 100) as f32 / 100.0 + offset;
                x.extend([a, b, (i % 7) as f32]);
                y.push(f32::from((a > 0.5) != (b > 0.5)));
            }
            (x, y)
        };
        let (x, y) = grid(2000, 0.0);
        let (vx, vy) = grid(500, 0.003);
        let data = GbdtData {
            features: &x,
            n_features: 3,
            labels: &y,
            groups: &[],
        };
        let valid = GbdtData {
            features: &vx,
            n_features: 3,
            labels: &vy,
            groups: &[],
        };
        let model = Gbdt::fit(&GbdtConfig::default(), &data, Some(&valid)).unwrap();
        let correct = (0..vy.len())
            .filter(|&r| (model.predict_probability(valid.row(r)) > 0.5) == (vy[r] > 0.5))
            .count();
        assert!(
            correct as f64 / vy.len() as f64 > 0.97,
            "accuracy {correct}/500"
        );
        assert!(
            model.trees.len() < 200,
            "early stopping kept {} trees",
            model.trees.len()
        );
        let gains = model.feature_gains();
        assert!(
            gains[2] < gains[0] && gains[2] < gains[1],
            "noise feature matters least: {gains:?}"
        );
    }

    #[test]
    fn bad_input_is_refused_with_a_reason() {
        let data = GbdtData {
            features: &[1.0, f32::NAN],
            n_features: 1,
            labels: &[0.0, 1.0],
            groups: &[],
        };
        let err = Gbdt::fit(&GbdtConfig::default(), &data, None).unwrap_err();
        assert!(err.to_string().contains("not finite"), "{err}");
    }
}
