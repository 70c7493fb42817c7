//! Co-views (sans-IO): two products the same shopper (user or visitor) clicked, CTA-clicked or
//! put in the cart within one session window are neighbours. Each pair counts once per
//! session of a shopper; similarity is the cosine of the products' shopper sets,
//! `n(a, b) / √(n(a) · n(b))`. Time is Unix milliseconds, passed in.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::ids::Id;

/// Products remembered per shopper (the most recent ones).
pub const MAX_RECENT: usize = 32;
/// Shoppers remembered; past it, those idle for a session window are forgotten.
pub const MAX_SHOPPERS: usize = 200_000;

/// One co-viewed neighbour.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Neighbour {
    /// The neighbour.
    pub product: Id,
    /// Cosine similarity (0..=1).
    pub similarity: f64,
    /// Sessions that touched both.
    pub together: u32,
}

/// Co-view counts.
#[derive(Debug)]
pub struct CoViews {
    session_ms: i64,
    /// Each shopper's recent products and when they touched them.
    recent: HashMap<Arc<str>, VecDeque<(Id, i64)>>,
    /// Sessions touching each product.
    count: HashMap<Id, u32>,
    /// Sessions touching both, both ways.
    pairs: HashMap<Id, HashMap<Id, u32>>,
}

impl CoViews {
    /// An empty model with a session window of `session_ms`.
    pub fn new(session_ms: i64) -> CoViews {
        CoViews {
            session_ms,
            recent: HashMap::new(),
            count: HashMap::new(),
            pairs: HashMap::new(),
        }
    }

    /// Shopper `who` touched `product` at `ts_ms`.
    pub fn record(&mut self, who: &str, product: Id, ts_ms: i64) {
        if self.recent.len() >= MAX_SHOPPERS && !self.recent.contains_key(who) {
            let horizon = ts_ms - self.session_ms;
            self.recent
                .retain(|_, seen| seen.back().is_some_and(|(_, t)| *t >= horizon));
            if self.recent.len() >= MAX_SHOPPERS {
                return;
            }
        }
        let seen = match self.recent.get_mut(who) {
            Some(seen) => seen,
            None => self.recent.entry(Arc::from(who)).or_default(),
        };
        let horizon = ts_ms - self.session_ms;
        seen.retain(|(_, t)| *t >= horizon);
        if let Some(at) = seen.iter().position(|(p, _)| *p == product) {
            // Already in this session: refresh it, count nothing twice.
            seen.remove(at);
            seen.push_back((product, ts_ms));
            return;
        }
        for (other, _) in seen.iter() {
            *self
                .pairs
                .entry(product)
                .or_default()
                .entry(*other)
                .or_default() += 1;
            *self
                .pairs
                .entry(*other)
                .or_default()
                .entry(product)
                .or_default() += 1;
        }
        *self.count.entry(product).or_default() += 1;
        if seen.len() >= MAX_RECENT {
            seen.pop_front();
        }
        seen.push_back((product, ts_ms));
    }

    /// `product`'s co-viewed neighbours (unordered).
    pub fn neighbours(&self, product: Id) -> Vec<Neighbour> {
        let Some(pairs) = self.pairs.get(&product) else {
            return Vec::new();
        };
        let own = f64::from(self.count.get(&product).copied().unwrap_or(1).max(1));
        pairs
            .iter()
            .map(|(&other, &together)| {
                let theirs = f64::from(self.count.get(&other).copied().unwrap_or(1).max(1));
                Neighbour {
                    product: other,
                    similarity: f64::from(together) / (own * theirs).sqrt(),
                    together,
                }
            })
            .collect()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        let recent: usize = self
            .recent
            .iter()
            .map(|(k, v)| k.len() + 64 + v.capacity() * 16)
            .sum();
        let pairs: usize = self.pairs.values().map(|m| 48 + m.capacity() * 9).sum();
        recent + pairs + self.count.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    #[test]
    fn products_touched_in_one_session_are_neighbours_once() {
        let mut m = CoViews::new(30 * MIN);
        m.record("v1", 1, 0);
        m.record("v1", 2, MIN);
        m.record("v1", 1, 2 * MIN); // again, same session: nothing new
        m.record("v2", 1, 0);
        m.record("v2", 3, MIN);
        m.record("v3", 1, 0);
        m.record("v3", 2, 60 * MIN); // another session: not with 1
        let mut n = m.neighbours(1);
        n.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
        assert_eq!(n.len(), 2, "{n:?}");
        // 1 in 3 sessions, 3 in 1, together 1 → 1/√3; 2 in 2 sessions → 1/√6.
        assert_eq!(n[0].product, 3);
        assert!((n[0].similarity - 1.0 / 3f64.sqrt()).abs() < 1e-9);
        assert!((n[1].similarity - 1.0 / 6f64.sqrt()).abs() < 1e-9);
        assert!(m.neighbours(9).is_empty());
    }
}
