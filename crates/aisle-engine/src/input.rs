//! What clients send to be stored (events, items, users), the rules it must follow, and its
//! checks. The rules are the ones the published schemas state: the contract is derived from
//! these types, so a request the schema allows is one these checks accept.

use std::collections::BTreeMap;

use aisle_core::{EventKind, Item, RawEvent, User, parse_impression_label};
use serde::Deserialize;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, OneOfBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

use crate::error::{EngineError, Result};

/// Most events, items or users in one request.
pub const MAX_BATCH: usize = 10_000;
/// Most characters in an id (user, item, session, idempotency key).
pub const ID_MAX_CHARS: usize = 256;
/// An id may not start with a space or a control character (which also rules out an id of
/// spaces only, and the NUL prefix the store reserves for forgotten users).
pub const ID_PATTERN: &str = "^[^\\u0000-\\u0020]";
/// An idempotency key: 1 to [`ID_MAX_CHARS`] visible ASCII characters (it travels in a header).
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]+$";

/// Checks an idempotency key against [`IDEMPOTENCY_KEY_PATTERN`].
pub fn check_idempotency_key(key: &str) -> Result<()> {
    if key.is_empty()
        || key.len() > ID_MAX_CHARS
        || !key.bytes().all(|b| (b'!'..=b'~').contains(&b))
    {
        return Err(EngineError::bad_request(format!(
            "the Idempotency-Key must be 1 to {ID_MAX_CHARS} visible ASCII characters (no spaces)"
        )));
    }
    Ok(())
}

/// The latest time an event may carry in milliseconds: 2100-01-01 (the clock rule is
/// stricter: at most the allowed skew ahead of now).
pub const MAX_TIMESTAMP_MS: i64 = 4_102_444_800_000;
/// A pattern for date-time strings of the years 1000 to the year before `now_ms`'s: JSON
/// Schema cannot say "before now" of a string, and a date in an earlier year is in the past
/// whatever the time of day.
pub fn date_time_pattern(now_ms: i64) -> String {
    let year = chrono::DateTime::from_timestamp_millis(now_ms)
        .map_or(2026, |t| chrono::Datelike::year(&t));
    let last = (year - 1).clamp(1000, 9999);
    let (century, decade, unit) = (last / 100, (last / 10) % 10, last % 10);
    // Whole earlier centuries, whole earlier decades of the last century, then the years of
    // the last decade.
    let mut parts: Vec<String> = (10..century).map(|c| format!("{c}[0-9]{{2}}")).collect();
    parts.extend((0..decade).map(|d| format!("{century}{d}[0-9]")));
    parts.push(format!("{century}{decade}[0-{unit}]"));
    format!("^({})-", parts.join("|"))
}

/// An id in a list (the schema of each entry of a list of ids).
pub struct Id;

impl PartialSchema for Id {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .min_length(Some(1))
            .max_length(Some(ID_MAX_CHARS))
            .pattern(Some(ID_PATTERN))
            .into()
    }
}

impl ToSchema for Id {}

/// The largest quantity or value an event may carry (they are stored as 32-bit floats); the
/// schema states the same bound.
pub const MAX_AMOUNT: f64 = 3.4e38;

/// Checks an id against the rules of [`ID_PATTERN`] and [`ID_MAX_CHARS`].
pub fn check_id(what: &str, id: &str, at: &str) -> Result<()> {
    let Some(first) = id.chars().next() else {
        return Err(EngineError::bad_request(format!("{at}: {what} is empty")));
    };
    if first <= ' ' {
        return Err(EngineError::bad_request(format!(
            "{at}: {what} must not start with a space or a control character"
        )));
    }
    let chars = id.chars().count();
    if chars > ID_MAX_CHARS {
        return Err(EngineError::bad_request(format!(
            "{at}: {what} has {chars} characters; at most {ID_MAX_CHARS}"
        )));
    }
    Ok(())
}

/// An event time: milliseconds since the epoch, or an RFC 3339 date-time.
#[derive(Clone, Debug, Deserialize)]
#[serde(untagged)]
pub enum Timestamp {
    /// Milliseconds since the Unix epoch.
    Millis(i64),
    /// Milliseconds written with a fraction part (`946.0` is the integer 946 to JSON Schema;
    /// a fraction other than zero is refused).
    Float(f64),
    /// An RFC 3339 date-time, e.g. `2024-05-01T12:00:00Z`.
    Text(String),
}

impl PartialSchema for Timestamp {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0))
                    .maximum(Some(MAX_TIMESTAMP_MS))
                    .description(Some("milliseconds since the Unix epoch")),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
                    .pattern(Some(date_time_pattern(crate::now_ms())))
                    .description(Some("an RFC 3339 date-time of a year before this one")),
            )
            .description(Some(
                "When it happened; default: now. At most max_clock_skew_seconds ahead of the server's clock.",
            ))
            .into()
    }
}

impl ToSchema for Timestamp {}

/// An event as clients send it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EventIn {
    /// The shopper's id.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub user: String,
    /// search, view, click, add_to_cart, remove_from_cart, purchase, rating, or a custom
    /// kind the store knows. Every kind but search and custom ones needs an item.
    #[schema(example = "view")]
    pub kind: String,
    /// The product.
    #[serde(default)]
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "p7"
    )]
    pub item: Option<String>,
    /// When.
    #[serde(default)]
    pub timestamp: Option<Timestamp>,
    /// The shopper's session.
    #[serde(default)]
    #[schema(min_length = 1, max_length = 256, pattern = "^[^\\u0000-\\u0020]")]
    pub session: Option<String>,
    /// What was searched.
    #[serde(default)]
    pub query: Option<String>,
    /// How many (cart and purchase events).
    #[serde(default)]
    #[schema(minimum = -3.4e38, maximum = 3.4e38)]
    pub quantity: Option<f64>,
    /// Unit price paid.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub price: Option<f64>,
    /// A rating or another value the kind carries.
    #[serde(default)]
    #[schema(minimum = -3.4e38, maximum = 3.4e38)]
    pub value: Option<f64>,
    /// The served list this event answers: the `served.impression` of the list the shopper
    /// clicked, carted or bought from. It makes the event that list's reward.
    #[serde(default)]
    #[schema(pattern = "^[0-9a-f]{16}$", example = "0001234abcd00001")]
    pub impression: Option<String>,
}

/// One event or a list.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    /// A list of events.
    Many(Vec<EventIn>),
    /// A single event.
    One(Box<EventIn>),
}

/// What an event is checked against.
#[derive(Clone, Copy, Debug)]
pub struct EventRules<'a> {
    /// Kinds the store knows beyond the built-in ones.
    pub custom_kinds: &'a [String],
    /// The server's clock: the time of an event sent without one.
    pub now_ms: i64,
    /// The latest time an event may carry (now plus the allowed clock skew).
    pub latest_ms: i64,
    /// Only storefront kinds (the demo key).
    pub storefront_only: bool,
}

/// Whether events of `kind` must name an item.
pub fn needs_item(kind: EventKind) -> bool {
    matches!(
        kind,
        EventKind::View
            | EventKind::Click
            | EventKind::AddToCart
            | EventKind::RemoveFromCart
            | EventKind::Purchase
            | EventKind::Rating
    )
}

/// Turns a client event into a store event, or says what is wrong with it.
pub fn validate_event(e: EventIn, at: &str, rules: &EventRules<'_>) -> Result<RawEvent> {
    let EventRules {
        custom_kinds,
        now_ms,
        latest_ms,
        storefront_only,
    } = *rules;
    check_id("user", &e.user, at)?;
    let builtin = EventKind::parse_builtin(&e.kind);
    if builtin.is_none() && !custom_kinds.contains(&e.kind) {
        return Err(EngineError::bad_request(format!(
            "{at}: unknown kind {:?}; kinds are search, view, click, add_to_cart, remove_from_cart, purchase, rating{}",
            e.kind,
            if custom_kinds.is_empty() {
                String::new()
            } else {
                format!(", {}", custom_kinds.join(", "))
            }
        )));
    }
    // The storefront sends every built-in kind but ratings, never a custom one.
    if storefront_only && builtin.is_none_or(|k| k == EventKind::Rating) {
        return Err(EngineError::forbidden(format!(
            "{at}: the demo key may send only search, view, click, add_to_cart, remove_from_cart and purchase events, not {:?}",
            e.kind
        )));
    }
    if let Some(item) = &e.item {
        check_id("item", item, at)?;
    }
    if builtin.is_some_and(needs_item) && e.item.is_none() {
        return Err(EngineError::bad_request(format!(
            "{at}: a {} event needs an item",
            e.kind
        )));
    }
    let timestamp_ms = match &e.timestamp {
        None => now_ms,
        Some(Timestamp::Millis(n)) => Some(*n)
            .filter(|t| (0..=MAX_TIMESTAMP_MS).contains(t))
            .ok_or_else(|| {
                EngineError::bad_request(format!(
                    "{at}: timestamp {n} is not milliseconds between 1970 and 2100"
                ))
            })?,
        Some(Timestamp::Float(x)) => Some(*x)
            .filter(|x| x.fract() == 0.0 && (0.0..=MAX_TIMESTAMP_MS as f64).contains(x))
            .map(|x| x as i64)
            .ok_or_else(|| {
                EngineError::bad_request(format!(
                    "{at}: timestamp {x} is not whole milliseconds between 1970 and 2100"
                ))
            })?,
        Some(Timestamp::Text(s)) => chrono::DateTime::parse_from_rfc3339(s)
            .map(|t| t.timestamp_millis())
            .map_err(|err| {
                EngineError::bad_request(format!("{at}: timestamp {s:?} is not RFC 3339 ({err})"))
            })?,
    };
    if timestamp_ms > latest_ms {
        let ahead_s = (timestamp_ms - now_ms) / 1000;
        return Err(EngineError::bad_request(format!(
            "{at}: timestamp is {ahead_s} s ahead of the server's clock; events may be at most {} s in the future (max_clock_skew_seconds)",
            (latest_ms - now_ms) / 1000
        )));
    }
    for (name, v) in [("quantity", e.quantity), ("value", e.value)] {
        if v.is_some_and(|v| !(-MAX_AMOUNT..=MAX_AMOUNT).contains(&v)) {
            return Err(EngineError::bad_request(format!(
                "{at}: {name} must be between -{MAX_AMOUNT:e} and {MAX_AMOUNT:e}"
            )));
        }
    }
    if e.price.is_some_and(|p| p < 0.0) {
        return Err(EngineError::bad_request(format!(
            "{at}: price must be a number ≥ 0"
        )));
    }
    if let Some(s) = &e.session {
        check_id("session", s, at)?;
    }
    let impression = match &e.impression {
        None => None,
        Some(label) => Some(
            parse_impression_label(label)
                .filter(|_| label.bytes().all(|b| !b.is_ascii_uppercase()))
                .ok_or_else(|| {
                    EngineError::bad_request(format!(
                        "{at}: impression {label:?} is not an impression id (16 lower-case hex digits, as the list was served with)"
                    ))
                })?,
        ),
    };
    let mut raw = RawEvent::new(e.user, e.item, e.kind, timestamp_ms);
    raw.session = e.session;
    raw.payload.query = e.query;
    raw.payload.quantity = e.quantity.map(|q| q as f32);
    raw.payload.price = e.price;
    raw.payload.value = e.value.map(|v| v as f32);
    raw.payload.impression = impression;
    Ok(raw)
}

fn too_many(what: &str, n: usize) -> EngineError {
    EngineError::bad_request(format!(
        "{n} {what} in one request; send at most {MAX_BATCH}"
    ))
}

/// Parses JSON that must be an object, or a list of objects: serde would also read a
/// struct from a list of its fields (`[null, null]`), which the schema does not allow.
pub fn parse_objects<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T> {
    let value: serde_json::Value = serde_json::from_slice(body)
        .map_err(|e| EngineError::bad_request(format!("the body is not {what}: {e}")))?;
    objects_from_value(value, what)
}

/// [`parse_objects`] for JSON already parsed.
pub fn objects_from_value<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    what: &str,
) -> Result<T> {
    let bad =
        |detail: String| EngineError::bad_request(format!("the body is not {what}: {detail}"));
    let objects = match &value {
        serde_json::Value::Object(_) => true,
        serde_json::Value::Array(list) => list.iter().all(serde_json::Value::is_object),
        _ => false,
    };
    if !objects {
        return Err(bad("expected a JSON object, or a list of objects".into()));
    }
    serde_json::from_value(value).map_err(|e| bad(e.to_string()))
}

/// Parses an ingest body: one event or a non-empty list.
pub fn parse_events(body: &[u8], rules: &EventRules<'_>) -> Result<Vec<RawEvent>> {
    let parsed: OneOrMany = parse_objects(body, "an event or a list of events")?;
    let list = match parsed {
        OneOrMany::One(e) => vec![*e],
        OneOrMany::Many(list) => list,
    };
    if list.is_empty() {
        return Err(EngineError::bad_request("the list of events is empty"));
    }
    if list.len() > MAX_BATCH {
        return Err(too_many("events", list.len()));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, e)| validate_event(e, &format!("event {i}"), rules))
        .collect()
}

/// A category: a list of levels, or one string with levels separated by `>`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum CategoryIn {
    /// `["Dairy", "Yogurt"]`.
    Levels(Vec<String>),
    /// `"Dairy > Yogurt"`.
    Path(String),
}

/// An item as clients send it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemIn {
    /// The item's id.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "p7"
    )]
    pub id: String,
    /// Title.
    #[serde(default)]
    pub title: String,
    /// Description.
    #[serde(default)]
    pub description: String,
    /// Category path.
    #[serde(default)]
    pub category: Option<CategoryIn>,
    /// Brand.
    #[serde(default)]
    pub brand: Option<String>,
    /// Price.
    #[serde(default)]
    #[schema(minimum = 0)]
    pub price: Option<f64>,
    /// Other attributes.
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Parses an item list.
pub fn parse_items(body: &[u8]) -> Result<Vec<Item>> {
    let list: Vec<ItemIn> = parse_objects(body, "a list of items")?;
    if list.len() > MAX_BATCH {
        return Err(too_many("items", list.len()));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, it)| {
            let at = format!("item {i}");
            check_id("id", &it.id, &at)?;
            let category = match it.category {
                None => Vec::new(),
                Some(CategoryIn::Path(path)) => path
                    .split('>')
                    .map(|c| c.trim().to_string())
                    .filter(|c| !c.is_empty())
                    .collect(),
                Some(CategoryIn::Levels(levels)) => levels,
            };
            if it.price.is_some_and(|p| p < 0.0) {
                return Err(EngineError::bad_request(format!(
                    "{at}: price must be a number ≥ 0"
                )));
            }
            Ok(Item {
                external_id: it.id,
                title: it.title,
                description: it.description,
                category,
                brand: it.brand,
                price: it.price,
                attributes: it.attributes,
            })
        })
        .collect()
}

/// A user as clients send it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UserIn {
    /// The user's id.
    #[schema(
        min_length = 1,
        max_length = 256,
        pattern = "^[^\\u0000-\\u0020]",
        example = "u42"
    )]
    pub id: String,
    /// Attributes (segment, region, ...).
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

/// Checks a user list.
pub fn check_users(list: Vec<UserIn>) -> Result<Vec<User>> {
    if list.len() > MAX_BATCH {
        return Err(too_many("users", list.len()));
    }
    list.into_iter()
        .enumerate()
        .map(|(i, u)| {
            check_id("id", &u.id, &format!("user {i}"))?;
            Ok(User {
                external_id: u.id,
                attributes: u.attributes,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_times_of_earlier_years_only() {
        // 2026-12-01.
        let pattern = regex::Regex::new(&date_time_pattern(1_796_083_200_000)).expect("regex");
        for ok in ["1000-01-01", "1999-12-31", "2019-06-01", "2025-12-31"] {
            assert!(pattern.is_match(ok), "{ok}");
        }
        for bad in ["0999-01-01", "2026-01-01", "2030-01-01", "9999-01-01"] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
    }

    #[test]
    fn ids_follow_the_published_pattern() {
        for ok in ["a", "é", "x y", &"z".repeat(256)] {
            assert!(check_id("id", ok, "t").is_ok(), "{ok:?}");
        }
        for bad in ["", " a", "\u{0}a", "\ta", &"z".repeat(257)] {
            assert!(check_id("id", bad, "t").is_err(), "{bad:?}");
        }
        // Characters, not bytes: 256 two-byte characters are allowed.
        assert!(check_id("id", &"é".repeat(256), "t").is_ok());
    }
}
