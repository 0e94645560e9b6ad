//! TreeSHAP (Lundberg, Erion & Lee, 2018, Algorithm 2): exact Shapley values of a tree
//! ensemble's raw output, in time polynomial in the depth. The value function is the
//! expectation over the training distribution as the trees saw it (node counts), so the
//! contributions plus [`Gbdt::expected_value`] equal the raw output exactly.

use super::{Gbdt, Tree};

#[derive(Clone, Copy, Debug)]
struct PathElement {
    feature: i64,
    zero: f64,
    one: f64,
    weight: f64,
}

fn extend(path: &mut Vec<PathElement>, zero: f64, one: f64, feature: i64) {
    let l = path.len();
    path.push(PathElement {
        feature,
        zero,
        one,
        weight: if l == 0 { 1.0 } else { 0.0 },
    });
    for i in (0..l).rev() {
        path[i + 1].weight += one * path[i].weight * (i + 1) as f64 / (l + 1) as f64;
        path[i].weight = zero * path[i].weight * (l - i) as f64 / (l + 1) as f64;
    }
}

fn unwind(path: &mut Vec<PathElement>, i: usize) {
    let l = path.len() - 1;
    let (one, zero) = (path[i].one, path[i].zero);
    let mut n = path[l].weight;
    for j in (0..l).rev() {
        if one != 0.0 {
            let t = path[j].weight;
            path[j].weight = n * (l + 1) as f64 / ((j + 1) as f64 * one);
            n = t - path[j].weight * zero * (l - j) as f64 / (l + 1) as f64;
        } else {
            path[j].weight = path[j].weight * (l + 1) as f64 / (zero * (l - j) as f64);
        }
    }
    for j in i..l {
        path[j].feature = path[j + 1].feature;
        path[j].zero = path[j + 1].zero;
        path[j].one = path[j + 1].one;
    }
    path.pop();
}

/// The total weight of the path with element `i` unwound (without changing `path`).
fn unwound_sum(path: &[PathElement], i: usize) -> f64 {
    let mut copy = path.to_vec();
    unwind(&mut copy, i);
    copy.iter().map(|e| e.weight).sum()
}

fn recurse(
    tree: &Tree,
    x: &[f32],
    phi: &mut [f64],
    node: usize,
    mut path: Vec<PathElement>,
    (zero, one, feature): (f64, f64, i64),
) {
    extend(&mut path, zero, one, feature);
    let n = &tree.nodes[node];
    if n.is_leaf() {
        for i in 1..path.len() {
            let w = unwound_sum(&path, i);
            let e = path[i];
            phi[e.feature as usize] += w * (e.one - e.zero) * f64::from(n.value);
        }
        return;
    }
    let split = i64::from(n.feature);
    let (hot, cold) = if x[n.feature as usize] <= n.threshold {
        (n.left as usize, n.right as usize)
    } else {
        (n.right as usize, n.left as usize)
    };
    let (mut incoming_zero, mut incoming_one) = (1.0, 1.0);
    if let Some(k) = path.iter().position(|e| e.feature == split) {
        incoming_zero = path[k].zero;
        incoming_one = path[k].one;
        unwind(&mut path, k);
    }
    let cover = f64::from(n.count.max(1));
    let hot_share = f64::from(tree.nodes[hot].count) / cover;
    let cold_share = f64::from(tree.nodes[cold].count) / cover;
    let hot_split = (incoming_zero * hot_share, incoming_one, split);
    recurse(tree, x, phi, hot, path.clone(), hot_split);
    recurse(
        tree,
        x,
        phi,
        cold,
        path,
        (incoming_zero * cold_share, 0.0, split),
    );
}

impl Tree {
    /// The tree's expected output over its training rows (leaf values weighted by count).
    pub fn expected_value(&self) -> f64 {
        let root = f64::from(self.nodes[0].count.max(1));
        self.nodes
            .iter()
            .filter(|n| n.is_leaf())
            .map(|n| f64::from(n.value) * f64::from(n.count) / root)
            .sum()
    }

    /// Adds this tree's SHAP values for row `x` to `phi`.
    pub fn shap_into(&self, x: &[f32], phi: &mut [f64]) {
        recurse(self, x, phi, 0, Vec::with_capacity(16), (1.0, 1.0, -1));
    }
}

impl Gbdt {
    /// The expected raw output: what the contributions of [`Gbdt::shap_values`] start from.
    pub fn expected_value(&self) -> f64 {
        f64::from(self.base) + self.trees.iter().map(Tree::expected_value).sum::<f64>()
    }

    /// Each feature's contribution to the raw output of row `x` (TreeSHAP); they add up to
    /// `predict_raw(x) - expected_value()`.
    pub fn shap_values(&self, x: &[f32]) -> Vec<f64> {
        let mut phi = vec![0.0; self.n_features];
        for tree in &self.trees {
            tree.shap_into(x, &mut phi);
        }
        phi
    }
}

#[cfg(test)]
mod tests {
    use super::super::*;

    fn leaf(value: f32, count: u32) -> Node {
        Node {
            feature: u32::MAX,
            threshold: 0.0,
            left: 0,
            right: 0,
            value,
            count,
            gain: 0.0,
        }
    }

    fn split(feature: u32, threshold: f32, left: u32, right: u32, count: u32) -> Node {
        Node {
            feature,
            threshold,
            left,
            right,
            value: 0.0,
            count,
            gain: 1.0,
        }
    }

    /// E[f(x) | x_S] the way TreeSHAP defines it: follow x on features in S, otherwise
    /// average the children by their counts.
    fn conditional(tree: &Tree, x: &[f32], known: &[bool], node: usize) -> f64 {
        let n = &tree.nodes[node];
        if n.is_leaf() {
            return f64::from(n.value);
        }
        if known[n.feature as usize] {
            let next = if x[n.feature as usize] <= n.threshold {
                n.left
            } else {
                n.right
            };
            return conditional(tree, x, known, next as usize);
        }
        let (l, r) = (&tree.nodes[n.left as usize], &tree.nodes[n.right as usize]);
        (f64::from(l.count) * conditional(tree, x, known, n.left as usize)
            + f64::from(r.count) * conditional(tree, x, known, n.right as usize))
            / f64::from(n.count)
    }

    /// Shapley values by enumerating every subset of features.
    fn brute_force(tree: &Tree, x: &[f32], m: usize) -> Vec<f64> {
        let factorial = |k: usize| (1..=k).product::<usize>() as f64;
        let mut phi = vec![0.0; m];
        for i in 0..m {
            for mask in 0..(1usize << m) {
                if mask & (1 << i) != 0 {
                    continue;
                }
                let s = mask.count_ones() as usize;
                let weight = factorial(s) * factorial(m - s - 1) / factorial(m);
                let mut known: Vec<bool> = (0..m).map(|j| mask & (1 << j) != 0).collect();
                let without = conditional(tree, x, &known, 0);
                known[i] = true;
                phi[i] += weight * (conditional(tree, x, &known, 0) - without);
            }
        }
        phi
    }

    #[test]
    fn a_one_split_tree_by_hand() {
        // x0 ≤ 0.5 → 1.0 (3 rows), else 5.0 (1 row). Expected value (3·1 + 5)/4 = 2.
        let tree = Tree {
            nodes: vec![split(0, 0.5, 1, 2, 4), leaf(1.0, 3), leaf(5.0, 1)],
        };
        assert!((tree.expected_value() - 2.0).abs() < 1e-12);
        let mut phi = vec![0.0; 2];
        tree.shap_into(&[0.0, 9.0], &mut phi);
        assert!(
            (phi[0] + 1.0).abs() < 1e-12 && phi[1].abs() < 1e-12,
            "{phi:?}"
        );
    }

    #[test]
    fn agrees_with_brute_force_shapley_on_a_tree_that_reuses_a_feature() {
        // Depth 3, feature 0 used twice on a path, feature 2 never: the hard cases.
        let tree = Tree {
            nodes: vec![
                split(0, 0.5, 1, 2, 100),
                split(1, 0.3, 3, 4, 60),
                split(0, 0.8, 5, 6, 40),
                leaf(-1.0, 25),
                split(0, 0.2, 7, 8, 35),
                leaf(2.0, 30),
                leaf(4.0, 10),
                leaf(0.5, 15),
                leaf(3.0, 20),
            ],
        };
        for x in [
            [0.1, 0.9, 0.0],
            [0.3, 0.1, 1.0],
            [0.9, 0.5, 0.0],
            [0.6, 0.2, 0.0],
        ] {
            let mut phi = vec![0.0; 3];
            tree.shap_into(&x, &mut phi);
            let exact = brute_force(&tree, &x, 3);
            for (a, b) in phi.iter().zip(&exact) {
                assert!((a - b).abs() < 1e-9, "{x:?}: {phi:?} vs {exact:?}");
            }
            let total = tree.expected_value() + phi.iter().sum::<f64>();
            assert!((total - f64::from(tree.predict(&x))).abs() < 1e-9);
        }
    }

    #[test]
    fn contributions_add_up_to_the_ensemble_output() {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for i in 0..3000usize {
            let row = [
                ((i * 37) % 101) as f32 / 100.0,
                ((i * 53) % 97) as f32 / 96.0,
                ((i * 11) % 7) as f32,
            ];
            y.push(f32::from(row[0] + 0.5 * row[1] > 0.7 || row[2] > 5.0));
            x.extend(row);
        }
        let data = GbdtData {
            features: &x,
            n_features: 3,
            labels: &y,
            groups: &[],
        };
        let model = Gbdt::fit(
            &GbdtConfig {
                trees: 40,
                ..GbdtConfig::default()
            },
            &data,
            None,
        )
        .unwrap();
        for r in (0..3000).step_by(97) {
            let row = &x[r * 3..r * 3 + 3];
            let phi = model.shap_values(row);
            let total = model.expected_value() + phi.iter().sum::<f64>();
            // The output summed in f64, so that only TreeSHAP's own error is measured.
            let output = f64::from(model.base)
                + model
                    .trees
                    .iter()
                    .map(|t| f64::from(t.predict(row)))
                    .sum::<f64>();
            assert!(
                (total - output).abs() < 1e-6,
                "row {r}: {total} vs {output}"
            );
        }
    }
}
