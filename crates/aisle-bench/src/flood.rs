//! `aisle-bench flood`: what a flood of distinct client input does to the server's memory.
//!
//! `aisle serve` runs as a child process on a copy of the bundled sample, with small caps on
//! the maps that client input grows (live sessions, tracked queries). The bench sends events
//! that each carry a new session id, then searches that are each a new query, and reads the
//! child's resident memory (VmRSS) as it goes. The report states the bound the caps imply:
//! the memory after start-up, plus the event log's own growth (the events are data the shop
//! sent and the store keeps, and its page cache holds at most the file's growth), plus the
//! caps times the largest size of one entry.

use std::fmt::Write as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::bail;

#[derive(clap::Args, Debug)]
pub struct FloodArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/flood.md")]
    out: PathBuf,
    /// Distinct session ids sent (one event each).
    #[arg(long, default_value_t = 1_000_000)]
    sessions: usize,
    /// Distinct queries searched.
    #[arg(long, default_value_t = 1_000_000)]
    queries: usize,
    /// The server's `max_live_sessions`.
    #[arg(long, default_value_t = 10_000)]
    max_live_sessions: usize,
    /// The server's `max_tracked_queries`.
    #[arg(long, default_value_t = 10_000)]
    max_tracked_queries: usize,
    /// Client threads for the searches.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
}

const KEY: &str = "flood-admin-key";
/// Events per ingest request.
const BATCH: usize = 5_000;
/// Largest bytes of one live-session entry: the key, the LRU node and its hash slot, and
/// `max_session_events` positions (one here: each session has one event) in a `VecDeque`.
const SESSION_ENTRY_BYTES: usize = 8 + 64 + 32 + 4 * 4;
/// Largest bytes of one tracked query: the node and slot, the statistics, the text (the
/// flood's queries are under 16 bytes; the server allows 1,000).
const QUERY_ENTRY_BYTES: usize = 64 + 32 + 16 + 24 + 16;
/// Bytes one stored event adds to the live log: the interaction (32), its position in the
/// user's list (4), with `Vec` doubling allowing twice that.
const EVENT_BYTES: usize = 2 * (32 + 4);

struct Server {
    child: Child,
    base: String,
    store_file: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// An HTTP client that reports statuses instead of failing on them.
pub(crate) fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

/// The product binary `aisle`, built beside this one (the flood measures its memory).
pub(crate) fn product_binary() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe()?;
    let aisle = exe.with_file_name(format!("aisle{}", std::env::consts::EXE_SUFFIX));
    if !aisle.is_file() {
        bail!(
            "{} is missing: build the product binary first (cargo build --release -p aisle-cli)",
            aisle.display()
        );
    }
    Ok(aisle)
}

fn start(args: &FloodArgs) -> anyhow::Result<Server> {
    let exe = product_binary()?;
    let dir = tempfile::tempdir()?;
    let data = dir.path().join("store");
    let status = Command::new(&exe)
        .args(["import", "--format", "instacart", "--data-dir"])
        .arg(&data)
        .arg(&args.sample)
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("importing {} failed", args.sample.display());
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let child = Command::new(&exe)
        .args(["serve", "--data-dir"])
        .arg(&data)
        .args(["--listen", &format!("127.0.0.1:{port}")])
        .env("AISLE_API_KEYS", format!("{KEY}:admin"))
        .env("AISLE_RATE_LIMIT", "1000000000")
        .env(
            "AISLE_MAX_LIVE_SESSIONS",
            args.max_live_sessions.to_string(),
        )
        .env(
            "AISLE_MAX_TRACKED_QUERIES",
            args.max_tracked_queries.to_string(),
        )
        .env("AISLE_MAX_SESSION_EVENTS", "4")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let server = Server {
        child,
        base: format!("http://127.0.0.1:{port}"),
        store_file: data.join("aisle.redb"),
        _dir: dir,
    };
    let agent = agent();
    for _ in 0..600 {
        if agent
            .get(format!("{}/ready", server.base))
            .call()
            .is_ok_and(|r| r.status() == 200)
        {
            return Ok(server);
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    bail!("the server did not become ready in 5 minutes")
}

struct Checkpoint {
    phase: &'static str,
    sent: usize,
    rss_mib: f64,
    store_mib: f64,
    live_sessions: u64,
    tracked_queries: u64,
}

fn checkpoint(server: &Server, phase: &'static str, sent: usize) -> anyhow::Result<Checkpoint> {
    let mut r = agent()
        .get(format!("{}/v1/dashboard", server.base))
        .header("Authorization", format!("Bearer {KEY}"))
        .call()?;
    let body: serde_json::Value = serde_json::from_str(&r.body_mut().read_to_string()?)?;
    Ok(Checkpoint {
        phase,
        sent,
        rss_mib: crate::import::proc_status_mib(&server.child.id().to_string(), "VmRSS")?,
        store_mib: std::fs::metadata(&server.store_file)
            .map_or(0.0, |m| m.len() as f64 / (1024.0 * 1024.0)),
        live_sessions: body["memory"]["live_sessions"].as_u64().unwrap_or(0),
        tracked_queries: body["memory"]["tracked_queries"].as_u64().unwrap_or(0),
    })
}

pub fn run(args: FloodArgs) -> anyhow::Result<()> {
    eprintln!("starting aisle serve on the sample (it trains first)");
    let server = start(&args)?;
    let mut points = vec![checkpoint(&server, "start", 0)?];
    let every = (args.sessions / 10).max(1);
    let agent = agent();
    let started = Instant::now();
    let mut sent = 0;
    let mut failed = 0;
    while sent < args.sessions {
        let n = BATCH.min(args.sessions - sent);
        let batch: Vec<serde_json::Value> = (sent..sent + n)
            .map(|i| serde_json::json!({"user": format!("flood-{}", i % 1000), "kind": "view", "item": "196", "session": format!("flood-session-{i}")}))
            .collect();
        let r = agent
            .post(format!("{}/v1/events", server.base))
            .header("Authorization", format!("Bearer {KEY}"))
            .header("Content-Type", "application/json")
            .send(serde_json::to_string(&batch)?)?;
        failed += usize::from(r.status() != 200);
        let before = sent;
        sent += n;
        if before / every != sent / every {
            points.push(checkpoint(&server, "sessions", sent)?);
        }
    }
    let session_seconds = started.elapsed().as_secs_f64();
    let started = Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let total = args.queries;
    let every = (total / 10).max(1);
    let mut done = 0;
    while done < total {
        let upto = (done + every).min(total);
        let threads: Vec<_> = (0..args.clients)
            .map(|_| {
                let (next, errors, base) = (next.clone(), errors.clone(), server.base.clone());
                std::thread::spawn(move || {
                    let agent = self::agent();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= upto {
                            break;
                        }
                        let ok = agent
                            .get(format!("{base}/v1/search?q=zq{i}x&limit=1"))
                            .header("Authorization", format!("Bearer {KEY}"))
                            .call()
                            .is_ok_and(|r| r.status() == 200);
                        if !ok {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for t in threads {
            let _ = t.join();
        }
        next.store(upto, Ordering::Relaxed);
        done = upto;
        eprintln!("{done} queries");
        points.push(checkpoint(&server, "queries", done)?);
    }
    let query_seconds = started.elapsed().as_secs_f64();
    let errors = errors.load(Ordering::Relaxed);
    let alive = agent
        .get(format!("{}/health", server.base))
        .call()
        .is_ok_and(|r| r.status() == 200);

    let start_rss = points[0].rss_mib;
    let mib = |bytes: usize| bytes as f64 / (1024.0 * 1024.0);
    let store_size = points.iter().map(|p| p.store_mib).fold(0.0, f64::max);
    let bound = start_rss
        + store_size
        + mib(args.sessions * EVENT_BYTES)
        + mib(args.max_live_sessions * SESSION_ENTRY_BYTES)
        + mib(args.max_tracked_queries * QUERY_ENTRY_BYTES);
    let peak = points.iter().map(|p| p.rss_mib).fold(0.0, f64::max);
    let mut md = String::new();
    writeln!(
        md,
        "# Flood: distinct sessions and queries against capped maps\n"
    )?;
    writeln!(
        md,
        "Made by `aisle-bench flood --sessions {} --queries {} --max-live-sessions {} --max-tracked-queries {}` \
         ({} build, {}). `aisle serve` ran as a child process on the bundled Instacart sample; its resident memory (VmRSS) was read \
         from /proc at each checkpoint.\n",
        args.sessions,
        args.queries,
        args.max_live_sessions,
        args.max_tracked_queries,
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        },
        chrono::Utc::now().format("%Y-%m-%d")
    )?;
    writeln!(
        md,
        "| phase | sent | RSS (MiB) | store file (MiB) | live sessions | tracked queries |"
    )?;
    writeln!(md, "|---|---:|---:|---:|---:|---:|")?;
    for p in &points {
        writeln!(
            md,
            "| {} | {} | {:.1} | {:.1} | {} | {} |",
            p.phase, p.sent, p.rss_mib, p.store_mib, p.live_sessions, p.tracked_queries
        )?;
    }
    writeln!(
        md,
        "\n- {} events, each with a new session id, in {:.1} s ({} failed requests); {} searches, each a new query, in {:.1} s ({} failed).",
        args.sessions, session_seconds, failed, args.queries, query_seconds, errors
    )?;
    writeln!(
        md,
        "- The bound the config implies: start-up RSS {start_rss:.1} MiB + the store file ({store_size:.1} MiB at most: \
         the store's page cache holds at most the file, and every search is logged as an event) + the stored events' own \
         live-log growth ({} × {EVENT_BYTES} B) + {} sessions × {SESSION_ENTRY_BYTES} B + {} queries × {QUERY_ENTRY_BYTES} B = **{bound:.1} MiB**. \
         Peak measured: **{peak:.1} MiB** ({}).",
        args.sessions,
        args.max_live_sessions,
        args.max_tracked_queries,
        if peak <= bound {
            "under the bound"
        } else {
            "OVER the bound"
        }
    )?;
    writeln!(
        md,
        "- The server still answered /health after the flood: {}.",
        if alive { "yes" } else { "no" }
    )?;
    writeln!(
        md,
        "- The events themselves are data the shop sent: the store keeps them and the live log indexes them, so they \
         grow memory by design (issue 14 redesigns the live view). The maps keyed by client input do not: the session \
         and query counts above stay at their caps."
    )?;
    if let Some(parent) = args.out.parent() {
        fs_err::create_dir_all(parent)?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    if peak > bound || !alive {
        bail!(
            "the flood broke the memory bound or the server; see {}",
            args.out.display()
        );
    }
    Ok(())
}
