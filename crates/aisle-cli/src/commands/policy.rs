//! `aisle policy`: evaluate serving policies off-policy, check a simulator against real logs,
//! train a contextual bandit on a log, and gate a deployment.

use std::path::{Path, PathBuf};

use aisle_policy::impressions::{self, RewardRule};
use aisle_policy::linear::{DisjointBandit, Explorer};
use aisle_policy::log::BanditLog;
use aisle_policy::ope::{self, ActionDist, Estimate, Estimator, WeightDiagnostics};
use aisle_policy::policy::ServingPolicy;
use aisle_policy::reward::{self, RewardModelConfig};
use aisle_policy::rollout::GateDecision;
use aisle_policy::simulator::{self, ClickModel, ClickModelConfig};
use anyhow::Context;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use super::DataDir;

#[derive(clap::Args, Debug)]
pub struct PolicyArgs {
    #[command(subcommand)]
    which: Which,
}

#[derive(clap::Subcommand, Debug)]
enum Which {
    /// Estimate a policy's value from a log another policy made: DM, IPS, SNIPS, DR, SNDR,
    /// Switch-DR and DR-os side by side, with bootstrap intervals and weight diagnostics.
    Evaluate(EvaluateArgs),
    /// Fit the click simulator on one behaviour policy's log and check it on another's.
    Simulate(SimulateArgs),
    /// Train a LinUCB bandit on the first part of a log; judge it off-policy on the rest.
    Train(TrainArgs),
    /// Gate a serving policy on this store's impressions; if it passes, serve it from the next start.
    Deploy(DeployArgs),
    /// The deployed policy and the impressions logged per policy, with their rewards.
    List(ListArgs),
}

/// Where an Open Bandit Dataset log is.
#[derive(clap::Args, Debug, Clone)]
struct ObdLog {
    /// A folder in the Open Bandit Dataset's layout (`POLICY/CAMPAIGN/CAMPAIGN.csv`).
    #[arg(long)]
    obd: Option<PathBuf>,
    /// The campaign: all, men or women.
    #[arg(long, default_value = "all")]
    campaign: String,
}

#[derive(clap::Args, Debug)]
struct EvaluateArgs {
    #[command(flatten)]
    log: ObdLog,
    #[command(flatten)]
    data: DataDir,
    /// The behaviour policy whose log is read (Open Bandit logs).
    #[arg(long, default_value = "random")]
    behavior: String,
    /// Evaluate the policy that made this other log (its empirical action distribution);
    /// its own mean reward is the truth the estimates are compared with.
    #[arg(long)]
    target_log: Option<String>,
    /// Evaluate the action distribution in this file: little-endian f64,
    /// [actions][positions] shared by all rounds, or [rounds][actions][positions] with --per-round.
    #[arg(long)]
    action_dist: Option<PathBuf>,
    /// The --action-dist file has one table per round.
    #[arg(long)]
    per_round: bool,
    /// On this store's impressions: the serving policy to evaluate (deterministic,
    /// epsilon-greedy:EPSILON, plackett-luce:TEMPERATURE:FLOOR).
    #[arg(long)]
    candidate: Option<String>,
    #[command(flatten)]
    reward: RewardArgs,
    /// Bootstrap resamples for the intervals.
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Seed of the bootstrap and the reward model's folds.
    #[arg(long, default_value_t = 12345)]
    seed: u64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// How rewards are read from this store's events.
#[derive(clap::Args, Debug, Clone)]
struct RewardArgs {
    /// Reward per event kind.
    #[arg(long, default_value = "click=1,add_to_cart=1,purchase=1")]
    reward: String,
    /// Events without an impression id count this many minutes after the list was served.
    #[arg(long, default_value_t = 30)]
    window_minutes: i64,
    /// Weigh purchases by their value (price x quantity).
    #[arg(long)]
    purchase_value: bool,
    /// Only lists of this surface (recommend, session, cart, similar, cross-category, trending, search).
    #[arg(long)]
    surface: Option<String>,
}

#[derive(clap::Args, Debug)]
struct SimulateArgs {
    #[command(flatten)]
    log: ObdLog,
    /// The behaviour policy whose log the simulator is fitted on.
    #[arg(long, default_value = "random")]
    fit: String,
    /// The behaviour policy whose log checks it.
    #[arg(long, default_value = "bts")]
    check: String,
    /// Refuse the simulator when its miss exceeds this many standard errors (1.96: outside
    /// the held-out rate's 95% interval).
    #[arg(long, default_value_t = 1.96)]
    max_z: f64,
    /// The L2 strength of the click model (default: chosen by cross-validation on the fitting log).
    #[arg(long)]
    c: Option<f64>,
    /// Clip the normalised importance weights here (default: the largest clip that keeps half
    /// the log's effective sample size).
    #[arg(long, default_value_t = 0.0)]
    max_weight: f64,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct TrainArgs {
    #[command(flatten)]
    log: ObdLog,
    /// The behaviour policy whose log is used.
    #[arg(long, default_value = "random")]
    behavior: String,
    /// LinUCB's exploration width (0: greedy).
    #[arg(long, default_value_t = 0.1)]
    alpha: f64,
    /// Share of the log (earliest rounds) to train on; the rest judges it.
    #[arg(long, default_value_t = 0.7)]
    train_share: f64,
    /// Bootstrap resamples.
    #[arg(long, default_value_t = 200)]
    bootstrap: usize,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args, Debug)]
struct DeployArgs {
    #[command(flatten)]
    data: DataDir,
    /// The serving policy to deploy.
    #[arg(long)]
    candidate: String,
    #[command(flatten)]
    reward: RewardArgs,
    /// Bootstrap resamples for the gate's interval.
    #[arg(long, default_value_t = 500)]
    bootstrap: usize,
    /// Serve it to everyone at the next start instead of rolling it out (shadow, canary,
    /// then all traffic or a rollback, judged on the online reward).
    #[arg(long)]
    no_canary: bool,
}

#[derive(clap::Args, Debug)]
struct ListArgs {
    #[command(flatten)]
    data: DataDir,
    #[command(flatten)]
    reward: RewardArgs,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// The deployed serving policy of a data directory (`policy.json`), read by `aisle serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Deployed {
    /// Its setting, as `exploration` takes it.
    pub policy: String,
    /// Its version (one more than the one it replaced).
    pub version: u32,
    /// What the gate found.
    pub gate: String,
    /// Where its rollout stands.
    #[serde(default)]
    pub stage: DeployStage,
    /// The policy it is rolled out over (none: the server's `exploration` setting).
    #[serde(default)]
    pub previous: Option<PreviousPolicy>,
    /// The canary's verdict, with its numbers.
    #[serde(default)]
    pub verdict: Option<String>,
}

/// A deployed policy's stage: `aisle serve` rolls a `canary` out and writes the verdict back.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum DeployStage {
    /// To be rolled out at the next start: shadow, a canary share, then a verdict.
    Canary,
    /// Serves everyone.
    #[default]
    Full,
    /// Did worse online: the previous policy serves.
    RolledBack,
}

/// The policy a deployed one replaces.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PreviousPolicy {
    /// Its setting.
    pub policy: String,
    /// Its version.
    pub version: u32,
}

impl Deployed {
    /// The policy that serves everyone now (none: the server's own setting) and the
    /// candidate to roll out over it, if any.
    pub fn serving(&self) -> (Option<PreviousPolicy>, Option<PreviousPolicy>) {
        let this = PreviousPolicy {
            policy: self.policy.clone(),
            version: self.version,
        };
        match self.stage {
            DeployStage::Full => (Some(this), None),
            DeployStage::Canary => (self.previous.clone(), Some(this)),
            DeployStage::RolledBack => (self.previous.clone(), None),
        }
    }
}

/// The file `aisle policy deploy` writes and `aisle serve` reads.
pub fn deployed_path(data_dir: &Path) -> PathBuf {
    data_dir.join("policy.json")
}

/// Writes the deployed policy's file whole (atomically).
pub fn write_deployed(data_dir: &Path, record: &Deployed) -> anyhow::Result<()> {
    aisle_core::fs::write_atomic(
        &deployed_path(data_dir),
        serde_json::to_string_pretty(record)?.as_bytes(),
    )?;
    Ok(())
}

/// The deployed policy of a data directory, if any.
pub fn deployed(data_dir: &Path) -> anyhow::Result<Option<Deployed>> {
    let path = deployed_path(data_dir);
    if !path.is_file() {
        return Ok(None);
    }
    let text = fs_err::read_to_string(&path)?;
    let d: Deployed = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a deployed policy", path.display()))?;
    d.policy
        .parse::<ServingPolicy>()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    Ok(Some(d))
}

pub fn run(args: PolicyArgs) -> anyhow::Result<()> {
    match args.which {
        Which::Evaluate(a) => evaluate(a),
        Which::Simulate(a) => simulate(a),
        Which::Train(a) => train(a),
        Which::Deploy(a) => deploy(a),
        Which::List(a) => list(a),
    }
}

/// The result of `aisle policy evaluate`.
#[derive(Debug, Serialize)]
struct Evaluation {
    log: String,
    evaluated: String,
    rounds: usize,
    logged_value: f64,
    truth: Option<f64>,
    estimates: Vec<Estimate>,
    diagnostics: WeightDiagnostics,
}

fn evaluate(a: EvaluateArgs) -> anyhow::Result<()> {
    let evaluation = match &a.log.obd {
        Some(dir) => evaluate_obd(&a, dir)?,
        None => evaluate_store(&a)?,
    };
    if a.json {
        println!("{}", serde_json::to_string_pretty(&evaluation)?);
        return Ok(());
    }
    println!(
        "log: {} ({} rounds, logged value {:.6})",
        evaluation.log, evaluation.rounds, evaluation.logged_value
    );
    println!("evaluated: {}", evaluation.evaluated);
    print_estimates(&evaluation.estimates, evaluation.truth);
    print_diagnostics(&evaluation.diagnostics);
    Ok(())
}

fn print_estimates(estimates: &[Estimate], truth: Option<f64>) {
    match truth {
        Some(t) => println!(
            "{:<10} {:>10} {:>23} {:>10}   (truth {t:.6})",
            "estimator", "value", "95% interval", "rel.error"
        ),
        None => println!("{:<10} {:>10} {:>23}", "estimator", "value", "95% interval"),
    }
    for e in estimates {
        let interval = format!("{:.6} .. {:.6}", e.low, e.high);
        match truth {
            Some(t) => println!(
                "{:<10} {:>10.6} {:>23} {:>10.4}",
                e.estimator,
                e.value,
                interval,
                (e.value - t).abs() / t
            ),
            None => println!("{:<10} {:>10.6} {:>23}", e.estimator, e.value, interval),
        }
    }
}

fn print_diagnostics(d: &WeightDiagnostics) {
    println!(
        "effective sample size {:.1} of {} rounds; max weight {:.2} ({:.2}% of all weight); mean weight {:.3}",
        d.effective_sample_size,
        d.rounds,
        d.max_weight,
        d.max_weight_share * 100.0,
        d.mean_weight
    );
    if let Some(w) = &d.warning {
        println!("warning: {w}");
    }
}

fn read_obd(dir: &Path, policy: &str, campaign: &str) -> anyhow::Result<BanditLog> {
    BanditLog::read_obd(dir, policy, campaign).with_context(|| {
        format!(
            "while reading the {policy}/{campaign} log in {}",
            dir.display()
        )
    })
}

/// The context-free action distribution of a log: how often it showed each item at each
/// position.
fn empirical_dist(log: &BanditLog, n_actions: usize) -> ActionDist {
    let mut counts = vec![0.0; n_actions * log.len_list];
    let mut per_position = vec![0.0f64; log.len_list];
    for r in &log.rounds {
        counts[r.action as usize * log.len_list + usize::from(r.position)] += 1.0;
        per_position[usize::from(r.position)] += 1.0;
    }
    for a in 0..n_actions {
        for k in 0..log.len_list {
            counts[a * log.len_list + k] /= per_position[k].max(1.0);
        }
    }
    ActionDist {
        n_actions,
        len_list: log.len_list,
        per_round: false,
        values: counts,
    }
}

fn evaluate_obd(a: &EvaluateArgs, dir: &Path) -> anyhow::Result<Evaluation> {
    let log = read_obd(dir, &a.behavior, &a.log.campaign)?;
    let (dist, evaluated, truth) = match (&a.target_log, &a.action_dist) {
        (Some(target), None) => {
            let other = read_obd(dir, target, &a.log.campaign)?;
            (
                empirical_dist(&other, log.n_actions),
                format!("the {target} policy (its empirical action distribution)"),
                Some(other.mean_reward()),
            )
        }
        (None, Some(file)) => {
            let bytes = fs_err::read(file)?;
            let dist = ActionDist::from_le_bytes(&bytes, log.n_actions, log.len_list, a.per_round)
                .with_context(|| format!("while reading {}", file.display()))?;
            (dist, file.display().to_string(), None)
        }
        _ => anyhow::bail!("say what to evaluate: --target-log POLICY or --action-dist FILE"),
    };
    let q = reward::cross_fit(
        &log,
        RewardModelConfig {
            seed: a.seed,
            ..Default::default()
        },
    );
    let terms = ope::round_terms(&log, &dist, Some(&q))?;
    Ok(Evaluation {
        log: log.source.clone(),
        evaluated,
        rounds: log.rounds.len(),
        logged_value: log.mean_reward(),
        truth,
        estimates: ope::evaluate(&terms, &Estimator::tuned(&terms), a.bootstrap, 0.05, a.seed),
        diagnostics: ope::diagnostics(&terms),
    })
}

/// This store's impressions joined with their rewards.
fn rewarded_lists(
    data: &DataDir,
    r: &RewardArgs,
) -> anyhow::Result<Vec<impressions::RewardedList>> {
    let rule = RewardRule {
        weights: RewardRule::parse_weights(&r.reward)
            .map_err(|e| anyhow::anyhow!("--reward: {e}"))?,
        window_ms: r.window_minutes * 60_000,
        purchase_value: r.purchase_value,
    };
    let store = data.open_existing_store()?;
    Ok(aisle_engine::strategy::rewarded_lists(
        store.as_ref(),
        r.surface.as_deref(),
        &rule,
    )?)
}

fn parse_candidate(spec: &str) -> anyhow::Result<ServingPolicy> {
    spec.parse()
        .map_err(|e: String| anyhow::anyhow!("--candidate: {e}"))
}

fn evaluate_store(a: &EvaluateArgs) -> anyhow::Result<Evaluation> {
    let spec = a
        .candidate
        .as_deref()
        .context("say what to evaluate: --candidate POLICY (or --obd for an Open Bandit log)")?;
    let candidate = parse_candidate(spec)?;
    let lists = rewarded_lists(&a.data, &a.reward)?;
    if lists.is_empty() {
        anyhow::bail!(
            "{} has no logged impressions yet: serve some lists first",
            a.data.data_dir.display()
        );
    }
    let judged = impressions::judge(&lists, &candidate, a.bootstrap, a.seed);
    Ok(Evaluation {
        log: format!("{} ({} lists)", a.data.data_dir.display(), lists.len()),
        evaluated: format!("{} (reward per shown slot)", candidate.name()),
        rounds: judged.rounds,
        logged_value: judged.logged_value,
        truth: None,
        estimates: judged.estimates,
        diagnostics: judged.diagnostics,
    })
}

fn simulate(a: SimulateArgs) -> anyhow::Result<()> {
    let dir = a
        .log
        .obd
        .as_deref()
        .context("--obd DIR is needed: the simulator is fitted on an Open Bandit log")?;
    let fit = read_obd(dir, &a.fit, &a.log.campaign)?;
    let check = read_obd(dir, &a.check, &a.log.campaign)?;
    let mut config = ClickModelConfig {
        max_weight: a.max_weight,
        ..Default::default()
    };
    if let Some(c) = a.c {
        config.c_grid = vec![c];
    }
    let model = ClickModel::fit(&fit, &config)?;
    let c = simulator::calibrate(&model, &check);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"calibration": c, "inside": c.inside(), "c": model.c})
            )?
        );
    } else {
        println!(
            "fitted on {} (L2 C = {}), checked on {}",
            c.fitted_on, model.c, c.checked_on
        );
        println!(
            "predicted click rate {:.5}; observed {:.5} ({} clicks in {} rounds, 95% interval {:.5} .. {:.5}); miss {:+.2} standard errors",
            c.predicted, c.observed, c.clicks, c.rounds, c.low, c.high, c.z
        );
    }
    c.require(a.max_z)?;
    if !a.json {
        println!("calibrated: within {} standard errors", a.max_z);
    }
    Ok(())
}

fn train(a: TrainArgs) -> anyhow::Result<()> {
    let dir = a.log.obd.as_deref().context("--obd DIR is needed")?;
    let log = read_obd(dir, &a.behavior, &a.log.campaign)?;
    if !(0.1..=0.9).contains(&a.train_share) {
        anyhow::bail!("--train-share must be between 0.1 and 0.9");
    }
    let cut = (log.rounds.len() as f64 * a.train_share) as usize;
    let (train_rows, test_rows): (Vec<usize>, Vec<usize>) =
        (0..log.rounds.len()).partition(|&i| i < cut);
    let features = |log: &BanditLog, i: usize| -> Vec<f64> {
        let mut x = vec![1.0];
        x.extend_from_slice(&log.context[i]);
        x
    };
    let dim = 1 + log.context.first().map_or(0, Vec::len);
    let mut bandit =
        DisjointBandit::new(log.n_actions, dim, 1.0, Explorer::LinUcb { alpha: a.alpha });
    let bar = super::progress_bar(train_rows.len() as u64, "warm start");
    for &i in &train_rows {
        let r = log.rounds[i];
        bandit.learn(&features(&log, i), r.action as usize, r.reward);
        bar.inc(1);
    }
    bar.finish_and_clear();
    // Judged on the later rounds: the bandit's ranking puts its k-th best item in slot k.
    let test = log.select(&test_rows);
    let greedy = DisjointBandit {
        explorer: Explorer::Greedy,
        ..bandit.clone()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let (n_actions, len_list) = (log.n_actions, log.len_list);
    let mut values = vec![0.0; test.rounds.len() * n_actions * len_list];
    for (row, &i) in test_rows.iter().enumerate() {
        let scores = greedy.scores(&features(&log, i), &mut rng);
        let mut order: Vec<usize> = (0..n_actions).collect();
        order.sort_by(|&x, &y| scores[y].total_cmp(&scores[x]));
        for (k, &item) in order.iter().take(len_list).enumerate() {
            values[(row * n_actions + item) * len_list + k] = 1.0;
        }
    }
    let dist = ActionDist {
        n_actions,
        len_list,
        per_round: true,
        values,
    };
    let q = reward::cross_fit(&test, RewardModelConfig::default());
    let terms = ope::round_terms(&test, &dist, Some(&q))?;
    let estimates = ope::evaluate(&terms, &Estimator::tuned(&terms), a.bootstrap, 0.05, 7);
    let diagnostics = ope::diagnostics(&terms);
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(&serde_json::json!({
            "trained_on": train_rows.len(), "judged_on": test_rows.len(), "logged_value": test.mean_reward(),
            "estimates": estimates, "diagnostics": diagnostics }))?
        );
        return Ok(());
    }
    println!(
        "LinUCB (alpha {}) warm-started on the first {} rounds of {}; judged off-policy on the last {} (logged value {:.6})",
        a.alpha,
        train_rows.len(),
        log.source,
        test_rows.len(),
        test.mean_reward()
    );
    print_estimates(&estimates, None);
    print_diagnostics(&diagnostics);
    Ok(())
}

fn deploy(a: DeployArgs) -> anyhow::Result<()> {
    let candidate = parse_candidate(&a.candidate)?;
    let lists = rewarded_lists(&a.data, &a.reward)?;
    if lists.is_empty() {
        anyhow::bail!(
            "{} has no logged impressions: the gate has nothing to judge the candidate on",
            a.data.data_dir.display()
        );
    }
    let judged = impressions::judge(&lists, &candidate, a.bootstrap, 11);
    print_estimates(std::slice::from_ref(judged.snips()), None);
    print_diagnostics(&judged.diagnostics);
    println!(
        "current policy's value {:.6} over {} shown slots",
        judged.logged_value, judged.slots
    );
    match judged.gate {
        GateDecision::Fail { reason } => {
            anyhow::bail!("the gate refuses {}: {reason}", candidate.name())
        }
        GateDecision::Pass { .. } => {
            let before = deployed(&a.data.data_dir)?;
            let version = before.as_ref().map_or(1, |d| d.version) + 1;
            let record = Deployed {
                policy: a.candidate.clone(),
                version,
                gate: judged.verdict(),
                stage: if a.no_canary {
                    DeployStage::Full
                } else {
                    DeployStage::Canary
                },
                previous: before.and_then(|d| d.serving().0),
                verdict: None,
            };
            write_deployed(&a.data.data_dir, &record)?;
            let how = if a.no_canary {
                "serves it to everyone"
            } else {
                "rolls it out (shadow, a canary share of users, then everyone or a rollback on the online reward; see canary_* settings)"
            };
            println!(
                "deployed {} as version {version}: aisle serve on {} {how} from its next start",
                candidate.name(),
                a.data.data_dir.display()
            );
            Ok(())
        }
    }
}

#[derive(Debug, Serialize)]
struct PolicyRow {
    policy: String,
    version: u32,
    lists: usize,
    slots: usize,
    reward_per_slot: f64,
}

fn list(a: ListArgs) -> anyhow::Result<()> {
    let deployed = deployed(&a.data.data_dir)?;
    let lists = rewarded_lists(&a.data, &a.reward)?;
    let mut rows: Vec<PolicyRow> = Vec::new();
    for l in &lists {
        let (p, v) = (&l.impression.policy, l.impression.policy_version);
        let at = match rows.iter().position(|r| r.policy == *p && r.version == v) {
            Some(at) => at,
            None => {
                rows.push(PolicyRow {
                    policy: p.clone(),
                    version: v,
                    lists: 0,
                    slots: 0,
                    reward_per_slot: 0.0,
                });
                rows.len() - 1
            }
        };
        let row = &mut rows[at];
        row.lists += 1;
        row.slots += l.rewards.len();
        row.reward_per_slot += l.rewards.iter().sum::<f64>();
    }
    for r in &mut rows {
        r.reward_per_slot /= r.slots.max(1) as f64;
    }
    if a.json {
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({"deployed": deployed, "policies": rows})
            )?
        );
        return Ok(());
    }
    match &deployed {
        Some(d) => {
            println!(
                "deployed: {} (version {}, {:?}): {}",
                d.policy, d.version, d.stage, d.gate
            );
            if let Some(v) = &d.verdict {
                println!("  canary verdict: {v}");
            }
        }
        None => println!("deployed: none (aisle serve uses its exploration setting)"),
    }
    println!(
        "{:<40} {:>7} {:>8} {:>8} {:>15}",
        "policy", "version", "lists", "slots", "reward/slot"
    );
    for r in rows {
        println!(
            "{:<40} {:>7} {:>8} {:>8} {:>15.5}",
            r.policy, r.version, r.lists, r.slots, r.reward_per_slot
        );
    }
    Ok(())
}
