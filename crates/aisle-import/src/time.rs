//! Timestamp parsing for the generic importer.

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde::{Deserialize, Serialize};

/// How a timestamp column is written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeFormat {
    /// Guess per value: a number is Unix seconds (fractions allowed) when below 10^11, else
    /// milliseconds; text is RFC 3339, `YYYY-MM-DD HH:MM:SS` or `YYYY-MM-DD` (UTC).
    #[default]
    Auto,
    /// Unix seconds, fractions allowed.
    UnixSeconds,
    /// Unix milliseconds.
    UnixMillis,
    /// RFC 3339 / ISO 8601 with an offset.
    Rfc3339,
    /// A chrono `strftime` pattern, read as UTC (e.g. `%Y%m%d`).
    Pattern(String),
}

impl TimeFormat {
    /// Parses a name as given on the command line: `auto`, `unix_s`, `unix_ms`, `rfc3339`,
    /// or anything containing `%` as a pattern.
    pub fn from_name(name: &str) -> Option<TimeFormat> {
        Some(match name {
            "auto" => TimeFormat::Auto,
            "unix_s" | "unix_seconds" | "seconds" => TimeFormat::UnixSeconds,
            "unix_ms" | "unix_millis" | "millis" => TimeFormat::UnixMillis,
            "rfc3339" | "iso8601" => TimeFormat::Rfc3339,
            p if p.contains('%') => TimeFormat::Pattern(p.to_string()),
            _ => return None,
        })
    }

    /// Parses one value into Unix milliseconds, or says why not.
    pub fn parse_millis(&self, text: &str) -> Result<i64, String> {
        let text = text.trim();
        let parsed = match self {
            TimeFormat::Auto => parse_auto(text),
            TimeFormat::UnixSeconds => parse_number(text).map(|s| (s * 1000.0).round() as i64),
            TimeFormat::UnixMillis => parse_number(text).map(|ms| ms.round() as i64),
            TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(text)
                .ok()
                .map(|t| t.timestamp_millis()),
            TimeFormat::Pattern(pattern) => parse_pattern(text, pattern),
        };
        parsed.ok_or_else(|| format!("cannot read {text:?} as a timestamp ({})", self.describe()))
    }

    fn describe(&self) -> String {
        match self {
            TimeFormat::Auto => {
                "expected Unix seconds or milliseconds, RFC 3339, or YYYY-MM-DD[ HH:MM:SS]".into()
            }
            TimeFormat::UnixSeconds => "expected Unix seconds".into(),
            TimeFormat::UnixMillis => "expected Unix milliseconds".into(),
            TimeFormat::Rfc3339 => "expected RFC 3339".into(),
            TimeFormat::Pattern(p) => format!("expected the pattern {p}"),
        }
    }
}

fn parse_number(text: &str) -> Option<f64> {
    text.parse::<f64>().ok().filter(|v| v.is_finite())
}

fn parse_auto(text: &str) -> Option<i64> {
    if let Some(n) = parse_number(text) {
        return Some(if n.abs() < 1e11 {
            (n * 1000.0).round() as i64
        } else {
            n.round() as i64
        });
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.timestamp_millis());
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d"]
        .iter()
        .find_map(|p| parse_pattern(text, p))
}

fn parse_pattern(text: &str, pattern: &str) -> Option<i64> {
    if let Ok(t) = NaiveDateTime::parse_from_str(text, pattern) {
        return Some(t.and_utc().timestamp_millis());
    }
    NaiveDate::parse_from_str(text, pattern)
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc().timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_to_the_same_instant() {
        let expected = 1_396_860_669_277;
        assert_eq!(
            TimeFormat::Auto.parse_millis("1396860669.277"),
            Ok(expected)
        );
        assert_eq!(TimeFormat::Auto.parse_millis("1396860669277"), Ok(expected));
        assert_eq!(
            TimeFormat::Auto.parse_millis("2014-04-07T08:51:09.277Z"),
            Ok(expected)
        );
        assert_eq!(
            TimeFormat::Pattern("%Y%m%d".into()).parse_millis("19970101"),
            Ok(852_076_800_000)
        );
        assert_eq!(
            TimeFormat::Auto.parse_millis("1997-01-01"),
            Ok(852_076_800_000)
        );
    }

    #[test]
    fn bad_values_say_what_was_expected() {
        let err = TimeFormat::UnixSeconds
            .parse_millis("yesterday")
            .unwrap_err();
        assert!(
            err.contains("\"yesterday\"") && err.contains("Unix seconds"),
            "{err}"
        );
    }
}
