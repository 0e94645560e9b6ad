//! The shop's live state: the event log as of the last durable commit, with indexes by user,
//! session and item, the catalogue, the live stream and the query counts. Only the writer
//! changes it, from what each commit stored (see `writer.rs`).

use std::collections::VecDeque;
use std::num::NonZeroUsize;

use aisle_core::{EventKind, Item};
use aisle_features::{EventLog, Interaction, KindWeights, NO_ITEM};
use aisle_store::ReadStore;
use lru::LruCache;
use rustc_hash::FxHashMap;
use serde::Serialize;

pub use crate::answers::FeedEntry;

/// Counts of one logged query.
#[derive(Clone, Debug, Default, Serialize)]
pub struct QueryStats {
    /// Times searched.
    pub searches: u64,
    /// Times it found nothing.
    pub zero_results: u64,
}

/// Bounds on the live view's maps that client input can grow.
#[derive(Clone, Copy, Debug)]
pub struct LiveLimits {
    /// Distinct queries counted.
    pub queries: NonZeroUsize,
    /// Sessions indexed.
    pub sessions: NonZeroUsize,
    /// Latest events kept per session.
    pub session_events: usize,
}

impl LiveLimits {
    /// Limits from the settings' numbers (a zero is taken as one).
    pub fn new(queries: usize, sessions: usize, session_events: usize) -> LiveLimits {
        LiveLimits {
            queries: NonZeroUsize::new(queries).unwrap_or(NonZeroUsize::MIN),
            sessions: NonZeroUsize::new(sessions).unwrap_or(NonZeroUsize::MIN),
            session_events: session_events.max(1),
        }
    }
}

impl Default for LiveLimits {
    /// 10,000 queries, 100,000 sessions, 200 events per session.
    fn default() -> Self {
        LiveLimits::new(10_000, 100_000, 200)
    }
}

/// The event log as of the last acknowledged event, with indexes by user and session.
///
/// The maps keyed by what clients send (session ids, query text) are least-recently-used
/// caches with a fixed capacity, so a flood of distinct sessions or queries costs a bounded
/// amount of memory: the oldest entries go (their events stay in the store and the log).
pub struct Live {
    /// Every event, in arrival order.
    pub events: Vec<Interaction>,
    /// Event positions per dense user id.
    pub by_user: Vec<Vec<u32>>,
    /// Latest event positions per session key, most recently active sessions kept.
    pub by_session: LruCache<u64, VecDeque<u32>>,
    /// Users of each dense item id, sorted, without repeats (the evidence of explanations).
    pub item_users: Vec<Vec<u32>>,
    /// The same sets as bitmaps over user ids, for the items with the most users (see
    /// [`Live::user_bits`]).
    pub item_user_bits: FxHashMap<u32, Vec<u64>>,
    /// The catalogue by dense item id (`None`: known only from events).
    pub items: Vec<Option<Item>>,
    /// The latest events, newest last.
    pub feed: VecDeque<FeedEntry>,
    /// Events acknowledged since the server started.
    pub ingested: u64,
    /// Searches by normalised query, most recently searched kept.
    pub queries: LruCache<String, QueryStats>,
    /// Time of the latest event.
    pub latest_ms: i64,
    limits: LiveLimits,
}

/// What the live state holds and the bytes it has allocated for it, by part: what the
/// server's memory per event is made of (`aisle-bench serve` reports it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LiveMemory {
    /// Events held.
    pub events: usize,
    /// Users with a slot.
    pub users: usize,
    /// Items with a slot.
    pub items: usize,
    /// The events themselves (one fixed-size record each).
    pub event_bytes: usize,
    /// Event positions per user.
    pub by_user_bytes: usize,
    /// Users per item (sorted, without repeats).
    pub item_users_bytes: usize,
    /// The catalogue's records and their strings.
    pub catalogue_bytes: usize,
    /// The session and query caches (bounded by their capacity).
    pub cache_bytes: usize,
}

impl LiveMemory {
    /// Every part added up.
    pub fn total_bytes(&self) -> usize {
        self.event_bytes
            + self.by_user_bytes
            + self.item_users_bytes
            + self.catalogue_bytes
            + self.cache_bytes
    }
}

/// Heap bytes of a vector of vectors: the outer slots and each inner buffer, by capacity.
fn nested_bytes<T>(v: &[Vec<T>], outer_capacity: usize) -> usize {
    outer_capacity * std::mem::size_of::<Vec<T>>()
        + v.iter()
            .map(|inner| inner.capacity() * std::mem::size_of::<T>())
            .sum::<usize>()
}

fn item_bytes(item: &Item) -> usize {
    item.external_id.capacity()
        + item.title.capacity()
        + item.description.capacity()
        + item.category.iter().map(|c| c.capacity() + 24).sum::<usize>()
        + item.brand.as_ref().map_or(0, String::capacity)
        // A B-tree entry: the two strings and about a node slot's share.
        + item
            .attributes
            .iter()
            .map(|(k, v)| k.capacity() + v.capacity() + 64)
            .sum::<usize>()
}

/// Lines the live stream keeps.
pub const FEED: usize = 50;

/// Fewest users for an item to be given a bitmap of them ([`Live::user_bits`]).
pub const BITMAP_MIN_USERS: usize = 1024;

fn set_bit(bits: &mut Vec<u64>, user: u32) {
    let word = user as usize / 64;
    if bits.len() <= word {
        bits.resize(word + 1, 0);
    }
    bits[word] |= 1 << (user % 64);
}

impl Live {
    /// Its limits.
    pub fn limits(&self) -> LiveLimits {
        self.limits
    }

    /// An empty view with these limits.
    pub fn new(limits: LiveLimits) -> Live {
        Live {
            events: Vec::new(),
            by_user: Vec::new(),
            by_session: LruCache::new(limits.sessions),
            item_users: Vec::new(),
            item_user_bits: FxHashMap::default(),
            items: Vec::new(),
            feed: VecDeque::new(),
            ingested: 0,
            queries: LruCache::new(limits.queries),
            latest_ms: 0,
            limits,
        }
    }

    /// Loads everything the store holds.
    pub fn load(store: &dyn ReadStore, limits: LiveLimits) -> aisle_store::Result<Live> {
        let counts = store.counts()?;
        let mut live = Live {
            items: vec![None; counts.items],
            ..Live::new(limits)
        };
        store.scan_items(&mut |id, item| put_item(&mut live.items, id.index(), item))?;
        let log = EventLog::load(store).map_err(|e| aisle_store::Error::Corrupt {
            table: "events",
            reason: e.to_string(),
        })?;
        live.by_user = vec![Vec::new(); counts.users];
        // Room for an eighth more events than the log holds: the vector's doubling would
        // otherwise leave up to half of it unused (at 10 million events, 16.8 million slots).
        live.events.reserve_exact(log.len() + log.len() / 8 + 1024);
        for e in log.events() {
            live.push(*e);
        }
        Ok(live)
    }

    /// Adds one event (its ids already assigned by the store).
    pub fn push(&mut self, e: Interaction) {
        let at = self.events.len() as u32;
        let user = e.user as usize;
        if self.by_user.len() <= user {
            self.by_user.resize(user + 1, Vec::new());
        }
        self.by_user[user].push(at);
        if e.session != 0 {
            let cap = self.limits.session_events;
            let positions = self.by_session.get_or_insert_mut(e.session, VecDeque::new);
            if positions.len() == cap {
                positions.pop_front();
            }
            positions.push_back(at);
        }
        if e.item != NO_ITEM {
            let item = e.item as usize;
            if self.items.len() <= item {
                self.items.resize(item + 1, None);
            }
            if self.item_users.len() <= item {
                self.item_users.resize(item + 1, Vec::new());
            }
            let users = &mut self.item_users[item];
            if let Err(slot) = users.binary_search(&e.user) {
                users.insert(slot, e.user);
                if let Some(bits) = self.item_user_bits.get_mut(&e.item) {
                    set_bit(bits, e.user);
                } else if users.len() >= BITMAP_MIN_USERS && users.len() * 32 >= self.by_user.len()
                {
                    let mut bits = Vec::new();
                    users.iter().for_each(|&u| set_bit(&mut bits, u));
                    self.item_user_bits.insert(e.item, bits);
                }
            }
        }
        self.latest_ms = self.latest_ms.max(e.timestamp_ms);
        self.events.push(e);
    }

    /// The allocated bytes of each part, by capacity (allocator overhead not counted).
    pub fn memory(&self) -> LiveMemory {
        let sessions: usize = self
            .by_session
            .iter()
            .map(|(_, positions)| 48 + 8 + positions.capacity() * 4)
            .sum();
        let queries: usize = self
            .queries
            .iter()
            .map(|(query, _)| 48 + query.capacity() + std::mem::size_of::<QueryStats>())
            .sum();
        LiveMemory {
            events: self.events.len(),
            users: self.by_user.len(),
            items: self.items.len(),
            event_bytes: self.events.capacity() * std::mem::size_of::<Interaction>(),
            by_user_bytes: nested_bytes(&self.by_user, self.by_user.capacity()),
            item_users_bytes: nested_bytes(&self.item_users, self.item_users.capacity())
                + self
                    .item_user_bits
                    .values()
                    .map(|bits| 8 + 24 + bits.capacity() * 8)
                    .sum::<usize>(),
            catalogue_bytes: self.items.capacity() * std::mem::size_of::<Option<Item>>()
                + self.items.iter().flatten().map(item_bytes).sum::<usize>(),
            cache_bytes: sessions + queries,
        }
    }

    /// Counts one search for the dashboard's query statistics.
    pub fn count_query(&mut self, query: &str, found_nothing: bool) {
        let key = query.trim().to_lowercase();
        if key.is_empty() {
            return;
        }
        let stats = self.queries.get_or_insert_mut(key, QueryStats::default);
        stats.searches += 1;
        stats.zero_results += u64::from(found_nothing);
    }

    /// The latest event positions of a session (without marking it as used).
    pub fn session_positions(&self, session: u64) -> Vec<u32> {
        self.by_session
            .peek(&session)
            .map(|p| p.iter().copied().collect())
            .unwrap_or_default()
    }

    /// Records an event for the live stream.
    pub fn announce(&mut self, entry: FeedEntry) {
        if self.feed.len() == FEED {
            self.feed.pop_front();
        }
        self.feed.push_back(entry);
    }

    /// Items, kinds and times of the events at `positions` that say something about taste.
    pub fn history_of(&self, positions: &[u32]) -> (Vec<u32>, Vec<EventKind>, Vec<i64>) {
        let weights = KindWeights::default();
        let mut items = Vec::new();
        let mut kinds = Vec::new();
        let mut times = Vec::new();
        for &p in positions {
            let e = &self.events[p as usize];
            if e.item != NO_ITEM && weights.weight(e.kind) != 0.0 {
                items.push(e.item);
                kinds.push(e.kind);
                times.push(e.timestamp_ms);
            }
        }
        (items, kinds, times)
    }

    /// Users who interacted with `item`, sorted.
    pub fn users_of(&self, item: u32) -> &[u32] {
        self.item_users
            .get(item as usize)
            .map_or(&[], Vec::as_slice)
    }

    /// The users of `item` as a bitmap over user ids (bit `u % 64` of word `u / 64`), for
    /// the items that have one: those with at least [`BITMAP_MIN_USERS`] users and one
    /// user in 32 of all when they reached it, where a bitmap costs no more memory than the
    /// list. An explanation then tests a user's membership without first marking the
    /// recommended item's users, which for the best sellers of a large shop (tens of
    /// thousands of users each) was most of a recommendation's time.
    pub fn user_bits(&self, item: u32) -> Option<&[u64]> {
        self.item_user_bits.get(&item).map(Vec::as_slice)
    }

    /// Takes a forgotten user out of the explanation evidence.
    pub fn drop_user_evidence(&mut self, user: u32) {
        for users in &mut self.item_users {
            if let Ok(slot) = users.binary_search(&user) {
                users.remove(slot);
            }
        }
        for bits in self.item_user_bits.values_mut() {
            if let Some(word) = bits.get_mut(user as usize / 64) {
                *word &= !(1 << (user % 64));
            }
        }
    }

    /// Items bought by a user.
    pub fn bought(&self, user: u32) -> Vec<u32> {
        self.by_user
            .get(user as usize)
            .map(|positions| {
                positions
                    .iter()
                    .map(|&p| &self.events[p as usize])
                    .filter(|e| e.kind == EventKind::Purchase && e.item != NO_ITEM)
                    .map(|e| e.item)
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Items by recent interest: each event counts `0.5^(age / half_life)`, age measured
    /// from the server's clock `now_ms`. Events later than `now_ms` are not counted (an
    /// event from the future cannot take over the list). A log with nothing within the
    /// horizon of now (a historical data set) is aged from its newest event instead.
    pub fn trending(&self, now_ms: i64, half_life_ms: i64, horizon_ms: i64) -> Vec<(u32, f32)> {
        let weights = KindWeights::default();
        // The newest event not in the future: `latest_ms` unless a future one moved it.
        let newest_past = if self.events.is_empty() {
            None
        } else if self.latest_ms <= now_ms {
            Some(self.latest_ms)
        } else {
            self.events
                .iter()
                .map(|e| e.timestamp_ms)
                .filter(|&t| t <= now_ms)
                .max()
        };
        let reference = match newest_past {
            Some(t) if now_ms - t > horizon_ms => t,
            _ => now_ms,
        };
        let mut scores: FxHashMap<u32, f32> = FxHashMap::default();
        for e in self.events.iter().rev() {
            let age = reference - e.timestamp_ms;
            if !(0..=horizon_ms).contains(&age) {
                continue;
            }
            if e.item != NO_ITEM {
                let w = weights.weight(e.kind).max(0.0);
                *scores.entry(e.item).or_default() +=
                    w * 0.5f32.powf(age as f32 / half_life_ms as f32);
            }
        }
        let mut list: Vec<(u32, f32)> = scores.into_iter().collect();
        list.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        list
    }
}

/// Sets `items[at]`, growing the list when `at` is past its end.
pub(crate) fn put_item(items: &mut Vec<Option<Item>>, at: usize, item: Item) {
    if items.len() <= at {
        items.resize(at + 1, None);
    }
    items[at] = Some(item);
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY_MS: i64 = 86_400_000;

    fn event(item: u32, session: u64, timestamp_ms: i64) -> Interaction {
        Interaction {
            user: 0,
            item,
            kind: EventKind::View,
            timestamp_ms,
            session,
            value: 0.0,
        }
    }

    #[test]
    fn user_bitmaps_hold_the_same_users_as_the_lists() {
        // Item 0 is bought by 3,600 of 3,600 users, item 1 by every third, item 2 by 50.
        let mut live = Live::new(LiveLimits::default());
        let mut t = 1_700_000_000_000;
        for user in 0..3_600u32 {
            for item in [0, 1, 2] {
                if item == 0 || (item == 1 && user % 3 == 0) || (item == 2 && user < 50) {
                    t += 1;
                    live.push(Interaction {
                        user,
                        ..event(item, 1, t)
                    });
                }
            }
        }
        live.drop_user_evidence(7);
        live.drop_user_evidence(9);
        let members = |bits: &[u64]| -> Vec<u32> {
            (0..bits.len() as u32 * 64)
                .filter(|&u| bits[u as usize / 64] & (1 << (u % 64)) != 0)
                .collect()
        };
        let bits = live.user_bits(0).expect("the best seller has a bitmap");
        assert_eq!(members(bits), live.users_of(0));
        assert_eq!(
            live.users_of(0).len(),
            3_598,
            "the forgotten users are out of both"
        );
        // Every third user is 1,200 users: one in three of all, past the threshold.
        let bits = live.user_bits(1).expect("a bitmap once past the threshold");
        assert_eq!(members(bits), live.users_of(1));
        assert!(live.user_bits(2).is_none(), "50 users keep a list only");
    }

    #[test]
    fn memory_counts_each_part_by_capacity() {
        let mut live = Live::new(LiveLimits::default());
        assert_eq!(live.memory().total_bytes(), 0);
        for i in 0..1000u32 {
            live.push(Interaction {
                user: i % 10,
                ..event(
                    i % 7,
                    u64::from(i % 3) + 1,
                    1_700_000_000_000 + i64::from(i),
                )
            });
        }
        let m = live.memory();
        assert_eq!((m.events, m.users, m.items), (1000, 10, 7));
        let record = std::mem::size_of::<Interaction>();
        assert!(m.event_bytes >= 1000 * record && m.event_bytes <= 2000 * record);
        // 1000 positions of 4 bytes, plus ten vectors' headers.
        assert!(m.by_user_bytes >= 4000 + 10 * 24, "{m:?}");
        // Each of the 7 items has the 10 users once.
        assert!(m.item_users_bytes >= 7 * 10 * 4, "{m:?}");
        assert!(m.cache_bytes > 0, "three sessions are cached");
        assert_eq!(
            m.total_bytes(),
            m.event_bytes
                + m.by_user_bytes
                + m.item_users_bytes
                + m.catalogue_bytes
                + m.cache_bytes
        );
    }

    #[test]
    fn an_event_from_the_future_does_not_take_over_trending() {
        let now = 1_800_000_000_000;
        let mut live = Live::new(LiveLimits::default());
        for (i, item) in [1, 1, 2, 3].into_iter().enumerate() {
            live.push(event(item, 0, now - 3_600_000 * (i as i64 + 1)));
        }
        let before = live.trending(now, DAY_MS, 14 * DAY_MS);
        live.push(event(9, 0, 4_070_908_800_000));
        let after = live.trending(now, DAY_MS, 14 * DAY_MS);
        assert_eq!(before, after);
        assert_eq!(after[0].0, 1);
        // A historical log (nothing within the horizon of now) is aged from its newest event.
        let old = live.trending(now + 100 * DAY_MS, DAY_MS, 14 * DAY_MS);
        assert_eq!(old.iter().map(|x| x.0).collect::<Vec<_>>(), vec![1, 2, 3]);
    }

    #[test]
    fn sessions_and_queries_stay_within_their_caps() {
        let limits = LiveLimits {
            queries: NonZeroUsize::new(10).expect("10"),
            sessions: NonZeroUsize::new(5).expect("5"),
            session_events: 2,
        };
        let mut live = Live::new(limits);
        for s in 1..=1_000u64 {
            live.push(event(1, s, 0));
            live.count_query(&format!("query {s}"), false);
        }
        assert_eq!(live.by_session.len(), 5);
        assert_eq!(live.queries.len(), 10);
        assert_eq!(live.session_positions(1_000), vec![999]);
        assert!(
            live.session_positions(1).is_empty(),
            "the oldest session went first"
        );
        for item in [4, 5, 6] {
            live.push(event(item, 7, 0));
        }
        let kept: Vec<u32> = live
            .session_positions(7)
            .iter()
            .map(|&p| live.events[p as usize].item)
            .collect();
        assert_eq!(kept, vec![5, 6], "the latest events of a long session");
    }
}
