//! Each user's time-ordered item sequence.

use aisle_core::EventKind;

use crate::log::{EventLog, NO_ITEM};

/// Per-user sequences of item events, oldest first, packed in three parallel arrays.
#[derive(Clone, Debug, Default)]
pub struct Sequences {
    offsets: Vec<usize>,
    items: Vec<u32>,
    kinds: Vec<EventKind>,
    timestamps: Vec<i64>,
}

impl Sequences {
    /// Builds the sequences of every user from events with an item whose kind `keep` accepts.
    pub fn build(log: &EventLog, keep: impl Fn(EventKind) -> bool) -> Sequences {
        let mut counts = vec![0usize; log.n_users() + 1];
        for e in log.events() {
            if e.item != NO_ITEM && keep(e.kind) {
                counts[e.user as usize + 1] += 1;
            }
        }
        for u in 0..log.n_users() {
            counts[u + 1] += counts[u];
        }
        let total = counts[log.n_users()];
        let mut cursor = counts.clone();
        let mut items = vec![0u32; total];
        let mut kinds = vec![EventKind::View; total];
        let mut timestamps = vec![0i64; total];
        // The log is in time order, so a counting sort by user keeps each sequence ordered.
        for e in log.events() {
            if e.item != NO_ITEM && keep(e.kind) {
                let slot = &mut cursor[e.user as usize];
                items[*slot] = e.item;
                kinds[*slot] = e.kind;
                timestamps[*slot] = e.timestamp_ms;
                *slot += 1;
            }
        }
        Sequences {
            offsets: counts,
            items,
            kinds,
            timestamps,
        }
    }

    /// Number of users (including those with an empty sequence).
    pub fn n_users(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Items of one user, oldest first.
    pub fn items(&self, user: u32) -> &[u32] {
        &self.items[self.range(user)]
    }

    /// Kinds of one user's events, aligned with [`Sequences::items`].
    pub fn kinds(&self, user: u32) -> &[EventKind] {
        &self.kinds[self.range(user)]
    }

    /// Times of one user's events, aligned with [`Sequences::items`].
    pub fn timestamps(&self, user: u32) -> &[i64] {
        &self.timestamps[self.range(user)]
    }

    fn range(&self, user: u32) -> std::ops::Range<usize> {
        self.offsets[user as usize]..self.offsets[user as usize + 1]
    }

    /// Total number of events in all sequences.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when no user has any event.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Interaction;

    #[test]
    fn sequences_are_per_user_and_in_time_order() {
        let ev = |user, item, ts, kind| Interaction {
            user,
            item,
            kind,
            timestamp_ms: ts,
            session: 0,
            value: 0.0,
        };
        let log = EventLog::from_events(
            vec![
                ev(1, 5, 30, EventKind::View),
                ev(0, 7, 20, EventKind::Purchase),
                ev(1, 6, 10, EventKind::View),
                ev(0, NO_ITEM, 5, EventKind::Search),
                ev(0, 8, 40, EventKind::View),
            ],
            2,
            9,
        );
        let all = Sequences::build(&log, |_| true);
        assert_eq!(all.items(0), &[7, 8]);
        assert_eq!(all.items(1), &[6, 5]);
        assert_eq!(all.timestamps(1), &[10, 30]);
        let purchases = Sequences::build(&log, |k| k == EventKind::Purchase);
        assert_eq!(purchases.items(0), &[7]);
        assert!(purchases.items(1).is_empty());
    }
}
