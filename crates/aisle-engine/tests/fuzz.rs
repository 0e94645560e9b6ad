//! The JSON request parsers, fuzzed: whatever the bytes, they answer Ok or a 4xx, never panic.

use aisle_engine::{EventRules, parse_events, parse_items};
use proptest::prelude::*;

/// JSON-ish text built from the pieces a request is made of, so that the fuzzer reaches the
/// validation code rather than stopping at the first byte.
fn rules(custom_kinds: &[String], now_ms: i64) -> EventRules<'_> {
    EventRules {
        custom_kinds,
        now_ms,
        latest_ms: i64::MAX,
        storefront_only: false,
    }
}

fn jsonish() -> impl Strategy<Value = String> {
    let atom = prop_oneof![
        Just("\"user\"".to_string()),
        Just("\"kind\"".to_string()),
        Just("\"item\"".to_string()),
        Just("\"timestamp\"".to_string()),
        Just("\"session\"".to_string()),
        Just("\"price\"".to_string()),
        Just("\"quantity\"".to_string()),
        Just("\"id\"".to_string()),
        Just("\"category\"".to_string()),
        Just("\"view\"".to_string()),
        Just("\"purchase\"".to_string()),
        Just("\"2024-01-01T00:00:00Z\"".to_string()),
        Just("\"\\u0000x\"".to_string()),
        Just("1e400".to_string()),
        Just("-1".to_string()),
        Just("9223372036854775807".to_string()),
        Just("null".to_string()),
        Just("true".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(":".to_string()),
        Just(",".to_string()),
        "\"[a-z0-9 >]{0,12}\"".prop_map(|s| s),
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|n| n.to_string()),
    ];
    prop::collection::vec(atom, 0..40).prop_map(|parts| parts.concat())
}

fn well_formed_event() -> impl Strategy<Value = String> {
    (
        "[a-z0-9]{0,6}",
        prop_oneof![Just("view"), Just("purchase"), Just("search"), Just("x")],
        prop::option::of("[a-z0-9]{0,4}"),
        prop::option::of(any::<i64>()),
        prop::option::of(any::<f64>()),
    )
        .prop_map(|(user, kind, item, ts, price)| {
            let mut v = serde_json::json!({"user": user, "kind": kind});
            if let Some(i) = item {
                v["item"] = i.into();
            }
            if let Some(t) = ts {
                v["timestamp"] = t.into();
            }
            if let Some(p) = price {
                v["price"] =
                    serde_json::Number::from_f64(p).map_or(serde_json::Value::Null, Into::into);
            }
            v.to_string()
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn events_parser_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        if let Err(e) = parse_events(&bytes, &rules(&[], 0)) {
            prop_assert!(e.is_client_error());
        }
    }

    #[test]
    fn events_parser_on_jsonish_text(text in jsonish()) {
        if let Err(e) = parse_events(text.as_bytes(), &rules(&["wishlist".to_string()], 1)) {
            prop_assert!(e.is_client_error());
            prop_assert!(!e.message.is_empty());
        }
    }

    #[test]
    fn events_parser_on_event_shaped_json(event in well_formed_event()) {
        match parse_events(event.as_bytes(), &rules(&[], 5)) {
            Ok(list) => {
                prop_assert_eq!(list.len(), 1);
                prop_assert!(!list[0].user.is_empty());
            }
            Err(e) => prop_assert!(e.is_client_error()),
        }
    }

    #[test]
    fn items_parser_never_panics(text in jsonish()) {
        if let Err(e) = parse_items(text.as_bytes()) {
            prop_assert!(e.is_client_error());
        }
    }
}
