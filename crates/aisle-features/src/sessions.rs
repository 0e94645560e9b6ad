//! Sessions: the source's own session ids where it has them, else cut by inactivity.

use serde::{Deserialize, Serialize};

use crate::log::EventLog;

/// How sessions are cut where the data has no session ids.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SessionConfig {
    /// A gap longer than this between two events of a user starts a new session.
    /// Default: 30 minutes, the usual web-analytics convention.
    pub inactivity_gap_ms: i64,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            inactivity_gap_ms: 30 * 60 * 1000,
        }
    }
}

/// Sessions as runs of event indices into the log, each run in time order.
#[derive(Clone, Debug, Default)]
pub struct Sessions {
    offsets: Vec<usize>,
    events: Vec<u32>,
    users: Vec<u32>,
}

impl Sessions {
    /// Groups the log's events into sessions.
    ///
    /// An event with a source session id belongs to that user's session of that id; an event
    /// without one joins the user's previous id-less event's session unless more than
    /// `inactivity_gap_ms` passed.
    pub fn build(log: &EventLog, config: &SessionConfig) -> Sessions {
        let events = log.events();
        let order = log.by_user();
        // Sort key: user, then session group, then time. Id-less events get their group from
        // the inactivity cut, tagged so they never mix with source ids.
        let mut keyed: Vec<(u32, u64, bool, i64, u32)> = Vec::with_capacity(order.len());
        let mut cut_group = 0u64;
        let mut last: Option<(u32, i64)> = None;
        for &i in &order {
            let e = &events[i as usize];
            if e.session != 0 {
                keyed.push((e.user, e.session, true, e.timestamp_ms, i));
                continue;
            }
            match last {
                Some((user, time))
                    if user == e.user && e.timestamp_ms - time <= config.inactivity_gap_ms => {}
                _ => cut_group += 1,
            }
            last = Some((e.user, e.timestamp_ms));
            keyed.push((e.user, cut_group, false, e.timestamp_ms, i));
        }
        keyed
            .sort_unstable_by_key(|&(user, group, has_id, time, i)| (user, has_id, group, time, i));
        let mut sessions = Sessions {
            offsets: vec![0],
            events: Vec::with_capacity(keyed.len()),
            users: Vec::new(),
        };
        let mut current: Option<(u32, u64, bool)> = None;
        for (user, group, has_id, _, i) in keyed {
            if current != Some((user, group, has_id)) {
                if current.is_some() {
                    sessions.offsets.push(sessions.events.len());
                }
                sessions.users.push(user);
                current = Some((user, group, has_id));
            }
            sessions.events.push(i);
        }
        if current.is_some() {
            sessions.offsets.push(sessions.events.len());
        }
        sessions
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there are none.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Indices into the log's events of session `s`, in time order.
    pub fn events(&self, s: usize) -> &[u32] {
        &self.events[self.offsets[s]..self.offsets[s + 1]]
    }

    /// The user of session `s`.
    pub fn user(&self, s: usize) -> u32 {
        self.users[s]
    }
}

#[cfg(test)]
mod tests {
    use aisle_core::EventKind;

    use super::*;
    use crate::log::Interaction;

    fn ev(user: u32, ts_min: i64, session: u64) -> Interaction {
        Interaction {
            user,
            item: 0,
            kind: EventKind::View,
            timestamp_ms: ts_min * 60_000,
            session,
            value: 0.0,
        }
    }

    #[test]
    fn inactivity_cuts_sessions_per_user() {
        // User 0: 0, 10, 39 (gap 29: same), 70 (gap 31: new). User 1: 5, 12.
        let log = EventLog::from_events(
            vec![
                ev(0, 0, 0),
                ev(0, 10, 0),
                ev(1, 5, 0),
                ev(0, 39, 0),
                ev(1, 12, 0),
                ev(0, 70, 0),
            ],
            2,
            1,
        );
        let s = Sessions::build(&log, &SessionConfig::default());
        let lengths: Vec<(u32, usize)> = (0..s.len())
            .map(|i| (s.user(i), s.events(i).len()))
            .collect();
        assert_eq!(lengths, vec![(0, 3), (0, 1), (1, 2)]);
    }

    #[test]
    fn source_session_ids_win_over_gaps() {
        // Two events 5 hours apart in the same source session stay together; an interleaved
        // event of another source session is separate.
        let log = EventLog::from_events(vec![ev(0, 0, 7), ev(0, 1, 8), ev(0, 300, 7)], 1, 1);
        let s = Sessions::build(&log, &SessionConfig::default());
        let mut sizes: Vec<usize> = (0..s.len()).map(|i| s.events(i).len()).collect();
        sizes.sort();
        assert_eq!(sizes, vec![1, 2]);
    }
}
