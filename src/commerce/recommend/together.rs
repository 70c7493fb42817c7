//! Frequently bought together (sans-IO): products in the same order, counted incrementally as
//! purchase lines arrive. A pair is recommended when it shares at least `min_support` orders
//! and the confidence of "bought B given A" (orders with both / orders with A) reaches the
//! query's threshold; candidates rank by confidence, ties by lift (how much more often than
//! chance they meet). A cart of several products merges the candidates of each (mean
//! confidence over the cart), de-duplicated, without the cart's own products.
//!
//! A model built [`CoPurchases::with_lists`] also keeps, per product, the partners a query of
//! that product alone can answer from: at least the `top` best by support and every partner
//! tied with the last (support is what an order changes; the tie-break, lift, moves with the
//! partner's own orders, so it is decided at query time over those few). Supports only grow,
//! so a list stays complete when each line adds the partner whose support reached the list's
//! floor; one grown to twice its size is cut again. A query scores a few hundred partners at
//! most, not thousands, and answers exactly as the full computation.

use std::collections::HashMap;
use std::sync::Arc;

use super::ids::Id;

/// Distinct products counted in one order; lines past it are ignored (a wholesale order would
/// otherwise add a quadratic number of pairs).
pub const MAX_ORDER_PRODUCTS: usize = 200;

/// One candidate of a query.
#[derive(Debug, Clone, PartialEq)]
pub struct Together {
    /// The recommended product.
    pub product: Id,
    /// Mean confidence over the query's products (0..=1).
    pub score: f64,
    /// The query product it is bought with most.
    pub with: Id,
    /// Orders holding both it and `with`.
    pub support: u32,
    /// Orders holding `with`.
    pub with_orders: u32,
    /// Lift of the pair (`with`, product).
    pub lift: f64,
}

/// Co-purchase counts.
#[derive(Debug, Default)]
pub struct CoPurchases {
    /// Each order's distinct products.
    orders: HashMap<Arc<str>, Vec<Id>>,
    /// Orders holding each product.
    count: HashMap<Id, u32>,
    /// Orders holding both products, both ways.
    pairs: HashMap<Id, HashMap<Id, u32>>,
    /// Partners kept per product (0: no lists, every query computes).
    top: usize,
    /// Least support of a kept partner.
    min_support: u32,
    /// Each product's partners by support (see the module).
    lists: HashMap<Id, Partners>,
}

/// The partners of a product that hold its `top` best: every partner of support `floor`+ (and
/// maybe some less).
#[derive(Debug)]
struct Partners {
    /// Support of the `top`-th best partner when the list was last cut (or the least support).
    floor: u32,
    /// Length of the list when last cut; it is cut again past twice this (or `top`).
    cut_len: usize,
    partners: Vec<Id>,
}

impl CoPurchases {
    /// A model keeping, per product, the `top` best partners of support `min_support`+ and
    /// those tied with the last, for queries of one product with that support and a `limit`
    /// of at most `top`.
    pub fn with_lists(top: usize, min_support: u32) -> CoPurchases {
        CoPurchases {
            top,
            min_support,
            ..CoPurchases::default()
        }
    }

    /// `partner`'s support with `product` is now `support`: the list of `product` keeps it.
    fn keep(&mut self, product: Id, partner: Id, support: u32) {
        if self.top == 0 || support < self.min_support {
            return;
        }
        let min_support = self.min_support;
        let list = self.lists.entry(product).or_insert(Partners {
            floor: min_support,
            cut_len: 0,
            partners: Vec::new(),
        });
        if support < list.floor || list.partners.contains(&partner) {
            return;
        }
        list.partners.push(partner);
        if list.partners.len() > 2 * list.cut_len.max(self.top) {
            let (floor, partners) = self.cut(product);
            let cut_len = partners.len();
            self.lists.insert(
                product,
                Partners {
                    floor,
                    cut_len,
                    partners,
                },
            );
        }
    }

    /// The partners of `product` with support `min_support`+: the `top` best by support and
    /// every one tied with the last of them, and the support of the last (the least support
    /// when there are fewer).
    fn cut(&self, product: Id) -> (u32, Vec<Id>) {
        let Some(pairs) = self.pairs.get(&product) else {
            return (self.min_support, Vec::new());
        };
        let mut kept: Vec<(u32, Id)> = pairs
            .iter()
            .filter(|(_, support)| **support >= self.min_support)
            .map(|(&p, &support)| (support, p))
            .collect();
        if kept.len() > self.top {
            let by_support = |a: &(u32, Id), b: &(u32, Id)| b.0.cmp(&a.0);
            kept.select_nth_unstable_by(self.top - 1, by_support);
            let cutoff = kept[self.top - 1].0;
            kept.retain(|(support, _)| *support >= cutoff);
            return (cutoff, kept.into_iter().map(|(_, p)| p).collect());
        }
        (self.min_support, kept.into_iter().map(|(_, p)| p).collect())
    }

    /// Adds a purchase line of `product` in `order`; a product already in the order adds
    /// nothing (a retried line or a second line of the same product).
    pub fn record(&mut self, order: &str, product: Id) {
        let lines = match self.orders.get_mut(order) {
            Some(lines) => lines,
            None => self.orders.entry(Arc::from(order)).or_default(),
        };
        if lines.contains(&product) || lines.len() >= MAX_ORDER_PRODUCTS {
            return;
        }
        let others = lines.clone();
        lines.push(product);
        for other in others {
            let support = self
                .pairs
                .entry(product)
                .or_default()
                .entry(other)
                .or_default();
            *support += 1;
            let support = *support;
            *self
                .pairs
                .entry(other)
                .or_default()
                .entry(product)
                .or_default() += 1;
            self.keep(product, other, support);
            self.keep(other, product, support);
        }
        *self.count.entry(product).or_default() += 1;
    }

    /// Orders seen.
    pub fn orders(&self) -> usize {
        self.orders.len()
    }

    /// Orders holding `product`.
    pub fn orders_with(&self, product: Id) -> u32 {
        self.count.get(&product).copied().unwrap_or(0)
    }

    /// The products bought with `inputs` (a cart) at least `min_support` times with a
    /// confidence of at least `threshold` (0..=1), best first, at most `limit`, without the
    /// inputs.
    pub fn query(
        &self,
        inputs: &[Id],
        min_support: u32,
        threshold: f64,
        limit: usize,
    ) -> Vec<Together> {
        let orders = self.orders.len().max(1) as f64;
        if let [input] = inputs {
            // One product: no merging, no map; its list when it answers exactly.
            let with_orders = self.orders_with(*input);
            let pairs = self.pairs.get(input);
            let listed = (min_support == self.min_support && limit <= self.top).then(|| {
                self.lists
                    .get(input)
                    .map_or(&[][..], |list| &list.partners[..])
            });
            let candidates: Box<dyn Iterator<Item = (Id, u32)>> = match (listed, pairs) {
                (_, None) => Box::new(std::iter::empty()),
                (Some(list), Some(pairs)) => Box::new(
                    list.iter()
                        .map(|p| (*p, pairs.get(p).copied().unwrap_or(0))),
                ),
                (None, Some(pairs)) => Box::new(pairs.iter().map(|(&p, &s)| (p, s))),
            };
            let ranked = candidates
                .filter(|(_, support)| *support >= min_support)
                .map(|(product, support)| {
                    let confidence = f64::from(support) / f64::from(with_orders.max(1));
                    Together {
                        product,
                        score: confidence,
                        with: *input,
                        support,
                        with_orders,
                        lift: confidence * orders / f64::from(self.orders_with(product).max(1)),
                    }
                })
                .filter(|t| t.score >= threshold)
                .collect();
            return best(ranked, limit);
        }
        let mut merged: HashMap<Id, Together> = HashMap::new();
        let cart = inputs.len().max(1) as f64;
        for &input in inputs {
            let with_orders = self.orders_with(input);
            let Some(pairs) = self.pairs.get(&input) else {
                continue;
            };
            for (&product, &support) in pairs {
                if inputs.contains(&product) || support < min_support {
                    continue;
                }
                let confidence = f64::from(support) / f64::from(with_orders.max(1));
                if confidence < threshold {
                    continue;
                }
                let lift = confidence * orders / f64::from(self.orders_with(product).max(1));
                let entry = merged.entry(product).or_insert(Together {
                    product,
                    score: 0.0,
                    with: input,
                    support,
                    with_orders,
                    lift,
                });
                let best = f64::from(entry.support) / f64::from(entry.with_orders.max(1));
                if confidence > best {
                    (entry.with, entry.support, entry.with_orders, entry.lift) =
                        (input, support, with_orders, lift);
                }
                entry.score += confidence / cart;
            }
        }
        best(merged.into_values().collect(), limit)
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        let orders: usize = self
            .orders
            .iter()
            .map(|(k, v)| k.len() + 48 + v.capacity() * 4)
            .sum();
        let pairs: usize = self.pairs.values().map(|m| 48 + m.capacity() * 9).sum();
        let lists: usize = self
            .lists
            .values()
            .map(|l| 48 + l.partners.capacity() * 4)
            .sum();
        orders + pairs + lists + self.count.capacity() * 9
    }
}

/// The best `limit` of `ranked`: by score, then lift, then id.
fn best(mut ranked: Vec<Together>, limit: usize) -> Vec<Together> {
    let order = |a: &Together, b: &Together| {
        b.score
            .total_cmp(&a.score)
            .then(b.lift.total_cmp(&a.lift))
            .then(a.product.cmp(&b.product))
    };
    let limit = limit.min(ranked.len());
    if limit == 0 {
        return Vec::new();
    }
    ranked.select_nth_unstable_by(limit - 1, order);
    ranked.truncate(limit);
    ranked.sort_by(order);
    ranked
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Orders `o0..` of the given products.
    fn model(orders: &[&[Id]]) -> CoPurchases {
        let mut model = CoPurchases::default();
        for (n, order) in orders.iter().enumerate() {
            for &product in *order {
                model.record(&format!("o{n}"), product);
            }
        }
        model
    }

    #[test]
    fn an_injected_pair_comes_first() {
        // 1 is a staple in every order; 7 and 8 always go together.
        let mut orders: Vec<&[Id]> = vec![&[1, 2], &[1, 3], &[1, 4], &[1, 2, 3]];
        orders.extend([&[1, 7, 8][..], &[7, 8], &[7, 8, 5]]);
        let model = model(&orders);
        let top = model.query(&[7], 2, 0.0, 10);
        assert_eq!(top[0].product, 8, "{top:?}");
        assert_eq!((top[0].support, top[0].with_orders), (3, 3));
        assert!((top[0].score - 1.0).abs() < 1e-9);
        assert_eq!(top.len(), 1, "1, 5 share one order with 7 only: {top:?}");
        assert!(model.query(&[7], 1, 0.0, 10).len() == 3);
    }

    #[test]
    fn a_cart_merges_drops_its_products_and_respects_the_threshold() {
        let model = model(&[
            &[1, 2, 3],
            &[1, 2, 3],
            &[1, 2, 4],
            &[2, 4],
            &[1, 5],
            &[1, 5],
        ]);
        let cart = model.query(&[1, 2], 2, 0.0, 10);
        let products: Vec<Id> = cart.iter().map(|t| t.product).collect();
        assert_eq!(products, [3, 4, 5], "{cart:?}");
        assert!(!products.contains(&1) && !products.contains(&2));
        // 3: 2/5 with 1, 2/4 with 2 → mean 0.45; its best reason is 2.
        assert!((cart[0].score - 0.45).abs() < 1e-9);
        assert_eq!(cart[0].with, 2);
        // threshold 0.45 keeps the pairs whose own confidence reaches it: 3 with 2 (0.5), 4 with 2 (0.5).
        let strict: Vec<Id> = model
            .query(&[1, 2], 2, 0.45, 10)
            .iter()
            .map(|t| t.product)
            .collect();
        assert_eq!(strict, [3, 4]);
    }

    #[test]
    fn the_lists_answer_as_the_full_computation_on_random_orders() {
        use rand::rngs::StdRng;
        use rand::{Rng, SeedableRng};

        let mut rng = StdRng::seed_from_u64(7);
        // Few supports, many ties: the lists' cut and the tie-break by lift both matter.
        let mut listed = CoPurchases::with_lists(5, 2);
        let mut full = CoPurchases::default();
        for round in 0..6 {
            for n in 0..300 {
                let order = format!("o{round}-{n}");
                for _ in 0..rng.random_range(1..6) {
                    // Skewed: low ids are popular.
                    let spread = rng.random_range(2..60);
                    let product: Id = rng.random_range(0..spread);
                    listed.record(&order, product);
                    full.record(&order, product);
                }
            }
            let mut answered = 0;
            for product in 0..60 {
                for limit in [1, 3, 5, 6] {
                    for (support, threshold) in [(2, 0.0), (2, 0.3), (1, 0.0)] {
                        let got = listed.query(&[product], support, threshold, limit);
                        let want = full.query(&[product], support, threshold, limit);
                        assert_eq!(got, want, "product {product} limit {limit} round {round}");
                        answered += usize::from(!got.is_empty() && limit <= 5 && support == 2);
                    }
                }
            }
            assert!(answered > 100, "the lists answered {answered} queries");
        }
        // A list is kept short: top 5 and the ties of the fifth, not every partner.
        let popular = full.pairs.get(&0).map_or(0, HashMap::len);
        let kept = listed.lists.get(&0).map_or(0, |l| l.partners.len());
        assert!(kept >= 5 && kept < popular, "kept {kept} of {popular}");
    }

    #[test]
    fn retried_lines_count_once() {
        let mut model = model(&[&[1, 2]]);
        model.record("o0", 2);
        model.record("o0", 1);
        assert_eq!(model.orders_with(1), 1);
        assert_eq!(model.query(&[1], 1, 0.0, 10)[0].support, 1);
    }
}
