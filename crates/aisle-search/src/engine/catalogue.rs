//! Index building: keeping the text index, the item table and the vectors in step with
//! the catalogue.

use aisle_core::{Item, ItemId};

use super::*;
use crate::Result;

pub(super) fn embedding_text(item: &Item, with_category: bool) -> String {
    let mut text = item.title.clone();
    if let Some(brand) = &item.brand {
        text.push_str(", ");
        text.push_str(brand);
    }
    if with_category && !item.category.is_empty() {
        text.push_str(" (");
        text.push_str(&item.category.join(" > "));
        text.push(')');
    }
    text
}

impl SearchEngine {
    /// The text an item is embedded with: title, brand and (by default) category path.
    pub fn embedding_text(&self, item: &Item) -> String {
        embedding_text(item, self.config.embed_category)
    }

    /// Makes the indexes match `catalogue` (indexed by item id; `None` = no such item):
    /// new and changed items are (re)indexed and embedded, missing ones removed. Returns
    /// how many items were (re)indexed and how many removed.
    pub fn sync_catalogue(
        &mut self,
        catalogue: Vec<Option<Item>>,
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<(usize, usize)> {
        let indexed = self.text.content_hashes()?;
        let mut changed = Vec::new();
        for (i, item) in catalogue.iter().enumerate() {
            if let Some(item) = item
                && indexed.get(&ItemId(i as u32)) != Some(&crate::content_hash(item))
            {
                changed.push(ItemId(i as u32));
            }
        }
        let removed: Vec<ItemId> = indexed
            .keys()
            .filter(|id| catalogue.get(id.index()).is_none_or(Option::is_none))
            .copied()
            .collect();
        self.items = catalogue;
        let updates: Vec<(ItemId, Item)> = changed
            .iter()
            .filter_map(|&id| self.item(id).map(|item| (id, item.clone())))
            .collect();
        self.apply(updates, &removed, progress)?;
        Ok((changed.len(), removed.len()))
    }

    /// Adds or replaces items; the next search sees them.
    pub fn upsert_items(&mut self, items: Vec<(ItemId, Item)>) -> Result<()> {
        for (id, item) in &items {
            if self.items.len() <= id.index() {
                self.items.resize(id.index() + 1, None);
            }
            self.items[id.index()] = Some(item.clone());
        }
        self.apply(items, &[], &|_| {})
    }

    /// Removes items; the next search no longer returns them.
    pub fn delete_items(&mut self, ids: &[ItemId]) -> Result<()> {
        for id in ids {
            if let Some(slot) = self.items.get_mut(id.index()) {
                *slot = None;
            }
        }
        self.apply(Vec::new(), ids, &|_| {})
    }

    pub(super) fn apply(
        &mut self,
        updates: Vec<(ItemId, Item)>,
        removed: &[ItemId],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        for (id, item) in &updates {
            self.text.upsert(*id, item)?;
        }
        for &id in removed {
            self.text.delete(id);
        }
        self.text.commit()?;
        self.refresh_facet_keys();
        self.embed_stale(progress)
    }

    /// Embeds every catalogue item whose vector is missing or was made from other text,
    /// and drops vectors of items no longer in the catalogue.
    pub(super) fn embed_stale(&mut self, progress: &(dyn Fn(usize) + Sync)) -> Result<()> {
        let (Some(encoder), Some(vectors)) = (&self.encoder, self.vectors.as_mut()) else {
            return Ok(());
        };
        let with_category = self.config.embed_category;
        let mut stale: Vec<(ItemId, String, u64)> = Vec::new();
        for (i, item) in self.items.iter().enumerate() {
            let Some(item) = item else { continue };
            let id = ItemId(i as u32);
            let text = embedding_text(item, with_category);
            let tag = xxhash_rust::xxh3::xxh3_64(text.as_bytes());
            if vectors.tag(id) != Some(tag) {
                stale.push((id, text, tag));
            }
        }
        let gone: Vec<ItemId> = vectors
            .ids()
            .filter(|id| self.items.get(id.index()).is_none_or(Option::is_none))
            .collect();
        for id in gone {
            vectors.delete(id);
        }
        let fresh = vectors.is_empty();
        for chunk in stale.chunks(1024) {
            let refs: Vec<&str> = chunk.iter().map(|s| s.1.as_str()).collect();
            let embedded = encoder.encode(&refs)?;
            for ((id, _, tag), v) in chunk.iter().zip(embedded) {
                vectors.upsert(*id, &v, *tag);
            }
            progress(chunk.len());
        }
        if fresh && !vectors.is_empty() {
            vectors.rebuild_lists(42);
        }
        Ok(())
    }
}
