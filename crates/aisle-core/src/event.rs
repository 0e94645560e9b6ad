//! Behaviour events.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::ids::{ItemId, SessionId, UserId};

/// What a user did.
///
/// The built-in kinds cover a shop's funnel; anything else is a custom kind, registered by
/// name in the store (which assigns the `u16` code) before events of that kind are accepted.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum EventKind {
    /// A search; the query text is in [`EventPayload::query`].
    Search,
    /// A product page view.
    View,
    /// A click on a product (in a list, a recommendation, a search result).
    Click,
    /// The product was put in the cart.
    AddToCart,
    /// The product was taken out of the cart.
    RemoveFromCart,
    /// The product was bought.
    Purchase,
    /// An explicit rating; the value is in [`EventPayload::value`].
    Rating,
    /// A shop-defined kind, by the code the store registered for its name.
    Custom(u16),
}

impl EventKind {
    /// Every built-in kind, in funnel order.
    pub const BUILTIN: [EventKind; 7] = [
        EventKind::Search,
        EventKind::View,
        EventKind::Click,
        EventKind::AddToCart,
        EventKind::RemoveFromCart,
        EventKind::Purchase,
        EventKind::Rating,
    ];

    /// The canonical name of a built-in kind; `None` for custom kinds (the store knows their names).
    pub fn builtin_name(self) -> Option<&'static str> {
        Some(match self {
            EventKind::Search => "search",
            EventKind::View => "view",
            EventKind::Click => "click",
            EventKind::AddToCart => "add_to_cart",
            EventKind::RemoveFromCart => "remove_from_cart",
            EventKind::Purchase => "purchase",
            EventKind::Rating => "rating",
            EventKind::Custom(_) => return None,
        })
    }

    /// Parses a built-in kind name (case-insensitive, with a few common aliases).
    pub fn parse_builtin(name: &str) -> Option<EventKind> {
        let lower = name.trim().to_ascii_lowercase();
        Some(match lower.as_str() {
            "search" | "query" => EventKind::Search,
            "view" | "pageview" | "page_view" | "detail" => EventKind::View,
            "click" => EventKind::Click,
            "add_to_cart" | "addtocart" | "cart" | "add-to-cart" => EventKind::AddToCart,
            "remove_from_cart" | "removefromcart" | "remove-from-cart" => EventKind::RemoveFromCart,
            "purchase" | "buy" | "transaction" | "order" => EventKind::Purchase,
            "rating" | "rate" => EventKind::Rating,
            _ => return None,
        })
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.builtin_name() {
            Some(name) => f.write_str(name),
            None => match self {
                EventKind::Custom(code) => write!(f, "custom#{code}"),
                _ => unreachable!("builtin_name is Some for every built-in kind"),
            },
        }
    }
}

/// A kind name that is not built in and was not registered as a custom kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown event kind {0:?} (built-in kinds: search, view, click, add_to_cart, remove_from_cart, purchase, rating; declare custom kinds before importing them)"
)]
pub struct ParseKindError(pub String);

impl FromStr for EventKind {
    type Err = ParseKindError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::parse_builtin(s).ok_or_else(|| ParseKindError(s.to_string()))
    }
}

/// Per-kind details of an event. Every field is optional; which ones a kind uses:
/// `query` and `results` (the items shown) for search, `quantity` and `price` (unit price)
/// for cart and purchase events, `value` for ratings.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EventPayload {
    /// Search query text.
    pub query: Option<String>,
    /// Number of units.
    pub quantity: Option<f32>,
    /// Unit price paid or shown.
    pub price: Option<f64>,
    /// Rating value or another numeric value of a custom kind.
    pub value: Option<f32>,
    /// External ids of the items a search showed, in order.
    #[serde(default)]
    pub results: Vec<String>,
    /// The served list this event responds to (its impression id), when the client says.
    #[serde(default)]
    pub impression: Option<u64>,
}

impl EventPayload {
    /// True when no field is set.
    pub fn is_empty(&self) -> bool {
        self.query.is_none()
            && self.quantity.is_none()
            && self.price.is_none()
            && self.value.is_none()
            && self.results.is_empty()
            && self.impression.is_none()
    }
}

/// An event as stored: dense ids, millisecond Unix timestamp.
#[derive(Clone, Debug, PartialEq)]
pub struct Event {
    /// Who.
    pub user: UserId,
    /// Which product, where the kind has one (a search has none).
    pub item: Option<ItemId>,
    /// What they did.
    pub kind: EventKind,
    /// When, in milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// The session the source data put it in, if it had session ids.
    pub session: Option<SessionId>,
    /// Per-kind details.
    pub payload: EventPayload,
}

/// An event as it arrives from outside: external ids and a kind name.
#[derive(Clone, Debug, PartialEq)]
pub struct RawEvent {
    /// External user id.
    pub user: String,
    /// External item id, if any.
    pub item: Option<String>,
    /// Kind name: a built-in name or a registered custom name.
    pub kind: String,
    /// Milliseconds since the Unix epoch (UTC).
    pub timestamp_ms: i64,
    /// External session id, if the source has one.
    pub session: Option<String>,
    /// Per-kind details.
    pub payload: EventPayload,
}

impl RawEvent {
    /// A minimal event without session or payload.
    pub fn new(
        user: impl Into<String>,
        item: Option<String>,
        kind: impl Into<String>,
        timestamp_ms: i64,
    ) -> Self {
        Self {
            user: user.into(),
            item,
            kind: kind.into(),
            timestamp_ms,
            session: None,
            payload: EventPayload::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_names_round_trip() {
        for kind in EventKind::BUILTIN {
            let name = kind.builtin_name().expect("built-in");
            assert_eq!(name.parse::<EventKind>(), Ok(kind));
            assert_eq!(kind.to_string(), name);
        }
    }

    #[test]
    fn unknown_kind_is_an_error_naming_it() {
        let err = "wishlist".parse::<EventKind>().unwrap_err();
        assert!(err.to_string().contains("\"wishlist\""));
    }
}
