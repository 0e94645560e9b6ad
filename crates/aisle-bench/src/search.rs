//! `aisle-bench search`: personalised product search on the bundled Instacart sample, after
//! Ai et al. (SIGIR 2017); writes bench/results/search.md.
//!
//! Variants, all on the same searches and scored by the same metric code: aisle's BM25,
//! semantic only (MiniLM + IVF), hybrid (reciprocal-rank fusion), hybrid with the
//! LambdaMART re-ranker, and any peer's ranked lists given with `--peer NAME=FILE` (the
//! `rank_bm25` peer of bench/search.sh reads the files `--export` writes).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use aisle_eval::product_search::{
    CaseContext, SearchCase, SearchScores, popularity_features, ranker_queries, run_cases,
    score_lists, search_split, split_by_user,
};
use aisle_features::EventLog;
use aisle_models::{Model, ModelConfig, Recommender, TrainDataBuilder};
use aisle_search::{
    EngineConfig, FieldBoosts, LearnedRanker, RankerConfig, SearchEngine, SearchMode,
    SentenceEncoder, TextIndex, load_catalogue, load_vectors, save_vectors,
};
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct SearchArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/search.md")]
    out: PathBuf,
    /// Write the test searches, documents and relevant items as TSV here (for peers) and stop.
    #[arg(long)]
    export: Option<PathBuf>,
    /// A peer's ranked lists: NAME=FILE, lines `QUERY_INDEX<TAB>ITEM ITEM ...` (dense item ids).
    #[arg(long)]
    peer: Vec<String>,
    /// Where item vectors are cached between runs.
    #[arg(long, default_value = ".cache/search-bench")]
    cache: PathBuf,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
    /// Recommender whose score is a re-ranking feature.
    #[arg(long, default_value = "itemknn")]
    recommender: String,
}

fn fit_recommender(
    name: &str,
    log: &EventLog,
    catalogue: &[Option<aisle_core::Item>],
) -> anyhow::Result<Model> {
    let data = TrainDataBuilder::new().items(catalogue.to_vec()).build(log);
    let mut model = Model::build(&ModelConfig::default_for(name)?);
    model.fit(&data)?;
    Ok(model)
}

fn contexts(
    cases: &[SearchCase],
    engine: &SearchEngine,
    model: &dyn Recommender,
) -> Vec<CaseContext> {
    use rayon::prelude::*;
    cases
        .par_iter()
        .map(|c| CaseContext::new(c, engine, Some(model)))
        .collect()
}

fn document_text(item: &aisle_core::Item) -> String {
    let mut text = item.title.clone();
    for extra in [
        item.brand.as_deref().unwrap_or(""),
        item.description.as_str(),
    ] {
        if !extra.is_empty() {
            text.push(' ');
            text.push_str(extra);
        }
    }
    text
}

fn export(
    dir: &Path,
    cases: &[SearchCase],
    catalogue: &[Option<aisle_core::Item>],
) -> anyhow::Result<()> {
    fs_err::create_dir_all(dir)?;
    let mut docs = String::new();
    for (i, item) in catalogue.iter().enumerate() {
        if let Some(item) = item {
            writeln!(
                docs,
                "{i}\t{}",
                document_text(item).replace(['\t', '\n'], " ")
            )?;
        }
    }
    let mut queries = String::new();
    let mut qrels = String::new();
    for (q, case) in cases.iter().enumerate() {
        writeln!(queries, "{q}\t{}", case.query)?;
        for r in &case.relevant {
            writeln!(qrels, "{q}\t{r}")?;
        }
    }
    fs_err::write(dir.join("docs.tsv"), docs)?;
    fs_err::write(dir.join("queries.tsv"), queries)?;
    fs_err::write(dir.join("qrels.tsv"), qrels)?;
    eprintln!(
        "wrote {} documents and {} searches to {}",
        catalogue.iter().flatten().count(),
        cases.len(),
        dir.display()
    );
    Ok(())
}

fn read_peer(spec: &str, n_cases: usize) -> anyhow::Result<(String, Vec<Vec<u32>>)> {
    let (name, file) = spec
        .split_once('=')
        .with_context(|| format!("--peer {spec:?}: expected NAME=FILE"))?;
    let text = fs_err::read_to_string(file)?;
    let mut lists = vec![Vec::new(); n_cases];
    for (n, line) in text.lines().enumerate() {
        let (q, items) = line.split_once('\t').unwrap_or((line, ""));
        let q: usize = q
            .trim()
            .parse()
            .with_context(|| format!("{file}:{}: bad query index {q:?}", n + 1))?;
        if q >= n_cases {
            bail!(
                "{file}:{}: query index {q} is beyond the {n_cases} searches",
                n + 1
            );
        }
        lists[q] = items
            .split_whitespace()
            .map(|i| {
                i.parse::<u32>()
                    .with_context(|| format!("{file}:{}: bad item id {i:?}", n + 1))
            })
            .collect::<anyhow::Result<_>>()?;
    }
    Ok((name.to_string(), lists))
}

/// The encoder named by `AISLE_ENCODER`, else the fetched one, else none.
fn find_encoder() -> anyhow::Result<Option<SentenceEncoder>> {
    let explicit = std::env::var_os(aisle_search::ENCODER_ENV).map(PathBuf::from);
    aisle_cli::commands::find_encoder(explicit.as_deref())
}

pub fn run(args: SearchArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let store = aisle_import::instacart_in_memory(&args.sample)
        .context("while importing the bundled Instacart sample")?;
    let catalogue = load_catalogue(&store)?;
    let log = EventLog::load(&store)?;
    let split = search_split(&log, &catalogue)?;
    eprintln!(
        "{} training searches, {} test searches over {} products",
        split.train.len(),
        split.test.len(),
        catalogue.iter().flatten().count()
    );
    if let Some(dir) = &args.export {
        return export(dir, &split.test, &catalogue);
    }

    // The category is the query in this protocol, so it is neither searched nor embedded.
    let mut text = TextIndex::in_memory()?;
    text.set_boosts(FieldBoosts {
        category: 0.0,
        ..FieldBoosts::default()
    });
    let config = EngineConfig {
        embed_category: false,
        ..EngineConfig::default()
    };
    let mut engine = SearchEngine::new(text, config);
    let encoder = find_encoder()?.map(Arc::new);
    let mut embed_seconds = None;
    let mut fingerprint = String::new();
    if let Some(encoder) = &encoder {
        fingerprint = format!("{}-titles", encoder.fingerprint()?);
        let cached = load_vectors(&args.cache.join("vectors.bin"), &fingerprint, None)?;
        if cached.is_none() {
            embed_seconds = Some(0.0);
        }
        engine.set_encoder(encoder.clone(), cached.unwrap_or_default())?;
    } else {
        eprintln!(
            "no sentence encoder (run scripts/fetch-encoder.sh): semantic variants are skipped"
        );
    }
    let bar = aisle_cli::commands::progress_bar(
        catalogue.iter().flatten().count() as u64,
        "indexing and embedding",
    );
    let t = Instant::now();
    engine.sync_catalogue(catalogue.clone(), &|n| bar.inc(n as u64))?;
    bar.finish_and_clear();
    if let Some(seconds) = embed_seconds.as_mut() {
        *seconds = t.elapsed().as_secs_f64();
    }
    if let Some(vectors) = engine.vectors() {
        save_vectors(&args.cache.join("vectors.bin"), &fingerprint, vectors, None)?;
    }
    let semantic = engine.vectors().is_some();
    // How much of the exact top 100 the IVF index returns, on the test searches' queries.
    // Reuses the loaded encoder rather than reading the weights again.
    let ivf_recall = match (engine.vectors(), &encoder) {
        (Some(vectors), Some(encoder)) => {
            use aisle_search::TextEncoder;
            let mut queries: Vec<&str> = split.test.iter().map(|c| c.query.as_str()).collect();
            queries.sort_unstable();
            queries.dedup();
            let embedded = encoder.encode(&queries)?;
            let mut found = 0usize;
            for q in &embedded {
                let exact: std::collections::HashSet<_> = vectors
                    .search_exact(q, 100)
                    .into_iter()
                    .map(|h| h.0)
                    .collect();
                found += vectors
                    .search(q, 100)
                    .iter()
                    .filter(|h| exact.contains(&h.0))
                    .count();
            }
            Some((
                found as f64 / (100 * embedded.len()).max(1) as f64,
                embedded.len(),
            ))
        }
        _ => None,
    };
    let base_mode = if semantic {
        SearchMode::Hybrid
    } else {
        SearchMode::Lexical
    };

    // Learn the re-ranker on the second-to-last orders, seeing only what came before them.
    let (pop, recent) = popularity_features(&split.before_train);
    engine.set_popularity(pop, recent);
    let recommender = fit_recommender(&args.recommender, &split.before_train, &catalogue)?;
    let train_contexts = contexts(&split.train, &engine, &recommender);
    let config = RankerConfig::default();
    let t = Instant::now();
    let queries = ranker_queries(
        &engine,
        &split.train,
        &train_contexts,
        base_mode,
        config.depth,
    )?;
    let (train, valid) = split_by_user(queries, 0.2);
    eprintln!(
        "training the re-ranker on {} searches ({} for early stopping)",
        train.len(),
        valid.len()
    );
    let ranker = LearnedRanker::train(&config, &train, &valid)?;
    let ranker_seconds = t.elapsed().as_secs_f64();
    drop(train_contexts);

    // Test on the last orders, with popularity and the recommender refitted up to them.
    let (pop, recent) = popularity_features(&split.before_test);
    engine.set_popularity(pop, recent);
    let recommender = fit_recommender(&args.recommender, &split.before_test, &catalogue)?;
    let test_contexts = contexts(&split.test, &engine, &recommender);
    let mut rows: Vec<SearchScores> = Vec::new();
    let mut variants = vec![("aisle BM25 (lexical)", SearchMode::Lexical, false)];
    if semantic {
        variants.push((
            "aisle semantic (MiniLM-L6 + IVF)",
            SearchMode::Semantic,
            false,
        ));
        variants.push((
            "aisle hybrid (BM25 + semantic, RRF)",
            SearchMode::Hybrid,
            false,
        ));
    }
    engine.set_ranker(Some(ranker.clone()));
    for (name, mode, personalise) in variants {
        let lists = run_cases(&engine, &split.test, &test_contexts, mode, personalise)?;
        rows.push(score_lists(name, &split.test, &lists));
    }
    for spec in &args.peer {
        let (name, lists) = read_peer(spec, split.test.len())?;
        rows.push(score_lists(&name, &split.test, &lists));
    }
    let personal_name = if semantic {
        "aisle hybrid + personalised re-ranking (LambdaMART)"
    } else {
        "aisle BM25 + personalised re-ranking (LambdaMART)"
    };
    let lists = run_cases(&engine, &split.test, &test_contexts, base_mode, true)?;
    rows.push(score_lists(personal_name, &split.test, &lists));

    let mut md = String::new();
    writeln!(
        md,
        "# Personalised product search on the bundled Instacart sample"
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Command: `bash bench/search.sh` (runs `aisle-bench search` with the `rank_bm25` peer)."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "Protocol (Ai et al., SIGIR 2017, on orders): each user's last order gives the test searches. The products"
    )?;
    writeln!(
        md,
        "bought from one aisle make one search, whose query is the aisle's and department's words and whose relevant"
    )?;
    writeln!(
        md,
        "items are those products. Only behaviour before the order is visible (history, popularity, the {} recommender).",
        args.recommender
    )?;
    writeln!(
        md,
        "The documents are the 49,688 product titles (the category text is the query, so it is not searchable)."
    )?;
    writeln!(
        md,
        "The re-ranker learns from the searches of each user's second-to-last order, with only earlier behaviour visible."
    )?;
    writeln!(md)?;
    writeln!(
        md,
        "{} test searches from {} users; {} training searches.",
        split.test.len(),
        split
            .test
            .iter()
            .map(|c| c.user)
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        split.train.len()
    )?;
    writeln!(md)?;
    writeln!(md, "| variant | NDCG@10 | Recall@10 |")?;
    writeln!(md, "| --- | ---: | ---: |")?;
    for row in &rows {
        writeln!(
            md,
            "| {} | {:.4} | {:.4} |",
            row.name, row.ndcg_10, row.recall_10
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Re-ranker: LambdaMART, {} trees (early stopping on held-out users), depth {}, trained in {ranker_seconds:.1} s.",
        ranker.model().trees.len(),
        ranker.depth
    )?;
    writeln!(md, "Feature importance (total split gain, top 8):")?;
    writeln!(md)?;
    let importance = ranker.importance();
    let total: f64 = importance.iter().map(|f| f.1).sum::<f64>().max(1e-12);
    for (name, gain) in importance.iter().take(8) {
        writeln!(md, "- {name}: {:.1}%", 100.0 * gain / total)?;
    }
    if let Some((recall, n)) = ivf_recall {
        writeln!(md)?;
        writeln!(
            md,
            "IVF index: recall@100 against exact nearest neighbours {recall:.3} over the {n} distinct test queries."
        )?;
    }
    if let Some(seconds) = embed_seconds {
        writeln!(md)?;
        writeln!(
            md,
            "Embedding the catalogue with MiniLM-L6 took {seconds:.0} s ({:.0} titles/s on this machine); vectors are cached.",
            catalogue.iter().flatten().count() as f64 / seconds.max(1e-9)
        )?;
    }
    writeln!(md)?;
    writeln!(
        md,
        "Total run time {:.0} s.",
        started.elapsed().as_secs_f64()
    )?;
    if let Some(dir) = args.out.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    Ok(())
}
