//! Row sources: CSV (or TSV), JSON Lines and Parquet behind one small trait, each returning the
//! selected columns of a row as optional strings. A `.gz` file is decompressed on the fly.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use parquet::file::reader::{FileReader, SerializedFileReader};
use parquet::record::Field;
use serde::{Deserialize, Serialize};

use crate::{Error, Result, RowError};

/// Tabular file formats the generic importer reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TableFormat {
    /// Comma-separated with a header row (tab-separated when the file name ends in .tsv).
    Csv,
    /// One JSON object per line.
    Jsonl,
    /// Apache Parquet (snappy, lz4, gzip or uncompressed pages).
    Parquet,
}

/// One row's selected values; empty strings are `None`.
pub(crate) struct Row {
    pub line: u64,
    pub values: Vec<Option<String>>,
}

/// `Send`, so that a bulk import reads on one thread and writes on another.
pub(crate) trait RowSource: Send {
    fn path(&self) -> &Path;
    /// Column names known up front (the header, the schema, the first object's keys).
    fn columns(&self) -> &[String];
    /// Chooses the columns `next_row` returns, in this order.
    fn select(&mut self, wanted: &[String]) -> Result<()>;
    fn next_row(&mut self) -> Option<Result<Row, RowError>>;
}

pub(crate) fn open(format: TableFormat, path: &Path) -> Result<Box<dyn RowSource>> {
    match format {
        TableFormat::Csv => {
            let name = path.to_string_lossy().to_ascii_lowercase();
            let delimiter = if name.ends_with(".tsv") || name.ends_with(".tsv.gz") {
                b'\t'
            } else {
                b','
            };
            Ok(Box::new(CsvRows::open(path, delimiter)?))
        }
        TableFormat::Jsonl => Ok(Box::new(JsonRows::open(path)?)),
        TableFormat::Parquet => Ok(Box::new(ParquetRows::open(path)?)),
    }
}

/// Opens a file for reading, decompressing `.gz`.
pub(crate) fn open_text(path: &Path) -> Result<Box<dyn BufRead + Send>> {
    let file = fs_err::File::open(path)?;
    if path.extension().is_some_and(|e| e == "gz") {
        Ok(Box::new(BufReader::with_capacity(
            1 << 16,
            flate2::read::MultiGzDecoder::new(file),
        )))
    } else {
        Ok(Box::new(BufReader::with_capacity(1 << 16, file)))
    }
}

fn missing_column(path: &Path, column: &str, columns: &[String]) -> Error {
    Error::MissingColumn {
        file: path.to_path_buf(),
        column: column.to_string(),
        available: columns.join(", "),
    }
}

/// Positions of `wanted` among `columns`; a missing one is an error naming the file.
fn column_positions(path: &Path, columns: &[String], wanted: &[String]) -> Result<Vec<usize>> {
    wanted
        .iter()
        .map(|w| {
            columns
                .iter()
                .position(|c| c == w)
                .ok_or_else(|| missing_column(path, w, columns))
        })
        .collect()
}

fn non_empty(s: &str) -> Option<String> {
    let t = s.trim();
    (!t.is_empty()).then(|| t.to_string())
}

struct CsvRows {
    path: PathBuf,
    reader: csv::Reader<Box<dyn BufRead + Send>>,
    columns: Vec<String>,
    selected: Vec<usize>,
    record: csv::ByteRecord,
    done: bool,
}

impl CsvRows {
    fn open(path: &Path, delimiter: u8) -> Result<Self> {
        let mut reader = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .flexible(false)
            .from_reader(open_text(path)?);
        let header = match reader.byte_headers() {
            Ok(h) => h.clone(),
            Err(e) => return Err(csv_fatal(path, e)),
        };
        if header.is_empty() {
            return Err(Error::Empty {
                file: path.to_path_buf(),
            });
        }
        let mut columns = Vec::with_capacity(header.len());
        for (i, name) in header.iter().enumerate() {
            let name = std::str::from_utf8(name).map_err(|_| {
                Error::Row(RowError {
                    file: path.to_path_buf(),
                    line: 1,
                    field: Some(format!("column {}", i + 1)),
                    reason: "the header is not valid UTF-8".into(),
                })
            })?;
            columns.push(name.trim().to_string());
        }
        Ok(Self {
            path: path.to_path_buf(),
            reader,
            columns,
            selected: Vec::new(),
            record: csv::ByteRecord::new(),
            done: false,
        })
    }
}

fn csv_fatal(path: &Path, e: csv::Error) -> Error {
    match e.into_kind() {
        csv::ErrorKind::Io(io) => Error::Io(std::io::Error::new(
            io.kind(),
            format!("{}: {io}", path.display()),
        )),
        other => Error::Mapping(format!("{}: {other:?}", path.display())),
    }
}

impl RowSource for CsvRows {
    fn path(&self) -> &Path {
        &self.path
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn select(&mut self, wanted: &[String]) -> Result<()> {
        self.selected = column_positions(&self.path, &self.columns, wanted)?;
        Ok(())
    }

    fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        if self.done {
            return None;
        }
        let error = |line: u64, field: Option<String>, reason: String| RowError {
            file: self.path.clone(),
            line,
            field,
            reason,
        };
        match self.reader.read_byte_record(&mut self.record) {
            Ok(false) => {
                self.done = true;
                None
            }
            Ok(true) => {
                let line = self.record.position().map_or(0, |p| p.line());
                let mut values = Vec::with_capacity(self.selected.len());
                for &i in &self.selected {
                    let bytes = self.record.get(i).unwrap_or_default();
                    match std::str::from_utf8(bytes) {
                        Ok(s) => values.push(non_empty(s)),
                        Err(_) => {
                            return Some(Err(error(
                                line,
                                Some(self.columns[i].clone()),
                                "not valid UTF-8".into(),
                            )));
                        }
                    }
                }
                Some(Ok(Row { line, values }))
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                let reason = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => format!(
                        "expected {expected_len} fields, found {len} (truncated or malformed row)"
                    ),
                    csv::ErrorKind::Io(io) => {
                        self.done = true;
                        format!("read failed, the file may be truncated: {io}")
                    }
                    other => format!("{other:?}"),
                };
                Some(Err(error(line, None, reason)))
            }
        }
    }
}

struct JsonRows {
    path: PathBuf,
    reader: Box<dyn BufRead + Send>,
    columns: Vec<String>,
    selected: Vec<String>,
    line: u64,
    first: Option<(u64, Vec<u8>)>,
    buf: Vec<u8>,
    done: bool,
}

impl JsonRows {
    fn open(path: &Path) -> Result<Self> {
        let mut rows = Self {
            path: path.to_path_buf(),
            reader: open_text(path)?,
            columns: Vec::new(),
            selected: Vec::new(),
            line: 0,
            first: None,
            buf: Vec::new(),
            done: false,
        };
        // Read ahead to the first non-blank line to learn the column names.
        loop {
            match rows.read_line() {
                Err(e) => return Err(e.into()),
                Ok(None) => {
                    return Err(Error::Empty {
                        file: path.to_path_buf(),
                    });
                }
                Ok(Some(line)) if line.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(line)) => {
                    if let Ok(serde_json::Value::Object(map)) =
                        serde_json::from_slice::<serde_json::Value>(&line)
                    {
                        rows.columns = map.keys().cloned().collect();
                    }
                    rows.first = Some((rows.line, line));
                    return Ok(rows);
                }
            }
        }
    }

    fn read_line(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        self.buf.clear();
        let n = self
            .reader
            .read_until(b'\n', &mut self.buf)
            .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", self.path.display())))?;
        if n == 0 {
            return Ok(None);
        }
        self.line += 1;
        Ok(Some(std::mem::take(&mut self.buf)))
    }

    fn parse(&self, line: u64, bytes: &[u8]) -> Result<Row, RowError> {
        let error = |field: Option<String>, reason: String| RowError {
            file: self.path.clone(),
            line,
            field,
            reason,
        };
        let text = std::str::from_utf8(bytes).map_err(|_| error(None, "not valid UTF-8".into()))?;
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| error(None, format!("not valid JSON: {e}")))?;
        let serde_json::Value::Object(map) = value else {
            return Err(error(None, "expected a JSON object".into()));
        };
        let values = self
            .selected
            .iter()
            .map(|key| match map.get(key) {
                None | Some(serde_json::Value::Null) => None,
                Some(serde_json::Value::String(s)) => non_empty(s),
                Some(other) => Some(other.to_string()),
            })
            .collect();
        Ok(Row { line, values })
    }
}

impl RowSource for JsonRows {
    fn path(&self) -> &Path {
        &self.path
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn select(&mut self, wanted: &[String]) -> Result<()> {
        // JSON Lines is sparse: a key absent from one object is a missing value, not a
        // missing column, so there is nothing to check here.
        self.selected = wanted.to_vec();
        Ok(())
    }

    fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        if let Some((line, bytes)) = self.first.take() {
            return Some(self.parse(line, &bytes));
        }
        loop {
            if self.done {
                return None;
            }
            match self.read_line() {
                Err(e) => {
                    self.done = true;
                    return Some(Err(RowError {
                        file: self.path.clone(),
                        line: self.line + 1,
                        field: None,
                        reason: format!("read failed, the file may be truncated: {e}"),
                    }));
                }
                Ok(None) => {
                    self.done = true;
                    return None;
                }
                Ok(Some(bytes)) if bytes.iter().all(u8::is_ascii_whitespace) => continue,
                Ok(Some(bytes)) => return Some(self.parse(self.line, &bytes)),
            }
        }
    }
}

struct ParquetRows {
    path: PathBuf,
    columns: Vec<String>,
    selected: Vec<usize>,
    rows: parquet::record::reader::RowIter<'static>,
    row: u64,
}

impl ParquetRows {
    fn open(path: &Path) -> Result<Self> {
        let file = fs_err::File::open(path)?.into_file();
        let parquet_error = |source| Error::Parquet {
            file: path.to_path_buf(),
            source,
        };
        let reader = SerializedFileReader::new(file).map_err(parquet_error)?;
        let schema = reader.metadata().file_metadata().schema_descr();
        let columns = schema
            .root_schema()
            .get_fields()
            .iter()
            .map(|f| f.name().to_string())
            .collect();
        if reader.metadata().file_metadata().num_rows() == 0 {
            return Err(Error::Empty {
                file: path.to_path_buf(),
            });
        }
        let rows = parquet::record::reader::RowIter::from_file_into(Box::new(reader));
        Ok(Self {
            path: path.to_path_buf(),
            columns,
            selected: Vec::new(),
            rows,
            row: 0,
        })
    }
}

fn field_text(field: &Field) -> Option<String> {
    match field {
        Field::Null => None,
        Field::Str(s) => non_empty(s),
        Field::Bool(b) => Some(b.to_string()),
        Field::Byte(v) => Some(v.to_string()),
        Field::Short(v) => Some(v.to_string()),
        Field::Int(v) => Some(v.to_string()),
        Field::Long(v) => Some(v.to_string()),
        Field::UByte(v) => Some(v.to_string()),
        Field::UShort(v) => Some(v.to_string()),
        Field::UInt(v) => Some(v.to_string()),
        Field::ULong(v) => Some(v.to_string()),
        Field::Float(v) => Some(v.to_string()),
        Field::Double(v) => Some(v.to_string()),
        Field::TimestampMillis(ms) => Some(ms.to_string()),
        Field::TimestampMicros(us) => Some((us / 1000).to_string()),
        other => Some(other.to_string()),
    }
}

impl RowSource for ParquetRows {
    fn path(&self) -> &Path {
        &self.path
    }

    fn columns(&self) -> &[String] {
        &self.columns
    }

    fn select(&mut self, wanted: &[String]) -> Result<()> {
        self.selected = column_positions(&self.path, &self.columns, wanted)?;
        Ok(())
    }

    fn next_row(&mut self) -> Option<Result<Row, RowError>> {
        let next = self.rows.next()?;
        self.row += 1;
        Some(match next {
            Ok(row) => {
                let fields: Vec<&Field> = row.get_column_iter().map(|(_, f)| f).collect();
                Ok(Row {
                    line: self.row,
                    values: self
                        .selected
                        .iter()
                        .map(|&i| field_text(fields[i]))
                        .collect(),
                })
            }
            Err(e) => Err(RowError {
                file: self.path.clone(),
                line: self.row,
                field: None,
                reason: format!("unreadable Parquet row: {e}"),
            }),
        })
    }
}

/// Reads a whole small text file (a lookup table of an adapter).
pub(crate) fn read_all(path: &Path) -> Result<String> {
    let mut text = String::new();
    open_text(path)?
        .read_to_string(&mut text)
        .map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    Ok(text)
}
