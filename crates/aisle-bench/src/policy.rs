//! `aisle-bench policy`: the strategy layer against its peers, on real logs.
//!
//! - Off-policy evaluation on the Open Bandit Dataset sample against the Open Bandit
//!   Pipeline (obp 0.5.7): the same bootstrap rows and evaluation policy, run side by side
//!   (bench/policy/obp_ope.py writes obp's side).
//! - The click simulator fitted on one behaviour policy's log, checked on the other's.
//! - Warm-started LinUCB and linear Thompson sampling against Vowpal Wabbit's explorers on a
//!   bandit problem converted from MovieLens 100K (bench/policy/bandit_problem.py and
//!   vw_bandit.py write the problem and VW's side).
//! - Team-draft interleaving against an A/B test on a planted better ranker (a simulation).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use aisle_policy::experiment::{PowerStudy, needed};
use aisle_policy::linear::{DisjointBandit, Explorer};
use aisle_policy::log::BanditLog;
use aisle_policy::ope::{self, ActionDist, Estimator};
use aisle_policy::reward::{self, RewardModelConfig};
use aisle_policy::simulator::{self, ClickModel, ClickModelConfig};
use aisle_policy::stats::{mean, std_dev};
use anyhow::Context;
use rand::SeedableRng;
use serde::Deserialize;

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    /// The Open Bandit Dataset sample.
    #[arg(long, default_value = "../shared/data/open-bandit-sample")]
    obd: PathBuf,
    /// What bench/policy/obp_ope.py wrote.
    #[arg(long, default_value = "target/bench-policy/obp")]
    obp: PathBuf,
    /// What bench/policy/bandit_problem.py and vw_bandit.py wrote.
    #[arg(long, default_value = "target/bench-policy/bandit")]
    bandit: PathBuf,
    /// Seeds of the bandit comparison.
    #[arg(long, default_value_t = 5)]
    seeds: u64,
    /// The bundled Instacart sample (carts for the cart simulator).
    #[arg(long, default_value = "data/instacart-sample")]
    instacart: PathBuf,
    /// How much a suggestion raises the chance of its department coming next (an assumption
    /// of the cart simulator; the transitions themselves are fitted).
    #[arg(long, default_value_t = 1.5)]
    lift: f64,
    /// Report to write.
    #[arg(long, default_value = "bench/results/policy.md")]
    out: PathBuf,
    /// Simulator steps each DQN and SlateQ run trains for.
    #[arg(long, default_value_t = 150_000)]
    deep_steps: usize,
    /// Seeds of the DQN and SlateQ runs.
    #[arg(long, default_value_t = 10)]
    deep_seeds: u64,
    /// The discount DQN and SlateQ train with (the report's returns are undiscounted).
    #[arg(long, default_value_t = 0.95)]
    deep_gamma: f64,
    /// Adam's learning rate for DQN and SlateQ.
    #[arg(long, default_value_t = 1e-3)]
    deep_lr: f64,
    /// Transitions per gradient step of DQN and SlateQ.
    #[arg(long, default_value_t = 64)]
    deep_batch: usize,
    /// Run only the DQN and SlateQ section (no peers needed) and write it to `deep_out`.
    #[arg(long)]
    deep_only: bool,
    /// The DQN and SlateQ report.
    #[arg(long, default_value = "bench/results/policy-deep.md")]
    deep_out: PathBuf,
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    if args.deep_only {
        let mut md = String::from(
            "# Deep Q-learning in the cart simulator: DQN and SlateQ\n\nMade by `cargo run --release -p aisle-bench -- policy --deep-only` (also part of `scripts/bench-policy.sh`).\n\n",
        );
        deep_section(&args, &mut md)?;
        fs_err::write(&args.deep_out, md)?;
        println!("wrote {}", args.deep_out.display());
        return Ok(());
    }
    let mut md = String::new();
    writeln!(
        md,
        "# Strategy layer: off-policy evaluation, simulator, bandits, interleaving\n"
    )?;
    writeln!(
        md,
        "Made by `scripts/bench-policy.sh` (which runs the peers' scripts in bench/policy/, then \
         `cargo run -p aisle-bench -- policy`). Data: the Open Bandit Dataset sample \
         (`../shared/data/open-bandit-sample`, ZOZOTOWN, CC BY 4.0) and MovieLens 100K \
         (`../shared/data/movielens-100k`).\n"
    )?;
    eprintln!("off-policy evaluation against obp...");
    ope_section(&args, &mut md)?;
    eprintln!("simulator calibration...");
    calibration_section(&args, &mut md)?;
    eprintln!("bandits against Vowpal Wabbit...");
    bandit_section(&args, &mut md)?;
    eprintln!("Q-learning for cart suggestions in a simulator fitted on Instacart carts...");
    cart_section(&args, &mut md)?;
    eprintln!("DQN and SlateQ in the same simulator...");
    deep_section(&args, &mut md)?;
    eprintln!("interleaving against A/B (simulation)...");
    interleaving_section(&mut md)?;
    fs_err::write(&args.out, md)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Off-policy evaluation against obp
// ---------------------------------------------------------------------------------------

#[derive(Deserialize)]
struct ObpRun {
    seed: u64,
    rows: Vec<usize>,
    estimates: std::collections::BTreeMap<String, f64>,
    #[serde(default)]
    tuned_lambda: std::collections::BTreeMap<String, f64>,
}

fn ope_section(args: &PolicyArgs, md: &mut String) -> anyhow::Result<()> {
    let runs_path = args.obp.join("runs.json");
    let runs: Vec<ObpRun> = serde_json::from_str(
        &fs_err::read_to_string(&runs_path)
            .context("run bench/policy/obp_ope.py first (scripts/bench-policy.sh does)")?,
    )?;
    let summary: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(args.obp.join("summary.json"))?)?;
    let shape: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(args.obp.join("action_dist.json"))?)?;
    let truth = summary["ground_truth"]
        .as_f64()
        .context("summary.json has no ground_truth")?;
    let log = BanditLog::read_obd(&args.obd, "random", "all")?;
    let per_round = shape["per_round"].as_bool().unwrap_or(false);
    let dist = ActionDist::from_le_bytes(
        &fs_err::read(args.obp.join("action_dist.f64"))?,
        log.n_actions,
        log.len_list,
        per_round,
    )?;
    let names = ["dm", "ipw", "snipw", "dr", "sndr", "switch-dr", "dr-os"];
    let mut ours: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut theirs: Vec<Vec<f64>> = vec![Vec::new(); names.len()];
    let mut lambdas_ours: Vec<String> = Vec::new();
    let mut lambdas_theirs: Vec<String> = Vec::new();
    let mut max_diff_ips: f64 = 0.0;
    let mut max_diff_snips: f64 = 0.0;
    for run in &runs {
        let sample = log.select(&run.rows);
        let dist_rows = if per_round {
            let table = log.n_actions * log.len_list;
            ActionDist {
                values: run
                    .rows
                    .iter()
                    .flat_map(|&r| dist.values[r * table..(r + 1) * table].iter().copied())
                    .collect(),
                ..dist.clone()
            }
        } else {
            dist.clone()
        };
        let q = reward::cross_fit(
            &sample,
            RewardModelConfig {
                seed: run.seed,
                ..Default::default()
            },
        );
        let terms = ope::round_terms(&sample, &dist_rows, Some(&q))?;
        let estimators = Estimator::tuned(&terms);
        for e in &estimators {
            if let Estimator::SwitchDr { lambda } | Estimator::DrOs { lambda } = e {
                lambdas_ours.push(format!("{} {lambda}", e.name()));
            }
        }
        for (name, lambda) in &run.tuned_lambda {
            lambdas_theirs.push(format!("{name} {lambda}"));
        }
        for (i, e) in estimators.iter().enumerate() {
            let v = e.estimate(&terms);
            ours[i].push((v - truth).abs() / truth);
            let peer = run.estimates.get(e.name()).copied().unwrap_or(f64::NAN);
            theirs[i].push((peer - truth).abs() / truth);
            match e {
                Estimator::Ips => max_diff_ips = max_diff_ips.max((v - peer).abs()),
                Estimator::Snips => max_diff_snips = max_diff_snips.max((v - peer).abs()),
                _ => {}
            }
        }
    }
    writeln!(
        md,
        "## Off-policy evaluation equals the Open Bandit Pipeline's\n"
    )?;
    writeln!(
        md,
        "obp's published protocol (`examples/obd/evaluate_off_policy_estimators.py`): the \
         Bernoulli-TS policy with the ZOZOTOWN prior evaluated from the `random/all` log, {} \
         bootstrap resamples, relative estimation error against the on-policy click rate of \
         `bts/all` ({truth:.6}). obp's script writes its action distribution, the row indices \
         of every resample and its estimates; aisle reads the CSV itself, takes the same rows \
         and fits its own reward model (logistic regression per position, 3-fold \
         cross-fitting).\n",
        runs.len()
    )?;
    let published = summary.get("published_readme");
    writeln!(
        md,
        "| estimator | aisle relative error (mean ± sd) | obp relative error, same run (mean ± sd) | obp published | aisle − obp |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|")?;
    for (i, name) in names.iter().enumerate() {
        let (a, b) = (mean(&ours[i]), mean(&theirs[i]));
        let shown = published
            .and_then(|p| p[name]["mean"].as_f64())
            .map_or("–".into(), |v| format!("{v:.6}"));
        writeln!(
            md,
            "| {name} | {a:.6} ± {:.6} | {b:.6} ± {:.6} | {shown} | {:+.6} |",
            std_dev(&ours[i]),
            std_dev(&theirs[i]),
            a - b
        )?;
    }
    let count = |list: &[String]| {
        let mut c: std::collections::BTreeMap<&str, usize> = Default::default();
        list.iter()
            .for_each(|l| *c.entry(l.as_str()).or_default() += 1);
        c.iter()
            .map(|(k, v)| format!("{k} ×{v}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    writeln!(
        md,
        "\nSwitch-DR and DR-os have their λ chosen by SLOPE (δ 0.1) over {{10, 50, 100, 500, \
         1000, 5000, 10000, ∞}} on each resample, as obp's protocol does. λ chosen by aisle: \
         {}; by obp: {}.",
        count(&lambdas_ours),
        count(&lambdas_theirs)
    )?;
    writeln!(
        md,
        "\nPoint estimates on the same rows: the largest |aisle − obp| over the {} runs is \
         {max_diff_ips:.2e} for IPW and {max_diff_snips:.2e} for SNIPW (they need no reward \
         model). The model-based ones differ by the reward models (aisle's Newton-fitted \
         logistic regression against scikit-learn's), not by the estimators.\n",
        runs.len()
    )?;
    // With obp's own reward-model terms (run 0), the model-based estimators must agree too.
    let q_path = args.obp.join("q_terms_run0.f64");
    if q_path.is_file()
        && let Some(run) = runs.first()
    {
        let bytes = fs_err::read(&q_path)?;
        let q: Vec<f64> = bytes
            .chunks_exact(8)
            .map(|c| f64::from_le_bytes(c.try_into().unwrap_or([0; 8])))
            .collect();
        let sample = log.select(&run.rows);
        let mut terms = ope::round_terms(&sample, &dist, None)?;
        for (t, pair) in terms.iter_mut().zip(q.chunks_exact(2)) {
            t.q_logged = pair[0];
            t.q_policy = pair[1];
        }
        let mut worst: f64 = 0.0;
        let mut detail = Vec::new();
        for e in Estimator::tuned(&terms) {
            let peer = run.estimates.get(e.name()).copied().unwrap_or(f64::NAN);
            let d = (e.estimate(&terms) - peer).abs();
            worst = worst.max(d);
            detail.push(format!("{} {d:.1e}", e.name()));
        }
        writeln!(
            md,
            "Given obp's own reward-model predictions for run 0 (`q_terms_run0.f64`), aisle's \
             seven estimators equal obp's to {worst:.1e} ({}): the estimators are the same, \
             only the fitted reward models differ.\n",
            detail.join(", ")
        )?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Simulator calibration
// ---------------------------------------------------------------------------------------

fn calibration_section(args: &PolicyArgs, md: &mut String) -> anyhow::Result<()> {
    writeln!(
        md,
        "## The simulator predicts the other behaviour policy's click rate\n"
    )?;
    writeln!(
        md,
        "A click model (logistic in the position, the item, the user's affinity to it and the \
         user's features) is fitted with inverse-propensity weights on one policy's log and predicts the \
         click rate of the other policy's rows. The held-out log is never seen in fitting: the L2 strength \
         is chosen by 3-fold cross-validation on the fitting log, by the per-item calibration \
         of the held-out folds (Poisson deviance of predicted against observed clicks per \
         item), and the importance weights are clipped at the largest of 50, 20, 10, 5, 2, 1 \
         that keeps half the fitting log's effective sample size. \
         `aisle policy simulate` refuses a simulator that misses by more than 1.96 standard \
         errors (outside the 95% interval): a miss inside it cannot be told from that log's \
         own noise.\n"
    )?;
    writeln!(
        md,
        "| campaign | fitted on | checked on | predicted | observed | 95% interval | miss (s.e.) | inside |"
    )?;
    writeln!(md, "|---|---|---|---:|---:|---|---:|---|")?;
    let mut all_inside = true;
    for campaign in ["all", "men", "women"] {
        let random = BanditLog::read_obd(&args.obd, "random", campaign)?;
        let bts = BanditLog::read_obd(&args.obd, "bts", campaign)?;
        for (fit, check, fit_name, check_name) in [
            (&random, &bts, "random", "bts"),
            (&bts, &random, "bts", "random"),
        ] {
            let model = ClickModel::fit(fit, &ClickModelConfig::default())?;
            let c = simulator::calibrate(&model, check);
            all_inside &= c.inside();
            writeln!(
                md,
                "| {campaign} | {fit_name} | {check_name} | {:.5} | {:.5} | {:.5} – {:.5} | {:+.2} | {} |",
                c.predicted,
                c.observed,
                c.low,
                c.high,
                c.z,
                if c.inside() { "yes" } else { "**no**" }
            )?;
        }
    }
    writeln!(
        md,
        "\n{}\n",
        if all_inside {
            "Every prediction is inside the held-out rate's 95% interval."
        } else {
            "Not every prediction is inside the interval: those simulators are refused."
        }
    )?;
    writeln!(
        md,
        "Caveat: with 38 to 69 clicks a log the intervals are wide (the sample has 10,000 \
         rounds a file), so this check rules out gross miscalibration, not small biases.\n"
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Bandits against Vowpal Wabbit
// ---------------------------------------------------------------------------------------

struct Problem {
    x: Vec<Vec<f64>>,
    r: Vec<Vec<f64>>,
    k: usize,
}

fn read_problem(dir: &Path) -> anyhow::Result<Problem> {
    let path = dir.join("problem.csv");
    let mut reader = csv::Reader::from_path(&path).with_context(|| {
        format!(
            "{}: run bench/policy/bandit_problem.py first",
            path.display()
        )
    })?;
    let header = reader.headers()?.clone();
    let d = header.iter().filter(|h| h.starts_with("x_")).count();
    let k = header.iter().filter(|h| h.starts_with("r_")).count();
    let (mut x, mut r) = (Vec::new(), Vec::new());
    for (n, rec) in reader.records().enumerate() {
        let rec = rec?;
        let v: Vec<f64> = rec
            .iter()
            .map(|t| t.parse::<f64>())
            .collect::<Result<_, _>>()
            .with_context(|| format!("{}, line {}: not a number", path.display(), n + 2))?;
        x.push(v[..d].to_vec());
        r.push(v[d..d + k].to_vec());
    }
    Ok(Problem { x, r, k })
}

fn read_lines(path: &Path) -> anyhow::Result<Vec<usize>> {
    fs_err::read_to_string(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            l.trim()
                .parse::<usize>()
                .with_context(|| format!("{}: {l:?} is not a round", path.display()))
        })
        .collect()
}

fn read_warm(path: &Path) -> anyhow::Result<Vec<(usize, usize, f64)>> {
    let mut reader = csv::Reader::from_path(path)?;
    let mut out = Vec::new();
    for rec in reader.records() {
        let rec = rec?;
        let field = |i: usize| rec.get(i).unwrap_or("").parse::<f64>();
        out.push((field(0)? as usize, field(1)? as usize, field(2)?));
    }
    Ok(out)
}

struct BanditRun {
    mean: f64,
    final_mean: f64,
    curve: Vec<f64>,
}

fn run_bandit(
    p: &Problem,
    order: &[usize],
    warm: Option<&[(usize, usize, f64)]>,
    explorer: Explorer,
    seed: u64,
    warm_rounds: usize,
) -> BanditRun {
    let d = p.x[0].len();
    let mut bandit = DisjointBandit::new(p.k, d, 1.0, explorer);
    if let Some(log) = warm {
        bandit.warm_start(
            log.iter()
                .map(|&(round, action, reward)| (p.x[round].as_slice(), action, reward)),
        );
    }
    let mut rng = rand::rngs::StdRng::seed_from_u64(2000 + seed);
    let online = &order[warm_rounds..];
    let mut total = 0.0;
    let mut curve = Vec::new();
    let final_from = online.len() - online.len() / 10;
    let mut final_sum = 0.0;
    for (t, &round) in online.iter().enumerate() {
        let x = &p.x[round];
        let a = bandit.choose(x, &mut rng);
        let reward = p.r[round][a];
        bandit.learn(x, a, reward);
        total += reward;
        if t >= final_from {
            final_sum += reward;
        }
        if (t + 1) % 1000 == 0 {
            curve.push(total);
        }
    }
    BanditRun {
        mean: total / online.len() as f64,
        final_mean: final_sum / (online.len() / 10) as f64,
        curve,
    }
}

#[derive(Deserialize)]
struct VwSummary {
    explorer: String,
    variant: String,
    mean_reward: (f64, f64),
    final_mean_reward: (f64, f64),
}

#[derive(Deserialize)]
struct VwRun {
    explorer: String,
    variant: String,
    seed: u64,
    cumulative_reward_every_1000: Vec<f64>,
}

#[derive(Deserialize)]
struct VwResults {
    summary_mean_std_over_seeds: Vec<VwSummary>,
    runs: Vec<VwRun>,
    vw_version: String,
}

fn bandit_section(args: &PolicyArgs, md: &mut String) -> anyhow::Result<()> {
    let p = read_problem(&args.bandit)?;
    let meta: serde_json::Value =
        serde_json::from_str(&fs_err::read_to_string(args.bandit.join("problem.json"))?)?;
    let warm_rounds = meta["warm_rounds"].as_u64().unwrap_or(2000) as usize;
    let vw: VwResults = serde_json::from_str(&fs_err::read_to_string(
        args.bandit.join("vw_results.json"),
    )?)?;
    let explorers = [
        ("LinUCB α=0.03", Explorer::LinUcb { alpha: 0.03 }),
        ("LinUCB α=0.1", Explorer::LinUcb { alpha: 0.1 }),
        ("LinUCB α=0.3", Explorer::LinUcb { alpha: 0.3 }),
        ("linear TS v=0.03", Explorer::Thompson { v: 0.03 }),
        ("linear TS v=0.1", Explorer::Thompson { v: 0.1 }),
        ("greedy ridge", Explorer::Greedy),
    ];
    struct Row {
        name: String,
        variant: &'static str,
        means: Vec<f64>,
        finals: Vec<f64>,
        curve: Vec<f64>,
    }
    let mut rows: Vec<Row> = Vec::new();
    for (name, explorer) in explorers {
        for variant in ["cold", "warm"] {
            let mut row = Row {
                name: name.into(),
                variant,
                means: Vec::new(),
                finals: Vec::new(),
                curve: Vec::new(),
            };
            for seed in 0..args.seeds {
                let order = read_lines(&args.bandit.join(format!("order_{seed}.txt")))?;
                let warm = read_warm(&args.bandit.join(format!("warm_{seed}.csv")))?;
                let run = run_bandit(
                    &p,
                    &order,
                    (variant == "warm").then_some(warm.as_slice()),
                    explorer,
                    seed,
                    warm_rounds,
                );
                row.means.push(run.mean);
                row.finals.push(run.final_mean);
                if row.curve.is_empty() {
                    row.curve = vec![0.0; run.curve.len()];
                }
                for (c, v) in row.curve.iter_mut().zip(&run.curve) {
                    *c += v / args.seeds as f64;
                }
            }
            rows.push(row);
        }
    }
    let best_vw = vw
        .summary_mean_std_over_seeds
        .iter()
        .max_by(|a, b| a.mean_reward.0.total_cmp(&b.mean_reward.0))
        .context("vw_results.json has no summary")?;
    // The question is about the exploring ones: greedy ridge is shown, not picked.
    let best_ours = rows
        .iter()
        .filter(|r| r.variant == "warm" && r.name != "greedy ridge")
        .max_by(|a, b| mean(&a.means).total_cmp(&mean(&b.means)))
        .context("no rows")?;
    writeln!(md, "## Warm-started linear bandits against Vowpal Wabbit\n")?;
    writeln!(
        md,
        "The problem: {}. {} rounds, {} context features, {} actions; each seed shuffles the rounds \
         (`order_SEED.txt`), logs the first {warm_rounds} with a uniform-random policy \
         (`warm_SEED.csv`, the warm start for both sides) and plays the remaining {} online. \
         VW {} runs `--cb_explore_adf -q sa` (one linear model per action, like aisle's \
         disjoint ridge models). Online mean reward and the mean over the last 10% of online \
         rounds (\"final\"), mean ± sd over seeds 0–{}.\n",
        meta["conversion"].as_str().unwrap_or("see problem.json"),
        p.x.len(),
        p.x[0].len(),
        p.k,
        p.x.len() - warm_rounds,
        vw.vw_version,
        args.seeds - 1
    )?;
    writeln!(
        md,
        "| system | explorer | start | online mean reward | final |"
    )?;
    writeln!(md, "|---|---|---|---:|---:|")?;
    for r in &rows {
        writeln!(
            md,
            "| aisle | {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            r.name,
            r.variant,
            mean(&r.means),
            std_dev(&r.means),
            mean(&r.finals),
            std_dev(&r.finals)
        )?;
    }
    for s in &vw.summary_mean_std_over_seeds {
        writeln!(
            md,
            "| VW | {} | {} | {:.4} ± {:.4} | {:.4} ± {:.4} |",
            s.explorer,
            s.variant,
            s.mean_reward.0,
            s.mean_reward.1,
            s.final_mean_reward.0,
            s.final_mean_reward.1
        )?;
    }
    let (ours_mean, ours_final) = (mean(&best_ours.means), mean(&best_ours.finals));
    writeln!(
        md,
        "\nBest warm-started aisle explorer: {} at {ours_mean:.4} (final {ours_final:.4}); best VW \
         row: {} {} at {:.4} (final {:.4}). {}\n",
        best_ours.name,
        best_vw.explorer,
        best_vw.variant,
        best_vw.mean_reward.0,
        best_vw.final_mean_reward.0,
        if ours_mean >= best_vw.mean_reward.0 && ours_final >= best_vw.final_mean_reward.0 {
            "aisle's reaches VW's best in both cumulative and final reward."
        } else {
            "aisle's does **not** reach VW's best on both measures."
        }
    )?;
    // Cumulative reward curves of the best of each side, warm and cold.
    let vw_curve = |explorer: &str, variant: &str| -> Vec<f64> {
        let runs: Vec<&VwRun> = vw
            .runs
            .iter()
            .filter(|r| r.explorer == explorer && r.variant == variant && r.seed < args.seeds)
            .collect();
        let n = runs
            .first()
            .map_or(0, |r| r.cumulative_reward_every_1000.len());
        (0..n)
            .map(|i| {
                runs.iter()
                    .map(|r| r.cumulative_reward_every_1000[i])
                    .sum::<f64>()
                    / runs.len() as f64
            })
            .collect()
    };
    let cold_ours = rows
        .iter()
        .find(|r| r.name == best_ours.name && r.variant == "cold")
        .map(|r| r.curve.clone())
        .unwrap_or_default();
    let lines = [
        (
            format!("aisle {} warm", best_ours.name),
            best_ours.curve.clone(),
        ),
        (format!("aisle {} cold", best_ours.name), cold_ours),
        (
            format!("VW {} {}", best_vw.explorer, best_vw.variant),
            vw_curve(&best_vw.explorer, &best_vw.variant),
        ),
        ("VW greedy cold".to_string(), vw_curve("greedy", "cold")),
    ];
    let svg = curves_svg(
        "Cumulative online reward (mean over seeds), per 1,000 rounds",
        &lines,
    );
    let svg_path = args.out.with_file_name("policy-bandit.svg");
    fs_err::write(&svg_path, svg)?;
    writeln!(md, "![cumulative reward](policy-bandit.svg)\n")?;
    writeln!(
        md,
        "On this problem the context helps little: always recommending Drama earns about 0.444, \
         so the differences are mostly about how much each explorer pays for exploration. Warm \
         start removes the cold-start dips (seeds that lock onto a poor action early).\n"
    )?;
    Ok(())
}

fn curves_svg(title: &str, lines: &[(String, Vec<f64>)]) -> String {
    const COLOURS: [&str; 4] = ["#1f77b4", "#9ecae1", "#d62728", "#ff9896"];
    let (w, h, left, top) = (640.0, 300.0, 50.0, 30.0);
    let (pw, ph) = (w - left - 180.0, h - top - 40.0);
    let max_y = lines
        .iter()
        .flat_map(|(_, v)| v.iter().copied())
        .fold(1.0, f64::max);
    let max_x = lines.iter().map(|(_, v)| v.len()).max().unwrap_or(1).max(1) as f64;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"11\">\
         <text x=\"{left}\" y=\"16\" font-size=\"13\">{}</text>\
         <line x1=\"{left}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#888\"/>\
         <line x1=\"{left}\" y1=\"{top}\" x2=\"{left}\" y2=\"{}\" stroke=\"#888\"/>\
         <text x=\"4\" y=\"{}\">{max_y:.0}</text><text x=\"4\" y=\"{}\">0</text>",
        aisle_eval::chart::escape(title),
        top + ph,
        left + pw,
        top + ph,
        top + ph,
        top + 4.0,
        top + ph
    );
    for (i, (name, values)) in lines.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let points: Vec<String> = values
            .iter()
            .enumerate()
            .map(|(x, y)| {
                format!(
                    "{:.1},{:.1}",
                    left + (x as f64 + 1.0) / max_x * pw,
                    top + ph - y / max_y * ph
                )
            })
            .collect();
        aisle_eval::chart::polyline(&mut svg, colour, &points);
        let _ = write!(
            svg,
            "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{}\" y=\"{}\">{}</text>",
            left + pw + 10.0,
            top + 16.0 * i as f64,
            left + pw + 24.0,
            top + 9.0 + 16.0 * i as f64,
            aisle_eval::chart::escape(name)
        );
    }
    svg.push_str("</svg>");
    svg
}

// ---------------------------------------------------------------------------------------
// Q-learning on the cart task
// ---------------------------------------------------------------------------------------

/// Carts for fitting, carts held out, and the number of departments.
type Carts = (Vec<Vec<usize>>, Vec<Vec<usize>>, usize);

/// Carts of the Instacart sample as department sequences (in add-to-cart order), split into
/// each user's earlier orders (fitting) and last order (held out).
fn instacart_carts(dir: &Path) -> anyhow::Result<Carts> {
    let mut department = std::collections::HashMap::new();
    let mut reader = csv::Reader::from_path(dir.join("products.csv"))?;
    let mut n_departments = 0;
    for rec in reader.records() {
        let rec = rec?;
        let product: u32 = rec.get(0).unwrap_or("").parse()?;
        let d: usize = rec.get(3).unwrap_or("").parse()?;
        n_departments = n_departments.max(d);
        department.insert(product, d - 1);
    }
    let file = fs_err::File::open(dir.join("orders_products_sample.csv.gz"))?;
    let mut reader = csv::Reader::from_reader(flate2::read::GzDecoder::new(file));
    // (user, order number) -> (add order, department)
    let mut orders: std::collections::BTreeMap<(u32, u32), Vec<(f64, usize)>> = Default::default();
    for rec in reader.records() {
        let rec = rec?;
        let user: u32 = rec.get(2).unwrap_or("").parse()?;
        let number: u32 = rec.get(3).unwrap_or("").parse()?;
        let product: u32 = rec.get(7).unwrap_or("").parse()?;
        let at: f64 = rec.get(8).unwrap_or("").parse()?;
        if let Some(&d) = department.get(&product) {
            orders.entry((user, number)).or_default().push((at, d));
        }
    }
    let mut last_order = std::collections::HashMap::new();
    for &(user, number) in orders.keys() {
        let e = last_order.entry(user).or_insert(number);
        *e = (*e).max(number);
    }
    let (mut fit, mut held_out) = (Vec::new(), Vec::new());
    for ((user, number), mut items) in orders {
        items.sort_by(|a, b| a.0.total_cmp(&b.0));
        let cart: Vec<usize> = items.into_iter().map(|(_, d)| d).collect();
        if last_order.get(&user) == Some(&number) {
            held_out.push(cart);
        } else {
            fit.push(cart);
        }
    }
    Ok((fit, held_out, n_departments))
}

fn cart_section(args: &PolicyArgs, md: &mut String) -> anyhow::Result<()> {
    use aisle_policy::rl::{CartSimulator, Environment, QLearning, SIZE_BUCKETS, mean_return};
    let (fit, held_out, n) = instacart_carts(&args.instacart)?;
    let sim = CartSimulator::fit(&fit, n, args.lift);
    let popular = {
        let mut counts = vec![0usize; n];
        fit.iter().flatten().for_each(|&d| counts[d] += 1);
        (0..n).max_by_key(|&d| counts[d]).unwrap_or(0)
    };
    let myopic = |s: usize| {
        let row = &sim.transition[sim.last_of(s)];
        (0..n).fold(0, |best, a| if row[a] > row[best] { a } else { best })
    };
    let (seeds, episodes, eval_episodes, gamma) = (10u64, 1_000_000, 50_000, 1.0);
    let optimal = sim.optimal_policy(gamma);
    let (mut q_returns, mut myopic_returns, mut static_returns) =
        (Vec::new(), Vec::new(), Vec::new());
    let mut optimal_returns = Vec::new();
    let mut gains_myopic = Vec::new();
    let mut gains_static = Vec::new();
    let mut optimal_gains = Vec::new();
    let mut last_q = None;
    for seed in 0..seeds {
        let mut env = sim.clone();
        let mut rng = rand::rngs::StdRng::seed_from_u64(100 + seed);
        let mut q = QLearning::new(env.n_states(), env.n_actions(), gamma, 0.05, 0.1);
        q.alpha_power = Some(0.7);
        q.train(&mut env, episodes, &mut rng);
        // The three policies meet the same shoppers: one evaluation seed for all.
        let eval = |policy: &dyn Fn(usize) -> usize| {
            let mut env = sim.clone();
            let mut rng = rand::rngs::StdRng::seed_from_u64(10_000 + seed);
            mean_return(&mut env, policy, eval_episodes, &mut rng)
        };
        let rq = eval(&|s| q.greedy(s));
        let rm = eval(&myopic);
        let rs = eval(&|_| popular);
        let ro = eval(&|s| optimal[s]);
        optimal_returns.push(ro);
        optimal_gains.push(ro / rm - 1.0);
        gains_myopic.push(rq / rm - 1.0);
        gains_static.push(rq / rs - 1.0);
        q_returns.push(rq);
        myopic_returns.push(rm);
        static_returns.push(rs);
        last_q = Some(q);
    }
    let ci = |v: &[f64]| mean_with_interval(v);
    let pct = |v: &[f64]| gain_with_interval(v, 1);
    writeln!(
        md,
        "## Q-learning for cart suggestions, in a simulator fitted on real carts\n"
    )?;
    writeln!(
        md,
        "The simulator is fitted on {} Instacart carts of the bundled sample (every user's \
         orders but the last; {} departments): the department-to-department transitions of \
         consecutive items and the chance a cart ends after an item, given its department and \
         the cart's size. What a suggestion does is an assumption, not data: the shopper takes \
         the suggested department next with {} times the chance they would have gone there \
         anyway, else goes on as they would have. Reward: 1 per accepted suggestion. State: \
         the last item's department and the cart size ({SIZE_BUCKETS} buckets: each size to \
         24, then 25 and more); action: the department to suggest. Q-learning (γ {gamma}, \
         step size visits^-0.7, ε 0.1, {episodes} episodes) against the myopic policy (the \
         department most likely next: what a bandit on the immediate reward learns), the \
         static one (always the most popular department) and the simulator's optimum (value \
         iteration on its own model). {seeds} seeds, each policy evaluated on the same \
         {eval_episodes} simulated carts; mean return per cart with its 95% interval over \
         seeds.\n",
        fit.len(),
        n,
        args.lift
    )?;
    writeln!(md, "| policy | accepted suggestions per cart |")?;
    writeln!(md, "|---|---:|")?;
    writeln!(md, "| Q-learning | {} |", ci(&q_returns))?;
    writeln!(md, "| the simulator's optimum | {} |", ci(&optimal_returns))?;
    writeln!(md, "| myopic | {} |", ci(&myopic_returns))?;
    writeln!(md, "| static (most popular) | {} |", ci(&static_returns))?;
    writeln!(
        md,
        "\nQ-learning over myopic: {}; over static: {}. The optimum over myopic: {}, the most \
         any policy can gain in this simulator.\n",
        pct(&gains_myopic),
        pct(&gains_static),
        pct(&optimal_gains)
    )?;
    // On the held-out real carts: how often each policy's suggestion is what came next.
    if let Some(q) = last_q {
        let (mut hits, mut steps) = ([0usize; 3], 0usize);
        for cart in &held_out {
            let mut last = n;
            for (i, &d) in cart.iter().enumerate() {
                let s = sim.state_of(last, aisle_policy::rl::size_bucket(i));
                for (k, a) in [q.greedy(s), myopic(s), popular].into_iter().enumerate() {
                    hits[k] += usize::from(a == d);
                }
                steps += 1;
                last = d;
            }
        }
        writeln!(
            md,
            "On the {} held-out last carts ({} items), the share of suggestions that named the \
             department the shopper actually took next: Q-learning {:.3}, myopic {:.3}, static \
             {:.3}. This is not an off-policy value: these carts were not served suggestions, \
             so there are no propensities to weight by; it says how far the learnt policy \
             strays from what shoppers do unprompted.\n",
            held_out.len(),
            steps,
            hits[0] as f64 / steps as f64,
            hits[1] as f64 / steps as f64,
            hits[2] as f64 / steps as f64
        )?;
    }
    Ok(())
}

/// A mean over seeds with its 95% interval.
fn mean_with_interval(v: &[f64]) -> String {
    let (m, lo, hi) = aisle_policy::stats::mean_interval(v, 0.05);
    format!("{m:.4} ({lo:.4} – {hi:.4})")
}

/// A relative gain over seeds, in percent with `digits` decimals, with its 95% interval.
fn gain_with_interval(v: &[f64], digits: usize) -> String {
    let (m, lo, hi) = aisle_policy::stats::mean_interval(v, 0.05);
    format!(
        "{:+.digits$}% ({:+.digits$}% – {:+.digits$}%)",
        m * 100.0,
        lo * 100.0,
        hi * 100.0
    )
}

/// DQN on the one-suggestion cart task and SlateQ on its slate version, against the myopic
/// and static policies and the simulator's own optimum.
fn deep_section(args: &PolicyArgs, md: &mut String) -> anyhow::Result<()> {
    use aisle_policy::deep::{DeepConfig, Dqn, SlateQ, mean_slate_return};
    use aisle_policy::rl::{CartSimulator, mean_return};
    const SLATE: usize = 3;
    let (fit, _, n) = instacart_carts(&args.instacart)?;
    let sim = CartSimulator::fit(&fit, n, args.lift);
    let mut counts = vec![0usize; n];
    fit.iter().flatten().for_each(|&d| counts[d] += 1);
    let mut by_popularity: Vec<usize> = (0..n).collect();
    by_popularity.sort_by_key(|&d| std::cmp::Reverse(counts[d]));
    let top_next = |s: usize, k: usize| -> Vec<usize> {
        let row = &sim.transition[sim.last_of(s)];
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
        order.truncate(k);
        order
    };
    let gamma = 1.0;
    let optimal = sim.optimal_policy(gamma);
    let optimal_slates = sim.optimal_slates(SLATE, gamma);
    let eval_episodes = 50_000;
    let (seeds, steps) = (args.deep_seeds, args.deep_steps);
    let mut rows: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut gains: std::collections::BTreeMap<&str, Vec<f64>> = Default::default();
    let mut train_seconds = (0.0, 0.0);
    let bar = indicatif::ProgressBar::new(seeds * 2);
    for seed in 0..seeds {
        let config = DeepConfig {
            seed: 500 + seed,
            gamma: args.deep_gamma,
            learning_rate: args.deep_lr,
            batch: args.deep_batch,
            epsilon_decay: (steps / 3).max(1),
            ..DeepConfig::default()
        };
        let started = std::time::Instant::now();
        let dqn = Dqn::train(&sim, config, steps)?;
        train_seconds.0 += started.elapsed().as_secs_f64();
        bar.inc(1);
        let started = std::time::Instant::now();
        let slateq = SlateQ::train(&sim, SLATE, config, steps)?;
        train_seconds.1 += started.elapsed().as_secs_f64();
        bar.inc(1);
        // Every policy meets the same simulated shoppers: one evaluation seed per run.
        let one = |policy: &dyn Fn(usize) -> usize| {
            let mut env = sim.clone();
            mean_return(
                &mut env,
                policy,
                eval_episodes,
                &mut rand::rngs::StdRng::seed_from_u64(20_000 + seed),
            )
        };
        let slate = |policy: &dyn Fn(usize) -> Vec<usize>| {
            mean_slate_return(
                &sim,
                policy,
                eval_episodes,
                &mut rand::rngs::StdRng::seed_from_u64(30_000 + seed),
            )
        };
        let d = one(&|s| dqn.policy[s]);
        let m1 = one(&|s| top_next(s, 1)[0]);
        let s1 = one(&|_| by_popularity[0]);
        let o1 = one(&|s| optimal[s]);
        let q = slate(&|s| slateq.policy[s].clone());
        let m3 = slate(&|s| top_next(s, SLATE));
        let s3 = slate(&|_| by_popularity[..SLATE].to_vec());
        let o3 = slate(&|s| optimal_slates[s].clone());
        for (name, v) in [
            ("dqn", d),
            ("myopic-1", m1),
            ("static-1", s1),
            ("optimum-1", o1),
            ("slateq", q),
            ("myopic-3", m3),
            ("static-3", s3),
            ("optimum-3", o3),
        ] {
            rows.entry(name).or_default().push(v);
        }
        for (name, v) in [
            ("dqn/myopic", d / m1 - 1.0),
            ("dqn/static", d / s1 - 1.0),
            ("optimum-1/myopic", o1 / m1 - 1.0),
            ("slateq/myopic", q / m3 - 1.0),
            ("slateq/static", q / s3 - 1.0),
            ("optimum-3/myopic", o3 / m3 - 1.0),
        ] {
            gains.entry(name).or_default().push(v);
        }
    }
    bar.finish_and_clear();
    let ci = |v: &[f64]| mean_with_interval(v);
    let pct = |v: &[f64]| gain_with_interval(v, 2);
    let c = DeepConfig {
        gamma: args.deep_gamma,
        learning_rate: args.deep_lr,
        batch: args.deep_batch,
        epsilon_decay: (steps / 3).max(1),
        ..DeepConfig::default()
    };
    writeln!(
        md,
        "## DQN and SlateQ in the cart simulator\n\nThe cart simulator of the Q-learning \
         section of policy.md (fitted on {} Instacart carts, {n} departments, lift {} assumed). DQN suggests \
         one department per step, as tabular Q-learning does; SlateQ suggests a slate of \
         {SLATE}, and the shopper picks the next department by a conditional logit in which \
         suggested departments weigh {} times their fitted chance (an assumption, the slate \
         form of the one-suggestion rule); reward 1 when the pick was suggested. State \
         features: one-hot last department and one-hot cart-size bucket. Networks (candle): \
         two hidden layers of {}, ReLU, Adam {}, Huber loss, replay {}, batch {}, a gradient \
         step every {} simulator steps, target network copied every {} steps, ε from 1 to {} \
         over {} steps, γ {} in training (the returns below are undiscounted); {steps} \
         simulator steps per run, {seeds} seeds; each policy \
         evaluated on the same {eval_episodes} simulated carts per seed. Myopic: the most \
         likely next department(s), what a bandit on the immediate reward learns; static: the \
         most popular department(s); optimum: value iteration on the simulator's own model \
         (for slates with the same greedy slate search SlateQ uses). Training took {:.0} s \
         (DQN) and {:.0} s (SlateQ) per run on this machine.\n",
        fit.len(),
        args.lift,
        args.lift,
        c.hidden,
        c.learning_rate,
        c.replay,
        c.batch,
        c.train_every,
        c.target_every,
        c.epsilon_end,
        c.epsilon_decay,
        c.gamma,
        train_seconds.0 / seeds as f64,
        train_seconds.1 / seeds as f64,
    )?;
    writeln!(
        md,
        "| task | policy | accepted suggestions per cart (95% over seeds) |"
    )?;
    writeln!(md, "|---|---|---:|")?;
    for (task, names) in [
        (
            "one suggestion",
            ["dqn", "optimum-1", "myopic-1", "static-1"],
        ),
        (
            "slate of 3",
            ["slateq", "optimum-3", "myopic-3", "static-3"],
        ),
    ] {
        for name in names {
            writeln!(md, "| {task} | {name} | {} |", ci(&rows[name]))?;
        }
    }
    writeln!(md)?;
    writeln!(md, "| ratio | gain (95% over seeds) |")?;
    writeln!(md, "|---|---:|")?;
    for (name, v) in &gains {
        writeln!(md, "| {name} | {} |", pct(v))?;
    }
    writeln!(
        md,
        "\nBefore this run, earlier versions of this code were tried (plain DQN targets and a \
         network pass per step to act, unless said; 150,000 steps unless said): γ 1 over 10 \
         seeds came out 21% under myopic; γ 1 with 500,000 steps (one seed) 12% under; γ 0.95 \
         (one seed) 6% under; γ 0.95 with double DQN (one seed) 7% under; with double DQN, \
         the cached acting table and batches of 512 (one seed) 13% under. Those runs are \
         indicative only: no command of the current code repeats them exactly (its knobs are \
         `--deep-gamma`, `--deep-lr`, `--deep-batch`, `--deep-steps`, `--deep-seeds`). \
         SlateQ came within 0.1% of myopic in every one of them. The reason is data: the best policy \
         differs from the myopic one by under 1% of the return here, and DQN learns only \
         about the suggestion it made, so it needs many visits of every state and \
         suggestion to resolve differences that small (tabular Q-learning in policy.md had ten \
         million simulator steps and still ended 2% under myopic). SlateQ learns the value \
         of the department the shopper actually went to from every step, suggested or not, \
         and starts from the choice model, so it reaches the myopic level in the same \
         steps. Neither beats it: there is almost nothing to beat it by.\n"
    )?;
    writeln!(
        md,
        "The target of +5% over the myopic and static policies is out of reach in this \
         simulator whenever the optimum's own gain over myopic (the `optimum/myopic` rows) is \
         below 5%: no policy can beat the simulator's optimum. The unit tests in \
         `crates/aisle-policy/src/deep.rs` show both learners do find the long-term policy \
         where one exists (a simulator in which the likeliest next department ends the cart): \
         there each beats myopic and comes within 5% of the optimum. Off-policy value on real \
         logs: these carts were never served suggestions, so there is no logged propensity to \
         weight by; the Open Bandit logs have no sessions to learn a long-term value from.\n"
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Interleaving against A/B
// ---------------------------------------------------------------------------------------

fn interleaving_section(md: &mut String) -> anyhow::Result<()> {
    let study = PowerStudy::default();
    let sizes = [250, 500, 1_000, 2_000, 4_000, 8_000, 16_000];
    let rows = study.run(&sizes, 2026);
    writeln!(
        md,
        "## Interleaving finds the better ranker with fewer impressions (simulation)\n"
    )?;
    writeln!(
        md,
        "A simulation, not data: {} items with a long-tailed attractiveness, {} slots with \
         examination {:?} (a position-based click model), ranker A scoring by attractiveness \
         plus N(0, {}²) noise per user, the planted worse ranker B with N(0, {}²); each user's \
         click chances scaled by an activity drawn from Gamma({}, 1/{}) (mean 1: some shoppers \
         click much more than others). The A/B test \
         splits impressions evenly and compares clicks per list (Welch, two-sided 5%); team-draft \
         interleaving shows every user one merged list and counts which ranker's items got more \
         clicks (sign test, two-sided 5%). Power = share of {} trials that found A better.\n",
        study.items,
        study.slots,
        study.examination,
        study.noise_a,
        study.noise_b,
        study.activity_shape,
        study.activity_shape,
        study.trials
    )?;
    writeln!(md, "| impressions | A/B power | interleaving power |")?;
    writeln!(md, "|---:|---:|---:|")?;
    for r in &rows {
        writeln!(
            md,
            "| {} | {:.2} | {:.2} |",
            r.impressions, r.ab_power, r.interleaving_power
        )?;
    }
    let il = needed(&rows, 0.8, |r| r.interleaving_power);
    let ab = needed(&rows, 0.8, |r| r.ab_power);
    let show = |n: Option<usize>| {
        n.map_or_else(
            || format!("more than {}", sizes[sizes.len() - 1]),
            |n| n.to_string(),
        )
    };
    writeln!(
        md,
        "\nFor 80% power: interleaving needs {} impressions, the A/B test {}.\n",
        show(il),
        show(ab)
    )?;
    Ok(())
}
