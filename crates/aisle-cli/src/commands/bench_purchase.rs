//! `aisle bench purchase`: reorder prediction on the bundled Instacart sample, aisle's GBDT
//! against a peer (LightGBM in bench/purchase.sh) on the same exported features and split.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use aisle_analytics::purchase::{REORDER_FEATURES, ReorderRows, auc, reorder_rows};
use aisle_features::EventLog;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_models::{Gbdt, GbdtConfig, GbdtData};
use aisle_store::MemStore;
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct PurchaseArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/purchase.md")]
    out: PathBuf,
    /// Write train.csv, valid.csv and test.csv (features and label) here and stop.
    #[arg(long)]
    export: Option<PathBuf>,
    /// A peer's test-set probabilities: NAME=FILE (one per line, test.csv order) and,
    /// optionally, its training seconds on the file's first line as `# seconds S`.
    #[arg(long)]
    peer: Vec<String>,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
}

fn split_by_user(rows: &ReorderRows, share: f64) -> (ReorderRows, ReorderRows) {
    let n = REORDER_FEATURES.len();
    let (mut train, mut valid) = (ReorderRows::default(), ReorderRows::default());
    for (r, &user) in rows.users.iter().enumerate() {
        // Every fifth user (by a fixed hash) validates: no user is on both sides.
        let held = (u64::from(user).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) % 1000
            < (share * 1000.0) as u64;
        let side = if held { &mut valid } else { &mut train };
        side.features
            .extend_from_slice(&rows.features[r * n..(r + 1) * n]);
        side.labels.push(rows.labels[r]);
        side.users.push(user);
    }
    (train, valid)
}

fn write_csv(path: &std::path::Path, rows: &ReorderRows) -> anyhow::Result<()> {
    let n = REORDER_FEATURES.len();
    let mut text = REORDER_FEATURES.join(",") + ",label\n";
    for (r, label) in rows.labels.iter().enumerate() {
        let row: Vec<String> = rows.features[r * n..(r + 1) * n]
            .iter()
            .map(|v| v.to_string())
            .collect();
        writeln!(text, "{},{label}", row.join(","))?;
    }
    fs_err::write(path, text)?;
    Ok(())
}

struct Scores {
    name: String,
    probabilities: Vec<f32>,
    seconds: Option<f64>,
    trees: Option<usize>,
}

fn metrics_row(s: &Scores, labels: &[f32]) -> String {
    let n = labels.len() as f64;
    let mut log_loss = 0.0;
    let (mut tp, mut fp, mut fn_, mut correct) = (0.0f64, 0.0f64, 0.0f64, 0.0f64);
    for (&p, &y) in s.probabilities.iter().zip(labels) {
        let q = f64::from(p).clamp(1e-12, 1.0 - 1e-12);
        log_loss -= if y > 0.5 { q.ln() } else { (1.0 - q).ln() };
        let predicted = p > 0.5;
        let actual = y > 0.5;
        if predicted == actual {
            correct += 1.0;
        }
        match (predicted, actual) {
            (true, true) => tp += 1.0,
            (true, false) => fp += 1.0,
            (false, true) => fn_ += 1.0,
            _ => {}
        }
    }
    format!(
        "| {} | {:.4} | {:.4} | {:.4} | {:.3} | {:.3} | {} | {} |",
        s.name,
        auc(&s.probabilities, labels),
        log_loss / n,
        correct / n,
        tp / (tp + fp).max(1.0),
        tp / (tp + fn_).max(1.0),
        s.trees.map_or("-".into(), |t| t.to_string()),
        s.seconds.map_or("-".into(), |t| format!("{t:.2}")),
    )
}

fn calibration(probabilities: &[f32], labels: &[f32]) -> String {
    let mut md = String::from(
        "| predicted | rows | mean predicted | observed rate |\n| --- | ---: | ---: | ---: |\n",
    );
    for bin in 0..10 {
        let (lo, hi) = (bin as f32 / 10.0, (bin + 1) as f32 / 10.0);
        let rows: Vec<(f32, f32)> = probabilities
            .iter()
            .zip(labels)
            .filter(|(p, _)| **p >= lo && (**p < hi || bin == 9))
            .map(|(p, y)| (*p, *y))
            .collect();
        if rows.is_empty() {
            continue;
        }
        let n = rows.len() as f64;
        let _ = writeln!(
            md,
            "| {lo:.1}-{hi:.1} | {} | {:.3} | {:.3} |",
            rows.len(),
            rows.iter().map(|r| f64::from(r.0)).sum::<f64>() / n,
            rows.iter().map(|r| f64::from(r.1)).sum::<f64>() / n
        );
    }
    md
}

pub fn run(args: PurchaseArgs) -> anyhow::Result<()> {
    let store = MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(Adapter::Instacart),
        std::slice::from_ref(&args.sample),
        &ImportOptions::default(),
    )
    .context("while importing the bundled Instacart sample")?;
    let log = EventLog::load(&store)?;
    // Train on each user's second-to-last order, test on the last; features from before each.
    let (train, valid) = split_by_user(&reorder_rows(&log, 1), 0.2);
    let test = reorder_rows(&log, 0);
    eprintln!(
        "{} training rows, {} validation rows, {} test rows",
        train.labels.len(),
        valid.labels.len(),
        test.labels.len()
    );
    if let Some(dir) = &args.export {
        fs_err::create_dir_all(dir)?;
        write_csv(&dir.join("train.csv"), &train)?;
        write_csv(&dir.join("valid.csv"), &valid)?;
        write_csv(&dir.join("test.csv"), &test)?;
        eprintln!("wrote {}/{{train,valid,test}}.csv", dir.display());
        return Ok(());
    }
    let n = REORDER_FEATURES.len();
    let config = GbdtConfig {
        trees: 500,
        learning_rate: 0.05,
        max_depth: 6,
        early_stopping_rounds: 30,
        ..GbdtConfig::default()
    };
    let started = Instant::now();
    let model = Gbdt::fit(
        &config,
        &GbdtData {
            features: &train.features,
            n_features: n,
            labels: &train.labels,
            groups: &[],
        },
        Some(&GbdtData {
            features: &valid.features,
            n_features: n,
            labels: &valid.labels,
            groups: &[],
        }),
    )?;
    let seconds = started.elapsed().as_secs_f64();
    let ours: Vec<f32> = test
        .features
        .chunks_exact(n)
        .map(|row| model.predict_probability(row))
        .collect();
    let mut rows = vec![Scores {
        name: "aisle GBDT".into(),
        probabilities: ours.clone(),
        seconds: Some(seconds),
        trees: Some(model.trees.len()),
    }];
    for spec in &args.peer {
        let (name, file) = spec
            .split_once('=')
            .with_context(|| format!("--peer {spec:?}: expected NAME=FILE"))?;
        let text = fs_err::read_to_string(file)?;
        let mut peer = Scores {
            name: name.into(),
            probabilities: Vec::new(),
            seconds: None,
            trees: None,
        };
        for (k, line) in text.lines().enumerate() {
            if let Some(meta) = line.strip_prefix('#') {
                for pair in meta.split_whitespace().collect::<Vec<_>>().chunks(2) {
                    match pair {
                        ["seconds", v] => peer.seconds = v.parse().ok(),
                        ["trees", v] => peer.trees = v.parse().ok(),
                        _ => {}
                    }
                }
                continue;
            }
            peer.probabilities.push(
                line.trim()
                    .parse()
                    .with_context(|| format!("{file}:{}: not a probability", k + 1))?,
            );
        }
        if peer.probabilities.len() != test.labels.len() {
            bail!(
                "{file}: {} probabilities for {} test rows",
                peer.probabilities.len(),
                test.labels.len()
            );
        }
        rows.push(peer);
    }
    let mut md = String::new();
    writeln!(md, "# Reorder prediction on the bundled Instacart sample")?;
    writeln!(md)?;
    writeln!(
        md,
        "Command: `bash bench/purchase.sh` (aisle's GBDT and the LightGBM peer on the same exported features)."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Task: for each user, will a product they bought before be in their next order? Training rows target each"
    )?;
    writeln!(
        md,
        "user's second-to-last order and test rows the last order; every feature uses only orders before the target."
    )?;
    writeln!(
        md,
        "Early stopping on 20% of the training users. {} training, {} validation and {} test rows, {:.1}% positive in test.",
        train.labels.len(),
        valid.labels.len(),
        test.labels.len(),
        100.0 * test.labels.iter().sum::<f32>() as f64 / test.labels.len() as f64
    )?;
    writeln!(
        md,
        "Both: at most 500 trees, learning rate 0.05, depth 6 (LightGBM: 63 leaves), 20 rows per leaf, L2 1, 255 bins, 2 threads."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "| model | AUC | log-loss | accuracy | precision | recall | trees | training s |"
    )?;
    writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for s in &rows {
        writeln!(md, "{}", metrics_row(s, &test.labels))?;
    }
    writeln!(md)?;
    writeln!(md, "Calibration of aisle's GBDT on the test rows:")?;
    writeln!(md)?;
    md.push_str(&calibration(&ours, &test.labels));
    writeln!(md)?;
    writeln!(md, "Global importance (total split gain):")?;
    writeln!(md)?;
    let gains = model.feature_gains();
    let total: f64 = gains.iter().sum::<f64>().max(1e-12);
    let mut named: Vec<(&str, f64)> = REORDER_FEATURES.iter().copied().zip(gains).collect();
    named.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (name, gain) in named {
        writeln!(md, "- {name}: {:.1}%", 100.0 * gain / total)?;
    }
    if let Some(dir) = args.out.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    Ok(())
}
