//! The replay log between aisle replicas: every event a replica commits to the system of
//! record (PostgreSQL) is published, after the commit, to a NATS JetStream stream, and every
//! replica follows the stream to keep its live state up to date with what the others stored.
//!
//! The stream is never the truth. A client is acknowledged on the database's commit alone
//! (JetStream does not fsync each message by default, and public tests have shown it losing
//! acknowledged writes); the stream only carries news of commits. Each message's
//! `Nats-Msg-Id` is the event's store key, so a republished event (after a crash, from the
//! store's outbox) is dropped by the server inside its deduplication window
//! ([`DUPLICATE_WINDOW`]), and a replica that reads a message twice recognises it by the
//! same key.
//!
//! Calls are synchronous, like the store's: the client runs on a private one-thread tokio
//! runtime, and a call waits for its answer on a channel, so it may be made from any thread
//! (an async worker included).

use std::future::Future;
use std::time::Duration;

use aisle_core::{Event, EventKind, EventPayload, ItemId, SessionId, UserId};
use async_nats::jetstream;
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// How long the server remembers a message id to drop a republished copy. The store's
/// outbox republishes what was not confirmed well within it.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(2 * 3600);
/// The header naming the replica that published a message.
const ORIGIN: &str = "Aisle-Origin";
/// The header of a commit's last message: the publishing replica's number for the commit.
const COMMIT: &str = "Aisle-Commit";

/// Errors of the stream.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server could not be reached or refused.
    #[error("NATS at {place}: {reason}")]
    Nats {
        /// The server.
        place: String,
        /// What went wrong.
        reason: String,
    },
    /// A message on the stream does not decode.
    #[error("a message on the stream (sequence {seq}) does not decode: {reason}")]
    Corrupt {
        /// Its stream sequence.
        seq: u64,
        /// Decoder message.
        reason: String,
    },
}

/// Result with the stream's error.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A message read from the stream.
#[derive(Clone, Debug, PartialEq)]
pub struct Streamed {
    /// Its sequence in the stream.
    pub seq: u64,
    /// The replica that published it.
    pub origin: String,
    /// The event's key in the store (0 for a notice).
    pub key: u128,
    /// On the last message of a commit: the publisher's number for that commit.
    pub commit: Option<u64>,
    /// What it says.
    pub message: Message,
}

/// What a message on the stream says.
#[derive(Clone, Debug, PartialEq)]
pub enum Message {
    /// An event was committed, with the dense ids the system of record gave it.
    Event(Event),
    /// A change that is not an event; the database holds its details.
    Notice(Notice),
}

/// A change other replicas must apply that is not an event. Each says only what to look at
/// again in the database, so a lost notice is made good by the next periodic check.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Notice {
    /// Users were forgotten: drop whoever the database no longer knows.
    Forgot,
    /// These items' records changed or were deleted (dense ids).
    Items(Vec<u32>),
    /// Events were deleted by retention: reload the live state.
    Reload,
}

/// A message on the wire (postcard).
#[derive(Serialize, Deserialize)]
enum Wire {
    Event(WireEvent),
    Notice(Notice),
}

/// An event on the wire.
#[derive(Serialize, Deserialize)]
struct WireEvent {
    user: u32,
    item: Option<u32>,
    kind: EventKind,
    timestamp_ms: i64,
    session: Option<u64>,
    payload: EventPayload,
}

fn encode(wire: &Wire) -> Vec<u8> {
    postcard::to_stdvec(wire).expect("postcard encodes plain structs into a Vec without failing")
}

fn wire_event(e: &Event) -> Wire {
    Wire::Event(WireEvent {
        user: e.user.0,
        item: e.item.map(|i| i.0),
        kind: e.kind,
        timestamp_ms: e.timestamp_ms,
        session: e.session.map(|s| s.0),
        payload: e.payload.clone(),
    })
}

fn decode(seq: u64, bytes: &[u8]) -> Result<Message> {
    let wire: Wire = postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        seq,
        reason: e.to_string(),
    })?;
    Ok(match wire {
        Wire::Event(w) => Message::Event(Event {
            user: UserId(w.user),
            item: w.item.map(ItemId),
            kind: w.kind,
            timestamp_ms: w.timestamp_ms,
            session: w.session.map(SessionId),
            payload: w.payload,
        }),
        Wire::Notice(n) => Message::Notice(n),
    })
}

/// A message to publish.
struct Outbound {
    id: String,
    body: Vec<u8>,
    commit: Option<u64>,
}

/// A JetStream stream of committed events.
pub struct EventStream {
    runtime: Option<tokio::runtime::Runtime>,
    context: jetstream::Context,
    name: String,
    subject: String,
    place: String,
}

impl EventStream {
    /// Connects to the NATS server at `url` and opens (creating it when missing) the stream
    /// `name`, whose subject is `name` in lower case with dots for underscores.
    pub fn connect(url: &str, name: &str) -> Result<Self> {
        let place = url.to_string();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aisle-stream")
            .enable_all()
            .build()
            .map_err(|e| Error::Nats {
                place: place.clone(),
                reason: e.to_string(),
            })?;
        let subject = name.to_lowercase().replace('_', ".");
        let (url_owned, name_owned, subject_owned) =
            (url.to_string(), name.to_string(), subject.clone());
        let context = run(&runtime, &place, async move {
            let client = async_nats::ConnectOptions::new()
                .connection_timeout(Duration::from_secs(5))
                .connect(url_owned)
                .await
                .map_err(|e| e.to_string())?;
            let context = jetstream::new(client);
            context
                .get_or_create_stream(jetstream::stream::Config {
                    name: name_owned,
                    subjects: vec![subject_owned],
                    duplicate_window: DUPLICATE_WINDOW,
                    storage: jetstream::stream::StorageType::File,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            Ok(context)
        })?;
        Ok(Self {
            runtime: Some(runtime),
            context,
            name: name.to_string(),
            subject,
            place,
        })
    }

    fn runtime(&self) -> &tokio::runtime::Runtime {
        self.runtime.as_ref().expect("the runtime lives until drop")
    }

    /// Publishes committed events under their store keys and waits until the server has
    /// stored (or, for a key seen inside the window, dropped) each one.
    /// With a `commit` number, the last message carries it: a follower that reaches it has
    /// every event of the commit.
    pub fn publish(
        &self,
        origin: &str,
        events: &[(u128, Event)],
        commit: Option<u64>,
    ) -> Result<()> {
        if events.is_empty() {
            return Ok(());
        }
        let last = events.len() - 1;
        let messages: Vec<Outbound> = events
            .iter()
            .enumerate()
            .map(|(i, (key, e))| Outbound {
                id: format!("{key:032x}"),
                body: encode(&wire_event(e)),
                commit: commit.filter(|_| i == last),
            })
            .collect();
        self.send(origin, messages)
    }

    /// Publishes a notice (no deduplication: applying one twice is harmless).
    pub fn publish_notice(&self, origin: &str, notice: &Notice) -> Result<()> {
        let id = format!("notice-{:016x}{:016x}", std::process::id(), next_notice());
        self.send(
            origin,
            vec![Outbound {
                id,
                body: encode(&Wire::Notice(notice.clone())),
                commit: None,
            }],
        )
    }

    fn send(&self, origin: &str, messages: Vec<Outbound>) -> Result<()> {
        let (context, subject, origin) = (
            self.context.clone(),
            self.subject.clone(),
            origin.to_string(),
        );
        run(self.runtime(), &self.place, async move {
            // Sent one after another without waiting, then every acknowledgement awaited.
            let mut acks = Vec::with_capacity(messages.len());
            for m in messages {
                let mut headers = async_nats::HeaderMap::new();
                headers.insert("Nats-Msg-Id", m.id.as_str());
                headers.insert(ORIGIN, origin.as_str());
                if let Some(commit) = m.commit {
                    headers.insert(COMMIT, commit.to_string().as_str());
                }
                let ack = context
                    .publish_with_headers(subject.clone(), headers, m.body.into())
                    .await
                    .map_err(|e| e.to_string())?;
                acks.push(ack);
            }
            for ack in acks {
                ack.await.map_err(|e| e.to_string())?;
            }
            Ok(())
        })
    }

    /// Deletes the stream and everything on it (for tests and for resetting a cluster).
    pub fn delete(&self) -> Result<()> {
        let (context, name) = (self.context.clone(), self.name.clone());
        run(self.runtime(), &self.place, async move {
            context
                .delete_stream(name)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string())
        })
    }

    /// The sequence of the stream's last message (0 when it is empty).
    pub fn last_seq(&self) -> Result<u64> {
        let (context, name) = (self.context.clone(), self.name.clone());
        run(self.runtime(), &self.place, async move {
            let mut stream = context.get_stream(name).await.map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            Ok(info.state.last_sequence)
        })
    }

    /// Delivers every message after sequence `after`, in order, as it arrives, to `deliver`
    /// (on the stream's thread), until the returned [`Following`] is dropped. The consumer is
    /// an ordered, ephemeral one; when it fails or ends (the server restarted) a new one
    /// starts after the last message delivered, so nothing is skipped, and a message that
    /// comes twice is for the caller to recognise (by its key).
    pub fn follow(
        &self,
        after: u64,
        mut deliver: impl FnMut(Result<Streamed>) + Send + 'static,
    ) -> Result<Following> {
        let (context, name) = (self.context.clone(), self.name.clone());
        // The first consumer is made here, so that a stream that cannot be followed is an
        // error to the caller rather than a retry loop.
        let first = {
            let (context, name) = (context.clone(), name.clone());
            run(self.runtime(), &self.place, async move {
                ordered_from(&context, &name, after + 1).await
            })?
        };
        let task = self.runtime().spawn(async move {
            let mut next = after + 1;
            let mut messages = Some(first);
            loop {
                let mut current = match messages.take() {
                    Some(m) => m,
                    None => match ordered_from(&context, &name, next).await {
                        Ok(m) => m,
                        Err(reason) => {
                            deliver(Err(Error::Nats {
                                place: "the stream".into(),
                                reason: format!("following again from {next}: {reason}"),
                            }));
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            continue;
                        }
                    },
                };
                while let Some(item) = current.next().await {
                    let message = match item {
                        Ok(m) => m,
                        Err(e) => {
                            deliver(Err(Error::Nats {
                                place: "the stream".into(),
                                reason: e.to_string(),
                            }));
                            break;
                        }
                    };
                    let seq = message.info().map(|i| i.stream_sequence).unwrap_or(0);
                    if seq != 0 && seq < next {
                        continue; // already delivered before a restart of the consumer
                    }
                    next = seq.max(next - 1) + 1;
                    let header = |name: &str| {
                        message
                            .headers
                            .as_ref()
                            .and_then(|h| h.get(name))
                            .map(|v| v.as_str().to_string())
                    };
                    let origin = header(ORIGIN).unwrap_or_default();
                    let key = header("Nats-Msg-Id")
                        .and_then(|k| u128::from_str_radix(&k, 16).ok())
                        .unwrap_or(0);
                    let commit = header(COMMIT).and_then(|c| c.parse().ok());
                    deliver(decode(seq, &message.payload).map(|message| Streamed {
                        seq,
                        origin,
                        key,
                        commit,
                        message,
                    }));
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Ok(Following { task })
    }
}

/// An ordered consumer's messages from sequence `start` on.
async fn ordered_from(
    context: &jetstream::Context,
    name: &str,
    start: u64,
) -> std::result::Result<jetstream::consumer::pull::Ordered, String> {
    let stream = context.get_stream(name).await.map_err(|e| e.to_string())?;
    let consumer = stream
        .create_consumer(jetstream::consumer::pull::OrderedConfig {
            deliver_policy: jetstream::consumer::DeliverPolicy::ByStartSequence {
                start_sequence: start,
            },
            ..Default::default()
        })
        .await
        .map_err(|e| e.to_string())?;
    consumer.messages().await.map_err(|e| e.to_string())
}

impl Drop for EventStream {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A subscription made by [`EventStream::follow`]; dropping it stops the deliveries.
pub struct Following {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Following {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A number no other notice of this process has had.
fn next_notice() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    nanos ^ NEXT.fetch_add(1, Ordering::Relaxed).rotate_left(48)
}

/// Runs a future on the stream's runtime and waits for it on this thread.
fn run<T: Send + 'static>(
    runtime: &tokio::runtime::Runtime,
    place: &str,
    work: impl Future<Output = std::result::Result<T, String>> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime.spawn(async move {
        let _ = tx.send(work.await);
    });
    rx.recv()
        .map_err(|_| "the stream's runtime stopped".to_string())
        .and_then(|r| r)
        .map_err(|reason| Error::Nats {
            place: place.to_string(),
            reason,
        })
}
