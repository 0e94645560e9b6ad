//! Bulk import into the store.
//!
//! Two ways in: the generic importer reads CSV, JSON Lines or Parquet through a column
//! [`Mapping`] (flags or a small TOML file), and an adapter per public dataset maps that
//! dataset's own files onto aisle's data model (see [`Adapter`]).
//!
//! Every import runs inside one store writer: it lands whole or not at all. A row that cannot
//! be parsed is reported with its file, line and field; by default such rows are skipped and
//! counted, with [`ImportOptions::strict`] the first one rejects the whole import. Re-importing
//! a file adds nothing, because the store keys events by content.
//!
//! Missing values follow one rule: a missing *required* field (user id of an event, the
//! timestamp, an item's id) makes the row bad; a missing optional field stays unset (no title,
//! no price, no session), and nothing is guessed.

mod adapters;
mod error;
mod mapping;
mod rows;
mod sink;
mod time;

use std::path::{Path, PathBuf};

use aisle_store::{Store, WriteReport};

pub use adapters::Adapter;
pub use error::{Error, Result, RowError};
pub use mapping::{Entity, Mapping};
pub use rows::TableFormat;
pub use time::TimeFormat;

/// What to do with bad rows, and how to report progress.
#[derive(Default)]
pub struct ImportOptions<'a> {
    /// Reject the whole import at the first bad row (default: skip and count bad rows).
    pub strict: bool,
    /// Called with the number of rows read so far, every few thousand rows.
    pub progress: Option<&'a dyn Fn(u64)>,
    /// Store users under keyed pseudonyms of their external ids, never the ids themselves.
    pub pseudonyms: Option<&'a aisle_privacy::pseudonym::Pseudonymizer>,
}

/// What an import did.
#[derive(Clone, Debug, Default)]
pub struct ImportReport {
    /// Files read.
    pub files: Vec<PathBuf>,
    /// Source rows read (lines, records), bad ones included.
    pub rows_read: u64,
    /// Rows skipped because they could not be parsed.
    pub rows_skipped: u64,
    /// The first bad rows, for the user to look at.
    pub errors: Vec<RowError>,
    /// What the store recorded.
    pub write: WriteReport,
}

/// How many bad rows an [`ImportReport`] keeps in detail.
pub const MAX_REPORTED_ERRORS: usize = 20;

/// What to import.
#[derive(Clone, Debug)]
pub enum Source {
    /// Tabular files through a column mapping.
    Table {
        /// File format.
        format: TableFormat,
        /// Column mapping.
        mapping: Mapping,
    },
    /// A dataset adapter.
    Adapter(Adapter),
}

/// A fresh in-memory store holding the Instacart-format dataset in `dir` (the bundled
/// sample, usually): where tests, benches and examples start.
pub fn instacart_in_memory(dir: &std::path::Path) -> Result<aisle_store::MemStore> {
    in_memory(Adapter::Instacart, dir)
}

/// A fresh in-memory store holding the dataset in `dir`, read by `adapter`.
pub fn in_memory(adapter: Adapter, dir: &std::path::Path) -> Result<aisle_store::MemStore> {
    let store = aisle_store::MemStore::new();
    import(
        &store,
        &Source::Adapter(adapter),
        &[dir.to_path_buf()],
        &ImportOptions::default(),
    )?;
    Ok(store)
}

/// Imports `paths` into `store` as one atomic write.
pub fn import(
    store: &dyn Store,
    source: &Source,
    paths: &[PathBuf],
    options: &ImportOptions<'_>,
) -> Result<ImportReport> {
    if paths.is_empty() {
        return Err(Error::NoInput);
    }
    let mut sink = sink::Sink::new(store.writer()?, options);
    for path in paths {
        import_one(&mut sink, source, path)?;
    }
    sink.finish()
}

fn import_one(sink: &mut sink::Sink<'_, '_>, source: &Source, path: &Path) -> Result<()> {
    // An adapter given a dataset's directory names each file it reads itself; the directory
    // is not one of the files imported.
    if !(matches!(source, Source::Adapter(_)) && path.is_dir()) {
        sink.start_file(path);
    }
    match source {
        Source::Table { format, mapping } => {
            let mut rows = rows::open(*format, path)?;
            mapping.import(&mut *rows, sink)
        }
        Source::Adapter(adapter) => adapter.import(path, sink),
    }
}
