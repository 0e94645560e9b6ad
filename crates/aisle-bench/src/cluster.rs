//! `aisle-bench cluster`: the system of record beside the embedded store, in the same run on
//! the same machine: durable commits of one event and of 1,000 events (a request, and
//! Gorse's published batch of 1,000 feedback inserts in 58.0 ms), and the bulk import of the
//! bundled sample. Each PostgreSQL figure is measured in a fresh database of the server that
//! `--database-url` names (`AISLE_TEST_POSTGRES` by default, as in the tests).
//!
//! CPU: this process's own CPU time is read from `/proc/self/stat`, the machine's from
//! `/proc/stat`; the rest of the machine's busy time during a PostgreSQL run is attributed
//! to the database server. That is an estimate (anything else running counts too), labelled
//! as one in the report.

use crate::serve::percentile;
use std::path::{Path, PathBuf};
use std::time::Instant;

use aisle_core::RawEvent;
use aisle_import::{Adapter, ImportOptions, Source};
use aisle_store::testing::FreshDatabase;
use aisle_store::{PgStore, RedbStore, Store};

#[derive(clap::Args, Debug)]
pub struct ClusterArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/cluster.md")]
    out: PathBuf,
    /// Durable commits of one event per store and round.
    #[arg(long, default_value_t = 500)]
    singles: usize,
    /// Durable commits of 1,000 events per store and round.
    #[arg(long, default_value_t = 40)]
    batches: usize,
    /// Rounds (the stores alternate).
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Where the embedded stores are made.
    #[arg(long, default_value = "target/bench-cluster")]
    work: PathBuf,
}

/// CPU seconds of this process and busy seconds of the whole machine, so far.
#[derive(Clone, Copy)]
struct Cpu {
    own: f64,
    machine: f64,
}

fn cpu_now() -> Cpu {
    let tick = 100.0; // USER_HZ on Linux
    let own = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            let rest = s.rsplit_once(')')?.1.to_string();
            let f: Vec<f64> = rest
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            // utime and stime are fields 14 and 15 of the line; 11 and 12 after the name.
            Some((f.get(11)? + f.get(12)?) / tick)
        })
        .unwrap_or(0.0);
    let machine = std::fs::read_to_string("/proc/stat")
        .ok()
        .and_then(|s| {
            let line = s.lines().next()?.to_string();
            let f: Vec<f64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            // user nice system idle iowait irq softirq steal: busy is all but idle and iowait.
            let total: f64 = f.iter().take(8).sum();
            Some((total - f.get(3)? - f.get(4)?) / tick)
        })
        .unwrap_or(0.0);
    Cpu { own, machine }
}

struct Run {
    events_per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// CPU ms per 1,000 events: this process, and the rest of the machine.
    own_cpu_ms: f64,
    other_cpu_ms: f64,
}

fn ingest(store: &dyn Store, commits: usize, batch: usize, round: usize) -> anyhow::Result<Run> {
    let mut latencies = Vec::with_capacity(commits);
    let (cpu0, started) = (cpu_now(), Instant::now());
    for c in 0..commits {
        let t = Instant::now();
        let mut w = store.writer()?;
        for i in 0..batch {
            let n = (c * batch + i) as i64;
            w.add_event(&RawEvent::new(
                format!("u{}", n % 997),
                Some(format!("i{}", n % 4_999)),
                "view",
                1_764_547_200_000 + n * 7 + round as i64,
            ))?;
        }
        w.commit()?;
        latencies.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let (seconds, cpu1) = (started.elapsed().as_secs_f64(), cpu_now());
    latencies.sort_by(f64::total_cmp);
    let thousands = (commits * batch) as f64 / 1_000.0;
    let own = cpu1.own - cpu0.own;
    Ok(Run {
        events_per_second: (commits * batch) as f64 / seconds,
        p50_ms: percentile(&latencies, 0.5),
        p99_ms: percentile(&latencies, 0.99),
        own_cpu_ms: own * 1e3 / thousands,
        other_cpu_ms: ((cpu1.machine - cpu0.machine) - own).max(0.0) * 1e3 / thousands,
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn embedded(dir: &Path) -> anyhow::Result<RedbStore> {
    let _ = std::fs::remove_dir_all(dir);
    Ok(RedbStore::open(dir)?)
}

pub fn run(args: ClusterArgs) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.work)?;
    let dir = args.work.join("embedded");
    let server = FreshDatabase::server();
    // (label, events per commit, commits)
    let shapes = [
        ("1 event", 1, args.singles),
        ("1,000 events", 1_000, args.batches),
    ];
    let mut rows = String::new();
    for (label, batch, commits) in shapes {
        let (mut e, mut p) = (Vec::new(), Vec::new());
        for round in 0..args.rounds {
            e.push(ingest(&embedded(&dir)?, commits, batch, round)?);
            let db = FreshDatabase::new();
            p.push(ingest(&PgStore::open(db.url())?, commits, batch, round)?);
            eprintln!(
                "{label}, round {round}: embedded {:.0} events/s (p99 {:.2} ms), PostgreSQL {:.0} events/s (p99 {:.2} ms)",
                e[round].events_per_second,
                e[round].p99_ms,
                p[round].events_per_second,
                p[round].p99_ms
            );
        }
        for (name, runs) in [("embedded (redb)", &e), ("PostgreSQL", &p)] {
            let m = |f: fn(&Run) -> f64| median(runs.iter().map(f).collect());
            rows.push_str(&format!(
                "| {label} | {name} | {:.0} | {:.2} | {:.2} | {:.1} | {:.1} |\n",
                m(|r| r.events_per_second),
                m(|r| r.p50_ms),
                m(|r| r.p99_ms),
                m(|r| r.own_cpu_ms),
                m(|r| r.other_cpu_ms),
            ));
        }
    }

    // Bulk import of the bundled sample (COPY on PostgreSQL).
    let sample = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/instacart-sample");
    let import = |store: &dyn Store| -> anyhow::Result<(f64, usize)> {
        let started = Instant::now();
        let report = aisle_import::import(
            store,
            &Source::Adapter(Adapter::Instacart),
            std::slice::from_ref(&sample),
            &ImportOptions::default(),
        )?;
        Ok((started.elapsed().as_secs_f64(), report.write.events_added))
    };
    let (mut ie, mut ip, mut events) = (Vec::new(), Vec::new(), 0);
    for _ in 0..args.rounds {
        let (s, n) = import(&embedded(&dir)?)?;
        ie.push(s);
        events = n;
        let db = FreshDatabase::new();
        ip.push(import(&PgStore::open(db.url())?)?.0);
    }
    let (ie, ip) = (median(ie), median(ip));
    let report = format!(
        "# The system of record: PostgreSQL beside the embedded store\n\n\
         Made by `cargo run --release -p aisle-bench -- cluster` on this machine (2 cores shared by\n\
         aisle and the PostgreSQL 15 server, both local; the server's settings are Debian's\n\
         defaults, `synchronous_commit` on), medians of {rounds} rounds, the two stores alternating.\n\
         Every commit is durable when it returns: redb with an fsync, PostgreSQL with its\n\
         `COMMIT`. Server: `{server}`.\n\n\
         ## Durable commits\n\n\
         One commit per request, as the server's ingest makes them ({singles} commits of one\n\
         event and {batches} of 1,000 per round and store). Gorse publishes 58.0 ms for a batch\n\
         of 1,000 feedback inserts. The CPU columns are CPU milliseconds per 1,000 events: this\n\
         process's (aisle and its client), and the rest of the machine's busy time during the\n\
         run, which for PostgreSQL is mostly its server process (an estimate from /proc/stat).\n\n\
         | batch | store | events/s | commit p50, ms | commit p99, ms | aisle CPU ms / 1,000 events | rest of machine, CPU ms / 1,000 events |\n\
         |---|---|---:|---:|---:|---:|---:|\n{rows}\n\
         ## Bulk import of the bundled sample\n\n\
         {events} events (the Instacart sample; PostgreSQL through `COPY` into a temporary table,\n\
         then one `INSERT … ON CONFLICT DO NOTHING`).\n\n\
         | store | seconds | events/s |\n|---|---:|---:|\n\
         | embedded (redb) | {ie:.2} | {:.0} |\n\
         | PostgreSQL | {ip:.2} | {:.0} |\n\n\
         One replica only: more replicas, the stream and the elected trainer are not built yet\n\
         (issue 18).\n",
        events as f64 / ie,
        events as f64 / ip,
        rounds = args.rounds,
        singles = args.singles,
        batches = args.batches,
        server = redact(&server),
    );
    print!("{report}");
    aisle_core::fs::write_atomic(&args.out, report.as_bytes())?;
    Ok(())
}

/// The server URL without its password.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let creds = &url[scheme + 3..at];
            let user = creds.split(':').next().unwrap_or("");
            format!("{}{user}@{}", &url[..scheme + 3], &url[at + 1..])
        }
        _ => url.to_string(),
    }
}
