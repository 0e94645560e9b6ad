//! Latency of one search over the 49,688-product Instacart catalogue: lexical, hybrid, and
//! hybrid with personalised re-ranking. Writes bench/results/search-latency.md.
//!
//! `cargo bench -p aisle-eval --bench search_latency` (needs scripts/fetch-encoder.sh once).
//! Queries are the protocol's test searches (aisle names), cycled. The hybrid timings include
//! embedding the query with MiniLM; the re-ranking timing also includes building the
//! shopper's profile and the item-kNN recommender's scores for them.

use std::sync::Arc;
use std::time::{Duration, Instant};

use aisle_eval::product_search::{
    CaseContext, popularity_features, ranker_queries, search_split, split_by_user,
};
use aisle_features::EventLog;
use aisle_models::{Model, ModelConfig, Recommender, TrainDataBuilder};
use aisle_search::{
    EngineConfig, LearnedRanker, RankerConfig, RankingContext, SearchEngine, SearchMode,
    SearchRequest, SentenceEncoder, TextIndex, load_catalogue, load_vectors, save_vectors,
};
use criterion::Criterion;

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
        .expect("the bundled sample imports");
    let catalogue = load_catalogue(&store).expect("catalogue");
    let log = EventLog::load(&store).expect("events");
    let split = search_split(&log, &catalogue).expect("protocol split");

    let encoder = SentenceEncoder::load(&aisle_testkit::encoder_dir()).expect("encoder");
    let fingerprint = format!("{}-full", encoder.fingerprint().expect("fingerprint"));
    let cache = aisle_testkit::repo_root().join(".cache/search-bench/vectors-full.bin");
    let saved = load_vectors(&cache, &fingerprint, None).expect("read cache");
    let mut engine = SearchEngine::new(
        TextIndex::in_memory().expect("index"),
        EngineConfig::default(),
    );
    engine
        .set_encoder(Arc::new(encoder), saved.unwrap_or_default())
        .expect("encoder");
    eprintln!("indexing (embedding the catalogue takes a few minutes the first time)");
    engine
        .sync_catalogue(catalogue.clone(), &|_| {})
        .expect("indexing");
    save_vectors(
        &cache,
        &fingerprint,
        engine.vectors().expect("vectors"),
        None,
    )
    .expect("write cache");

    let (pop, recent) = popularity_features(&split.before_test);
    engine.set_popularity(pop, recent);
    let data = TrainDataBuilder::new()
        .items(catalogue.clone())
        .build(&split.before_test);
    let mut recommender = Model::build(&ModelConfig::default_for("itemknn").expect("model"));
    recommender.fit(&data).expect("fit");
    // A ranker of the usual size (latency does not depend on how well it is trained).
    let train_cases = &split.train[..split.train.len().min(1500)];
    let contexts: Vec<CaseContext> = train_cases
        .iter()
        .map(|c| CaseContext::new(c, &engine, Some(&recommender)))
        .collect();
    let config = RankerConfig::default();
    let queries = ranker_queries(
        &engine,
        train_cases,
        &contexts,
        SearchMode::Hybrid,
        config.depth,
    )
    .expect("ranker data");
    let (train, valid) = split_by_user(queries, 0.2);
    let ranker = LearnedRanker::train(&config, &train, &valid).expect("ranker");
    let trees = ranker.model().trees.len();
    engine.set_ranker(Some(ranker));

    let cases = &split.test;
    let mut criterion = Criterion::default().configure_from_args().sample_size(30);
    let mut rows = Vec::new();
    for (name, mode, personalise, cache) in [
        ("lexical", SearchMode::Lexical, false, 0),
        (
            "hybrid, query embedding computed every time",
            SearchMode::Hybrid,
            false,
            0,
        ),
        (
            "hybrid + re-ranking, query embedding computed every time",
            SearchMode::Hybrid,
            true,
            0,
        ),
        (
            "hybrid, query embedding cached",
            SearchMode::Hybrid,
            false,
            10_000,
        ),
        (
            "hybrid + re-ranking, query embedding cached",
            SearchMode::Hybrid,
            true,
            10_000,
        ),
    ] {
        engine.set_query_cache(cache);
        if cache > 0 {
            // Warm the cache with every distinct query, so these rows time hits only.
            for case in cases {
                let request = SearchRequest {
                    query: case.query.clone(),
                    mode: Some(mode),
                    ..SearchRequest::default()
                };
                engine
                    .search(&request, &RankingContext::default())
                    .expect("warm-up");
            }
        }
        let mut samples: Vec<Duration> = Vec::new();
        let mut next = 0usize;
        criterion.bench_function(&format!("search/{name}"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let case = &cases[next % cases.len()];
                    next += 1;
                    let request = SearchRequest {
                        query: case.query.clone(),
                        mode: Some(mode),
                        personalise,
                        ..SearchRequest::default()
                    };
                    let t = Instant::now();
                    let response = if personalise {
                        let ctx =
                            CaseContext::new(case, &engine, Some(&recommender as &dyn Recommender));
                        engine.search(&request, &ctx.ranking(case.at_ms))
                    } else {
                        engine.search(&request, &RankingContext::default())
                    };
                    let elapsed = t.elapsed();
                    std::hint::black_box(response.expect("search"));
                    samples.push(elapsed);
                    total += elapsed;
                }
                total
            });
        });
        samples.sort();
        rows.push((
            name,
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples.len(),
        ));
    }
    criterion.final_summary();

    let mut md =
        String::from("# Search latency over the Instacart catalogue (49,688 products)\n\n");
    md.push_str("Command: `cargo bench -p aisle-eval --bench search_latency` (after `scripts/fetch-encoder.sh`).\n");
    md.push_str("One search at a time on this 2-core machine; queries are the protocol's test searches (aisle names), cycled;\n");
    md.push_str("every call of the Criterion run is recorded, warm-up included. Hybrid includes embedding the query with\n");
    md.push_str(&format!(
        "MiniLM-L6 and the IVF lookup; re-ranking adds the shopper's profile, item-kNN scores over the catalogue and\nLambdaMART ({trees} trees) over the top 100 plus 20 of the shopper's own items. Results: top 10 with facet counts.\n\n"
    ));
    md.push_str("\"Computed every time\" encodes each query with MiniLM (the cold cost); \"cached\" rows run after every distinct\nquery has been seen once, so they time the rest of the pipeline with the query embedding from the engine's cache.\n\n");
    md.push_str("| pipeline | p50 (ms) | p99 (ms) | calls |\n|---|---:|---:|---:|\n");
    for (name, p50, p99, n) in rows {
        md.push_str(&format!(
            "| {name} | {:.2} | {:.2} | {n} |\n",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3
        ));
    }
    let out = aisle_testkit::repo_root().join("bench/results/search-latency.md");
    std::fs::write(&out, &md).expect("write the report");
    print!("{md}");
}
