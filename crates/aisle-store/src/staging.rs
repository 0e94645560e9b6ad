//! What both store implementations share: interning external ids, resolving kinds, encoding
//! events and computing their keys, all staged until commit.

use std::sync::{Arc, PoisonError, RwLock};

use aisle_core::{Event, EventKind, EventPayload, Item, ItemId, RawEvent, SessionId, User, UserId};
use rustc_hash::FxHashMap as HashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::{xxh3_64, xxh3_64_with_seed};

use crate::{Error, Result, WriteReport};

/// The id maps every reader and writer consults; loaded once when a store opens.
#[derive(Clone, Default)]
pub(crate) struct Catalog {
    pub users: HashMap<String, u32>,
    pub items: HashMap<String, u32>,
    /// Custom kind names; the index is the kind's code.
    pub kinds: Vec<String>,
}

pub(crate) type SharedCatalog = Arc<RwLock<Catalog>>;

pub(crate) fn read_catalog(catalog: &SharedCatalog) -> std::sync::RwLockReadGuard<'_, Catalog> {
    catalog.read().unwrap_or_else(PoisonError::into_inner)
}

/// An event as encoded on disk (postcard): dense ids and the payload.
#[derive(Serialize, Deserialize)]
pub(crate) struct StoredEvent {
    user: u32,
    item: Option<u32>,
    kind: EventKind,
    timestamp_ms: i64,
    session: Option<u64>,
    payload: EventPayload,
}

pub(crate) fn decode_event(bytes: &[u8]) -> Result<Event> {
    let stored: StoredEvent = postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        table: "events",
        reason: e.to_string(),
    })?;
    Ok(stored.into_event())
}

/// The text of a payload that is sealed under its user's key ([`crate::keyring`]).
#[derive(Serialize, Deserialize)]
struct SealedText {
    query: Option<String>,
    results: Vec<String>,
}

fn has_text(payload: &EventPayload) -> bool {
    payload.query.is_some() || !payload.results.is_empty()
}

/// As [`decode_event`], for a store with per-user keys: an event stored as its encoding
/// without its text, followed by the text sealed under the user's key (the event's key as
/// associated data). When that key was destroyed (the user forgotten) the text is gone and
/// the event comes back without it.
pub(crate) fn decode_event_keyed(
    key: u128,
    bytes: &[u8],
    keyring: Option<&crate::keyring::Keyring>,
) -> Result<Event> {
    let corrupt = |reason: String| Error::Corrupt {
        table: "events",
        reason,
    };
    let (stored, rest): (StoredEvent, _) =
        postcard::take_from_bytes(bytes).map_err(|e| corrupt(e.to_string()))?;
    let user = stored.user;
    let mut event = stored.into_event();
    if rest.is_empty() {
        return Ok(event);
    }
    if let Some(user_key) = keyring.and_then(|k| k.key(user)) {
        let plain = aisle_seal::Sealer::new(&user_key)
            .open(&key.to_le_bytes(), rest.to_vec())
            .ok_or_else(|| corrupt("an event's sealed text does not authenticate".into()))?;
        let text: SealedText = postcard::from_bytes(&plain).map_err(|e| corrupt(e.to_string()))?;
        event.payload.query = text.query;
        event.payload.results = text.results;
    }
    Ok(event)
}

impl StoredEvent {
    fn into_event(self) -> Event {
        Event {
            user: UserId(self.user),
            item: self.item.map(ItemId),
            kind: self.kind,
            timestamp_ms: self.timestamp_ms,
            session: self.session.map(SessionId),
            payload: self.payload,
        }
    }
}

pub(crate) fn decode<T: for<'de> Deserialize<'de>>(table: &'static str, bytes: &[u8]) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Corrupt {
        table,
        reason: e.to_string(),
    })
}

pub(crate) fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).expect("postcard encodes plain structs into a Vec without failing")
}

/// Hashes an external session id into a [`SessionId`].
pub fn session_id(external: &str) -> SessionId {
    SessionId(xxh3_64(external.as_bytes()))
}

/// The key of an event: timestamp in the high 64 bits (sign-flipped so that negative times sort
/// first), content fingerprint in the low 64 bits.
pub(crate) fn event_key(timestamp_ms: i64, fingerprint: u64) -> u128 {
    let time = (timestamp_ms as u64) ^ (1 << 63);
    (u128::from(time) << 64) | u128::from(fingerprint)
}

/// Staged events: keys with spans into one shared byte buffer, so staging an event does not
/// allocate.
#[derive(Default)]
pub(crate) struct StagedEvents {
    entries: Vec<(u128, u32, u32)>,
    bytes: Vec<u8>,
}

impl StagedEvents {
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Takes every staged event, sorted by key (time order).
    pub fn drain_sorted(&mut self) -> Vec<(u128, &[u8])> {
        let mut entries = std::mem::take(&mut self.entries);
        entries.sort_unstable_by_key(|e| e.0);
        let bytes = &self.bytes;
        entries
            .into_iter()
            .map(|(key, start, len)| (key, &bytes[start as usize..(start + len) as usize]))
            .collect()
    }

    /// Forgets the bytes of drained events.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.bytes.clear();
    }
}

/// Everything one writer has staged.
pub(crate) struct Staging {
    base: SharedCatalog,
    next_user: u32,
    next_item: u32,
    new_users: HashMap<String, u32>,
    new_items: HashMap<String, u32>,
    new_kinds: Vec<String>,
    occurrences: HashMap<u64, u32>,
    /// User records to write, in order (a later record for the same id wins).
    pub users: Vec<(u32, User)>,
    /// Item records to write, in order (a later record for the same id wins).
    pub items: Vec<(u32, Item)>,
    /// Encoded events with their keys.
    pub events: StagedEvents,
    /// Item records to remove at commit.
    pub deleted_items: Vec<u32>,
    /// Users to forget at commit: the name they are looked up by (their id, or its keyed
    /// name) and dense id.
    pub forgotten_users: Vec<(String, u32)>,
    pub report: WriteReport,
    /// Whether the commit lists the events it newly stored (see `commit_listing_added`).
    pub keep_added: bool,
    /// The events newly stored so far, with their keys, when `keep_added`.
    pub added: Vec<(u128, Event)>,
    /// Idempotency records to write at commit: key and encoded record.
    pub remembered: Vec<(String, Vec<u8>)>,
    /// Idempotency records older than this (ms) are dropped at commit.
    pub forget_remembered_before: Option<i64>,
    /// Events stamped before this (ms) are deleted at commit.
    pub delete_events_before: Option<i64>,
    /// Impressions to write at commit: id and encoded record.
    pub impressions: Vec<(u64, Vec<u8>)>,
    /// Per-user keys that seal the text of events (an encrypted store's), and the keyed
    /// names users are looked up by when it has them.
    pub keyring: Option<Arc<crate::keyring::Keyring>>,
}

impl Staging {
    pub fn new(base: SharedCatalog) -> Self {
        let (next_user, next_item) = {
            let catalog = read_catalog(&base);
            (catalog.users.len() as u32, catalog.items.len() as u32)
        };
        Self {
            base,
            next_user,
            next_item,
            new_users: HashMap::default(),
            new_items: HashMap::default(),
            new_kinds: Vec::new(),
            occurrences: HashMap::default(),
            users: Vec::new(),
            items: Vec::new(),
            events: StagedEvents::default(),
            deleted_items: Vec::new(),
            forgotten_users: Vec::new(),
            report: WriteReport::default(),
            keep_added: false,
            added: Vec::new(),
            remembered: Vec::new(),
            forget_remembered_before: None,
            delete_events_before: None,
            impressions: Vec::new(),
            keyring: None,
        }
    }

    /// What `external` is looked up by: itself, or its keyed name.
    fn user_key<'a>(&self, external: &'a str) -> std::borrow::Cow<'a, str> {
        crate::keyring::user_key(self.keyring.as_deref(), external)
    }

    /// Seals the text of events under their users' keys from `keyring`.
    pub fn with_keyring(mut self, keyring: Option<Arc<crate::keyring::Keyring>>) -> Self {
        self.keyring = keyring;
        self
    }

    /// Stages the removal of an item's record.
    pub fn delete_item(&mut self, external: &str) -> bool {
        let known = read_catalog(&self.base).items.get(external).copied();
        match known.or_else(|| self.new_items.get(external).copied()) {
            Some(id) => {
                self.deleted_items.push(id);
                true
            }
            None => false,
        }
    }

    /// Stages forgetting a user.
    pub fn forget_user(&mut self, external: &str) -> bool {
        let name = self.user_key(external);
        let known = read_catalog(&self.base).users.get(name.as_ref()).copied();
        match known.or_else(|| self.new_users.get(name.as_ref()).copied()) {
            Some(id) => {
                self.forgotten_users.push((name.into_owned(), id));
                true
            }
            None => false,
        }
    }

    pub fn resolve_kind(&self, name: &str) -> Result<EventKind> {
        if let Some(kind) = EventKind::parse_builtin(name) {
            return Ok(kind);
        }
        let catalog = read_catalog(&self.base);
        catalog
            .kinds
            .iter()
            .chain(self.new_kinds.iter())
            .position(|k| k == name)
            .map(|code| EventKind::Custom(code as u16))
            .ok_or_else(|| Error::UnknownKind(aisle_core::ParseKindError(name.to_string())))
    }

    pub fn register_kind(&mut self, name: &str) -> Result<EventKind> {
        if let Ok(kind) = self.resolve_kind(name) {
            return Ok(kind);
        }
        let trimmed = name.trim();
        if trimmed.is_empty() || trimmed != name || name.contains('\0') {
            return Err(Error::InvalidEvent {
                reason: format!(
                    "custom kind name {name:?} must be non-empty, without surrounding spaces or NUL characters"
                ),
            });
        }
        let code = read_catalog(&self.base).kinds.len() + self.new_kinds.len();
        let code = u16::try_from(code).map_err(|_| Error::InvalidEvent {
            reason: "too many custom event kinds (at most 65,536)".into(),
        })?;
        self.new_kinds.push(name.to_string());
        Ok(EventKind::Custom(code))
    }

    /// The id of an external user id, creating it (without a record yet) when new.
    fn intern_user(&mut self, external: &str) -> (u32, bool) {
        let name = self.user_key(external);
        let known = read_catalog(&self.base).users.get(name.as_ref()).copied();
        if let Some(id) = known {
            return (id, false);
        }
        if let Some(&id) = self.new_users.get(name.as_ref()) {
            return (id, false);
        }
        let id = self.next_user;
        self.next_user += 1;
        self.new_users.insert(name.into_owned(), id);
        self.report.users_created += 1;
        (id, true)
    }

    fn intern_item(&mut self, external: &str) -> (u32, bool) {
        let known = read_catalog(&self.base).items.get(external).copied();
        if let Some(id) = known {
            return (id, false);
        }
        if let Some(&id) = self.new_items.get(external) {
            return (id, false);
        }
        let id = self.next_item;
        self.next_item += 1;
        self.new_items.insert(external.to_string(), id);
        self.report.items_created += 1;
        (id, true)
    }

    pub fn upsert_item(&mut self, item: Item) -> Result<ItemId> {
        check_external_id("item", &item.external_id)?;
        let (id, created) = self.intern_item(&item.external_id);
        if !created {
            self.report.records_updated += 1;
        }
        self.items.push((id, item));
        Ok(ItemId(id))
    }

    pub fn upsert_user(&mut self, user: User) -> Result<UserId> {
        check_external_id("user", &user.external_id)?;
        let (id, created) = self.intern_user(&user.external_id);
        if !created {
            self.report.records_updated += 1;
        }
        self.users.push((id, user));
        Ok(UserId(id))
    }

    /// Restarts occurrence numbering: identical events of the next batch take the keys the
    /// ones of an earlier batch took, so they are found to be duplicates.
    pub fn start_batch(&mut self) {
        self.occurrences.clear();
    }

    pub fn add_event(&mut self, raw: &RawEvent) -> Result<()> {
        check_external_id("user", &raw.user)?;
        let kind = self.resolve_kind(&raw.kind)?;
        if let Some(item) = &raw.item {
            check_external_id("item", item)?;
        }
        let (user, user_created) = self.intern_user(&raw.user);
        if user_created {
            self.users.push((user, User::new(raw.user.clone())));
        }
        let item = match &raw.item {
            Some(external) => {
                let (id, created) = self.intern_item(external);
                if created {
                    self.items.push((id, Item::new(external.clone())));
                }
                Some(id)
            }
            None => None,
        };
        let stored = StoredEvent {
            user,
            item,
            kind,
            timestamp_ms: raw.timestamp_ms,
            session: raw.session.as_deref().map(|s| session_id(s).0),
            payload: raw.payload.clone(),
        };
        let start = self.events.bytes.len();
        self.events.bytes = postcard::to_extend(&stored, std::mem::take(&mut self.events.bytes))
            .expect("postcard encodes plain structs into a Vec without failing");
        let bytes = &self.events.bytes[start..];
        let base = xxh3_64(bytes);
        let occurrence = self.occurrences.entry(base).or_insert(0);
        let user_key = match &self.keyring {
            Some(ring) if has_text(&stored.payload) => Some(ring.key_or_create(user)),
            _ => None,
        };
        let fingerprint = match &user_key {
            // Keyed by the user's key: an unkeyed hash of the text would let a guess of it
            // be checked against a copy of the store after the key is destroyed.
            Some(user_key) => keyed_fingerprint(user_key, *occurrence, bytes),
            None if *occurrence == 0 => base,
            None => xxh3_64_with_seed(bytes, u64::from(*occurrence)),
        };
        *occurrence += 1;
        let key = event_key(raw.timestamp_ms, fingerprint);
        if let Some(user_key) = user_key {
            // Stored as the event without its text, then the text sealed under the user's key.
            self.events.bytes.truncate(start);
            let mut stripped = stored;
            let text = SealedText {
                query: stripped.payload.query.take(),
                results: std::mem::take(&mut stripped.payload.results),
            };
            self.events.bytes =
                postcard::to_extend(&stripped, std::mem::take(&mut self.events.bytes))
                    .expect("postcard encodes plain structs into a Vec without failing");
            let sealed =
                aisle_seal::Sealer::new(&user_key).seal(&key.to_le_bytes(), &encode(&text));
            self.events.bytes.extend_from_slice(&sealed);
        }
        let bytes = &self.events.bytes[start..];
        self.events
            .entries
            .push((key, start as u32, bytes.len() as u32));
        Ok(())
    }

    /// Custom kinds registered by this writer, with their codes.
    pub fn new_kinds(&self) -> impl Iterator<Item = (u16, &str)> {
        let first = read_catalog(&self.base).kinds.len();
        self.new_kinds
            .iter()
            .enumerate()
            .map(move |(i, name)| ((first + i) as u16, name.as_str()))
    }

    /// Id entries created by this writer.
    pub fn new_ids(&self) -> (&HashMap<String, u32>, &HashMap<String, u32>) {
        (&self.new_users, &self.new_items)
    }

    /// Merges the staged ids into the shared catalog; call after the data is durable.
    /// Stages an idempotency record.
    pub fn log_impression(&mut self, impression: &aisle_core::Impression) {
        self.impressions.push((impression.id, encode(impression)));
    }

    pub fn remember(&mut self, key: &str, record: &crate::Remembered) {
        self.remembered.push((key.to_string(), encode(record)));
    }

    /// Publishes the staged ids (after the commit) and says what the commit stored.
    pub fn into_committed(mut self) -> crate::Committed {
        let (keys, added) = std::mem::take(&mut self.added).into_iter().unzip();
        crate::Committed {
            report: self.publish(),
            added,
            keys,
        }
    }

    pub fn publish(self) -> WriteReport {
        let mut catalog = self.base.write().unwrap_or_else(PoisonError::into_inner);
        catalog.users.extend(self.new_users);
        catalog.items.extend(self.new_items);
        catalog.kinds.extend(self.new_kinds);
        for (external, id) in &self.forgotten_users {
            if catalog.users.remove(external).is_some() {
                catalog.users.insert(forgotten_key(*id), *id);
            }
        }
        self.report
    }
}

/// What stands in for a forgotten user's external id, so that the dense id stays taken. It
/// starts with a NUL, which no imported id holds.
pub(crate) fn forgotten_key(id: u32) -> String {
    format!("\0forgotten\0{id}")
}

/// 64 bits of SHA-256 over the user's key, the occurrence and the encoded event.
fn keyed_fingerprint(user_key: &[u8; 32], occurrence: u32, bytes: &[u8]) -> u64 {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    h.update(user_key);
    h.update(occurrence.to_le_bytes());
    h.update(bytes);
    u64::from_le_bytes(h.finalize()[..8].try_into().expect("8 bytes"))
}

/// The dense user id of an encoded event, without decoding the rest.
pub(crate) fn event_user(bytes: &[u8]) -> Result<u32> {
    let (user, _): (u32, _) = postcard::take_from_bytes(bytes).map_err(|e| Error::Corrupt {
        table: "events",
        reason: e.to_string(),
    })?;
    Ok(user)
}

impl Staging {
    /// Dense ids of the users to forget.
    pub fn forgotten_ids(&self) -> Vec<u32> {
        self.forgotten_users.iter().map(|u| u.1).collect()
    }
}

fn check_external_id(what: &str, id: &str) -> Result<()> {
    if id.is_empty() {
        return Err(Error::InvalidEvent {
            reason: format!("empty {what} id"),
        });
    }
    // A forgotten user's id is replaced by a key that starts with NUL; an id with a NUL
    // could alias it (and PostgreSQL's text cannot hold one).
    if id.contains('\0') {
        return Err(Error::InvalidEvent {
            reason: format!("{what} id {id:?} contains a NUL character"),
        });
    }
    Ok(())
}

/// The `StoreWriter` methods every backend answers from its `staging` field alone: all but
/// `add_event` (a backend may flush there) and the commit.
macro_rules! staged_writer_methods {
    () => {
        fn register_kind(&mut self, name: &str) -> $crate::Result<aisle_core::EventKind> {
            self.staging.register_kind(name)
        }

        fn resolve_kind(&self, name: &str) -> $crate::Result<aisle_core::EventKind> {
            self.staging.resolve_kind(name)
        }

        fn upsert_item(&mut self, item: aisle_core::Item) -> $crate::Result<aisle_core::ItemId> {
            self.staging.upsert_item(item)
        }

        fn upsert_user(&mut self, user: aisle_core::User) -> $crate::Result<aisle_core::UserId> {
            self.staging.upsert_user(user)
        }

        fn delete_item(&mut self, external: &str) -> $crate::Result<bool> {
            Ok(self.staging.delete_item(external))
        }

        fn forget_user(&mut self, external: &str) -> $crate::Result<bool> {
            Ok(self.staging.forget_user(external))
        }

        fn start_batch(&mut self) {
            self.staging.start_batch();
        }

        fn keep_added_events(&mut self) {
            self.staging.keep_added = true;
        }

        fn remember(&mut self, key: &str, record: &$crate::Remembered) {
            self.staging.remember(key, record);
        }

        fn forget_remembered_before(&mut self, before_ms: i64) {
            self.staging.forget_remembered_before = Some(before_ms);
        }

        fn delete_events_before(&mut self, before_ms: i64) {
            self.staging.delete_events_before = Some(before_ms);
        }

        fn log_impression(&mut self, impression: &aisle_core::Impression) {
            self.staging.log_impression(impression);
        }
    };
}
pub(crate) use staged_writer_methods;
