//! Filters on category, brand and price, parsed from expressions such as
//! `category=produce/fresh fruits`, `brand=Chobani|Fage`, `price<5`, `price=2..10`.

use aisle_core::Item;
use serde::{Deserialize, Serialize};

use crate::{Error, Result};

/// An inclusive price range; a missing bound is open.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PriceRange {
    /// Lowest price accepted.
    pub min: Option<f64>,
    /// Highest price accepted.
    pub max: Option<f64>,
    /// Whether `min` itself is excluded (`price>2`).
    pub min_exclusive: bool,
    /// Whether `max` itself is excluded (`price<2`).
    pub max_exclusive: bool,
}

impl PriceRange {
    fn is_open(&self) -> bool {
        self.min.is_none() && self.max.is_none()
    }

    fn accepts(&self, price: Option<f64>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(p) = price else { return false };
        let above = self
            .min
            .is_none_or(|m| if self.min_exclusive { p > m } else { p >= m });
        let below = self
            .max
            .is_none_or(|m| if self.max_exclusive { p < m } else { p <= m });
        above && below
    }
}

/// What a result must satisfy. Every part given must hold (AND); alternatives inside a part
/// are ORed (`brand=A|B`).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Filter {
    /// Category paths (lowercase); an item matches when its path starts with one of them.
    pub categories: Vec<Vec<String>>,
    /// Brands (lowercase); an item matches when its brand is one of them.
    pub brands: Vec<String>,
    /// Price range.
    pub price: PriceRange,
}

fn split_path(path: &str) -> Vec<String> {
    path.split(['/', '>'])
        .map(|level| level.trim().to_lowercase())
        .filter(|level| !level.is_empty())
        .collect()
}

impl Filter {
    /// True when the filter accepts everything.
    pub fn is_empty(&self) -> bool {
        self.categories.is_empty() && self.brands.is_empty() && self.price.is_open()
    }

    /// Adds one expression: `category=A/B` (or `A > B`), `brand=X|Y`, `price<N`, `price<=N`,
    /// `price>N`, `price>=N`, `price=N..M`.
    pub fn add(&mut self, expression: &str) -> Result<()> {
        let bad = |message: &str| Error::InvalidFilter {
            expression: expression.to_string(),
            message: message.to_string(),
        };
        let expr = expression.trim();
        let (field, op, value) = ["<=", ">=", "<", ">", "="]
            .iter()
            .find_map(|op| {
                expr.find(op)
                    .map(|at| (expr[..at].trim(), *op, expr[at + op.len()..].trim()))
            })
            .ok_or_else(|| {
                bad("expected FIELD=VALUE or price<N, price>=N, price=N..M (fields: category, brand, price)")
            })?;
        if value.is_empty() {
            return Err(bad("the value is empty"));
        }
        let number = |s: &str| -> Result<f64> {
            s.trim()
                .parse::<f64>()
                .ok()
                .filter(|x| x.is_finite())
                .ok_or_else(|| bad(&format!("{s:?} is not a number")))
        };
        match (field.to_lowercase().as_str(), op) {
            ("category", "=") => {
                for path in value.split('|') {
                    let levels = split_path(path);
                    if levels.is_empty() {
                        return Err(bad("the category path is empty"));
                    }
                    self.categories.push(levels);
                }
            }
            ("brand", "=") => self
                .brands
                .extend(value.split('|').map(|b| b.trim().to_lowercase())),
            ("price", "=") => {
                let (lo, hi) = value
                    .split_once("..")
                    .ok_or_else(|| bad("write a price range as price=MIN..MAX"))?;
                if !lo.trim().is_empty() {
                    self.price.min = Some(number(lo)?);
                }
                if !hi.trim().is_empty() {
                    self.price.max = Some(number(hi)?);
                }
            }
            ("price", "<" | "<=") => {
                self.price.max = Some(number(value)?);
                self.price.max_exclusive = op == "<";
            }
            ("price", ">" | ">=") => {
                self.price.min = Some(number(value)?);
                self.price.min_exclusive = op == ">";
            }
            ("category" | "brand", _) => return Err(bad("category and brand take `=`")),
            _ => return Err(bad("unknown field; filter on category, brand or price")),
        }
        // A range whose lowest price is above its highest is well formed and matches nothing
        // (as in other search engines), so that every filter the API's grammar allows is
        // answered.
        Ok(())
    }

    /// Parses several expressions, all of which must hold.
    pub fn parse_all<S: AsRef<str>>(expressions: &[S]) -> Result<Self> {
        let mut filter = Self::default();
        for e in expressions {
            filter.add(e.as_ref())?;
        }
        Ok(filter)
    }

    /// Whether `item` passes.
    pub fn accepts(&self, item: &Item) -> bool {
        let category_ok = self.categories.is_empty()
            || self.categories.iter().any(|path| {
                path.len() <= item.category.len()
                    && path
                        .iter()
                        .zip(&item.category)
                        .all(|(want, have)| *want == have.to_lowercase())
            });
        let brand_ok = self.brands.is_empty()
            || item
                .brand
                .as_ref()
                .is_some_and(|b| self.brands.contains(&b.to_lowercase()));
        category_ok && brand_ok && self.price.accepts(item.price)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(category: &[&str], brand: Option<&str>, price: Option<f64>) -> Item {
        Item {
            category: category.iter().map(|s| s.to_string()).collect(),
            brand: brand.map(String::from),
            price,
            ..Item::new("x")
        }
    }

    #[test]
    fn expressions_filter_by_path_prefix_brand_and_price() {
        let f =
            Filter::parse_all(&["category=Snacks/cookies cakes", "brand=A|b", "price<3"]).unwrap();
        assert!(f.accepts(&item(&["snacks", "Cookies Cakes"], Some("B"), Some(2.5))));
        assert!(!f.accepts(&item(&["snacks", "chips pretzels"], Some("B"), Some(2.5))));
        assert!(!f.accepts(&item(&["snacks", "cookies cakes"], Some("C"), Some(2.5))));
        assert!(!f.accepts(&item(&["snacks", "cookies cakes"], Some("A"), Some(3.0))));
        assert!(!f.accepts(&item(&["snacks", "cookies cakes"], Some("A"), None)));
        let range = Filter::parse_all(&["price=1..2"]).unwrap();
        assert!(range.accepts(&item(&[], None, Some(2.0))));
        assert!(!range.accepts(&item(&[], None, Some(2.01))));
        let empty = Filter::parse_all(&["price=5..1"]).unwrap();
        assert!(!empty.accepts(&item(&[], None, Some(3.0))));
        assert!(!empty.accepts(&item(&[], None, None)));
    }

    #[test]
    fn bad_expressions_say_what_is_wrong() {
        for (expr, says) in [
            ("colour=red", "unknown field"),
            ("price<cheap", "not a number"),
            ("brand<x", "take `=`"),
            ("nonsense", "expected FIELD=VALUE"),
        ] {
            let err = Filter::parse_all(&[expr]).unwrap_err().to_string();
            assert!(err.contains(says), "{expr}: {err}");
        }
    }
}
