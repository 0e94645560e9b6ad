//! `aisle train` and `aisle recommend`: fit a model on everything in the store, save it in the
//! data directory, and ask it for top-N lists.

use std::path::{Path, PathBuf};

use aisle_core::EventKind;
use aisle_features::{CleaningConfig, EventLog, KindWeights};
use aisle_models::{
    MODEL_NAMES, Model, ModelConfig, Query, RecOptions, Recommender, Scored, TrainDataBuilder,
    recommend,
};
use anyhow::{Context, bail};
use serde_json::json;

use super::DataDir;

#[derive(clap::Args, Debug)]
pub struct TrainArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// Model name (pop, itemknn, userknn, rp3beta, ease, als, bpr, puresvd, tfidf, sknn, sr, hybrid).
    #[arg(long)]
    pub model: String,
    /// Model settings as JSON, e.g. '{"model":"als","factors":128}' (default: the model's defaults).
    #[arg(long)]
    pub config: Option<String>,
}

#[derive(clap::Args, Debug)]
pub struct RecommendArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// A model trained with `aisle train`.
    #[arg(long)]
    pub model: String,
    /// Recommend for this user (external id).
    #[arg(long, conflicts_with_all = ["items", "similar"])]
    pub user: Option<String>,
    /// Recommend for an anonymous session: its items (external ids), oldest first.
    #[arg(long, value_delimiter = ',', conflicts_with = "similar")]
    pub items: Vec<String>,
    /// Items similar to this one (external id).
    #[arg(long)]
    pub similar: Option<String>,
    /// How many.
    #[arg(short, long, default_value_t = 10)]
    pub k: usize,
    /// Leave out what the user already bought.
    #[arg(long)]
    pub exclude_bought: bool,
    /// Only items whose category path contains this name.
    #[arg(long)]
    pub category: Option<String>,
    /// Say why: for each item, the shopper's items that other shoppers chose with it.
    #[arg(long)]
    pub explain: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

/// The key model files are sealed under in an encrypted data directory; none in a plain one.
pub(super) fn models_key(data_dir: &Path) -> anyhow::Result<Option<aisle_seal::Key>> {
    Ok(aisle_store::keys::key_for(data_dir, "models")?)
}

fn model_path(data_dir: &Path, name: &str) -> PathBuf {
    data_dir.join("models").join(format!("{name}.model"))
}

pub fn train(args: TrainArgs) -> anyhow::Result<()> {
    if !MODEL_NAMES.contains(&args.model.as_str()) {
        bail!(
            "unknown model {:?}; models are: {}",
            args.model,
            MODEL_NAMES.join(", ")
        );
    }
    let config: ModelConfig = match &args.config {
        Some(text) => serde_json::from_str(text).context("while reading --config")?,
        None => ModelConfig::default_for(&args.model)?,
    };
    if config.name() != args.model {
        bail!(
            "--config is for {:?} but --model is {:?}",
            config.name(),
            args.model
        );
    }
    let store = args.data.open_existing_store()?;
    let mut log = EventLog::load(store.as_ref())?;
    log.clean(&CleaningConfig::default())?;
    let mut items = vec![None; store.counts()?.items];
    store.scan_items(&mut |id, item| items[id.index()] = Some(item))?;
    let data = TrainDataBuilder::new().items(items).build(&log);
    let started = std::time::Instant::now();
    let mut model = Model::build(&config);
    let report = model.fit(&data)?;
    let path = model_path(&args.data.data_dir, &args.model);
    model.save(&path, models_key(&args.data.data_dir)?.as_ref())?;
    println!(
        "trained {} on {} events in {:.1}s; saved to {}",
        args.model,
        crate::output::thousands(log.len() as u64),
        started.elapsed().as_secs_f64(),
        path.display()
    );
    if !report.loss_curve.is_empty() {
        // Models trained by epochs leave their training curve beside the model file.
        let chart = path.with_extension("curve.svg");
        let svg = aisle_eval::training_curve_svg(
            &format!("{}: training loss and validation metric", args.model),
            &report.loss_curve,
            &report.validation_curve,
            "validation NDCG@10",
        );
        fs_err::write(&chart, svg)?;
        println!("training curve: {}", chart.display());
    }
    Ok(())
}

pub fn recommend_command(args: RecommendArgs) -> anyhow::Result<()> {
    let path = model_path(&args.data.data_dir, &args.model);
    if !path.is_file() {
        bail!(
            "no trained {} model in {}: run aisle train --model {} first",
            args.model,
            args.data.data_dir.display(),
            args.model
        );
    }
    let model = Model::load(&path, models_key(&args.data.data_dir)?.as_ref())?;
    let store = args.data.open_existing_store()?;
    let item_id = |external: &str| -> anyhow::Result<u32> {
        store
            .item_id(external)?
            .map(|i| i.0)
            .with_context(|| format!("unknown item {external:?}"))
    };
    let mut exclude = Vec::new();
    let mut evidence: Vec<u32> = Vec::new();
    let results: Vec<Scored> = if let Some(item) = &args.similar {
        evidence.push(item_id(item)?);
        model.similar_items(item_id(item)?, args.k)
    } else {
        let (user, history, kinds, times_ms) = match &args.user {
            Some(external) => {
                let user = store
                    .user_id(external)?
                    .with_context(|| format!("unknown user {external:?}"))?;
                let mut log = EventLog::load(store.as_ref())?;
                log.clean(&CleaningConfig::default())?;
                let weights = KindWeights::default();
                let seen: Vec<_> = log
                    .events()
                    .iter()
                    .filter(|e| {
                        e.user == user.0 && e.item().is_some() && weights.weight(e.kind) != 0.0
                    })
                    .collect();
                let history: Vec<u32> = seen.iter().map(|e| e.item).collect();
                let kinds: Vec<EventKind> = seen.iter().map(|e| e.kind).collect();
                let times_ms: Vec<i64> = seen.iter().map(|e| e.timestamp_ms).collect();
                if args.exclude_bought {
                    exclude = log
                        .events()
                        .iter()
                        .filter(|e| {
                            e.user == user.0 && e.kind == EventKind::Purchase && e.item().is_some()
                        })
                        .map(|e| e.item)
                        .collect();
                }
                (Some(user.0), history, kinds, times_ms)
            }
            None => {
                if args.items.is_empty() {
                    bail!("say whom to recommend for: --user ID, --items A,B,C or --similar ITEM");
                }
                let history = args
                    .items
                    .iter()
                    .map(|i| item_id(i))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                exclude.extend(&history);
                (None, history, Vec::new(), Vec::new())
            }
        };
        evidence.clone_from(&history);
        let mut categories = vec![false; model.n_items()];
        if let Some(category) = &args.category {
            store.scan_items(&mut |id, item| {
                if let Some(slot) = categories.get_mut(id.index()) {
                    *slot = item
                        .category
                        .iter()
                        .any(|c| c.eq_ignore_ascii_case(category));
                }
            })?;
        }
        let in_category = |i: u32| categories.get(i as usize).copied().unwrap_or(false);
        let options = RecOptions {
            exclude: &exclude,
            filter: args
                .category
                .as_ref()
                .map(|_| &in_category as &(dyn Fn(u32) -> bool + Sync)),
        };
        recommend(
            &model,
            &Query {
                user,
                history: &history,
                kinds: &kinds,
                times_ms: &times_ms,
            },
            args.k,
            &options,
        )
    };
    let reasons = if args.explain {
        let log = EventLog::load(store.as_ref())?;
        let recommended: Vec<u32> = results.iter().map(|s| s.item).collect();
        aisle_models::explain::because(log.events(), &evidence, &recommended, 3)
    } else {
        vec![Vec::new(); results.len()]
    };
    let mut rows = Vec::new();
    for (s, because) in results.into_iter().zip(reasons) {
        let item = store.item(aisle_core::ItemId(s.item))?.unwrap_or_default();
        let because: Vec<(aisle_core::Item, aisle_models::explain::Because)> = because
            .into_iter()
            .map(|b| {
                Ok((
                    store.item(aisle_core::ItemId(b.item))?.unwrap_or_default(),
                    b,
                ))
            })
            .collect::<anyhow::Result<_>>()?;
        rows.push((item, s.score, because));
    }
    let verb = if args.similar.is_some() {
        "shoppers who chose"
    } else {
        "you chose"
    };
    if args.json {
        let out: Vec<_> = rows
            .iter()
            .map(|(item, score, because)| {
                let mut row = json!({"item": item.external_id, "title": item.title, "category": item.category, "score": score});
                if args.explain {
                    row["because"] = json!(because.iter().map(|(b, why)| json!({
                        "item": b.external_id, "title": b.title,
                        "shared_users": why.shared_users, "similarity": why.similarity,
                    })).collect::<Vec<_>>());
                }
                row
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        for (rank, (item, score, because)) in rows.iter().enumerate() {
            println!(
                "{:>3}. {:<10} {:<50} {:.4}  {}",
                rank + 1,
                item.external_id,
                item.title,
                score,
                item.category.join(" > ")
            );
            if args.explain {
                match because.first() {
                    None => println!(
                        "       popular with everyone (no shared shoppers with your items)"
                    ),
                    Some(_) => {
                        let parts: Vec<String> = because
                            .iter()
                            .map(|(b, why)| {
                                format!("{} ({} shoppers chose both)", b.title, why.shared_users)
                            })
                            .collect();
                        println!("       because {verb} {}", parts.join("; "));
                    }
                }
            }
        }
    }
    Ok(())
}
