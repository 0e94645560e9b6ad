//! `aisle-bench encryption`: what sealing the embedded store costs. The same work on a plain
//! and an encrypted store in the same run, alternating, on the same disk: durable commits of
//! small batches (the server's ingest pattern: one fsynced commit per request), then a full
//! scan of the bundled sample's 150,000 events.

use crate::serve::percentile;
use std::path::PathBuf;
use std::time::Instant;

use aisle_core::RawEvent;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_store::keys::MasterKey;
use aisle_store::{ReadStore, RedbStore, Store};

#[derive(clap::Args, Debug)]
pub struct EncryptionArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/encryption.md")]
    out: PathBuf,
    /// Durable commits per round and store.
    #[arg(long, default_value_t = 400)]
    commits: usize,
    /// Events per commit.
    #[arg(long, default_value_t = 20)]
    batch: usize,
    /// Rounds (plain and encrypted alternate).
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Where the stores are made (a disk like the one a deployment would use).
    #[arg(long, default_value = "target/bench-encryption")]
    work: PathBuf,
}

fn key() -> Option<MasterKey> {
    Some(MasterKey::Raw([0x42; 32]))
}

struct Ingest {
    events_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn ingest(
    dir: &std::path::Path,
    master: Option<MasterKey>,
    args: &EncryptionArgs,
    round: usize,
) -> anyhow::Result<Ingest> {
    let _ = std::fs::remove_dir_all(dir);
    let store = RedbStore::open_keyed(dir, master)?;
    let mut latencies = Vec::with_capacity(args.commits);
    let started = Instant::now();
    for c in 0..args.commits {
        let t = Instant::now();
        let mut w = store.writer()?;
        for i in 0..args.batch {
            let n = (c * args.batch + i) as i64;
            let e = RawEvent::new(
                format!("u{}", n % 997),
                Some(format!("i{}", n % 4999)),
                "view",
                1_700_000_000_000 + n + round as i64,
            );
            w.add_event(&e)?;
        }
        w.commit()?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let seconds = started.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    Ok(Ingest {
        events_per_second: (args.commits * args.batch) as f64 / seconds,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
    })
}

fn scan_seconds(dir: &std::path::Path, master: Option<MasterKey>) -> anyhow::Result<(f64, usize)> {
    // A fresh open each time, so redb's page cache starts empty and every page is read (and
    // for the encrypted store, authenticated and decrypted) from the file.
    let store = RedbStore::open_keyed(dir, master)?;
    let started = Instant::now();
    let mut n = 0usize;
    store.scan_events(&mut |_| n += 1)?;
    Ok((started.elapsed().as_secs_f64(), n))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

pub fn run(args: EncryptionArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work)?;
    let (plain_dir, sealed_dir) = (args.work.join("plain"), args.work.join("sealed"));
    let mut plain = Vec::new();
    let mut sealed = Vec::new();
    for round in 0..args.rounds {
        plain.push(ingest(&plain_dir, None, &args, round)?);
        sealed.push(ingest(&sealed_dir, key(), &args, round)?);
        eprintln!(
            "round {round}: plain {:.0} events/s (p99 {:.2} ms), encrypted {:.0} events/s (p99 {:.2} ms)",
            plain[round].events_per_second,
            plain[round].p99_ms,
            sealed[round].events_per_second,
            sealed[round].p99_ms
        );
    }
    let m = |v: &[Ingest], f: fn(&Ingest) -> f64| median(v.iter().map(f).collect());
    let (pt, st) = (
        m(&plain, |i| i.events_per_second),
        m(&sealed, |i| i.events_per_second),
    );
    let (p50p, p50s) = (m(&plain, |i| i.p50_ms), m(&sealed, |i| i.p50_ms));
    let (p99p, p99s) = (m(&plain, |i| i.p99_ms), m(&sealed, |i| i.p99_ms));

    // Full scan of the bundled sample in both.
    let sample = aisle_testkit_sample();
    for (dir, master) in [(&plain_dir, None), (&sealed_dir, key())] {
        let _ = std::fs::remove_dir_all(dir);
        let store = RedbStore::open_keyed(dir, master)?;
        aisle_import::import(
            &store,
            &Source::Adapter(Adapter::Instacart),
            std::slice::from_ref(&sample),
            &ImportOptions::default(),
        )?;
    }
    let (mut sp, mut ss) = (Vec::new(), Vec::new());
    let mut events = 0;
    for _ in 0..args.rounds {
        let (s, n) = scan_seconds(&plain_dir, None)?;
        sp.push(s);
        events = n;
        ss.push(scan_seconds(&sealed_dir, key())?.0);
    }
    let (scan_plain, scan_sealed) = (median(sp), median(ss));
    let size = |d: &std::path::Path| {
        std::fs::metadata(d.join("aisle.redb"))
            .map(|m| m.len())
            .unwrap_or(0)
    };
    let report = format!(
        "# Encryption at rest: what it costs\n\n\
         Made by `cargo run --release -p aisle-bench -- encryption` on this machine (2 cores), plain\n\
         and encrypted stores alternating in the same run on the same disk, medians of {rounds} rounds.\n\
         Ingest: {commits} durable commits of {batch} events each per round (one fsynced commit per\n\
         request, as the server's ingest). Scan: every event of the bundled Instacart sample\n\
         ({events} events) from a freshly opened store.\n\n\
         | | plain | encrypted | encrypted / plain | target |\n|---|---:|---:|---:|---|\n\
         | durable ingest, events/s | {pt:.0} | {st:.0} | {:.1}% | at least 90% |\n\
         | commit latency p50, ms | {p50p:.2} | {p50s:.2} | {:.1}% | |\n\
         | commit latency p99, ms | {p99p:.2} | {p99s:.2} | {:.1}% | at most 110% |\n\
         | full scan, s | {scan_plain:.3} | {scan_sealed:.3} | {:.1}% | at most 115% |\n\
         | store file of the sample, MB | {:.1} | {:.1} | {:.1}% | |\n",
        100.0 * st / pt,
        100.0 * p50s / p50p,
        100.0 * p99s / p99p,
        100.0 * scan_sealed / scan_plain,
        size(&plain_dir) as f64 / 1e6,
        size(&sealed_dir) as f64 / 1e6,
        100.0 * size(&sealed_dir) as f64 / size(&plain_dir).max(1) as f64,
        rounds = args.rounds,
        commits = args.commits,
        batch = args.batch,
    );
    print!("{report}");
    aisle_core::fs::write_atomic(&args.out, report.as_bytes())?;
    Ok(())
}

/// The bundled sample's folder (the repository's `data/instacart-sample`).
fn aisle_testkit_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/instacart-sample")
}
