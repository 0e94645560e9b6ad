//! `aisle-bench serve`: a load test of the HTTP server on loopback, at increasing request
//! rates, for recommend, search and ingest. The server runs in this process on the bundled
//! sample (in a temporary data directory); the load generator is open-loop: requests are
//! scheduled at the target rate and each latency is measured from its scheduled time, so a
//! server that falls behind is charged for the queue it causes (no coordinated omission).

use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisle_import::{Adapter, ImportOptions, Source};
use aisle_search::{EngineConfig, SearchEngine, TextIndex, load_catalogue};
use aisle_server::auth::{ApiKey, Role};
use aisle_server::{App, ServerConfig};
use anyhow::Context;

#[derive(clap::Args, Debug)]
pub struct ServeBenchArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/serve.md")]
    out: PathBuf,
    /// Seconds at each rate.
    #[arg(long, default_value_t = 5.0)]
    seconds: f64,
    /// Request rates (per second) for recommend.
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,3000,4000")]
    recommend_rates: Vec<f64>,
    /// Request rates for search.
    #[arg(long, value_delimiter = ',', default_value = "250,500,1000,2000")]
    search_rates: Vec<f64>,
    /// Request rates for ingest (one event per request).
    #[arg(long, value_delimiter = ',', default_value = "500,1000,2000,4000")]
    ingest_rates: Vec<f64>,
    /// Client threads.
    #[arg(long, default_value_t = 32)]
    clients: usize,
    /// The recommender served.
    #[arg(long, default_value = "sknn")]
    model: String,
    /// A data directory that already holds a store (from `aisle import`), served instead of
    /// the Instacart sample: the live state at scale (`aisle-bench synth` writes a 10-million-
    /// event log to import). Search is not measured there (its items have no text), and the
    /// report gives the server's memory per event.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
    /// The serving policy (the server's `exploration` setting), to measure what exploring
    /// and logging impressions cost against `deterministic`.
    #[arg(long, default_value = "epsilon-greedy:0.05")]
    exploration: String,
}

pub(crate) const KEY: &str = "bench-admin-key";

/// Sends request number `n` with `agent`; true when it succeeded.
pub(crate) type Request = Arc<dyn Fn(&ureq::Agent, usize) -> bool + Send + Sync>;

pub(crate) struct Step {
    endpoint: &'static str,
    target: f64,
    pub sent: usize,
    pub errors: usize,
    pub seconds: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    max_ms: f64,
}

/// The `q` quantile of ascending `sorted` (nearest rank); NaN when empty.
pub(crate) fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}

/// Sends `rate` requests per second for `seconds`, from `clients` threads.
pub(crate) fn run_step(
    endpoint: &'static str,
    rate: f64,
    seconds: f64,
    clients: usize,
    request: Request,
) -> Step {
    let total = (rate * seconds).round() as usize;
    let start = Instant::now() + Duration::from_millis(50);
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(total)));
    let errors = Arc::new(Mutex::new(0usize));
    let threads: Vec<_> = (0..clients)
        .map(|c| {
            let latencies = latencies.clone();
            let errors = errors.clone();
            let request = request.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .timeout_global(Some(Duration::from_secs(10)))
                    .build()
                    .into();
                let mut mine = Vec::new();
                let mut failed = 0;
                let mut slot = c;
                while slot < total {
                    let due = start + Duration::from_secs_f64(slot as f64 / rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                    if !request(&agent, slot) {
                        failed += 1;
                    }
                    mine.push(due.elapsed().as_secs_f64() * 1e3);
                    slot += clients;
                }
                latencies.lock().expect("lock").extend(mine);
                *errors.lock().expect("lock") += failed;
            })
        })
        .collect();
    for t in threads {
        let _ = t.join();
    }
    let elapsed = start.elapsed().as_secs_f64();
    let mut all = latencies.lock().expect("lock").clone();
    all.sort_by(f64::total_cmp);
    let errors = *errors.lock().expect("lock");
    Step {
        endpoint,
        target: rate,
        sent: all.len(),
        errors,
        seconds: elapsed,
        p50_ms: percentile(&all, 0.5),
        p99_ms: percentile(&all, 0.99),
        max_ms: all.last().copied().unwrap_or(f64::NAN),
    }
}

/// Posts one event (`body`) to the server at `base`; true when it was stored.
pub(crate) fn post_event(
    agent: &ureq::Agent,
    base: &str,
    auth: &str,
    body: &serde_json::Value,
) -> bool {
    agent
        .post(&format!("{base}/v1/events"))
        .header("Authorization", auth)
        .header("Content-Type", "application/json")
        .send(&body.to_string())
        .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
}

/// Resident memory of this process now, in MiB (Linux).
fn rss_mib() -> anyhow::Result<f64> {
    let status = fs_err::read_to_string("/proc/self/status")?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("no VmRSS in /proc/self/status")?;
    Ok(kib / 1024.0)
}

pub fn run(mut args: ServeBenchArgs) -> anyhow::Result<()> {
    let temporary = tempfile::tempdir()?;
    let dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| temporary.path().to_path_buf());
    let store: Arc<dyn aisle_store::Store> = Arc::from(aisle_store::open(&dir.to_string_lossy())?);
    let mut search = None;
    if args.data_dir.is_none() {
        aisle_import::import(
            store.as_ref(),
            &Source::Adapter(Adapter::Instacart),
            std::slice::from_ref(&args.sample),
            &ImportOptions::default(),
        )
        .context("while importing the bundled sample")?;
        let text = TextIndex::open_or_create(&dir.join("search"))?;
        let mut engine = SearchEngine::new(text, EngineConfig::default());
        engine.sync_catalogue(load_catalogue(store.as_ref())?, &|_| {})?;
        search = Some(engine);
    } else {
        args.search_rates.clear();
    }
    let mut users = Vec::new();
    store.scan_users(&mut |_, u| users.push(u.external_id))?;
    let mut items = Vec::new();
    store.scan_items(&mut |_, i| items.push(i.external_id))?;
    let counts = store.counts()?;
    let rss_before = rss_mib()?;
    let config = ServerConfig {
        model: args.model.clone(),
        keys: vec![ApiKey {
            key: KEY.into(),
            role: Role::Admin,
        }],
        rate_limit_per_second: 1e9,
        exploration: args.exploration.clone(),
        ..ServerConfig::default()
    };
    eprintln!("training {} and the prediction models", args.model);
    let started = Instant::now();
    let (app, _writer) =
        App::start(config, dir.clone(), store, search).map_err(|e| anyhow::anyhow!("{e}"))?;
    let start_seconds = started.elapsed().as_secs_f64();
    let rss_started = rss_mib()?;
    let live = app.engine.live_memory();
    let ready = app.engine.ready();
    // Two runtime workers: the machine has two cores, shared with the load generator.
    let base =
        aisle_server::serve_in_background(app, std::net::TcpListener::bind("127.0.0.1:0")?, 2)?;
    std::thread::sleep(Duration::from_millis(200));

    let users = Arc::new(users);
    let queries: Arc<Vec<&'static str>> = Arc::new(vec![
        "banana",
        "organic milk",
        "chocolate",
        "yogurt",
        "sparkling water",
        "bread",
        "chicken breast",
        "coffee",
        "eggs",
        "pasta sauce",
        "cheddar",
        "apples",
    ]);
    let items = Arc::new(items);
    let mut steps = Vec::new();
    let auth = format!("Bearer {KEY}");
    for &rate in &args.recommend_rates {
        let (base, users, auth) = (base.clone(), users.clone(), auth.clone());
        let request: Request = Arc::new(move |agent, n| {
            let user = &users[n % users.len()];
            agent
                .get(&format!("{base}/v1/recommend?user={user}&k=10"))
                .header("Authorization", &auth)
                .call()
                .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
        });
        let step = run_step("recommend", rate, args.seconds, args.clients, request);
        eprintln!("recommend at {rate}/s: p99 {:.2} ms", step.p99_ms);
        steps.push(step);
    }
    for &rate in &args.search_rates {
        let (base, users, queries, auth) =
            (base.clone(), users.clone(), queries.clone(), auth.clone());
        let request: Request = Arc::new(move |agent, n| {
            let user = &users[n % users.len()];
            let q = queries[n % queries.len()].replace(' ', "%20");
            agent
                .get(&format!("{base}/v1/search?q={q}&user={user}&limit=10"))
                .header("Authorization", &auth)
                .call()
                .is_ok_and(|mut r| r.status() == 200 && r.body_mut().read_to_vec().is_ok())
        });
        let step = run_step(
            "search (lexical, personalised)",
            rate,
            args.seconds,
            args.clients,
            request,
        );
        eprintln!("search at {rate}/s: p99 {:.2} ms", step.p99_ms);
        steps.push(step);
    }
    for &rate in &args.ingest_rates {
        let (base, users, items, auth) = (base.clone(), users.clone(), items.clone(), auth.clone());
        let request: Request = Arc::new(move |agent, n| {
            let body = serde_json::json!({
                "user": users[n % users.len()], "kind": "view",
                "item": items[(n * 7919) % items.len()],
                "timestamp": 1_700_000_000_000i64 + (rate as i64) * 1_000_000 + n as i64,
            });
            post_event(agent, &base, &auth, &body)
        });
        let step = run_step(
            "ingest (1 event, durable)",
            rate,
            args.seconds,
            args.clients,
            request,
        );
        eprintln!("ingest at {rate}/s: p99 {:.2} ms", step.p99_ms);
        steps.push(step);
    }

    let mut md = String::new();
    writeln!(md, "# aisle serve under load (loopback)")?;
    writeln!(md)?;
    writeln!(
        md,
        "Command: `cargo run --release -p aisle-bench -- serve`. The server runs in the same process as the load generator, on this"
    )?;
    match &args.data_dir {
        None => writeln!(
            md,
            "2-core machine (both share the cores), over the bundled Instacart sample (49,688 items, 593 users, 300,000 events),"
        )?,
        Some(d) => writeln!(
            md,
            "2-core machine (both share the cores), over the store in {} ({} events, {} users, {} items; `--data-dir`),",
            d.display(),
            aisle_cli::output::thousands(counts.events as u64),
            aisle_cli::output::thousands(counts.users as u64),
            aisle_cli::output::thousands(counts.items as u64)
        )?,
    }
    writeln!(
        md,
        "serving `{}` with exploration `{}` (every list logged as an",
        args.model, args.exploration
    )?;
    writeln!(
        md,
        "impression). Open-loop load from {} client threads with",
        args.clients
    )?;
    writeln!(
        md,
        "keep-alive; each latency is measured from the request's scheduled time, so queueing counts. {:.0} s per rate.",
        args.seconds
    )?;
    writeln!(
        md,
        "Recommend returns 10 items with their reasons (\"because you chose X\"); search is lexical with personalised"
    )?;
    writeln!(
        md,
        "re-ranking features and facets; ingest answers only after the event's commit is durable (group commit)."
    )?;
    writeln!(md)?;
    let per_event = |bytes: usize| bytes as f64 / live.events.max(1) as f64;
    writeln!(
        md,
        "Start (loading the live state, training `{}` and the prediction models): {start_seconds:.1} s. Resident memory: {rss_before:.0} MiB with the store open, {rss_started:.0} MiB once started ({:.0} bytes per event, models and the trained log included). The live state alone ({} events, {} users, {} items; bytes by capacity): {:.1} bytes per event in all, of which events {:.1}, positions by user {:.1}, users by item {:.1}, catalogue {:.1}, session and query caches {:.1}.",
        args.model,
        (rss_started - rss_before) * 1048576.0 / live.events.max(1) as f64,
        aisle_cli::output::thousands(live.events as u64),
        aisle_cli::output::thousands(live.users as u64),
        aisle_cli::output::thousands(live.items as u64),
        per_event(live.total_bytes()),
        per_event(live.event_bytes),
        per_event(live.by_user_bytes),
        per_event(live.item_users_bytes),
        per_event(live.catalogue_bytes),
        per_event(live.cache_bytes)
    )?;
    writeln!(md)?;
    match &ready.index {
        Some(index) => writeln!(
            md,
            "Top-N requests search the approximate index over `{}`'s item factors: {} items in {} lists, {} lists scanned per request besides a head of the {} longest items scored exactly (both calibrated at start to recall@10 {} against the exact scan).",
            args.model,
            aisle_cli::output::thousands(index.items_indexed as u64),
            index.lists,
            index.probes,
            aisle_cli::output::thousands(index.head_items as u64),
            aisle_models::ann::CALIBRATED_RECALL
        )?,
        None => writeln!(
            md,
            "Top-N requests scan every item (no approximate index at this catalogue size or for this model)."
        )?,
    }
    writeln!(md)?;
    writeln!(
        md,
        "| endpoint | target /s | achieved /s | requests | errors | p50 ms | p99 ms | max ms |"
    )?;
    writeln!(
        md,
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for s in &steps {
        writeln!(
            md,
            "| {} | {:.0} | {:.0} | {} | {} | {:.2} | {:.2} | {:.1} |",
            s.endpoint,
            s.target,
            s.sent as f64 / s.seconds,
            s.sent,
            s.errors,
            s.p50_ms,
            s.p99_ms,
            s.max_ms
        )?;
    }
    // A rate is held when the server kept up with it (within 2%: the schedule's own
    // rounding), answered every request and kept p99 under 20 ms.
    let best = steps
        .iter()
        .filter(|s| {
            s.endpoint == "recommend"
                && s.errors == 0
                && s.p99_ms < 20.0
                && s.sent as f64 / s.seconds >= 0.98 * s.target
        })
        .map(|s| s.target)
        .fold(0.0, f64::max);
    writeln!(md)?;
    writeln!(
        md,
        "Highest recommend rate held (kept up, no errors, p99 under 20 ms): {best:.0} requests/s; the target is 2,000."
    )?;
    if let Some(dir) = args.out.parent() {
        fs_err::create_dir_all(dir)?;
    }
    fs_err::write(&args.out, &md)?;
    print!("{md}");
    Ok(())
}
