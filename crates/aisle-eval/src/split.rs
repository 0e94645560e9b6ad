//! Offline protocols: how an event log becomes training events and test cases.

use std::collections::HashSet;

use aisle_core::EventKind;
use aisle_features::{EventLog, Interaction, KindWeights, SessionConfig, Sessions};
use serde::Serialize;

use crate::{Error, Result};

/// An evaluation protocol.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(tag = "protocol", rename_all = "snake_case")]
pub enum Protocol {
    /// Each user's last item event is the test target, the one before it the validation
    /// target; the items already in the history are excluded from the ranking (the S3-Rec /
    /// SASRec full-ranking protocol). Users with fewer than 3 item events are train-only.
    LeaveOneOut,
    /// Events after the `1 − test_fraction` time quantile are the test period; each user
    /// active before and buying (or, without purchases, interacting) after it is a case whose
    /// relevant items are everything they bought then. Repeat purchases count unless
    /// `exclude_seen`.
    Temporal {
        /// Share of events in the test period (default 0.2).
        test_fraction: f64,
        /// Exclude items already in the user's history from the ranking.
        exclude_seen: bool,
    },
    /// Sessions ending in the last `test_days` are test sessions; every next event of a test
    /// session is predicted from its prefix (GRU4Rec / session-rec protocol). Test items not
    /// in training are dropped, then sessions shorter than 2.
    Session {
        /// Length of the test period in days (default 1).
        test_days: f64,
    },
}

/// One thing to predict.
#[derive(Clone, Debug, PartialEq)]
pub struct TestCase {
    /// The user, for models that learnt user vectors (`None` for anonymous sessions).
    pub user: Option<u32>,
    /// What the model may see, oldest first.
    pub history: Vec<u32>,
    /// The kind of each history event.
    pub kinds: Vec<EventKind>,
    /// The time of each history event (ms).
    pub times_ms: Vec<i64>,
    /// The held-out items.
    pub relevant: Vec<u32>,
    /// Items not to rank.
    pub exclude: Vec<u32>,
}

/// Training events and the cases that test a model trained on them.
pub struct Split {
    /// Training events.
    pub train: EventLog,
    /// Test (or validation) cases.
    pub cases: Vec<TestCase>,
}

impl Protocol {
    /// Splits `log` into training events and test cases. Events of zero weight do not count
    /// as interactions.
    pub fn split(&self, log: &EventLog, weights: &KindWeights) -> Result<Split> {
        let split = match *self {
            Protocol::LeaveOneOut => leave_one_out(log, weights),
            Protocol::Temporal {
                test_fraction,
                exclude_seen,
            } => temporal(log, weights, test_fraction, exclude_seen)?,
            Protocol::Session { test_days } => session(log, weights, test_days),
        };
        if split.cases.is_empty() {
            return Err(Error::Split(format!(
                "{self:?} leaves no test case in {} events",
                log.len()
            )));
        }
        Ok(split)
    }

    /// Short name for reports.
    pub fn name(&self) -> &'static str {
        match self {
            Protocol::LeaveOneOut => "loo",
            Protocol::Temporal { .. } => "temporal",
            Protocol::Session { .. } => "session",
        }
    }
}

fn is_interaction(e: &Interaction, weights: &KindWeights) -> bool {
    e.item().is_some() && weights.weight(e.kind) != 0.0
}

fn leave_one_out(log: &EventLog, weights: &KindWeights) -> Split {
    let events = log.events();
    let order = log.by_user();
    let mut dropped = vec![false; events.len()];
    let mut cases = Vec::new();
    let mut start = 0;
    while start < order.len() {
        let user = events[order[start] as usize].user;
        let mut end = start;
        while end < order.len() && events[order[end] as usize].user == user {
            end += 1;
        }
        let positions: Vec<usize> = (start..end)
            .filter(|&p| is_interaction(&events[order[p] as usize], weights))
            .collect();
        if positions.len() >= 3 {
            let held = *positions.last().expect("at least three positions");
            for p in held..end {
                dropped[order[p] as usize] = true;
            }
            let seen: Vec<&Interaction> = positions[..positions.len() - 1]
                .iter()
                .map(|&p| &events[order[p] as usize])
                .collect();
            let history: Vec<u32> = seen.iter().map(|e| e.item).collect();
            let mut exclude = history.clone();
            exclude.sort_unstable();
            exclude.dedup();
            cases.push(TestCase {
                user: Some(user),
                history,
                kinds: seen.iter().map(|e| e.kind).collect(),
                times_ms: seen.iter().map(|e| e.timestamp_ms).collect(),
                relevant: vec![events[order[held] as usize].item],
                exclude,
            });
        }
        start = end;
    }
    let train = events
        .iter()
        .zip(&dropped)
        .filter(|(_, d)| !**d)
        .map(|(e, _)| *e)
        .collect();
    Split {
        train: EventLog::from_events(train, log.n_users(), log.n_items()),
        cases,
    }
}

fn temporal(
    log: &EventLog,
    weights: &KindWeights,
    test_fraction: f64,
    exclude_seen: bool,
) -> Result<Split> {
    if !(0.0..1.0).contains(&test_fraction) || test_fraction == 0.0 {
        return Err(Error::Split(format!(
            "test fraction {test_fraction} must be in (0, 1)"
        )));
    }
    let events = log.events();
    let cut_index = ((events.len() as f64) * (1.0 - test_fraction)) as usize;
    let Some(cut) = events.get(cut_index).map(|e| e.timestamp_ms) else {
        return Err(Error::Split("no events".into()));
    };
    let has_purchases = events
        .iter()
        .any(|e| e.kind == EventKind::Purchase && e.item().is_some());
    let is_target = |e: &Interaction| {
        if has_purchases {
            e.kind == EventKind::Purchase && e.item().is_some()
        } else {
            is_interaction(e, weights)
        }
    };
    let train: Vec<Interaction> = events
        .iter()
        .filter(|e| e.timestamp_ms < cut)
        .copied()
        .collect();
    let train_log = EventLog::from_events(train, log.n_users(), log.n_items());
    let mut history: Vec<Vec<u32>> = vec![Vec::new(); log.n_users()];
    let mut context: Vec<(Vec<EventKind>, Vec<i64>)> = vec![Default::default(); log.n_users()];
    for e in train_log.events() {
        if is_interaction(e, weights) {
            history[e.user as usize].push(e.item);
            context[e.user as usize].0.push(e.kind);
            context[e.user as usize].1.push(e.timestamp_ms);
        }
    }
    let mut relevant: Vec<Vec<u32>> = vec![Vec::new(); log.n_users()];
    for e in events
        .iter()
        .filter(|e| e.timestamp_ms >= cut && is_target(e))
    {
        relevant[e.user as usize].push(e.item);
    }
    let mut cases = Vec::new();
    for (user, ((history, mut relevant), (kinds, times_ms))) in
        history.into_iter().zip(relevant).zip(context).enumerate()
    {
        if history.is_empty() || relevant.is_empty() {
            continue;
        }
        relevant.sort_unstable();
        relevant.dedup();
        let mut exclude = Vec::new();
        if exclude_seen {
            exclude = history.clone();
            exclude.sort_unstable();
            exclude.dedup();
            relevant.retain(|i| exclude.binary_search(i).is_err());
            if relevant.is_empty() {
                continue;
            }
        }
        cases.push(TestCase {
            user: Some(user as u32),
            history,
            kinds,
            times_ms,
            relevant,
            exclude,
        });
    }
    Ok(Split {
        train: train_log,
        cases,
    })
}

fn session(log: &EventLog, weights: &KindWeights, test_days: f64) -> Split {
    let events = log.events();
    let end = events.last().map_or(0, |e| e.timestamp_ms);
    let cut = end - (test_days * 86_400_000.0) as i64;
    let sessions = Sessions::build(log, &SessionConfig::default());
    let mut in_test = vec![false; events.len()];
    let mut test_sessions = Vec::new();
    for s in 0..sessions.len() {
        let idx = sessions.events(s);
        let last = idx
            .iter()
            .map(|&i| events[i as usize].timestamp_ms)
            .max()
            .unwrap_or(i64::MIN);
        if last >= cut {
            for &i in idx {
                in_test[i as usize] = true;
            }
            test_sessions.push(s);
        }
    }
    let train: Vec<Interaction> = events
        .iter()
        .zip(&in_test)
        .filter(|(_, t)| !**t)
        .map(|(e, _)| *e)
        .collect();
    let known: HashSet<u32> = train
        .iter()
        .filter(|e| is_interaction(e, weights))
        .map(|e| e.item)
        .collect();
    let mut cases = Vec::new();
    for s in test_sessions {
        let seen: Vec<Interaction> = sessions
            .events(s)
            .iter()
            .map(|&i| events[i as usize])
            .filter(|e| is_interaction(e, weights) && known.contains(&e.item))
            .collect();
        let items: Vec<u32> = seen.iter().map(|e| e.item).collect();
        for p in 1..items.len() {
            cases.push(TestCase {
                user: None,
                history: items[..p].to_vec(),
                kinds: seen[..p].iter().map(|e| e.kind).collect(),
                times_ms: seen[..p].iter().map(|e| e.timestamp_ms).collect(),
                relevant: vec![items[p]],
                exclude: Vec::new(),
            });
        }
    }
    Split {
        train: EventLog::from_events(train, log.n_users(), log.n_items()),
        cases,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(user: u32, item: u32, ts: i64, kind: EventKind) -> Interaction {
        Interaction {
            user,
            item,
            kind,
            timestamp_ms: ts,
            session: 0,
            value: 0.0,
        }
    }

    #[test]
    fn leave_one_out_holds_out_each_users_last_item() {
        let v = EventKind::View;
        let log = EventLog::from_events(
            vec![
                ev(0, 1, 1, v),
                ev(0, 2, 2, v),
                ev(0, 3, 3, v),
                ev(1, 4, 1, v),
                ev(1, 5, 2, v),
            ],
            2,
            6,
        );
        let split = Protocol::LeaveOneOut
            .split(&log, &KindWeights::uniform())
            .expect("split");
        assert_eq!(split.cases.len(), 1, "user 1 has only two events");
        let case = &split.cases[0];
        assert_eq!(
            (case.user, case.relevant.as_slice(), case.history.as_slice()),
            (Some(0), &[3][..], &[1, 2][..])
        );
        assert_eq!(split.train.len(), 4);
        // The validation split of the training part holds out item 2.
        let val = Protocol::LeaveOneOut.split(&split.train, &KindWeights::uniform());
        assert!(
            val.is_err(),
            "after the test hold-out user 0 has 2 events: no validation case"
        );
    }

    #[test]
    fn temporal_cases_are_the_purchases_after_the_cut() {
        let (v, p) = (EventKind::View, EventKind::Purchase);
        let log = EventLog::from_events(
            vec![
                ev(0, 1, 1, v),
                ev(0, 1, 2, p),
                ev(1, 2, 3, p),
                ev(1, 3, 4, v),
                ev(0, 1, 9, p),
                ev(0, 4, 9, v),
                ev(2, 5, 10, p),
            ],
            3,
            6,
        );
        let protocol = Protocol::Temporal {
            test_fraction: 3.0 / 7.0,
            exclude_seen: false,
        };
        let split = protocol
            .split(&log, &KindWeights::default())
            .expect("split");
        // Cut at the 5th event (t = 9): user 0 rebought item 1; user 2 has no history.
        assert_eq!(split.cases.len(), 1);
        assert_eq!(split.cases[0].relevant, vec![1]);
        assert_eq!(split.train.len(), 4);
    }

    #[test]
    fn session_cases_predict_each_next_known_item() {
        let c = EventKind::Click;
        let day = 86_400_000;
        let mk = |item, ts, session| Interaction {
            session,
            ..ev(0, item, ts, c)
        };
        let log = EventLog::from_events(
            vec![
                mk(1, 0, 1),
                mk(2, 1000, 1),
                mk(3, 2000, 1),
                mk(1, 2 * day, 2),
                mk(9, 2 * day + 1, 2),
                mk(3, 2 * day + 2, 2),
            ],
            1,
            10,
        );
        let split = Protocol::Session { test_days: 1.0 }
            .split(&log, &KindWeights::uniform())
            .expect("split");
        // Item 9 is unknown to training and dropped: the test session becomes 1 → 3.
        assert_eq!(split.cases.len(), 1);
        assert_eq!(
            (
                split.cases[0].history.as_slice(),
                split.cases[0].relevant.as_slice()
            ),
            (&[1][..], &[3][..])
        );
        assert_eq!(split.train.len(), 3);
    }
}
