//! YOOCHOOSE (RecSys Challenge 2015) clicks as prepared by session-rec: tab-separated
//! `SessionId ItemId Time`, Time in Unix seconds with milliseconds.
//!
//! The data has no user ids: every session is its own anonymous user (`session-<id>`), and
//! the session id is kept. Every row is a `click`.
//!
//! A directory stands for the whole prepared dataset: session-rec's `<prefix>_train_full.txt`
//! and `<prefix>_test.txt` (its train/test split by the last day; `_train_tr` and
//! `_train_valid` split `_train_full` again, so they are not read).

use std::path::{Path, PathBuf};

use aisle_core::RawEvent;

use super::{files_ending, for_each_line, no_dataset_file, parse_field, several_datasets};
use crate::Result;
use crate::sink::Sink;

const TRAIN_SUFFIX: &str = "_train_full.txt";
const TEST_SUFFIX: &str = "_test.txt";

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for file in click_files(path)? {
        sink.start_file(&file);
        import_file(&file, sink)?;
    }
    Ok(())
}

/// `path` itself, or the train and test files of the one prepared dataset in the directory.
fn click_files(path: &Path) -> Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_path_buf()]);
    }
    let train = files_ending(path, TRAIN_SUFFIX)?;
    match train.as_slice() {
        [] => Err(no_dataset_file(
            path,
            "YOOCHOOSE (session-rec)",
            &format!(
                "PREFIX{TRAIN_SUFFIX} and PREFIX{TEST_SUFFIX}, e.g. yoochoose-clicks-100k{TRAIN_SUFFIX}"
            ),
        )),
        [train] => {
            let name = train
                .file_name()
                .and_then(|n| n.to_str())
                .expect("files_ending returns files named with the suffix");
            let prefix = name
                .strip_suffix(TRAIN_SUFFIX)
                .expect("files_ending returns files named with the suffix");
            let test = path.join(format!("{prefix}{TEST_SUFFIX}"));
            Ok(if test.is_file() {
                vec![train.clone(), test]
            } else {
                vec![train.clone()]
            })
        }
        several => Err(several_datasets(path, "YOOCHOOSE", several)),
    }
}

fn import_file(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for_each_line(path, sink, |sink, line, text| {
        if line == 1 && text.starts_with("SessionId") {
            return Ok(());
        }
        sink.row_read();
        let mut fields = text.split('\t');
        let event = (|| {
            let session: &str = fields
                .next()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| sink.row_error(line, Some("SessionId"), "missing value"))?;
            let item: u64 = parse_field(sink, line, "ItemId", fields.next())?;
            let seconds: f64 = parse_field(sink, line, "Time", fields.next())?;
            let mut event = RawEvent::new(
                format!("session-{session}"),
                Some(item.to_string()),
                "click",
                (seconds * 1000.0).round() as i64,
            );
            event.session = Some(session.to_string());
            Ok(event)
        })();
        if let Some(event) = sink.or_bad_row(event)? {
            sink.event(line, &event)?;
        }
        Ok(())
    })
}
