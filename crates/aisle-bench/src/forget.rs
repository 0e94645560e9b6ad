//! `aisle-bench forget`: forgetting users in a fitted model (`Recommender::forget`) against
//! refitting it without them, in the same run, on MovieLens-100k and on The Complete
//! Journey (92,331 products: a catalogue where what ten shoppers touched is a small part).
//! Each model is fitted once on the whole log; the forget runs on copies (the best of
//! `--rounds`), the refit once on the log without the users; then every sampled remaining
//! user's scores are compared with the refit's.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use aisle_features::{CleaningConfig, EventLog};
use aisle_import::Adapter;
use aisle_models::{
    Forgetting, Model, ModelConfig, Query, Recommender, TrainData, TrainDataBuilder, top_k,
};

#[derive(clap::Args, Debug)]
pub struct ForgetArgs {
    /// Folder holding the shared datasets.
    #[arg(long, default_value = "../shared/data")]
    shared: PathBuf,
    /// Report to write.
    #[arg(long, default_value = "bench/results/forget.md")]
    out: PathBuf,
    /// Users forgotten at once.
    #[arg(long, default_value_t = 10)]
    users: usize,
    /// Forgets timed per model (the best is reported).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Remaining users whose every score is compared with the refit's.
    #[arg(long, default_value_t = 300)]
    compared: usize,
}

/// The models that forget in place, each at its default settings.
const MODELS: [&str; 8] = [
    "pop", "itemknn", "userknn", "rp3beta", "sknn", "sr", "ease", "als",
];

struct Row {
    model: &'static str,
    outcome: String,
    forget_s: f64,
    refit_s: f64,
    max_gap: f32,
    same_top10: (usize, usize),
    /// The model before the forget against the refit: what forgetting had to change.
    unforgotten_top10: usize,
}

fn load(adapter: Adapter, dir: &std::path::Path) -> anyhow::Result<EventLog> {
    let store = aisle_import::in_memory(adapter, dir)
        .map_err(|e| anyhow::anyhow!("importing {}: {e}", dir.display()))?;
    let mut log = EventLog::load(&store)?;
    log.clean(&CleaningConfig::default())?;
    Ok(log)
}

/// `n` users with events, spread evenly over the id range.
fn spread_users(data: &TrainData, n: usize) -> Vec<u32> {
    let active: Vec<u32> = (0..data.n_users() as u32)
        .filter(|&u| !data.matrix.row(u).0.is_empty())
        .collect();
    let step = (active.len() / n.max(1)).max(1);
    active.iter().step_by(step).take(n).copied().collect()
}

fn scores(model: &dyn Recommender, data: &TrainData, user: u32) -> Vec<f32> {
    let mut s = vec![0.0; model.n_items()];
    model.score(
        &Query {
            user: Some(user),
            history: data.matrix.row(user).0,
            ..Query::default()
        },
        &mut s,
    );
    s
}

fn top10(s: &[f32]) -> Vec<u32> {
    top_k(s, 10, |_| true).into_iter().map(|x| x.item).collect()
}

fn measure(
    name: &'static str,
    before: &TrainData,
    after: &TrainData,
    forgotten: &[u32],
    args: &ForgetArgs,
) -> Row {
    let mut row = Row {
        model: name,
        outcome: String::new(),
        forget_s: f64::NAN,
        refit_s: f64::NAN,
        max_gap: f32::NAN,
        same_top10: (0, 0),
        unforgotten_top10: 0,
    };
    let config = ModelConfig::default_for(name).expect("a known model");
    let mut fitted = Model::build(&config);
    if let Err(e) = fitted.fit(before) {
        row.outcome = format!("does not fit: {e}");
        return row;
    }
    let mut users = forgotten.to_vec();
    let change = Forgetting::new(&mut users, before, after).expect("one log");
    let mut forgot = None;
    for _ in 0..args.rounds.max(1) {
        let mut copy = fitted.clone();
        let started = Instant::now();
        let how = copy.forget(&change);
        // `min` with NaN gives the other side: the first round sets it.
        row.forget_s = row.forget_s.min(started.elapsed().as_secs_f64());
        forgot = Some((copy, how));
    }
    let (forgot, how) = forgot.expect("one round");
    match how {
        Ok(how) => row.outcome = format!("{how:?}"),
        Err(e) => {
            row.outcome = format!("refused: {e}");
            return row;
        }
    }
    let mut refit = Model::build(&config);
    let started = Instant::now();
    refit.fit(after).expect("the refit fits");
    row.refit_s = started.elapsed().as_secs_f64();
    let remaining: Vec<u32> = (0..after.n_users() as u32)
        .filter(|&u| !after.matrix.row(u).0.is_empty())
        .collect();
    let step = (remaining.len() / args.compared.max(1)).max(1);
    row.max_gap = 0.0;
    for &u in remaining.iter().step_by(step).take(args.compared) {
        let (a, b) = (scores(&forgot, after, u), scores(&refit, after, u));
        let unforgotten = scores(&fitted, after, u);
        row.unforgotten_top10 += usize::from(top10(&unforgotten) == top10(&b));
        let gap = a
            .iter()
            .zip(&b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0f32, f32::max);
        row.max_gap = row.max_gap.max(gap);
        row.same_top10.1 += 1;
        row.same_top10.0 += usize::from(top10(&a) == top10(&b));
    }
    row
}

/// Runs the bench on both datasets and writes the report.
pub fn run(args: ForgetArgs) -> anyhow::Result<()> {
    let mut md = String::from(
        "# Forgetting users in place against a refit without them\n\n\
         `cargo run --release -p aisle-bench -- forget` (2 cores, release build). Each model at \
         its default settings is fitted on the whole log; the forget (`Recommender::forget`, \
         the best of the rounds) and the refit on the log without the users run in the same \
         process. Both need the training data without the users; building it is timed once, \
         apart. `max |Δ|` is the largest score difference against the refit over every item \
         for the compared remaining users; the last column compares the model before the forget \
         with the refit (what forgetting had to change, and what the comparison can see). `Exactly` means bit-identical to a refit by \
         construction, `UpToRounding` (EASE's Woodbury downdates, a block of users per pass over the inverse) equal up to \
         floating point, `Resolved` (ALS) the users' factors dropped and the items they touched \
         solved again against the others, which a refit from scratch need not match.\n",
    );
    let datasets = [
        ("MovieLens-100k", Adapter::MovieLens, "movielens-100k"),
        (
            "The Complete Journey",
            Adapter::CompleteJourney,
            "completejourney",
        ),
    ];
    for (title, adapter, folder) in datasets {
        let dir = args.shared.join(folder);
        eprintln!("{title}: loading {}", dir.display());
        let log = load(adapter, &dir)?;
        let before = TrainDataBuilder::new().build(&log);
        let mut forgotten = spread_users(&before, args.users);
        forgotten.sort_unstable();
        let started = Instant::now();
        let after = TrainDataBuilder::new().build(&log.without_users(&forgotten));
        let build_s = started.elapsed().as_secs_f64();
        let mut probe = forgotten.clone();
        let touched = Forgetting::new(&mut probe, &before, &after)?
            .touched_items()
            .len();
        let _ = write!(
            md,
            "\n## {title}\n\n{} events, {} users, {} items; {} users forgotten, who touched {} \
             items. Building the training data without them: {build_s:.3} s.\n\n\
             | model | outcome | forget (s) | refit (s) | forget / refit | max \\|Δ\\| | same top-10 | same top-10 unforgotten |\n\
             |---|---|---:|---:|---:|---:|---:|---:|\n",
            log.len(),
            before.n_users(),
            before.n_items(),
            forgotten.len(),
            touched,
        );
        for name in MODELS {
            eprintln!("{title}: {name}");
            let r = measure(name, &before, &after, &forgotten, &args);
            if r.refit_s.is_nan() {
                let _ = writeln!(md, "| {} | {} | | | | | | |", r.model, r.outcome);
                continue;
            }
            let _ = writeln!(
                md,
                "| {} | {} | {:.4} | {:.4} | {:.3} | {:.1e} | {} of {} | {} of {} |",
                r.model,
                r.outcome,
                r.forget_s,
                r.refit_s,
                r.forget_s / r.refit_s,
                r.max_gap,
                r.same_top10.0,
                r.same_top10.1,
                r.unforgotten_top10,
                r.same_top10.1
            );
        }
    }
    aisle_core::fs::write_atomic(&args.out, md.as_bytes())?;
    eprintln!("{}", md);
    eprintln!("written to {}", args.out.display());
    Ok(())
}
