//! The PostgreSQL store, for a shop that runs several aisle processes over one system of record
//! (`postgres://…` or `postgresql://…` in [`crate::open`]; the `postgres` feature).
//!
//! It keeps the embedded store's semantics exactly (the conformance suite runs unchanged on
//! both) and moves the parts that must be shared into the database:
//!
//! - **One writer at a time across processes.** A writer's transaction starts by locking the
//!   one row of `aisle_state` (`SELECT … FOR UPDATE`), so writers of different processes
//!   queue on the database as writers of one process queue on a mutex. Under that lock the
//!   writer first reads the ids that other processes created since it last looked, so dense
//!   ids are assigned in one sequence, without gaps or collisions, whoever writes.
//! - **Acknowledged means committed.** Everything a writer staged is written inside that
//!   transaction and made durable by PostgreSQL's `COMMIT` (with the server's
//!   `synchronous_commit`, on by default); a commit that fails or whose answer is lost
//!   returns an error, so nothing is acknowledged that might not be stored, and a retry is
//!   deduplicated by the event's key.
//! - **Events keyed as aisle keys them**: `(timestamp, fingerprint)`, inserted with
//!   `ON CONFLICT DO NOTHING`, so a retried write is stored once; idempotency records go in
//!   the same transaction. Large writes (imports) go through binary `COPY` into a temporary
//!   table, small ones (a request) through one `INSERT … SELECT FROM unnest(…)`.
//! - **Events partitioned by calendar month** (UTC) of their timestamp, so retention drops
//!   whole months instead of deleting row by row; times outside years 1900-2999 go to a
//!   default partition.
//!
//! Records (users, items, events, impressions) are stored in the same postcard encoding as in
//! the embedded store, beside the columns that queries need (`ts`, `user_id`, `at_ms`).
//!
//! Why tokio-postgres with a runtime of our own and `futures_executor::block_on`, and not the
//! synchronous `postgres` crate: the store is called from the engine's threads and, for
//! cheap reads, from the HTTP server's async workers, where the `postgres` crate's
//! `Runtime::block_on` panics. Here the connections are driven by a private one-thread tokio
//! runtime, and a call only waits for its answer, from any thread.
//!
//! Connections: reads share one connection (statements are pipelined); a scan, a snapshot and
//! the writer each use their own, since each holds its connection for a long time. A closed
//! connection (the server restarted) is replaced at the next call.

use std::collections::BTreeSet;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::Duration;

use aisle_core::{Event, Impression, Item, ItemId, RawEvent, User, UserId};
use chrono::{Datelike, TimeZone, Utc};
use futures_util::{StreamExt, pin_mut};
use rustc_hash::FxHashSet as HashSet;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, NoTls};

use crate::staging::{
    Catalog, SharedCatalog, Staging, decode, decode_event, encode, event_user, forgotten_key,
};
use crate::{Error, ReadStore, Result, Store, StoreCounts, StoreWriter};

/// Version of the tables' layout; a database of another version is refused.
const FORMAT_VERSION: i64 = 1;
/// Writes of at least this many events go through `COPY`; smaller ones through one `INSERT`.
const COPY_AT: usize = 2_048;
/// Staged events are written into the open transaction in runs of this size, so an import of
/// any size streams.
const FLUSH_EVENTS: usize = 1 << 18;
/// Sign flip that makes a `u64` order as an `i64` (impression ids are `u64`).
const SIGN: u64 = 1 << 63;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS aisle_meta (key text PRIMARY KEY, value bigint NOT NULL);
CREATE TABLE IF NOT EXISTS aisle_state (
    id integer PRIMARY KEY CHECK (id = 1),
    users bigint NOT NULL, items bigint NOT NULL, events bigint NOT NULL,
    forgets bigint NOT NULL);
INSERT INTO aisle_state VALUES (1, 0, 0, 0, 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS aisle_user_ids (id integer PRIMARY KEY, external text UNIQUE);
CREATE TABLE IF NOT EXISTS aisle_users (id integer PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE IF NOT EXISTS aisle_item_ids (id integer PRIMARY KEY, external text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS aisle_items (id integer PRIMARY KEY, body bytea NOT NULL);
CREATE TABLE IF NOT EXISTS aisle_kinds (code integer PRIMARY KEY, name text NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS aisle_events (
    ts bigint NOT NULL, fp bigint NOT NULL, user_id integer NOT NULL, body bytea NOT NULL,
    PRIMARY KEY (ts, fp)) PARTITION BY RANGE (ts);
CREATE TABLE IF NOT EXISTS aisle_events_default PARTITION OF aisle_events DEFAULT;
CREATE INDEX IF NOT EXISTS aisle_events_user ON aisle_events (user_id);
CREATE TABLE IF NOT EXISTS aisle_idempotency (key text PRIMARY KEY, at_ms bigint NOT NULL, body bytea NOT NULL);
CREATE TABLE IF NOT EXISTS aisle_impressions (
    id bigint PRIMARY KEY, at_ms bigint NOT NULL, user_id integer, body bytea NOT NULL);
CREATE INDEX IF NOT EXISTS aisle_impressions_user ON aisle_impressions (user_id);
CREATE TABLE IF NOT EXISTS aisle_outbox (
    ts bigint NOT NULL, fp bigint NOT NULL, user_id integer NOT NULL, PRIMARY KEY (ts, fp));
";

/// Waits for a future on the calling thread; the connection it talks through is driven by
/// the store's own runtime.
fn wait<F: Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

/// A PostgreSQL error, worded with the server's own message when there is one.
fn db_error(doing: &str, e: &tokio_postgres::Error) -> Error {
    let detail = match e.as_db_error() {
        Some(db) => format!("{}: {}", db.code().code(), db.message()),
        None => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(e);
            while let Some(s) = source {
                text.push_str(": ");
                text.push_str(&s.to_string());
                source = s.source();
            }
            text
        }
    };
    // Unreachable rather than refused: the connection is gone, or the server says it is
    // shutting down or restarting (class 57, operator intervention), lost the connection
    // (08) or is out of resources (53). Nothing was committed in any of these.
    let unavailable = e.is_closed()
        || e.code().is_none_or(|c| {
            let c = c.code();
            c.starts_with("57") || c.starts_with("08") || c.starts_with("53")
        });
    Error::Database {
        reason: format!("{doing}: {detail}"),
        unavailable,
    }
}

/// The calendar month (UTC) of a time, as `year * 12 + month0`, for times the monthly
/// partitions cover; `None` for the default partition.
fn month_of(ts_ms: i64) -> Option<i32> {
    let t = Utc.timestamp_millis_opt(ts_ms).single()?;
    (1900..3000)
        .contains(&t.year())
        .then(|| t.year() * 12 + t.month0() as i32)
}

/// The first millisecond of a month index.
fn month_start(month: i32) -> i64 {
    Utc.with_ymd_and_hms(
        month.div_euclid(12),
        month.rem_euclid(12) as u32 + 1,
        1,
        0,
        0,
        0,
    )
    .single()
    .map(|t| t.timestamp_millis())
    .expect("months of years 1900-3000 are valid UTC dates")
}

fn partition_name(month: i32) -> String {
    format!(
        "aisle_events_{:04}_{:02}",
        month.div_euclid(12),
        month.rem_euclid(12) + 1
    )
}

/// Opens connections to one database.
struct Connector {
    config: tokio_postgres::Config,
    /// Drives every connection; `None` only while dropping.
    runtime: Option<tokio::runtime::Runtime>,
    /// Where the database is, for messages (never the password).
    place: String,
}

impl Connector {
    fn new(url: &str) -> Result<Self> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| Error::Database {
            reason: format!("the database URL is not valid: {e}"),
            unavailable: false,
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        let hosts: Vec<String> = config
            .get_hosts()
            .iter()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(name) => name.clone(),
                tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
            })
            .collect();
        let place = format!(
            "database {:?} on {}",
            config.get_dbname().unwrap_or("(default)"),
            if hosts.is_empty() {
                "localhost".to_string()
            } else {
                hosts.join(",")
            }
        );
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("aisle-postgres")
            .enable_all()
            .build()?;
        Ok(Self {
            config,
            runtime: Some(runtime),
            place,
        })
    }

    fn connect(&self) -> Result<Client> {
        let config = self.config.clone();
        let (tx, rx) = std::sync::mpsc::sync_channel(1);
        let runtime = self.runtime.as_ref().expect("the runtime lives until drop");
        runtime.spawn(async move {
            match config.connect(NoTls).await {
                Ok((client, connection)) => {
                    let _ = tx.send(Ok(client));
                    let _ = connection.await;
                }
                Err(e) => {
                    let _ = tx.send(Err(e));
                }
            }
        });
        let answer = rx.recv().map_err(|_| Error::Database {
            reason: format!("connecting to {}: the connection task ended", self.place),
            unavailable: true,
        })?;
        answer.map_err(|e| db_error(&format!("connecting to {}", self.place), &e))
    }
}

impl Drop for Connector {
    fn drop(&mut self) {
        // A runtime dropped inside an async context would panic; this never blocks.
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A connection that is replaced when the server has closed it.
struct Reconnecting {
    client: Mutex<Option<Arc<Client>>>,
}

impl Reconnecting {
    fn get(&self, connector: &Connector) -> Result<Arc<Client>> {
        let mut slot = self.client.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(client) = slot.as_ref().filter(|c| !c.is_closed()) {
            return Ok(Arc::clone(client));
        }
        let client = Arc::new(connector.connect()?);
        *slot = Some(Arc::clone(&client));
        Ok(client)
    }
}

/// The store in a PostgreSQL database.
pub struct PgStore {
    connector: Connector,
    reads: Reconnecting,
    /// The writer's connection; the mutex is also the in-process writer lock.
    writer: Mutex<Option<Client>>,
    catalog: SharedCatalog,
    /// What the catalog has seen: the state row's forget counter, and the months that have
    /// a partition.
    seen: Mutex<Seen>,
    /// Commits put the keys of the events they store in `aisle_outbox` ([`Store::enable_outbox`]).
    outbox: std::sync::atomic::AtomicBool,
}

#[derive(Default)]
struct Seen {
    forgets: i64,
    months: HashSet<i32>,
    /// Months whose partition could not be made; their events stay in the default one.
    in_default: HashSet<i32>,
}

/// How long creating or dropping a partition waits for the events table's lock.
const PARTITION_LOCK_WAIT: &str = "200ms";

/// Creates a month's partition inside the open transaction, under a savepoint so that a
/// failure (the lock not had in time, the default partition already holding rows of that
/// month) leaves the transaction usable. True when the partition exists afterwards.
fn try_create_partition(client: &Client, month: i32) -> Result<bool> {
    let sql = format!(
        "SAVEPOINT aisle_partition; SET LOCAL lock_timeout = '{PARTITION_LOCK_WAIT}'; \
         CREATE TABLE IF NOT EXISTS {} PARTITION OF aisle_events FOR VALUES FROM ({}) TO ({}); \
         SET LOCAL lock_timeout TO DEFAULT; RELEASE SAVEPOINT aisle_partition",
        partition_name(month),
        month_start(month),
        month_start(month + 1)
    );
    match wait(client.batch_execute(&sql)) {
        Ok(()) => Ok(true),
        Err(e) if e.as_db_error().is_some() => {
            wait(client.batch_execute(
                "ROLLBACK TO SAVEPOINT aisle_partition; RELEASE SAVEPOINT aisle_partition",
            ))
            .map_err(|e| db_error("giving up on an event partition", &e))?;
            Ok(false)
        }
        Err(e) => Err(db_error("creating an event partition", &e)),
    }
}

/// Drops a month's partition inside the open transaction, under a savepoint: the number of
/// events it held, or `None` when its lock was not had in time (the caller deletes its rows
/// instead).
fn try_drop_partition(client: &Client, month: i32) -> Result<Option<u64>> {
    let name = partition_name(month);
    let sql = format!(
        "SAVEPOINT aisle_partition; SET LOCAL lock_timeout = '{PARTITION_LOCK_WAIT}'; \
         LOCK TABLE aisle_events, {name} IN ACCESS EXCLUSIVE MODE"
    );
    match wait(client.batch_execute(&sql)) {
        Ok(()) => {}
        Err(e) if e.as_db_error().is_some() => {
            wait(client.batch_execute(
                "ROLLBACK TO SAVEPOINT aisle_partition; RELEASE SAVEPOINT aisle_partition",
            ))
            .map_err(|e| db_error("giving up on dropping an event partition", &e))?;
            return Ok(None);
        }
        Err(e) => return Err(db_error("dropping an event partition", &e)),
    }
    let done = wait(async {
        let n: i64 = client
            .query_one(&format!("SELECT count(*) FROM {name}"), &[])
            .await?
            .get(0);
        client
            .batch_execute(&format!(
                "DROP TABLE {name}; SET LOCAL lock_timeout TO DEFAULT; RELEASE SAVEPOINT aisle_partition"
            ))
            .await?;
        Ok::<_, tokio_postgres::Error>(n as u64)
    })
    .map_err(|e| db_error("dropping an event partition", &e))?;
    Ok(Some(done))
}

impl PgStore {
    /// Connects to the database at `url` (a `postgres://` URL or a `key=value` string),
    /// creates aisle's tables when they are missing and loads the id maps.
    pub fn open(url: &str) -> Result<Self> {
        let connector = Connector::new(url)?;
        let client = connector.connect()?;
        let store = Self {
            connector,
            reads: Reconnecting {
                client: Mutex::new(None),
            },
            writer: Mutex::new(None),
            catalog: Arc::new(RwLock::new(Catalog::default())),
            seen: Mutex::new(Seen::default()),
            outbox: std::sync::atomic::AtomicBool::new(false),
        };
        store.init(&client)?;
        *store.writer.lock().unwrap_or_else(PoisonError::into_inner) = Some(client);
        Ok(store)
    }

    fn init(&self, client: &Client) -> Result<()> {
        let doing = |what: &str| format!("{what} in {}", self.connector.place);
        wait(async {
            // Two processes starting at once must not race to create the tables.
            client
                .batch_execute("BEGIN; SELECT pg_advisory_xact_lock(7071420133)")
                .await?;
            client.batch_execute(SCHEMA).await?;
            client
                .execute(
                    "INSERT INTO aisle_meta VALUES ('format', $1) ON CONFLICT DO NOTHING",
                    &[&FORMAT_VERSION],
                )
                .await?;
            client.batch_execute("COMMIT").await
        })
        .map_err(|e| db_error(&doing("creating aisle's tables"), &e))?;
        let found: i64 =
            wait(client.query_one("SELECT value FROM aisle_meta WHERE key = 'format'", &[]))
                .map_err(|e| db_error(&doing("reading the format"), &e))?
                .get(0);
        if found != FORMAT_VERSION {
            return Err(Error::Database {
                reason: format!(
                    "{} holds aisle tables of format {found}, this aisle reads format {FORMAT_VERSION}: import the data into a new database",
                    self.connector.place
                ),
                unavailable: false,
            });
        }
        let months: Vec<String> = wait(client.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'aisle_events'::regclass",
            &[],
        ))
        .map_err(|e| db_error(&doing("listing the event partitions"), &e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
        let mut known: HashSet<i32> = months.iter().filter_map(|n| parse_partition(n)).collect();
        // Live events land in this month and the next: make their partitions now, outside
        // any write (see `try_create_partition`).
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64);
        if let Some(now) = month_of(now_ms) {
            wait(client.batch_execute("BEGIN")).map_err(|e| db_error(&doing("starting"), &e))?;
            for month in [now, now + 1] {
                if !known.contains(&month) && try_create_partition(client, month)? {
                    known.insert(month);
                }
            }
            wait(client.batch_execute("COMMIT"))
                .map_err(|e| db_error(&doing("creating this month's partitions"), &e))?;
        }
        self.seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .months = known;
        self.refresh_catalog(client)
    }

    /// Brings the id maps up to what the database holds: the ids created since they were
    /// loaded, or everything again after another process forgot a user (whose external id
    /// was replaced). Writers call it under the state row's lock.
    fn refresh_catalog(&self, client: &Client) -> Result<()> {
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        let mut catalog = self.catalog.write().unwrap_or_else(PoisonError::into_inner);
        let (users, items, kinds) = (
            catalog.users.len() as i32,
            catalog.items.len() as i32,
            catalog.kinds.len() as i32,
        );
        // One round trip: the four statements are pipelined on the connection.
        let (state, mut new_users, new_items, new_kinds) = wait(futures_util::future::try_join4(
            client.query_one("SELECT forgets FROM aisle_state", &[]),
            client.query(
                "SELECT external, id FROM aisle_user_ids WHERE id >= $1",
                &[&users],
            ),
            client.query(
                "SELECT external, id FROM aisle_item_ids WHERE id >= $1",
                &[&items],
            ),
            client.query(
                "SELECT name FROM aisle_kinds WHERE code >= $1 ORDER BY code",
                &[&kinds],
            ),
        ))
        .map_err(|e| db_error("reading the id maps", &e))?;
        let forgets: i64 = state.get(0);
        if forgets != seen.forgets {
            // Another process forgot users: their external ids are gone, so reload them all.
            catalog.users.clear();
            new_users = wait(client.query("SELECT external, id FROM aisle_user_ids", &[]))
                .map_err(|e| db_error("reading the user ids", &e))?;
        }
        for row in &new_users {
            // A forgotten user's row keeps the id and loses the external id.
            let id = row.get::<_, i32>(1) as u32;
            let external: Option<String> = row.get(0);
            catalog
                .users
                .insert(external.unwrap_or_else(|| forgotten_key(id)), id);
        }
        for row in &new_items {
            catalog
                .items
                .insert(row.get(0), row.get::<_, i32>(1) as u32);
        }
        for row in &new_kinds {
            catalog.kinds.push(row.get(0));
        }
        seen.forgets = forgets;
        Ok(())
    }

    /// The monthly partitions of the events table, oldest first (the default partition
    /// aside).
    pub fn event_partitions(&self) -> Result<Vec<String>> {
        let client = self.shared()?;
        let rows = wait(client.query(
            "SELECT c.relname::text FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
             WHERE i.inhparent = 'aisle_events'::regclass ORDER BY 1",
            &[],
        ))
        .map_err(|e| db_error("listing the event partitions", &e))?;
        Ok(rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|n| parse_partition(n).is_some())
            .collect())
    }

    /// The connection cheap reads share.
    fn shared(&self) -> Result<Arc<Client>> {
        self.reads.get(&self.connector)
    }
}

fn parse_partition(name: &str) -> Option<i32> {
    let rest = name.strip_prefix("aisle_events_")?;
    let (year, month) = rest.split_once('_')?;
    Some(year.parse::<i32>().ok()? * 12 + month.parse::<i32>().ok()? - 1)
}

/// What a scan calls with each row's id (or time) and body.
type RowVisitor<'v> = dyn FnMut(i64, &[u8]) -> Result<()> + 'v;

/// The statements every reader runs, on whichever connection it has.
mod reads {
    use super::*;

    pub async fn counts(client: &Client) -> Result<StoreCounts, tokio_postgres::Error> {
        let row = client
            .query_one("SELECT users, items, events FROM aisle_state", &[])
            .await?;
        Ok(StoreCounts {
            users: row.get::<_, i64>(0) as usize,
            items: row.get::<_, i64>(1) as usize,
            events: row.get::<_, i64>(2) as usize,
        })
    }

    pub async fn id(
        client: &Client,
        table: &str,
        external: &str,
    ) -> Result<Option<u32>, tokio_postgres::Error> {
        let sql = format!("SELECT id FROM {table} WHERE external = $1");
        Ok(client
            .query_opt(&sql, &[&external])
            .await?
            .map(|r| r.get::<_, i32>(0) as u32))
    }

    /// The record of a user or an item (`table` is `aisle_users` or `aisle_items`).
    pub async fn body(
        client: &Client,
        table: &str,
        id: u32,
    ) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        let sql = format!("SELECT body FROM {table} WHERE id = $1");
        let row = client.query_opt(&sql, &[&(id as i32)]).await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn impression(
        client: &Client,
        id: u64,
    ) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        let row = client
            .query_opt(
                "SELECT body FROM aisle_impressions WHERE id = $1",
                &[&((id ^ SIGN) as i64)],
            )
            .await?;
        Ok(row.map(|r| r.get(0)))
    }

    pub async fn kinds(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
        Ok(client
            .query("SELECT name FROM aisle_kinds ORDER BY code", &[])
            .await?
            .iter()
            .map(|r| r.get(0))
            .collect())
    }

    pub async fn remembered(
        client: &Client,
        key: &str,
    ) -> Result<Option<Vec<u8>>, tokio_postgres::Error> {
        Ok(client
            .query_opt("SELECT body FROM aisle_idempotency WHERE key = $1", &[&key])
            .await?
            .map(|r| r.get(0)))
    }

    /// Streams a query's rows (id, body) to `visit`, in the order the query gives.
    pub async fn scan(
        client: &Client,
        sql: &str,
        visit: &mut RowVisitor<'_>,
    ) -> Result<Result<(), Error>, tokio_postgres::Error> {
        let rows = client
            .query_raw(sql, std::iter::empty::<&(dyn ToSql + Sync)>())
            .await?;
        pin_mut!(rows);
        while let Some(row) = rows.next().await {
            let row = row?;
            let id: i64 = row.get(0);
            let body: &[u8] = row.get(1);
            if let Err(e) = visit(id, body) {
                return Ok(Err(e));
            }
        }
        Ok(Ok(()))
    }
}

/// Reads through one connection: a snapshot's or a scan's.
fn read_store_on(client: &Client) -> impl ReadStore + '_ {
    OnConnection { client }
}

struct OnConnection<'a> {
    client: &'a Client,
}

/// A snapshot: a read-only repeatable-read transaction on a connection of its own.
struct PgSnapshot {
    client: Client,
}

impl Drop for PgSnapshot {
    fn drop(&mut self) {
        let _ = wait(self.client.batch_execute("ROLLBACK"));
    }
}

const SCAN_ITEMS: &str = "SELECT id::bigint, body FROM aisle_items ORDER BY id";
const SCAN_USERS: &str = "SELECT id::bigint, body FROM aisle_users ORDER BY id";
const SCAN_EVENTS: &str = "SELECT ts, body FROM aisle_events ORDER BY ts, fp";
const SCAN_IMPRESSIONS: &str = "SELECT id, body FROM aisle_impressions ORDER BY id";

macro_rules! read_store_via {
    ($ty:ty, |$s:ident| $client:expr) => {
        impl ReadStore for $ty {
            fn counts(&self) -> Result<StoreCounts> {
                let $s = self;
                wait(reads::counts($client)).map_err(|e| db_error("counting", &e))
            }

            fn user_id(&self, external: &str) -> Result<Option<UserId>> {
                let $s = self;
                Ok(wait(reads::id($client, "aisle_user_ids", external))
                    .map_err(|e| db_error("looking up a user id", &e))?
                    .map(UserId))
            }

            fn item_id(&self, external: &str) -> Result<Option<ItemId>> {
                let $s = self;
                Ok(wait(reads::id($client, "aisle_item_ids", external))
                    .map_err(|e| db_error("looking up an item id", &e))?
                    .map(ItemId))
            }

            fn user(&self, id: UserId) -> Result<Option<User>> {
                let $s = self;
                wait(reads::body($client, "aisle_users", id.0))
                    .map_err(|e| db_error("reading a user", &e))?
                    .map(|b| decode("users", &b))
                    .transpose()
            }

            fn item(&self, id: ItemId) -> Result<Option<Item>> {
                let $s = self;
                wait(reads::body($client, "aisle_items", id.0))
                    .map_err(|e| db_error("reading an item", &e))?
                    .map(|b| decode("items", &b))
                    .transpose()
            }

            fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()> {
                let $s = self;
                scan_with($client, SCAN_ITEMS, "items", &mut |id, b| {
                    visit(ItemId(id as u32), decode("items", b)?);
                    Ok(())
                })
            }

            fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()> {
                let $s = self;
                scan_with($client, SCAN_USERS, "users", &mut |id, b| {
                    visit(UserId(id as u32), decode("users", b)?);
                    Ok(())
                })
            }

            fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()> {
                let $s = self;
                scan_with($client, SCAN_EVENTS, "events", &mut |_, b| {
                    visit(decode_event(b)?);
                    Ok(())
                })
            }

            fn custom_kinds(&self) -> Result<Vec<String>> {
                let $s = self;
                wait(reads::kinds($client)).map_err(|e| db_error("reading the kinds", &e))
            }

            fn remembered(&self, key: &str) -> Result<Option<crate::Remembered>> {
                let $s = self;
                wait(reads::remembered($client, key))
                    .map_err(|e| db_error("reading an idempotency record", &e))?
                    .map(|b| decode("idempotency", &b))
                    .transpose()
            }

            fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()> {
                let $s = self;
                scan_with($client, SCAN_IMPRESSIONS, "impressions", &mut |_, b| {
                    visit(decode("impressions", b)?);
                    Ok(())
                })
            }

            fn impression(&self, id: u64) -> Result<Option<Impression>> {
                let $s = self;
                wait(reads::impression($client, id))
                    .map_err(|e| db_error("reading an impression", &e))?
                    .map(|b| decode("impressions", &b))
                    .transpose()
            }
        }
    };
}

fn scan_with(client: &Client, sql: &str, what: &str, visit: &mut RowVisitor<'_>) -> Result<()> {
    wait(reads::scan(client, sql, visit)).map_err(|e| db_error(&format!("scanning {what}"), &e))?
}

read_store_via!(OnConnection<'_>, |s| s.client);
read_store_via!(PgSnapshot, |s| &s.client);

impl ReadStore for PgStore {
    fn counts(&self) -> Result<StoreCounts> {
        read_store_on(&*self.shared()?).counts()
    }

    fn user_id(&self, external: &str) -> Result<Option<UserId>> {
        read_store_on(&*self.shared()?).user_id(external)
    }

    fn item_id(&self, external: &str) -> Result<Option<ItemId>> {
        read_store_on(&*self.shared()?).item_id(external)
    }

    fn user(&self, id: UserId) -> Result<Option<User>> {
        read_store_on(&*self.shared()?).user(id)
    }

    fn item(&self, id: ItemId) -> Result<Option<Item>> {
        read_store_on(&*self.shared()?).item(id)
    }

    // A scan holds its connection until it ends, so it gets one of its own rather than
    // stalling every other read behind it.
    fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()> {
        read_store_on(&self.connector.connect()?).scan_items(visit)
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()> {
        read_store_on(&self.connector.connect()?).scan_users(visit)
    }

    fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()> {
        read_store_on(&self.connector.connect()?).scan_events(visit)
    }

    fn custom_kinds(&self) -> Result<Vec<String>> {
        read_store_on(&*self.shared()?).custom_kinds()
    }

    fn remembered(&self, key: &str) -> Result<Option<crate::Remembered>> {
        read_store_on(&*self.shared()?).remembered(key)
    }

    fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()> {
        read_store_on(&self.connector.connect()?).scan_impressions(visit)
    }

    fn impression(&self, id: u64) -> Result<Option<Impression>> {
        read_store_on(&*self.shared()?).impression(id)
    }
}

impl Store for PgStore {
    fn enable_outbox(&self) -> bool {
        self.outbox
            .store(true, std::sync::atomic::Ordering::Relaxed);
        true
    }

    fn unpublished(&self, limit: usize) -> Result<Vec<(u128, Event)>> {
        let client = self.shared()?;
        let rows = wait(client.query(
            "SELECT e.ts, e.fp, e.body FROM aisle_outbox o JOIN aisle_events e USING (ts, fp) \
             ORDER BY o.ts, o.fp LIMIT $1",
            &[&(limit as i64)],
        ))
        .map_err(|e| db_error("reading the outbox", &e))?;
        rows.iter()
            .map(|r| {
                let key = crate::staging::event_key(r.get(0), r.get::<_, i64>(1) as u64);
                Ok((key, decode_event(r.get(2))?))
            })
            .collect()
    }

    fn forgotten_users(&self) -> Result<Vec<UserId>> {
        let client = self.shared()?;
        let rows = wait(client.query(
            "SELECT id FROM aisle_user_ids WHERE external IS NULL ORDER BY id",
            &[],
        ))
        .map_err(|e| db_error("listing the forgotten users", &e))?;
        Ok(rows
            .iter()
            .map(|r| UserId(r.get::<_, i32>(0) as u32))
            .collect())
    }

    fn mark_published(&self, keys: &[u128]) -> Result<()> {
        if keys.is_empty() {
            return Ok(());
        }
        let ts: Vec<i64> = keys
            .iter()
            .map(|k| (((k >> 64) as u64) ^ SIGN) as i64)
            .collect();
        let fp: Vec<i64> = keys.iter().map(|k| *k as u64 as i64).collect();
        let client = self.shared()?;
        wait(client.execute(
            "DELETE FROM aisle_outbox o USING unnest($1::bigint[], $2::bigint[]) AS k(ts, fp) \
             WHERE o.ts = k.ts AND o.fp = k.fp",
            &[&ts, &fp],
        ))
        .map_err(|e| db_error("clearing the outbox", &e))?;
        Ok(())
    }

    fn snapshot(&self) -> Result<Box<dyn ReadStore + '_>> {
        let client = self.connector.connect()?;
        // The transaction's snapshot is taken by its first statement, not by BEGIN.
        wait(client.batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; SELECT 1"))
            .map_err(|e| db_error("starting a snapshot", &e))?;
        Ok(Box::new(PgSnapshot { client }))
    }

    fn writer(&self) -> Result<Box<dyn StoreWriter + '_>> {
        let mut guard = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        if guard.as_ref().is_none_or(Client::is_closed) {
            *guard = Some(self.connector.connect()?);
        }
        let client = guard.as_ref().expect("connected just above");
        wait(client.batch_execute("BEGIN; SELECT 1 FROM aisle_state WHERE id = 1 FOR UPDATE"))
            .map_err(|e| db_error("starting a write", &e))?;
        // Ids other processes created since this one last looked, read under the lock.
        if let Err(e) = self.refresh_catalog(client) {
            let _ = wait(client.batch_execute("ROLLBACK"));
            return Err(e);
        }
        Ok(Box::new(PgWriter {
            store: self,
            guard,
            staging: Staging::new(Arc::clone(&self.catalog)),
            new_months: BTreeSet::new(),
            open: true,
        }))
    }
}

struct PgWriter<'a> {
    store: &'a PgStore,
    guard: MutexGuard<'a, Option<Client>>,
    staging: Staging,
    /// Months given a partition in this transaction (known to others only once it commits).
    new_months: BTreeSet<i32>,
    /// The transaction is still open (rolled back on drop).
    open: bool,
}

impl Drop for PgWriter<'_> {
    fn drop(&mut self) {
        if let Some(client) = self.guard.as_ref().filter(|_| self.open) {
            let _ = wait(client.batch_execute("ROLLBACK"));
        }
    }
}

/// One staged event, as its columns.
struct Row<'b> {
    ts: i64,
    fp: i64,
    user: i32,
    body: &'b [u8],
}

impl PgWriter<'_> {
    fn client(&self) -> &Client {
        self.guard.as_ref().expect("a writer holds a connection")
    }

    /// Creates the monthly partitions the events need that do not exist yet. The creation
    /// locks the events table, so it waits at most [`PARTITION_LOCK_WAIT`] for a reader that
    /// holds it (a training snapshot); if it cannot, that month's events go to the default
    /// partition, where they are as durable and only slower to expire.
    fn ensure_partitions(&mut self, rows: &[Row<'_>]) -> Result<()> {
        let months: BTreeSet<i32> = rows.iter().filter_map(|r| month_of(r.ts)).collect();
        let missing = {
            let seen = self
                .store
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            months
                .into_iter()
                .filter(|m| {
                    !seen.months.contains(m)
                        && !seen.in_default.contains(m)
                        && !self.new_months.contains(m)
                })
                .collect::<Vec<_>>()
        };
        for month in missing {
            if try_create_partition(self.client(), month)? {
                self.new_months.insert(month);
            } else {
                let mut seen = self
                    .store
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                seen.in_default.insert(month);
            }
        }
        Ok(())
    }

    fn flush_events(&mut self) -> Result<()> {
        if self.staging.events.is_empty() {
            return Ok(());
        }
        let mut staged = std::mem::take(&mut self.staging.events);
        let result = self.write_events(&mut staged);
        staged.clear();
        self.staging.events = staged;
        result
    }

    fn write_events(&mut self, staged: &mut crate::staging::StagedEvents) -> Result<()> {
        let events = staged.drain_sorted();
        let rows = events
            .iter()
            .map(|(key, body)| {
                Ok(Row {
                    ts: (((key >> 64) as u64) ^ SIGN) as i64,
                    fp: *key as u64 as i64,
                    user: event_user(body)? as i32,
                    body,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        self.ensure_partitions(&rows)?;
        let want = Want {
            keys: self.staging.keep_added,
            outbox: self.store.outbox.load(std::sync::atomic::Ordering::Relaxed),
        };
        let client = self.guard.as_ref().expect("a writer holds a connection");
        let inserted = if rows.len() >= COPY_AT {
            wait(copy_events(client, &rows, want))
        } else {
            wait(insert_events(client, &rows, want))
        }
        .map_err(|e| db_error("writing events", &e))?;
        let added = match inserted {
            Inserted::Count(n) => n,
            Inserted::Keys(keys) => {
                let keys: HashSet<(i64, i64)> = keys.into_iter().collect();
                for row in rows.iter().filter(|r| keys.contains(&(r.ts, r.fp))) {
                    self.staging.added.push((
                        crate::staging::event_key(row.ts, row.fp as u64),
                        decode_event(row.body)?,
                    ));
                }
                keys.len()
            }
        };
        self.staging.report.events_added += added;
        self.staging.report.events_duplicate += rows.len() - added;
        Ok(())
    }

    fn flush_records(&mut self) -> Result<()> {
        let users = last_wins(self.staging.users.drain(..).map(|(id, u)| (id, encode(&u))));
        let items = last_wins(self.staging.items.drain(..).map(|(id, i)| (id, encode(&i))));
        let client = self.client();
        wait(futures_util::future::try_join(
            upsert_bodies(client, "aisle_users", &users),
            upsert_bodies(client, "aisle_items", &items),
        ))
        .map(|_| ())
        .map_err(|e| db_error("writing records", &e))
    }
}

/// Keeps the last value per id (a later record for the same id wins), in id order; one
/// `INSERT … ON CONFLICT DO UPDATE` may not touch a row twice.
fn last_wins<K: Ord, V>(records: impl Iterator<Item = (K, V)>) -> Vec<(K, V)> {
    let map: std::collections::BTreeMap<K, V> = records.collect();
    map.into_iter().collect()
}

async fn upsert_bodies(
    client: &Client,
    table: &str,
    records: &[(u32, Vec<u8>)],
) -> Result<(), tokio_postgres::Error> {
    if records.is_empty() {
        return Ok(());
    }
    let ids: Vec<i32> = records.iter().map(|r| r.0 as i32).collect();
    let bodies: Vec<&[u8]> = records.iter().map(|r| r.1.as_slice()).collect();
    let sql = format!(
        "INSERT INTO {table} (id, body) SELECT * FROM unnest($1::integer[], $2::bytea[]) \
         ON CONFLICT (id) DO UPDATE SET body = EXCLUDED.body"
    );
    client.execute(&sql, &[&ids, &bodies]).await?;
    Ok(())
}

enum Inserted {
    Count(usize),
    Keys(Vec<(i64, i64)>),
}

const INSERT_EVENTS: &str = "INSERT INTO aisle_events (ts, fp, user_id, body) \
     SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bytea[]) \
     ON CONFLICT DO NOTHING";

/// How a write of events reports back: the keys it stored (to list the added events), and
/// whether it puts them in the outbox too.
#[derive(Clone, Copy)]
struct Want {
    keys: bool,
    outbox: bool,
}

/// Runs an `INSERT … ON CONFLICT DO NOTHING` of events, returning what [`Want`] asks for. With
/// the outbox the stored keys go into `aisle_outbox` in the same statement.
async fn finish_insert(
    client: &Client,
    insert: &str,
    params: &[&(dyn ToSql + Sync)],
    want: Want,
) -> Result<Inserted, tokio_postgres::Error> {
    let keys = |rows: Vec<tokio_postgres::Row>| -> Vec<(i64, i64)> {
        rows.iter().map(|r| (r.get(0), r.get(1))).collect()
    };
    if want.outbox {
        let sql = format!(
            "WITH ins AS ({insert} RETURNING ts, fp, user_id), \
             o AS (INSERT INTO aisle_outbox (ts, fp, user_id) SELECT ts, fp, user_id FROM ins) \
             SELECT ts, fp FROM ins"
        );
        let found = keys(client.query(&sql, params).await?);
        return Ok(if want.keys {
            Inserted::Keys(found)
        } else {
            Inserted::Count(found.len())
        });
    }
    if want.keys {
        let sql = format!("{insert} RETURNING ts, fp");
        Ok(Inserted::Keys(keys(client.query(&sql, params).await?)))
    } else {
        Ok(Inserted::Count(
            client.execute(insert, params).await? as usize,
        ))
    }
}

async fn insert_events(
    client: &Client,
    rows: &[Row<'_>],
    want: Want,
) -> Result<Inserted, tokio_postgres::Error> {
    let ts: Vec<i64> = rows.iter().map(|r| r.ts).collect();
    let fp: Vec<i64> = rows.iter().map(|r| r.fp).collect();
    let users: Vec<i32> = rows.iter().map(|r| r.user).collect();
    let bodies: Vec<&[u8]> = rows.iter().map(|r| r.body).collect();
    finish_insert(client, INSERT_EVENTS, &[&ts, &fp, &users, &bodies], want).await
}

async fn copy_events(
    client: &Client,
    rows: &[Row<'_>],
    want: Want,
) -> Result<Inserted, tokio_postgres::Error> {
    client
        .batch_execute(
            "CREATE TEMPORARY TABLE IF NOT EXISTS aisle_incoming \
             (ts bigint, fp bigint, user_id integer, body bytea) ON COMMIT DELETE ROWS; \
             TRUNCATE aisle_incoming",
        )
        .await?;
    let sink = client
        .copy_in("COPY aisle_incoming (ts, fp, user_id, body) FROM STDIN BINARY")
        .await?;
    let writer = BinaryCopyInWriter::new(sink, &[Type::INT8, Type::INT8, Type::INT4, Type::BYTEA]);
    pin_mut!(writer);
    for row in rows {
        writer
            .as_mut()
            .write(&[&row.ts, &row.fp, &row.user, &row.body])
            .await?;
    }
    writer.finish().await?;
    let insert = "INSERT INTO aisle_events (ts, fp, user_id, body) \
                  SELECT ts, fp, user_id, body FROM aisle_incoming ON CONFLICT DO NOTHING";
    finish_insert(client, insert, &[], want).await
}

impl StoreWriter for PgWriter<'_> {
    crate::staging::staged_writer_methods!();

    fn add_event(&mut self, event: &RawEvent) -> Result<()> {
        self.staging.add_event(event)?;
        if self.staging.events.len() >= FLUSH_EVENTS {
            self.flush_events()?;
            self.flush_records()?;
        }
        Ok(())
    }

    fn commit_listing_added(mut self: Box<Self>) -> Result<crate::Committed> {
        self.flush_events()?;
        self.flush_records()?;
        let remembered = last_wins(std::mem::take(&mut self.staging.remembered).into_iter());
        let remembered = remembered
            .into_iter()
            .map(|(key, body)| {
                let record: crate::Remembered = decode("idempotency", &body)?;
                Ok((key, record.at_ms, body))
            })
            .collect::<Result<Vec<_>>>()?;
        let impressions = last_wins(std::mem::take(&mut self.staging.impressions).into_iter())
            .into_iter()
            .map(|(id, body)| {
                let i: Impression = decode("impressions", &body)?;
                Ok((
                    (id ^ SIGN) as i64,
                    i.at_ms,
                    i.user.map(|u| u.0 as i32),
                    body,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        let (new_users, new_items) = self.staging.new_ids();
        let new_users: Vec<(String, i32)> = new_users
            .iter()
            .map(|(k, v)| (k.clone(), *v as i32))
            .collect();
        let new_items: Vec<(String, i32)> = new_items
            .iter()
            .map(|(k, v)| (k.clone(), *v as i32))
            .collect();
        let new_kinds: Vec<(i32, String)> = self
            .staging
            .new_kinds()
            .map(|(code, name)| (i32::from(code), name.to_string()))
            .collect();
        let deleted_items: Vec<i32> = std::mem::take(&mut self.staging.deleted_items)
            .into_iter()
            .map(|id| id as i32)
            .collect();
        let forgotten: Vec<(String, i32)> = self
            .staging
            .forgotten_users
            .iter()
            .map(|(external, id)| (external.clone(), *id as i32))
            .collect();
        let retention = self.staging.delete_events_before;
        let expire_before = self.staging.forget_remembered_before;
        let (users_created, items_created) = (
            self.staging.report.users_created as i64,
            self.staging.report.items_created as i64,
        );
        let old_months: Vec<i32> = match retention {
            Some(cut) => {
                let seen = self
                    .store
                    .seen
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                seen.months
                    .iter()
                    .chain(self.new_months.iter())
                    .copied()
                    .filter(|m| month_start(m + 1) <= cut)
                    .collect()
            }
            None => Vec::new(),
        };
        // Whole months before the retention cut go at once; the rest row by row.
        let mut dropped_months = Vec::new();
        let mut dropped_events = 0;
        for month in old_months {
            if let Some(n) = try_drop_partition(self.client(), month)? {
                dropped_months.push(month);
                dropped_events += n;
            }
        }
        let client = self.client();
        let outcome = wait(async {
            if let Some(before) = expire_before {
                client
                    .execute("DELETE FROM aisle_idempotency WHERE at_ms < $1", &[&before])
                    .await?;
            }
            for (key, at_ms, body) in &remembered {
                client
                    .execute(
                        "INSERT INTO aisle_idempotency VALUES ($1, $2, $3) \
                         ON CONFLICT (key) DO UPDATE SET at_ms = EXCLUDED.at_ms, body = EXCLUDED.body",
                        &[key, at_ms, body],
                    )
                    .await?;
            }
            if !impressions.is_empty() {
                let ids: Vec<i64> = impressions.iter().map(|i| i.0).collect();
                let at: Vec<i64> = impressions.iter().map(|i| i.1).collect();
                let users: Vec<Option<i32>> = impressions.iter().map(|i| i.2).collect();
                let bodies: Vec<&[u8]> = impressions.iter().map(|i| i.3.as_slice()).collect();
                client
                    .execute(
                        "INSERT INTO aisle_impressions (id, at_ms, user_id, body) \
                         SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::integer[], $4::bytea[]) \
                         ON CONFLICT (id) DO UPDATE SET at_ms = EXCLUDED.at_ms, \
                         user_id = EXCLUDED.user_id, body = EXCLUDED.body",
                        &[&ids, &at, &users, &bodies],
                    )
                    .await?;
            }
            futures_util::future::try_join(
                insert_ids(client, "aisle_user_ids", &new_users),
                insert_ids(client, "aisle_item_ids", &new_items),
            )
            .await?;
            for (code, name) in &new_kinds {
                client
                    .execute("INSERT INTO aisle_kinds VALUES ($1, $2)", &[code, name])
                    .await?;
            }
            let items_deleted = if deleted_items.is_empty() {
                0
            } else {
                client
                    .execute(
                        "DELETE FROM aisle_items WHERE id = ANY($1)",
                        &[&deleted_items],
                    )
                    .await?
            };
            let mut events_deleted = dropped_events;
            if let Some(cut) = retention {
                events_deleted += client
                    .execute("DELETE FROM aisle_events WHERE ts < $1", &[&cut])
                    .await?;
                client
                    .execute("DELETE FROM aisle_impressions WHERE at_ms < $1", &[&cut])
                    .await?;
                client
                    .execute("DELETE FROM aisle_outbox WHERE ts < $1", &[&cut])
                    .await?;
            }
            if !forgotten.is_empty() {
                let ids: Vec<i32> = forgotten.iter().map(|f| f.1).collect();
                client
                    .execute("DELETE FROM aisle_users WHERE id = ANY($1)", &[&ids])
                    .await?;
                client
                    .execute(
                        "UPDATE aisle_user_ids SET external = NULL WHERE id = ANY($1)",
                        &[&ids],
                    )
                    .await?;
                events_deleted += client
                    .execute("DELETE FROM aisle_events WHERE user_id = ANY($1)", &[&ids])
                    .await?;
                client
                    .execute("DELETE FROM aisle_outbox WHERE user_id = ANY($1)", &[&ids])
                    .await?;
                client
                    .execute(
                        "DELETE FROM aisle_impressions WHERE user_id = ANY($1)",
                        &[&ids],
                    )
                    .await?;
            }
            Ok::<_, tokio_postgres::Error>((items_deleted, events_deleted))
        });
        let (items_deleted, events_deleted) =
            outcome.map_err(|e| db_error("writing the commit", &e))?;
        self.staging.report.items_deleted += items_deleted as usize;
        self.staging.report.events_deleted += events_deleted as usize;
        if !forgotten.is_empty() {
            self.staging.report.users_forgotten += forgotten.len();
        }
        let events_delta =
            self.staging.report.events_added as i64 - self.staging.report.events_deleted as i64;
        let forgets = i64::from(!forgotten.is_empty());
        let client = self.client();
        // One round trip (the values are integers this code computed).
        wait(client.batch_execute(&format!(
            "UPDATE aisle_state SET users = users + {users_created}, items = items + {items_created}, \
             events = events + {events_delta}, forgets = forgets + {forgets}; COMMIT"
        )))
        .map_err(|e| db_error("committing", &e))?;
        self.open = false;
        {
            let mut seen = self
                .store
                .seen
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            seen.months.extend(self.new_months.iter().copied());
            for month in &dropped_months {
                seen.months.remove(month);
            }
            // This process's own forget is published into the catalog below; the counter
            // moves with it so the next writer does not reload the ids for nothing.
            seen.forgets += forgets;
        }
        let staging = std::mem::replace(
            &mut self.staging,
            Staging::new(Arc::clone(&self.store.catalog)),
        );
        Ok(staging.into_committed())
    }
}

async fn insert_ids(
    client: &Client,
    table: &str,
    ids: &[(String, i32)],
) -> Result<(), tokio_postgres::Error> {
    if ids.is_empty() {
        return Ok(());
    }
    let names: Vec<&str> = ids.iter().map(|i| i.0.as_str()).collect();
    let values: Vec<i32> = ids.iter().map(|i| i.1).collect();
    let sql = format!(
        "INSERT INTO {table} (external, id) SELECT * FROM unnest($1::text[], $2::integer[])"
    );
    client.execute(&sql, &[&names, &values]).await?;
    Ok(())
}

/// A database of its own for one test, dropped with it (the `testing` feature).
#[cfg(feature = "testing")]
pub struct FreshDatabase {
    admin: String,
    name: String,
    url: String,
}

#[cfg(feature = "testing")]
impl FreshDatabase {
    /// The server tests use: `AISLE_TEST_POSTGRES`, or the local server as
    /// `scripts/services.sh` sets it up.
    pub fn server() -> String {
        std::env::var("AISLE_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgresql://postgres:postgres@127.0.0.1:5432/postgres".into())
    }

    /// Creates an empty database on [`FreshDatabase::server`].
    ///
    /// # Panics
    /// When the server cannot be reached: a test that needs PostgreSQL fails without it.
    pub fn new() -> Self {
        use std::sync::atomic::{AtomicU32, Ordering};
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let admin = Self::server();
        let name = format!(
            "aisle_test_{}_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed),
            rand::random::<u32>()
        );
        run_admin(&admin, &format!("CREATE DATABASE {name}")).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is needed for this test and {admin} did not answer ({e}): run scripts/services.sh (it starts or installs it), or set AISLE_TEST_POSTGRES"
            )
        });
        let url = match admin.rsplit_once('/') {
            Some((server, _)) => format!("{server}/{name}"),
            None => panic!("AISLE_TEST_POSTGRES must be a postgresql:// URL ending in /DATABASE"),
        };
        Self { admin, name, url }
    }

    /// The new database's URL.
    pub fn url(&self) -> &str {
        &self.url
    }
}

#[cfg(feature = "testing")]
impl Default for FreshDatabase {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(feature = "testing")]
impl Drop for FreshDatabase {
    fn drop(&mut self) {
        let _ = run_admin(
            &self.admin,
            &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name),
        );
    }
}

/// Runs one statement on its own connection (database creation cannot run in a transaction).
#[cfg(feature = "testing")]
pub(crate) fn run_admin(url: &str, sql: &str) -> Result<()> {
    let connector = Connector::new(url)?;
    let client = connector.connect()?;
    wait(client.batch_execute(sql)).map_err(|e| db_error(sql, &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_cover_their_times_and_name_their_partitions() {
        let t = Utc
            .with_ymd_and_hms(2026, 12, 31, 23, 59, 59)
            .single()
            .expect("date")
            .timestamp_millis();
        let m = month_of(t).expect("in range");
        assert!(month_start(m) <= t && t < month_start(m + 1));
        assert_eq!(partition_name(m), "aisle_events_2026_12");
        assert_eq!(parse_partition(&partition_name(m)), Some(m));
        assert_eq!(
            month_start(m + 1),
            month_start(month_of(month_start(m + 1)).expect("jan"))
        );
        assert_eq!(month_of(-70_000_000_000_000), None);
        assert_eq!(parse_partition("aisle_events_default"), None);
    }
}
