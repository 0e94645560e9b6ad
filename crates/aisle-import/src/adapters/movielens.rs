//! MovieLens in RecBole's atomic files: `ml-100k.inter` (`user_id item_id rating timestamp`),
//! `ml-100k.item` (`item_id movie_title release_year class`) and `ml-100k.user`
//! (`user_id age gender occupation zip_code`), tab-separated, `name:type` headers.
//!
//! Ratings become `rating` events with the rating as value. Movie genres (`class`) are not a
//! path, so they are kept as the attribute `genres` beside `release_year`; user columns
//! become user attributes.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use aisle_core::{EventPayload, Item, RawEvent, User};

use super::{files_ending, for_each_line, no_dataset_file, parse_field};
use crate::Result;
use crate::sink::Sink;

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let inter = if path.is_dir() {
        find_with_extension(path, "inter")?
    } else {
        path.to_path_buf()
    };
    let item_file = inter.with_extension("item");
    if item_file.is_file() {
        import_table(&item_file, sink, |sink, line, columns| {
            let Some(id) = sink.or_bad_row(require(sink, line, columns, "item_id"))? else {
                return Ok(());
            };
            let mut item = Item::new(id);
            item.title = columns.get("movie_title").cloned().unwrap_or_default();
            for (key, name) in [("release_year", "release_year"), ("class", "genres")] {
                if let Some(v) = columns.get(key) {
                    item.attributes.insert(name.to_string(), v.clone());
                }
            }
            sink.item(line, item)
        })?;
    }
    let user_file = inter.with_extension("user");
    if user_file.is_file() {
        import_table(&user_file, sink, |sink, line, columns| {
            let Some(id) = sink.or_bad_row(require(sink, line, columns, "user_id"))? else {
                return Ok(());
            };
            let mut user = User::new(id);
            for (k, v) in columns {
                if k != "user_id" {
                    user.attributes.insert(k.clone(), v.clone());
                }
            }
            sink.user(line, user)
        })?;
    }
    sink.start_file(&inter);
    import_table(&inter, sink, |sink, line, columns| {
        let event = (|| {
            let user = columns.get("user_id").map(String::as_str);
            let user: String = parse_field(sink, line, "user_id", user)?;
            let item: String = parse_field(
                sink,
                line,
                "item_id",
                columns.get("item_id").map(String::as_str),
            )?;
            let rating: f32 = parse_field(
                sink,
                line,
                "rating",
                columns.get("rating").map(String::as_str),
            )?;
            let seconds: f64 = parse_field(
                sink,
                line,
                "timestamp",
                columns.get("timestamp").map(String::as_str),
            )?;
            let mut event = RawEvent::new(
                user,
                Some(item),
                "rating",
                (seconds * 1000.0).round() as i64,
            );
            event.payload = EventPayload {
                value: Some(rating),
                ..EventPayload::default()
            };
            Ok(event)
        })();
        if let Some(event) = sink.or_bad_row(event)? {
            sink.event(line, &event)?;
        }
        Ok(())
    })
}

fn find_with_extension(dir: &Path, extension: &str) -> Result<PathBuf> {
    files_ending(dir, &format!(".{extension}"))?
        .into_iter()
        .next()
        .ok_or_else(|| no_dataset_file(dir, "MovieLens", &format!("*.{extension}")))
}

fn require(
    sink: &Sink<'_, '_>,
    line: u64,
    columns: &BTreeMap<String, String>,
    name: &str,
) -> Result<String, crate::RowError> {
    columns
        .get(name)
        .cloned()
        .ok_or_else(|| sink.row_error(line, Some(name), "missing value"))
}

/// Reads an atomic file: a `name:type` header, then tab-separated rows, each handed over as a
/// column-name → value map (empty values left out).
fn import_table(
    path: &Path,
    sink: &mut Sink<'_, '_>,
    mut each: impl FnMut(&mut Sink<'_, '_>, u64, &BTreeMap<String, String>) -> Result<()>,
) -> Result<()> {
    let previous = sink.file().to_path_buf();
    sink.start_file(path);
    let mut header: Vec<String> = Vec::new();
    for_each_line(path, sink, |sink, line, text| {
        if header.is_empty() {
            header = text
                .split('\t')
                .map(|h| h.split(':').next().unwrap_or(h).trim().to_string())
                .collect();
            return Ok(());
        }
        sink.row_read();
        let values: Vec<&str> = text.split('\t').collect();
        if values.len() != header.len() {
            let error = sink.row_error(
                line,
                None,
                format!(
                    "expected {} tab-separated fields, found {}",
                    header.len(),
                    values.len()
                ),
            );
            return sink.bad_row(error);
        }
        let columns: BTreeMap<String, String> = header
            .iter()
            .zip(values)
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(h, v)| (h.clone(), v.trim().to_string()))
            .collect();
        each(sink, line, &columns)
    })?;
    if path != previous && !previous.as_os_str().is_empty() {
        sink.start_file(&previous);
    }
    Ok(())
}
