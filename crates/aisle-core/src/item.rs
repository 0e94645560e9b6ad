//! Catalogue items and users.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A product in the catalogue.
///
/// Missing values: text fields are empty strings, `category` is an empty path, `brand` and
/// `price` are `None`. Nothing is guessed.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// The shop's own id for the product.
    pub external_id: String,
    /// Product title.
    pub title: String,
    /// Free-text description.
    pub description: String,
    /// Category path from the root, e.g. `["produce", "fresh fruits"]`.
    pub category: Vec<String>,
    /// Brand name, if known.
    pub brand: Option<String>,
    /// Current unit price, if known.
    pub price: Option<f64>,
    /// Free-form attributes (colour, size, attribute ids of a dataset, ...).
    pub attributes: BTreeMap<String, String>,
}

impl Item {
    /// An item with only its external id set.
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            ..Self::default()
        }
    }
}

/// A shopper.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct User {
    /// The shop's own id for the user.
    pub external_id: String,
    /// Free-form attributes (age band, region, ...).
    pub attributes: BTreeMap<String, String>,
}

impl User {
    /// A user with only its external id set.
    pub fn new(external_id: impl Into<String>) -> Self {
        Self {
            external_id: external_id.into(),
            attributes: BTreeMap::new(),
        }
    }
}
