//! Groceries (arules): one market basket per line, item categories comma-separated.
//!
//! Baskets have no customers and no dates. Each basket becomes its own anonymous user and
//! session (`basket-<line>`) with one `purchase` per item; its synthetic time is its line
//! number in seconds after the Unix epoch, which keeps the file's order and nothing more.
//! A directory stands for the `groceries.csv` in it.

use std::path::Path;

use aisle_core::{Item, RawEvent};

use super::{for_each_line, main_file};
use crate::Result;
use crate::sink::Sink;

/// The names of the arules export, the preferred first.
const FILES: &[&str] = &["groceries.csv", "groceries.csv.gz"];

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let path = &main_file(path, "Groceries", FILES)?;
    sink.start_file(path);
    let mut seen = std::collections::HashSet::new();
    for_each_line(path, sink, |sink, line, text| {
        sink.row_read();
        let basket = format!("basket-{line}");
        for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if seen.insert(name.to_string()) {
                let mut item = Item::new(name);
                item.title = name.to_string();
                sink.item(line, item)?;
            }
            let mut event = RawEvent::new(
                basket.clone(),
                Some(name.to_string()),
                "purchase",
                line as i64 * 1000,
            );
            event.session = Some(basket.clone());
            sink.event(line, &event)?;
        }
        Ok(())
    })
}
