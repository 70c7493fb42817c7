//! Content similarity (sans-IO): products described by features from the catalog — every
//! prefix of the category path, the brand, the title's words — weighted by inverse document
//! frequency (rare features say more: a deep category beats the top level, an unusual word
//! beats "organic"), compared by cosine. Updated product by product as the catalog changes, so
//! a product added a second ago has neighbours.

use std::collections::HashMap;

use super::ids::Id;
use crate::commerce::catalog::model::CATEGORY_SEPARATOR;

/// Postings longer than this are not scanned for candidates (a feature most of the catalog
/// shares says little and would cost a scan of it); shared, they still count in the score.
pub const MAX_SCANNED_POSTINGS: usize = 4000;
/// Title words kept per product.
pub const MAX_TITLE_WORDS: usize = 16;

/// What kind of thing a feature is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// A category path prefix.
    Category,
    /// The brand.
    Brand,
    /// A title word.
    Word,
}

/// One feature: its kind and text (`Dairy > Milk`, `Acme`, `oat`).
pub type Feature = (Kind, String);

/// A product's features as the catalog describes it.
pub fn features(category: Option<&str>, brand: Option<&str>, title: &str) -> Vec<Feature> {
    let mut out = Vec::new();
    if let Some(category) = category {
        let mut path = String::new();
        for level in category.split(CATEGORY_SEPARATOR) {
            if !path.is_empty() {
                path.push_str(CATEGORY_SEPARATOR);
            }
            path.push_str(level.trim());
            out.push((Kind::Category, path.clone()));
        }
    }
    if let Some(brand) = brand.map(str::trim).filter(|b| !b.is_empty()) {
        out.push((Kind::Brand, brand.to_lowercase()));
    }
    let mut words = 0;
    for word in title
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| w.chars().count() >= 2)
    {
        let word = (Kind::Word, word.to_lowercase());
        if !out.contains(&word) {
            out.push(word);
            words += 1;
            if words == MAX_TITLE_WORDS {
                break;
            }
        }
    }
    out
}

/// One content neighbour and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Similar {
    /// The neighbour.
    pub product: Id,
    /// Cosine of the IDF-weighted feature sets (0..=1).
    pub similarity: f64,
    /// The shared feature that weighs most.
    pub because: Option<Feature>,
}

/// The content index.
#[derive(Debug, Default)]
pub struct Content {
    names: HashMap<Feature, u32>,
    texts: Vec<Feature>,
    /// Products holding each feature.
    postings: Vec<Vec<Id>>,
    /// Each product's features.
    products: HashMap<Id, Vec<u32>>,
    /// Each feature's inverse document frequency, as of the last change.
    idf: Vec<f64>,
    /// Each product's norm, as of the last change.
    norms: HashMap<Id, f64>,
}

impl Content {
    /// Sets the features of each product (replacing what they had), then the weights.
    pub fn upsert_all(&mut self, products: impl IntoIterator<Item = (Id, Vec<Feature>)>) {
        for (product, features) in products {
            self.upsert(product, features);
        }
        self.reweigh();
    }

    /// Sets the features of one product (replacing what it had), then the weights.
    pub fn upsert_one(&mut self, product: Id, features: Vec<Feature>) {
        self.upsert_all([(product, features)]);
    }

    /// Forgets `product`, then updates the weights.
    pub fn remove(&mut self, product: Id) {
        self.forget(product);
        self.reweigh();
    }

    /// Every feature's IDF and every product's norm, after a change (the catalog changes far
    /// less often than it is queried: queries read them).
    fn reweigh(&mut self) {
        let n = self.products.len() as f64;
        self.idf = self
            .postings
            .iter()
            .map(|p| (1.0 + n / p.len().max(1) as f64).ln())
            .collect();
        let idf = &self.idf;
        self.norms = self
            .products
            .iter()
            .map(|(p, ids)| {
                let norm = ids.iter().map(|f| idf[*f as usize].powi(2)).sum::<f64>();
                (*p, norm.sqrt())
            })
            .collect();
    }

    fn upsert(&mut self, product: Id, features: Vec<Feature>) {
        self.forget(product);
        let mut ids = Vec::with_capacity(features.len());
        for feature in features {
            let id = match self.names.get(&feature) {
                Some(id) => *id,
                None => {
                    let id = self.texts.len() as u32;
                    self.names.insert(feature.clone(), id);
                    self.texts.push(feature);
                    self.postings.push(Vec::new());
                    id
                }
            };
            if !ids.contains(&id) {
                self.postings[id as usize].push(product);
                ids.push(id);
            }
        }
        self.products.insert(product, ids);
    }

    fn forget(&mut self, product: Id) {
        if let Some(ids) = self.products.remove(&product) {
            for id in ids {
                let posting = &mut self.postings[id as usize];
                if let Some(at) = posting.iter().position(|p| *p == product) {
                    posting.swap_remove(at);
                }
            }
        }
    }

    /// Whether `product` is described.
    pub fn contains(&self, product: Id) -> bool {
        self.products.contains_key(&product)
    }

    /// The category path of `product`, if it has one (its deepest category feature).
    pub fn category(&self, product: Id) -> Option<&str> {
        self.products.get(&product).and_then(|ids| {
            ids.iter()
                .rev()
                .map(|id| &self.texts[*id as usize])
                .find(|(kind, _)| *kind == Kind::Category)
                .map(|(_, text)| text.as_str())
        })
    }

    /// The features of `product`.
    pub fn features_of(&self, product: Id) -> impl Iterator<Item = &Feature> {
        self.products
            .get(&product)
            .into_iter()
            .flatten()
            .map(|id| &self.texts[*id as usize])
    }

    fn idf(&self, feature: u32) -> f64 {
        self.idf.get(feature as usize).copied().unwrap_or(0.0)
    }

    fn norm(&self, product: Id) -> f64 {
        self.norms.get(&product).copied().unwrap_or(0.0)
    }

    /// The products most like `product`, best first, at most `limit`.
    pub fn similar(&self, product: Id, limit: usize) -> Vec<Similar> {
        let Some(own) = self.products.get(&product) else {
            return Vec::new();
        };
        let own_norm = self.norm(product);
        if own_norm == 0.0 {
            return Vec::new();
        }
        // Dense accumulators (ids are small and dense): far cheaper than a map per candidate.
        let size = own
            .iter()
            .flat_map(|f| self.postings[*f as usize].iter())
            .max()
            .map_or(0, |m| *m as usize + 1);
        let mut dense = vec![0.0f64; size];
        let mut touched: Vec<Id> = Vec::new();
        let mut wide = Vec::new();
        for &f in own {
            let posting = &self.postings[f as usize];
            if posting.len() > MAX_SCANNED_POSTINGS {
                wide.push(f);
                continue;
            }
            let weight = self.idf(f).powi(2);
            for &other in posting {
                if other != product {
                    let slot = &mut dense[other as usize];
                    if *slot == 0.0 {
                        touched.push(other);
                    }
                    *slot += weight;
                }
            }
        }
        let mut similar: Vec<Similar> = touched
            .into_iter()
            .map(|other| (other, dense[other as usize]))
            .map(|(other, mut dot)| {
                let theirs = self.products.get(&other).map_or(&[][..], Vec::as_slice);
                for f in &wide {
                    if theirs.contains(f) {
                        dot += self.idf(*f).powi(2);
                    }
                }
                let similarity = dot / (own_norm * self.norm(other)).max(f64::MIN_POSITIVE);
                Similar {
                    product: other,
                    similarity,
                    because: None,
                }
            })
            .collect();
        let order = |a: &Similar, b: &Similar| {
            b.similarity
                .total_cmp(&a.similarity)
                .then(a.product.cmp(&b.product))
        };
        let limit = limit.min(similar.len());
        if limit == 0 {
            return Vec::new();
        }
        similar.select_nth_unstable_by(limit - 1, order);
        similar.truncate(limit);
        similar.sort_by(order);
        for s in &mut similar {
            s.because = self.strongest_shared(own, s.product);
        }
        similar
    }

    /// The shared feature of `own` and `other` with the highest weight.
    fn strongest_shared(&self, own: &[u32], other: Id) -> Option<Feature> {
        let theirs = self.products.get(&other)?;
        own.iter()
            .filter(|f| theirs.contains(f))
            .max_by(|a, b| {
                let kind = |f: u32| self.texts[f as usize].0;
                // Equal weights: a category says more than a brand, a brand more than a word.
                self.idf(**a)
                    .total_cmp(&self.idf(**b))
                    .then(kind(**b).cmp(&kind(**a)))
            })
            .map(|f| self.texts[*f as usize].clone())
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        let texts: usize = self.texts.iter().map(|(_, t)| t.len() + 64).sum();
        let postings: usize = self.postings.iter().map(|p| 24 + p.capacity() * 4).sum();
        let products: usize = self.products.values().map(|v| 56 + v.capacity() * 4).sum();
        texts * 2 + postings + products + self.idf.capacity() * 8 + self.norms.capacity() * 16
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add(content: &mut Content, id: Id, category: &str, brand: &str, title: &str) {
        content.upsert_one(id, features(Some(category), Some(brand), title));
    }

    #[test]
    fn features_are_category_prefixes_brand_and_words() {
        let f = features(Some("Dairy > Milk"), Some(" Acme "), "Oat milk, 1 L — oat");
        let texts: Vec<(Kind, &str)> = f.iter().map(|(k, t)| (*k, t.as_str())).collect();
        assert_eq!(
            texts,
            [
                (Kind::Category, "Dairy"),
                (Kind::Category, "Dairy > Milk"),
                (Kind::Brand, "acme"),
                (Kind::Word, "oat"),
                (Kind::Word, "milk"),
            ]
        );
    }

    #[test]
    fn a_new_product_gets_content_neighbours_the_deepest_shared_category_first() {
        let mut c = Content::default();
        add(&mut c, 1, "Dairy > Milk > Oat", "Acme", "Oat drink barista");
        add(&mut c, 2, "Dairy > Milk > Cow", "Farm", "Whole milk");
        add(&mut c, 3, "Dairy > Cheese", "Farm", "Cheddar");
        add(&mut c, 4, "Bakery > Bread", "Crust", "Sourdough loaf");
        // New: no event has ever named it.
        add(&mut c, 5, "Dairy > Milk > Oat", "Other", "Oat drink");
        let similar = c.similar(5, 10);
        let ids: Vec<Id> = similar.iter().map(|s| s.product).collect();
        assert_eq!(ids[0], 1, "{similar:?}");
        assert_eq!(ids[1], 2, "same Dairy > Milk: {similar:?}");
        assert!(
            !ids.contains(&4),
            "nothing shared with the bakery: {similar:?}"
        );
        assert_eq!(
            similar[0].because,
            Some((Kind::Category, "Dairy > Milk > Oat".into()))
        );
        assert_eq!(c.category(5), Some("Dairy > Milk > Oat"));
        // Moving it to the bakery changes its neighbours.
        add(&mut c, 5, "Bakery > Bread", "Crust", "Rye loaf");
        assert_eq!(c.similar(5, 1)[0].product, 4);
        c.remove(4);
        assert!(c.similar(5, 10).iter().all(|s| s.product != 4));
    }
}
