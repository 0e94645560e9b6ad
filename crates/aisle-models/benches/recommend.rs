//! Latency of one top-10 recommendation over the Instacart catalogue (49,688 items), per
//! model, for known users scored from their whole history.
//!
//! `cargo bench -p aisle-models --bench recommend` runs Criterion (median and spread in its
//! output) and also records every single call, writing p50 and p99 per model to
//! `bench/results/recommend-latency.md`.

use std::time::{Duration, Instant};

use aisle_features::{CleaningConfig, EventLog};
use aisle_models::{
    Model, ModelConfig, Query, RecOptions, Recommender, TrainDataBuilder, recommend,
};
use aisle_store::ReadStore;
use criterion::Criterion;

const MODELS: [&str; 8] = [
    "pop", "itemknn", "rp3beta", "userknn", "sknn", "als", "ease", "hybrid",
];

fn percentile(sorted: &[Duration], q: f64) -> Duration {
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

fn main() {
    let store = aisle_import::instacart_in_memory(&aisle_testkit::bundled_sample())
        .expect("the bundled sample imports");
    let mut log = EventLog::load(&store).expect("events");
    log.clean(&CleaningConfig::default()).expect("clean");
    let mut items = vec![None; store.counts().expect("counts").items];
    store
        .scan_items(&mut |id, item| items[id.index()] = Some(item))
        .expect("items");
    let data = TrainDataBuilder::new().items(items).build(&log);
    let users: Vec<u32> = (0..data.n_users() as u32)
        .filter(|&u| !data.sequences.items(u).is_empty())
        .collect();

    let mut criterion = Criterion::default().configure_from_args().sample_size(50);
    let mut rows = Vec::new();
    for name in MODELS {
        let mut model = Model::build(&ModelConfig::default_for(name).expect("known model"));
        let started = Instant::now();
        model.fit(&data).expect("fit");
        let fit = started.elapsed();
        let mut samples: Vec<Duration> = Vec::new();
        let mut next = 0usize;
        criterion.bench_function(&format!("recommend_top10/{name}"), |b| {
            b.iter_custom(|iterations| {
                let mut total = Duration::ZERO;
                for _ in 0..iterations {
                    let user = users[next % users.len()];
                    next += 1;
                    let history = data.sequences.items(user);
                    let t = Instant::now();
                    let top = recommend(
                        &model,
                        &Query {
                            user: Some(user),
                            history,
                            ..Query::default()
                        },
                        10,
                        &RecOptions::default(),
                    );
                    let elapsed = t.elapsed();
                    std::hint::black_box(top);
                    samples.push(elapsed);
                    total += elapsed;
                }
                total
            });
        });
        samples.sort();
        rows.push((
            name,
            fit,
            percentile(&samples, 0.5),
            percentile(&samples, 0.99),
            samples.len(),
        ));
    }
    criterion.final_summary();

    let mut md =
        String::from("# Latency of one top-10 recommendation (Instacart sample, 49,688 items)\n\n");
    md.push_str("Command: `cargo bench -p aisle-models --bench recommend`. Each call scores the whole catalogue for a\n");
    md.push_str("known user from their full history and selects the top 10; single-threaded; every call of the\n");
    md.push_str(
        "Criterion run is recorded, warm-up calls included, and its percentiles reported.\n\n",
    );
    md.push_str("| model | fit (s) | p50 (µs) | p99 (µs) | calls |\n|---|---:|---:|---:|---:|\n");
    for (name, fit, p50, p99, n) in rows {
        md.push_str(&format!(
            "| {name} | {:.2} | {:.0} | {:.0} | {n} |\n",
            fit.as_secs_f64(),
            p50.as_secs_f64() * 1e6,
            p99.as_secs_f64() * 1e6
        ));
    }
    let out = aisle_testkit::repo_root().join("bench/results/recommend-latency.md");
    std::fs::write(&out, &md).expect("write the report");
    print!("{md}");
}
