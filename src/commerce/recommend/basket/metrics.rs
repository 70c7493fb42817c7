//! The evaluation protocol's metrics for one ranked list against one held-out basket: HR@k (any
//! hit), Recall@k (hits / basket size) and NDCG@k (binary gains; the ideal DCG over
//! `min(k, basket size)` positions), and their means over shoppers.

use std::collections::HashSet;

/// HR, Recall and NDCG of one list.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Scores {
    /// 1 if any of the top k is in the basket.
    pub hr: f64,
    /// Hits in the top k / basket size.
    pub recall: f64,
    /// DCG of the top k / ideal DCG.
    pub ndcg: f64,
}

/// Scores the top `k` of `ranked` against `truth` (an empty truth scores 0).
pub fn score<S: AsRef<str>>(ranked: &[S], truth: &HashSet<&str>, k: usize) -> Scores {
    if truth.is_empty() {
        return Scores::default();
    }
    let mut hits = 0usize;
    let mut dcg = 0.0;
    for (position, product) in ranked.iter().take(k).enumerate() {
        if truth.contains(product.as_ref()) {
            hits += 1;
            dcg += 1.0 / (position as f64 + 2.0).log2();
        }
    }
    let ideal: f64 = (0..k.min(truth.len()))
        .map(|position| 1.0 / (position as f64 + 2.0).log2())
        .sum();
    Scores {
        hr: if hits > 0 { 1.0 } else { 0.0 },
        recall: hits as f64 / truth.len() as f64,
        ndcg: dcg / ideal,
    }
}

/// The mean of [`Scores`] over shoppers.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Mean {
    sum: Scores,
    /// Shoppers added.
    pub count: usize,
}

impl Mean {
    /// Adds one shopper's scores.
    pub fn add(&mut self, scores: Scores) {
        self.sum.hr += scores.hr;
        self.sum.recall += scores.recall;
        self.sum.ndcg += scores.ndcg;
        self.count += 1;
    }

    /// The means (0 over no shoppers).
    pub fn mean(&self) -> Scores {
        let n = self.count.max(1) as f64;
        Scores {
            hr: self.sum.hr / n,
            recall: self.sum.recall / n,
            ndcg: self.sum.ndcg / n,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn known_values() {
        let truth: HashSet<&str> = ["a", "b", "c"].into();
        // Hits at positions 1 and 3 of 4; k = 3.
        let s = score(&["a", "x", "c", "b"], &truth, 3);
        assert_eq!(s.hr, 1.0);
        assert!(close(s.recall, 2.0 / 3.0));
        let dcg = 1.0 + 1.0 / 2f64.log2() * 0.0 + 1.0 / 4f64.log2();
        let ideal = 1.0 + 1.0 / 3f64.log2() + 1.0 / 4f64.log2();
        assert!(close(s.ndcg, dcg / ideal));
    }

    #[test]
    fn ideal_dcg_is_over_min_k_and_basket_size() {
        // One item basket, hit at position 2: ideal DCG is 1 (one position), DCG 1/log2(3).
        let truth: HashSet<&str> = ["b"].into();
        let s = score(&["a", "b"], &truth, 10);
        assert!(close(s.ndcg, 1.0 / 3f64.log2()));
        assert!(close(s.recall, 1.0));
        // A perfect list for a basket larger than k scores NDCG 1 but recall k / size.
        let big: HashSet<&str> = ["a", "b", "c", "d"].into();
        let s = score(&["a", "b"], &big, 2);
        assert!(close(s.ndcg, 1.0));
        assert!(close(s.recall, 0.5));
    }

    #[test]
    fn misses_and_empty_truth_score_zero() {
        let truth: HashSet<&str> = ["z"].into();
        assert_eq!(score(&["a", "b"], &truth, 10), Scores::default());
        assert_eq!(score(&["a"], &HashSet::new(), 10), Scores::default());
    }

    #[test]
    fn mean_over_shoppers() {
        let mut mean = Mean::default();
        mean.add(Scores {
            hr: 1.0,
            recall: 0.5,
            ndcg: 0.25,
        });
        mean.add(Scores::default());
        assert_eq!(mean.count, 2);
        assert_eq!(
            mean.mean(),
            Scores {
                hr: 0.5,
                recall: 0.25,
                ndcg: 0.125
            }
        );
    }
}
