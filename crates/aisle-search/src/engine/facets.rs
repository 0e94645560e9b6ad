//! Facet counts (department, category, brand, price band) over interned facet values.

use aisle_core::ItemId;
use rustc_hash::FxHashMap;

use super::*;

pub(super) const PRICE_BANDS: [f64; 7] = [1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0];

pub(super) fn price_band(price: f64) -> String {
    let mut low = 0.0;
    for high in PRICE_BANDS {
        if price < high {
            return format!("{low}-{high}");
        }
        low = high;
    }
    format!("{low}+")
}

/// An item's facet values, interned.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct FacetKey {
    department: Option<u32>,
    category: Option<u32>,
    brand: Option<u32>,
    price_band: Option<u32>,
}

#[derive(Debug, Default)]
pub(super) struct FacetNames {
    departments: Interner,
    categories: Interner,
    brands: Interner,
    price_bands: Interner,
}

#[derive(Debug, Default)]
pub(super) struct Interner {
    names: Vec<String>,
    ids: FxHashMap<String, u32>,
}

impl Interner {
    fn id(&mut self, name: String) -> u32 {
        if let Some(&id) = self.ids.get(&name) {
            return id;
        }
        let id = self.names.len() as u32;
        self.names.push(name.clone());
        self.ids.insert(name, id);
        id
    }

    fn counted(&self, counts: &[usize]) -> Vec<(String, usize)> {
        let mut v: Vec<(String, usize)> = counts
            .iter()
            .enumerate()
            .filter(|c| *c.1 > 0)
            .map(|(i, &n)| (self.names[i].clone(), n))
            .collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        v
    }
}

impl SearchEngine {
    pub(super) fn refresh_facet_keys(&mut self) {
        let names = &mut self.facet_names;
        self.facet_keys = self
            .items
            .iter()
            .map(|item| {
                let Some(item) = item else {
                    return FacetKey::default();
                };
                FacetKey {
                    department: item
                        .category
                        .first()
                        .map(|d| names.departments.id(d.clone())),
                    category: (!item.category.is_empty())
                        .then(|| names.categories.id(item.category.join("/"))),
                    brand: item.brand.as_ref().map(|b| names.brands.id(b.clone())),
                    price_band: item.price.map(|p| names.price_bands.id(price_band(p))),
                }
            })
            .collect();
    }

    pub(super) fn facets(&self, ids: impl Iterator<Item = ItemId>) -> Facets {
        let n = &self.facet_names;
        let mut departments = vec![0usize; n.departments.names.len()];
        let mut categories = vec![0usize; n.categories.names.len()];
        let mut brands = vec![0usize; n.brands.names.len()];
        let mut prices = vec![0usize; n.price_bands.names.len()];
        for id in ids {
            let Some(key) = self.facet_keys.get(id.index()) else {
                continue;
            };
            for (value, counts) in [
                (key.department, &mut departments),
                (key.category, &mut categories),
                (key.brand, &mut brands),
                (key.price_band, &mut prices),
            ] {
                if let Some(v) = value {
                    counts[v as usize] += 1;
                }
            }
        }
        Facets {
            departments: n.departments.counted(&departments),
            categories: n.categories.counted(&categories),
            brands: n.brands.counted(&brands),
            prices: n.price_bands.counted(&prices),
        }
    }
}
