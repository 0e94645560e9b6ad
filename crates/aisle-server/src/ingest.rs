//! The single writer: every change to the store goes through one thread, and events sent
//! at about the same time share one durable commit (group commit), so acknowledging an event
//! only after its commit costs one disk flush per batch rather than per request.
//!
//! The queue in front of the writer is bounded: when it is full a write is refused at once
//! ([`WriteError::Busy`], answered 503 with `Retry-After`) instead of memory growing with a
//! flood of requests.

use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;

use aisle_core::{Item, RawEvent, User};
use aisle_store::{Store, WriteReport};
use tokio::sync::oneshot;

/// Most events one commit takes before it acknowledges.
const MAX_GROUP: usize = 20_000;

/// A change for the writer.
pub enum Change {
    /// Events, validated by the caller.
    Events(Vec<RawEvent>),
    /// Items to create or replace.
    Items(Vec<Item>),
    /// Users to create or replace.
    Users(Vec<User>),
    /// An item to take out of the catalogue (external id).
    DeleteItem(String),
    /// A user to forget (external id).
    ForgetUser(String),
}

type Reply = oneshot::Sender<Result<WriteReport, String>>;

/// Why a change was not applied.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The queue is full: try again shortly.
    #[error("the write queue is full; retry shortly")]
    Busy,
    /// The server is stopping.
    #[error("the server is shutting down")]
    Stopped,
    /// The commit failed.
    #[error("{0}")]
    Failed(String),
}

/// The sending side; cloning it is cheap.
#[derive(Clone)]
pub struct Writer {
    sender: SyncSender<(Change, Reply)>,
}

/// The writer thread, joined on shutdown after the last sender is gone.
pub struct WriterThread(Option<JoinHandle<()>>);

impl WriterThread {
    /// Waits for every queued change to be committed.
    pub fn join(mut self) {
        if let Some(handle) = self.0.take() {
            let _ = handle.join();
        }
    }
}

/// Starts the writer over `store`, with room for `queue` waiting changes.
pub fn start(store: Arc<dyn Store>, queue: usize) -> (Writer, WriterThread) {
    let (sender, receiver) = sync_channel(queue.max(1));
    let handle = std::thread::Builder::new()
        .name("aisle-writer".into())
        .spawn(move || run(store.as_ref(), &receiver))
        .expect("the OS can start a thread");
    (Writer { sender }, WriterThread(Some(handle)))
}

impl Writer {
    /// Queues `change` without waiting for it (for the search log, which nobody awaits);
    /// false when the queue was full and the change was dropped.
    pub fn submit(&self, change: Change) -> bool {
        let (reply, _) = oneshot::channel();
        self.sender.try_send((change, reply)).is_ok()
    }

    /// Applies `change` and waits until it is durable.
    pub async fn apply(&self, change: Change) -> Result<WriteReport, WriteError> {
        let (reply, answer) = oneshot::channel();
        self.sender.try_send((change, reply)).map_err(|e| match e {
            TrySendError::Full(_) => WriteError::Busy,
            TrySendError::Disconnected(_) => WriteError::Stopped,
        })?;
        answer
            .await
            .map_err(|_| WriteError::Failed("the writer stopped before committing".into()))?
            .map_err(WriteError::Failed)
    }
}

fn commit(store: &dyn Store, changes: &[&Change]) -> Result<WriteReport, String> {
    let mut writer = store.writer().map_err(|e| e.to_string())?;
    for change in changes {
        match change {
            Change::Events(events) => {
                // Each request is a batch of its own: a retry sharing this commit with the
                // request it repeats is stored once.
                writer.start_batch();
                for e in events {
                    writer.add_event(e).map_err(|e| e.to_string())?;
                }
            }
            Change::Items(items) => {
                for item in items {
                    writer
                        .upsert_item(item.clone())
                        .map_err(|e| e.to_string())?;
                }
            }
            Change::Users(users) => {
                for user in users {
                    writer
                        .upsert_user(user.clone())
                        .map_err(|e| e.to_string())?;
                }
            }
            Change::DeleteItem(id) => {
                writer.delete_item(id).map_err(|e| e.to_string())?;
            }
            Change::ForgetUser(id) => {
                writer.forget_user(id).map_err(|e| e.to_string())?;
            }
        }
    }
    writer.commit().map_err(|e| e.to_string())
}

fn run(store: &dyn Store, receiver: &Receiver<(Change, Reply)>) {
    let mut carried: Option<(Change, Reply)> = None;
    loop {
        let first = match carried.take() {
            Some(next) => next,
            None => match receiver.recv() {
                Ok(next) => next,
                Err(_) => return,
            },
        };
        let Change::Events(first_events) = &first.0 else {
            // Catalogue and user changes commit alone, so each gets its own report.
            let (change, reply) = first;
            let _ = reply.send(commit(store, &[&change]));
            continue;
        };
        // Take the events already waiting, up to a bound, into the same commit.
        let mut events = first_events.len();
        let mut group = vec![first];
        while events < MAX_GROUP {
            match receiver.try_recv() {
                Ok(next) => match &next.0 {
                    Change::Events(e) => {
                        events += e.len();
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
        let changes: Vec<&Change> = group.iter().map(|(c, _)| c).collect();
        match commit(store, &changes) {
            Ok(report) => {
                for (change, reply) in group {
                    let accepted = match &change {
                        Change::Events(e) => e.len(),
                        _ => 0,
                    };
                    let _ = reply.send(Ok(WriteReport {
                        events_added: accepted,
                        ..report
                    }));
                }
            }
            Err(_) if group.len() > 1 => {
                // One bad request must not fail the others: retry each alone.
                for (change, reply) in group {
                    let _ = reply.send(commit(store, &[&change]));
                }
            }
            Err(e) => {
                for (_, reply) in group {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}
