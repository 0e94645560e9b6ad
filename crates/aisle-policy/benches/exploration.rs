//! What exploration adds to serving one list: drawing k = 10 of 30 candidates with their
//! propensities (epsilon-greedy and Plackett-Luce), against taking the top 10 as ranked.
//! The end-to-end cost over HTTP is in `aisle-bench serve`; this isolates the policy's part.

use aisle_policy::policy::ServingPolicy;
use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn draw(c: &mut Criterion) {
    let mut rng = StdRng::seed_from_u64(1);
    let scores: Vec<f64> = (0..30).map(|_| rng.random::<f64>()).collect();
    let mut group = c.benchmark_group("serve k=10 of 30");
    for policy in [
        ServingPolicy::Deterministic,
        ServingPolicy::EpsilonGreedy { epsilon: 0.05 },
        ServingPolicy::PlackettLuce {
            temperature: 0.1,
            floor: 0.05,
        },
    ] {
        group.bench_function(policy.name(), |b| {
            let mut seed = 0u64;
            b.iter(|| {
                seed += 1;
                let mut rng = StdRng::seed_from_u64(seed);
                black_box(policy.choose(black_box(&scores), 10, &mut rng))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, draw);
criterion_main!(benches);
