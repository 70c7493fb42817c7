//! Frequently bought together (sans-IO): products in the same order, counted incrementally as
//! purchase lines arrive. A pair is recommended when it shares at least `min_support` orders
//! and the confidence of "bought B given A" (orders with both / orders with A) reaches the
//! query's threshold; candidates rank by confidence, ties by lift (how much more often than
//! chance they meet). A cart of several products merges the candidates of each (mean
//! confidence over the cart), de-duplicated, without the cart's own products.

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
}

impl CoPurchases {
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
        for other in lines.iter().copied() {
            *self
                .pairs
                .entry(product)
                .or_default()
                .entry(other)
                .or_default() += 1;
            *self
                .pairs
                .entry(other)
                .or_default()
                .entry(product)
                .or_default() += 1;
        }
        lines.push(product);
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
            // One product: no merging, no map.
            let with_orders = self.orders_with(*input);
            let ranked = self
                .pairs
                .get(input)
                .into_iter()
                .flatten()
                .filter(|(_, support)| **support >= min_support)
                .map(|(&product, &support)| {
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
        orders + pairs + self.count.capacity() * 9
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
    fn retried_lines_count_once() {
        let mut model = model(&[&[1, 2]]);
        model.record("o0", 2);
        model.record("o0", 1);
        assert_eq!(model.orders_with(1), 1);
        assert_eq!(model.query(&[1], 1, 0.0, 10)[0].support, 1);
    }
}
