//! Gradient-boosted decision trees: binary log-loss (purchase and churn prediction) and
//! LambdaMART (learning to rank, for search re-ranking).
//!
//! Our own, histogram-based like LightGBM: features are cut into at most 255 quantile bins
//! once, and each split is found from per-bin gradient sums. No pure-Rust crate offers
//! LambdaMART together with the tree access that TreeSHAP explanations need, and the C++
//! libraries would add a native build. Trees grow leaf-wise (best split first) to
//! `num_leaves` leaves and `max_depth` levels; a child's histogram is its parent's minus its
//! sibling's; histograms are built by blocks of features and partitions by fixed row
//! chunks in parallel, and a fit is the same bit for bit for any thread count. Exclusive
//! feature bundling is left out: the features aisle builds are dense.

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
    /// Most levels below the root. Default 6.
    pub max_depth: usize,
    /// Most leaves per tree; trees grow best leaf first until they have this many.
    /// Default 63 (LightGBM's is 31 with no depth limit; with depth 6, 63 lets a tree fill).
    pub num_leaves: usize,
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
            num_leaves: 63,
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

    /// The output for a row binned like the training rows, given each node's split bin.
    fn predict_binned(&self, split_bins: &[u8], bins: &[u8]) -> f32 {
        let mut n = 0usize;
        loop {
            let node = &self.nodes[n];
            if node.is_leaf() {
                return node.value;
            }
            n = if bins[node.feature as usize] <= split_bins[n] {
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

/// Bin boundaries come from at most this many rows, evenly spaced (LightGBM's
/// `bin_construct_sample_cnt`); every row is then binned.
const BIN_SAMPLE_ROWS: usize = 200_000;

/// Per-feature quantile bins, stored twice: row-major, so that one pass over a leaf's rows
/// fills every feature's histogram (LightGBM's row-wise mode, the faster one for a few dense
/// features), and column-major, so that partitioning a leaf by one feature reads one byte
/// per row from a dense column instead of a cache line per row.
struct Binned {
    n_features: usize,
    n_rows: usize,
    /// `bins[r * n_features + f]`: the bin of row r's feature f.
    bins: Vec<u8>,
    /// `columns[f * n_rows + r]`: the same bins by feature.
    columns: Vec<u8>,
    /// Upper bound of each bin, per feature.
    uppers: Vec<Vec<f32>>,
    /// Where feature f's buckets start in a histogram; the last entry is the total.
    offsets: Vec<usize>,
}

impl Binned {
    fn bin(&self, row: u32, feature: usize) -> u8 {
        self.columns[feature * self.n_rows + row as usize]
    }

    fn n_buckets(&self) -> usize {
        self.offsets[self.n_features]
    }

    /// Other rows (validation) in these bins, row-major.
    fn bin_rows(&self, data: &GbdtData<'_>) -> Vec<u8> {
        bin_rows(&self.uppers, data)
    }

    /// Each node's split as a bin (0 for leaves): a binned row goes left when its bin is at
    /// most this, as a raw row does when its value is at most the threshold.
    fn split_bins(&self, tree: &Tree) -> Vec<u8> {
        tree.nodes
            .iter()
            .map(|n| {
                if n.is_leaf() {
                    0
                } else {
                    self.uppers[n.feature as usize].partition_point(|&u| u < n.threshold) as u8
                }
            })
            .collect()
    }
}

/// `rows`' bins under the bin bounds `uppers`, row-major.
fn bin_rows(uppers: &[Vec<f32>], data: &GbdtData<'_>) -> Vec<u8> {
    let mut bins = vec![0u8; data.features.len()];
    bins.par_chunks_mut(data.n_features)
        .zip(data.features.par_chunks(data.n_features))
        .for_each(|(out, row)| {
            for ((bin, &value), uppers) in out.iter_mut().zip(row).zip(uppers) {
                *bin = uppers.partition_point(|&u| u < value) as u8;
            }
        });
    bins
}

fn bin_features(data: &GbdtData<'_>, max_bins: usize) -> Binned {
    let n = data.n_rows();
    let max_bins = max_bins.clamp(2, 255);
    // An even stride over the rows: deterministic, and it keeps the file's order mixed in.
    let stride = n.div_ceil(BIN_SAMPLE_ROWS).max(1);
    let uppers: Vec<Vec<f32>> = (0..data.n_features)
        .into_par_iter()
        .map(|f| {
            let mut values: Vec<f32> = (0..n).step_by(stride).map(|r| data.row(r)[f]).collect();
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
            uppers
        })
        .collect();
    let nf = data.n_features;
    let bins = bin_rows(&uppers, data);
    let mut columns = vec![0u8; n * nf];
    if n > 0 {
        columns
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(f, column)| {
                for (bin, row) in column.iter_mut().zip(bins.chunks_exact(nf)) {
                    *bin = row[f];
                }
            });
    }
    let mut offsets = vec![0];
    let mut total = 0;
    for u in &uppers {
        total += u.len();
        offsets.push(total);
    }
    Binned {
        n_features: nf,
        n_rows: n,
        bins,
        columns,
        uppers,
        offsets,
    }
}

#[derive(Clone, Copy, Default)]
struct Bucket {
    g: f64,
    h: f64,
    n: u32,
}

impl Bucket {
    fn add(&mut self, other: &Bucket) {
        self.g += other.g;
        self.h += other.h;
        self.n += other.n;
    }

    fn subtract(&mut self, other: &Bucket) {
        self.g -= other.g;
        self.h -= other.h;
        self.n -= other.n;
    }
}

struct Split {
    feature: usize,
    bin: usize,
    gain: f64,
    /// Gradient, hessian and row sums of the left side.
    left: Bucket,
}

/// Leaves with fewer rows are summed on one thread.
const PARALLEL_HISTOGRAM_ROWS: usize = 4_096;

/// Per-bin gradient sums of every feature over `rows`, row by row from the row-major bins
/// (a column-by-column pass, LightGBM's col-wise mode, measured slower here: runs of rows
/// in one bin, a user's rows sharing their user features, chain each add to the last).
/// Threads take disjoint blocks of features, and each sum runs over the rows in their
/// order: every sum is the serial one, bit for bit, so a fit is the same whatever the
/// number of threads.
fn histogram(binned: &Binned, gh: &[[f32; 2]], rows: &[u32]) -> Vec<Bucket> {
    let n_features = binned.n_features;
    let fill = |features: std::ops::Range<usize>, out: &mut [Bucket]| {
        let base = binned.offsets[features.start];
        let offsets = &binned.offsets[features.clone()];
        for &r in rows {
            let [g, h] = gh[r as usize].map(f64::from);
            let row = r as usize * n_features;
            let bins = &binned.bins[row + features.start..row + features.end];
            for (&bin, &offset) in bins.iter().zip(offsets) {
                let bucket = &mut out[offset - base + usize::from(bin)];
                bucket.g += g;
                bucket.h += h;
                bucket.n += 1;
            }
        }
    };
    let mut hist = vec![Bucket::default(); binned.n_buckets()];
    let threads = rayon::current_num_threads().min(n_features);
    if rows.len() < PARALLEL_HISTOGRAM_ROWS || threads < 2 {
        fill(0..n_features, &mut hist);
        return hist;
    }
    let per_block = n_features.div_ceil(threads);
    let mut blocks = Vec::with_capacity(threads);
    let mut rest = hist.as_mut_slice();
    for start in (0..n_features).step_by(per_block) {
        let end = (start + per_block).min(n_features);
        let len = binned.offsets[end] - binned.offsets[start];
        let (block, tail) = std::mem::take(&mut rest).split_at_mut(len);
        rest = tail;
        blocks.push((start..end, block));
    }
    blocks
        .into_par_iter()
        .for_each(|(features, out)| fill(features, out));
    hist
}
/// Rows per partition task (see [`partition_rows`]).
const PARTITION_CHUNK: usize = 16_384;

/// Copies `rows` into `out` (as long), those going left from the front and the others from
/// the back, and returns how many go left. Without a branch per row: which side a row
/// takes is data, and a mispredicted branch per row cost more than the second store.
fn split_into(rows: &[u32], out: &mut [u32], goes_left: &impl Fn(u32) -> bool) -> usize {
    let (mut front, mut back) = (0, rows.len());
    for &r in rows {
        // front < back here: both slots are free, and the row stays in the one that moves.
        out[front] = r;
        out[back - 1] = r;
        let left = usize::from(goes_left(r));
        front += left;
        back -= 1 - left;
    }
    front
}

/// Reorders `rows` so that those going left come first, each side in its old order, and
/// returns how many go left. Large ranges are split in fixed chunks in parallel.
fn partition_rows(
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
    goes_left: impl Fn(u32) -> bool + Sync,
) -> usize {
    scratch.clear();
    scratch.resize(rows.len(), 0);
    if rows.len() <= 2 * PARTITION_CHUNK {
        let n_left = split_into(rows, scratch, &goes_left);
        rows[..n_left].copy_from_slice(&scratch[..n_left]);
        for (to, from) in rows[n_left..]
            .iter_mut()
            .zip(scratch[n_left..].iter().rev())
        {
            *to = *from;
        }
        return n_left;
    }
    let lefts: Vec<usize> = rows
        .par_chunks(PARTITION_CHUNK)
        .zip(scratch.par_chunks_mut(PARTITION_CHUNK))
        .map(|(chunk, out)| split_into(chunk, out, &goes_left))
        .collect();
    let n_left: usize = lefts.iter().sum();
    let (mut left_space, mut right_space) = rows.split_at_mut(n_left);
    let mut places = Vec::with_capacity(lefts.len());
    for (chunk, &n) in scratch.chunks(PARTITION_CHUNK).zip(&lefts) {
        let (l, rest) = std::mem::take(&mut left_space).split_at_mut(n);
        left_space = rest;
        let (r, rest) = std::mem::take(&mut right_space).split_at_mut(chunk.len() - n);
        right_space = rest;
        places.push((chunk, n, l, r));
    }
    places.into_par_iter().for_each(|(chunk, n, l, r)| {
        l.copy_from_slice(&chunk[..n]);
        for (to, from) in r.iter_mut().zip(chunk[n..].iter().rev()) {
            *to = *from;
        }
    });
    n_left
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
        if config.learning_rate <= 0.0
            || config.max_depth == 0
            || config.trees == 0
            || config.num_leaves < 2
        {
            return Err(Error::InvalidConfig {
                model: "gbdt",
                reason:
                    "trees, learning_rate and max_depth must be positive, and num_leaves at least 2"
                        .into(),
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
        // Each row's gradient and hessian side by side: one cache line holds both.
        let mut gh = vec![[0f32; 2]; n];
        // The validation rows binned with the training bins: a tree walks them by bin.
        let valid_bins = validation.map(|v| binned.bin_rows(v));
        let mut rows = vec![0u32; n];
        let mut scratch = Vec::with_capacity(n);
        let mut best = (f64::NEG_INFINITY, 0usize);
        for round in 0..config.trees {
            match config.objective {
                Objective::Binary => gh
                    .par_iter_mut()
                    .zip(scores.par_iter().zip(train.labels.par_iter()))
                    .for_each(|(gh, (&s, &y))| {
                        let p = sigmoid(s);
                        *gh = [p - y, (p * (1.0 - p)).max(1e-6)];
                    }),
                Objective::LambdaRank => {
                    lambdarank::gradients(train.labels, train.groups, &scores, &mut gh)
                }
            }
            rows.iter_mut().enumerate().for_each(|(k, r)| *r = k as u32);
            let (tree, leaves) = grow_tree(config, &binned, &gh, &mut rows, &mut scratch);
            // The training rows' scores from the leaves they were sorted into.
            for (node, start, end) in leaves {
                let value = tree.nodes[node].value;
                for &r in &rows[start..end] {
                    scores[r as usize] += value;
                }
            }
            if let (Some(v), Some(vs), Some(vb)) =
                (validation, valid_scores.as_mut(), valid_bins.as_ref())
            {
                let nf = binned.n_features;
                let split_bins = binned.split_bins(&tree);
                vs.par_iter_mut()
                    .zip(vb.par_chunks(nf))
                    .for_each(|(s, bins)| *s += tree.predict_binned(&split_bins, bins));
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
    // Summed by fixed chunks in parallel, then in chunk order: the same for any thread count.
    const CHUNK: usize = 8_192;
    let parts: Vec<f64> = labels
        .par_chunks(CHUNK)
        .zip(raw.par_chunks(CHUNK))
        .map(|(labels, raw)| {
            labels
                .iter()
                .zip(raw)
                .map(|(&y, &s)| {
                    let p = f64::from(sigmoid(s)).clamp(1e-12, 1.0 - 1e-12);
                    -(f64::from(y) * p.ln() + (1.0 - f64::from(y)) * (1.0 - p).ln())
                })
                .sum::<f64>()
        })
        .collect();
    parts.iter().sum::<f64>() / labels.len().max(1) as f64
}

fn leaf_value(g: f64, h: f64, config: &GbdtConfig) -> f32 {
    (-g / (h + config.lambda_l2) * f64::from(config.learning_rate)) as f32
}

/// A leaf of the tree being grown: its rows are `rows[start..end]` of the row order.
struct Leaf {
    node: usize,
    start: usize,
    end: usize,
    depth: usize,
    sums: Bucket,
    /// Its histogram, kept while it may still split (its children's come from it).
    hist: Vec<Bucket>,
    split: Option<Split>,
}

/// Grows one tree leaf-wise (best-first, LightGBM's growth): the leaf whose best split gains
/// most splits next, until `num_leaves` or no leaf can split. Only the smaller child's
/// histogram is built; the larger's is the parent's minus it. Leaves `rows` grouped by
/// leaf, and returns each final leaf's node and row range.
fn grow_tree(
    config: &GbdtConfig,
    binned: &Binned,
    gh: &[[f32; 2]],
    rows: &mut [u32],
    scratch: &mut Vec<u32>,
) -> (Tree, Vec<(usize, usize, usize)>) {
    let n = rows.len();
    let splittable = |count: usize, depth: usize| {
        depth < config.max_depth && count >= 2 * config.min_data_in_leaf
    };
    let hist = histogram(binned, gh, rows);
    // The root's sums, from the first feature's buckets (every row is in one of them).
    let mut sums = Bucket::default();
    for bucket in &hist[..binned.offsets[1]] {
        sums.add(bucket);
    }
    let mut nodes = vec![Node {
        feature: u32::MAX,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: leaf_value(sums.g, sums.h, config),
        count: n as u32,
        gain: 0.0,
    }];
    let split = splittable(n, 0)
        .then(|| best_split(config, binned, &hist, &sums))
        .flatten();
    let mut leaves = vec![Leaf {
        node: 0,
        start: 0,
        end: n,
        depth: 0,
        sums,
        hist,
        split,
    }];
    let mut n_leaves = 1;
    while n_leaves < config.num_leaves {
        // The best gain; ties go to the oldest leaf, so the choice never depends on order.
        let Some(k) = leaves
            .iter()
            .enumerate()
            .filter_map(|(k, l)| l.split.as_ref().map(|s| (k, s.gain, l.node)))
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.2.cmp(&a.2)))
            .map(|(k, _, _)| k)
        else {
            break;
        };
        let mut leaf = leaves.swap_remove(k);
        let split = leaf.split.take().expect("chosen for its split");
        let (feature, bin) = (split.feature, split.bin as u8);
        let n_left = partition_rows(&mut rows[leaf.start..leaf.end], scratch, |r| {
            binned.bin(r, feature) <= bin
        });
        let mid = leaf.start + n_left;
        let left_sums = split.left;
        let mut right_sums = leaf.sums;
        right_sums.subtract(&left_sums);
        let l = nodes.len();
        for (count, s) in [(n_left, &left_sums), (leaf.end - mid, &right_sums)] {
            nodes.push(Node {
                feature: u32::MAX,
                threshold: 0.0,
                left: 0,
                right: 0,
                value: leaf_value(s.g, s.h, config),
                count: count as u32,
                gain: 0.0,
            });
        }
        let parent = &mut nodes[leaf.node];
        parent.feature = feature as u32;
        parent.threshold = binned.uppers[feature][split.bin];
        parent.left = l as u32;
        parent.right = l as u32 + 1;
        parent.gain = split.gain as f32;

        let depth = leaf.depth + 1;
        let mut left = Leaf {
            node: l,
            start: leaf.start,
            end: mid,
            depth,
            sums: left_sums,
            hist: Vec::new(),
            split: None,
        };
        let mut right = Leaf {
            node: l + 1,
            start: mid,
            end: leaf.end,
            depth,
            sums: right_sums,
            hist: Vec::new(),
            split: None,
        };
        let (left_ok, right_ok) = (
            splittable(left.end - left.start, depth),
            splittable(right.end - right.start, depth),
        );
        if left_ok || right_ok {
            let (small, large) = if n_left <= leaf.end - mid {
                (&mut left, &mut right)
            } else {
                (&mut right, &mut left)
            };
            small.hist = histogram(binned, gh, &rows[small.start..small.end]);
            let mut rest = std::mem::take(&mut leaf.hist);
            for (r, s) in rest.iter_mut().zip(&small.hist) {
                r.subtract(s);
            }
            large.hist = rest;
            for (child, ok) in [(&mut left, left_ok), (&mut right, right_ok)] {
                child.split = ok
                    .then(|| best_split(config, binned, &child.hist, &child.sums))
                    .flatten();
                if child.split.is_none() {
                    child.hist = Vec::new();
                }
            }
        }
        leaves.push(left);
        leaves.push(right);
        n_leaves += 1;
    }
    let ranges = leaves.iter().map(|l| (l.node, l.start, l.end)).collect();
    (Tree { nodes }, ranges)
}

/// The best split of a leaf from its histogram: the largest loss reduction over every
/// feature and bin boundary that leaves enough rows and hessian on each side; ties go to the
/// lower feature, then the lower bin.
fn best_split(
    config: &GbdtConfig,
    binned: &Binned,
    hist: &[Bucket],
    sums: &Bucket,
) -> Option<Split> {
    let lambda = config.lambda_l2;
    let parent = sums.g * sums.g / (sums.h + lambda);
    let min_rows = config.min_data_in_leaf as u32;
    let mut best: Option<Split> = None;
    for feature in 0..binned.n_features {
        let buckets = &hist[binned.offsets[feature]..binned.offsets[feature + 1]];
        if buckets.len() < 2 {
            continue;
        }
        let mut left = Bucket::default();
        for (bin, bucket) in buckets.iter().enumerate().take(buckets.len() - 1) {
            left.add(bucket);
            let (rg, rh, rn) = (sums.g - left.g, sums.h - left.h, sums.n - left.n);
            if left.n < min_rows || rn < min_rows {
                continue;
            }
            if left.h < config.min_sum_hessian || rh < config.min_sum_hessian {
                continue;
            }
            let gain = left.g * left.g / (left.h + lambda) + rg * rg / (rh + lambda) - parent;
            if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                best = Some(Split {
                    feature,
                    bin,
                    gain,
                    left,
                });
            }
        }
    }
    best
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

    /// Rows of a noisy two-feature rule plus noise features, past the sizes where the
    /// histograms and partitions go parallel.
    fn noisy_rows(n: usize) -> (Vec<f32>, Vec<f32>) {
        let mut x = Vec::with_capacity(n * 4);
        let mut y = Vec::with_capacity(n);
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 40) as f32 / (1u64 << 24) as f32
        };
        for _ in 0..n {
            let row = [next(), next(), (next() * 50.0).floor(), next()];
            let p = if row[0] > 0.6 { 0.8 } else { 0.2 } + if row[1] < 0.3 { 0.15 } else { 0.0 };
            y.push(f32::from(next() < p));
            x.extend(row);
        }
        (x, y)
    }

    fn four_features<'a>(x: &'a [f32], y: &'a [f32]) -> GbdtData<'a> {
        GbdtData {
            features: x,
            n_features: 4,
            labels: y,
            groups: &[],
        }
    }

    #[test]
    fn a_fit_is_the_same_for_any_thread_count() {
        let (x, y) = noisy_rows(150_000);
        let data = four_features(&x, &y);
        let config = GbdtConfig {
            trees: 5,
            ..GbdtConfig::default()
        };
        let fit_on = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Gbdt::fit(&config, &data, None).unwrap())
        };
        let one = fit_on(1);
        assert_eq!(one, fit_on(3), "1 and 3 threads grew different trees");
        assert!(one.trees.iter().all(|t| t.nodes.len() > 3));
    }

    #[test]
    fn trees_grow_best_leaf_first_up_to_the_leaf_cap() {
        let (x, y) = noisy_rows(20_000);
        let data = four_features(&x, &y);
        let config = GbdtConfig {
            trees: 3,
            num_leaves: 4,
            max_depth: 20,
            ..GbdtConfig::default()
        };
        let model = Gbdt::fit(&config, &data, None).unwrap();
        for tree in &model.trees {
            let leaves = tree.nodes.iter().filter(|n| n.is_leaf()).count();
            assert_eq!(leaves, 4, "{tree:?}");
            // Every inner node's rows are its children's.
            for node in tree.nodes.iter().filter(|n| !n.is_leaf()) {
                let (l, r) = (
                    &tree.nodes[node.left as usize],
                    &tree.nodes[node.right as usize],
                );
                assert_eq!(node.count, l.count + r.count);
            }
        }
        // The first tree's root splits the strong feature; the weaker one is split too.
        let first = &model.trees[0];
        assert_eq!(first.nodes[0].feature, 0, "{first:?}");
        assert!(first.nodes.iter().any(|n| n.feature == 1), "{first:?}");
    }

    #[test]
    fn parallel_partition_and_histograms_match_the_serial_ones() {
        let (x, y) = noisy_rows(3 * PARTITION_CHUNK + 17);
        let data = four_features(&x, &y);
        let binned = bin_features(&data, 255);
        let gh: Vec<[f32; 2]> = y.iter().map(|&v| [v - 0.4, 0.25]).collect();
        // Every third row, so the partition sees a gathered, not an identity, order.
        let mut rows: Vec<u32> = (0..y.len() as u32).filter(|r| r % 3 != 1).collect();
        let expected: (Vec<u32>, Vec<u32>) = rows.iter().partition(|&&r| binned.bin(r, 0) <= 100);
        let mut scratch = Vec::new();
        let n_left = partition_rows(&mut rows, &mut scratch, |r| binned.bin(r, 0) <= 100);
        assert_eq!(n_left, expected.0.len());
        assert_eq!(rows[..n_left], expected.0[..]);
        assert_eq!(rows[n_left..], expected.1[..]);

        let hist = histogram(&binned, &gh, &rows);
        let mut serial = vec![Bucket::default(); binned.n_buckets()];
        for &r in &rows {
            for f in 0..4 {
                let b = &mut serial[binned.offsets[f] + usize::from(binned.bin(r, f))];
                b.g += f64::from(gh[r as usize][0]);
                b.h += f64::from(gh[r as usize][1]);
                b.n += 1;
            }
        }
        for (a, b) in hist.iter().zip(&serial) {
            assert_eq!((a.n, a.g, a.h), (b.n, b.g, b.h), "not the serial sums");
        }
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
