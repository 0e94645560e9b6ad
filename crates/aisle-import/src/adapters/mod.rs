//! Adapters: each maps one public dataset's own files onto aisle's data model, faithfully,
//! and says in its docs what it had to invent (a dataset without timestamps gets synthetic
//! ones that keep its order, and the adapter says so).
//!
//! Every adapter takes the dataset's main file or the directory holding it, where it looks
//! the file up by the dataset's own file names ([`main_file`]); a directory without it is an
//! error naming the directory and the names looked for ([`no_dataset_file`]).

mod cdnow;
mod completejourney;
mod groceries;
mod instacart;
mod movielens;
mod s3rec;
mod yoochoose;

use std::io::BufRead;
use std::path::{Path, PathBuf};

use crate::rows::open_text;
use crate::sink::Sink;
use crate::{Error, Result};

/// The dataset adapters, by the name used with `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// Instacart 2017 order lines + catalogue (a directory or the order-lines file).
    Instacart,
    /// YOOCHOOSE clicks as prepared by session-rec (`SessionId ItemId Time`): a file, or the
    /// directory, whose `*_train_full.txt` and `*_test.txt` are read.
    Yoochoose,
    /// S3-Rec sequence files (`user item item ...`) with `*_item2attributes.json` beside them
    /// (a file, or a directory holding one dataset's).
    S3Rec,
    /// MovieLens in RecBole's atomic files (`.inter`, `.item`, `.user`; a directory or the
    /// `.inter` file).
    MovieLens,
    /// CDNOW purchase history: master or the 1/10 sample file, or the directory (its master).
    Cdnow,
    /// Groceries market baskets (one basket per line): `groceries.csv` or its directory.
    Groceries,
    /// 84.51° The Complete Journey 2.0 (Parquet): `transactions.parquet` or its directory,
    /// with the products and demographics beside it.
    CompleteJourney,
}

impl Adapter {
    /// Every adapter with its name.
    pub const ALL: [(&'static str, Adapter); 7] = [
        ("instacart", Adapter::Instacart),
        ("yoochoose", Adapter::Yoochoose),
        ("s3rec", Adapter::S3Rec),
        ("movielens", Adapter::MovieLens),
        ("cdnow", Adapter::Cdnow),
        ("groceries", Adapter::Groceries),
        ("completejourney", Adapter::CompleteJourney),
    ];

    /// Looks an adapter up by name.
    pub fn from_name(name: &str) -> Option<Adapter> {
        Self::ALL
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, a)| *a)
    }

    pub(crate) fn import(self, path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
        match self {
            Adapter::Instacart => instacart::import(path, sink),
            Adapter::Yoochoose => yoochoose::import(path, sink),
            Adapter::S3Rec => s3rec::import(path, sink),
            Adapter::MovieLens => movielens::import(path, sink),
            Adapter::Cdnow => cdnow::import(path, sink),
            Adapter::Groceries => groceries::import(path, sink),
            Adapter::CompleteJourney => completejourney::import(path, sink),
        }?;
        sink.require_rows()
    }
}

/// Calls `each` with every non-blank line of a text file and its 1-based number. Lines that
/// are not UTF-8 become bad rows; a read failure (a truncated archive) is a bad row too and
/// ends the file.
pub(crate) fn for_each_line(
    path: &Path,
    sink: &mut Sink<'_, '_>,
    mut each: impl FnMut(&mut Sink<'_, '_>, u64, &str) -> Result<()>,
) -> Result<()> {
    let mut reader = open_text(path)?;
    let mut buf = Vec::with_capacity(256);
    let mut line = 0u64;
    loop {
        buf.clear();
        match reader.read_until(b'\n', &mut buf) {
            Ok(0) => return Ok(()),
            Ok(_) => {}
            Err(e) => {
                sink.row_read();
                let error = sink.row_error(
                    line + 1,
                    None,
                    format!("read failed, the file may be truncated: {e}"),
                );
                return sink.bad_row(error);
            }
        }
        line += 1;
        match std::str::from_utf8(&buf) {
            Ok(text) => {
                let text = text.trim_end_matches(['\n', '\r']);
                if text.trim().is_empty() {
                    continue;
                }
                each(sink, line, text)?;
            }
            Err(_) => {
                sink.row_read();
                let error = sink.row_error(line, None, "not valid UTF-8");
                sink.bad_row(error)?;
            }
        }
    }
}

/// Parses a field or says which field and why not.
pub(crate) fn parse_field<T: std::str::FromStr>(
    sink: &Sink<'_, '_>,
    line: u64,
    field: &str,
    text: Option<&str>,
) -> Result<T, crate::RowError> {
    let text = text
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| sink.row_error(line, Some(field), "missing value"))?;
    text.parse::<T>().map_err(|_| {
        sink.row_error(
            line,
            Some(field),
            format!("cannot read {text:?} as {}", std::any::type_name::<T>()),
        )
    })
}

/// Finds a sibling file of `path` (or a file inside `path` when it is a directory).
pub(crate) fn sibling(path: &Path, names: &[&str]) -> Option<PathBuf> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

/// The file an adapter reads for `path`: `path` itself unless it is a directory, else the
/// first of `names` (in order of preference) inside it.
pub(crate) fn main_file(path: &Path, dataset: &str, names: &[&str]) -> Result<PathBuf> {
    if !path.is_dir() {
        return Ok(path.to_path_buf());
    }
    sibling(path, names).ok_or_else(|| no_dataset_file(path, dataset, &names.join(", ")))
}

/// A dataset directory without the file(s) the adapter reads: names the directory and what
/// was looked for.
pub(crate) fn no_dataset_file(dir: &Path, dataset: &str, looked_for: &str) -> Error {
    dataset_dir_error(
        dir,
        std::io::ErrorKind::NotFound,
        format!(
            "no {dataset} file in this directory (looked for {looked_for}); \
             pass the directory that holds it, or the file itself"
        ),
    )
}

/// A dataset directory that holds several datasets an adapter could read: names them.
pub(crate) fn several_datasets(dir: &Path, dataset: &str, found: &[PathBuf]) -> Error {
    let names: Vec<String> = found
        .iter()
        .filter_map(|p| p.file_name())
        .map(|n| n.to_string_lossy().into_owned())
        .collect();
    dataset_dir_error(
        dir,
        std::io::ErrorKind::InvalidInput,
        format!(
            "this directory holds several {dataset} datasets ({}); pass the file of the one to \
             import, e.g. {}",
            names.join(", "),
            found
                .first()
                .map_or_else(String::new, |p| p.display().to_string())
        ),
    )
}

fn dataset_dir_error(dir: &Path, kind: std::io::ErrorKind, message: String) -> Error {
    Error::Io(std::io::Error::new(
        kind,
        format!("{}: {message}", dir.display()),
    ))
}

/// The files in `dir` whose names end with `suffix`, sorted by name.
pub(crate) fn files_ending(dir: &Path, suffix: &str) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = fs_err::read_dir(dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.is_file()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.ends_with(suffix) && n.len() > suffix.len())
        })
        .collect();
    found.sort();
    Ok(found)
}

pub(crate) fn mapping_error(message: impl Into<String>) -> Error {
    Error::Mapping(message.into())
}
