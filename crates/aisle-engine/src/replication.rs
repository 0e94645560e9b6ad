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
//! One limit: two identical events of one request (two purchases of the same item in the
//! same millisecond) are two occurrences in the store, and a replica that hears of them
//! from the stream keeps one.

use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use aisle_core::Event;
use aisle_features::Interaction;
use aisle_stream::{EventStream, Following, StreamedEvent};

use crate::Shared;

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

/// The engine's side of replication: the queue to the publisher, and the subscription.
pub(crate) struct Replicator {
    queue: SyncSender<Vec<(u128, Event)>>,
    _following: Following,
}

impl Replicator {
    /// Hands a commit's events to the publisher; when its queue is full they wait in the
    /// outbox for the next sweep.
    pub fn committed(&self, keys: &[u128], events: &[Event]) {
        if keys.is_empty() {
            return;
        }
        let batch = keys.iter().copied().zip(events.iter().cloned()).collect();
        if let Err(TrySendError::Full(_)) = self.queue.try_send(batch) {
            tracing::warn!("the publisher is behind; these events wait in the outbox");
        }
    }
}

/// Starts the publisher and the subscription. `after` is the stream's last sequence, read
/// before the live state was loaded.
pub(crate) fn start(
    replication: &Replication,
    shared: &Arc<Shared>,
    after: u64,
) -> crate::Result<Replicator> {
    let (queue, incoming) = std::sync::mpsc::sync_channel(QUEUE);
    let (stream, me) = (replication.stream.clone(), replication.replica.clone());
    let weak = Arc::downgrade(shared);
    std::thread::Builder::new()
        .name("aisle-publisher".into())
        .spawn(move || publish(&stream, &me, &weak, &incoming))
        .map_err(|e| crate::EngineError::internal("starting the publisher", e))?;
    let (me, weak) = (replication.replica.clone(), Arc::downgrade(shared));
    let following = replication
        .stream
        .follow(after, move |delivered| follow(&me, &weak, delivered))
        .map_err(|e| crate::EngineError::internal("following the event stream", e))?;
    Ok(Replicator {
        queue,
        _following: following,
    })
}

fn publish(
    stream: &EventStream,
    me: &str,
    shared: &Weak<Shared>,
    incoming: &Receiver<Vec<(u128, Event)>>,
) {
    let mut last_sweep: Option<Instant> = None;
    loop {
        match incoming.recv_timeout(SWEEP_EVERY) {
            Ok(batch) => {
                let Some(shared) = shared.upgrade() else {
                    return;
                };
                let keys: Vec<u128> = batch.iter().map(|b| b.0).collect();
                match stream.publish(me, &batch) {
                    Ok(()) => {
                        if let Err(e) = shared.store.mark_published(&keys) {
                            tracing::warn!(error = %e, "clearing the outbox failed; the next sweep republishes");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "publishing to the stream failed; the outbox keeps the events")
                    }
                }
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => return,
        }
        if last_sweep.is_none_or(|t| t.elapsed() >= SWEEP_EVERY) {
            let Some(shared) = shared.upgrade() else {
                return;
            };
            sweep(stream, me, &shared);
            last_sweep = Some(Instant::now());
        }
    }
}

/// Republishes what the outbox holds until it is empty or the stream fails.
fn sweep(stream: &EventStream, me: &str, shared: &Shared) {
    loop {
        let waiting = match shared.store.unpublished(SWEEP_BATCH) {
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
            .publish(&format!("outbox:{me}"), &waiting)
            .map_err(|e| e.to_string())
            .and_then(|()| {
                shared
                    .store
                    .mark_published(&keys)
                    .map_err(|e| e.to_string())
            })
        {
            tracing::warn!(error = %e, "republishing the outbox failed; the next sweep retries");
            return;
        }
        if waiting.len() < SWEEP_BATCH {
            return;
        }
    }
}

fn follow(me: &str, shared: &Weak<Shared>, delivered: aisle_stream::Result<StreamedEvent>) {
    let Some(shared) = shared.upgrade() else {
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
    let seen = {
        let live = crate::read(&shared.live);
        holds(&live, &Interaction::of(&streamed.event))
    };
    if !seen {
        shared.counters.events_replicated.inc();
        let events = [streamed.event];
        shared.absorb(&events);
        shared.online.absorb(&events);
    }
}

/// Whether the live state already holds this event (the store stores an event sent twice
/// once, so the live state must too).
fn holds(live: &crate::Live, e: &Interaction) -> bool {
    live.by_user
        .get(e.user as usize)
        .is_some_and(|positions| positions.iter().any(|&p| live.events[p as usize] == *e))
}
