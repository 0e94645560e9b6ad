//! `aisle-bench replicas`: three `aisle serve` processes on 127.0.0.2, .3 and .4 over one
//! PostgreSQL database and one NATS JetStream stream, under a steady ingest load, through
//! three failures in turn: one replica killed with SIGKILL and restarted, PostgreSQL
//! restarted, NATS restarted. Then the load stops and every replica must hold what the
//! database holds. It reports what was acknowledged and lost, what the clients saw during
//! each failure, and how long each recovery took.
//!
//! It needs the release binary beside it (`cargo build --release -p aisle-cli`), the local
//! PostgreSQL and NATS servers (`scripts/services.sh`), and root for restarting them the way
//! this machine starts them (`pg_ctlcluster`, `start-stop-daemon`).

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisle_store::testing::FreshDatabase;
use aisle_store::{PgStore, ReadStore};
use anyhow::{Context, bail};

#[derive(clap::Args, Debug)]
pub struct ReplicasArgs {
    /// Report to write.
    #[arg(long, default_value = "bench/results/cluster-replicas.md")]
    out: PathBuf,
    /// Seconds of load before, between and after the failures.
    #[arg(long, default_value_t = 6.0)]
    seconds: f64,
    /// Client threads sending one event per request.
    #[arg(long, default_value_t = 4)]
    clients: usize,
    /// The NATS server.
    #[arg(long, default_value = "nats://127.0.0.1:4222")]
    nats: String,
    /// The Instacart sample (folder).
    #[arg(long, default_value = "data/instacart-sample")]
    sample: PathBuf,
}

const KEY: &str = "bench-admin-key";
const HOSTS: [&str; 3] = ["127.0.0.2", "127.0.0.3", "127.0.0.4"];
const PORT: u16 = 7710;

use crate::flood::{agent, product_binary};

struct Cluster {
    exe: PathBuf,
    db: String,
    nats: String,
    stream: String,
    work: tempfile::TempDir,
    children: Vec<Option<Child>>,
}

impl Cluster {
    fn base(i: usize) -> String {
        format!("http://{}:{PORT}", HOSTS[i])
    }

    fn spawn(&mut self, i: usize) -> anyhow::Result<()> {
        let dir = self.work.path().join(format!("r{i}"));
        std::fs::create_dir_all(&dir)?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("serve.log"))?;
        let child = Command::new(&self.exe)
            .args(["serve", "--no-encoder", "--data-dir"])
            .arg(&dir)
            .args(["--listen", &format!("{}:{PORT}", HOSTS[i])])
            .env("AISLE_DATABASE_URL", &self.db)
            .env("AISLE_STREAM_URL", &self.nats)
            .env("AISLE_STREAM_NAME", &self.stream)
            .env("AISLE_REPLICA", format!("r{i}"))
            .env("AISLE_API_KEYS", format!("{KEY}:admin"))
            .env("AISLE_RATE_LIMIT", "1000000000")
            .env("AISLE_MODEL", "pop")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()?;
        self.children[i] = Some(child);
        Ok(())
    }

    fn ready(&self, i: usize) -> anyhow::Result<()> {
        Self::wait_ready(i).with_context(|| {
            let log = std::fs::read_to_string(self.work.path().join(format!("r{i}/serve.log")))
                .unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(15).collect();
            format!(
                "its log ends:\n{}",
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            )
        })
    }

    fn wait_ready(i: usize) -> anyhow::Result<()> {
        let agent = agent();
        for _ in 0..1200 {
            if agent
                .get(format!("{}/ready", Self::base(i)))
                .call()
                .is_ok_and(|r| r.status() == 200)
            {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("replica {} did not become ready in 2 minutes", HOSTS[i])
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut c) = self.children[i].take() {
            let _ = c.kill(); // SIGKILL
            let _ = c.wait();
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.children.len() {
            self.kill(i);
        }
    }
}

/// Events in a replica's live state, from its dashboard.
fn live_events(i: usize) -> Option<u64> {
    let mut r = agent()
        .get(format!("{}/v1/dashboard", Cluster::base(i)))
        .header("Authorization", format!("Bearer {KEY}"))
        .call()
        .ok()?;
    let body: serde_json::Value =
        serde_json::from_str(&r.body_mut().read_to_string().ok()?).ok()?;
    body["memory"]["live_events"].as_u64()
}

fn stored_events(db: &PgStore) -> u64 {
    db.counts().map_or(0, |c| c.events as u64)
}

/// What the clients saw, with the time of each answer.
#[derive(Default)]
struct Seen {
    /// (ms since start, status or 0 for no answer)
    writes: Vec<(u64, u16)>,
    reads: Vec<(u64, u16)>,
    acked: Vec<String>,
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn load(
    clients: usize,
    running: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
    start: Instant,
) -> Vec<std::thread::JoinHandle<()>> {
    let sent = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..clients {
        let (running, seen, sent) = (running.clone(), seen.clone(), sent.clone());
        threads.push(std::thread::spawn(move || {
            let agent = agent();
            while running.load(Ordering::Relaxed) {
                let n = sent.fetch_add(1, Ordering::Relaxed);
                let user = format!("load-{t}-{n}");
                let body = serde_json::json!({"user": user, "kind": "view", "item": "196", "timestamp": now_ms()});
                let status = agent
                    .post(format!("{}/v1/events", Cluster::base(n % 3)))
                    .header("Authorization", format!("Bearer {KEY}"))
                    .header("Content-Type", "application/json")
                    .send(body.to_string())
                    .map_or(0, |r| r.status().as_u16());
                let at = start.elapsed().as_millis() as u64;
                let mut s = seen.lock().expect("lock");
                s.writes.push((at, status));
                if status == 200 {
                    s.acked.push(user);
                }
            }
        }));
    }
    let (running, seen) = (running.clone(), seen.clone());
    threads.push(std::thread::spawn(move || {
        let agent = agent();
        let mut n = 0usize;
        while running.load(Ordering::Relaxed) {
            let status = agent
                .get(format!("{}/v1/recommend?user=1&k=10", Cluster::base(n % 3)))
                .header("Authorization", format!("Bearer {KEY}"))
                .call()
                .map_or(0, |r| r.status().as_u16());
            n += 1;
            seen.lock()
                .expect("lock")
                .reads
                .push((start.elapsed().as_millis() as u64, status));
            std::thread::sleep(Duration::from_millis(20));
        }
    }));
    threads
}

fn sh(cmd: &str) -> anyhow::Result<()> {
    let status = Command::new("bash").args(["-c", cmd]).status()?;
    if !status.success() {
        bail!("`{cmd}` failed");
    }
    Ok(())
}

/// Answers in [from, to) ms: (200s, 503s, no answer, other).
fn tally(answers: &[(u64, u16)], from: u64, to: u64) -> (usize, usize, usize, usize) {
    let mut t = (0, 0, 0, 0);
    for &(_, s) in answers.iter().filter(|a| a.0 >= from && a.0 < to) {
        match s {
            200 => t.0 += 1,
            503 => t.1 += 1,
            0 => t.2 += 1,
            _ => t.3 += 1,
        }
    }
    t
}

/// The first successful write at or after `from` ms.
fn first_ok_after(answers: &[(u64, u16)], from: u64) -> Option<u64> {
    answers
        .iter()
        .filter(|a| a.0 >= from && a.1 == 200)
        .map(|a| a.0)
        .min()
}

pub fn run(args: ReplicasArgs) -> anyhow::Result<()> {
    let exe = product_binary()?;
    let db = FreshDatabase::new();
    let stream = format!("AISLE_BENCH_{}", std::process::id());
    let work = tempfile::tempdir()?;
    let status = Command::new(&exe)
        .args(["import", "--format", "instacart", "--data-dir"])
        .arg(work.path().join("import"))
        .arg(&args.sample)
        .env("AISLE_DATABASE_URL", db.url())
        .stdout(Stdio::null())
        .status()?;
    if !status.success() {
        bail!("importing the sample into PostgreSQL failed");
    }
    let mut cluster = Cluster {
        exe,
        db: db.url().to_string(),
        nats: args.nats.clone(),
        stream,
        work,
        children: vec![None, None, None],
    };
    eprintln!("starting three replicas (each trains first)");
    for i in 0..3 {
        cluster.spawn(i)?;
    }
    for i in 0..3 {
        cluster.ready(i)?;
    }
    let pg = PgStore::open(db.url()).context("opening the database")?;
    let base_events = stored_events(&pg);
    let phase = Duration::from_secs_f64(args.seconds);
    let start = Instant::now();
    let running = Arc::new(AtomicBool::new(true));
    let seen = Arc::new(Mutex::new(Seen::default()));
    let threads = load(args.clients, running.clone(), seen.clone(), start);
    let ms = |i: Instant| i.duration_since(start).as_millis() as u64;
    std::thread::sleep(phase);

    // 1. SIGKILL one replica, restart it, time its catch-up.
    eprintln!("SIGKILL replica {}", HOSTS[1]);
    let killed_at = Instant::now();
    cluster.kill(1);
    std::thread::sleep(Duration::from_secs(2));
    let restart_at = Instant::now();
    cluster.spawn(1)?;
    cluster.ready(1)?;
    let ready_at = Instant::now();
    let target = stored_events(&pg);
    while live_events(1).unwrap_or(0) < target {
        std::thread::sleep(Duration::from_millis(50));
    }
    let caught_up_at = Instant::now();
    std::thread::sleep(phase);

    // 2. Restart PostgreSQL under load.
    eprintln!("restarting PostgreSQL");
    let pg_down = Instant::now();
    sh(
        "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | sort -V | tail -1) main restart",
    )?;
    let pg_up = Instant::now();
    std::thread::sleep(phase);

    // 3. Restart NATS under load.
    eprintln!("restarting NATS");
    let nats_down = Instant::now();
    sh(
        "pkill -x nats-server; sleep 1; start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log; for i in $(seq 1 50); do (exec 3<>/dev/tcp/127.0.0.1/4222) 2>/dev/null && break; sleep 0.1; done",
    )?;
    let nats_up = Instant::now();
    std::thread::sleep(phase);

    running.store(false, Ordering::Relaxed);
    for t in threads {
        let _ = t.join();
    }
    let stopped = Instant::now();
    // 4. Every replica converges on the database's count.
    let total = stored_events(&pg);
    let mut converged = Vec::new();
    for (i, host) in HOSTS.iter().enumerate() {
        let t = Instant::now();
        loop {
            if live_events(i) == Some(total) {
                break;
            }
            if t.elapsed() > Duration::from_secs(60) {
                let held: Vec<Option<u64>> = (0..3).map(live_events).collect();
                bail!(
                    "replica {host} did not converge: the replicas hold {held:?} events, the database {total}"
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        converged.push(stopped.elapsed().as_secs_f64());
    }

    // What was acknowledged is stored, once.
    let seen = seen.lock().expect("lock");
    let mut per_user = std::collections::HashMap::<u32, usize>::new();
    pg.scan_events(&mut |e| *per_user.entry(e.user.0).or_insert(0) += 1)?;
    let (mut lost, mut duplicated) = (0, 0);
    for user in &seen.acked {
        match pg.user_id(user)? {
            None => lost += 1,
            Some(id) => match per_user.get(&id.0) {
                None => lost += 1,
                Some(1) => {}
                Some(_) => duplicated += 1,
            },
        }
    }
    let (w, r) = (&seen.writes, &seen.reads);
    let kill = tally(w, ms(killed_at), ms(ready_at));
    let pg_window = tally(w, ms(pg_down), ms(pg_up) + 2_000);
    let pg_reads = tally(r, ms(pg_down), ms(pg_up) + 2_000);
    // The outage as the clients saw it: from the first refusal to the last, and the first
    // acknowledgement after that.
    let refusals: Vec<u64> = w
        .iter()
        .filter(|a| a.0 >= ms(pg_down) && a.0 < ms(pg_up) + 2_000 && a.1 != 200)
        .map(|a| a.0)
        .collect();
    let pg_seen = match (refusals.iter().min(), refusals.iter().max()) {
        (Some(&first), Some(&last)) => format!(
            "refusals from {:.2} s to {:.2} s after the restart began; the next write acknowledged at {}",
            (first - ms(pg_down)) as f64 / 1e3,
            (last - ms(pg_down)) as f64 / 1e3,
            first_ok_after(w, last).map_or("none".to_string(), |t| format!(
                "{:.2} s",
                (t - ms(pg_down)) as f64 / 1e3
            ))
        ),
        _ => "no write was refused".to_string(),
    };
    let nats_window = tally(w, ms(nats_down), ms(nats_up) + 2_000);
    let all = tally(w, 0, u64::MAX);
    let mut others: std::collections::BTreeMap<u16, usize> = std::collections::BTreeMap::new();
    for &(_, status) in w.iter().filter(|a| ![0, 200, 503].contains(&a.1)) {
        *others.entry(status).or_insert(0) += 1;
    }
    let others = if others.is_empty() {
        "none".to_string()
    } else {
        others
            .iter()
            .map(|(s, n)| format!("{n} × {s}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let report = format!(
        "# Three replicas over PostgreSQL and NATS, through failures\n\n\
         Made by `cargo build --release -p aisle-cli && cargo run --release -p aisle-bench -- replicas`\n\
         on this machine: three `aisle serve` processes on 127.0.0.2, .3 and .4 (model `pop`), one\n\
         PostgreSQL 15 database, one JetStream stream, all on the same 2 cores. {clients} client\n\
         threads send one event per request, round robin over the three replicas (requests to a\n\
         dead replica fail); a reader asks one replica after another for recommendations every\n\
         20 ms. {phase:.0} s of load before, between and after the failures.\n\n\
         ## Acknowledged events\n\n\
         | | |\n|---|---:|\n\
         | write requests | {} |\n| acknowledged (200) | {} |\n| refused with 503 | {} |\n\
         | no answer (a replica down, or a connection cut) | {} |\n| other answers | {} ({others}) |\n\
         | **acknowledged but not stored** | **{lost}** |\n| **acknowledged and stored twice** | **{duplicated}** |\n\
         | events in the database at the end (sample {base_events} + load) | {total} |\n\n\
         ## Failures\n\n\
         | failure | what the clients saw | recovery |\n|---|---|---|\n\
         | SIGKILL of 127.0.0.3, restarted 2 s later | writes while it was down: {} acknowledged, {} unanswered, {} refused | ready {:.1} s after its restart (it loads the database and trains), live state caught up {:.2} s after that |\n\
         | PostgreSQL restarted ({:.1} s) | writes in the outage and 2 s after: {} acknowledged, {} refused with 503, {} unanswered; reads: {} answered, {} failed | {} |\n\
         | NATS restarted ({:.1} s) | writes in the outage and 2 s after: {} acknowledged, {} refused, {} unanswered | every replica held what the database holds {:.2} s, {:.2} s and {:.2} s after the load stopped |\n\n\
         Acknowledgement is PostgreSQL's commit alone, so a NATS outage does not stop ingest: the\n\
         outbox keeps what could not be published and the next sweep (every 5 s) republishes it.\n\
         A write that reaches a replica while PostgreSQL is down is refused with a 503 that says\n\
         nothing was stored. Counts of requests depend on this machine's speed; the zeros in bold\n\
         do not.\n",
        all.0 + all.1 + all.2 + all.3,
        all.0,
        all.1,
        all.2,
        all.3,
        kill.0,
        kill.2,
        kill.1,
        ready_at.duration_since(restart_at).as_secs_f64(),
        caught_up_at.duration_since(ready_at).as_secs_f64(),
        pg_up.duration_since(pg_down).as_secs_f64(),
        pg_window.0,
        pg_window.1,
        pg_window.2,
        pg_reads.0,
        pg_reads.1 + pg_reads.2 + pg_reads.3,
        pg_seen,
        nats_up.duration_since(nats_down).as_secs_f64(),
        nats_window.0,
        nats_window.1,
        nats_window.2,
        converged[0],
        converged[1],
        converged[2],
        clients = args.clients,
        phase = args.seconds,
    );
    print!("{report}");
    drop(cluster);
    aisle_core::fs::write_atomic(&args.out, report.as_bytes())?;
    if lost > 0 || duplicated > 0 {
        bail!("{lost} acknowledged events lost, {duplicated} stored twice");
    }
    Ok(())
}
