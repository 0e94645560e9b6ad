//! Where importers put what they read: the store writer, plus the bookkeeping of bad rows.

use std::path::{Path, PathBuf};

use aisle_core::{Item, RawEvent, User};
use aisle_store::StoreWriter;

use crate::{Error, ImportOptions, ImportReport, MAX_REPORTED_ERRORS, Result, RowError};

const PROGRESS_EVERY: u64 = 8192;

pub(crate) struct Sink<'s, 'o> {
    writer: Box<dyn StoreWriter + 's>,
    options: &'o ImportOptions<'o>,
    report: ImportReport,
    file: PathBuf,
    rows_at_file_start: u64,
}

impl<'s, 'o> Sink<'s, 'o> {
    pub fn new(writer: Box<dyn StoreWriter + 's>, options: &'o ImportOptions<'o>) -> Self {
        Self {
            writer,
            options,
            report: ImportReport::default(),
            file: PathBuf::new(),
            rows_at_file_start: 0,
        }
    }

    pub fn start_file(&mut self, path: &Path) {
        self.file = path.to_path_buf();
        if !self.report.files.iter().any(|f| f == path) {
            self.report.files.push(path.to_path_buf());
        }
        self.rows_at_file_start = self.report.rows_read;
    }

    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Fails with [`Error::Empty`] when the current file gave no row.
    pub fn require_rows(&self) -> Result<()> {
        if self.report.rows_read == self.rows_at_file_start {
            return Err(Error::Empty {
                file: self.file.clone(),
            });
        }
        Ok(())
    }

    pub fn row_read(&mut self) {
        self.report.rows_read += 1;
        if self.report.rows_read.is_multiple_of(PROGRESS_EVERY)
            && let Some(progress) = self.options.progress
        {
            progress(self.report.rows_read);
        }
    }

    pub fn row_error(&self, line: u64, field: Option<&str>, reason: impl Into<String>) -> RowError {
        RowError::at(&self.file, line, field, reason)
    }

    /// Records a bad row: fails a strict import, otherwise counts it and moves on.
    pub fn bad_row(&mut self, error: RowError) -> Result<()> {
        if self.options.strict {
            return Err(Error::Row(error));
        }
        self.report.rows_skipped += 1;
        if self.report.errors.len() < MAX_REPORTED_ERRORS {
            self.report.errors.push(error);
        }
        Ok(())
    }

    /// Applies `result` of converting a row: the error becomes a bad row.
    pub fn or_bad_row<T>(&mut self, result: Result<T, RowError>) -> Result<Option<T>> {
        match result {
            Ok(value) => Ok(Some(value)),
            Err(error) => self.bad_row(error).map(|()| None),
        }
    }

    /// Checks that the store would accept the event's kind, without writing it.
    pub fn check_kind(&self, line: u64, field: &str, kind: &str) -> Result<(), RowError> {
        self.writer
            .resolve_kind(kind)
            .map(drop)
            .map_err(|e| self.row_error(line, Some(field), e.to_string()))
    }

    pub fn event(&mut self, line: u64, event: &RawEvent) -> Result<()> {
        let renamed;
        let event = match self.options.pseudonyms {
            Some(p) => {
                renamed = RawEvent {
                    user: p.pseudonym(&event.user),
                    ..event.clone()
                };
                &renamed
            }
            None => event,
        };
        match self.writer.add_event(event) {
            Ok(()) => Ok(()),
            Err(e) if e.is_user_error() => {
                let error = self.row_error(line, None, e.to_string());
                self.bad_row(error)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn item(&mut self, line: u64, item: Item) -> Result<()> {
        match self.writer.upsert_item(item) {
            Ok(_) => Ok(()),
            Err(e) if e.is_user_error() => {
                let error = self.row_error(line, None, e.to_string());
                self.bad_row(error)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn user(&mut self, line: u64, mut user: User) -> Result<()> {
        if let Some(p) = self.options.pseudonyms {
            user.external_id = p.pseudonym(&user.external_id);
        }
        match self.writer.upsert_user(user) {
            Ok(_) => Ok(()),
            Err(e) if e.is_user_error() => {
                let error = self.row_error(line, None, e.to_string());
                self.bad_row(error)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub fn register_kind(&mut self, name: &str) -> Result<()> {
        self.writer
            .register_kind(name)
            .map(drop)
            .map_err(Error::from)
    }

    pub fn finish(self) -> Result<ImportReport> {
        let Sink {
            writer, mut report, ..
        } = self;
        if report.rows_skipped == report.rows_read
            && let Some(first) = report.errors.first()
        {
            return Err(Error::NothingImported {
                files: report
                    .files
                    .iter()
                    .map(|f| f.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
                first: first.clone(),
            });
        }
        report.write = writer.commit()?;
        Ok(report)
    }
}
