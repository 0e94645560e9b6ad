//! The compact in-memory event log.

use aisle_core::{EventKind, ItemId, UserId};
use aisle_store::ReadStore;

use crate::Result;

/// `item` of an [`Interaction`] without an item (a search, a CDNOW purchase).
pub const NO_ITEM: u32 = u32::MAX;

/// One event as training sees it: 32 bytes, no strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Interaction {
    /// Dense user id.
    pub user: u32,
    /// Dense item id, or [`NO_ITEM`].
    pub item: u32,
    /// Event kind.
    pub kind: EventKind,
    /// Milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// Source session key, 0 when the source had none.
    pub session: u64,
    /// Rating value, quantity or 0.
    pub value: f32,
}

impl Interaction {
    /// A stored event as training sees it. Every view of the log (training, the live state)
    /// converts through here, so their session keys and values agree.
    pub fn of(e: &aisle_core::Event) -> Interaction {
        Interaction {
            user: e.user.0,
            item: e.item.map_or(NO_ITEM, |i| i.0),
            kind: e.kind,
            timestamp_ms: e.timestamp_ms,
            session: e.session.map_or(0, |s| s.0),
            value: e.payload.value.or(e.payload.quantity).unwrap_or(0.0),
        }
    }

    /// The item, if the event has one.
    pub fn item(&self) -> Option<ItemId> {
        (self.item != NO_ITEM).then_some(ItemId(self.item))
    }

    /// The user.
    pub fn user(&self) -> UserId {
        UserId(self.user)
    }
}

/// Every event in time order, with the id ranges of the store it came from.
#[derive(Clone, Debug, Default)]
pub struct EventLog {
    pub(crate) events: Vec<Interaction>,
    pub(crate) n_users: usize,
    pub(crate) n_items: usize,
}

impl EventLog {
    /// Reads every event of the store.
    pub fn load(store: &dyn ReadStore) -> Result<EventLog> {
        let counts = store.counts()?;
        let mut events = Vec::with_capacity(counts.events);
        store.scan_events(&mut |e| events.push(Interaction::of(&e)))?;
        Ok(EventLog {
            events,
            n_users: counts.users,
            n_items: counts.items,
        })
    }

    /// A log over given events (time-sorted here), for tests and derived logs.
    pub fn from_events(mut events: Vec<Interaction>, n_users: usize, n_items: usize) -> EventLog {
        events.sort_by_key(|e| e.timestamp_ms);
        EventLog {
            events,
            n_users,
            n_items,
        }
    }

    /// This log without the events of `users` (sorted ids), in the same order and over the
    /// same id ranges: what a refit after forgetting them would load.
    pub fn without_users(&self, users: &[u32]) -> EventLog {
        EventLog {
            events: self
                .events
                .iter()
                .filter(|e| users.binary_search(&e.user).is_err())
                .copied()
                .collect(),
            n_users: self.n_users,
            n_items: self.n_items,
        }
    }

    /// The events, in time order.
    pub fn events(&self) -> &[Interaction] {
        &self.events
    }

    /// Size of the user id range (every id is below it).
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Size of the item id range.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of events.
    pub fn len(&self) -> usize {
        self.events.len()
    }

    /// True when there are no events.
    pub fn is_empty(&self) -> bool {
        self.events.is_empty()
    }

    /// Indices of the events ordered by user, then time (stable: ties keep log order).
    pub fn by_user(&self) -> Vec<u32> {
        let mut order: Vec<u32> = (0..self.events.len() as u32).collect();
        order.sort_by_key(|&i| {
            let e = &self.events[i as usize];
            (e.user, e.timestamp_ms)
        });
        order
    }
}
