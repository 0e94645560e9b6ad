//! Adapters: each maps one public dataset's own files onto aisle's data model, faithfully,
//! and says in its docs what it had to invent (a dataset without timestamps gets synthetic
//! ones that keep its order, and the adapter says so).

mod cdnow;
mod groceries;
mod instacart;
mod movielens;
mod s3rec;
mod yoochoose;

use std::io::BufRead;
use std::path::Path;

use crate::rows::open_text;
use crate::sink::Sink;
use crate::{Error, Result};

/// The dataset adapters, by the name used with `--format`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Adapter {
    /// Instacart 2017 order lines + catalogue (a directory or the order-lines file).
    Instacart,
    /// YOOCHOOSE clicks as prepared by session-rec (`SessionId ItemId Time`).
    Yoochoose,
    /// S3-Rec sequence files (`user item item ...`) with `*_item2attributes.json` beside them.
    S3Rec,
    /// MovieLens in RecBole's atomic files (`.inter`, `.item`, `.user`).
    MovieLens,
    /// CDNOW purchase history (master or the 1/10 sample).
    Cdnow,
    /// Groceries market baskets (one basket per line).
    Groceries,
}

impl Adapter {
    /// Every adapter with its name.
    pub const ALL: [(&'static str, Adapter); 6] = [
        ("instacart", Adapter::Instacart),
        ("yoochoose", Adapter::Yoochoose),
        ("s3rec", Adapter::S3Rec),
        ("movielens", Adapter::MovieLens),
        ("cdnow", Adapter::Cdnow),
        ("groceries", Adapter::Groceries),
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
pub(crate) fn sibling(path: &Path, names: &[&str]) -> Option<std::path::PathBuf> {
    let dir = if path.is_dir() { path } else { path.parent()? };
    names.iter().map(|n| dir.join(n)).find(|p| p.is_file())
}

pub(crate) fn mapping_error(message: impl Into<String>) -> Error {
    Error::Mapping(message.into())
}
