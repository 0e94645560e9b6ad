//! Where the time of a search goes over the Instacart catalogue (a development aid):
//! `cargo run --release -p aisle-search --example profile` after the latency benchmark has
//! cached the item vectors.
use std::sync::Arc;
use std::time::Instant;

use aisle_search::{
    EngineConfig, RankingContext, SearchEngine, SearchMode, SearchRequest, SentenceEncoder,
    TextIndex, load_catalogue, load_vectors,
};

fn time(engine: &SearchEngine, queries: &[String], mode: SearchMode, label: &str) {
    let t = Instant::now();
    for q in queries {
        let r = SearchRequest {
            query: q.clone(),
            mode: Some(mode),
            ..SearchRequest::default()
        };
        engine
            .search(&r, &RankingContext::default())
            .expect("search");
    }
    println!(
        "{label}: {:.2} ms/query",
        t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64
    );
}

fn main() {
    let store =
        aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample()).expect("import");
    let catalogue = load_catalogue(&store).expect("catalogue");
    let mut queries: Vec<String> = catalogue
        .iter()
        .flatten()
        .map(|i| format!("{} {}", i.category[1], i.category[0]))
        .collect();
    queries.sort();
    queries.dedup();
    let encoder = SentenceEncoder::load(&aisle_testkit::encoder_dir()).expect("encoder");
    let fingerprint = format!("{}-full", encoder.fingerprint().expect("fingerprint"));
    let cache = aisle_testkit::repo_root().join(".cache/search-bench/vectors-full.bin");
    let mut vectors = load_vectors(&cache, &fingerprint, None)
        .expect("read")
        .expect("run the latency benchmark first");
    vectors.rebuild_lists(42);
    {
        use aisle_search::TextEncoder;
        let enc = SentenceEncoder::load(&aisle_testkit::encoder_dir()).expect("encoder");
        let qs: Vec<&str> = queries.iter().map(String::as_str).collect();
        let embedded = enc.encode(&qs).expect("encode");
        let mut v = vectors.clone();
        for probes in [4, 8, 16, 27, 48] {
            v.set_probes(probes);
            let t = Instant::now();
            let mut found = 0;
            for q in &embedded {
                found += v.search(q, 100).len();
            }
            let el = t.elapsed().as_secs_f64() * 1e3 / embedded.len() as f64;
            let mut hit = 0;
            for q in &embedded {
                let exact: std::collections::HashSet<_> =
                    v.search_exact(q, 100).into_iter().map(|h| h.0).collect();
                hit += v
                    .search(q, 100)
                    .iter()
                    .filter(|h| exact.contains(&h.0))
                    .count();
            }
            println!(
                "probes {probes}: {el:.3} ms, recall@100 {:.3} ({found})",
                hit as f64 / (100 * embedded.len()) as f64
            );
        }
        let t = Instant::now();
        for q in &embedded {
            v.search_exact(q, 100);
        }
        println!(
            "exact: {:.3} ms",
            t.elapsed().as_secs_f64() * 1e3 / embedded.len() as f64
        );
    }
    let mut engine = SearchEngine::new(
        TextIndex::in_memory().expect("index"),
        EngineConfig::default(),
    );
    engine
        .set_encoder(Arc::new(encoder), vectors)
        .expect("encoder");
    engine.sync_catalogue(catalogue, &|_| {}).expect("index");
    time(&engine, &queries, SearchMode::Lexical, "lexical");
    time(
        &engine,
        &queries,
        SearchMode::Hybrid,
        "hybrid, cold query embeddings",
    );
    time(
        &engine,
        &queries,
        SearchMode::Hybrid,
        "hybrid, cached query embeddings",
    );
    time(
        &engine,
        &queries,
        SearchMode::Semantic,
        "semantic, cached query embeddings",
    );
}
