//! Where the time of a lexical search goes (a development aid).
use std::time::Instant;

use aisle_import::{Adapter, ImportOptions, Source};
use aisle_search::{
    EngineConfig, RankingContext, SearchEngine, SearchRequest, TextIndex, load_catalogue,
};
use aisle_store::MemStore;

fn main() {
    let store = MemStore::new();
    aisle_import::import(
        &store,
        &Source::Adapter(Adapter::Instacart),
        &[aisle_testkit::bundled_sample()],
        &ImportOptions::default(),
    )
    .unwrap();
    let catalogue = load_catalogue(&store).unwrap();
    let mut queries: Vec<String> = catalogue
        .iter()
        .flatten()
        .map(|i| format!("{} {}", i.category[1], i.category[0]))
        .collect();
    queries.sort();
    queries.dedup();
    let mut engine = SearchEngine::new(TextIndex::in_memory().unwrap(), EngineConfig::default());
    engine.sync_catalogue(catalogue, &|_| {}).unwrap();
    let encoder = aisle_search::SentenceEncoder::load(&aisle_testkit::encoder_dir()).unwrap();
    use aisle_search::TextEncoder;
    let mut times: Vec<f64> = Vec::new();
    for q in queries.iter().cycle().take(400) {
        let t = Instant::now();
        encoder.encode(&[q.as_str()]).unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.sort_by(f64::total_cmp);
    println!(
        "encode one query: p50 {:.2} ms p99 {:.2} ms",
        times[200], times[396]
    );
    for text in [
        "a",
        "organic fresh fruits produce",
        "organic fresh fruits produce with a much longer description of what we want to find today in the shop please",
    ] {
        let t = Instant::now();
        for _ in 0..100 {
            encoder.encode(&[text]).unwrap();
        }
        println!(
            "{} tokens: {:.2} ms",
            encoder.token_ids(text).len(),
            t.elapsed().as_secs_f64() * 10.0
        );
    }
    for typing in [false, true] {
        let t = Instant::now();
        let mut n = 0;
        for q in &queries {
            n += engine.text_index().matches(q, typing).unwrap().len();
        }
        println!(
            "typing {typing}: matches only {:.2} ms/query, {} matches avg",
            t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64,
            n / queries.len()
        );
        let t = Instant::now();
        for q in &queries {
            let r = SearchRequest {
                query: q.clone(),
                typing,
                ..SearchRequest::default()
            };
            engine.search(&r, &RankingContext::default()).unwrap();
        }
        println!(
            "typing {typing}: full search {:.2} ms/query",
            t.elapsed().as_secs_f64() * 1e3 / queries.len() as f64
        );
    }
}

#[allow(dead_code)]
fn unused() {}
