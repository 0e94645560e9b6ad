//! Crash safety: a child process ingests events and prints `ack N` after each commit returns;
//! the parent kills it with SIGKILL at random moments. After every kill the store must open
//! cleanly and hold every acknowledged event exactly once. The child then resumes from its
//! last acknowledgement, re-sending what may or may not have landed, as a client would.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use aisle_core::RawEvent;
use aisle_store::{ReadStore, RedbStore, Store};
use rand::{Rng, SeedableRng};

const CHILD_ENV: &str = "AISLE_CRASH_CHILD_DIR";

fn event(n: i64) -> RawEvent {
    let mut e = RawEvent::new(
        format!("u{}", n % 37),
        Some(format!("i{}", n % 101)),
        "view",
        n,
    );
    e.session = Some(format!("s{}", n / 25));
    e
}

/// The child: ingests from the number in `AISLE_CRASH_START` on, forever, acknowledging each
/// commit. Batches of 1 to 8 events per commit, so multi-event commits are tested too. The
/// test binary runs it when the parent test re-runs itself with `AISLE_CRASH_CHILD_DIR` set
/// (a test, not an ignored helper, so the suite reports nothing skipped).
fn crash_child(dir: &str) -> ! {
    let mut next: i64 = std::env::var("AISLE_CRASH_START")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let store = RedbStore::open(Path::new(dir)).expect("child opens the store");
    let mut out = std::io::stdout().lock();
    loop {
        let batch = 1 + (next % 8);
        let mut w = store.writer().expect("writer");
        for n in next..next + batch {
            w.add_event(&event(n)).expect("add");
        }
        w.commit().expect("commit");
        writeln!(out, "ack {}", next + batch - 1).expect("stdout");
        out.flush().expect("flush");
        next += batch;
    }
}

/// The master key of the encrypted variant, as the child gets it (`AISLE_MASTER_KEY`).
const KEY_HEX: &str = "5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a";

fn stored_counts(dir: &Path, encrypted: bool) -> HashMap<i64, usize> {
    let master = encrypted.then_some(aisle_store::keys::MasterKey::Raw([0x5a; 32]));
    let store = RedbStore::open_keyed(dir, master).expect("store opens cleanly after a crash");
    let mut seen = HashMap::new();
    store
        .scan_events(&mut |e| *seen.entry(e.timestamp_ms).or_insert(0) += 1)
        .expect("every record reads back");
    seen
}

#[test]
fn acknowledged_events_survive_sigkill() {
    survive_sigkill("acknowledged_events_survive_sigkill", false);
}

/// The same with the store encrypted at rest (the child opens it with `AISLE_MASTER_KEY`).
#[test]
fn acknowledged_events_survive_sigkill_with_encryption() {
    survive_sigkill("acknowledged_events_survive_sigkill_with_encryption", true);
}

fn survive_sigkill(test: &str, encrypted: bool) {
    if let Ok(dir) = std::env::var(CHILD_ENV) {
        crash_child(&dir);
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let exe = std::env::current_exe().expect("test binary path");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5eed);
    let mut acked: i64 = -1;
    let rounds = 25;
    for round in 0..rounds {
        let mut command = Command::new(&exe);
        command
            .args(["--exact", test, "--nocapture", "--test-threads=1"])
            .env_remove(aisle_store::keys::MASTER_KEY_VAR);
        if encrypted {
            command.env(aisle_store::keys::MASTER_KEY_VAR, KEY_HEX);
        }
        let mut child = command
            .env(CHILD_ENV, dir.path())
            .env("AISLE_CRASH_START", (acked + 1).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn child");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(n) = line
                    .strip_prefix("ack ")
                    .and_then(|n| n.parse::<i64>().ok())
                {
                    let _ = tx.send(n);
                }
            }
        });
        // Wait for the first acknowledgement so that every round really writes.
        let first = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("child acknowledges");
        acked = acked.max(first);
        std::thread::sleep(Duration::from_millis(rng.random_range(1..60)));
        child.kill().expect("SIGKILL");
        child.wait().expect("reap");
        reader.join().expect("reader thread");
        while let Ok(n) = rx.try_recv() {
            acked = acked.max(n);
        }

        let seen = stored_counts(dir.path(), encrypted);
        for n in 0..=acked {
            assert_eq!(
                seen.get(&n).copied().unwrap_or(0),
                1,
                "round {round}: acknowledged event {n} must be stored exactly once"
            );
        }
        assert!(
            seen.values().all(|&c| c == 1),
            "round {round}: no event may be stored twice"
        );
        eprintln!(
            "round {round}: {} acknowledged, {} stored",
            acked + 1,
            seen.len()
        );
    }
    assert!(
        acked > rounds,
        "the child made progress ({acked} acknowledged)"
    );
}
