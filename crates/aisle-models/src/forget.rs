//! Forgetting users in a fitted model without a refit.
//!
//! A model is given the training data it was fitted on (`before`) and the same data without
//! the forgotten users (`after`, built from the same log with their events removed, so the
//! id ranges are unchanged). The counting models recompute only what the forgotten users
//! touched, and end in the state a refit on `after` would reach, to the bit: they add the
//! same numbers in the same order. The tests compare every score with a refit's.

use crate::{Error, Result, TrainData};

/// Users to forget, with the training data before and after their removal.
#[derive(Clone, Copy)]
pub struct Forgetting<'a> {
    users: &'a [u32],
    /// The data the model was fitted on.
    pub before: &'a TrainData,
    /// The same data without the forgotten users' events.
    pub after: &'a TrainData,
}

/// How a model forgot.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Forgot {
    /// Its state equals a refit on the data without the users, bit for bit.
    Exactly,
    /// Its state equals a refit up to floating-point rounding (EASE's rank-one downdates).
    UpToRounding,
    /// The users' own parameters are gone and the parameters they touched are re-solved
    /// against the others (ALS); a refit could still land elsewhere.
    Resolved,
}

impl<'a> Forgetting<'a> {
    /// `users` are dense user ids of `before` (any order, repeats allowed). Refuses data of
    /// different id ranges: `after` must come from the same log.
    pub fn new(
        users: &'a mut Vec<u32>,
        before: &'a TrainData,
        after: &'a TrainData,
    ) -> Result<Self> {
        users.sort_unstable();
        users.dedup();
        if before.n_users() != after.n_users() || before.n_items() != after.n_items() {
            return Err(Error::Forget {
                model: "any",
                reason: format!(
                    "the data without the users has {} users and {} items, the data before {} and {}: build both from the same log",
                    after.n_users(),
                    after.n_items(),
                    before.n_users(),
                    before.n_items()
                ),
            });
        }
        // The models rely on `after` being `before` less the users' rows, and nothing else
        // (a cleaning rule that looks across users, such as a k-core, would break it):
        // checked here, once, in one pass over the matrix.
        let users: &'a [u32] = users;
        let changed = (0..before.n_users() as u32).find(|&u| {
            let (then, now) = (before.matrix.row(u), after.matrix.row(u));
            if users.binary_search(&u).is_ok() {
                !now.0.is_empty()
            } else {
                then.0 != now.0 || then.1 != now.1
            }
        });
        if let Some(u) = changed {
            return Err(Error::Forget {
                model: "any",
                reason: format!(
                    "user {u}'s interactions differ between the data before and after beyond the forgotten users: build both from the same log, with cleaning that treats each user alone"
                ),
            });
        }
        Ok(Self {
            users,
            before,
            after,
        })
    }

    /// Refuses data over another catalogue than the one `model` was fitted on.
    pub fn check_items(&self, model: &'static str, fitted_items: usize) -> Result<()> {
        if fitted_items == self.after.n_items() {
            return Ok(());
        }
        Err(Error::Forget {
            model,
            reason: format!(
                "fitted on {fitted_items} items, the data has {}",
                self.after.n_items()
            ),
        })
    }

    /// The forgotten users, sorted.
    pub fn users(&self) -> &[u32] {
        self.users
    }

    /// Whether `user` is forgotten.
    pub fn is_forgotten(&self, user: u32) -> bool {
        self.users.binary_search(&user).is_ok()
    }

    /// Every item a forgotten user interacted with (in `before`), sorted.
    pub fn touched_items(&self) -> Vec<u32> {
        let mut items: Vec<u32> = self
            .users
            .iter()
            .filter(|&&u| (u as usize) < self.before.n_users())
            .flat_map(|&u| self.before.matrix.row(u).0.iter().copied())
            .collect();
        items.sort_unstable();
        items.dedup();
        items
    }

    /// Which of `before`'s sessions belonged to forgotten users, after checking that
    /// `after`'s sessions are exactly the others, in order. When they are not (the rule
    /// that stands whole histories in for sessions flipped with the users gone), the
    /// session models cannot forget in place, and the error says so.
    pub fn forgotten_sessions(&self, model: &'static str) -> Result<Vec<bool>> {
        let (before, after) = (self.before, self.after);
        let gone: Vec<bool> = before
            .session_users
            .iter()
            .map(|&u| self.is_forgotten(u))
            .collect();
        let mut kept = (0..before.sessions.len()).filter(|&s| !gone[s]);
        let same = (0..after.sessions.len()).all(|t| {
            kept.next().is_some_and(|s| {
                before.sessions[s] == after.sessions[t]
                    && before.session_end_ms[s] == after.session_end_ms[t]
                    && before.session_users[s] == after.session_users[t]
            })
        }) && kept.next().is_none();
        if !same {
            return Err(Error::Forget {
                model,
                reason: "the sessions without the users are not the other sessions unchanged (how sessions are cut depends on the whole log); refit instead".into(),
            });
        }
        Ok(gone)
    }
}
