//! Why an item was recommended, in the shopper's terms: which of their own items other
//! shoppers chose together with it ("because you bought X").
//!
//! The evidence is the same for every model, so every answer can carry it: the co-occurrence
//! of the recommended item with each history item across all users (cosine of their user
//! sets, the similarity item-kNN itself ranks by). For item-kNN it is the model's own reason;
//! for the others it is the behavioural evidence that agrees with their choice.

use aisle_features::Interaction;
use rustc_hash::{FxHashMap, FxHashSet};

/// One reason for a recommendation.
#[derive(Clone, Debug, PartialEq, serde::Serialize)]
pub struct Because {
    /// The shopper's item that points at the recommendation.
    pub item: u32,
    /// Users who chose both.
    pub shared_users: u32,
    /// Cosine of the two items' user sets, in [0, 1].
    pub similarity: f32,
}

/// For each of `recommended`, up to `per_item` history items that co-occur with it most,
/// strongest first; history items that never co-occur give no reason.
pub fn because(
    events: &[Interaction],
    history: &[u32],
    recommended: &[u32],
    per_item: usize,
) -> Vec<Vec<Because>> {
    let wanted: FxHashSet<u32> = history.iter().chain(recommended).copied().collect();
    let mut users: FxHashMap<u32, Vec<u32>> = FxHashMap::default();
    for e in events.iter().filter(|e| wanted.contains(&e.item)) {
        users.entry(e.item).or_default().push(e.user);
    }
    for list in users.values_mut() {
        list.sort_unstable();
        list.dedup();
    }
    because_with(
        |item| users.get(&item).map_or(&[][..], Vec::as_slice),
        |_| None,
        history,
        recommended,
        per_item,
    )
}

/// [`because`] for callers that keep an index of each item's users: `users_of(item)` gives
/// them sorted, without repeats, and `bits_of(item)`, where the caller keeps one, the same
/// set as a bitmap over user ids (bit `u % 64` of word `u / 64`).
///
/// Each recommended item's users are marked in a bitmap over user ids (or its own bitmap is
/// used), and each history item's users are looked up in it: one memory probe per user
/// instead of a merge of the two lists, which at ten million events (popular items with tens
/// of thousands of users) made explanations most of a recommendation's time. Two items with
/// bitmaps are intersected word by word when that reads less. The answer is the same
/// whichever way a count is made.
pub fn because_with<'a>(
    users_of: impl Fn(u32) -> &'a [u32],
    bits_of: impl Fn(u32) -> Option<&'a [u64]>,
    history: &[u32],
    recommended: &[u32],
    per_item: usize,
) -> Vec<Vec<Because>> {
    let mut distinct: Vec<u32> = history.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    let top_user = recommended
        .iter()
        .filter(|&&r| bits_of(r).is_none())
        .filter_map(|&r| users_of(r).last())
        .max()
        .map_or(0, |&u| u as usize + 1);
    let mut marked = vec![0u64; top_user.div_ceil(64)];
    let reasons_for = |r: u32, ur: &[u32], bits: &[u64]| {
        let is_marked = |u: u32| {
            bits.get(u as usize / 64)
                .is_some_and(|w| w & (1 << (u % 64)) != 0)
        };
        let mut reasons: Vec<Because> = distinct
            .iter()
            .filter(|&&h| h != r)
            .filter_map(|&h| {
                let uh = users_of(h);
                let shared = match bits_of(h) {
                    // Word by word reads fewer words than there are users to probe.
                    Some(hb) if hb.len().min(bits.len()) < uh.len() => hb
                        .iter()
                        .zip(bits)
                        .map(|(a, b)| (a & b).count_ones())
                        .sum::<u32>(),
                    _ => uh.iter().filter(|&&u| is_marked(u)).count() as u32,
                };
                (shared > 0).then(|| Because {
                    item: h,
                    shared_users: shared,
                    similarity: shared as f32 / ((ur.len() * uh.len()) as f32).sqrt(),
                })
            })
            .collect();
        reasons.sort_by(|a, b| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(b.shared_users.cmp(&a.shared_users))
                .then(a.item.cmp(&b.item))
        });
        reasons.truncate(per_item);
        reasons
    };
    recommended
        .iter()
        .map(|&r| {
            let ur = users_of(r);
            if let Some(bits) = bits_of(r) {
                return reasons_for(r, ur, bits);
            }
            for &u in ur {
                marked[u as usize / 64] |= 1 << (u % 64);
            }
            let reasons = reasons_for(r, ur, &marked);
            for &u in ur {
                marked[u as usize / 64] = 0;
            }
            reasons
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(user: u32, item: u32) -> Interaction {
        Interaction {
            user,
            item,
            kind: aisle_core::EventKind::Purchase,
            timestamp_ms: 0,
            session: 0,
            value: 1.0,
        }
    }

    #[test]
    fn bitmaps_give_the_same_reasons_as_the_lists() {
        // 2,000 users over 30 items with falling popularity, from a fixed sequence.
        let mut state = 7u64;
        let mut next = |m: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (state >> 33) % m
        };
        let mut users: Vec<Vec<u32>> = vec![Vec::new(); 30];
        for user in 0..2_000u32 {
            for (item, list) in users.iter_mut().enumerate() {
                if next(30) < 30 - item as u64 {
                    list.push(user);
                }
            }
        }
        let bits: Vec<Vec<u64>> = users
            .iter()
            .map(|list| {
                let mut b = vec![0u64; 2_000usize.div_ceil(64)];
                list.iter()
                    .for_each(|&u| b[u as usize / 64] |= 1 << (u % 64));
                b
            })
            .collect();
        let history = [3u32, 10, 0, 27, 3, 15];
        let recommended = [1u32, 2, 20, 29, 0];
        let lists_only = because_with(|i| &users[i as usize], |_| None, &history, &recommended, 5);
        // Bitmaps for the even items only, then for all: every path of the count.
        let even = because_with(
            |i| &users[i as usize],
            |i| (i % 2 == 0).then(|| bits[i as usize].as_slice()),
            &history,
            &recommended,
            5,
        );
        let all = because_with(
            |i| &users[i as usize],
            |i| Some(bits[i as usize].as_slice()),
            &history,
            &recommended,
            5,
        );
        assert!(lists_only.iter().all(|r| !r.is_empty()));
        assert_eq!(even, lists_only);
        assert_eq!(all, lists_only);
    }

    #[test]
    fn reasons_by_hand() {
        // Item 9 was bought by users 1, 2, 3; item 1 by 1, 2; item 2 by 3, 4, 5, 6; item 3 by 7.
        let events: Vec<Interaction> = [(1, 9), (2, 9), (3, 9), (1, 1), (2, 1), (3, 2), (4, 2)]
            .iter()
            .chain(&[(5, 2), (6, 2), (7, 3), (2, 9)])
            .map(|&(u, i)| event(u, i))
            .collect();
        let reasons = because(&events, &[2, 1, 3, 1], &[9], 5);
        assert_eq!(reasons.len(), 1);
        let r = &reasons[0];
        assert_eq!(r.len(), 2, "item 3 never co-occurs with 9: {r:?}");
        assert_eq!((r[0].item, r[0].shared_users), (1, 2));
        assert!((r[0].similarity - 2.0 / 6.0f32.sqrt()).abs() < 1e-6);
        assert_eq!((r[1].item, r[1].shared_users), (2, 1));
        assert!((r[1].similarity - 1.0 / 12.0f32.sqrt()).abs() < 1e-6);
        assert_eq!(because(&events, &[2, 1], &[9], 1)[0].len(), 1);
    }
}
