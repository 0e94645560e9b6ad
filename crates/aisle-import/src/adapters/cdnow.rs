//! CDNOW purchase history, as distributed with the `lifetimes` package: whitespace-separated
//! `customer_id date number_of_cds dollar_value` (the master file, with a header) or
//! `customer_id sample_id date number_of_cds dollar_value` (the 1/10 sample, no header).
//!
//! Every row is a `purchase` without an item (CDNOW gives none), at midnight UTC of its date,
//! with the number of CDs as quantity and the unit price `dollar_value / number_of_cds` (the
//! dollar value itself when no CD count is given). Customers keep their master-file ids, so
//! the sample and the master name the same people alike. Identical rows are kept: the file
//! has a few same-day repeat purchases of the same value.
//!
//! A directory stands for its master file, or its sample when it has no master (the sample is
//! a subset of the master, so the two are never read together).

use std::path::Path;

use aisle_core::{EventPayload, RawEvent};

use super::{for_each_line, main_file, parse_field};
use crate::sink::Sink;
use crate::{Result, TimeFormat};

/// The files a CDNOW directory may hold, the preferred first.
const FILES: &[&str] = &[
    "CDNOW_master.txt",
    "CDNOW_master.txt.gz",
    "CDNOW_sample.txt",
    "CDNOW_sample.txt.gz",
];

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    let path = &main_file(path, "CDNOW", FILES)?;
    sink.start_file(path);
    let date_format = TimeFormat::Pattern("%Y%m%d".into());
    for_each_line(path, sink, |sink, line, text| {
        let fields: Vec<&str> = text.split_ascii_whitespace().collect();
        if line == 1 && fields.first().is_some_and(|f| f.parse::<u64>().is_err()) {
            return Ok(()); // the master file's header
        }
        sink.row_read();
        let event = (|| {
            let (customer, rest) = match fields.len() {
                4 => (fields[0], &fields[1..]),
                5 => (fields[0], &fields[2..]),
                n => {
                    return Err(sink.row_error(
                        line,
                        None,
                        format!("expected 4 fields (master) or 5 (sample), found {n}"),
                    ));
                }
            };
            let _: u64 = parse_field(sink, line, "customer_id", Some(customer))?;
            let timestamp_ms = date_format
                .parse_millis(rest[0])
                .map_err(|reason| sink.row_error(line, Some("date"), reason))?;
            let cds: f32 = parse_field(sink, line, "number_of_cds", Some(rest[1]))?;
            let dollars: f64 = parse_field(sink, line, "dollar_value", Some(rest[2]))?;
            let mut event = RawEvent::new(customer, None, "purchase", timestamp_ms);
            event.payload = EventPayload {
                quantity: Some(cds),
                price: Some(if cds > 0.0 {
                    dollars / f64::from(cds)
                } else {
                    dollars
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
