//! Instacart Online Grocery Shopping 2017: order lines (`orders.csv` joined to
//! `order_products__*.csv`) and the catalogue (`products.csv`, `aisles.csv`,
//! `departments.csv`) from the same directory.
//!
//! Every order line becomes an `add_to_cart` and a `purchase` of that product; the order is
//! the session (`order-<id>`). Instacart gives no dates, only each order's weekday, hour and
//! the days since the user's previous order, so time is rebuilt relative to a fixed origin:
//! a user's first order falls in the week starting Sunday 2017-01-01 on its `order_dow`
//! (0 = Sunday), each later order `days_since_prior_order` days after the previous one, at
//! `order_hour_of_day`. Within an order, cart adds are one second apart in
//! `add_to_cart_order`, and the checkout (the purchases) is 20 minutes after the hour starts.
//! Items get the category path `[department, aisle]` and keep `aisle_id` and `department_id`.

use std::collections::HashMap;
use std::path::Path;

use aisle_core::{EventPayload, Item, RawEvent};

use super::{main_file, mapping_error, parse_field, sibling};
use crate::rows::open_text;
use crate::sink::Sink;
use crate::{Error, Result, RowError};

/// 2017-01-01T00:00:00Z, a Sunday.
const ORIGIN_MS: i64 = 1_483_228_800_000;
const HOUR_MS: i64 = 3_600_000;
const CHECKOUT_AFTER_MS: i64 = 20 * 60_000;

const ORDER_FILES: &[&str] = &[
    "orders_products_sample.csv.gz",
    "orders_products_sample.csv",
    "order_lines.csv.gz",
    "order_lines.csv",
];

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let orders_file = main_file(path, "Instacart order-lines", ORDER_FILES)?;
    import_catalogue(&orders_file, sink)?;
    import_orders(&orders_file, sink)
}

fn lookup_table(path: &Path) -> Result<HashMap<String, String>> {
    let mut reader = csv::Reader::from_reader(open_text(path)?);
    let mut table = HashMap::new();
    for record in reader.records() {
        let record = record.map_err(|e| mapping_error(format!("{}: {e}", path.display())))?;
        if let (Some(id), Some(name)) = (record.get(0), record.get(1)) {
            table.insert(id.to_string(), name.to_string());
        }
    }
    Ok(table)
}

fn import_catalogue(orders_file: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let Some(products) = sibling(orders_file, &["products.csv", "products.csv.gz"]) else {
        return Ok(());
    };
    let aisles = sibling(orders_file, &["aisles.csv"])
        .map(|p| lookup_table(&p))
        .transpose()?
        .unwrap_or_default();
    let departments = sibling(orders_file, &["departments.csv"])
        .map(|p| lookup_table(&p))
        .transpose()?
        .unwrap_or_default();
    let mut reader = csv::Reader::from_reader(open_text(&products)?);
    let previous = sink.file().to_path_buf();
    sink.start_file(&products);
    for record in reader.records() {
        let Some((line, record)) = read_record(sink, record)? else {
            continue;
        };
        let (Some(id), Some(name), Some(aisle), Some(department)) =
            (record.get(0), record.get(1), record.get(2), record.get(3))
        else {
            let error = sink.row_error(
                line,
                None,
                "expected product_id,product_name,aisle_id,department_id",
            );
            sink.bad_row(error)?;
            continue;
        };
        let mut item = Item::new(id);
        item.title = name.to_string();
        item.category = [departments.get(department), aisles.get(aisle)]
            .into_iter()
            .flatten()
            .cloned()
            .collect();
        item.attributes.insert("aisle_id".into(), aisle.to_string());
        item.attributes
            .insert("department_id".into(), department.to_string());
        sink.item(line, item)?;
    }
    sink.start_file(&previous);
    Ok(())
}

/// One order line as read, before times are known.
struct OrderLine {
    line: u64,
    order: String,
    user: String,
    order_number: u32,
    product: String,
    cart_position: u32,
}

/// Per order: weekday, hour, days since the user's previous order.
struct OrderInfo {
    line: u64,
    dow: i64,
    hour: i64,
    days_since_prior: Option<i64>,
}

fn column(header: &csv::StringRecord, name: &str, file: &Path) -> Result<usize> {
    header
        .iter()
        .position(|h| h.trim() == name)
        .ok_or_else(|| Error::MissingColumn {
            file: file.to_path_buf(),
            column: name.to_string(),
            available: header.iter().collect::<Vec<_>>().join(", "),
        })
}

fn import_orders(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    sink.start_file(path);
    let mut reader = csv::Reader::from_reader(open_text(path)?);
    let header = reader
        .headers()
        .map_err(|e| mapping_error(format!("{}: {e}", path.display())))?
        .clone();
    if header.is_empty() {
        return Err(Error::Empty {
            file: path.to_path_buf(),
        });
    }
    let names = [
        "order_id",
        "user_id",
        "order_number",
        "order_dow",
        "order_hour_of_day",
        "days_since_prior_order",
        "product_id",
        "add_to_cart_order",
    ];
    let mut idx = [0usize; 8];
    for (slot, name) in idx.iter_mut().zip(names) {
        *slot = column(&header, name, path)?;
    }
    let mut lines = Vec::new();
    let mut orders: HashMap<(String, u32), OrderInfo> = HashMap::new();
    for record in reader.records() {
        let Some((line, record)) = read_record(sink, record)? else {
            continue;
        };
        let parsed = (|| -> Result<(OrderLine, OrderInfo), RowError> {
            let get = |i: usize| record.get(idx[i]);
            let order: u64 = parse_field(sink, line, names[0], get(0))?;
            let user: u64 = parse_field(sink, line, names[1], get(1))?;
            let order_number: u32 = parse_field(sink, line, names[2], get(2))?;
            let dow: i64 = parse_field(sink, line, names[3], get(3))?;
            let hour: i64 = parse_field(sink, line, names[4], get(4))?;
            let days: Option<f64> = match get(5).map(str::trim).filter(|s| !s.is_empty()) {
                None => None,
                some => Some(parse_field(sink, line, names[5], some)?),
            };
            let product: u64 = parse_field(sink, line, names[6], get(6))?;
            let position: f64 = parse_field(sink, line, names[7], get(7))?;
            if !(0..7).contains(&dow) {
                return Err(sink.row_error(
                    line,
                    Some(names[3]),
                    format!("weekday {dow} is not in 0..=6"),
                ));
            }
            if !(0..24).contains(&hour) {
                return Err(sink.row_error(
                    line,
                    Some(names[4]),
                    format!("hour {hour} is not in 0..=23"),
                ));
            }
            Ok((
                OrderLine {
                    line,
                    order: order.to_string(),
                    user: user.to_string(),
                    order_number,
                    product: product.to_string(),
                    cart_position: position as u32,
                },
                OrderInfo {
                    line,
                    dow,
                    hour,
                    days_since_prior: days.map(|d| d as i64),
                },
            ))
        })();
        if let Some((order_line, info)) = sink.or_bad_row(parsed)? {
            orders
                .entry((order_line.user.clone(), order_line.order_number))
                .or_insert(info);
            lines.push(order_line);
        }
    }
    let order_times = order_times(&orders, sink)?;
    for order_line in &lines {
        let Some(&start) = order_times.get(&(order_line.user.clone(), order_line.order_number))
        else {
            continue; // the order's timing was reported as a bad row already
        };
        let session = Some(format!("order-{}", order_line.order));
        let payload = EventPayload {
            quantity: Some(1.0),
            ..EventPayload::default()
        };
        let mut cart = RawEvent::new(
            order_line.user.clone(),
            Some(order_line.product.clone()),
            "add_to_cart",
            start + i64::from(order_line.cart_position) * 1000,
        );
        cart.session = session.clone();
        cart.payload = payload.clone();
        sink.event(order_line.line, &cart)?;
        let mut purchase = RawEvent::new(
            order_line.user.clone(),
            Some(order_line.product.clone()),
            "purchase",
            start + CHECKOUT_AFTER_MS,
        );
        purchase.session = session;
        purchase.payload = payload;
        sink.event(order_line.line, &purchase)?;
    }
    Ok(())
}

/// Rebuilds each order's start time from weekdays and day gaps (see the module docs).
fn order_times(
    orders: &HashMap<(String, u32), OrderInfo>,
    sink: &mut Sink<'_, '_>,
) -> Result<HashMap<(String, u32), i64>> {
    let mut by_user: HashMap<&str, Vec<u32>> = HashMap::new();
    for (user, number) in orders.keys() {
        by_user.entry(user.as_str()).or_default().push(*number);
    }
    let mut users: Vec<_> = by_user.into_iter().collect();
    users.sort();
    let mut times = HashMap::new();
    for (user, mut numbers) in users {
        numbers.sort_unstable();
        let mut day: Option<i64> = None;
        for number in numbers {
            let info = &orders[&(user.to_string(), number)];
            let this_day = match (day, info.days_since_prior) {
                (None, _) => info.dow,
                (Some(previous), Some(gap)) => previous + gap,
                (Some(_), None) => {
                    let error = sink.row_error(
                        info.line,
                        Some("days_since_prior_order"),
                        format!("missing on order {number} of user {user}, which is not the user's first order"),
                    );
                    sink.bad_row(error)?;
                    break;
                }
            };
            day = Some(this_day);
            times.insert(
                (user.to_string(), number),
                ORIGIN_MS + (this_day * 24 + info.hour) * HOUR_MS,
            );
        }
    }
    Ok(times)
}

/// Counts a CSV record as read and returns it with its line, or records it as a bad row.
fn read_record(
    sink: &mut Sink<'_, '_>,
    record: csv::Result<csv::StringRecord>,
) -> Result<Option<(u64, csv::StringRecord)>> {
    sink.row_read();
    match record {
        Ok(record) => Ok(Some((record.position().map_or(0, |p| p.line()), record))),
        Err(e) => {
            let line = e.position().map_or(0, |p| p.line());
            let error = sink.row_error(line, None, e.kind_text());
            sink.bad_row(error).map(|()| None)
        }
    }
}

trait KindText {
    fn kind_text(&self) -> String;
}

impl KindText for csv::Error {
    fn kind_text(&self) -> String {
        match self.kind() {
            csv::ErrorKind::UnequalLengths {
                expected_len, len, ..
            } => {
                format!("expected {expected_len} fields, found {len} (truncated or malformed row)")
            }
            csv::ErrorKind::Utf8 { .. } => "not valid UTF-8".to_string(),
            other => format!("{other:?}"),
        }
    }
}
