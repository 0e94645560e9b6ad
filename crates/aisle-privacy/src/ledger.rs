//! The privacy budget ledger: every release on disk before its answer leaves, a budget per
//! rolling window, and the cache that makes a repeated question free.
//!
//! One JSON line per release (time, query, data version, cost, the noisy answer), appended
//! and fsynced before the answer is returned, so a crash can lose a release's *answer* but
//! never its *cost*. A repeat of a query on the same data version gets the stored answer
//! back: asking again and averaging learns nothing, also after a restart. A torn last line
//! (a crash mid-append, never acknowledged) is cut off when the ledger opens; damage
//! anywhere else is an error naming the file and line.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{Cost, Error, Result};

/// The smallest ε one release may spend: it bounds the entries one window can hold
/// (budget / this), whatever clients ask.
pub const MIN_RELEASE_EPSILON: f64 = 1e-3;

const DAY_MS: f64 = 86_400_000.0;

/// How much privacy may be spent, and over what time.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Budget {
    /// The ε that releases within one window may spend together.
    pub epsilon: f64,
    /// The δ at which zCDP costs are converted, and the largest δ of one release.
    pub delta: f64,
    /// The window, in days: a release stops counting this long after it was made.
    pub window_days: f64,
}

impl Default for Budget {
    /// ε = 1 per 30 days, δ = 10⁻⁶: the order of what deployed systems publish for
    /// per-user analytics (Apple's and Google's are ε of 1 to 8 per day).
    fn default() -> Self {
        Budget {
            epsilon: 1.0,
            delta: 1e-6,
            window_days: 30.0,
        }
    }
}

impl Budget {
    /// Refuses a budget that guarantees nothing or cannot be spent.
    pub fn check(&self) -> Result<()> {
        let bad = |m: &str| Err(Error::Setting(m.to_string()));
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return bad("the privacy budget's epsilon must be a positive number");
        }
        if !(self.delta > 0.0 && self.delta < 1e-2) {
            return bad("the privacy budget's delta must be in (0, 0.01)");
        }
        if !(self.window_days.is_finite() && self.window_days > 0.0) {
            return bad("the privacy budget's window must be a positive number of days");
        }
        Ok(())
    }
}

/// One release as the ledger stores it.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Entry {
    /// When it was made (ms since the epoch).
    pub at_ms: i64,
    /// What was asked, in a canonical form.
    pub query: String,
    /// The data it was computed on.
    pub data_version: u64,
    /// What it cost.
    pub cost: Cost,
    /// The noisy answer.
    pub answer: serde_json::Value,
}

/// An answer released through the ledger.
#[derive(Clone, Debug, Serialize)]
pub struct Released<T> {
    /// The noisy answer.
    pub answer: T,
    /// Whether it was the stored answer of an earlier identical question (which costs
    /// nothing).
    pub cached: bool,
    /// What this release cost now (zero when cached).
    pub cost: Cost,
    /// ε spent in the current window, this release included.
    pub spent_epsilon: f64,
    /// The window's budget.
    pub budget: Budget,
}

/// The persisted ledger of releases.
pub struct Ledger {
    path: Option<PathBuf>,
    /// None for a ledger in memory.
    file: Option<fs_err::File>,
    budget: Budget,
    entries: Vec<Entry>,
}

impl Ledger {
    /// Opens (or creates) the ledger at `path`. Entries older than the window are dropped
    /// (the file is rewritten atomically without them), so the file and the memory it takes
    /// stay bounded by the budget.
    pub fn open(path: &Path, budget: Budget, now_ms: i64) -> Result<Ledger> {
        budget.check()?;
        let mut entries = Vec::new();
        let mut torn = false;
        if path.exists() {
            let bytes = fs_err::read(path)?;
            let complete = bytes.ends_with(b"\n") || bytes.is_empty();
            let lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
            let n = lines.len();
            for (i, line) in lines.into_iter().enumerate() {
                if line.is_empty() {
                    continue;
                }
                match serde_json::from_slice::<Entry>(line) {
                    Ok(e) => entries.push(e),
                    // The last line of a file that does not end in a newline: an append cut
                    // short, whose answer was never returned.
                    Err(_) if i + 1 == n && !complete => torn = true,
                    Err(e) => {
                        return Err(Error::Corrupt {
                            path: path.to_path_buf(),
                            line: i + 1,
                            message: e.to_string(),
                        });
                    }
                }
            }
        }
        let before = entries.len();
        let cut = now_ms - (budget.window_days * DAY_MS) as i64;
        entries.retain(|e| e.at_ms > cut);
        if torn || entries.len() != before {
            let mut text = Vec::new();
            for e in &entries {
                serde_json::to_writer(&mut text, e)?;
                text.push(b'\n');
            }
            aisle_core::fs::write_atomic(path, &text)?;
        }
        let file = crate::open_for_append(path)?;
        Ok(Ledger {
            path: Some(path.to_path_buf()),
            file: Some(file),
            budget,
            entries,
        })
    }

    /// A ledger kept in memory only (an engine without a data directory): the budget holds
    /// for the process's life and starts afresh with the next.
    pub fn in_memory(budget: Budget) -> Result<Ledger> {
        budget.check()?;
        Ok(Ledger {
            path: None,
            file: None,
            budget,
            entries: Vec::new(),
        })
    }

    /// The budget.
    pub fn budget(&self) -> Budget {
        self.budget
    }

    /// The file, unless the ledger is in memory.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The releases within the window at `now_ms`, oldest first.
    pub fn entries(&self, now_ms: i64) -> impl Iterator<Item = &Entry> {
        let cut = now_ms - (self.budget.window_days * DAY_MS) as i64;
        self.entries.iter().filter(move |e| e.at_ms > cut)
    }

    /// ε spent within the window at `now_ms` (pure ε plus the zCDP total at the budget's δ).
    pub fn spent(&self, now_ms: i64) -> f64 {
        self.entries(now_ms)
            .fold(Cost::default(), |acc, e| acc.plus(e.cost))
            .epsilon_at(self.budget.delta)
    }

    /// The stored answer of `query` on `data_version`, if it was released in this window
    /// (free): for callers whose answer is costly to compute, to look before they compute.
    pub fn cached<T: DeserializeOwned>(
        &self,
        query: &str,
        data_version: u64,
        now_ms: i64,
    ) -> Result<Option<Released<T>>> {
        let Some(e) = self
            .entries(now_ms)
            .filter(|e| e.query == query && e.data_version == data_version)
            .last()
        else {
            return Ok(None);
        };
        Ok(Some(Released {
            answer: serde_json::from_value(e.answer.clone())?,
            cached: true,
            cost: Cost::default(),
            spent_epsilon: self.spent(now_ms),
            budget: self.budget,
        }))
    }

    /// Answers `query` on `data_version`: the stored answer if it was asked before in this
    /// window (free), else `make()`'s answer, stored and fsynced before it is returned, if
    /// `cost` fits in what is left of the budget.
    pub fn release<T, F>(
        &mut self,
        query: &str,
        data_version: u64,
        cost: Cost,
        now_ms: i64,
        make: F,
    ) -> Result<Released<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> T,
    {
        if let Some(stored) = self.cached(query, data_version, now_ms)? {
            return Ok(stored);
        }
        let spent_cost = self
            .entries(now_ms)
            .fold(Cost::default(), |acc, e| acc.plus(e.cost));
        let spent = spent_cost.epsilon_at(self.budget.delta);
        let own = cost.epsilon_at(self.budget.delta);
        if own.is_nan() || own < MIN_RELEASE_EPSILON {
            return Err(Error::Setting(format!(
                "a release must spend at least epsilon {MIN_RELEASE_EPSILON} (this one: {own})"
            )));
        }
        let total = spent_cost.plus(cost).epsilon_at(self.budget.delta);
        if total > self.budget.epsilon + 1e-12 {
            return Err(Error::OverBudget {
                needed: own,
                left: (self.budget.epsilon - spent).max(0.0),
                window_days: self.budget.window_days,
            });
        }
        let answer = make();
        let entry = Entry {
            at_ms: now_ms,
            query: query.to_string(),
            data_version,
            cost,
            answer: serde_json::to_value(&answer)?,
        };
        if let Some(file) = &mut self.file {
            let mut line = serde_json::to_vec(&entry)?;
            line.push(b'\n');
            file.write_all(&line)?;
            file.sync_data()?;
        }
        self.entries.push(entry);
        Ok(Released {
            answer,
            cached: false,
            cost,
            spent_epsilon: total,
            budget: self.budget,
        })
    }
}

/// Reads a ledger file's entries without opening it for writing (for `aisle privacy`).
pub fn read_entries(path: &Path) -> Result<Vec<Entry>> {
    let file = fs_err::File::open(path)?;
    let mut out = Vec::new();
    for line in std::io::BufReader::new(file).lines() {
        let line = line?;
        if let Ok(e) = serde_json::from_str(&line) {
            out.push(e);
        }
    }
    Ok(out)
}
