//! The in-memory store: for tests and throw-away runs. Same semantics as the embedded store,
//! nothing survives the process.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};

use aisle_core::{Event, Impression, Item, ItemId, RawEvent, User, UserId};

use crate::staging::{Catalog, SharedCatalog, Staging, decode_event, event_user, read_catalog};
use crate::{ReadStore, Result, Store, StoreCounts, StoreWriter};

#[derive(Clone, Default)]
struct Tables {
    users: BTreeMap<u32, User>,
    items: BTreeMap<u32, Item>,
    events: BTreeMap<u128, Vec<u8>>,
    remembered: BTreeMap<String, crate::Remembered>,
    impressions: BTreeMap<u64, Vec<u8>>,
}

/// A store that lives in memory only.
pub struct MemStore {
    catalog: SharedCatalog,
    tables: RwLock<Tables>,
    writer_lock: Mutex<()>,
}

impl Default for MemStore {
    fn default() -> Self {
        Self::new()
    }
}

impl MemStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            catalog: Arc::new(RwLock::new(Catalog::default())),
            tables: RwLock::new(Tables::default()),
            writer_lock: Mutex::new(()),
        }
    }

    fn tables(&self) -> std::sync::RwLockReadGuard<'_, Tables> {
        self.tables.read().unwrap_or_else(PoisonError::into_inner)
    }
}

impl ReadStore for MemStore {
    fn counts(&self) -> Result<StoreCounts> {
        let catalog = read_catalog(&self.catalog);
        Ok(StoreCounts {
            users: catalog.users.len(),
            items: catalog.items.len(),
            events: self.tables().events.len(),
        })
    }

    fn user_id(&self, external: &str) -> Result<Option<UserId>> {
        Ok(read_catalog(&self.catalog)
            .users
            .get(external)
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

    fn user(&self, id: UserId) -> Result<Option<User>> {
        Ok(self.tables().users.get(&id.0).cloned())
    }

    fn item(&self, id: ItemId) -> Result<Option<Item>> {
        Ok(self.tables().items.get(&id.0).cloned())
    }

    fn scan_items(&self, visit: &mut dyn FnMut(ItemId, Item)) -> Result<()> {
        for (id, item) in &self.tables().items {
            visit(ItemId(*id), item.clone());
        }
        Ok(())
    }

    fn scan_users(&self, visit: &mut dyn FnMut(UserId, User)) -> Result<()> {
        for (id, user) in &self.tables().users {
            visit(UserId(*id), user.clone());
        }
        Ok(())
    }

    fn scan_events(&self, visit: &mut dyn FnMut(Event)) -> Result<()> {
        for bytes in self.tables().events.values() {
            visit(decode_event(bytes)?);
        }
        Ok(())
    }

    fn custom_kinds(&self) -> Result<Vec<String>> {
        Ok(read_catalog(&self.catalog).kinds.clone())
    }

    fn remembered(&self, key: &str) -> Result<Option<crate::Remembered>> {
        Ok(self.tables().remembered.get(key).cloned())
    }

    fn scan_impressions(&self, visit: &mut dyn FnMut(Impression)) -> Result<()> {
        for bytes in self.tables().impressions.values() {
            visit(crate::staging::decode("impressions", bytes)?);
        }
        Ok(())
    }

    fn impression(&self, id: u64) -> Result<Option<Impression>> {
        self.tables()
            .impressions
            .get(&id)
            .map(|b| crate::staging::decode("impressions", b))
            .transpose()
    }
}

impl Store for MemStore {
    fn snapshot(&self) -> Result<Box<dyn ReadStore + '_>> {
        // No commit is in progress while the writer lock is held, so the tables and the
        // catalog are copied as of one commit.
        let _writing = self
            .writer_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let copy = MemStore::new();
        *copy.tables.write().unwrap_or_else(PoisonError::into_inner) = self.tables().clone();
        *copy.catalog.write().unwrap_or_else(PoisonError::into_inner) =
            read_catalog(&self.catalog).clone();
        Ok(Box::new(copy))
    }

    fn writer(&self) -> Result<Box<dyn StoreWriter + '_>> {
        let guard = self
            .writer_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        Ok(Box::new(MemWriter {
            store: self,
            _guard: guard,
            staging: Staging::new(Arc::clone(&self.catalog)),
        }))
    }
}

struct MemWriter<'a> {
    store: &'a MemStore,
    _guard: MutexGuard<'a, ()>,
    staging: Staging,
}

impl StoreWriter for MemWriter<'_> {
    crate::staging::staged_writer_methods!();

    fn add_event(&mut self, event: &RawEvent) -> Result<()> {
        self.staging.add_event(event)
    }

    fn commit_listing_added(self: Box<Self>) -> Result<crate::Committed> {
        let MemWriter {
            store,
            _guard,
            mut staging,
        } = *self;
        {
            let mut tables = store.tables.write().unwrap_or_else(PoisonError::into_inner);
            let (mut added, mut duplicate) = (0, 0);
            for (key, bytes) in staging.events.drain_sorted() {
                if tables.events.insert(key, bytes.to_vec()).is_some() {
                    duplicate += 1;
                } else {
                    added += 1;
                    if staging.keep_added {
                        staging.added.push((key, decode_event(bytes)?));
                    }
                }
            }
            if let Some(before) = staging.forget_remembered_before {
                tables.remembered.retain(|_, r| r.at_ms >= before);
            }
            for (key, record) in std::mem::take(&mut staging.remembered) {
                tables
                    .remembered
                    .insert(key, crate::staging::decode("idempotency", &record)?);
            }
            for (id, bytes) in std::mem::take(&mut staging.impressions) {
                tables.impressions.insert(id, bytes);
            }
            staging.events.clear();
            staging.report.events_added += added;
            staging.report.events_duplicate += duplicate;
            tables.users.extend(staging.users.drain(..));
            tables.items.extend(staging.items.drain(..));
            for id in std::mem::take(&mut staging.deleted_items) {
                if tables.items.remove(&id).is_some() {
                    staging.report.items_deleted += 1;
                }
            }
            if let Some(before) = staging.delete_events_before {
                let kept = tables
                    .events
                    .split_off(&crate::staging::event_key(before, 0));
                staging.report.events_deleted += tables.events.len();
                tables.events = kept;
                let mut shown = BTreeMap::new();
                for (id, bytes) in std::mem::take(&mut tables.impressions) {
                    let i: Impression = crate::staging::decode("impressions", &bytes)?;
                    if i.at_ms >= before {
                        shown.insert(id, bytes);
                    }
                }
                tables.impressions = shown;
            }
            let forgotten = staging.forgotten_ids();
            if !forgotten.is_empty() {
                for id in &forgotten {
                    tables.users.remove(id);
                }
                let before = tables.events.len();
                let mut keep = std::collections::BTreeMap::new();
                for (key, bytes) in std::mem::take(&mut tables.events) {
                    if !forgotten.contains(&event_user(&bytes)?) {
                        keep.insert(key, bytes);
                    }
                }
                tables.events = keep;
                let mut shown = BTreeMap::new();
                for (id, bytes) in std::mem::take(&mut tables.impressions) {
                    let i: Impression = crate::staging::decode("impressions", &bytes)?;
                    if !i.user.is_some_and(|u| forgotten.contains(&u.0)) {
                        shown.insert(id, bytes);
                    }
                }
                tables.impressions = shown;
                staging.report.users_forgotten += forgotten.len();
                staging.report.events_deleted += before - tables.events.len();
            }
        }
        Ok(staging.into_committed())
    }
}
