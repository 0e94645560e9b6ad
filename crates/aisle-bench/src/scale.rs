//! `aisle-bench scale`: cost curves on **synthetic** logs scaled up from a real one.
//!
//! No public file holds 50 million shop events, so the sizes past the real log come from
//! [`scale_up`], which rebuilds a real log (The Complete Journey by default) at a larger
//! size while keeping its shape: every synthetic user replays a window of a real user's
//! timeline (so the per-user length distribution, session lengths, time gaps, event kinds
//! and the repeat rate are the real ones), and the catalogue grows by copies ("worlds") of
//! the real items, so the popularity curve keeps its form, stretched over more items. The
//! report prints the real and the synthetic shapes side by side, and every table says the
//! data is synthetic.
//!
//! Each measurement runs in a fresh child process (`scale-import`, `scale-fit`), so that
//! its peak resident memory is its own: the import into a fresh embedded store from a CSV
//! file, then, per model, the fit on the store's log.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aisle_features::{CleaningConfig, EventLog, Interaction, NO_ITEM, SessionConfig, Sessions};
use aisle_import::{ImportOptions, Mapping, Source, TableFormat};
use aisle_models::{Model, ModelConfig, Recommender, TrainDataBuilder};
use anyhow::{Context, bail};
use rand::{Rng, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::{Deserialize, Serialize};

use crate::import::peak_rss_mib;

/// Share of a synthetic user's distinct items drawn afresh from the popularity curve
/// instead of copied from the template, so that two users replaying one template differ.
const FRESH_ITEM_SHARE: f64 = 0.1;

#[derive(clap::Args, Debug)]
pub struct ScaleArgs {
    /// The real log to scale up (The Complete Journey's directory).
    #[arg(long, env = "AISLE_SHARED_DATA", default_value = "../shared/data")]
    shared: PathBuf,
    /// Log sizes, in millions of events.
    #[arg(long, value_delimiter = ',', default_value = "1,5,10")]
    sizes: Vec<f64>,
    /// Models to train at each size.
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "pop,itemknn,userknn,rp3beta,ease,als,bpr,puresvd,sknn,sr"
    )]
    models: Vec<String>,
    /// A fit still running after this many seconds is stopped and reported as such.
    #[arg(long, default_value_t = 900)]
    fit_timeout: u64,
    /// Folder for the generated CSV files and stores (removed afterwards).
    #[arg(long, default_value = "/tmp")]
    work: PathBuf,
    /// Report to write (a chart is written beside it, as .svg).
    #[arg(long, default_value = "bench/results/scale-curves.md")]
    out: PathBuf,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(clap::Args, Debug)]
pub struct SynthArgs {
    /// The real log to scale up (The Complete Journey's directory).
    #[arg(long, env = "AISLE_SHARED_DATA", default_value = "../shared/data")]
    shared: PathBuf,
    /// Log size in millions of events; users and items as in the cost curves.
    #[arg(long, default_value_t = 10.0)]
    millions: f64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The CSV file to write (`aisle import --format csv` reads it).
    #[arg(long)]
    out: PathBuf,
}

/// Writes the **synthetic** log the cost curves use at one size, for other benchmarks
/// (`bash bench/implicit.sh scaled10m`) to read.
pub fn synth(args: SynthArgs) -> anyhow::Result<()> {
    let base = base_log(&args.shared)?;
    let spec = Spec::for_events((args.millions * 1e6).round() as usize, &base, args.seed);
    eprintln!(
        "generating {} events ({} users, {} items)",
        spec.events, spec.users, spec.items
    );
    let log = scale_up(&base, &spec)?;
    write_csv(&log, &args.out)?;
    eprintln!("{} events written to {}", log.len(), args.out.display());
    Ok(())
}

/// The Complete Journey log, cleaned: what every synthetic log is scaled up from.
pub(crate) fn base_log(shared: &Path) -> anyhow::Result<EventLog> {
    let dir = shared.join("completejourney");
    eprintln!("loading the base log from {}", dir.display());
    let store = aisle_import::in_memory(aisle_import::Adapter::CompleteJourney, &dir)
        .with_context(|| format!("while importing Complete Journey from {}", dir.display()))?;
    let mut base = EventLog::load(&store)?;
    base.clean(&CleaningConfig::default())?;
    Ok(base)
}

/// What to generate.
#[derive(Clone, Copy, Debug)]
pub struct Spec {
    /// Events wanted (the result is within a few percent).
    pub events: usize,
    /// Users, each replaying a window of one real user.
    pub users: usize,
    /// Catalogue size; at least the real one.
    pub items: usize,
    /// Generator seed.
    pub seed: u64,
}

impl Spec {
    /// The sizes the cost curves use: 50 events per user, as many items as users but never
    /// fewer than the real catalogue (so 50 million events give a million users and items).
    pub fn for_events(events: usize, base: &EventLog, seed: u64) -> Spec {
        let users = (events / 50).max(1);
        Spec {
            events,
            users,
            items: users.max(base.n_items()),
            seed,
        }
    }
}

fn mix(seed: u64, a: u64, b: u64) -> u64 {
    (seed ^ a.wrapping_mul(0x9e37_79b9_7f4a_7c15))
        .wrapping_add(b.wrapping_mul(0xc2b2_ae3d_27d4_eb4f))
}

/// Each user's event indices in `log`, oldest first, for users with at least one event.
fn timelines(log: &EventLog) -> Vec<Vec<u32>> {
    let mut by_user: Vec<Vec<u32>> = vec![Vec::new(); log.n_users()];
    for (index, e) in log.events().iter().enumerate() {
        by_user[e.user as usize].push(index as u32);
    }
    by_user.retain(|t| !t.is_empty());
    by_user
}

/// Draws items in proportion to the real item-event counts, by a binary search over their
/// running total.
struct Popularity {
    running: Vec<u64>,
}

impl Popularity {
    fn of(log: &EventLog) -> Popularity {
        let mut counts = vec![0u64; log.n_items()];
        for e in log.events() {
            if e.item != NO_ITEM {
                counts[e.item as usize] += 1;
            }
        }
        let mut total = 0;
        let running = counts
            .iter()
            .map(|c| {
                total += c;
                total
            })
            .collect();
        Popularity { running }
    }

    fn draw(&self, rng: &mut impl Rng) -> u32 {
        let total = *self.running.last().unwrap_or(&0);
        let at = rng.random_range(0..total.max(1));
        self.running.partition_point(|&r| r <= at) as u32
    }
}

/// A synthetic log of about `spec.events` events with the shape of `base` (module docs).
/// Deterministic for a spec.
pub fn scale_up(base: &EventLog, spec: &Spec) -> anyhow::Result<EventLog> {
    let templates = timelines(base);
    if templates.is_empty() || base.n_items() == 0 {
        bail!("the base log has no events to scale up");
    }
    if spec.items < base.n_items() {
        bail!(
            "asked for {} items, fewer than the base log's {}",
            spec.items,
            base.n_items()
        );
    }
    let events = base.events();
    let base_items = base.n_items();
    let worlds = spec.items.div_ceil(base_items);
    let popularity = Popularity::of(base);
    let ratio =
        (spec.events as f64 / spec.users as f64) / (events.len() as f64 / templates.len() as f64);
    let to_world = |item: u32, world: usize| {
        let id = world * base_items + item as usize;
        if id < spec.items { id as u32 } else { item }
    };
    let mut out: Vec<Interaction> = Vec::with_capacity(spec.events + spec.events / 10);
    let mut items_of_user: FxHashMap<u32, u32> = FxHashMap::default();
    for user in 0..spec.users {
        let mut rng = rand::rngs::SmallRng::seed_from_u64(mix(spec.seed, user as u64, 1));
        let template = &templates[rng.random_range(0..templates.len())];
        let want = ((template.len() as f64 * ratio).round() as usize).max(1);
        let world = rng.random_range(0..worlds);
        let first_ms = events[template[0] as usize].timestamp_ms;
        let last_ms = events[*template.last().expect("not empty") as usize].timestamp_ms;
        // A template shorter than the window is replayed lap after lap, each lap a day
        // after the previous one ends.
        let lap_ms = last_ms - first_ms + 86_400_000;
        let start = if want < template.len() {
            rng.random_range(0..=template.len() - want)
        } else {
            0
        };
        items_of_user.clear();
        for step in 0..want {
            let at = start + step;
            let (lap, index) = (at / template.len(), at % template.len());
            let e = &events[template[index] as usize];
            let item = if e.item == NO_ITEM {
                NO_ITEM
            } else {
                *items_of_user.entry(e.item).or_insert_with(|| {
                    if rng.random_bool(FRESH_ITEM_SHARE) {
                        to_world(popularity.draw(&mut rng), rng.random_range(0..worlds))
                    } else {
                        to_world(e.item, world)
                    }
                })
            };
            out.push(Interaction {
                user: user as u32,
                item,
                kind: e.kind,
                timestamp_ms: e.timestamp_ms + lap as i64 * lap_ms,
                session: if e.session == 0 {
                    0
                } else {
                    mix(e.session, user as u64, lap as u64) | 1
                },
                value: e.value,
            });
        }
    }
    Ok(EventLog::from_events(out, spec.users, spec.items))
}

/// The statistics the generator promises to keep.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Shape {
    events: usize,
    users: usize,
    items_seen: usize,
    median_events_per_user: usize,
    top_1pct_item_share: f64,
    repeat_rate: f64,
    mean_session_length: f64,
    /// Median time between a user's consecutive events, zero gaps (one basket) left out.
    median_gap_h: f64,
}

impl Shape {
    /// Measures `log`.
    pub fn of(log: &EventLog) -> Shape {
        let events = log.events();
        let lines = timelines(log);
        let mut counts = vec![0u64; log.n_items()];
        let (mut repeats, mut item_events) = (0usize, 0usize);
        let mut gaps = Vec::with_capacity(events.len());
        let mut seen = FxHashSet::default();
        for line in &lines {
            seen.clear();
            for pair in line.windows(2) {
                let gap =
                    events[pair[1] as usize].timestamp_ms - events[pair[0] as usize].timestamp_ms;
                if gap > 0 {
                    gaps.push(gap);
                }
            }
            for &index in line {
                let item = events[index as usize].item;
                if item != NO_ITEM {
                    counts[item as usize] += 1;
                    item_events += 1;
                    repeats += usize::from(!seen.insert(item));
                }
            }
        }
        let mut lengths: Vec<usize> = lines.iter().map(Vec::len).collect();
        lengths.sort_unstable();
        counts.retain(|&c| c > 0);
        counts.sort_unstable_by(|a, b| b.cmp(a));
        let top = counts.len().div_ceil(100);
        let top_share = counts[..top].iter().sum::<u64>() as f64 / item_events.max(1) as f64;
        gaps.sort_unstable();
        let sessions = Sessions::build(log, &SessionConfig::default());
        Shape {
            events: events.len(),
            users: lines.len(),
            items_seen: counts.len(),
            median_events_per_user: lengths.get(lengths.len() / 2).copied().unwrap_or(0),
            top_1pct_item_share: top_share,
            repeat_rate: repeats as f64 / item_events.max(1) as f64,
            mean_session_length: events.len() as f64 / sessions.len().max(1) as f64,
            median_gap_h: gaps.get(gaps.len() / 2).copied().unwrap_or(0) as f64 / 3.6e6,
        }
    }
}

/// Writes `log` as a CSV file that `aisle import --format csv` reads with its default
/// column names (timestamps in Unix milliseconds).
pub fn write_csv(log: &EventLog, path: &Path) -> anyhow::Result<()> {
    let file = fs_err::File::create(path)?;
    let mut out = csv::Writer::from_writer(std::io::BufWriter::with_capacity(1 << 20, file));
    out.write_record(["user", "item", "kind", "timestamp", "session", "value"])?;
    let (mut user, mut item, mut session) = (String::new(), String::new(), String::new());
    for e in log.events() {
        use std::fmt::Write;
        let kind = e
            .kind
            .builtin_name()
            .context("the base log has a custom event kind, which the CSV cannot name")?;
        user.clear();
        item.clear();
        session.clear();
        write!(user, "u{}", e.user)?;
        if e.item != NO_ITEM {
            write!(item, "i{}", e.item)?;
        }
        if e.session != 0 {
            write!(session, "s{:x}", e.session)?;
        }
        let value = if e.value == 0.0 {
            String::new()
        } else {
            e.value.to_string()
        };
        out.write_record([
            user.as_str(),
            item.as_str(),
            kind,
            &e.timestamp_ms.to_string(),
            session.as_str(),
            &value,
        ])?;
    }
    out.flush()?;
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ImportOneArgs {
    #[arg(long)]
    csv: PathBuf,
    #[arg(long)]
    store: PathBuf,
}

/// One import, measured in this process.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct ImportMeasurement {
    events: usize,
    import_seconds: f64,
    import_peak_mib: f64,
    load_seconds: f64,
    structures_seconds: f64,
    peak_mib: f64,
}

/// The CSV into a fresh embedded store (durable), then the log read back, cleaned, and the
/// training structures every model starts from.
pub fn import_one(args: &ImportOneArgs) -> anyhow::Result<ImportMeasurement> {
    let store = aisle_store::RedbStore::open(&args.store)?;
    let mapping = Mapping {
        time_format: "unix_ms".into(),
        ..Mapping::default()
    };
    let started = Instant::now();
    let report = aisle_import::import(
        &store,
        &Source::Table {
            format: TableFormat::Csv,
            mapping,
        },
        std::slice::from_ref(&args.csv),
        &ImportOptions {
            strict: true,
            ..ImportOptions::default()
        },
    )?;
    let import_seconds = started.elapsed().as_secs_f64();
    let import_peak_mib = peak_rss_mib()?;
    let t = Instant::now();
    let mut log = EventLog::load(&store)?;
    log.clean(&CleaningConfig::default())?;
    let load_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let data = TrainDataBuilder::new().build(&log);
    let structures_seconds = t.elapsed().as_secs_f64();
    std::hint::black_box(&data);
    Ok(ImportMeasurement {
        events: report.write.events_added,
        import_seconds,
        import_peak_mib,
        load_seconds,
        structures_seconds,
        peak_mib: peak_rss_mib()?,
    })
}

#[derive(clap::Args, Debug)]
pub struct FitOneArgs {
    #[arg(long)]
    store: PathBuf,
    #[arg(long)]
    model: String,
}

/// One fit, measured in this process.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FitMeasurement {
    fit_seconds: f64,
    peak_mib: f64,
    /// The model's refusal, when it refused.
    refused: Option<String>,
}

pub fn fit_one(args: &FitOneArgs) -> anyhow::Result<FitMeasurement> {
    let store = aisle_store::RedbStore::open(&args.store)?;
    let mut log = EventLog::load(&store)?;
    log.clean(&CleaningConfig::default())?;
    let data = TrainDataBuilder::new().build(&log);
    drop(log);
    let mut model = Model::build(&ModelConfig::default_for(&args.model)?);
    let started = Instant::now();
    let refused = model.fit(&data).err().map(|e| e.to_string());
    Ok(FitMeasurement {
        fit_seconds: started.elapsed().as_secs_f64(),
        peak_mib: peak_rss_mib()?,
        refused,
    })
}

/// Runs this binary with `args` and parses its JSON answer; `None` when it ran past
/// `timeout` (it is killed).
fn child<T: serde::de::DeserializeOwned>(
    args: &[&str],
    timeout: Duration,
) -> anyhow::Result<Result<T, String>> {
    let mut process = Command::new(std::env::current_exe()?)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let started = Instant::now();
    loop {
        if process.try_wait()?.is_some() {
            break;
        }
        if started.elapsed() > timeout {
            process.kill()?;
            process.wait()?;
            return Ok(Err(format!("stopped after {} s", timeout.as_secs())));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let out = process.wait_with_output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let last = stderr.lines().last().unwrap_or("no message").to_string();
        return Ok(Err(format!("failed ({}): {last}", out.status)));
    }
    Ok(Ok(serde_json::from_slice(&out.stdout)?))
}

struct SizeResult {
    spec: Spec,
    generate_seconds: f64,
    shape: Shape,
    import: Result<ImportMeasurement, String>,
    fits: Vec<(String, Result<FitMeasurement, String>)>,
}

pub fn run(args: ScaleArgs) -> anyhow::Result<()> {
    let base = base_log(&args.shared)?;
    let base_shape = Shape::of(&base);
    let mut results = Vec::new();
    for &millions in &args.sizes {
        let spec = Spec::for_events((millions * 1e6).round() as usize, &base, args.seed);
        eprintln!(
            "{millions} million events: generating ({} users, {} items)",
            spec.users, spec.items
        );
        let started = Instant::now();
        let log = scale_up(&base, &spec)?;
        let generate_seconds = started.elapsed().as_secs_f64();
        let shape = Shape::of(&log);
        let csv = args.work.join(format!("aisle-scale-{millions}m.csv"));
        let store_dir = args.work.join(format!("aisle-scale-{millions}m.store"));
        write_csv(&log, &csv)?;
        drop(log);
        if store_dir.exists() {
            fs_err::remove_dir_all(&store_dir)?;
        }
        eprintln!("{millions} million events: importing");
        let (csv_arg, store_arg) = (csv.display().to_string(), store_dir.display().to_string());
        let import = child::<ImportMeasurement>(
            &["scale-import", "--csv", &csv_arg, "--store", &store_arg],
            Duration::from_secs(3600),
        )?;
        fs_err::remove_file(&csv)?;
        let mut fits = Vec::new();
        if import.is_ok() {
            for model in &args.models {
                eprintln!("{millions} million events: fitting {model}");
                let fit = child::<FitMeasurement>(
                    &["scale-fit", "--store", &store_arg, "--model", model],
                    Duration::from_secs(args.fit_timeout),
                )?;
                eprintln!("  {fit:?}");
                fits.push((model.clone(), fit));
            }
        }
        fs_err::remove_dir_all(&store_dir).ok();
        results.push(SizeResult {
            spec,
            generate_seconds,
            shape,
            import,
            fits,
        });
    }
    let report = render(&args, &base_shape, &results);
    aisle_core::fs::write_atomic(&args.out, report.markdown.as_bytes())?;
    aisle_core::fs::write_atomic(&args.out.with_extension("svg"), report.chart.as_bytes())?;
    print!("{}", report.markdown);
    eprintln!("wrote {}", args.out.display());
    Ok(())
}

struct Report {
    markdown: String,
    chart: String,
}

/// Time ratio per 10x events between the smallest and the largest size measured.
fn per_tenfold(points: &[(f64, f64)]) -> Option<f64> {
    let (first, last) = (points.first()?, points.last()?);
    if points.len() < 2 || first.0 == last.0 || first.1 <= 0.0 {
        return None;
    }
    let slope = (last.1 / first.1).log10() / (last.0 / first.0).log10();
    Some(10f64.powf(slope))
}

fn render(args: &ScaleArgs, base: &Shape, results: &[SizeResult]) -> Report {
    use aisle_cli::output::thousands;
    let mut md = String::from(
        "# Cost curves on synthetic logs scaled up from The Complete Journey (issue 19)\n\n",
    );
    let sizes: Vec<String> = args.sizes.iter().map(f64::to_string).collect();
    md.push_str(&format!(
        "Command: `cargo run --release -p aisle-bench -- scale --sizes {}`. Machine: {} cores, \
         each measurement in a fresh process (peak memory is its VmHWM).\n\n",
        sizes.join(","),
        std::thread::available_parallelism().map_or(0, usize::from)
    ));
    md.push_str(
        "**The logs are synthetic.** Each is generated from the real Complete Journey log \
         (`aisle-bench`'s `scale::scale_up`): a synthetic user replays a window of a real \
         household's timeline, scaled to 50 events per user, with its items moved into one \
         of several copies of the catalogue (one item in ten drawn afresh from the \
         popularity curve). The shape it keeps, measured on each log:\n\n",
    );
    md.push_str("| log | events | users | items with events | median events per user | top 1% items' share | repeat rate | events per session | median non-zero gap (h) |\n|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    let shape_row = |name: &str, s: &Shape| {
        format!(
            "| {name} | {} | {} | {} | {} | {:.3} | {:.3} | {:.1} | {:.1} |\n",
            thousands(s.events as u64),
            thousands(s.users as u64),
            thousands(s.items_seen as u64),
            s.median_events_per_user,
            s.top_1pct_item_share,
            s.repeat_rate,
            s.mean_session_length,
            s.median_gap_h
        )
    };
    md.push_str(&shape_row("Complete Journey (real)", base));
    for r in results {
        md.push_str(&shape_row(
            &format!("synthetic, {} million", r.spec.events as f64 / 1e6),
            &r.shape,
        ));
    }
    md.push_str(
        "\nThe per-user window is shorter than a real household's year of baskets, so the \
         repeat rate and the median events per user are lower by design; the gaps, the \
         session lengths and the popularity curve are the real log's.\n\n",
    );
    md.push_str("## Import and training structures\n\nImport: the CSV through `aisle import`'s reader into a fresh embedded store, one durable (fsynced) write. Structures: the log read back and cleaned, then the interaction matrix, its transpose, sequences and sessions that every model trains from.\n\n");
    md.push_str("| events | catalogue | import s | events/s | import peak MiB | read back s | structures s | peak MiB | generation s (not a cost) |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for r in results {
        match &r.import {
            Ok(m) => md.push_str(&format!(
                "| {} | {} | {:.1} | {} | {:.0} | {:.1} | {:.1} | {:.0} | {:.1} |\n",
                thousands(m.events as u64),
                thousands(r.spec.items as u64),
                m.import_seconds,
                thousands((m.events as f64 / m.import_seconds) as u64),
                m.import_peak_mib,
                m.load_seconds,
                m.structures_seconds,
                m.peak_mib,
                r.generate_seconds
            )),
            Err(e) => md.push_str(&format!(
                "| {} | {} | {e} | | | | | | |\n",
                thousands(r.spec.events as u64),
                thousands(r.spec.items as u64)
            )),
        }
    }
    let import_points: Vec<(f64, f64)> = results
        .iter()
        .filter_map(|r| {
            r.import
                .as_ref()
                .ok()
                .map(|m| (m.events as f64, m.import_seconds))
        })
        .collect();
    if let Some(g) = per_tenfold(&import_points) {
        md.push_str(&format!("\nImport time grows {g:.1}x per 10x events.\n"));
    }
    md.push_str("\n## Training time and peak memory per model (default settings)\n\n");
    md.push_str("Each cell: fit seconds (peak MiB of the process, log and structures included). The last column is the time ratio per 10x events, from the smallest to the largest size that fitted.\n\n| model |");
    for r in results {
        md.push_str(&format!(" {} M events |", r.spec.events as f64 / 1e6));
    }
    md.push_str(" per 10x events |\n|---|");
    md.push_str(&"---:|".repeat(results.len() + 1));
    md.push('\n');
    let mut series = Vec::new();
    let mut refusals = Vec::new();
    for model in &args.models {
        md.push_str(&format!("| {model} |"));
        let mut points = Vec::new();
        for r in results {
            let cell = match r.fits.iter().find(|(m, _)| m == model).map(|(_, f)| f) {
                Some(Ok(FitMeasurement {
                    refused: Some(why), ..
                })) => {
                    refusals.push(format!(
                        "- {model} at {} million events: {why}",
                        r.spec.events as f64 / 1e6
                    ));
                    "refused (below)".into()
                }
                Some(Ok(f)) => {
                    points.push((r.spec.events as f64, f.fit_seconds));
                    format!("{:.1} ({:.0})", f.fit_seconds, f.peak_mib)
                }
                Some(Err(e)) => e.clone(),
                None => "not run".into(),
            };
            md.push_str(&format!(" {} |", cell.replace('|', "/")));
        }
        let growth = per_tenfold(&points).map_or("-".into(), |g| format!("{g:.1}x"));
        md.push_str(&format!(" {growth} |\n"));
        series.push((model.clone(), points));
    }
    if !refusals.is_empty() {
        md.push_str("\nRefusals, up front and in the model's words:\n\n");
        md.push_str(&refusals.join("\n"));
        md.push('\n');
    }
    let chart_name = args
        .out
        .with_extension("svg")
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    md.push_str(&format!(
        "\n![Fit time against log size, log-log]({chart_name})\n"
    ));
    let chart = aisle_eval::chart::log_log_svg(
        "Fit time (s) against events, synthetic logs",
        "events",
        &series,
    );
    Report {
        markdown: md,
        chart,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> EventLog {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../data/instacart-sample");
        let store = aisle_import::in_memory(aisle_import::Adapter::Instacart, Path::new(dir))
            .expect("the bundled sample imports");
        EventLog::load(&store).expect("loads")
    }

    #[test]
    fn a_scaled_log_keeps_the_real_shape_at_the_size_asked() {
        let base = base();
        let real = Shape::of(&base);
        let spec = Spec {
            events: 3 * base.len(),
            users: 3 * real.users,
            items: 3 * base.n_items(),
            seed: 7,
        };
        let log = scale_up(&base, &spec).expect("scales");
        let synthetic = Shape::of(&log);
        let within = |a: f64, b: f64, tolerance: f64| (a - b).abs() <= tolerance * b;
        assert!(
            within(log.len() as f64, spec.events as f64, 0.05),
            "{} events",
            log.len()
        );
        assert_eq!(synthetic.users, spec.users);
        assert!(synthetic.items_seen > 2 * real.items_seen, "{synthetic:?}");
        // Same events per user, so the windows are whole timelines: the shape is the real one.
        assert!(
            within(synthetic.repeat_rate, real.repeat_rate, 0.15),
            "{synthetic:?} vs {real:?}"
        );
        assert!(within(
            synthetic.mean_session_length,
            real.mean_session_length,
            0.1
        ));
        assert!(within(
            synthetic.top_1pct_item_share,
            real.top_1pct_item_share,
            0.25
        ));
        // Deterministic for a spec.
        let again = scale_up(&base, &spec).expect("scales");
        assert_eq!(again.events()[..100], log.events()[..100]);
    }
}
