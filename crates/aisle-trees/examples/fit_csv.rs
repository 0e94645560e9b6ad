//! Fits the binary GBDT on exported CSV files (features then label, one header line) and
//! prints the time: `cargo run --release -p aisle-trees --example fit_csv -- TRAIN VALID`.
//! A quick loop for tuning the learner against `bench/purchase_peer.py` on the same files.

use std::time::Instant;

use aisle_trees::{Gbdt, GbdtConfig, GbdtData};

fn load(path: &str) -> (Vec<f32>, Vec<f32>, usize) {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut lines = text.lines();
    let n = lines.next().expect("a header").split(',').count() - 1;
    let (mut x, mut y) = (Vec::new(), Vec::new());
    for line in lines {
        let values: Vec<f32> = line
            .split(',')
            .map(|v| v.parse().expect("a number"))
            .collect();
        x.extend_from_slice(&values[..n]);
        y.push(values[n]);
    }
    (x, y, n)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (x, y, n) = load(&args[1]);
    let (vx, vy, _) = load(&args[2]);
    let config = GbdtConfig {
        trees: 500,
        learning_rate: 0.05,
        early_stopping_rounds: 30,
        ..GbdtConfig::default()
    };
    let data = |features, labels| GbdtData {
        features,
        n_features: n,
        labels,
        groups: &[],
    };
    let started = Instant::now();
    let model = Gbdt::fit(&config, &data(&x, &y), Some(&data(&vx, &vy))).expect("fit");
    println!(
        "{} trees in {:.2} s",
        model.trees.len(),
        started.elapsed().as_secs_f64()
    );
}
