//! Reading the catalogue out of a store.

use aisle_core::Item;
use aisle_store::ReadStore;

use crate::Result;

/// Every item in `store`, indexed by item id.
pub fn load_catalogue(store: &dyn ReadStore) -> Result<Vec<Option<Item>>> {
    let mut items = vec![None; store.counts()?.items];
    store.scan_items(&mut |id, item| {
        if items.len() <= id.index() {
            items.resize(id.index() + 1, None);
        }
        items[id.index()] = Some(item);
    })?;
    Ok(items)
}
