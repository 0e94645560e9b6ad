//! Turning event sequences into the integer inputs of the network.

use aisle_core::EventKind;

/// Number of event-kind ids: 0 is "unknown", then the built-in kinds, then "custom".
pub(super) const N_KINDS: usize = 9;
/// Number of time-gap buckets: 0 is "unknown or first", then log2 buckets of seconds.
pub(super) const N_GAPS: usize = 33;
/// A gap longer than this starts a new session (for the purchase label).
const SESSION_GAP_MS: i64 = 30 * 60 * 1000;

/// The kind id of an event kind.
pub(super) fn kind_id(kind: EventKind) -> u32 {
    match kind {
        EventKind::View => 1,
        EventKind::Click => 2,
        EventKind::AddToCart => 3,
        EventKind::RemoveFromCart => 4,
        EventKind::Purchase => 5,
        EventKind::Rating => 6,
        EventKind::Search => 7,
        EventKind::Custom(_) => 8,
    }
}

/// The bucket of the gap between two events: 1 + ⌊log2(1 + seconds)⌋, capped.
pub(super) fn gap_bucket(previous_ms: i64, now_ms: i64) -> u32 {
    let seconds = ((now_ms - previous_ms).max(0) / 1000) as u64;
    (1 + (64 - (seconds + 1).leading_zeros() - 1)).min(N_GAPS as u32 - 1)
}

/// One sequence, encoded: item tokens (item id + 1; 0 is padding), kind ids and gap buckets.
#[derive(Clone, Debug, Default, PartialEq)]
pub(super) struct Encoded {
    pub tokens: Vec<u32>,
    pub kinds: Vec<u32>,
    pub gaps: Vec<u32>,
}

impl Encoded {
    /// Encodes the last `max_len` events. Kinds and times are used where given (same
    /// length as `items`); otherwise they are "unknown".
    pub fn new(items: &[u32], kinds: &[EventKind], times_ms: &[i64], max_len: usize) -> Encoded {
        let start = items.len().saturating_sub(max_len);
        let has_kinds = kinds.len() == items.len();
        let has_times = times_ms.len() == items.len();
        let mut out = Encoded::default();
        for p in start..items.len() {
            out.tokens.push(items[p] + 1);
            out.kinds
                .push(if has_kinds { kind_id(kinds[p]) } else { 0 });
            out.gaps.push(if has_times && p > 0 {
                gap_bucket(times_ms[p - 1], times_ms[p])
            } else {
                0
            });
        }
        out
    }

    pub fn len(&self) -> usize {
        self.tokens.len()
    }
}

/// For each event, whether a purchase follows it in the same session: `Some(true)`,
/// `Some(false)`, or `None` for the last event (its future is not in the data).
pub(super) fn purchase_follows(kinds: &[EventKind], times_ms: &[i64]) -> Vec<Option<bool>> {
    let n = kinds.len();
    let mut out = vec![None; n];
    let mut bought_later = false;
    for p in (0..n.saturating_sub(1)).rev() {
        let next = p + 1;
        if times_ms.len() == n && times_ms[next] - times_ms[p] > SESSION_GAP_MS {
            bought_later = false;
        } else {
            bought_later |= kinds[next] == EventKind::Purchase;
        }
        out[p] = Some(bought_later);
    }
    out
}

/// Sequences right-padded to the longest: the network's input for one batch.
#[derive(Clone, Debug, Default)]
pub(super) struct Batch {
    pub rows: usize,
    pub width: usize,
    pub tokens: Vec<u32>,
    pub kinds: Vec<u32>,
    pub gaps: Vec<u32>,
    /// Distance from the sequence's last event (0 for the last one and for padding).
    pub positions: Vec<u32>,
    pub lens: Vec<usize>,
}

impl Batch {
    pub fn new(sequences: &[&Encoded]) -> Batch {
        let width = sequences.iter().map(|s| s.len()).max().unwrap_or(1).max(1);
        let rows = sequences.len();
        let mut b = Batch {
            rows,
            width,
            tokens: vec![0; rows * width],
            kinds: vec![0; rows * width],
            gaps: vec![0; rows * width],
            positions: vec![0; rows * width],
            lens: Vec::with_capacity(rows),
        };
        for (r, s) in sequences.iter().enumerate() {
            let n = s.len();
            let base = r * width;
            b.tokens[base..base + n].copy_from_slice(&s.tokens);
            b.kinds[base..base + n].copy_from_slice(&s.kinds);
            b.gaps[base..base + n].copy_from_slice(&s.gaps);
            for t in 0..n {
                b.positions[base + t] = (n - 1 - t) as u32;
            }
            b.lens.push(n);
        }
        b
    }

    /// Flat index of each row's last real position.
    pub fn last_positions(&self) -> Vec<u32> {
        self.lens
            .iter()
            .enumerate()
            .map(|(r, &n)| (r * self.width + n.saturating_sub(1)) as u32)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gap_buckets_grow_logarithmically() {
        assert_eq!(gap_bucket(0, 0), 1);
        assert_eq!(gap_bucket(0, 1_000), 2);
        assert_eq!(gap_bucket(0, 3_000), 3);
        assert_eq!(gap_bucket(0, 1_000_000_000_000_000), N_GAPS as u32 - 1);
    }

    #[test]
    fn purchase_label_looks_only_within_the_session() {
        use EventKind::*;
        let kinds = [View, View, Purchase, Purchase, View];
        let hour = 3_600_000;
        let times = [0, 1, 2, 2 + hour, 3 + hour];
        let labels = purchase_follows(&kinds, &times);
        assert_eq!(
            labels,
            vec![Some(true), Some(true), Some(false), Some(false), None]
        );
    }
}
