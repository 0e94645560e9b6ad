//! The user × item interaction matrix, CSR.

use std::collections::HashMap;

use aisle_core::EventKind;
use serde::{Deserialize, Serialize};

use crate::log::{EventLog, NO_ITEM};

/// How much each kind of event says about a user's interest in an item.
///
/// Defaults: view and click 1, add_to_cart 3, purchase 5, search and remove_from_cart 0,
/// rating its value (when `rating_uses_value`), custom kinds 1. A matrix cell is the sum of
/// the weights of that user's events on that item; zero-weight events add nothing.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KindWeights {
    /// Weight per kind name (built-in names; custom kinds by `custom#code`).
    pub weights: HashMap<String, f32>,
    /// Weight of a kind not in `weights`.
    pub default: f32,
    /// A rating contributes its value times the rating weight.
    pub rating_uses_value: bool,
}

impl Default for KindWeights {
    fn default() -> Self {
        let weights = [
            ("search", 0.0),
            ("view", 1.0),
            ("click", 1.0),
            ("add_to_cart", 3.0),
            ("remove_from_cart", 0.0),
            ("purchase", 5.0),
            ("rating", 1.0),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        Self {
            weights,
            default: 1.0,
            rating_uses_value: true,
        }
    }
}

impl KindWeights {
    /// Every kind weighs 1 (plain implicit feedback).
    pub fn uniform() -> Self {
        Self {
            weights: HashMap::new(),
            default: 1.0,
            rating_uses_value: false,
        }
    }

    /// The weight of one kind.
    pub fn weight(&self, kind: EventKind) -> f32 {
        self.weights
            .get(&kind.to_string())
            .copied()
            .unwrap_or(self.default)
    }
}

/// A sparse user × item matrix: row `u` holds the items of user `u`, sorted, with weights.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InteractionMatrix {
    n_users: usize,
    n_items: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
}

impl InteractionMatrix {
    /// Builds the matrix from the log.
    pub fn build(log: &EventLog, weights: &KindWeights) -> InteractionMatrix {
        let mut kind_weight: HashMap<EventKind, f32> = HashMap::new();
        let mut cells: Vec<(u32, u32, f32)> = Vec::with_capacity(log.len());
        for e in log.events() {
            if e.item == NO_ITEM {
                continue;
            }
            let w = *kind_weight
                .entry(e.kind)
                .or_insert_with(|| weights.weight(e.kind));
            let w = if e.kind == EventKind::Rating && weights.rating_uses_value {
                w * e.value
            } else {
                w
            };
            if w != 0.0 {
                cells.push((e.user, e.item, w));
            }
        }
        Self::from_triplets(log.n_users(), log.n_items(), cells)
    }

    /// Builds from `(user, item, weight)` cells; repeated cells are summed.
    pub fn from_triplets(n_users: usize, n_items: usize, mut cells: Vec<(u32, u32, f32)>) -> Self {
        cells.sort_unstable_by_key(|&(u, i, _)| (u, i));
        let mut indptr = vec![0usize; n_users + 1];
        let mut indices = Vec::with_capacity(cells.len());
        let mut values: Vec<f32> = Vec::with_capacity(cells.len());
        let mut last: Option<(u32, u32)> = None;
        for (u, i, w) in cells {
            if last == Some((u, i)) {
                *values.last_mut().expect("a previous cell exists") += w;
                continue;
            }
            last = Some((u, i));
            indices.push(i);
            values.push(w);
            indptr[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            indptr[u + 1] += indptr[u];
        }
        Self {
            n_users,
            n_items,
            indptr,
            indices,
            values,
        }
    }

    /// Number of rows (users).
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Number of columns (items).
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of non-zero cells.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// The items of one user and their weights.
    pub fn row(&self, user: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.indptr[user as usize], self.indptr[user as usize + 1]);
        (&self.indices[a..b], &self.values[a..b])
    }

    /// Row offsets (`n_users + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// Column index of every non-zero cell.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Value of every non-zero cell.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// How many users interacted with each item.
    pub fn item_degrees(&self) -> Vec<u32> {
        let mut degree = vec![0u32; self.n_items];
        for &i in &self.indices {
            degree[i as usize] += 1;
        }
        degree
    }

    /// Fraction of empty cells over the `users × items` that have any interaction.
    pub fn sparsity(&self) -> f64 {
        let users = (0..self.n_users)
            .filter(|&u| self.indptr[u + 1] > self.indptr[u])
            .count();
        let items = self.item_degrees().iter().filter(|&&d| d > 0).count();
        if users == 0 || items == 0 {
            return 1.0;
        }
        1.0 - self.nnz() as f64 / (users as f64 * items as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::Interaction;

    fn ev(user: u32, item: u32, kind: EventKind, value: f32) -> Interaction {
        Interaction {
            user,
            item,
            kind,
            timestamp_ms: 0,
            session: 0,
            value,
        }
    }

    #[test]
    fn weights_sum_per_cell_and_zero_weights_vanish() {
        let log = EventLog::from_events(
            vec![
                ev(0, 2, EventKind::View, 0.0),
                ev(0, 2, EventKind::Purchase, 0.0),
                ev(0, 1, EventKind::Search, 0.0),
                ev(1, 0, EventKind::Rating, 4.0),
                ev(1, NO_ITEM, EventKind::Purchase, 0.0),
            ],
            3,
            3,
        );
        let m = InteractionMatrix::build(&log, &KindWeights::default());
        assert_eq!(m.nnz(), 2);
        assert_eq!(m.row(0), (&[2u32][..], &[6.0f32][..]));
        assert_eq!(m.row(1), (&[0u32][..], &[4.0f32][..]));
        assert_eq!(m.row(2), (&[][..], &[][..]));
        assert_eq!(m.item_degrees(), vec![1, 0, 1]);
        // 2 active users × 2 active items, 2 filled.
        assert!((m.sparsity() - 0.5).abs() < 1e-12);
    }

    #[test]
    fn rows_are_sorted_by_item() {
        let m = InteractionMatrix::from_triplets(
            1,
            5,
            vec![(0, 4, 1.0), (0, 1, 1.0), (0, 3, 1.0), (0, 1, 2.0)],
        );
        assert_eq!(m.row(0), (&[1u32, 3, 4][..], &[3.0f32, 1.0, 1.0][..]));
    }
}
