//! YOOCHOOSE (RecSys Challenge 2015) clicks as prepared by session-rec: tab-separated
//! `SessionId ItemId Time`, Time in Unix seconds with milliseconds.
//!
//! The data has no user ids: every session is its own anonymous user (`session-<id>`), and
//! the session id is kept. Every row is a `click`.

use std::path::Path;

use aisle_core::RawEvent;

use super::{for_each_line, parse_field};
use crate::Result;
use crate::sink::Sink;

pub(crate) fn import(path: &Path, sink: &mut Sink<'_, '_>) -> Result<()> {
    for_each_line(path, sink, |sink, line, text| {
        if line == 1 && text.starts_with("SessionId") {
            return Ok(());
        }
        sink.row_read();
        let mut fields = text.split('\t');
        let event = (|| {
            let session: &str = fields
                .next()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| sink.row_error(line, Some("SessionId"), "missing value"))?;
            let item: u64 = parse_field(sink, line, "ItemId", fields.next())?;
            let seconds: f64 = parse_field(sink, line, "Time", fields.next())?;
            let mut event = RawEvent::new(
                format!("session-{session}"),
                Some(item.to_string()),
                "click",
                (seconds * 1000.0).round() as i64,
            );
            event.session = Some(session.to_string());
            Ok(event)
        })();
        if let Some(event) = sink.or_bad_row(event)? {
            sink.event(line, &event)?;
        }
        Ok(())
    })
}
