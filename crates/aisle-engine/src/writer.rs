//! The single writer: requests queue to one thread (a bounded queue; full means "busy, retry
//! shortly" rather than unbounded memory), events that arrive together share one durable
//! commit, and after each commit the live state is updated from what the commit actually
//! stored, here and nowhere else. So a retried request (whose events the store finds already
//! stored) is not counted twice, and a request whose client went away after the commit is
//! still in the live state.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aisle_core::{Item, RawEvent, User};
use aisle_store::{Committed, Remembered, Store, WriteReport};
use aisle_stream::Notice;
use tokio::sync::oneshot;

use crate::Shared;
use crate::answers::Accepted;
use crate::error::{EngineError, Result};

/// Most events one commit takes from the queue.
const MAX_GROUP: usize = 20_000;
/// How long an idempotency key is remembered.
pub const KEY_RETENTION: Duration = Duration::from_secs(24 * 3600);
/// How often expired keys are dropped.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);
/// Impressions wait at most this long for a commit when no events come to carry them: one
/// durable commit per interval instead of one per served list.
pub const IMPRESSION_FLUSH: Duration = Duration::from_millis(100);

/// An idempotency key with the fingerprint of the request it came with.
#[derive(Clone, Debug)]
pub struct IdempotencyKey {
    /// The key the client chose.
    pub key: String,
    /// A hash of the request body.
    pub fingerprint: u64,
}

/// A change to the shop's data.
#[derive(Debug)]
pub enum Change {
    /// Events of one request (one batch: identical events in it are distinct occurrences).
    Events {
        /// The events.
        events: Vec<RawEvent>,
        /// The request's idempotency key, if it sent one.
        key: Option<IdempotencyKey>,
    },
    /// Items to create or replace.
    Items(Vec<Item>),
    /// Users to create or replace.
    Users(Vec<User>),
    /// An item to remove from the catalogue.
    DeleteItem(String),
    /// A user to forget.
    ForgetUser(String),
    /// Delete every event stamped before this time (ms): retention.
    DeleteEventsBefore(i64),
    /// Served lists are waiting in the impression buffer (every commit empties it; this
    /// only wakes the writer when nothing else would).
    Impressions,
}

/// What a change came to.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Written now.
    Written(WriteReport),
    /// An idempotent request seen before: its answer then, nothing written now.
    Replayed(Accepted),
}

type Reply = oneshot::Sender<Result<Outcome>>;

/// The way to the writer thread.
pub struct Writer {
    sender: SyncSender<(Change, Option<Reply>)>,
}

/// The writer thread; joining it waits until every queued change is committed.
pub struct WriterThread(Option<JoinHandle<()>>);

impl WriterThread {
    /// Waits for the writer to finish (after every [`Writer`] is dropped).
    pub fn join(mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// Starts the writer over `shared`, with room for `queue` waiting requests.
pub(crate) fn start(shared: Arc<Shared>, queue: usize) -> (Writer, WriterThread) {
    let (sender, receiver) = sync_channel(queue.max(1));
    let handle = std::thread::Builder::new()
        .name("aisle-writer".into())
        .spawn(move || run(&shared, &receiver))
        .expect("spawn the writer thread");
    (Writer { sender }, WriterThread(Some(handle)))
}

impl Writer {
    /// Queues a change whose outcome nobody waits for (the search log); false when the
    /// queue is full or the writer stopped.
    pub fn submit(&self, change: Change) -> bool {
        self.sender.try_send((change, None)).is_ok()
    }

    /// Queues a change; the returned receiver gets its outcome once it is durable (and in
    /// the live state), or why not. A full queue is [`crate::ErrorKind::Busy`] at once.
    pub fn send(&self, change: Change) -> Result<oneshot::Receiver<Result<Outcome>>> {
        let (reply, outcome) = oneshot::channel();
        match self.sender.try_send((change, Some(reply))) {
            Ok(()) => Ok(outcome),
            Err(TrySendError::Full(_)) => Err(EngineError::busy(
                "the write queue is full; retry shortly (write_queue)",
            )),
            Err(TrySendError::Disconnected(_)) => {
                Err(EngineError::busy("the server is stopping; retry shortly"))
            }
        }
    }
}

/// A change resolved against the idempotency records before it is staged.
enum Plan<'a> {
    /// Stage it.
    Write(&'a Change),
    /// Answer it with what an earlier request got.
    Replay(Accepted),
    /// Refuse it.
    Refuse(EngineError),
}

fn accepted_answer(events: &[RawEvent]) -> Accepted {
    Accepted {
        accepted: events.len(),
        token: None,
    }
}

/// Decides, for each change of a group, whether it is written, replayed or refused: a key
/// seen before (committed, or earlier in this group) replays its answer when the request is
/// the same and is refused when it is not.
fn plan<'a>(store: &dyn Store, changes: &[&'a Change]) -> Vec<Plan<'a>> {
    let mut pending: HashMap<&str, u64> = HashMap::new();
    changes
        .iter()
        .map(|&change| {
            let Change::Events {
                events,
                key: Some(key),
            } = change
            else {
                return Plan::Write(change);
            };
            let earlier = match pending.get(key.key.as_str()) {
                Some(&fingerprint) => Some(fingerprint),
                None => match store.remembered(&key.key) {
                    Ok(found) => found.map(|r| r.fingerprint),
                    Err(e) => {
                        return Plan::Refuse(EngineError::internal(
                            "reading the idempotency records",
                            e,
                        ));
                    }
                },
            };
            match earlier {
                Some(f) if f == key.fingerprint => Plan::Replay(accepted_answer(events)),
                Some(_) => Plan::Refuse(EngineError::key_reused(format!(
                    "the Idempotency-Key {:?} was used with a different request; use a new key for a new request",
                    key.key
                ))),
                None => {
                    pending.insert(&key.key, key.fingerprint);
                    Plan::Write(change)
                }
            }
        })
        .collect()
}

fn commit(
    shared: &Shared,
    plans: &[Plan<'_>],
    prune_before: Option<i64>,
) -> Result<Committed, aisle_store::Error> {
    let mut writer = shared.store.writer()?;
    writer.keep_added_events();
    if let Some(before) = prune_before {
        writer.forget_remembered_before(before);
    }
    let now = crate::now_ms();
    for plan in plans {
        let Plan::Write(change) = plan else { continue };
        match change {
            Change::Events { events, key } => {
                // Each request is a batch of its own: a retry sharing this commit with the
                // request it repeats is stored once.
                writer.start_batch();
                for e in events {
                    writer.add_event(e)?;
                }
                if let Some(key) = key {
                    let answer = serde_json::to_vec(&accepted_answer(events)).map_err(|e| {
                        aisle_store::Error::InvalidEvent {
                            reason: e.to_string(),
                        }
                    })?;
                    writer.remember(
                        &key.key,
                        &Remembered {
                            fingerprint: key.fingerprint,
                            answer,
                            at_ms: now,
                        },
                    );
                }
            }
            Change::Items(items) => {
                for item in items {
                    writer.upsert_item(item.clone())?;
                }
            }
            Change::Users(users) => {
                for user in users {
                    writer.upsert_user(user.clone())?;
                }
            }
            Change::DeleteItem(id) => {
                writer.delete_item(id)?;
            }
            Change::ForgetUser(id) => {
                writer.forget_user(id)?;
            }
            Change::DeleteEventsBefore(before) => writer.delete_events_before(*before),
            Change::Impressions => {}
        }
    }
    for impression in shared.impressions.take() {
        writer.log_impression(&impression);
    }
    writer.commit_listing_added()
}

/// Brings the live state up to date with a commit: the events it stored, and the catalogue
/// and user changes it made.
fn apply(shared: &Shared, plans: &[Plan<'_>], committed: &Committed, forgotten: &[u32]) {
    shared.absorb(&committed.added);
    shared.online.absorb(&committed.added);
    let replicator = shared.replicator.get();
    if let Some(r) = replicator
        && !committed.keys.is_empty()
    {
        // Numbered only when it stored events: every number is then published.
        let commit = shared
            .commits
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        r.committed(commit, &committed.keys, &committed.added);
    }
    // What the other replicas must look at again in the database.
    let mut notices = Vec::new();
    if committed.report.users_forgotten > 0 {
        for &user in forgotten {
            shared.forget_user_live(user);
        }
        notices.push(Notice::Forgot);
    }
    let mut items_changed = Vec::new();
    for plan in plans {
        match plan {
            Plan::Write(Change::DeleteEventsBefore(_)) if committed.report.events_deleted > 0 => {
                shared.reload_live();
                notices.push(Notice::Reload);
            }
            Plan::Write(Change::Items(items)) => {
                shared.absorb_items(items);
                if replicator.is_some() {
                    items_changed.extend(items.iter().filter_map(|i| {
                        shared
                            .store
                            .item_id(&i.external_id)
                            .ok()
                            .flatten()
                            .map(|id| id.0)
                    }));
                }
            }
            Plan::Write(Change::DeleteItem(id)) if committed.report.items_deleted > 0 => {
                if replicator.is_some()
                    && let Ok(Some(item)) = shared.store.item_id(id)
                {
                    items_changed.push(item.0);
                }
                shared.forget_item(id);
            }
            _ => {}
        }
    }
    if !items_changed.is_empty() {
        notices.push(Notice::Items(items_changed));
    }
    if let Some(r) = replicator {
        for notice in notices {
            r.notice(notice);
        }
    }
}

/// What one change of a committed group came to; events written are counted.
fn reply_to(shared: &Shared, plan: Plan<'_>, report: WriteReport) -> Result<Outcome> {
    match plan {
        Plan::Write(Change::Events { events, .. }) => {
            shared.counters.events_ingested.inc_by(events.len() as u64);
            Ok(Outcome::Written(WriteReport {
                events_added: events.len(),
                ..report
            }))
        }
        Plan::Write(_) => Ok(Outcome::Written(report)),
        Plan::Replay(answer) => Ok(Outcome::Replayed(answer)),
        Plan::Refuse(e) => Err(e),
    }
}

/// The dense ids of the users a group forgets, read before the commit removes their names.
fn to_forget(shared: &Shared, changes: &[&Change]) -> Vec<u32> {
    changes
        .iter()
        .filter_map(|c| match c {
            Change::ForgetUser(id) => shared.store.user_id(id).ok().flatten().map(|u| u.0),
            _ => None,
        })
        .collect()
}

/// The size of a change that shares a commit with others, or None for one that commits alone.
fn groupable(change: &Change) -> Option<usize> {
    match change {
        Change::Events { events, .. } => Some(events.len()),
        Change::Impressions => Some(0),
        _ => None,
    }
}

/// Commits the impressions waiting, if any, on their own (no events arrived to carry them).
fn flush_impressions(shared: &Shared) {
    if shared.impressions.len() == 0 {
        return;
    }
    if let Err(e) = commit(shared, &[], None) {
        tracing::error!(error = %e, "logging impressions failed; these lists are not logged");
    }
}

fn run(shared: &Shared, receiver: &Receiver<(Change, Option<Reply>)>) {
    let mut carried: Option<(Change, Option<Reply>)> = None;
    let mut last_prune: Option<Instant> = None;
    loop {
        let first = match carried.take() {
            Some(next) => next,
            None => match receiver.recv_timeout(IMPRESSION_FLUSH) {
                Ok(next) => next,
                Err(RecvTimeoutError::Timeout) => {
                    flush_impressions(shared);
                    continue;
                }
                Err(RecvTimeoutError::Disconnected) => {
                    // Stopping: what was served is logged before the thread ends.
                    flush_impressions(shared);
                    return;
                }
            },
        };
        let mut group = vec![first];
        if let Some(mut n) = groupable(&group[0].0) {
            // Take the events and impressions already waiting, up to a bound, into the same
            // commit. Catalogue and user changes commit alone, so each gets its own report.
            while n < MAX_GROUP {
                match receiver.try_recv() {
                    Ok(next) => match groupable(&next.0) {
                        Some(size) => {
                            n += size;
                            group.push(next);
                        }
                        _ => {
                            carried = Some(next);
                            break;
                        }
                    },
                    Err(_) => break,
                }
            }
        }
        let prune_before = last_prune
            .is_none_or(|t| t.elapsed() >= PRUNE_EVERY)
            .then(|| crate::now_ms() - KEY_RETENTION.as_millis() as i64);
        let changes: Vec<&Change> = group.iter().map(|(c, _)| c).collect();
        let plans = plan(shared.store.as_ref(), &changes);
        let forgotten = to_forget(shared, &changes);
        let outcome = commit(shared, &plans, prune_before);
        match outcome {
            Ok(committed) => {
                if prune_before.is_some() {
                    last_prune = Some(Instant::now());
                }
                apply(shared, &plans, &committed, &forgotten);
                let replies: Vec<Result<Outcome>> = plans
                    .into_iter()
                    .map(|p| reply_to(shared, p, committed.report))
                    .collect();
                for ((_, reply), result) in group.into_iter().zip(replies) {
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            }
            Err(_) if group.len() > 1 => {
                // One bad request must not fail the others: put them back one by one.
                drop(plans);
                for (change, reply) in group {
                    let single = [&change];
                    let plans = plan(shared.store.as_ref(), &single);
                    let forgotten = to_forget(shared, &single);
                    let result = match commit(shared, &plans, None) {
                        Ok(committed) => {
                            apply(shared, &plans, &committed, &forgotten);
                            let single = plans.into_iter().next();
                            single.map_or(Ok(Outcome::Written(committed.report)), |p| {
                                reply_to(shared, p, committed.report)
                            })
                        }
                        Err(e) => Err(EngineError::storing(&e)),
                    };
                    if let Some(reply) = reply {
                        let _ = reply.send(result);
                    }
                }
            }
            Err(e) => {
                let error = EngineError::storing(&e);
                for (_, reply) in group {
                    if let Some(reply) = reply {
                        let _ = reply.send(Err(error.clone()));
                    }
                }
            }
        }
    }
}
