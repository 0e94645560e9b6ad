//! The privacy layer on real data (the bundled Instacart sample): noise calibration, a
//! differencing attack, the budget and its survival of SIGKILL.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader, Read};

use aisle_privacy::{Bounds, Budget, Cost, Error, Ledger, Noise, laplace_for};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// (user, product) of every ordered line of the bundled sample.
fn order_lines() -> Vec<(u32, u32)> {
    let path = aisle_testkit::bundled_sample().join("orders_products_sample.csv.gz");
    let mut text = String::new();
    flate2::read::GzDecoder::new(fs_err::File::open(&path).expect("the bundled sample"))
        .read_to_string(&mut text)
        .expect("gzip");
    let mut out = Vec::new();
    for line in text.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        out.push((
            f[2].parse().expect("user_id"),
            f[7].parse().expect("product_id"),
        ));
    }
    out
}

/// Two-sided p-value of the Kolmogorov distribution at `sqrt(n) · D` (conservative for
/// discrete distributions).
fn kolmogorov_p(statistic: f64) -> f64 {
    if statistic < 0.2 {
        return 1.0;
    }
    let mut p = 0.0;
    for k in 1..200 {
        let k = k as f64;
        p += 2.0 * (-1f64).powf(k - 1.0) * (-2.0 * k * k * statistic * statistic).exp();
    }
    p.clamp(0.0, 1.0)
}

#[test]
fn noisy_counts_match_the_discrete_laplace_formulas() {
    let lines = order_lines();
    // How many distinct users bought the sample's most-bought product: one user moves it by
    // at most one.
    let mut buyers: HashMap<u32, HashSet<u32>> = HashMap::new();
    for (u, p) in &lines {
        buyers.entry(*p).or_default().insert(*u);
    }
    let truth = buyers.values().map(|b| b.len()).max().expect("products") as i64;
    assert!(truth > 50, "{truth}");
    let epsilon = 0.5;
    let noise = laplace_for(epsilon, 1.0);
    let mut rng = StdRng::seed_from_u64(20_000);
    let n = 20_000;
    let errors: Vec<i64> = (0..n)
        .map(|_| truth + noise.sample(&mut rng) - truth)
        .collect();
    let mae = errors.iter().map(|e| e.abs() as f64).sum::<f64>() / n as f64;
    let mean = errors.iter().sum::<i64>() as f64 / n as f64;
    let var = errors
        .iter()
        .map(|&e| (e as f64 - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    let (mae_f, var_f) = (noise.mean_absolute(), noise.variance());
    println!(
        "count {truth}: mean |error| {mae:.4} (formula {mae_f:.4}), variance {var:.3} (formula {var_f:.3})"
    );
    assert!(
        (mae / mae_f - 1.0).abs() < 0.03,
        "mean |error| {mae} against {mae_f}"
    );
    assert!(
        (var / var_f - 1.0).abs() < 0.03,
        "variance {var} against {var_f}"
    );
    // The whole distribution: Kolmogorov-Smirnov against the exact CDF.
    let mut sorted = errors.clone();
    sorted.sort_unstable();
    let mut d: f64 = 0.0;
    let mut i = 0;
    while i < sorted.len() {
        let x = sorted[i];
        let below = i as f64 / n as f64;
        while i < sorted.len() && sorted[i] == x {
            i += 1;
        }
        let at = i as f64 / n as f64;
        d = d
            .max((at - noise.cdf(x)).abs())
            .max((below - noise.cdf(x - 1)).abs());
    }
    let p = kolmogorov_p(d * (n as f64).sqrt());
    println!("KS against the exact CDF: D = {d:.4}, p = {p:.3}");
    assert!(p > 0.01, "KS against the exact CDF: D = {d}, p = {p}");
}

#[test]
fn the_discrete_gaussian_has_its_variance() {
    let noise = Noise::Gaussian { sigma: 3.5 };
    let mut rng = StdRng::seed_from_u64(7);
    let n = 20_000;
    let draws: Vec<f64> = (0..n).map(|_| noise.sample(&mut rng) as f64).collect();
    let mean = draws.iter().sum::<f64>() / n as f64;
    let var = draws.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    assert!(mean.abs() < 0.1, "{mean}");
    assert!(
        (var / noise.variance() - 1.0).abs() < 0.03,
        "{var} against {}",
        noise.variance()
    );
}

/// The attacker asks "how many of segment S bought product X", where S either holds the
/// target or not, repeats the question as often as they like and guesses by the average:
/// with the cache every repeat returns the same answer, so they cannot beat one release's
/// bound e^ε / (1 + e^ε).
#[test]
fn a_differencing_attack_does_no_better_than_the_bound() {
    let lines = order_lines();
    let mut users: Vec<u32> = lines
        .iter()
        .map(|(u, _)| *u)
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    users.sort_unstable();
    let product = 24852; // Bananas, the most ordered product of Instacart
    let target = *users
        .iter()
        .find(|&&u| lines.iter().any(|&(v, p)| v == u && p == product))
        .expect("a buyer of bananas");
    let bounds = Bounds {
        max_partitions: 1,
        max_rows: 1,
    };
    let epsilon = 0.5;
    let dir = tempfile::tempdir().expect("temp dir");
    let trials = 4000;
    let budget = Budget {
        epsilon: epsilon * trials as f64 + 1.0,
        ..Budget::default()
    };
    let mut ledger = Ledger::open(&dir.path().join("ledger.jsonl"), budget, 0).expect("ledger");
    let mut rng = StdRng::seed_from_u64(99);
    let mut right = 0;
    let with: Vec<(u32, u32)> = lines
        .iter()
        .copied()
        .filter(|&(_, p)| p == product)
        .collect();
    let without: Vec<(u32, u32)> = with.iter().copied().filter(|&(u, _)| u != target).collect();
    let count_with = bounds.apply(&with, &mut rng).len() as f64;
    for trial in 0..trials {
        let present = rng.random_bool(0.5);
        let rows = if present { &with } else { &without };
        let mut noisy = 0.0;
        let repeats = 20;
        for _ in 0..repeats {
            let r = ledger
                .release(
                    "buyers of bananas in S",
                    trial,
                    Cost { epsilon, rho: 0.0 },
                    1,
                    || {
                        let kept = bounds.apply(rows, &mut rng).len() as i64;
                        kept + laplace_for(epsilon, bounds.count_l1()).sample(&mut rng)
                    },
                )
                .expect("within budget");
            noisy += r.answer as f64 / repeats as f64;
        }
        // The best threshold between the two true counts.
        let guess = noisy > count_with - 0.5;
        if guess == present {
            right += 1;
        }
    }
    let rate = right as f64 / trials as f64;
    println!("attacker success {rate}");
    let bound = epsilon.exp() / (1.0 + epsilon.exp());
    assert!(
        rate <= bound + 0.02,
        "the attacker was right {rate} of the time (bound {bound})"
    );
    // And the attack is not blind: the noise is what holds it back.
    assert!(rate > 0.5, "{rate}");
}

#[test]
fn over_budget_is_refused_and_a_repeat_is_free() {
    let dir = tempfile::tempdir().expect("temp dir");
    let budget = Budget {
        epsilon: 1.0,
        delta: 1e-6,
        window_days: 1.0,
    };
    let path = dir.path().join("ledger.jsonl");
    let mut ledger = Ledger::open(&path, budget, 0).expect("ledger");
    let cost = Cost {
        epsilon: 0.4,
        rho: 0.0,
    };
    let first = ledger.release("q1", 1, cost, 10, || 5i64).expect("first");
    assert!(!first.cached);
    let again = ledger.release("q1", 1, cost, 20, || 6i64).expect("repeat");
    assert!(again.cached);
    assert_eq!(again.answer, 5);
    assert_eq!(again.cost, Cost::default());
    ledger.release("q2", 1, cost, 30, || 7i64).expect("second");
    match ledger.release("q3", 1, cost, 40, || 8i64) {
        Err(Error::OverBudget { left, .. }) => assert!((left - 0.2).abs() < 1e-9),
        other => panic!("not refused: {other:?}"),
    }
    // A new data version is a new question.
    assert!(ledger.release("q1", 2, cost, 50, || 9i64).is_err());
    // The window moves on: a day later the budget is back, and the old entries are gone.
    drop(ledger);
    let ledger = Ledger::open(&path, budget, 86_400_000 + 100).expect("reopen");
    assert_eq!(ledger.spent(86_400_000 + 100), 0.0);
    assert_eq!(ledger.entries(86_400_000 + 100).count(), 0);
}

const CHILD: &str = "AISLE_LEDGER_CHILD";

/// The child half of the SIGKILL test (the same test binary, run again): releases until
/// killed, printing each acknowledged release.
fn child_releases_until_killed(path: &str) {
    let budget = Budget {
        epsilon: 1000.0,
        ..Budget::default()
    };
    let mut ledger = Ledger::open(std::path::Path::new(&path), budget, 1).expect("ledger");
    for i in 0..100_000u64 {
        let r = ledger
            .release(
                &format!("q{i}"),
                1,
                Cost {
                    epsilon: 0.01,
                    rho: 0.0,
                },
                1,
                || i,
            )
            .expect("release");
        println!("ack {i} {}", r.answer);
    }
}

/// A child process releases and prints each acknowledged release; it is SIGKILLed mid-run,
/// and every release it acknowledged must be in the ledger when it reopens.
#[test]
fn the_ledger_keeps_every_acknowledged_release_through_sigkill() {
    if let Ok(path) = std::env::var(CHILD) {
        return child_releases_until_killed(&path);
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("ledger.jsonl");
    let mut child = std::process::Command::new(std::env::current_exe().expect("test binary"))
        .args([
            "--exact",
            "the_ledger_keeps_every_acknowledged_release_through_sigkill",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, &path)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("child");
    let mut acked = Vec::new();
    let mut out = BufReader::new(child.stdout.take().expect("stdout"));
    let mut line = String::new();
    while acked.len() < 200 {
        line.clear();
        if out.read_line(&mut line).expect("read") == 0 {
            break;
        }
        // libtest may print its "test ... " prefix on the same line as the first ack.
        if let Some(rest) = line.find("ack ").map(|at| &line[at + 4..]) {
            let i: u64 = rest
                .split(' ')
                .next()
                .and_then(|s| s.parse().ok())
                .expect("ack");
            acked.push(i);
        }
    }
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
    assert_eq!(acked.len(), 200, "the child stopped early");
    let budget = Budget {
        epsilon: 1000.0,
        ..Budget::default()
    };
    let ledger = Ledger::open(&path, budget, 2).expect("the ledger reopens after SIGKILL");
    let stored: HashSet<String> = ledger.entries(2).map(|e| e.query.clone()).collect();
    for i in &acked {
        assert!(
            stored.contains(&format!("q{i}")),
            "acknowledged release q{i} was lost"
        );
    }
    assert!(ledger.spent(2) >= 0.01 * acked.len() as f64 - 1e-9);
}
