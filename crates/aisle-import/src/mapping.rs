//! Column mappings of the generic importer: which source column feeds which field.
//!
//! A mapping comes from flags (`--map user=customer --kind view`) or a small TOML file:
//!
//! ```toml
//! entity = "events"            # events | items | users
//! kind = "view"                # a fixed kind, when the file has no kind column
//! time_format = "unix_s"       # auto | unix_s | unix_ms | rfc3339 | a strftime pattern
//! custom_kinds = ["wishlist"]  # kinds beyond the built-in ones that rows may name
//! [columns]
//! user = "customer"
//! item = "sku"
//! timestamp = "ts"
//! ```
//!
//! A field without a mapped column is looked up under its usual names (`user_id`,
//! `product_id`, `timestamp`, ...). Items take every unmapped column as an attribute unless
//! `attributes` lists the ones to keep.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::mpsc::{Receiver, Sender};

use aisle_core::{EventPayload, Item, RawEvent, User};
use serde::{Deserialize, Serialize};

use crate::rows::{Row, RowSource};
use crate::sink::Sink;
use crate::{Error, Result, RowError, TimeFormat};

/// What a file's rows are.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Entity {
    /// Behaviour events.
    #[default]
    Events,
    /// Catalogue items.
    Items,
    /// Users.
    Users,
}

/// Maps source columns onto aisle's fields.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Mapping {
    /// What the rows are.
    pub entity: Entity,
    /// Field name → column name.
    pub columns: BTreeMap<String, String>,
    /// Fixed event kind for every row (instead of a kind column).
    pub kind: Option<String>,
    /// Custom kinds rows may name, registered before the import.
    pub custom_kinds: Vec<String>,
    /// How timestamps are written: `auto`, `unix_s`, `unix_ms`, `rfc3339` or a pattern.
    pub time_format: String,
    /// Separator of a category path in one column.
    pub category_separator: String,
    /// Item or user columns kept as attributes (default: every unmapped column).
    pub attributes: Option<Vec<String>>,
}

impl Default for Mapping {
    fn default() -> Self {
        Self {
            entity: Entity::Events,
            columns: BTreeMap::new(),
            kind: None,
            custom_kinds: Vec::new(),
            time_format: "auto".into(),
            category_separator: ">".into(),
            attributes: None,
        }
    }
}

const EVENT_FIELDS: &[(&str, &[&str])] = &[
    (
        "user",
        &["user", "user_id", "userid", "customer_id", "visitor_id"],
    ),
    ("item", &["item", "item_id", "itemid", "product_id", "sku"]),
    ("kind", &["kind", "event", "event_type", "type", "action"]),
    (
        "timestamp",
        &["timestamp", "ts", "time", "event_time", "date"],
    ),
    ("session", &["session", "session_id", "sessionid"]),
    ("query", &["query", "search_query"]),
    ("quantity", &["quantity", "qty"]),
    ("price", &["price", "unit_price"]),
    ("value", &["value", "rating"]),
];
const ITEM_FIELDS: &[(&str, &[&str])] = &[
    ("id", &["id", "item_id", "itemid", "product_id", "sku"]),
    ("title", &["title", "name", "product_name"]),
    ("description", &["description"]),
    ("category", &["category", "category_path", "categories"]),
    ("brand", &["brand"]),
    ("price", &["price"]),
];
const USER_FIELDS: &[(&str, &[&str])] = &[("id", &["id", "user_id", "userid", "customer_id"])];
const REQUIRED_EVENT: &[&str] = &["user", "timestamp"];

impl Mapping {
    /// Loads a mapping from TOML text.
    pub fn from_toml(text: &str) -> Result<Mapping> {
        toml::from_str(text).map_err(|e| Error::Mapping(e.to_string()))
    }

    /// Maps `field` to `column` (a `--map field=column` flag).
    pub fn set_column(&mut self, field: &str, column: &str) {
        self.columns.insert(field.to_string(), column.to_string());
    }

    fn fields(&self) -> &'static [(&'static str, &'static [&'static str])] {
        match self.entity {
            Entity::Events => EVENT_FIELDS,
            Entity::Items => ITEM_FIELDS,
            Entity::Users => USER_FIELDS,
        }
    }

    /// Checks field names and options without looking at a file.
    pub fn validate(&self) -> Result<TimeFormat> {
        let fields = self.fields();
        for field in self.columns.keys() {
            if !fields.iter().any(|(f, _)| f == field) {
                let known: Vec<&str> = fields.iter().map(|(f, _)| *f).collect();
                return Err(Error::Mapping(format!(
                    "unknown field `{field}` for {:?}; fields are: {}",
                    self.entity,
                    known.join(", ")
                )));
            }
        }
        TimeFormat::from_name(&self.time_format).ok_or_else(|| {
            Error::Mapping(format!(
                "unknown time format {:?}: use auto, unix_s, unix_ms, rfc3339 or a strftime pattern",
                self.time_format
            ))
        })
    }

    /// Resolves each field to a column of `columns`, by mapping or by usual name.
    fn resolve(&self, source: &dyn RowSource) -> Result<Resolved> {
        let columns = source.columns();
        let mut resolved = Resolved::default();
        for (field, usual) in self.fields() {
            let column = match self.columns.get(*field) {
                Some(column) => Some(column.clone()),
                None => usual
                    .iter()
                    .find_map(|u| columns.iter().find(|c| c.eq_ignore_ascii_case(u)).cloned()),
            };
            if let Some(column) = column {
                resolved.slots.insert(*field, resolved.wanted.len());
                resolved.wanted.push(column);
            }
        }
        let required: &[&str] = match self.entity {
            Entity::Events => REQUIRED_EVENT,
            Entity::Items | Entity::Users => &["id"],
        };
        for field in required {
            if !resolved.slots.contains_key(field) {
                return Err(Error::MissingColumn {
                    file: source.path().to_path_buf(),
                    column: self
                        .columns
                        .get(*field)
                        .cloned()
                        .unwrap_or_else(|| (*field).to_string()),
                    available: columns.join(", "),
                });
            }
        }
        if self.entity == Entity::Events
            && self.kind.is_none()
            && !resolved.slots.contains_key("kind")
        {
            return Err(Error::MissingColumn {
                file: source.path().to_path_buf(),
                column: "kind (or give a fixed kind with --kind)".into(),
                available: columns.join(", "),
            });
        }
        if self.entity != Entity::Events {
            let attributes = match &self.attributes {
                Some(list) => list.clone(),
                None => columns
                    .iter()
                    .filter(|c| !resolved.wanted.contains(c))
                    .cloned()
                    .collect(),
            };
            for column in attributes {
                resolved
                    .attributes
                    .push((column.clone(), resolved.wanted.len()));
                resolved.wanted.push(column);
            }
        }
        Ok(resolved)
    }

    pub(crate) fn import(&self, source: &mut dyn RowSource, sink: &mut Sink<'_, '_>) -> Result<()> {
        let time_format = self.validate()?;
        for kind in &self.custom_kinds {
            sink.register_kind(kind)?;
        }
        let resolved = self.resolve(source)?;
        source.select(&resolved.wanted)?;
        let context = RowContext {
            mapping: self,
            resolved: &resolved,
            time_format: &time_format,
            file: sink.file().to_path_buf(),
        };
        if self.entity == Entity::Events {
            return import_events(&context, source, sink);
        }
        while let Some(row) = source.next_row() {
            sink.row_read();
            let Some(row) = sink.or_bad_row(row)? else {
                continue;
            };
            let line = row.line;
            if self.entity == Entity::Items {
                if let Some(item) = sink.or_bad_row(context.item(&row))? {
                    sink.item(line, item)?;
                }
            } else if let Some(user) = sink.or_bad_row(context.user(&row))? {
                sink.user(line, user)?;
            }
        }
        sink.require_rows()
    }
}

/// The writing half of [`import_events`]: rows in file order into the store. Each batch
/// goes back to the reading thread when written, to be freed there: its strings were
/// allocated there, and freeing them on this thread was a third of the import's time in the
/// allocator (glibc hands a chunk back to the arena it came from, under that arena's lock).
fn write_events(
    receive: Receiver<Vec<Parsed>>,
    spent: Sender<Vec<Parsed>>,
    sink: &mut Sink<'_, '_>,
    kind_column: &str,
) -> Result<()> {
    for batch in receive {
        for (line, parsed) in &batch {
            sink.row_read();
            let checked = match parsed {
                Ok(event) => sink
                    .check_kind(*line, kind_column, &event.kind)
                    .map(|()| event),
                Err(error) => Err(error.clone()),
            };
            if let Some(event) = sink.or_bad_row(checked)? {
                sink.event(*line, event)?;
            }
        }
        // The reader may have finished; then the batch is freed here.
        spent.send(batch).ok();
    }
    Ok(())
}

/// Rows parsed per batch handed from the reading thread to the writing one.
const PARSED_BATCH: usize = 4096;
/// Batches in flight between the two: enough to ride out a slow flush, little memory.
const BATCHES_IN_FLIGHT: usize = 4;

/// A row read and converted, or why it could not be; with its line.
type Parsed = (u64, Result<RawEvent, RowError>);

/// Events in two threads: one reads and converts the rows (CSV, JSON or Parquet decoding,
/// time and number parsing), the other stages and writes them. On a bulk import that halves
/// what the writing thread does per row; the rows still reach the store in file order, and
/// bad rows are counted (or, strict, fail the import) in that order too.
fn import_events(
    context: &RowContext<'_>,
    source: &mut dyn RowSource,
    sink: &mut Sink<'_, '_>,
) -> Result<()> {
    std::thread::scope(|scope| {
        let (send, receive) = std::sync::mpsc::sync_channel::<Vec<Parsed>>(BATCHES_IN_FLIGHT);
        let (spent, recycle) = std::sync::mpsc::channel::<Vec<Parsed>>();
        scope.spawn(move || {
            let next_batch = || match recycle.try_recv() {
                Ok(mut used) => {
                    used.clear();
                    used
                }
                Err(_) => Vec::with_capacity(PARSED_BATCH),
            };
            let mut batch = next_batch();
            while let Some(row) = source.next_row() {
                batch.push(match row {
                    Ok(row) => (row.line, context.event(&row)),
                    Err(error) => (error.line, Err(error)),
                });
                if batch.len() == PARSED_BATCH {
                    let full = std::mem::replace(&mut batch, next_batch());
                    if send.send(full).is_err() {
                        return; // the writer stopped (a strict import's bad row)
                    }
                }
            }
            if !batch.is_empty() {
                send.send(batch).ok();
            }
        });
        // The receiver is dropped when this returns, which stops the reader early.
        write_events(receive, spent, sink, &context.column("kind"))
    })?;
    sink.require_rows()
}

#[derive(Default)]
struct Resolved {
    wanted: Vec<String>,
    slots: BTreeMap<&'static str, usize>,
    attributes: Vec<(String, usize)>,
}

struct RowContext<'a> {
    mapping: &'a Mapping,
    resolved: &'a Resolved,
    time_format: &'a TimeFormat,
    /// The file read, for errors.
    file: PathBuf,
}

impl RowContext<'_> {
    fn text<'r>(&self, row: &'r Row, field: &str) -> Option<&'r str> {
        let slot = *self.resolved.slots.get(field)?;
        row.values[slot].as_deref()
    }

    fn column(&self, field: &str) -> String {
        self.resolved
            .slots
            .get(field)
            .map_or_else(|| field.to_string(), |&s| self.resolved.wanted[s].clone())
    }

    fn error(&self, line: u64, field: &str, reason: impl Into<String>) -> RowError {
        RowError::at(&self.file, line, Some(&self.column(field)), reason)
    }

    fn required<'r>(&self, row: &'r Row, field: &str) -> Result<&'r str, RowError> {
        self.text(row, field)
            .ok_or_else(|| self.error(row.line, field, "missing value"))
    }

    fn number(&self, row: &Row, field: &str) -> Result<Option<f64>, RowError> {
        match self.text(row, field) {
            None => Ok(None),
            Some(text) => text
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| {
                    self.error(
                        row.line,
                        field,
                        format!("expected a number, found {text:?}"),
                    )
                }),
        }
    }

    /// The row as an event; its kind is checked against the store by the caller.
    fn event(&self, row: &Row) -> Result<RawEvent, RowError> {
        let user = self.required(row, "user")?;
        let time = self.required(row, "timestamp")?;
        let timestamp_ms = self
            .time_format
            .parse_millis(time)
            .map_err(|reason| self.error(row.line, "timestamp", reason))?;
        let kind = match (self.text(row, "kind"), &self.mapping.kind) {
            (Some(kind), _) => kind,
            (None, Some(fixed)) => fixed.as_str(),
            (None, None) => self.required(row, "kind")?,
        };
        let payload = EventPayload {
            query: self.text(row, "query").map(str::to_string),
            quantity: self.number(row, "quantity")?.map(|q| q as f32),
            price: self.number(row, "price")?,
            value: self.number(row, "value")?.map(|v| v as f32),
            ..EventPayload::default()
        };
        Ok(RawEvent {
            user: user.to_string(),
            item: self.text(row, "item").map(str::to_string),
            kind: kind.to_string(),
            timestamp_ms,
            session: self.text(row, "session").map(str::to_string),
            payload,
        })
    }

    fn attributes(&self, row: &Row) -> BTreeMap<String, String> {
        self.resolved
            .attributes
            .iter()
            .filter_map(|(name, slot)| row.values[*slot].clone().map(|v| (name.clone(), v)))
            .collect()
    }

    fn item(&self, row: &Row) -> Result<Item, RowError> {
        let id = self.required(row, "id")?;
        let category = self
            .text(row, "category")
            .map(|path| {
                path.split(self.mapping.category_separator.as_str())
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        Ok(Item {
            external_id: id.to_string(),
            title: self.text(row, "title").unwrap_or_default().to_string(),
            description: self
                .text(row, "description")
                .unwrap_or_default()
                .to_string(),
            category,
            brand: self.text(row, "brand").map(str::to_string),
            price: self.number(row, "price")?,
            attributes: self.attributes(row),
        })
    }

    fn user(&self, row: &Row) -> Result<User, RowError> {
        let id = self.required(row, "id")?;
        Ok(User {
            external_id: id.to_string(),
            attributes: self.attributes(row),
        })
    }
}
