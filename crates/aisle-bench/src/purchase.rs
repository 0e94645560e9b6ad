//! `aisle-bench purchase`: purchase prediction on the bundled Instacart sample (reorders, and
//! departments in the next order), aisle's GBDT and MLP against a peer (LightGBM in
//! bench/purchase.sh) on the same exported features and split.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use aisle_analytics::purchase::{
    GROUP_FEATURES, PurchaseRows, REORDER_FEATURES, Target, auc, group_rows, item_departments,
    reorder_rows,
};
use aisle_features::EventLog;
use aisle_models::{Mlp, MlpConfig, MlpData};
use aisle_trees::{Gbdt, GbdtData};
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct PurchaseArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/purchase.md")]
    out: PathBuf,
    /// Write TASK/train.csv, TASK/valid.csv and TASK/test.csv (features and label) for each
    /// task (reorder, department) here and stop.
    #[arg(long)]
    export: Option<PathBuf>,
    /// A peer's test-set probabilities: TASK:NAME=FILE (one per line, test.csv order) and,
    /// optionally, its training seconds on the file's first line as `# seconds S`.
    #[arg(long)]
    peer: Vec<String>,
    /// An SVG chart of the reorder GBDT's global feature importance.
    #[arg(long, default_value = "bench/results/purchase-importance.svg")]
    chart: PathBuf,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
    /// Run the reorder task on the Complete Journey files in this folder instead (1.3 million
    /// training rows; the MLP is left out at that size).
    #[arg(long)]
    completejourney: Option<PathBuf>,
    /// Train (and validate) on a sample of whole users holding about this many rows, as the
    /// server's propensity models do past `aisle_analytics::propensity::MAX_TRAINING_ROWS`;
    /// the test rows stay whole. To measure what that cap costs.
    #[arg(long)]
    max_training_rows: Option<usize>,
}

fn write_csv(path: &std::path::Path, names: &[&str], rows: &PurchaseRows) -> anyhow::Result<()> {
    let n = names.len();
    let mut text = names.join(",") + ",label\n";
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

pub struct Scores {
    name: String,
    probabilities: Vec<f32>,
    seconds: Option<f64>,
    trees: Option<usize>,
}

pub fn metrics_row(s: &Scores, labels: &[f32]) -> String {
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

pub fn calibration(probabilities: &[f32], labels: &[f32]) -> String {
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

/// One prediction task: its name, feature names and rows.
struct Task {
    key: &'static str,
    title: &'static str,
    question: &'static str,
    features: &'static [&'static str],
    train: PurchaseRows,
    valid: PurchaseRows,
    test: PurchaseRows,
}

fn read_peer(spec: &str) -> anyhow::Result<(String, Scores)> {
    let (task, rest) = spec
        .split_once(':')
        .with_context(|| format!("--peer {spec:?}: expected TASK:NAME=FILE"))?;
    let (name, file) = rest
        .split_once('=')
        .with_context(|| format!("--peer {spec:?}: expected TASK:NAME=FILE"))?;
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
    Ok((task.to_string(), peer))
}

/// A dataset's tasks and how its report describes them.
struct Setup {
    tasks: Vec<Task>,
    dataset: &'static str,
    command: &'static str,
    /// Which orders the training rows target.
    training_targets: &'static str,
    with_mlp: bool,
}

/// The Instacart sample's two tasks.
fn instacart_tasks(sample: &std::path::Path) -> anyhow::Result<Setup> {
    let store = aisle_import::instacart_in_memory(sample)
        .context("while importing the bundled Instacart sample")?;
    let log = EventLog::load(&store)?;
    let (departments, department_names) = item_departments(&store)?;
    // Train on each user's second-to-last order, test on the last; features from before each.
    let (train, valid) =
        reorder_rows(&log, Target::Back(1)).split_by_user(REORDER_FEATURES.len(), 0.2);
    let reorder = Task {
        key: "reorder",
        title: "Reorder: will a product the user bought before be in their next order?",
        question: "one row per (user, product bought before)",
        features: &REORDER_FEATURES,
        train,
        valid,
        test: reorder_rows(&log, Target::Back(0)),
    };
    let n_departments = department_names.len();
    let (train, valid) = group_rows(&log, &departments, n_departments, Target::Back(1))
        .split_by_user(GROUP_FEATURES.len(), 0.2);
    let department = Task {
        key: "department",
        title: "Department: will the user's next order hold an item of department D?",
        question: "one row per (user, department)",
        features: &GROUP_FEATURES,
        train,
        valid,
        test: group_rows(&log, &departments, n_departments, Target::Back(0)),
    };
    Ok(Setup {
        tasks: vec![reorder, department],
        dataset: "the bundled Instacart sample",
        command: "bash bench/purchase.sh",
        training_targets: "second-to-last order",
        with_mlp: true,
    })
}

/// The reorder task on Complete Journey: each household's baskets are its orders.
fn completejourney_tasks(
    dir: &std::path::Path,
    max_training_rows: Option<usize>,
) -> anyhow::Result<Setup> {
    let store = aisle_import::in_memory(aisle_import::Adapter::CompleteJourney, dir)
        .with_context(|| format!("while importing Complete Journey from {}", dir.display()))?;
    let log = EventLog::load(&store)?;
    // Training rows target each household's second- and third-to-last baskets (features
    // from before each): over a million rows, where one target basket gives 835,000.
    let mut rows = reorder_rows(&log, Target::Back(1));
    let earlier = reorder_rows(&log, Target::Back(2));
    rows.features.extend(earlier.features);
    rows.labels.extend(earlier.labels);
    rows.users.extend(earlier.users);
    rows.subjects.extend(earlier.subjects);
    if let Some(cap) = max_training_rows.filter(|&cap| cap < rows.labels.len()) {
        let share = cap as f64 / rows.labels.len() as f64;
        rows = rows.sample_users(REORDER_FEATURES.len(), share);
    }
    let (train, valid) = rows.split_by_user(REORDER_FEATURES.len(), 0.2);
    let reorder = Task {
        key: "reorder",
        title: "Reorder: will a product the household bought before be in its next basket?",
        question: "one row per (household, product bought before)",
        features: &REORDER_FEATURES,
        train,
        valid,
        test: reorder_rows(&log, Target::Back(0)),
    };
    Ok(Setup {
        tasks: vec![reorder],
        dataset: "Complete Journey (1.47 million grocery lines; a demo and scale dataset, not a citable benchmark)",
        command: "bash bench/purchase.sh completejourney",
        training_targets: "second- and third-to-last baskets",
        with_mlp: false,
    })
}

pub fn run(args: PurchaseArgs) -> anyhow::Result<()> {
    let Setup {
        tasks,
        dataset,
        command,
        training_targets,
        with_mlp,
    } = match &args.completejourney {
        Some(dir) => completejourney_tasks(dir, args.max_training_rows)?,
        None => instacart_tasks(&args.sample)?,
    };
    if let Some(dir) = &args.export {
        for task in &tasks {
            let folder = dir.join(task.key);
            fs_err::create_dir_all(&folder)?;
            write_csv(&folder.join("train.csv"), task.features, &task.train)?;
            write_csv(&folder.join("valid.csv"), task.features, &task.valid)?;
            write_csv(&folder.join("test.csv"), task.features, &task.test)?;
            eprintln!("wrote {}/{{train,valid,test}}.csv", folder.display());
        }
        return Ok(());
    }
    let mut peers: Vec<(String, Scores)> = Vec::new();
    for spec in &args.peer {
        let (task, scores) = read_peer(spec)?;
        if !tasks.iter().any(|t| t.key == task) {
            let keys: Vec<&str> = tasks.iter().map(|t| t.key).collect();
            bail!("--peer {spec:?}: the tasks are {}", keys.join(" and "));
        }
        peers.push((task, scores));
    }

    let mut md = String::new();
    writeln!(md, "# Purchase prediction on {dataset}")?;
    writeln!(md)?;
    writeln!(
        md,
        "Command: `{command}` (aisle's GBDT{}, and the LightGBM peer on the same exported features).",
        if with_mlp { " and MLP" } else { "" }
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Temporal split: training rows target each user's {training_targets} and test rows the last order; every"
    )?;
    writeln!(
        md,
        "feature uses only orders before the target. Early stopping on 20% of the training users (none of them in both)."
    )?;
    writeln!(
        md,
        "GBDT and LightGBM: at most 500 trees, learning rate 0.05, depth 6 and 63 leaves grown leaf-wise, 20 rows per leaf, L2 1,"
    )?;
    writeln!(
        md,
        "255 bins, 2 threads; both time binning and training. MLP: the reference design (standard scaling, Dense 128 ReLU,"
    )?;
    writeln!(
        md,
        "Dropout 0.5, Dense 64 ReLU, Dropout 0.5, sigmoid; Adam 0.001, binary cross-entropy, batch 32, early stopping on"
    )?;
    writeln!(
        md,
        "validation loss, patience 10){}.",
        if with_mlp {
            ""
        } else {
            ", not run at this size"
        }
    )?;
    let mut importance_chart = None;
    for task in &tasks {
        let n = task.features.len();
        eprintln!(
            "{}: {} training, {} validation, {} test rows",
            task.key,
            task.train.labels.len(),
            task.valid.labels.len(),
            task.test.labels.len()
        );
        let started = Instant::now();
        let model = Gbdt::fit(
            &aisle_analytics::propensity::gbdt_config(),
            &GbdtData {
                features: &task.train.features,
                n_features: n,
                labels: &task.train.labels,
                groups: &[],
            },
            Some(&GbdtData {
                features: &task.valid.features,
                n_features: n,
                labels: &task.valid.labels,
                groups: &[],
            }),
        )?;
        let gbdt_seconds = started.elapsed().as_secs_f64();
        let ours: Vec<f32> = task
            .test
            .features
            .chunks_exact(n)
            .map(|row| model.predict_probability(row))
            .collect();
        let mut rows = vec![Scores {
            name: "aisle GBDT".into(),
            probabilities: ours.clone(),
            seconds: Some(gbdt_seconds),
            trees: Some(model.trees.len()),
        }];
        if with_mlp {
            let started = Instant::now();
            let mlp = Mlp::fit(
                &MlpConfig::default(),
                &MlpData {
                    features: &task.train.features,
                    n_features: n,
                    labels: &task.train.labels,
                },
                &MlpData {
                    features: &task.valid.features,
                    n_features: n,
                    labels: &task.valid.labels,
                },
            )?;
            rows.push(Scores {
                name: format!(
                    "aisle MLP (best of {} epochs: {})",
                    mlp.valid_loss.len(),
                    mlp.best_epoch + 1
                ),
                seconds: Some(started.elapsed().as_secs_f64()),
                probabilities: task
                    .test
                    .features
                    .chunks_exact(n)
                    .map(|row| mlp.predict_probability(row))
                    .collect(),
                trees: None,
            });
        }
        let first_peer = rows.len();
        for (peer_task, scores) in &peers {
            if peer_task == task.key {
                if scores.probabilities.len() != task.test.labels.len() {
                    bail!(
                        "peer {:?} for {}: {} probabilities for {} test rows",
                        scores.name,
                        task.key,
                        scores.probabilities.len(),
                        task.test.labels.len()
                    );
                }
                rows.push(Scores {
                    name: scores.name.clone(),
                    probabilities: scores.probabilities.clone(),
                    seconds: scores.seconds,
                    trees: scores.trees,
                });
            }
        }
        writeln!(md)?;
        writeln!(md, "## {}", task.title)?;
        writeln!(md)?;
        writeln!(
            md,
            "{}: {} training, {} validation and {} test rows, {:.1}% positive in test.",
            task.question,
            task.train.labels.len(),
            task.valid.labels.len(),
            task.test.labels.len(),
            100.0 * task.test.labels.iter().sum::<f32>() as f64 / task.test.labels.len() as f64
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
            writeln!(md, "{}", metrics_row(s, &task.test.labels))?;
        }
        if let (Some(peer), Some(seconds)) = (rows.get(first_peer), rows[0].seconds)
            && let Some(peer_seconds) = peer.seconds
        {
            writeln!(md)?;
            writeln!(
                md,
                "AUC difference aisle GBDT − {}: {:+.4}. Training-time ratio aisle GBDT / {}: {:.2}.",
                peer.name,
                auc(&rows[0].probabilities, &task.test.labels)
                    - auc(&peer.probabilities, &task.test.labels),
                peer.name,
                seconds / peer_seconds.max(1e-9)
            )?;
        }
        writeln!(md)?;
        writeln!(md, "Calibration of aisle's GBDT on the test rows:")?;
        writeln!(md)?;
        md.push_str(&calibration(&ours, &task.test.labels));
        writeln!(md)?;
        writeln!(md, "Global importance (share of total split gain):")?;
        writeln!(md)?;
        let gains = model.feature_gains();
        let total: f64 = gains.iter().sum::<f64>().max(1e-12);
        let mut named: Vec<(&str, f64)> = task.features.iter().copied().zip(gains).collect();
        named.sort_by(|a, b| b.1.total_cmp(&a.1));
        for (name, gain) in &named {
            writeln!(md, "- {name}: {:.1}%", 100.0 * gain / total)?;
        }
        if importance_chart.is_none() {
            importance_chart = Some(aisle_eval::bar_chart_svg(
                &format!(
                    "{}: global feature importance (share of split gain)",
                    task.key
                ),
                &named
                    .iter()
                    .map(|(name, gain)| ((*name).to_string(), gain / total))
                    .collect::<Vec<_>>(),
            ));
        }
    }
    if let Some(dir) = args.out.parent() {
        fs_err::create_dir_all(dir)?;
    }
    if let Some(svg) = importance_chart {
        fs_err::write(&args.chart, svg)?;
        writeln!(md)?;
        writeln!(
            md,
            "Chart of the reorder model's importance: {}",
            args.chart
                .file_name()
                .map(|f| f.to_string_lossy())
                .unwrap_or_default()
        )?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    Ok(())
}
