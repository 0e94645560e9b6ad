//! `aisle-bench encryption`: what sealing the embedded store costs. The same work on a plain
//! and an encrypted store in the same run, alternating, on the same disk: durable commits of
//! small batches (the server's ingest pattern: one fsynced commit per request), then a full
//! scan of the bundled sample's events; then ingest through two servers (plain, encrypted)
//! over those stores, as `aisle-bench serve` measures it: what a shop sees.

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
    #[arg(long, default_value_t = 9)]
    rounds: usize,
    /// Where the stores are made (a disk like the one a deployment would use).
    #[arg(long, default_value = "target/bench-encryption")]
    work: PathBuf,
    /// Seconds per step of the served ingest.
    #[arg(long, default_value_t = 3.0)]
    served_seconds: f64,
    /// The request rate at which the served ingest's latency is compared (below both
    /// servers' saturation).
    #[arg(long, default_value_t = 2000.0)]
    served_rate: f64,
    /// Client threads of the served ingest.
    #[arg(long, default_value_t = 32)]
    clients: usize,
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
         request, as the server's ingest); the events come from 997 users, whom the first\n\
         commits create, and in the encrypted store such a commit first syncs the per-user\n\
         key file (`user-keys.bin`) too. Scan: every event of the bundled Instacart sample\n\
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
    let served = served_ingest(&args, &plain_dir, &sealed_dir)?;
    let report = format!("{report}\n{served}");
    print!("{report}");
    aisle_core::fs::write_atomic(&args.out, report.as_bytes())?;
    Ok(())
}

/// Starts a server over the store in `dir` (the sample imported there), serving popularity
/// deterministically so that the start is quick and ingest is all that is measured.
fn start_server(dir: &std::path::Path, master: Option<MasterKey>) -> anyhow::Result<String> {
    use aisle_server::auth::{ApiKey, Role};
    let store: std::sync::Arc<dyn Store> = std::sync::Arc::new(RedbStore::open_keyed(dir, master)?);
    let config = aisle_server::ServerConfig {
        model: "pop".into(),
        keys: vec![ApiKey {
            key: crate::serve::KEY.into(),
            role: Role::Admin,
        }],
        rate_limit_per_second: 1e9,
        exploration: "deterministic".into(),
        ..aisle_server::ServerConfig::default()
    };
    // The writer thread runs on when its handle is dropped; the server lives until the
    // process ends.
    let (app, _) = aisle_server::App::start(config, dir.to_path_buf(), store, None)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    aisle_server::serve_in_background(app, std::net::TcpListener::bind("127.0.0.1:0")?, 2)
        .map_err(Into::into)
}

/// A single-event ingest request against `base`, each with an event of its own.
fn ingest_request(
    base: &str,
    next: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> crate::serve::Request {
    let (base, next) = (base.to_string(), next.clone());
    let auth = format!("Bearer {}", crate::serve::KEY);
    std::sync::Arc::new(move |agent, _| {
        let n = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let body = serde_json::json!({
            "user": format!("u{}", n % 997), "kind": "view",
            "item": format!("i{}", n % 4999),
            "timestamp": 1_700_000_000_000i64 + n as i64,
        });
        crate::serve::post_event(agent, &base, &auth, &body)
    })
}

/// Open-loop ingest against `base` at `rate` per second (latency from the schedule).
fn served_step(
    base: &str,
    rate: f64,
    args: &EncryptionArgs,
    next: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> crate::serve::Step {
    let request = ingest_request(base, next);
    crate::serve::run_step("ingest", rate, args.served_seconds, args.clients, request)
}

/// Closed-loop ingest against `base`: every client sends its next request as soon as the
/// last is answered, for the step's seconds. Returns the answered requests per second and
/// the number that failed.
fn served_throughput(
    base: &str,
    args: &EncryptionArgs,
    next: &std::sync::Arc<std::sync::atomic::AtomicU64>,
) -> (f64, usize) {
    let request = ingest_request(base, next);
    let deadline = Instant::now() + std::time::Duration::from_secs_f64(args.served_seconds);
    let started = Instant::now();
    let counts: Vec<(usize, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..args.clients)
            .map(|_| {
                let request = request.clone();
                scope.spawn(move || {
                    let agent: ureq::Agent = ureq::Agent::config_builder()
                        .http_status_as_error(false)
                        .timeout_global(Some(std::time::Duration::from_secs(10)))
                        .build()
                        .into();
                    let (mut ok, mut failed) = (0, 0);
                    while Instant::now() < deadline {
                        if request(&agent, 0) {
                            ok += 1;
                        } else {
                            failed += 1;
                        }
                    }
                    (ok, failed)
                })
            })
            .collect();
        workers
            .into_iter()
            .map(|w| w.join().unwrap_or((0, 1)))
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let ok: usize = counts.iter().map(|c| c.0).sum();
    (ok as f64 / seconds, counts.iter().map(|c| c.1).sum())
}

/// Durable single-event ingest through a plain and an encrypted server, alternating: the
/// throughput each achieves when offered more than it can take, and the latency of each at a
/// rate both hold. A markdown section of the report.
fn served_ingest(
    args: &EncryptionArgs,
    plain_dir: &std::path::Path,
    sealed_dir: &std::path::Path,
) -> anyhow::Result<String> {
    eprintln!("starting a plain and an encrypted server");
    let plain = start_server(plain_dir, None)?;
    let sealed = start_server(sealed_dir, key())?;
    std::thread::sleep(std::time::Duration::from_millis(200));
    let next = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let (mut tp, mut ts, mut lp, mut ls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for round in 0..args.rounds {
        let (a, b) = (
            served_throughput(&plain, args, &next),
            served_throughput(&sealed, args, &next),
        );
        let (c, d) = (
            served_step(&plain, args.served_rate, args, &next),
            served_step(&sealed, args.served_rate, args, &next),
        );
        anyhow::ensure!(
            a.1 + b.1 + c.errors + d.errors == 0,
            "served ingest requests failed: {} and {} at full speed, {} and {} at {:.0}/s",
            a.1,
            b.1,
            c.errors,
            d.errors,
            args.served_rate
        );
        eprintln!(
            "served round {round}: plain {:.0}/s, encrypted {:.0}/s; at {:.0}/s p99 {:.2} ms against {:.2} ms",
            a.0, b.0, args.served_rate, c.p99_ms, d.p99_ms
        );
        tp.push(a.0);
        ts.push(b.0);
        lp.push((c.p50_ms, c.p99_ms));
        ls.push((d.p50_ms, d.p99_ms));
    }
    let rounds = |v: &[f64], digits: usize| {
        v.iter()
            .map(|x| format!("{x:.digits$}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let per_round = format!(
        "Each round (plain; encrypted): throughput {}; {}. p99 at {:.0}/s, ms: {}; {}.\n",
        rounds(&tp, 0),
        rounds(&ts, 0),
        args.served_rate,
        rounds(&lp.iter().map(|l| l.1).collect::<Vec<_>>(), 2),
        rounds(&ls.iter().map(|l| l.1).collect::<Vec<_>>(), 2),
    );
    let (tp, ts) = (median(tp), median(ts));
    let (p50p, p50s) = (
        median(lp.iter().map(|l| l.0).collect()),
        median(ls.iter().map(|l| l.0).collect()),
    );
    let (p99p, p99s) = (
        median(lp.iter().map(|l| l.1).collect()),
        median(ls.iter().map(|l| l.1).collect()),
    );
    Ok(format!(
        "## Through the server\n\n\
         `POST /v1/events`, one event per request, answered once its commit is durable (the\n\
         server's group commit), from {clients} client threads over loopback, on two servers in\n\
         this process over the two stores above, alternating, {seconds:.0} s per step, medians of\n\
         {rounds} rounds. Throughput: closed loop, each client sending its next request when the\n\
         last is answered. Latency: open loop at {rate:.0} requests/s, which both hold, measured\n\
         from each request's scheduled time.\n\n\
         | | plain | encrypted | encrypted / plain | target |\n|---|---:|---:|---:|---|\n\
         | durable ingest, events/s | {tp:.0} | {ts:.0} | {:.1}% | at least 90% |\n\
         | latency p50 at {rate:.0}/s, ms | {p50p:.2} | {p50s:.2} | {:.1}% | |\n\
         | latency p99 at {rate:.0}/s, ms | {p99p:.2} | {p99s:.2} | {:.1}% | at most 110% |\n\n\
         {per_round}",
        100.0 * ts / tp,
        100.0 * p50s / p50p,
        100.0 * p99s / p99p,
        clients = args.clients,
        seconds = args.served_seconds,
        rounds = args.rounds,
        rate = args.served_rate,
    ))
}

/// The bundled sample's folder (the repository's `data/instacart-sample`).
fn aisle_testkit_sample() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../data/instacart-sample")
}
