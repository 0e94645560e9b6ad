//! The event and catalogue store.
//!
//! Callers see two capability traits: [`ReadStore`] (look up and scan) and [`Store`]
//! (everything a reader can do, plus opening a [`StoreWriter`]). A writer stages users, items
//! and events and makes them visible and durable together on [`StoreWriter::commit`], or not
//! at all when it is dropped: that is what lets an import be rejected without leaving half of
//! itself behind, and what makes "acknowledged" mean "on disk".
//!
//! Implementations: [`MemStore`] for tests and throw-away runs, [`RedbStore`], the
//! embedded default, and `PgStore` (the `postgres` feature), for several aisle processes
//! over one PostgreSQL database. [`open`] picks one from a URI so that an external database can be added
//! later without touching callers. The `testing` feature adds a `testing` module: a fake disk
//! that loses unsynced writes at a power cut, and knobs to open a [`RedbStore`] on it.
//!
//! Events are keyed by `(timestamp, fingerprint)`: a scan returns them in time order and the
//! same event written twice (a re-imported file, a retried request) is stored once. An event
//! that appears several times *within one write* (two identical rows of a source file) is
//! kept that many times, because some sources really do repeat a line (CDNOW has two
//! purchases of the same value on the same day); cleaning can merge them later.

pub mod encrypted;
mod error;
pub mod keyring;
pub mod keys;
mod mem;
#[cfg(feature = "postgres")]
mod postgres;
mod redb_store;
mod staging;
#[cfg(feature = "testing")]
pub mod testing;

use std::path::Path;

use aisle_core::{Event, EventKind, Impression, Item, ItemId, RawEvent, User, UserId};

pub use error::{Error, Result};
pub use mem::MemStore;
#[cfg(feature = "postgres")]
pub use postgres::PgStore;
pub use redb_store::RedbStore;
pub use staging::session_id;

/// Sizes of what a store holds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Users known (from the user table or from events).
    pub users: usize,
    /// Items known (from the catalogue or from events).
    pub items: usize,
    /// Events stored.
    pub events: usize,
}

/// What a committed write changed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteReport {
    /// Users created (explicitly or by their first event).
    pub users_created: usize,
    /// Items created (explicitly or by their first event).
    pub items_created: usize,
    /// Existing items or users whose record was replaced.
    pub records_updated: usize,
    /// Events newly stored.
    pub events_added: usize,
    /// Events that were already stored and so were skipped.
    pub events_duplicate: usize,
    /// Item records removed.
    pub items_deleted: usize,
    /// Users forgotten.
    pub users_forgotten: usize,
    /// Events removed with the users forgotten.
    pub events_deleted: usize,
}

/// What a commit stored, for a caller that keeps a view of the store up to date: the report,
/// and the events it newly stored (duplicates of stored events are not among them).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Committed {
    /// Counts of what changed.
    pub report: WriteReport,
    /// The events newly stored, with their ids; empty unless the writer was asked to keep
    /// them ([`StoreWriter::keep_added_events`]).
    pub added: Vec<Event>,
    /// The store keys of `added`, in the same order: what identifies each event to the
    /// replicas' stream (`Nats-Msg-Id`).
    pub keys: Vec<u128>,
}

/// The answer an idempotent request was given, kept so that a retry with the same key gets
/// the same answer and writes nothing.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Remembered {
    /// A hash of the request the key was first used with.
    pub fingerprint: u64,
    /// The answer given, as sent.
    pub answer: Vec<u8>,
    /// When it was given (ms since the epoch); records expire after a retention window.
    pub at_ms: i64,
}

/// Read access. Read paths take `&dyn ReadStore`.
pub trait ReadStore: Send + Sync {
    /// How many users, items and events are stored.
    fn counts(&self) -> Result<StoreCounts>;
    /// The internal id of an external user id.
    fn user_id(&self, external: &str) -> Result<Option<UserId>>;
    /// The internal id of an external item id.
    fn item_id(&self, external: &str) -> Result<Option<ItemId>>;
    /// A user's record.
    fn user(&self, id: UserId) -> Result<Option<User>>;
    /// An item's record.
    fn item(&self, id: ItemId) -> Result<Option<Item>>;
    /// Every item, in id order.
    fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()>;
    /// Every user, in id order.
    fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()>;
    /// Every event, in time order (ties in a fixed but unspecified order).
    fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()>;
    /// Names of the registered custom event kinds, by code.
    fn custom_kinds(&self) -> Result<Vec<String>>;
    /// The answer remembered under an idempotency key, if any.
    fn remembered(&self, key: &str) -> Result<Option<Remembered>>;
    /// Every logged impression (served list), in id order.
    fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()>;
    /// One logged impression by id.
    fn impression(&self, id: u64) -> Result<Option<Impression>>;

    /// The display name of an event kind, custom kinds included.
    fn kind_name(&self, kind: EventKind) -> Result<String> {
        match kind {
            EventKind::Custom(code) => Ok(self
                .custom_kinds()?
                .get(code as usize)
                .cloned()
                .unwrap_or_else(|| kind.to_string())),
            builtin => Ok(builtin.to_string()),
        }
    }
}

/// Read and write access.
pub trait Store: ReadStore {
    /// Starts a write. Only one writer exists at a time; a second call waits for the first.
    fn writer(&self) -> Result<Box<dyn StoreWriter + '_>>;
    /// A read-only view of the store as of one commit: every read through it (counts, ids,
    /// records, events) sees that commit and nothing later, however long it is held. For
    /// work that reads the store several times and must see one state (training).
    fn snapshot(&self) -> Result<Box<dyn ReadStore + '_>>;

    /// Keeps the key of every event a commit stores in an outbox, in the same transaction,
    /// until [`Store::mark_published`] says it reached the replicas' stream: a crash between
    /// the commit and the publication then loses nothing. True where the store has one (the
    /// stores shared by several processes); the embedded stores have no replicas to tell.
    fn enable_outbox(&self) -> bool {
        false
    }

    /// Up to `limit` events of the outbox, oldest first, with their keys.
    fn unpublished(&self, _limit: usize) -> Result<Vec<(u128, Event)>> {
        Ok(Vec::new())
    }

    /// The users forgotten so far (their dense ids stay reserved), for a replica that must
    /// drop whoever another replica forgot.
    fn forgotten_users(&self) -> Result<Vec<UserId>> {
        Ok(Vec::new())
    }

    /// Takes events out of the outbox once the stream has them.
    fn mark_published(&self, _keys: &[u128]) -> Result<()> {
        Ok(())
    }
}

/// A staged write: nothing is visible to readers until [`StoreWriter::commit`], and dropping
/// the writer discards everything staged.
pub trait StoreWriter {
    /// Registers a custom event kind by name (idempotent) and returns its kind.
    fn register_kind(&mut self, name: &str) -> Result<EventKind>;
    /// Resolves a kind name: a built-in name or a registered custom one.
    fn resolve_kind(&self, name: &str) -> Result<EventKind>;
    /// Creates or replaces an item, keyed by its external id.
    fn upsert_item(&mut self, item: Item) -> Result<ItemId>;
    /// Creates or replaces a user, keyed by its external id.
    fn upsert_user(&mut self, user: User) -> Result<UserId>;
    /// Adds an event; its user and item are created if unknown.
    fn add_event(&mut self, event: &RawEvent) -> Result<()>;
    /// Starts the next batch of events from one source (one client request, one file).
    /// Identical events within a batch are distinct occurrences (two rows of a file, two
    /// purchases in one request); an event identical to one of another batch, in this write
    /// or an earlier one, is the same event sent again (a retry) and is stored once. A writer
    /// starts with one batch open.
    fn start_batch(&mut self);
    /// Removes an item's record at commit: it leaves the catalogue, while its id and its past
    /// events stay, so trained models and logs keep their meaning (upserting it again brings
    /// it back under the same id). False when the item is unknown.
    fn delete_item(&mut self, external: &str) -> Result<bool>;
    /// Forgets a user at commit: their record, every event of theirs and their external id
    /// (the dense id stays reserved, so other ids do not move). False when unknown.
    fn forget_user(&mut self, external: &str) -> Result<bool>;
    /// Makes the commit list the events it newly stores ([`Committed::added`]); call it
    /// before adding events. Off by default: a bulk import does not need the list.
    fn keep_added_events(&mut self);
    /// Remembers `record` under an idempotency `key`, in the same transaction as the rest of
    /// this write (so a crash keeps both or neither). A later record for the key replaces it.
    fn remember(&mut self, key: &str, record: &Remembered);
    /// Drops the idempotency records older than `before_ms` at commit.
    fn forget_remembered_before(&mut self, before_ms: i64);
    /// Deletes every event stamped before `before_ms` at commit (retention), with the
    /// impressions served before it; counted in `events_deleted`.
    fn delete_events_before(&mut self, before_ms: i64);
    /// Logs a served list at commit (a later record with the same id replaces it). Forgetting
    /// a user removes their impressions too.
    fn log_impression(&mut self, impression: &Impression);
    /// Makes everything staged durable and visible, atomically; says what was stored.
    fn commit_listing_added(self: Box<Self>) -> Result<Committed>;
    /// Makes everything staged durable and visible, atomically.
    fn commit(self: Box<Self>) -> Result<WriteReport> {
        self.commit_listing_added().map(|c| c.report)
    }
}

/// Opens a store by URI: `mem:` for a fresh in-memory store, `postgres://…` (or
/// `postgresql://…`) for a PostgreSQL database (the `postgres` feature), otherwise a data
/// directory (created if missing) holding the embedded store.
pub fn open(uri: &str) -> Result<Box<dyn Store>> {
    if uri == "mem:" {
        return Ok(Box::new(MemStore::new()));
    }
    if is_database_url(uri) {
        #[cfg(feature = "postgres")]
        return Ok(Box::new(PgStore::open(uri)?));
        #[cfg(not(feature = "postgres"))]
        return Err(Error::Database {
            reason: "this aisle was built without PostgreSQL support (the `postgres` feature)"
                .into(),
            unavailable: false,
        });
    }
    let path = uri.strip_prefix("file:").unwrap_or(uri);
    Ok(Box::new(RedbStore::open(Path::new(path))?))
}

/// Whether a store URI names a PostgreSQL database rather than a data directory.
pub fn is_database_url(uri: &str) -> bool {
    uri.starts_with("postgres://") || uri.starts_with("postgresql://")
}
