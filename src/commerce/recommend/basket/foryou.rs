//! cuecast's "for you" next-basket model: a shopper's own repeat purchases (TIFU-KNN's
//! time-decayed, grouped user vector) blended with what their nearest shoppers bought recently
//! (UP-CF@r's asymmetric cosine with locality `q` over their last `r` baskets). The blend ranks
//! the shopper's full list; the neighbour part alone ranks the "new to you" list, where the
//! shopper's past products are left out. Both lists are computed at fit time, so a query is a
//! lookup (docs/recommendations.md has the evaluation that chose the defaults).

use std::collections::HashMap;
use std::sync::Arc;

use super::models::{Accumulator, ItemSets, Popularity, Sparse, recent_share, tifu_vector};
use super::{Baskets, ProductIx, Reason, Recommended, Scored};

/// The model's parameters. `Default` is the set tuned on the Instacart sample's validation split
/// (each shopper's second-to-last order).
#[derive(Debug, Clone, PartialEq)]
pub struct ForYouParams {
    /// Decay per basket of the own repeat vector (TIFU's r_b), 0–1.
    pub basket_decay: f64,
    /// Decay per group of the own repeat vector (TIFU's r_g), 0–1.
    pub group_decay: f64,
    /// Groups the shopper's baskets are split into (TIFU's m), ≥ 1.
    pub groups: usize,
    /// Neighbours: the most similar other shoppers (by asymmetric cosine) that vote.
    pub neighbours: usize,
    /// Asymmetry of the cosine (UP-CF's α): `|N_u∩N_v| / (|N_u|^α · |N_v|^(1−α))`.
    pub similarity_alpha: f64,
    /// Locality (UP-CF's q): a neighbour's vote is weighted by `sim^q`.
    pub locality: f64,
    /// A neighbour's vote for a product: the share of its last `recent` baskets holding it.
    pub recent: usize,
    /// Weight of the shopper's own repeat score against the neighbours' (0–1).
    pub own_weight: f64,
    /// Length of the list kept per shopper (answers longer than this are filled with popular
    /// products).
    pub keep: usize,
}

impl Default for ForYouParams {
    fn default() -> Self {
        ForYouParams {
            basket_decay: 0.9,
            group_decay: 0.7,
            groups: 3,
            neighbours: 100,
            similarity_alpha: 0.75,
            locality: 5.0,
            recent: 10,
            own_weight: 0.7,
            keep: 100,
        }
    }
}

/// One precomputed entry of a shopper's list.
#[derive(Debug, Clone)]
struct Entry {
    product: ProductIx,
    score: f64,
    /// Orders of the shopper holding it (0: new to them).
    times: u32,
}

/// One shopper's precomputed lists.
#[derive(Debug, Clone, Default)]
struct Lists {
    /// The blended ranking, best first.
    all: Vec<Entry>,
    /// Products new to the shopper, best first.
    new: Vec<Entry>,
    /// The shopper's past products, sorted.
    past: Vec<ProductIx>,
}

/// The fitted "for you" model: immutable, `Send + Sync`, answers from memory.
#[derive(Debug, Clone)]
pub struct ForYou {
    /// Shopper id → index in `lists`.
    users: HashMap<Arc<str>, usize>,
    /// Per shopper.
    lists: Vec<Lists>,
    /// Product ids by index.
    products: Vec<Arc<str>>,
    /// The most popular products, best first, with their basket counts.
    popular: Vec<(ProductIx, u32)>,
}

impl ForYou {
    /// Fits the model on every shopper of `data`.
    pub fn fit(data: &Baskets, params: &ForYouParams) -> ForYou {
        let keep = params.keep.max(1);
        let popularity = Popularity::new(data);
        let sets = ItemSets::new(data);
        let own: Vec<Sparse> = data
            .histories()
            .iter()
            .map(|h| {
                tifu_vector(
                    h,
                    params.basket_decay,
                    params.group_decay,
                    params.groups.max(1),
                )
            })
            .collect();
        let shares: Vec<Sparse> = data
            .histories()
            .iter()
            .map(|h| recent_share(h, params.recent))
            .collect();
        let mut acc = Accumulator::new(data.products());
        let mut scratch = Vec::new();
        let mut lists = Vec::with_capacity(data.users());
        for user in 0..data.users() {
            let neighbours = sets.neighbours(
                user,
                params.neighbours,
                params.similarity_alpha,
                false,
                &mut scratch,
            );
            let weights: Vec<(usize, f64)> = neighbours
                .into_iter()
                .map(|(other, sim)| (other, sim.powf(params.locality)))
                .collect();
            let total: f64 = weights.iter().map(|w| w.1).sum();
            if total > 0.0 {
                for &(other, weight) in &weights {
                    acc.add_scaled(&shares[other], weight / total);
                }
            }
            let neighbour = acc.take();
            let past = &sets.sets[user];
            let is_past = |p: ProductIx| past.binary_search(&p).is_ok();
            let new = popularity.top(&neighbour, keep, is_past);
            acc.add_scaled(&own[user], params.own_weight);
            acc.add_scaled(&neighbour, 1.0 - params.own_weight);
            let blended = acc.take();
            let all = popularity.top(&blended, keep, |_| false);
            let counts = super::models::purchase_counts(data.history(user));
            let times = |p: ProductIx| match counts.binary_search_by_key(&p, |c| c.0) {
                Ok(i) => counts[i].1,
                Err(_) => 0,
            };
            let entries = |ranked: Vec<(ProductIx, f64, bool)>| -> Vec<Entry> {
                ranked
                    .into_iter()
                    .filter(|r| !r.2)
                    .map(|(product, score, _)| Entry {
                        product,
                        score,
                        times: times(product),
                    })
                    .collect()
            };
            lists.push(Lists {
                all: entries(all),
                new: entries(new),
                past: past.clone(),
            });
        }
        let users = (0..data.users())
            .map(|user| (data.user_id(user).clone(), user))
            .collect();
        let products = (0..data.products() as ProductIx)
            .map(|p| data.product_id(p).clone())
            .collect();
        let popular = popularity
            .order
            .iter()
            .take(keep * 2)
            .map(|&p| (p, popularity.counts[p as usize]))
            .collect();
        ForYou {
            users,
            lists,
            products,
            popular,
        }
    }

    /// Top `limit` products for `user`: the products they are likely to buy next, repeat
    /// purchases included. An unknown user (or one with no baskets) gets the popular products
    /// with `fallback = true`.
    pub fn recommend(&self, user: &str, limit: usize) -> Recommended {
        self.answer(user, limit, false)
    }

    /// Top `limit` products `user` never bought, from the shoppers most like them (the
    /// "explore" setting of the evaluation). An unknown user gets the popular products with
    /// `fallback = true`.
    pub fn recommend_new(&self, user: &str, limit: usize) -> Recommended {
        self.answer(user, limit, true)
    }

    fn answer(&self, user: &str, limit: usize, new_only: bool) -> Recommended {
        let Some(lists) = self.users.get(user).map(|&ix| &self.lists[ix]) else {
            return Recommended {
                items: self.popular(limit, &[], &[]),
                fallback: true,
            };
        };
        let list = if new_only { &lists.new } else { &lists.all };
        let mut items: Vec<Scored> = list
            .iter()
            .take(limit)
            .map(|entry| Scored {
                product: self.products[entry.product as usize].clone(),
                score: entry.score,
                reason: if entry.times > 0 {
                    Reason::BuyAgain { times: entry.times }
                } else {
                    Reason::SimilarShoppers
                },
            })
            .collect();
        if items.len() < limit {
            let chosen: Vec<ProductIx> = list.iter().take(limit).map(|e| e.product).collect();
            let past: &[ProductIx] = if new_only { &lists.past } else { &[] };
            items.extend(self.popular(limit - items.len(), &chosen, past));
        }
        Recommended {
            items,
            fallback: false,
        }
    }

    /// Up to `limit` popular products, none of `chosen` or `past` (sorted).
    fn popular(&self, limit: usize, chosen: &[ProductIx], past: &[ProductIx]) -> Vec<Scored> {
        self.popular
            .iter()
            .filter(|(p, _)| !chosen.contains(p) && past.binary_search(p).is_err())
            .take(limit)
            .map(|&(product, count)| Scored {
                product: self.products[product as usize].clone(),
                score: count as f64,
                reason: Reason::Popular,
            })
            .collect()
    }

    /// Approximate heap size of the model, bytes.
    pub fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<Entry>();
        let ids: usize = self
            .products
            .iter()
            .map(|p| p.len() + 16 + std::mem::size_of::<Arc<str>>())
            .sum();
        let users: usize = self
            .users
            .keys()
            .map(|u| u.len() + 16 + std::mem::size_of::<(Arc<str>, usize)>() + 8)
            .sum();
        let lists: usize = self
            .lists
            .iter()
            .map(|l| {
                std::mem::size_of::<Lists>()
                    + (l.all.capacity() + l.new.capacity()) * entry
                    + l.past.capacity() * std::mem::size_of::<ProductIx>()
            })
            .sum();
        ids + users + lists + self.popular.capacity() * std::mem::size_of::<(ProductIx, u32)>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shop() -> Baskets {
        let mut data = Baskets::new();
        for _ in 0..4 {
            data.push("ann", ["coffee", "milk"]);
        }
        data.push("ann", ["coffee", "bread"]);
        data.push("bob", ["milk", "tea"]);
        data.push("bob", ["milk", "tea", "honey"]);
        data.push("cat", ["coffee", "milk", "sugar"]);
        data.push("cat", ["coffee", "sugar"]);
        data.push("dan", ["bananas"]);
        data.push("eve", ["bananas", "milk"]);
        data
    }

    #[test]
    fn a_shopper_who_buys_x_every_order_gets_x_first_to_buy_again() {
        let model = ForYou::fit(&shop(), &ForYouParams::default());
        let answer = model.recommend("ann", 3);
        assert!(!answer.fallback);
        assert_eq!(answer.items[0].product.as_ref(), "coffee");
        assert_eq!(answer.items[0].reason, Reason::BuyAgain { times: 5 });
        assert_eq!(
            answer.items[0].reason.to_string(),
            "you bought this 5 times"
        );
        assert_eq!(answer.items.len(), 3);
    }

    #[test]
    fn a_cold_shopper_gets_the_popular_products_as_fallback() {
        let model = ForYou::fit(&shop(), &ForYouParams::default());
        let answer = model.recommend("nobody", 2);
        assert!(answer.fallback);
        let products: Vec<&str> = answer.items.iter().map(|s| s.product.as_ref()).collect();
        assert_eq!(products, ["milk", "coffee"]); // 8 and 7 baskets
        assert!(answer.items.iter().all(|s| s.reason == Reason::Popular));
    }

    #[test]
    fn new_to_you_leaves_out_past_products_and_follows_similar_shoppers() {
        let model = ForYou::fit(&shop(), &ForYouParams::default());
        let answer = model.recommend_new("ann", 4);
        let products: Vec<&str> = answer.items.iter().map(|s| s.product.as_ref()).collect();
        for past in ["coffee", "milk", "bread"] {
            assert!(!products.contains(&past), "{past} in {products:?}");
        }
        // cat shares coffee and milk with ann: sugar comes first, voted by similar shoppers.
        assert_eq!(products[0], "sugar");
        assert_eq!(answer.items[0].reason, Reason::SimilarShoppers);
        assert_eq!(products.len(), 4);
    }

    #[test]
    fn short_lists_are_filled_with_popular_products_once() {
        let model = ForYou::fit(&shop(), &ForYouParams::default());
        let answer = model.recommend("dan", 5);
        let products: Vec<&str> = answer.items.iter().map(|s| s.product.as_ref()).collect();
        let mut unique = products.clone();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), products.len(), "{products:?}");
        assert_eq!(products[0], "bananas");
        assert_eq!(
            answer.items.last().map(|s| &s.reason),
            Some(&Reason::Popular)
        );
        assert!(!answer.fallback);
    }

    #[test]
    fn the_model_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ForYou>();
        assert!(ForYou::fit(&shop(), &ForYouParams::default()).memory_bytes() > 0);
    }
}
