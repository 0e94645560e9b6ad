//! `aisle eval`: offline evaluation and the leaderboard.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::PathBuf;

use aisle_eval::{
    EvalSettings, LeaderboardRow, Protocol, html_report, leaderboard_table, score_ranked,
};
use aisle_features::{CleaningConfig, EventLog, KindWeights};
use aisle_models::{MODEL_NAMES, TrainDataBuilder};
use anyhow::{Context, bail};
use serde_json::json;

use super::DataDir;

#[derive(clap::Args, Debug)]
#[command(
    after_help = "Models: pop, itemknn, userknn, rp3beta, ease, als, bpr, puresvd, tfidf, sknn, sr, hybrid, transformer, caser, gru4rec.\n\n\
Example:\n  aisle eval --data-dir shop --protocol loo --models pop,itemknn,ease,als --tune --json out.json --report out.html"
)]
pub struct Args {
    #[command(flatten)]
    pub data: DataDir,
    /// Protocol: loo (leave last one out), temporal (global time split) or session (next item in session).
    #[arg(long, value_parser = ["loo", "temporal", "session"])]
    pub protocol: String,
    /// Comma-separated model names.
    #[arg(long, value_delimiter = ',', required = true)]
    pub models: Vec<String>,
    /// Tune each model on a validation split cut from the training data.
    #[arg(long)]
    pub tune: bool,
    /// Settings tried per model when tuning.
    #[arg(long, default_value_t = 5)]
    pub budget: usize,
    /// Tune the transformer and Caser by successive halving within this many seconds of
    /// training each (their candidates train briefly, the best third three times as long,
    /// and so on), instead of training every candidate to the end.
    #[arg(long, value_name = "SECONDS")]
    pub tune_seconds: Option<f64>,
    /// Validation cases used for tuning (an even sample when there are more).
    #[arg(long, default_value_t = 5000)]
    pub validation_cases: usize,
    /// Cut-offs K.
    #[arg(long, value_delimiter = ',', default_value = "5,10,20")]
    pub ks: Vec<usize>,
    /// Temporal protocol: share of events in the test period.
    #[arg(long, default_value_t = 0.2)]
    pub test_fraction: f64,
    /// Temporal protocol: exclude items already in the user's history from the ranking.
    #[arg(long)]
    pub exclude_seen: bool,
    /// Session protocol: days at the end that are the test period.
    #[arg(long, default_value_t = 1.0)]
    pub test_days: f64,
    /// Weigh every event kind 1 (instead of view 1, cart 3, purchase 5, rating = its value).
    #[arg(long)]
    pub uniform_weights: bool,
    /// Weight of one event kind, KIND=WEIGHT (repeatable), e.g. --weight view=0.5 --weight purchase=10.
    #[arg(long = "weight", value_name = "KIND=WEIGHT")]
    pub weights: Vec<String>,
    /// Random seed for the models that have one (ALS, BPR, PureSVD); default: each model's own.
    #[arg(long)]
    pub seed: Option<u64>,
    /// A model's settings as JSON, replacing its defaults (repeatable), e.g.
    /// --config '{"model":"transformer","dropout":0.5}'.
    #[arg(long = "config", value_name = "JSON")]
    pub configs: Vec<String>,
    /// Write the leaderboard as JSON.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write an HTML report with charts.
    #[arg(long)]
    pub report: Option<PathBuf>,
    /// Write the split (training matrices and cases of the validation and test runs) here,
    /// for peers such as `implicit` to train on exactly the same data.
    #[arg(long)]
    pub export_split: Option<PathBuf>,
    /// Score a peer's top-N lists (NAME=FILE, one line per test case: `case item item ...`)
    /// with aisle's metrics, as extra leaderboard rows; FILE.json may give `fit_seconds`.
    #[arg(long = "peer")]
    pub peers: Vec<String>,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    for m in &args.models {
        if !MODEL_NAMES.contains(&m.as_str()) {
            bail!(
                "unknown model {m:?}; models are: {}",
                MODEL_NAMES.join(", ")
            );
        }
    }
    if let Some(seconds) = args.tune_seconds
        && !(seconds.is_finite() && seconds > 0.0)
    {
        bail!("--tune-seconds must be a positive number of seconds, e.g. --tune-seconds 1800");
    }
    if args.ks.is_empty() || args.ks.contains(&0) {
        bail!("--ks must list cut-offs of at least 1, e.g. --ks 5,10,20");
    }
    let protocol = match args.protocol.as_str() {
        "loo" => Protocol::LeaveOneOut,
        "temporal" => Protocol::Temporal {
            test_fraction: args.test_fraction,
            exclude_seen: args.exclude_seen,
        },
        _ => Protocol::Session {
            test_days: args.test_days,
        },
    };
    let store = args.data.open_existing_store()?;
    let mut log = EventLog::load(store.as_ref()).context("while reading events")?;
    log.clean(&CleaningConfig::default())?;
    let mut items = vec![None; store.counts()?.items];
    store.scan_items(&mut |id, item| items[id.index()] = Some(item))?;
    let mut weights = if args.uniform_weights {
        KindWeights::uniform()
    } else {
        KindWeights::default()
    };
    for pair in &args.weights {
        let (kind, weight) = pair
            .split_once('=')
            .with_context(|| format!("--weight {pair:?}: expected KIND=WEIGHT, e.g. view=0.5"))?;
        let weight: f32 = weight
            .trim()
            .parse()
            .with_context(|| format!("--weight {pair:?}: {weight:?} is not a number"))?;
        weights.weights.insert(kind.trim().to_string(), weight);
    }
    let builder = TrainDataBuilder::new()
        .weights(weights.clone())
        .items(items);
    let configs = args
        .configs
        .iter()
        .map(|text| {
            serde_json::from_str::<aisle_models::ModelConfig>(text)
                .with_context(|| format!("--config {text}: not a model config"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let progress = |message: &str| eprintln!("{message}");
    let settings = EvalSettings {
        configs,
        protocol,
        ks: args.ks.clone(),
        tune: args.tune,
        tune_budget: args.budget,
        tune_seconds: args.tune_seconds,
        max_validation_cases: args.validation_cases,
        weights: weights.clone(),
        builder: builder.clone(),
        progress: Some(&progress),
        seed: args.seed,
    };
    if let Some(dir) = &args.export_split {
        export_split(dir, &log, &settings)?;
    }
    let mut rows = aisle_eval::run_leaderboard(&log, &args.models, &settings)?;
    if !args.peers.is_empty() {
        let test = protocol.split(&log, &weights)?;
        let data = builder.build(&test.train);
        for peer in &args.peers {
            let (name, file) = peer.split_once('=').context("--peer takes NAME=FILE")?;
            let lists = read_lists(&PathBuf::from(file), test.cases.len())?;
            let result = score_ranked(&lists, &data, &test.cases, &args.ks);
            let meta: serde_json::Value = fs_err::read_to_string(format!("{file}.json"))
                .ok()
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or(json!({}));
            rows.push(LeaderboardRow {
                model: name.to_string(),
                config: meta
                    .get("config")
                    .map(|c| c.to_string())
                    .unwrap_or_default(),
                metrics: result.metrics,
                fit_seconds: meta
                    .get("fit_seconds")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN),
                score_seconds: meta
                    .get("score_seconds")
                    .and_then(|v| v.as_f64())
                    .unwrap_or(f64::NAN),
                cases: result.cases,
                tuning: Vec::new(),
            });
        }
    }
    let mut columns = Vec::new();
    for k in &args.ks {
        columns.push(format!("hr@{k}"));
        columns.push(format!("ndcg@{k}"));
    }
    columns.push(format!("mrr@{}", args.ks.last().copied().unwrap_or(20)));
    println!("{}", leaderboard_table(&rows, &columns));
    let dataset = args.data.data_dir.file_name().map_or_else(
        || args.data.data_dir.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let title = format!("aisle eval: {} protocol on {dataset}", protocol.name());
    if let Some(path) = &args.json {
        let value = json!({
            "data_dir": args.data.data_dir,
            "protocol": protocol,
            "ks": args.ks,
            "tuned": args.tune,
            "budget": args.budget,
            "models": rows.iter().map(|r| json!({
                "model": r.model,
                "metrics": r.metrics,
                "fit_seconds": r.fit_seconds,
                "score_seconds": r.score_seconds,
                "cases": r.cases,
                "config": r.config,
                "tuning": r.tuning,
            })).collect::<Vec<_>>(),
        });
        fs_err::write(path, serde_json::to_string_pretty(&value)?)?;
        eprintln!("wrote {}", path.display());
    }
    if let Some(path) = &args.report {
        fs_err::write(path, html_report(&title, &rows, &args.ks))?;
        eprintln!("wrote {}", path.display());
    }
    Ok(())
}

fn read_lists(path: &PathBuf, cases: usize) -> anyhow::Result<Vec<Vec<u32>>> {
    let text = fs_err::read_to_string(path)?;
    let mut lists = vec![Vec::new(); cases];
    for (n, line) in text.lines().enumerate() {
        let mut fields = line.split_ascii_whitespace();
        let Some(case) = fields.next() else { continue };
        let case: usize = case
            .parse()
            .with_context(|| format!("{}:{}: expected a case number", path.display(), n + 1))?;
        if case >= cases {
            bail!(
                "{}:{}: case {case} does not exist ({cases} cases)",
                path.display(),
                n + 1
            );
        }
        lists[case] = fields
            .map(|f| {
                f.parse::<u32>()
                    .with_context(|| format!("{}:{}: bad item id {f:?}", path.display(), n + 1))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok(lists)
}

/// Writes `{validation,test}_train.tsv` (user, item, value) and `{validation,test}_cases.tsv`
/// (case, user, history, relevant, exclude; lists comma-separated) in dense ids.
fn export_split(dir: &PathBuf, log: &EventLog, settings: &EvalSettings<'_>) -> anyhow::Result<()> {
    fs_err::create_dir_all(dir)?;
    let test = settings.protocol.split(log, &settings.weights)?;
    let validation = settings.protocol.split(&test.train, &settings.weights)?;
    for (name, split) in [("validation", &validation), ("test", &test)] {
        let data = settings.builder.build(&split.train);
        let mut train =
            std::io::BufWriter::new(fs_err::File::create(dir.join(format!("{name}_train.tsv")))?);
        writeln!(train, "user\titem\tvalue")?;
        for u in 0..data.n_users() as u32 {
            let (items, values) = data.matrix.row(u);
            for (i, v) in items.iter().zip(values) {
                writeln!(train, "{u}\t{i}\t{v}")?;
            }
        }
        let join = |v: &[u32]| v.iter().map(u32::to_string).collect::<Vec<_>>().join(",");
        let mut cases =
            std::io::BufWriter::new(fs_err::File::create(dir.join(format!("{name}_cases.tsv")))?);
        writeln!(cases, "case\tuser\thistory\trelevant\texclude")?;
        for (n, c) in split.cases.iter().enumerate() {
            let user = c.user.map_or(String::new(), |u| u.to_string());
            writeln!(
                cases,
                "{n}\t{user}\t{}\t{}\t{}",
                join(&c.history),
                join(&c.relevant),
                join(&c.exclude)
            )?;
        }
    }
    let shape: BTreeMap<&str, usize> = [("users", log.n_users()), ("items", log.n_items())]
        .into_iter()
        .collect();
    fs_err::write(dir.join("shape.json"), serde_json::to_string(&shape)?)?;
    eprintln!("wrote the split to {}", dir.display());
    Ok(())
}
