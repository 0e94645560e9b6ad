//! Power cuts (issue 13). The SIGKILL test in `crash.rs` cannot catch a missing or misordered
//! sync: the OS page cache outlives the process, so everything written reaches the disk anyway.
//! Here the store runs on `aisle_store::testing::PowerCutDisk`, a fake disk with a volatile
//! write cache:
//!
//! - `write` and `set_len` go to the cache (reads see them); `sync_data` makes everything
//!   written so far durable;
//! - the power goes off at a cut point drawn with a seeded RNG: one of the backend calls
//!   (`write`, `set_len`, `sync_data`) the store makes, which fails with an I/O error like
//!   every call after it, so the store sees the crash mid-commit; or an idle moment between
//!   two batches;
//! - what survives is the image at the last sync or, for every other cut point, a torn image:
//!   that plus a random subset of the unsynced 4 KiB sectors (a disk that wrote some of its
//!   cache, in any order). A fresh disk from that image is the machine after the reboot.
//!
//! Each run writes numbered events in batches through the writer API the server's ingest uses
//! (`writer`, `add_event`, `commit`) and records which batches were acknowledged. After the
//! reboot the store must open, read back whole (events, users, items, the id maps), hold every
//! acknowledged event exactly once, and take a new write; the batch in flight at the cut is
//! there entirely or not at all, later ones not at all. Cut points are spread over every step
//! of a run (the open, then each batch). Batches cross the writer's mid-write flush: at a
//! threshold of 32 events in the many-cut test, and at the real 262,144 in another.
//!
//! `power_cut_check_catches_commits_that_skip_the_sync` runs the same check on a store whose
//! commits skip the sync (`Knobs::sync_commits = false`, redb's `Durability::None`) and
//! requires it to report lost acknowledged events: the check can fail.
//!
//! Known limitation, accepted below and nowhere else: a cut between redb's first two syncs
//! while it creates a new database file (before the store has opened, so before anything was
//! acknowledged) leaves a non-empty file without redb's magic number, which redb then refuses
//! to open ("Not a redb database"); the file has to be removed by hand.

use std::ops::Range;

use aisle_core::RawEvent;
use aisle_store::testing::{Knobs, PowerCutDisk};
use aisle_store::{ReadStore, RedbStore, Store};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

fn user(n: i64) -> String {
    format!("u{}", n % 97)
}

fn item(n: i64) -> String {
    format!("i{}", n % 1009)
}

/// Event `n`: its timestamp is `n`, so a scan tells which event it is.
fn event(n: i64) -> RawEvent {
    RawEvent::new(user(n), Some(item(n)), "view", n)
}

/// Batches of consecutive events and the knobs of the store that writes them.
struct Workload {
    /// Batch `b` holds events `bounds[b]..bounds[b + 1]`.
    bounds: Vec<i64>,
    knobs: Knobs,
}

impl Workload {
    fn new(sizes: &[i64], knobs: Knobs) -> Self {
        let mut bounds = vec![0];
        for size in sizes {
            bounds.push(bounds[bounds.len() - 1] + size);
        }
        Self { bounds, knobs }
    }

    /// Many small batches; with `flush_events` 32 most of them cross the mid-writer flush.
    fn small(seed: u64, knobs: Knobs) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let sizes: Vec<i64> = (0..30).map(|_| rng.random_range(1..=120)).collect();
        Self::new(&sizes, knobs)
    }

    fn batches(&self) -> usize {
        self.bounds.len() - 1
    }

    fn batch(&self, b: usize) -> Range<i64> {
        self.bounds[b]..self.bounds[b + 1]
    }

    fn events(&self) -> i64 {
        self.bounds[self.batches()]
    }
}

/// When the power goes off.
#[derive(Clone, Copy, Debug)]
enum Cut {
    /// As the store makes its backend call number `n + 1` (`PowerCutDisk::cut_after(n)`).
    Call(u64),
    /// While the disk is idle: after batches `0..before_batch` were acknowledged (or, for 0,
    /// after the store opened), before the next one starts.
    Idle { before_batch: usize },
}

/// How far a run got before the power went off.
struct Run {
    /// Batches `0..acknowledged` were acknowledged (their commit returned `Ok`).
    acknowledged: usize,
    /// The batch whose write the cut interrupted.
    in_flight: Option<usize>,
    /// Backend calls made once the store had opened, then once each batch was acknowledged.
    calls_done: Vec<u64>,
}

fn write_batch(store: &dyn Store, events: Range<i64>) -> aisle_store::Result<()> {
    let len = events.end - events.start;
    let mut writer = store.writer()?;
    for n in events {
        writer.add_event(&event(n))?;
    }
    let report = writer.commit()?;
    assert_eq!(report.events_added as i64, len, "every event is new");
    Ok(())
}

/// Opens a store on a fresh `disk` and writes the workload until the power goes off; at the
/// end the power goes off anyway, so the store never closes cleanly.
fn write_until_cut(disk: &PowerCutDisk, work: &Workload, cut: Option<Cut>) -> Run {
    let mut run = Run {
        acknowledged: 0,
        in_flight: None,
        calls_done: Vec::new(),
    };
    if let Some(Cut::Call(n)) = cut {
        disk.cut_after(n);
    }
    let store = match RedbStore::open_with_backend(disk.backend(), work.knobs) {
        Ok(store) => store,
        Err(e) => {
            assert!(disk.is_cut(), "open failed with the power on: {e}");
            return run;
        }
    };
    run.calls_done.push(disk.calls());
    for b in 0..work.batches() {
        if matches!(cut, Some(Cut::Idle { before_batch }) if before_batch == b) {
            break;
        }
        match write_batch(&store, work.batch(b)) {
            Ok(()) => {
                run.acknowledged += 1;
                run.calls_done.push(disk.calls());
            }
            Err(e) => {
                assert!(disk.is_cut(), "batch {b} failed with the power on: {e}");
                run.in_flight = Some(b);
                break;
            }
        }
    }
    disk.cut_now();
    drop(store);
    run
}

/// What the check after the reboot found.
#[derive(Default)]
struct Findings {
    /// Acknowledged events missing after the reboot.
    lost_acknowledged: usize,
    /// The cut fell while the store was first created and left a file redb will not open.
    unfinished_creation: bool,
    /// Every violation, lost events included.
    problems: Vec<String>,
}

/// The known limitation (see the module docs): redb writes its magic number last when it
/// creates a database, and refuses a non-empty file without one.
fn is_unfinished_creation(e: &aisle_store::Error) -> bool {
    e.to_string().contains("Not a redb database")
}

/// Reboots from `image` and checks the store against the run.
fn check_after_reboot(image: Vec<u8>, work: &Workload, run: &Run) -> Findings {
    let mut found = Findings::default();
    let disk = PowerCutDisk::from_image(image);
    let reopen = Knobs {
        encryption_key: work.knobs.encryption_key,
        ..Knobs::default()
    };
    let store = match RedbStore::open_with_backend(disk.backend(), reopen) {
        Ok(store) => store,
        Err(e) if run.calls_done.is_empty() && is_unfinished_creation(&e) => {
            found.unfinished_creation = true;
            return found;
        }
        Err(e) => {
            found
                .problems
                .push(format!("the store does not reopen: {e}"));
            return found;
        }
    };

    let mut users = Vec::new();
    let mut items = Vec::new();
    let scanned = store
        .scan_users(&mut |id, u| users.push((id, u.external_id)))
        .and_then(|()| store.scan_items(&mut |id, i| items.push((id, i.external_id))));
    if let Err(e) = scanned {
        found
            .problems
            .push(format!("records do not read back: {e}"));
        return found;
    }
    let mut user_names = vec![None; users.len()];
    for (id, name) in users {
        if store.user_id(&name).ok().flatten() != Some(id) {
            found
                .problems
                .push(format!("user {name} and its id disagree"));
        }
        if let Some(slot) = user_names.get_mut(id.0 as usize) {
            *slot = Some(name);
        }
    }
    let mut item_names = vec![None; items.len()];
    for (id, name) in items {
        if store.item_id(&name).ok().flatten() != Some(id) {
            found
                .problems
                .push(format!("item {name} and its id disagree"));
        }
        if let Some(slot) = item_names.get_mut(id.0 as usize) {
            *slot = Some(name);
        }
    }

    let mut seen = vec![0u32; work.events() as usize];
    let mut stray = Vec::new();
    let scanned = store.scan_events(&mut |e| {
        let n = e.timestamp_ms;
        let Some(count) = usize::try_from(n).ok().and_then(|i| seen.get_mut(i)) else {
            stray.push(format!("event with timestamp {n} was never written"));
            return;
        };
        *count += 1;
        let u = user_names.get(e.user.0 as usize).cloned().flatten();
        let i = e
            .item
            .and_then(|id| item_names.get(id.0 as usize).cloned().flatten());
        if u.as_deref() != Some(user(n).as_str()) || i.as_deref() != Some(item(n).as_str()) {
            stray.push(format!("event {n} names user {u:?} and item {i:?}"));
        }
    });
    found.problems.extend(stray);
    if let Err(e) = scanned {
        found.problems.push(format!("events do not read back: {e}"));
        return found;
    }
    let stored: usize = seen.iter().map(|&c| c as usize).sum();
    match store.counts() {
        Ok(counts) if counts.events == stored => {}
        other => found.problems.push(format!(
            "counts {other:?} disagree with the {stored} events scanned"
        )),
    }

    for b in 0..work.batches() {
        let range = work.batch(b);
        let counts = &seen[range.start as usize..range.end as usize];
        let present = counts.iter().filter(|&&c| c > 0).count();
        if counts.iter().any(|&c| c > 1) {
            found
                .problems
                .push(format!("batch {b} has events stored twice"));
        }
        let whole = present == counts.len();
        if b < run.acknowledged {
            if !whole {
                found.lost_acknowledged += counts.len() - present;
                found.problems.push(format!(
                    "acknowledged batch {b} lost {} of its {} events",
                    counts.len() - present,
                    counts.len()
                ));
            }
        } else if Some(b) == run.in_flight {
            if present != 0 && !whole {
                found.problems.push(format!(
                    "batch {b}, in flight at the cut, is partly stored ({present} of {})",
                    counts.len()
                ));
            }
        } else if present != 0 {
            found.problems.push(format!(
                "batch {b} was never written but {present} events are"
            ));
        }
    }

    // The recovered store takes writes again.
    let next = work.events()..work.events() + 3;
    if let Err(e) = write_batch(&store, next) {
        found
            .problems
            .push(format!("the recovered store refuses a write: {e}"));
    }
    found
}

/// What a run of many cut points found.
struct Summary {
    cut_points: usize,
    /// Cut points whose check found acknowledged events missing.
    lost_acknowledged_at: usize,
    /// Cut points where at least one batch had been acknowledged / one was in flight.
    after_an_ack: usize,
    mid_batch: usize,
    /// Cut points that left a file whose creation never finished.
    unfinished_creations: usize,
    /// Every violation, prefixed with its cut point.
    problems: Vec<String>,
}

/// Draws `per_step` cut points (seeded) in each step of the workload (the open, then each
/// batch): one of the backend calls the step makes, or the idle moment after it. Every other
/// image is torn. Checks each reboot.
fn power_cuts(work: &Workload, per_step: usize, seed: u64) -> Summary {
    let dry = write_until_cut(&PowerCutDisk::new(), work, None);
    assert_eq!(
        dry.acknowledged,
        work.batches(),
        "the dry run writes it all"
    );
    let calls = dry.calls_done[work.batches()];

    let mut rng = StdRng::seed_from_u64(seed);
    let mut summary = Summary {
        cut_points: 0,
        lost_acknowledged_at: 0,
        after_an_ack: 0,
        mid_batch: 0,
        unfinished_creations: 0,
        problems: Vec::new(),
    };
    for step in 0..=work.batches() {
        // The step's calls are `first + 1..=last`; `cut_after(n)` fails call `n + 1`.
        let first = if step == 0 {
            0
        } else {
            dry.calls_done[step - 1]
        };
        let last = dry.calls_done[step];
        for _ in 0..per_step {
            let n = rng.random_range(first..=last);
            let cut = if n == last {
                Cut::Idle { before_batch: step }
            } else {
                Cut::Call(n)
            };
            let torn = summary.cut_points % 2 == 1;
            let disk = PowerCutDisk::new();
            let run = write_until_cut(&disk, work, Some(cut));
            let image = if torn {
                disk.torn_image(&mut || rng.random_bool(0.5))
            } else {
                disk.durable_image()
            };
            let found = check_after_reboot(image, work, &run);
            summary.cut_points += 1;
            summary.after_an_ack += usize::from(run.acknowledged > 0);
            summary.mid_batch += usize::from(run.in_flight.is_some());
            summary.lost_acknowledged_at += usize::from(found.lost_acknowledged > 0);
            summary.unfinished_creations += usize::from(found.unfinished_creation);
            let label = format!(
                "{cut:?} of {calls} calls{} ({} batches acknowledged, in flight {:?})",
                if torn { ", torn" } else { "" },
                run.acknowledged,
                run.in_flight
            );
            summary
                .problems
                .extend(found.problems.into_iter().map(|p| format!("{label}: {p}")));
        }
    }
    eprintln!(
        "{} cut points over {calls} calls: {} after an acknowledgement, {} mid-batch, {} lost \
         acknowledged events, {} left an unfinished creation",
        summary.cut_points,
        summary.after_an_ack,
        summary.mid_batch,
        summary.lost_acknowledged_at,
        summary.unfinished_creations
    );
    summary
}

fn assert_survives(summary: &Summary) {
    assert!(
        summary.problems.is_empty(),
        "{} problems, first ones:\n{}",
        summary.problems.len(),
        summary.problems[..summary.problems.len().min(10)].join("\n")
    );
    assert!(
        summary.after_an_ack > 0 && summary.mid_batch > 0,
        "the cut points cover both acknowledged and in-flight batches"
    );
}

#[test]
fn acknowledged_batches_survive_power_cuts() {
    let knobs = Knobs {
        flush_events: 32,
        ..Knobs::default()
    };
    // 31 steps (the open and 30 batches), 62 cut points.
    let summary = power_cuts(&Workload::small(13, knobs), 2, 0x0013_c0de);
    assert!(summary.cut_points >= 50);
    assert_survives(&summary);
}

#[test]
fn acknowledged_batches_survive_power_cuts_past_the_real_flush_threshold() {
    let threshold = Knobs::default().flush_events as i64;
    assert_eq!(threshold, 262_144, "the store's own flush threshold");
    let work = Workload::new(&[40, threshold + 3_000, 40], Knobs::default());
    // Two cut points in each of the open and the three batches: the big batch is cut while
    // its flushed runs and its commit go to the disk, and acknowledged before later cuts.
    let summary = power_cuts(&work, 2, 0x0013_f105);
    assert_survives(&summary);
}

/// The same on a store sealed by the encrypting backend: block 0's two copies take the
/// torn header writes, and no other sealed block that a commit refers to is ever torn.
#[test]
fn acknowledged_batches_survive_power_cuts_with_encryption() {
    let knobs = Knobs {
        flush_events: 32,
        encryption_key: Some([0x5a; 32]),
        ..Knobs::default()
    };
    let summary = power_cuts(&Workload::small(17, knobs), 6, 0x0017_c0de);
    assert!(summary.cut_points >= 150);
    assert_survives(&summary);
}

/// The same check on a store that commits without syncing must report lost acknowledged
/// events: it proves the check above can fail.
#[test]
fn power_cut_check_catches_commits_that_skip_the_sync() {
    let knobs = Knobs {
        sync_commits: false,
        flush_events: 32,
        ..Knobs::default()
    };
    let summary = power_cuts(&Workload::small(13, knobs), 1, 0x0013_bad0);
    assert!(
        summary.after_an_ack >= 20,
        "enough cut points fall after an acknowledgement ({} of {})",
        summary.after_an_ack,
        summary.cut_points
    );
    assert_eq!(
        summary.lost_acknowledged_at, summary.after_an_ack,
        "skipping the sync loses acknowledged events at every cut point that follows an \
         acknowledgement"
    );
}

/// Every backend call of the first open, clean and torn: nothing is acknowledged yet, so
/// nothing may be lost, and the reopened store is empty, or (the known limitation) the file's
/// creation never finished.
#[test]
fn a_cut_while_a_new_store_is_created_loses_nothing() {
    let work = Workload::new(&[5], Knobs::default());
    let dry = write_until_cut(&PowerCutDisk::new(), &work, None);
    let mut rng = StdRng::seed_from_u64(0x0013_0be0);
    let (mut cuts, mut unfinished) = (0, 0);
    for n in 0..=dry.calls_done[0] {
        for torn in [false, true] {
            let disk = PowerCutDisk::new();
            let cut = if n == dry.calls_done[0] {
                Cut::Idle { before_batch: 0 }
            } else {
                Cut::Call(n)
            };
            let run = write_until_cut(&disk, &work, Some(cut));
            let image = if torn {
                disk.torn_image(&mut || rng.random_bool(0.5))
            } else {
                disk.durable_image()
            };
            let found = check_after_reboot(image, &work, &run);
            assert!(found.problems.is_empty(), "{cut:?}: {:?}", found.problems);
            cuts += 1;
            unfinished += usize::from(found.unfinished_creation);
        }
    }
    eprintln!("{cuts} cut points in the first open: {unfinished} left an unfinished creation");
}
