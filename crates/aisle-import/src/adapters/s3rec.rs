//! S3-Rec sequence files: one line per user, `user item item ...`, items in review order, and
//! `<name>_item2attributes.json` (`{"item": [attribute ids]}`) beside the file.
//!
//! The files carry no timestamps. Each user's i-th interaction gets the synthetic time
//! i days after the Unix epoch, which keeps every sequence's order exactly (and is the only
//! thing leave-one-out needs) but means nothing across users. Reviews stand in for purchases,
//! so every interaction is a `purchase`. Attribute ids are kept on the item as the space-
//! separated attribute `attributes`.
//!
//! A directory stands for the one dataset in it: the `<name>.txt` beside a
//! `<name>_item2attributes.json`, or one of S3-Rec's own dataset names. S3-Rec's data folder
//! holds several datasets whose ids overlap, so a directory with more than one is an error
//! that names them rather than a guess.

use std::path::{Path, PathBuf};

use aisle_core::{Item, RawEvent};

use super::{files_ending, for_each_line, mapping_error, no_dataset_file, several_datasets};
use crate::Result;
use crate::rows::read_all;
use crate::sink::Sink;

const DAY_MS: i64 = 86_400_000;

const ATTRIBUTES_SUFFIX: &str = "_item2attributes.json";

/// The datasets of S3-Rec's `data/` folder.
const KNOWN: &[&str] = &[
    "Beauty.txt",
    "Sports_and_Outdoors.txt",
    "Toys_and_Games.txt",
    "Yelp.txt",
    "LastFM.txt",
];

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let path = &sequence_file(path)?;
    sink.start_file(path);
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

/// `path` itself, or the one sequence file in the directory `path`.
fn sequence_file(path: &Path) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    let mut found: Vec<PathBuf> = files_ending(path, ATTRIBUTES_SUFFIX)?
        .into_iter()
        .filter_map(|json| {
            let name = json.file_name()?.to_str()?;
            let stem = name.strip_suffix(ATTRIBUTES_SUFFIX)?;
            Some(path.join(format!("{stem}.txt")))
        })
        .chain(KNOWN.iter().map(|n| path.join(n)))
        .filter(|p| p.is_file())
        .collect();
    found.sort();
    found.dedup();
    match found.len() {
        0 => Err(no_dataset_file(
            path,
            "S3-Rec sequence",
            &format!(
                "NAME.txt beside NAME{ATTRIBUTES_SUFFIX}, or {}",
                KNOWN.join(", ")
            ),
        )),
        1 => Ok(found.remove(0)),
        _ => Err(several_datasets(path, "S3-Rec", &found)),
    }
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
