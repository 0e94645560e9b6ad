//! Replicas over one system of record: what each engine tells the others, and how it hears
//! them.
//!
//! An engine configured with a [`Replication`] (a shared store such as PostgreSQL, and a
//! JetStream stream) keeps its live state in step with what every replica commits:
//!
//! - **Outgoing.** The store writes the key of every event it commits into its outbox in the
//!   same transaction. After the commit the writer hands the committed events to the
//!   publisher thread (without waiting: the client is acknowledged on the commit alone),
//!   which publishes them under their keys and then clears them from the outbox. Every
//!   [`SWEEP_EVERY`] the publisher also republishes whatever the outbox still holds (a
//!   publication that failed while the stream was down, or the events of a replica that
//!   crashed between its commit and its publication); the stream drops keys it already has.
//! - **Incoming.** Before the live state is loaded from the store the engine notes the
//!   stream's last sequence, then follows the stream from there. An event committed by
//!   another replica is added to the live state unless the live state already holds it: one
//!   committed between that sequence and the load, or one delivered twice. Events this
//!   replica published itself are skipped (the writer added them at its commit); what a
//!   sweep republishes is checked like any other replica's, since the outbox may hold the
//!   events of a replica that crashed.
//!
//! - **Changes that are not events** go out as notices ([`Notice`]): users forgotten,
//!   items changed or deleted, events expired by retention. A notice says only what to read
//!   again from the database, and every [`SWEEP_EVERY`] each replica also drops whoever the
//!   database says was forgotten, so a lost notice delays a forget by at most that long.
//!
//! One limit: two identical events of one request (two purchases of the same item in the
//! same millisecond) are two occurrences in the store, and a replica that hears of them
//! from the stream keeps one.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use aisle_core::Event;
use aisle_features::Interaction;
use aisle_stream::{EventStream, Following, Message, Notice, Streamed};

use crate::Engine;

/// How often the publisher republishes what the outbox still holds.
pub const SWEEP_EVERY: Duration = Duration::from_secs(5);
/// Committed batches that may wait for the publisher; past that the outbox keeps them.
const QUEUE: usize = 4_096;
/// Outbox entries republished per sweep step.
const SWEEP_BATCH: usize = 1_000;

/// How an engine joins a set of replicas.
#[derive(Clone)]
pub struct Replication {
    /// The stream the replicas share.
    pub stream: Arc<EventStream>,
    /// This replica's name, unique among the replicas (messages carry it as their origin).
    pub replica: String,
}

impl std::fmt::Debug for Replication {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replication")
            .field("replica", &self.replica)
            .finish_non_exhaustive()
    }
}

/// What the writer hands the publisher.
enum Outgoing {
    /// A commit's number and events.
    Events(u64, Vec<(u128, Event)>),
    Notice(Notice),
}

/// The engine's side of replication: the queue to the publisher, and the subscription.
pub(crate) struct Replicator {
    queue: SyncSender<Outgoing>,
    _following: Following,
}

impl Replicator {
    /// Hands a commit's events to the publisher; when its queue is full they wait in the
    /// outbox for the next sweep.
    pub fn committed(&self, commit: u64, keys: &[u128], events: &[Event]) {
        if keys.is_empty() {
            return;
        }
        let batch = keys.iter().copied().zip(events.iter().cloned()).collect();
        if let Err(TrySendError::Full(_)) = self.queue.try_send(Outgoing::Events(commit, batch)) {
            tracing::warn!("the publisher is behind; these events wait in the outbox");
        }
    }

    /// Hands a notice to the publisher. A notice that is lost (a full queue, a crash) is
    /// made good by the replicas' periodic checks of the database ([`SWEEP_EVERY`]).
    pub fn notice(&self, notice: Notice) {
        if let Err(TrySendError::Full(_)) = self.queue.try_send(Outgoing::Notice(notice)) {
            tracing::warn!("the publisher is behind; a notice waits for the periodic check");
        }
    }
}

/// Starts the publisher and the subscription. `after` is the stream's last sequence, read
/// before the live state was loaded.
pub(crate) fn start(
    replication: &Replication,
    engine: &Arc<Engine>,
    after: u64,
) -> crate::Result<Replicator> {
    let (queue, incoming) = std::sync::mpsc::sync_channel(QUEUE);
    let (stream, me) = (replication.stream.clone(), replication.replica.clone());
    let weak = Arc::downgrade(engine);
    std::thread::Builder::new()
        .name("aisle-publisher".into())
        .spawn(move || publish(&stream, &me, &weak, &incoming))
        .map_err(|e| crate::EngineError::internal("starting the publisher", e))?;
    let (me, weak) = (replication.replica.clone(), Arc::downgrade(engine));
    let following = replication
        .stream
        .follow(after, move |delivered| follow(&me, &weak, delivered))
        .map_err(|e| crate::EngineError::internal("following the event stream", e))?;
    Ok(Replicator {
        queue,
        _following: following,
    })
}

fn publish(stream: &EventStream, me: &str, engine: &Weak<Engine>, incoming: &Receiver<Outgoing>) {
    let mut last_sweep: Option<Instant> = None;
    loop {
        match incoming.recv_timeout(SWEEP_EVERY) {
            Ok(Outgoing::Events(commit, batch)) => {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                let keys: Vec<u128> = batch.iter().map(|b| b.0).collect();
                match stream.publish(me, &batch, Some(commit)) {
                    Ok(()) => {
                        if let Err(e) = engine.shared.store.mark_published(&keys) {
                            tracing::warn!(error = %e, "clearing the outbox failed; the next sweep republishes");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "publishing to the stream failed; the outbox keeps the events")
                    }
                }
            }
            Ok(Outgoing::Notice(notice)) => {
                if let Err(e) = stream.publish_notice(me, &notice) {
                    tracing::warn!(error = %e, "publishing a notice failed; the replicas' periodic check covers it");
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            sweep(stream, me, &engine);
            // Forgets whose notice never came (lost with a crashed replica).
            engine.sync_forgets();
            last_sweep = Some(Instant::now());
        }
    }
}

/// Republishes what the outbox holds until it is empty or the stream fails.
fn sweep(stream: &EventStream, me: &str, engine: &Engine) {
    let store = &engine.shared.store;
    loop {
        let waiting = match store.unpublished(SWEEP_BATCH) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "reading the outbox failed");
                return;
            }
        };
        if waiting.is_empty() {
            return;
        }
        let keys: Vec<u128> = waiting.iter().map(|w| w.0).collect();
        // Not under this replica's own name: the outbox may hold another replica's events
        // (one that crashed before publishing), which this replica must apply too.
        if let Err(e) = stream
            .publish(&format!("outbox:{me}"), &waiting, None)
            .map_err(|e| e.to_string())
            .and_then(|()| store.mark_published(&keys).map_err(|e| e.to_string()))
        {
            tracing::warn!(error = %e, "republishing the outbox failed; the next sweep retries");
            return;
        }
        if waiting.len() < SWEEP_BATCH {
            return;
        }
    }
}

fn follow(me: &str, engine: &Weak<Engine>, delivered: aisle_stream::Result<Streamed>) {
    let Some(engine) = engine.upgrade() else {
        return;
    };
    let streamed = match delivered {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(error = %e, "reading the event stream");
            return;
        }
    };
    if streamed.origin == me {
        return;
    }
    let shared = &engine.shared;
    match streamed.message {
        Message::Event(event) => {
            let seen = {
                let live = crate::read(&shared.live);
                holds(&live, &Interaction::of(&event))
            };
            if !seen {
                shared.counters.events_replicated.inc();
                let events = [event];
                shared.absorb(&events);
                shared.online.absorb(&events);
            }
            // The last message of a commit carries its number: everything of that commit,
            // and of the replica's earlier ones, is applied now.
            if let Some(commit) = streamed.commit {
                let mut applied = shared
                    .applied_from
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                let latest = applied.entry(streamed.origin.clone()).or_insert(0);
                *latest = (*latest).max(commit);
            }
        }
        Message::Notice(Notice::Forgot) => {
            engine.sync_forgets();
        }
        Message::Notice(Notice::Items(ids)) => {
            let mut present = Vec::new();
            for id in ids {
                let id = aisle_core::ItemId(id);
                match shared.store.item(id) {
                    Ok(Some(item)) => present.push(item),
                    Ok(None) => shared.forget_item_id(id),
                    Err(e) => tracing::warn!(error = %e, "reading a changed item"),
                }
            }
            shared.absorb_items(&present);
        }
        Message::Notice(Notice::Reload) => shared.reload_live(),
    }
}

/// Whether the live state already holds this event (the store stores an event sent twice
/// once, so the live state must too).
fn holds(live: &crate::Live, e: &Interaction) -> bool {
    live.by_user
        .get(e.user as usize)
        .is_some_and(|positions| positions.iter().any(|&p| live.events[p as usize] == *e))
}
