//! `aisle-bench transformer`: trains the transformer on a shared dataset under the
//! published protocol, scores it in float and int8, and writes a report with the training
//! curve beside the published rows and aisle's classic models.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use aisle_eval::{Protocol, evaluate, training_curve_svg};
use aisle_features::{CleaningConfig, EventLog, KindWeights};
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_models::{Query, Recommender, TrainDataBuilder, Transformer, TransformerConfig};
use aisle_store::ReadStore;
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct TransformerArgs {
    /// beauty, sports (Amazon, leave-one-out as in S3-Rec) or yoochoose (next item in session).
    #[arg(long, value_parser = ["beauty", "sports", "yoochoose"])]
    dataset: String,
    /// Folder holding the shared datasets.
    #[arg(long, env = "AISLE_SHARED_DATA", default_value = "../shared/data")]
    shared: PathBuf,
    /// Transformer settings as JSON (fields of the `transformer` model config).
    #[arg(long, default_value = "{}")]
    config: String,
    /// Folder for the report (transformer-DATASET.md and its .svg curve).
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Names the report transformer-DATASET-LABEL.md instead, to keep a variant's run
    /// beside the default's.
    #[arg(long)]
    label: Option<String>,
}

/// Published full-ranking rows on the S3-Rec files: (model, source, HR@10).
fn published(dataset: &str) -> &'static [(&'static str, &'static str, f64)] {
    match dataset {
        "beauty" => &[
            (
                "SASRec, full cross-entropy",
                "as reproduced (Klenitskiy & Vasilev 2023); the target of issue 4",
                0.086,
            ),
            ("TIGER", "Rajput et al., NeurIPS 2023", 0.0648),
        ],
        "sports" => &[("TIGER", "Rajput et al., NeurIPS 2023", 0.0400)],
        _ => &[],
    }
}

pub fn run(args: TransformerArgs) -> anyhow::Result<()> {
    let mut config: TransformerConfig = serde_json::from_str(&args.config)
        .with_context(|| format!("--config {}: not transformer settings", args.config))?;
    config.verbose = true;
    let (adapter, files, protocol) = match args.dataset.as_str() {
        "beauty" => (
            Adapter::S3Rec,
            vec![args.shared.join("amazon-seq-s3rec/Beauty.txt")],
            Protocol::LeaveOneOut,
        ),
        "sports" => (
            Adapter::S3Rec,
            vec![args.shared.join("amazon-seq-s3rec/Sports_and_Outdoors.txt")],
            Protocol::LeaveOneOut,
        ),
        _ => (
            Adapter::Yoochoose,
            vec![
                args.shared
                    .join("yoochoose-100k/yoochoose-clicks-100k_train_full.txt"),
                args.shared
                    .join("yoochoose-100k/yoochoose-clicks-100k_test.txt"),
            ],
            Protocol::Session { test_days: 1.0 },
        ),
    };
    for f in &files {
        if !f.is_file() {
            bail!(
                "{} is missing: point --shared at the shared datasets",
                f.display()
            );
        }
    }
    let store = aisle_store::MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(adapter),
        &files,
        &ImportOptions::default(),
    )?;
    let mut log = EventLog::load(&store)?;
    log.clean(&CleaningConfig::default())?;
    let mut items = vec![None; store.counts()?.items];
    store.scan_items(&mut |id, item| items[id.index()] = Some(item))?;
    let weights = KindWeights::default();
    let split = protocol.split(&log, &weights)?;
    let data = TrainDataBuilder::new()
        .weights(weights)
        .items(items)
        .build(&split.train);
    eprintln!(
        "{}: {} training events, {} test cases, {} items",
        args.dataset,
        split.train.len(),
        split.cases.len(),
        data.n_items()
    );

    let mut model = Transformer::new(config.clone());
    let started = Instant::now();
    let fit = model.fit(&data)?;
    let fit_seconds = started.elapsed().as_secs_f64();
    let peak_rss = crate::import::peak_rss_mib()?;
    let epochs = fit.loss_curve.len();
    let best_epoch = fit
        .validation_curve
        .iter()
        .enumerate()
        .max_by(|a, b| a.1.total_cmp(b.1).then(b.0.cmp(&a.0)))
        .map_or(0, |(i, _)| i + 1);
    let ks = [5, 10, 20];
    let float = evaluate(&model, &data, &split.cases, &ks);
    let float_latency = latency(&model, &split.cases);
    let float_bytes = model.item_table_bytes();
    model.set_int8(true);
    let int8 = evaluate(&model, &data, &split.cases, &ks);
    let int8_latency = latency(&model, &split.cases);
    let int8_bytes = model.item_table_bytes();
    model.set_int8(false);

    let name = match &args.label {
        Some(label) => format!("transformer-{}-{label}", args.dataset),
        None => format!("transformer-{}", args.dataset),
    };
    fs_err::create_dir_all(&args.out)?;
    let svg = training_curve_svg(
        &format!(
            "transformer on {}: training loss and validation NDCG@10",
            args.dataset
        ),
        &fit.loss_curve,
        &fit.validation_curve,
        "validation NDCG@10",
    );
    fs_err::write(args.out.join(format!("{name}.svg")), svg)?;

    let metric = |r: &aisle_eval::ModelResult, m: &str| r.metrics.get(m).copied().unwrap_or(0.0);
    let mut md = String::new();
    let _ = writeln!(
        md,
        "# Transformer on {} ({})\n",
        args.dataset,
        protocol.name()
    );
    let _ = writeln!(
        md,
        "Command: `cargo run --release -p aisle-bench -- transformer --dataset {}{} --config '{}'`\n",
        args.dataset,
        args.label
            .as_ref()
            .map(|l| format!(" --label {l}"))
            .unwrap_or_default(),
        args.config
    );
    let _ = writeln!(
        md,
        "Full ranking over all {} items; {} test cases; the history's items are excluded from the \
         ranking where the protocol says so (S3-Rec protocol for Amazon). The model's own \
         validation (each training sequence's last item) picked the epoch; the test items were \
         never seen in training.\n",
        data.n_items(),
        split.cases.len()
    );
    let _ = writeln!(md, "Settings: `{}`\n", serde_json::to_string(&config)?);
    md.push_str("| model | HR@5 | HR@10 | HR@20 | NDCG@5 | NDCG@10 | NDCG@20 | MRR@20 |\n|---|---|---|---|---|---|---|---|\n");
    for (label, r) in [
        ("aisle transformer (float)", &float),
        ("aisle transformer (int8 item table)", &int8),
    ] {
        let _ = writeln!(
            md,
            "| {label} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            metric(r, "hr@5"),
            metric(r, "hr@10"),
            metric(r, "hr@20"),
            metric(r, "ndcg@5"),
            metric(r, "ndcg@10"),
            metric(r, "ndcg@20"),
            metric(r, "mrr@20"),
        );
    }
    for (model, source, hr10) in published(&args.dataset) {
        let _ = writeln!(
            md,
            "| {model} (published: {source}) | | {hr10:.4} | | | | | |"
        );
    }
    md.push('\n');
    if let Some(classic) = classic_rows(&args.dataset) {
        md.push_str(&classic);
    }
    let _ = writeln!(md, "\n## Training\n");
    let _ = writeln!(
        md,
        "- Wall time {fit_seconds:.0} s: {epochs} epochs with validation (early stopping, patience {}), best validation epoch {best_epoch}{}.",
        config.patience,
        if config.refit {
            format!(", then a refit from scratch on every training event for {best_epoch} epochs")
        } else {
            String::new()
        }
    );
    let _ = writeln!(
        md,
        "- Throughput {:.0} training sequences/s over the whole fit (validation included), on {} cores.",
        fit.sequences_per_second.unwrap_or(0.0),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    let _ = writeln!(
        md,
        "- Peak resident memory of the process: {peak_rss:.0} MiB."
    );
    let _ = writeln!(md, "- Weights: {}.", model.n_parameters());
    let _ = writeln!(md, "\n![training curve]({name}.svg)\n");
    let _ = writeln!(md, "## int8 item table\n");
    let _ = writeln!(
        md,
        "| scoring | NDCG@10 | HR@10 | item table | one-query latency p50 | p99 |\n|---|---|---|---|---|---|"
    );
    for (label, r, bytes, (p50, p99)) in [
        ("float", &float, float_bytes, float_latency),
        ("int8", &int8, int8_bytes, int8_latency),
    ] {
        let _ = writeln!(
            md,
            "| {label} | {:.4} | {:.4} | {:.2} MiB | {p50:.0} µs | {p99:.0} µs |",
            metric(r, "ndcg@10"),
            metric(r, "hr@10"),
            bytes as f64 / 1_048_576.0
        );
    }
    let _ = writeln!(
        md,
        "\nNDCG@10 difference (int8 − float): {:+.4}; latency ratio int8/float (p50): {:.2}. \
         Latency is one `score` call (forward pass over the history plus scoring every item), \
         measured sequentially over up to 2,000 test cases.",
        metric(&int8, "ndcg@10") - metric(&float, "ndcg@10"),
        int8_latency.0 / float_latency.0.max(1e-9)
    );
    let path = args.out.join(format!("{name}.md"));
    fs_err::write(&path, md)?;
    println!(
        "{}: NDCG@10 {:.4}, HR@10 {:.4} (int8 {:.4}); report {}",
        args.dataset,
        metric(&float, "ndcg@10"),
        metric(&float, "hr@10"),
        metric(&int8, "hr@10"),
        path.display()
    );
    Ok(())
}

/// p50 and p99 of one-query scoring, in µs.
fn latency(model: &Transformer, cases: &[aisle_eval::TestCase]) -> (f64, f64) {
    let mut scores = vec![0f32; model.n_items()];
    let mut times: Vec<f64> = cases
        .iter()
        .take(2000)
        .map(|case| {
            let t = Instant::now();
            model.score(
                &Query {
                    user: case.user,
                    history: &case.history,
                    kinds: &case.kinds,
                    times_ms: &case.times_ms,
                },
                &mut scores,
            );
            t.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let at = |q: f64| {
        times
            .get(((times.len() as f64 - 1.0) * q) as usize)
            .copied()
            .unwrap_or(0.0)
    };
    (at(0.5), at(0.99))
}

/// The classic models' rows from the committed leaderboard of the same split, if any.
fn classic_rows(dataset: &str) -> Option<String> {
    let text = fs_err::read_to_string(format!("bench/results/leaderboard-{dataset}.json")).ok()?;
    let json: serde_json::Value = serde_json::from_str(&text).ok()?;
    let mut md = format!(
        "aisle's classic models on the same split (from `bench/results/leaderboard-{dataset}.json`, tuned):\n\n\
         | model | HR@5 | HR@10 | HR@20 | NDCG@5 | NDCG@10 | NDCG@20 |\n|---|---|---|---|---|---|---|\n"
    );
    for row in json.get("models")?.as_array()? {
        let m = |k: &str| row["metrics"][k].as_f64().unwrap_or(0.0);
        let _ = writeln!(
            md,
            "| {} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} | {:.4} |",
            row["model"].as_str().unwrap_or("?"),
            m("hr@5"),
            m("hr@10"),
            m("hr@20"),
            m("ndcg@5"),
            m("ndcg@10"),
            m("ndcg@20")
        );
    }
    Some(md)
}
