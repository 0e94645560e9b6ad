//! S3-Rec sequence files: one line per user, `user item item ...`, items in review order, and
//! `<name>_item2attributes.json` (`{"item": [attribute ids]}`) beside the file.
//!
//! The files carry no timestamps. Each user's i-th interaction gets the synthetic time
//! i days after the Unix epoch, which keeps every sequence's order exactly (and is the only
//! thing leave-one-out needs) but means nothing across users. Reviews stand in for purchases,
//! so every interaction is a `purchase`. Attribute ids are kept on the item as the space-
//! separated attribute `attributes`.

use std::path::Path;

use aisle_core::{Item, RawEvent};

use super::{for_each_line, mapping_error};
use crate::Result;
use crate::rows::read_all;
use crate::sink::Sink;

const DAY_MS: i64 = 86_400_000;

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    import_attributes(path, sink)?;
    for_each_line(path, sink, |sink, line, text| {
        sink.row_read();
        let mut tokens = text.split_ascii_whitespace();
        let Some(user) = tokens.next() else {
            return Ok(());
        };
        let items: Vec<&str> = tokens.collect();
        if items.is_empty() {
            let error = sink.row_error(line, Some("items"), "a user line without items");
            return sink.bad_row(error);
        }
        for (position, item) in items.iter().enumerate() {
            if item.parse::<u64>().is_err() {
                let error = sink.row_error(
                    line,
                    Some(&format!("item {}", position + 1)),
                    format!("expected an item id, found {item:?}"),
                );
                return sink.bad_row(error);
            }
        }
        for (position, item) in items.iter().enumerate() {
            let event = RawEvent::new(
                user,
                Some((*item).to_string()),
                "purchase",
                position as i64 * DAY_MS,
            );
            sink.event(line, &event)?;
        }
        Ok(())
    })
}

fn import_attributes(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let Some(stem) = path.file_stem().and_then(|s| s.to_str()) else {
        return Ok(());
    };
    let json = path.with_file_name(format!("{stem}_item2attributes.json"));
    if !json.is_file() {
        return Ok(());
    }
    let text = read_all(&json)?;
    let map: std::collections::BTreeMap<String, Vec<u32>> =
        serde_json::from_str(&text).map_err(|e| {
            mapping_error(format!(
                "{}: not an item-to-attributes map: {e}",
                json.display()
            ))
        })?;
    // Numeric order, so that item ids are interned as 1, 2, 3, ... when the catalogue comes first.
    let mut entries: Vec<(u64, String, Vec<u32>)> = map
        .into_iter()
        .map(|(k, v)| (k.parse::<u64>().unwrap_or(u64::MAX), k, v))
        .collect();
    entries.sort();
    for (_, id, attributes) in entries {
        let mut item = Item::new(id);
        let ids: Vec<String> = attributes.iter().map(u32::to_string).collect();
        item.attributes.insert("attributes".into(), ids.join(" "));
        sink.item(0, item)?;
    }
    Ok(())
}
