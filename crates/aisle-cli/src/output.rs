//! Human-readable output: tables and numbers.

use aisle_features::DatasetStats;
use aisle_import::ImportReport;
use serde_json::json;

/// `1234567` → `1,234,567`.
pub fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms).map_or_else(
        || ms.to_string(),
        |t| t.format("%Y-%m-%d %H:%M").to_string(),
    )
}

/// Prints an import report for a person.
pub fn print_report(report: &ImportReport) {
    let w = &report.write;
    println!(
        "imported {} rows from {} file(s): {} events added, {} already stored; {} users and {} items created, {} records updated",
        thousands(report.rows_read - report.rows_skipped),
        report.files.len(),
        thousands(w.events_added as u64),
        thousands(w.events_duplicate as u64),
        thousands(w.users_created as u64),
        thousands(w.items_created as u64),
        thousands(w.records_updated as u64),
    );
    if report.rows_skipped > 0 {
        println!(
            "skipped {} bad rows (use --strict to reject the import instead); the first ones:",
            thousands(report.rows_skipped)
        );
        for error in &report.errors {
            println!("  {error}");
        }
    }
}

/// An import report as JSON.
pub fn report_json(report: &ImportReport) -> serde_json::Value {
    let w = &report.write;
    json!({
        "files": report.files,
        "rows_read": report.rows_read,
        "rows_skipped": report.rows_skipped,
        "errors": report.errors.iter().map(|e| json!({
            "file": e.file, "line": e.line, "field": e.field, "reason": e.reason,
        })).collect::<Vec<_>>(),
        "events_added": w.events_added,
        "events_duplicate": w.events_duplicate,
        "users_created": w.users_created,
        "items_created": w.items_created,
        "records_updated": w.records_updated,
    })
}

/// Prints a data set's statistics for a person.
pub fn print_stats(s: &DatasetStats) {
    let row = |name: &str, value: String| println!("  {name:<28} {value}");
    println!("dataset");
    row("users", thousands(s.users as u64));
    row("items", thousands(s.items as u64));
    row("events", thousands(s.events as u64));
    for k in &s.events_by_kind {
        row(&format!("  {}", k.kind), thousands(k.count as u64));
    }
    if let Some(span) = &s.time_span {
        row(
            "time span",
            format!(
                "{} .. {} ({:.1} days)",
                date(span.first_ms),
                date(span.last_ms),
                span.days
            ),
        );
    }
    println!("interactions");
    row("users with events", thousands(s.users_with_events as u64));
    row("items with events", thousands(s.items_with_events as u64));
    row("user-item pairs", thousands(s.interactions as u64));
    row("sparsity", format!("{:.4}%", s.sparsity * 100.0));
    println!("long tail");
    row(
        "top 1% items' share",
        format!("{:.1}%", s.long_tail.top_1pct_share * 100.0),
    );
    row(
        "top 20% items' share",
        format!("{:.1}%", s.long_tail.top_20pct_share * 100.0),
    );
    row(
        "items with <= 5 events",
        format!("{:.1}%", s.long_tail.items_with_at_most_5 * 100.0),
    );
    row("popularity Gini", format!("{:.3}", s.long_tail.gini));
    println!("sessions and users");
    row("sessions", thousands(s.sessions as u64));
    let dist = |d: &aisle_features::DistributionStats| {
        format!(
            "mean {:.1}, median {:.0}, p90 {:.0}, max {:.0}",
            d.mean, d.median, d.p90, d.max
        )
    };
    row("events per session", dist(&s.events_per_session));
    row("events per user", dist(&s.events_per_user));
}

#[cfg(test)]
mod tests {
    use super::thousands;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(49_688), "49,688");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }
}
