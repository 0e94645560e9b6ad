//! Cleaning: duplicates, bots, k-core.

use std::collections::HashSet;

use serde::{Deserialize, Serialize};

use crate::log::{EventLog, NO_ITEM};
use crate::{Error, Result};

/// What cleaning removes. The defaults only drop exact duplicates.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CleaningConfig {
    /// Drop repeats of an event with the same user, item, kind, timestamp and session
    /// (a double-fired tracker, a file imported under two names). Default: on.
    pub dedup: bool,
    /// Drop users with more than this many events in any 60-second window (a person does
    /// not view 120 products a minute). Default: off.
    pub bot_max_events_per_minute: Option<usize>,
    /// Keep only users with at least this many item events (applied with `min_item_events`
    /// until both hold: the k-core). Default: 0 (keep all).
    pub min_user_events: usize,
    /// Keep only items with at least this many events. Default: 0 (keep all).
    pub min_item_events: usize,
}

impl Default for CleaningConfig {
    fn default() -> Self {
        Self {
            dedup: true,
            bot_max_events_per_minute: None,
            min_user_events: 0,
            min_item_events: 0,
        }
    }
}

impl CleaningConfig {
    /// Rejects settings that cannot be meant.
    pub fn validate(&self) -> Result<()> {
        if self.bot_max_events_per_minute == Some(0) {
            return Err(Error::Config(
                "bot_max_events_per_minute must be at least 1 (leave it unset to keep every user)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// What cleaning removed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CleaningReport {
    /// Exact duplicate events dropped.
    pub duplicates: usize,
    /// Users flagged as bots.
    pub bot_users: usize,
    /// Events of bot users dropped.
    pub bot_events: usize,
    /// Events dropped by the k-core filter.
    pub kcore_events: usize,
}

impl EventLog {
    /// Applies `config` in place: duplicates, then bots, then the k-core.
    pub fn clean(&mut self, config: &CleaningConfig) -> Result<CleaningReport> {
        config.validate()?;
        let mut report = CleaningReport::default();
        if config.dedup {
            let before = self.events.len();
            let mut seen = HashSet::with_capacity(before);
            self.events.retain(|e| {
                seen.insert((
                    e.user,
                    e.item,
                    e.kind,
                    e.timestamp_ms,
                    e.session,
                    e.value.to_bits(),
                ))
            });
            report.duplicates = before - self.events.len();
        }
        if let Some(limit) = config.bot_max_events_per_minute {
            let bots = self.bot_users(limit);
            report.bot_users = bots.len();
            let before = self.events.len();
            self.events.retain(|e| !bots.contains(&e.user));
            report.bot_events = before - self.events.len();
        }
        if config.min_user_events > 0 || config.min_item_events > 0 {
            report.kcore_events = self.kcore(config.min_user_events, config.min_item_events);
        }
        Ok(report)
    }

    fn bot_users(&self, limit: usize) -> HashSet<u32> {
        let order = self.by_user();
        let mut bots = HashSet::new();
        let mut start = 0;
        for end in 0..order.len() {
            let e = &self.events[order[end] as usize];
            if end > 0 && self.events[order[end - 1] as usize].user != e.user {
                start = end;
            }
            while self.events[order[start] as usize].timestamp_ms <= e.timestamp_ms - 60_000 {
                start += 1;
            }
            if end + 1 - start > limit {
                bots.insert(e.user);
            }
        }
        bots
    }

    /// Repeatedly drops item events of users and items below the thresholds; returns how
    /// many events went. Events without an item are kept for users who stay.
    fn kcore(&mut self, min_user: usize, min_item: usize) -> usize {
        let before = self.events.len();
        loop {
            let mut user_counts = vec![0usize; self.n_users];
            let mut item_counts = vec![0usize; self.n_items];
            for e in &self.events {
                if e.item != NO_ITEM {
                    user_counts[e.user as usize] += 1;
                    item_counts[e.item as usize] += 1;
                }
            }
            let n = self.events.len();
            self.events.retain(|e| {
                user_counts[e.user as usize] >= min_user
                    && (e.item == NO_ITEM || item_counts[e.item as usize] >= min_item)
            });
            if self.events.len() == n {
                break;
            }
        }
        before - self.events.len()
    }
}

#[cfg(test)]
mod tests {
    use aisle_core::EventKind;

    use super::*;
    use crate::log::Interaction;

    fn ev(user: u32, item: u32, ts: i64) -> Interaction {
        Interaction {
            user,
            item,
            kind: EventKind::View,
            timestamp_ms: ts,
            session: 0,
            value: 0.0,
        }
    }

    #[test]
    fn duplicates_go_and_distinct_times_stay() {
        let mut log = EventLog::from_events(vec![ev(0, 0, 1), ev(0, 0, 1), ev(0, 0, 2)], 1, 1);
        let report = log.clean(&CleaningConfig::default()).expect("clean");
        assert_eq!(report.duplicates, 1);
        assert_eq!(log.len(), 2);
    }

    #[test]
    fn a_user_firing_faster_than_the_limit_is_a_bot() {
        // User 0: 5 events within one second; user 1: 5 events a minute apart.
        let mut events: Vec<_> = (0..5).map(|i| ev(0, i, i64::from(i) * 100)).collect();
        events.extend((0..5).map(|i| ev(1, i, i64::from(i) * 61_000)));
        let mut log = EventLog::from_events(events, 2, 5);
        let config = CleaningConfig {
            bot_max_events_per_minute: Some(3),
            ..CleaningConfig::default()
        };
        let report = log.clean(&config).expect("clean");
        assert_eq!((report.bot_users, report.bot_events), (1, 5));
        assert!(log.events().iter().all(|e| e.user == 1));
    }

    #[test]
    fn kcore_iterates_until_both_thresholds_hold() {
        // Items 0,1 are shared by users 0 and 1; user 2 only has item 2 (twice) and item 0.
        // With min 2 per user and 2 per item: item 2 (seen by user 2 only, twice) stays at
        // 2 events; check that removal cascades: user 3 has a single event and goes, which
        // takes item 3 below the threshold.
        let events = vec![
            ev(0, 0, 1),
            ev(0, 1, 2),
            ev(1, 0, 3),
            ev(1, 1, 4),
            ev(2, 2, 5),
            ev(2, 2, 6),
            ev(3, 3, 7),
            ev(0, 3, 8),
        ];
        let mut log = EventLog::from_events(events, 4, 4);
        let config = CleaningConfig {
            dedup: false,
            min_user_events: 2,
            min_item_events: 2,
            ..CleaningConfig::default()
        };
        let report = log.clean(&config).expect("clean");
        assert_eq!(report.kcore_events, 2);
        assert!(log.events().iter().all(|e| e.user != 3 && e.item != 3));
    }

    #[test]
    fn zero_bot_limit_is_rejected() {
        let config = CleaningConfig {
            bot_max_events_per_minute: Some(0),
            ..CleaningConfig::default()
        };
        assert!(EventLog::default().clean(&config).is_err());
    }
}
