//! `aisle-bench import` measures bulk-import throughput, peak memory and the time to build the
//! training structures. Each measurement runs in a fresh child process (`aisle-bench
//! import-one`) so that its peak resident memory is its own.

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use aisle_features::{
    CleaningConfig, EventLog, InteractionMatrix, KindWeights, Sequences, SessionConfig, Sessions,
};
use aisle_import::{Adapter, ImportOptions, Source};
use anyhow::{Context, bail};
use serde::{Deserialize, Serialize};

#[derive(clap::Args, Debug)]
pub struct ImportArgs {
    /// Folder holding the shared datasets.
    #[arg(long, env = "AISLE_SHARED_DATA", default_value = "../shared/data")]
    shared: PathBuf,
    /// Report to write.
    #[arg(long, default_value = "bench/results/import.md")]
    out: PathBuf,
    /// Runs per dataset (the median is reported).
    #[arg(long, default_value_t = 3)]
    runs: usize,
}

#[derive(clap::Args, Debug)]
pub struct OneArgs {
    #[arg(long)]
    adapter: String,
    #[arg(long, required = true)]
    path: Vec<PathBuf>,
}

#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct Measurement {
    rows: u64,
    events: usize,
    import_seconds: f64,
    load_seconds: f64,
    csr_seconds: f64,
    sequences_seconds: f64,
    sessions_seconds: f64,
    peak_rss_mib: f64,
}

pub fn measure(args: &OneArgs) -> anyhow::Result<Measurement> {
    let adapter = Adapter::from_name(&args.adapter).context("unknown adapter")?;
    let dir = tempdir()?;
    let store = aisle_store::RedbStore::open(&dir)?;
    let started = Instant::now();
    let report = aisle_import::import(
        &store,
        &Source::Adapter(adapter),
        &args.path,
        &ImportOptions::default(),
    )?;
    let import_seconds = started.elapsed().as_secs_f64();

    let t = Instant::now();
    let mut log = EventLog::load(&store)?;
    log.clean(&CleaningConfig::default())?;
    let load_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let matrix = InteractionMatrix::build(&log, &KindWeights::default());
    let csr_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sequences = Sequences::build(&log, |_| true);
    let sequences_seconds = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let sessions = Sessions::build(&log, &SessionConfig::default());
    let sessions_seconds = t.elapsed().as_secs_f64();
    // Keep the structures alive until measured, so the peak includes them.
    std::hint::black_box((&matrix, &sequences, &sessions));
    drop(store);
    fs_err::remove_dir_all(&dir)?;
    Ok(Measurement {
        rows: report.rows_read,
        events: report.write.events_added,
        import_seconds,
        load_seconds,
        csr_seconds,
        sequences_seconds,
        sessions_seconds,
        peak_rss_mib: peak_rss_mib()?,
    })
}

fn tempdir() -> anyhow::Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("aisle-bench-{}", std::process::id()));
    if dir.exists() {
        fs_err::remove_dir_all(&dir)?;
    }
    Ok(dir)
}

/// Peak resident set size of this process (VmHWM), in MiB.
pub fn peak_rss_mib() -> anyhow::Result<f64> {
    proc_status_mib("self", "VmHWM")
}

/// A memory line (`field`, in kB) of `/proc/<process>/status`, in MiB (Linux only).
pub fn proc_status_mib(process: &str, field: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{process}/status");
    let status = fs_err::read_to_string(&path)?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} missing from {path}"))?;
    Ok(kib / 1024.0)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

pub fn import_report(args: ImportArgs) -> anyhow::Result<()> {
    let datasets: [(&str, &str, &[&str]); 4] = [
        (
            "yoochoose-100k (train_full)",
            "yoochoose",
            &["yoochoose-100k/yoochoose-clicks-100k_train_full.txt"],
        ),
        (
            "Amazon Beauty (S3-Rec)",
            "s3rec",
            &["amazon-seq-s3rec/Beauty.txt"],
        ),
        (
            "Amazon Sports (S3-Rec)",
            "s3rec",
            &["amazon-seq-s3rec/Sports_and_Outdoors.txt"],
        ),
        (
            "Instacart sample (bundled)",
            "instacart",
            &["../../data/instacart-sample"],
        ),
    ];
    let exe = std::env::current_exe()?;
    let mut rows = Vec::new();
    for (name, adapter, files) in datasets {
        let paths: Vec<PathBuf> = files
            .iter()
            .map(|f| {
                if f.starts_with("../../") {
                    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/")).join(f)
                } else {
                    args.shared.join(f)
                }
            })
            .collect();
        if let Some(missing) = paths.iter().find(|p| !p.exists()) {
            eprintln!("skipping {name}: {} not found", missing.display());
            continue;
        }
        let mut runs = Vec::new();
        for run in 0..args.runs {
            eprintln!("{name}: run {}/{}", run + 1, args.runs);
            let mut cmd = Command::new(&exe);
            cmd.args(["import-one", "--adapter", adapter]);
            for p in &paths {
                cmd.arg("--path").arg(p);
            }
            let out = cmd.output()?;
            if !out.status.success() {
                bail!("{name}: {}", String::from_utf8_lossy(&out.stderr));
            }
            runs.push(serde_json::from_slice::<Measurement>(&out.stdout)?);
        }
        rows.push((name, runs));
    }
    let mut md = String::from("# Bulk import and training structures\n\n");
    md.push_str(&format!(
        "Command: `cargo run --release -p aisle-bench -- import --runs {}` (from the repository root, with `../shared/data` beside it).\n\n",
        args.runs
    ));
    md.push_str(&format!(
        "Machine: {} cores; each figure is the median of {} runs, each in a fresh process with a fresh store; \
         peak memory is the largest VmHWM of those processes (import and structures together). \
         Import time includes parsing, interning, deduplication and the durable (fsynced) commit.\n\n",
        std::thread::available_parallelism().map_or(0, usize::from),
        args.runs
    ));
    md.push_str("| dataset | events | import (s) | events/s | peak RSS (MiB) | load+clean (ms) | CSR (ms) | sequences (ms) | sessions (ms) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for (name, runs) in &rows {
        let events = runs[0].events;
        let import = median(runs.iter().map(|r| r.import_seconds).collect());
        let ms = |f: fn(&Measurement) -> f64| median(runs.iter().map(f).collect()) * 1000.0;
        md.push_str(&format!(
            "| {name} | {} | {import:.3} | {} | {:.0} | {:.1} | {:.1} | {:.1} | {:.1} |\n",
            aisle_cli::output::thousands(events as u64),
            aisle_cli::output::thousands((events as f64 / import) as u64),
            runs.iter().map(|r| r.peak_rss_mib).fold(0.0, f64::max),
            ms(|r| r.load_seconds),
            ms(|r| r.csr_seconds),
            ms(|r| r.sequences_seconds),
            ms(|r| r.sessions_seconds),
        ));
    }
    md.push_str(
        "\nTargets (issue #2): at least 500,000 events/s bulk import; under 1 s to build the CSR for Beauty \
         (the \"load+clean\" column reads every event back from the store; \"CSR\" builds the matrix from it).\n",
    );
    aisle_core::fs::write_atomic(&args.out, md.as_bytes())?;
    print!("{md}");
    eprintln!("wrote {}", args.out.display());
    Ok(())
}
