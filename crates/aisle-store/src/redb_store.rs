//! The embedded store, on redb.
//!
//! Why redb: it is pure Rust (nothing to install, nothing to compile in C), ACID with
//! copy-on-write B-trees, and a commit with its default `Durability::Immediate` is on disk when
//! `commit` returns, with two alternating commit slots and checksums, so a crash at any moment
//! leaves the last committed state and never a half-written record; reopening after a crash
//! repairs automatically. sled is unmaintained and RocksDB needs a long C++ build; SQLite would
//! add a C dependency and SQL we do not need for key-ordered scans.
//!
//! One file, `aisle.redb`, in the data directory. The external-id maps are loaded into memory
//! at open so ingest interns without a lookup in the file. When `open` creates the file it also
//! syncs the directory (and the directory's parent when it created that too), so that the new
//! file's name is as durable as its first commit.
//!
//! Every store, whatever it is opened on, is built by one constructor (`from_database`): the
//! `testing` feature adds only another way to get the [`Database`] (over the fake disk of
//! `testing`) and knobs that tests turn, never a second write path.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use aisle_core::{Event, Impression, Item, ItemId, RawEvent, User, UserId};
use redb::{
    Database, DatabaseError, Durability, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};

use crate::staging::{
    Catalog, SharedCatalog, Staging, decode, decode_event_keyed, encode, event_user, forgotten_key,
    read_catalog,
};
use crate::{Error, ReadStore, Result, Store, StoreCounts, StoreWriter};

/// 2: event payloads carry the results a search showed. 3: they carry the impression they
/// answer, and served lists are logged (`impressions`).
const FORMAT_VERSION: u32 = 3;
const FILE_NAME: &str = "aisle.redb";
/// Staged events are written into the open transaction in sorted runs of this size, so an
/// import of any size streams instead of holding every event twice.
pub(crate) const FLUSH_EVENTS: usize = 1 << 18;

const META: TableDefinition<&str, u32> = TableDefinition::new("meta");
const USER_IDS: TableDefinition<&str, u32> = TableDefinition::new("user_ids");
const USERS: TableDefinition<u32, &[u8]> = TableDefinition::new("users");
const ITEM_IDS: TableDefinition<&str, u32> = TableDefinition::new("item_ids");
const ITEMS: TableDefinition<u32, &[u8]> = TableDefinition::new("items");
const KINDS: TableDefinition<u16, &str> = TableDefinition::new("kinds");
const EVENTS: TableDefinition<u128, &[u8]> = TableDefinition::new("events");
/// Idempotency records: key → encoded [`crate::Remembered`].
const REMEMBERED: TableDefinition<&str, &[u8]> = TableDefinition::new("idempotency");
/// Served lists by impression id.
const IMPRESSIONS: TableDefinition<u64, &[u8]> = TableDefinition::new("impressions");

/// How a store writes; fixed at open. Only tests change it (`testing::Knobs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tuning {
    /// Durability of writer commits: `Immediate`, i.e. synced before `commit` returns.
    pub durability: Durability,
    /// Staged events per flush into the open transaction ([`FLUSH_EVENTS`]).
    pub flush_events: usize,
}

impl Default for Tuning {
    fn default() -> Self {
        Self {
            durability: Durability::Immediate,
            flush_events: FLUSH_EVENTS,
        }
    }
}

/// The embedded store in a data directory.
pub struct RedbStore {
    db: Database,
    path: PathBuf,
    catalog: SharedCatalog,
    tuning: Tuning,
    /// An encrypted store's per-user keys ([`crate::keyring`]). With names when users are
    /// looked up by a keyed hash of their id and their records sealed: every encrypted
    /// store created since that came in (the `user_names` flag in `meta`).
    keyring: Option<Arc<crate::keyring::Keyring>>,
}

impl RedbStore {
    /// Opens (or creates) the store in `dir`. After a crash this recovers the last commit.
    /// With a master key in the environment (`AISLE_MASTER_KEY`, `AISLE_MASTER_KEY_FILE`
    /// or `AISLE_PASSPHRASE`) the store is encrypted at rest ([`crate::keys`]).
    pub fn open(dir: &Path) -> Result<Self> {
        Self::open_keyed(dir, crate::keys::MasterKey::from_env()?)
    }

    /// Opens (or creates) the store in `dir`, encrypted under `master` when given. A new
    /// data directory with a key is encrypted; an encrypted one needs its key; a plain one
    /// stays plain (converting it is not supported: import into a new directory).
    pub fn open_keyed(dir: &Path, master: Option<crate::keys::MasterKey>) -> Result<Self> {
        let dir_created = !dir.exists();
        fs_err::create_dir_all(dir)?;
        let path = dir.join(FILE_NAME);
        let file_created = !path.exists();
        let encrypted = crate::keys::is_encrypted(dir);
        let mut keyring = None;
        let db = match master {
            None if encrypted => {
                return Err(Error::Encryption(format!(
                    "{} is encrypted: set {}, {} or {} to open it",
                    dir.display(),
                    crate::keys::MASTER_KEY_VAR,
                    crate::keys::MASTER_KEY_FILE_VAR,
                    crate::keys::PASSPHRASE_VAR
                )));
            }
            None => Database::builder().create(&path),
            Some(_) if !encrypted && !file_created => {
                return Err(Error::Encryption(format!(
                    "{} holds a store that is not encrypted; a master key encrypts new data directories only (import into a new one to encrypt this data)",
                    dir.display()
                )));
            }
            Some(master) => {
                let key = crate::keys::data_key(dir, &master, true)?;
                keyring = Some((
                    crate::keyring::Keyring::open(
                        dir,
                        &crate::keys::derived_key(&key, "user-keys"),
                    )?,
                    crate::keyring::UserNames::new(&crate::keys::derived_key(&key, "user-ids")),
                ));
                let file = fs_err::OpenOptions::new()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(false)
                    .open(&path)?
                    .into_parts()
                    .0;
                let backend = crate::encrypted::EncryptedBackend::open(
                    redb::backends::FileBackend::new(file).map_err(|e| open_error(e, &path))?,
                    &key,
                )
                .map_err(|e| Error::Encryption(format!("{}: {e}", path.display())))?;
                Database::builder().create_with_backend(backend)
            }
        }
        .map_err(|e| open_error(e, &path))?;
        if file_created {
            sync_dir(dir)?;
        }
        if let Some(parent) = dir
            .parent()
            .filter(|p| dir_created && !p.as_os_str().is_empty())
        {
            sync_dir(parent)?;
        }
        Self::from_database(db, path, Tuning::default(), keyring)
    }

    /// Opens (or creates) a store over any redb storage backend, with test knobs: this is how
    /// the power-cut test puts the store on a disk that forgets unsynced writes. `path()` of
    /// such a store is a placeholder, [`crate::testing::BACKEND_PATH`].
    #[cfg(feature = "testing")]
    pub fn open_with_backend(
        backend: impl redb::StorageBackend,
        knobs: crate::testing::Knobs,
    ) -> Result<Self> {
        let path = PathBuf::from(crate::testing::BACKEND_PATH);
        let db = match knobs.encryption_key {
            Some(key) => Database::builder().create_with_backend(
                crate::encrypted::EncryptedBackend::open(backend, &key)
                    .map_err(|e| Error::Encryption(e.to_string()))?,
            ),
            None => Database::builder().create_with_backend(backend),
        }
        .map_err(|e| open_error(e, &path))?;
        Self::from_database(db, path, knobs.tuning(), None)
    }

    /// The one constructor: checks the format, creates the tables and loads the id maps.
    /// An encrypted store comes with its keyring and the names it would look users up by.
    fn from_database(
        db: Database,
        path: PathBuf,
        tuning: Tuning,
        keyring: Option<(crate::keyring::Keyring, crate::keyring::UserNames)>,
    ) -> Result<Self> {
        let mut store = Self {
            db,
            path,
            catalog: Arc::new(RwLock::new(Catalog::default())),
            tuning,
            keyring: None,
        };
        let keyed = store.init(keyring.is_some())?;
        store.keyring = match keyring {
            Some((ring, names)) if keyed => Some(Arc::new(ring.with_names(names))),
            Some((ring, _)) => Some(Arc::new(ring)),
            None if keyed => {
                return Err(Error::Encryption(
                    "this store looks users up by keyed names: open it with its key".into(),
                ));
            }
            None => None,
        };
        if let Some(ring) = &store.keyring {
            // A crash between a forget's commit and the destruction of the keys leaves
            // keys of forgotten users: destroy them now.
            let forgotten: Vec<u32> = read_catalog(&store.catalog)
                .users
                .iter()
                .filter(|(name, _)| name.starts_with('\0'))
                .map(|(_, id)| *id)
                .collect();
            ring.shred(&forgotten)?;
        }
        Ok(store)
    }

    /// The store file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Checks the format, creates the tables and loads the id maps. Answers whether users
    /// are looked up by keyed names: always in a store created now with `keyed_names`
    /// possible, never in one created without, as its `meta` says.
    fn init(&self, keyed_names: bool) -> Result<bool> {
        let tx = self.db.begin_write()?;
        let keyed;
        {
            let mut meta = tx.open_table(META)?;
            let found = meta.get("format")?.map(|v| v.value());
            let flagged = meta.get("user_names")?.is_some();
            keyed = flagged || (found.is_none() && keyed_names);
            if keyed && !flagged {
                meta.insert("user_names", 1)?;
            }
            match found {
                None => {
                    meta.insert("format", FORMAT_VERSION)?;
                }
                Some(FORMAT_VERSION) => {}
                Some(found) => {
                    return Err(Error::FormatVersion {
                        path: self.path.clone(),
                        found,
                        expected: FORMAT_VERSION,
                    });
                }
            }
            // Create every table so that readers never meet a missing one.
            tx.open_table(USER_IDS)?;
            tx.open_table(USERS)?;
            tx.open_table(ITEM_IDS)?;
            tx.open_table(ITEMS)?;
            tx.open_table(KINDS)?;
            tx.open_table(EVENTS)?;
            tx.open_table(REMEMBERED)?;
            tx.open_table(IMPRESSIONS)?;
        }
        tx.commit()?;

        let rx = self.db.begin_read()?;
        let mut catalog = Catalog::default();
        for entry in rx.open_table(USER_IDS)?.iter()? {
            let (k, v) = entry?;
            catalog.users.insert(k.value().to_string(), v.value());
        }
        for entry in rx.open_table(ITEM_IDS)?.iter()? {
            let (k, v) = entry?;
            catalog.items.insert(k.value().to_string(), v.value());
        }
        for entry in rx.open_table(KINDS)?.iter()? {
            let (_, v) = entry?;
            catalog.kinds.push(v.value().to_string());
        }
        *self
            .catalog
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = catalog;
        Ok(keyed)
    }

    /// What `external` is looked up by in this store.
    fn user_key<'a>(&self, external: &'a str) -> std::borrow::Cow<'a, str> {
        crate::keyring::user_key(self.keyring.as_deref(), external)
    }
}

fn open_error(e: DatabaseError, path: &Path) -> Error {
    match e {
        DatabaseError::DatabaseAlreadyOpen => Error::Locked {
            path: path.to_path_buf(),
        },
        other => Error::Backend(other.into()),
    }
}

/// Makes a new directory entry durable ([`aisle_core::fs::sync_dir`]).
fn sync_dir(dir: &Path) -> Result<()> {
    aisle_core::fs::sync_dir(dir)?;
    Ok(())
}

impl ReadStore for RedbStore {
    fn counts(&self) -> Result<StoreCounts> {
        let events = self.db.begin_read()?.open_table(EVENTS)?.len()? as usize;
        let catalog = read_catalog(&self.catalog);
        Ok(StoreCounts {
            users: catalog.users.len(),
            items: catalog.items.len(),
            events,
        })
    }

    fn user_id(&self, external: &str) -> Result<Option<UserId>> {
        Ok(read_catalog(&self.catalog)
            .users
            .get(self.user_key(external).as_ref())
            .copied()
            .map(UserId))
    }

    fn item_id(&self, external: &str) -> Result<Option<ItemId>> {
        Ok(read_catalog(&self.catalog)
            .items
            .get(external)
            .copied()
            .map(ItemId))
    }

    // Records and events are read through a read transaction of their own; ids, counts and
    // kinds come from the in-memory catalog (no transaction needed).
    fn user(&self, id: UserId) -> Result<Option<User>> {
        self.read()?.user(id)
    }

    fn item(&self, id: ItemId) -> Result<Option<Item>> {
        self.read()?.item(id)
    }

    fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()> {
        self.read()?.scan_items(visit)
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()> {
        self.read()?.scan_users(visit)
    }

    fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()> {
        self.read()?.scan_events(visit)
    }

    fn custom_kinds(&self) -> Result<Vec<String>> {
        Ok(read_catalog(&self.catalog).kinds.clone())
    }

    fn remembered(&self, key: &str) -> Result<Option<crate::Remembered>> {
        self.read()?.remembered(key)
    }

    fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()> {
        self.read()?.scan_impressions(visit)
    }

    fn impression(&self, id: u64) -> Result<Option<Impression>> {
        self.read()?.impression(id)
    }
}

/// One read transaction of the store: ids, counts and kinds come from its tables too (not
/// from the shared in-memory catalog, which moves on with every commit).
struct RedbSnapshot {
    rx: redb::ReadTransaction,
    keyring: Option<Arc<crate::keyring::Keyring>>,
}

impl RedbSnapshot {
    /// A user record as stored: sealed under the user's key in a store with keyed names
    /// (`None` when that key was destroyed).
    fn decode_user(&self, id: u32, bytes: &[u8]) -> Result<Option<User>> {
        match self.keyring.as_deref().filter(|k| k.seals_users()) {
            Some(ring) => match ring.open_user(id, bytes)? {
                Some(plain) => decode("users", &plain).map(Some),
                None => Ok(None),
            },
            None => decode("users", bytes).map(Some),
        }
    }
}

impl ReadStore for RedbSnapshot {
    fn counts(&self) -> Result<StoreCounts> {
        Ok(StoreCounts {
            users: self.rx.open_table(USER_IDS)?.len()? as usize,
            items: self.rx.open_table(ITEM_IDS)?.len()? as usize,
            events: self.rx.open_table(EVENTS)?.len()? as usize,
        })
    }

    fn user_id(&self, external: &str) -> Result<Option<UserId>> {
        Ok(self
            .rx
            .open_table(USER_IDS)?
            .get(crate::keyring::user_key(self.keyring.as_deref(), external).as_ref())?
            .map(|v| UserId(v.value())))
    }

    fn item_id(&self, external: &str) -> Result<Option<ItemId>> {
        Ok(self
            .rx
            .open_table(ITEM_IDS)?
            .get(external)?
            .map(|v| ItemId(v.value())))
    }

    fn user(&self, id: UserId) -> Result<Option<User>> {
        let table = self.rx.open_table(USERS)?;
        let value = table.get(id.0)?;
        Ok(value
            .map(|v| self.decode_user(id.0, v.value()))
            .transpose()?
            .flatten())
    }

    fn item(&self, id: ItemId) -> Result<Option<Item>> {
        let table = self.rx.open_table(ITEMS)?;
        let value = table.get(id.0)?;
        value.map(|v| decode("items", v.value())).transpose()
    }

    fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()> {
        for entry in self.rx.open_table(ITEMS)?.iter()? {
            let (k, v) = entry?;
            visit(ItemId(k.value()), decode("items", v.value())?);
        }
        Ok(())
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()> {
        for entry in self.rx.open_table(USERS)?.iter()? {
            let (k, v) = entry?;
            if let Some(user) = self.decode_user(k.value(), v.value())? {
                visit(UserId(k.value()), user);
            }
        }
        Ok(())
    }

    fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()> {
        let keyring = self.keyring.as_deref();
        for entry in self.rx.open_table(EVENTS)?.iter()? {
            let (k, v) = entry?;
            visit(decode_event_keyed(k.value(), v.value(), keyring)?);
        }
        Ok(())
    }

    fn custom_kinds(&self) -> Result<Vec<String>> {
        let mut kinds = Vec::new();
        for entry in self.rx.open_table(KINDS)?.iter()? {
            let (_, v) = entry?;
            kinds.push(v.value().to_string());
        }
        Ok(kinds)
    }

    fn remembered(&self, key: &str) -> Result<Option<crate::Remembered>> {
        let table = self.rx.open_table(REMEMBERED)?;
        let value = table.get(key)?;
        value.map(|v| decode("idempotency", v.value())).transpose()
    }

    fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()> {
        for entry in self.rx.open_table(IMPRESSIONS)?.iter()? {
            let (_, v) = entry?;
            visit(decode("impressions", v.value())?);
        }
        Ok(())
    }

    fn impression(&self, id: u64) -> Result<Option<Impression>> {
        let table = self.rx.open_table(IMPRESSIONS)?;
        let value = table.get(id)?;
        value.map(|v| decode("impressions", v.value())).transpose()
    }
}

impl RedbStore {
    /// A read transaction as of the latest commit.
    fn read(&self) -> Result<RedbSnapshot> {
        Ok(RedbSnapshot {
            rx: self.db.begin_read()?,
            keyring: self.keyring.clone(),
        })
    }
}

impl Store for RedbStore {
    fn snapshot(&self) -> Result<Box<dyn ReadStore + '_>> {
        Ok(Box::new(self.read()?))
    }

    fn writer(&self) -> Result<Box<dyn StoreWriter + '_>> {
        // begin_write blocks while another writer is open, so the staging below sees the
        // catalog as the previous writer left it.
        let tx = self.db.begin_write()?;
        Ok(Box::new(RedbWriter {
            tx,
            staging: Staging::new(Arc::clone(&self.catalog)).with_keyring(self.keyring.clone()),
            tuning: self.tuning,
        }))
    }
}

struct RedbWriter {
    tx: redb::WriteTransaction,
    staging: Staging,
    tuning: Tuning,
}

impl RedbWriter {
    fn flush_events(&mut self) -> Result<()> {
        if self.staging.events.is_empty() {
            return Ok(());
        }
        let (mut added, mut duplicate) = (0, 0);
        {
            // Sorted keys turn B-tree inserts into appends for time-ordered data.
            let events = self.staging.events.drain_sorted();
            let mut table = self.tx.open_table(EVENTS)?;
            for (key, bytes) in events {
                if table.insert(key, bytes)?.is_some() {
                    duplicate += 1;
                } else {
                    added += 1;
                    if self.staging.keep_added {
                        let event =
                            decode_event_keyed(key, bytes, self.staging.keyring.as_deref())?;
                        self.staging.added.push((key, event));
                    }
                }
            }
        }
        self.staging.events.clear();
        self.staging.report.events_added += added;
        self.staging.report.events_duplicate += duplicate;
        Ok(())
    }

    fn flush_records(&mut self) -> Result<()> {
        let mut users = self.tx.open_table(USERS)?;
        let sealing = self.staging.keyring.clone().filter(|k| k.seals_users());
        for (id, user) in self.staging.users.drain(..) {
            let record = encode(&user);
            match &sealing {
                // The record holds the user's id: sealed under their key, like their text.
                Some(ring) => users.insert(id, ring.seal_user(id, &record).as_slice())?,
                None => users.insert(id, record.as_slice())?,
            };
        }
        let mut items = self.tx.open_table(ITEMS)?;
        for (id, item) in self.staging.items.drain(..) {
            items.insert(id, encode(&item).as_slice())?;
        }
        Ok(())
    }
}

impl StoreWriter for RedbWriter {
    crate::staging::staged_writer_methods!();

    fn add_event(&mut self, event: &RawEvent) -> Result<()> {
        self.staging.add_event(event)?;
        if self.staging.events.len() >= self.tuning.flush_events {
            self.flush_events()?;
            self.flush_records()?;
        }
        Ok(())
    }

    fn commit_listing_added(mut self: Box<Self>) -> Result<crate::Committed> {
        self.flush_events()?;
        self.flush_records()?;
        {
            let mut remembered = self.tx.open_table(REMEMBERED)?;
            if let Some(before) = self.staging.forget_remembered_before {
                let mut expired = Vec::new();
                for entry in remembered.iter()? {
                    let (key, value) = entry?;
                    let record: crate::Remembered = decode("idempotency", value.value())?;
                    if record.at_ms < before {
                        expired.push(key.value().to_string());
                    }
                }
                for key in expired {
                    remembered.remove(key.as_str())?;
                }
            }
            for (key, record) in std::mem::take(&mut self.staging.remembered) {
                remembered.insert(key.as_str(), record.as_slice())?;
            }
            let mut impressions = self.tx.open_table(IMPRESSIONS)?;
            for (id, record) in std::mem::take(&mut self.staging.impressions) {
                impressions.insert(id, record.as_slice())?;
            }
        }
        {
            let (users, items) = self.staging.new_ids();
            let mut user_ids = self.tx.open_table(USER_IDS)?;
            for (name, id) in users {
                user_ids.insert(name.as_str(), *id)?;
            }
            let mut item_ids = self.tx.open_table(ITEM_IDS)?;
            for (name, id) in items {
                item_ids.insert(name.as_str(), *id)?;
            }
            let mut kinds = self.tx.open_table(KINDS)?;
            for (code, name) in self.staging.new_kinds() {
                kinds.insert(code, name)?;
            }
            let mut items = self.tx.open_table(ITEMS)?;
            for id in std::mem::take(&mut self.staging.deleted_items) {
                if items.remove(id)?.is_some() {
                    self.staging.report.items_deleted += 1;
                }
            }
            if let Some(before) = self.staging.delete_events_before {
                let mut events = self.tx.open_table(EVENTS)?;
                let cut = crate::staging::event_key(before, 0);
                let doomed: Vec<u128> = events
                    .range(..cut)?
                    .map(|entry| entry.map(|(k, _)| k.value()))
                    .collect::<std::result::Result<_, _>>()?;
                for key in &doomed {
                    events.remove(*key)?;
                }
                self.staging.report.events_deleted += doomed.len();
                let mut impressions = self.tx.open_table(IMPRESSIONS)?;
                let mut old = Vec::new();
                for entry in impressions.iter()? {
                    let (key, value) = entry?;
                    let i: Impression = decode("impressions", value.value())?;
                    if i.at_ms < before {
                        old.push(key.value());
                    }
                }
                for key in old {
                    impressions.remove(key)?;
                }
            }
            let forgotten = self.staging.forgotten_ids();
            if !forgotten.is_empty() {
                let mut users = self.tx.open_table(USERS)?;
                for (external, id) in &self.staging.forgotten_users {
                    users.remove(*id)?;
                    user_ids.remove(external.as_str())?;
                    user_ids.insert(forgotten_key(*id).as_str(), *id)?;
                }
                let mut events = self.tx.open_table(EVENTS)?;
                let mut doomed = Vec::new();
                for entry in events.iter()? {
                    let (key, value) = entry?;
                    if forgotten.contains(&event_user(value.value())?) {
                        doomed.push(key.value());
                    }
                }
                for key in &doomed {
                    events.remove(*key)?;
                }
                let mut impressions = self.tx.open_table(IMPRESSIONS)?;
                let mut shown_to = Vec::new();
                for entry in impressions.iter()? {
                    let (key, value) = entry?;
                    let i: Impression = decode("impressions", value.value())?;
                    if i.user.is_some_and(|u| forgotten.contains(&u.0)) {
                        shown_to.push(key.value());
                    }
                }
                for key in shown_to {
                    impressions.remove(key)?;
                }
                self.staging.report.users_forgotten += forgotten.len();
                self.staging.report.events_deleted += doomed.len();
            }
        }
        let RedbWriter {
            mut tx,
            staging,
            tuning,
        } = *self;
        tx.set_durability(tuning.durability)?;
        if let Some(ring) = &staging.keyring {
            // The keys of this commit's sealed text are on disk before the text is.
            ring.persist()?;
        }
        tx.commit()?;
        if let Some(ring) = &staging.keyring {
            // The commit is durable and is reported so; should destroying the keys fail, the
            // next open destroys the keys of every forgotten user.
            let _ = ring.shred(&staging.forgotten_ids());
        }
        Ok(staging.into_committed())
    }
}
