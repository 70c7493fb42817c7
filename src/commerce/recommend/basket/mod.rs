//! Next-basket recommendation: given each shopper's past orders (baskets, in time order), which
//! products go in their next one. Pure code: the data is pushed in, a model is fitted from it,
//! and queries are answered from per-shopper lists precomputed at fit time.
//!
//! - [`Baskets`]: the orders, with product and shopper ids interned.
//! - [`ForYou`]: cuecast's model behind `GET /api/recommendations/for-you` ([`foryou`]).
//! - [`models`]: the baselines it is measured against (global popularity, P-TopFreq, TIFU-KNN,
//!   UP-CF@r), as the "Next Basket Recommendation Reality Check" protocol defines them.
//! - [`metrics`], [`orders`] (the Instacart CSV layout) and [`eval`]: the offline evaluation
//!   `cuecast recs eval` runs (docs/recommendations.md).

pub mod ease;
pub mod eval;
pub mod foryou;
pub mod metrics;
pub mod models;
pub mod orders;

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

pub use foryou::{ForYou, ForYouParams};

/// Index of an interned product in a [`Baskets`].
pub type ProductIx = u32;

/// Shoppers' orders (baskets) in time order, with product and shopper ids interned.
#[derive(Debug, Clone, Default)]
pub struct Baskets {
    /// Product ids by index.
    products: Vec<Arc<str>>,
    /// Product id → index.
    product_index: HashMap<Arc<str>, ProductIx>,
    /// Shopper ids by index.
    users: Vec<Arc<str>>,
    /// Shopper id → index.
    user_index: HashMap<Arc<str>, u32>,
    /// Per shopper, their baskets in time order; each basket sorted, without duplicates.
    history: Vec<Vec<Vec<ProductIx>>>,
    /// Per shopper, the day of each of their baskets on their clock (days, any origin; `None`
    /// unknown), in `history`'s order.
    days: Vec<Vec<Option<f64>>>,
    /// Number of baskets pushed.
    basket_count: usize,
}

impl Baskets {
    /// No orders yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends one basket (an order) of `user`, later than their earlier ones, its time
    /// unknown. Duplicate products in one basket count once; an empty basket is ignored.
    pub fn push<'a>(&mut self, user: &str, products: impl IntoIterator<Item = &'a str>) {
        self.push_at(user, products, None);
    }

    /// [`Baskets::push`] of a basket bought on `day` (days on one clock for all of `user`'s
    /// baskets, e.g. Unix days or days since their first order; not before their earlier
    /// ones; `None` unknown): the time-aware part of [`ForYou`] reads the days since the
    /// shopper last bought each product.
    pub fn push_at<'a>(
        &mut self,
        user: &str,
        products: impl IntoIterator<Item = &'a str>,
        day: Option<f64>,
    ) {
        let mut basket: Vec<ProductIx> = products
            .into_iter()
            .map(|product| self.intern_product(product))
            .collect();
        if basket.is_empty() {
            return;
        }
        basket.sort_unstable();
        basket.dedup();
        let user = match self.user_index.get(user) {
            Some(&ix) => ix,
            None => {
                let id: Arc<str> = Arc::from(user);
                let ix = self.users.len() as u32;
                self.users.push(id.clone());
                self.user_index.insert(id, ix);
                self.history.push(Vec::new());
                self.days.push(Vec::new());
                ix
            }
        };
        self.history[user as usize].push(basket);
        self.days[user as usize].push(day.filter(|d| d.is_finite()));
        self.basket_count += 1;
    }

    /// Number of shoppers with at least one basket.
    pub fn users(&self) -> usize {
        self.users.len()
    }

    /// Number of distinct products in all baskets.
    pub fn products(&self) -> usize {
        self.products.len()
    }

    /// Number of baskets.
    pub fn baskets(&self) -> usize {
        self.basket_count
    }

    fn intern_product(&mut self, product: &str) -> ProductIx {
        if let Some(&ix) = self.product_index.get(product) {
            return ix;
        }
        let id: Arc<str> = Arc::from(product);
        let ix = self.products.len() as ProductIx;
        self.products.push(id.clone());
        self.product_index.insert(id, ix);
        ix
    }

    /// The index of a shopper id.
    pub(crate) fn user_ix(&self, user: &str) -> Option<usize> {
        self.user_index.get(user).map(|&ix| ix as usize)
    }

    /// The index of a product id.
    pub(crate) fn product_ix(&self, product: &str) -> Option<ProductIx> {
        self.product_index.get(product).copied()
    }

    /// The product id at an index.
    pub(crate) fn product_id(&self, product: ProductIx) -> &Arc<str> {
        &self.products[product as usize]
    }

    /// The shopper id at an index.
    pub(crate) fn user_id(&self, user: usize) -> &Arc<str> {
        &self.users[user]
    }

    /// One shopper's baskets, oldest first.
    pub(crate) fn history(&self, user: usize) -> &[Vec<ProductIx>] {
        &self.history[user]
    }

    /// Every shopper's baskets.
    pub(crate) fn histories(&self) -> &[Vec<Vec<ProductIx>>] {
        &self.history
    }

    /// The days of one shopper's baskets, in [`Baskets::history`]'s order.
    pub(crate) fn days(&self, user: usize) -> &[Option<f64>] {
        &self.days[user]
    }
}

/// The answer to one shopper's query.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommended {
    /// Best first.
    pub items: Vec<Scored>,
    /// True when the shopper is unknown (or has no baskets) and the items are the popular ones.
    pub fallback: bool,
}

/// One recommended product.
#[derive(Debug, Clone, PartialEq)]
pub struct Scored {
    /// The product id.
    pub product: Arc<str>,
    /// The model's score (higher is better; comparable within one answer only).
    pub score: f64,
    /// Why it is recommended.
    pub reason: Reason,
}

/// Why a product is recommended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The shopper bought it before, `times` orders.
    BuyAgain {
        /// In how many of the shopper's orders it was.
        times: u32,
    },
    /// Shoppers whose baskets resemble this shopper's buy it.
    SimilarShoppers,
    /// Often in the same order as `product`, which the shopper bought recently.
    BoughtWith {
        /// The product of the shopper's recent orders it goes with.
        product: Arc<str>,
    },
    /// Popular with all shoppers (filler, or the cold-start answer).
    Popular,
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::BuyAgain { times: 1 } => f.write_str("you bought this once"),
            Reason::BuyAgain { times } => write!(f, "you bought this {times} times"),
            Reason::SimilarShoppers => f.write_str("shoppers with baskets like yours buy this"),
            Reason::BoughtWith { product } => write!(f, "often bought with {product}"),
            Reason::Popular => f.write_str("popular now"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_interns_ids_and_counts_duplicates_once() {
        let mut data = Baskets::new();
        data.push("ann", ["milk", "eggs", "milk"]);
        data.push("bob", ["eggs"]);
        data.push("ann", ["bread"]);
        data.push("ann", []);
        assert_eq!((data.users(), data.products(), data.baskets()), (2, 3, 3));
        let ann = data.user_ix("ann").unwrap();
        assert_eq!(data.history(ann), &[vec![0, 1], vec![2]]);
        assert_eq!(data.product_id(2).as_ref(), "bread");
        assert_eq!(data.days(ann), &[None, None]);
    }

    #[test]
    fn push_at_keeps_each_baskets_day() {
        let mut data = Baskets::new();
        data.push_at("ann", ["milk"], Some(0.0));
        data.push_at("ann", [], Some(3.0));
        data.push_at("ann", ["eggs"], Some(7.0));
        data.push_at("ann", ["tea"], Some(f64::NAN));
        let ann = data.user_ix("ann").unwrap();
        assert_eq!(data.days(ann), &[Some(0.0), Some(7.0), None]);
    }

    #[test]
    fn reasons_read_as_short_english() {
        assert_eq!(
            Reason::BuyAgain { times: 4 }.to_string(),
            "you bought this 4 times"
        );
        assert_eq!(
            Reason::BuyAgain { times: 1 }.to_string(),
            "you bought this once"
        );
        assert_eq!(Reason::Popular.to_string(), "popular now");
        assert_eq!(
            Reason::SimilarShoppers.to_string(),
            "shoppers with baskets like yours buy this"
        );
        let with = Reason::BoughtWith {
            product: Arc::from("pasta"),
        };
        assert_eq!(with.to_string(), "often bought with pasta");
    }
}
