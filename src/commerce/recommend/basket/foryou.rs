//! cuecast's "for you" next-basket model: a shopper's own repeat purchases (TIFU-KNN's
//! time-decayed, grouped user vector) blended with the others' score: what their nearest
//! shoppers bought recently (UP-CF@r's asymmetric cosine with locality `q` over their last `r`
//! baskets, each vote weighted by the product's trial share), what is often bought with the
//! shopper's recent products (item-to-item co-purchase) and what EASE's linear item-to-item
//! model rebuilds from everything the shopper bought ([`super::ease`]). The blend ranks the
//! shopper's full list, the own part weighted per shopper by how often they re-buy (their
//! repeat ratio), and
//! optionally smoothed by the TIFU-KNN neighbours' vectors (with the right parameters the full
//! list is TIFU-KNN's and the new-to-you list UP-CF@r's, so the validation grid holds both
//! baselines); the others' score alone ranks the "new to you" list, where the shopper's past
//! products are left out. The own part can add each product's repeat propensities: its
//! repeat hazard at the orders since the shopper last bought it (how often, over all shoppers,
//! it is bought again that many orders later) and the shopper's own re-purchase rate of it,
//! weighted by whether it is due (both on by default, chosen on validation). Recency-weighted
//! votes, rank fusion of votes and co-purchase, the products' buyer repeat share on the own
//! part and on the votes, and adaptive explore slots in the full list are options the
//! validation grid tries (off by default: they lost there). Both lists are computed at fit
//! time, so a query is a lookup (the evaluation that chose the defaults:
//! docs/recommendations.md, docs/benchmarks/recommend-eval.md). A query with a time
//! ([`ForYou::recommend_at`], the baskets pushed with their days) re-ranks the full list's past
//! products by their repeat hazards at the days since the shopper last bought them.

use std::collections::HashMap;
use std::sync::Arc;

use super::ease::Ease;
use super::models::{
    Accumulator, ItemSets, Popularity, Sparse, TifuKnn, decayed_share, purchase_counts, tifu_vector,
};
use super::{Baskets, ProductIx, Reason, Recommended, Scored};

/// The model's parameters. `Default` is the set tuned on the Instacart sample's three validation
/// folds (each shopper's three orders before the last, `cuecast recs eval --tune`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ForYouParams {
    /// Decay per basket of the own repeat vector (TIFU's r_b), 0–1.
    pub basket_decay: f64,
    /// Decay per group of the own repeat vector (TIFU's r_g), 0–1.
    pub group_decay: f64,
    /// Groups the shopper's baskets are split into (TIFU's m), ≥ 1.
    pub groups: usize,
    /// TIFU-KNN's neighbour smoothing of the own repeat vector: the shoppers nearest by
    /// Euclidean distance between repeat vectors (TIFU's k); 0 leaves the own vector alone.
    pub repeat_neighbours: usize,
    /// Weight of the shopper's own repeat vector against the mean of its `repeat_neighbours`
    /// (TIFU's α), 0–1; with `own_weight` 1 the full list is TIFU-KNN's.
    pub repeat_alpha: f64,
    /// Neighbours: the most similar other shoppers (by asymmetric cosine) that vote.
    pub neighbours: usize,
    /// Asymmetry of the cosine (UP-CF's α): `|N_u∩N_v| / (|N_u|^α · |N_v|^(1−α))`.
    pub similarity_alpha: f64,
    /// Locality (UP-CF's q): a neighbour's vote is weighted by `sim^q`.
    pub locality: f64,
    /// A neighbour's vote for a product: the share of its last `recent` baskets holding it.
    pub recent: usize,
    /// Recency within those `recent` baskets (of the neighbours' votes and of the shopper's own
    /// products co-purchase starts from): the last basket weighs 1, the one before
    /// `vote_decay`, then `vote_decay²`…; 1 weighs them alike (UP-CF@r's share).
    pub vote_decay: f64,
    /// How the neighbours' votes and co-purchase combine in the others' score: 0 adds their
    /// scores (each scaled to a maximum of 1, weighted by `item_weight`); a value c > 0 fuses
    /// their ranks instead (reciprocal rank fusion, `w / (c + rank)` from each, the weights as
    /// before).
    pub fusion: f64,
    /// Weight of the shopper's own repeat score against the others' (0–1); each part is
    /// scaled to a maximum of 1 per shopper first.
    pub own_weight: f64,
    /// Per-shopper switch between repeat and explore: the own weight of a shopper is
    /// `own_weight · ρ^repeat_switch`, ρ the share of their purchases (after their first order)
    /// that were repeats, from their training orders; 0 gives every shopper `own_weight`.
    pub repeat_switch: f64,
    /// Adaptive explore slots of the full list: a shopper's predicted number of new products
    /// in the next order, `(1 − ρ) ·` their mean basket size (ρ their repeat ratio), times
    /// `explore_slots`, rounded, is the least number of new products among the first
    /// [`SLOT_WINDOW`] entries (the best of the new-to-you list take the places of the last
    /// repeats there); 0 leaves the blend alone.
    pub explore_slots: f64,
    /// Within the others' part, the weight of item-to-item co-purchase (products often in the
    /// same order as the shopper's own, weighted by their repeat score) against the
    /// neighbours' votes (0–1).
    pub item_weight: f64,
    /// Co-purchased products kept per product for the item-to-item part.
    pub item_neighbours: usize,
    /// Power of each product's repeat rate (how often shoppers who bought it buy it again,
    /// over all shoppers) applied to the own repeat score: 0 ignores it.
    pub repeat_rate_power: f64,
    /// Weight of each product's repeat propensity (of the shoppers who bought it and had an
    /// order after, the share who bought it again; smoothed) added to
    /// the shopper's own repeat score (scaled to a maximum of 1) of the products they bought,
    /// before the own part is scaled to a maximum of 1 again: milk, re-bought by most of its
    /// buyers, outranks a birthday candle the shopper bought as often; 0 ignores it.
    pub item_propensity: f64,
    /// Weight of the shopper's own re-purchase rate of each of their products (of their orders
    /// after the first one holding it, the share holding it again), shrunk towards the
    /// product's repeat rate with 5 orders' worth of weight, added as
    /// `item_propensity` is; 0 ignores it.
    pub personal_propensity: f64,
    /// How much the personal re-purchase rate follows whether a product is due: it is
    /// multiplied by `min(x, 1/x)^due_power`, x the orders since the shopper last bought it (the
    /// next one included) over their mean orders between its purchases (only for products
    /// bought at least twice); 0 ignores it.
    pub due_power: f64,
    /// Weight of each product's repeat hazard (over every shopper, the share of orders holding
    /// it when it was last bought as many orders before as the shopper's next order is after
    /// their last purchase of it; by gap bucket, smoothed) added as `item_propensity` is: milk
    /// bought in the last order is due, a candle bought in the last order is not; 0 ignores
    /// it.
    pub hazard_weight: f64,
    /// Time-aware, at query time (a query with no time, or a shopper whose orders' days are
    /// unknown, leaves it out): weight of each product's repeat hazard by the *days* since the
    /// shopper last bought it, at the query's time ([`TimeHazards::by_days`]), added to the
    /// blended score of the shopper's past products in their list as `hazard_weight` adds the
    /// hazard by orders (times the shopper's own weight over their own part's maximum): milk
    /// bought 7 days ago is due, milk bought yesterday is not; 0 ignores it.
    pub day_hazard_weight: f64,
    /// Time-aware as `day_hazard_weight`: weight of each product's repeat hazard by the days
    /// since the shopper last bought it over their mean days between its purchases
    /// ([`TimeHazards::by_interval`]; a product they bought once has its own bucket): 0
    /// ignores it.
    pub interval_hazard_weight: f64,
    /// Power of each product's trial share (the share of its buyers who first bought it after
    /// their first order) applied to the neighbours' votes for new products: 0 ignores it.
    pub trial_share_power: f64,
    /// Power of each product's repeat propensity (as for `item_propensity`) applied to the
    /// neighbours' votes, as `trial_share_power` is: a new product its buyers go on buying is
    /// worth more in a next basket than one bought once; 0 ignores it.
    pub vote_propensity_power: f64,
    /// Weight of the EASE part of the others' score ([`Ease`]: the linear item-to-item model
    /// fitted on every shopper's products, each shopper's scores divided by their largest,
    /// positive scores only) added to the votes and co-purchase: 0 leaves it out.
    pub ease_weight: f64,
    /// EASE's regularisation λ (larger: smoother, more weight on popular products).
    pub ease_lambda: f64,
    /// Length of the list kept per shopper (answers longer than this are filled with popular
    /// products).
    pub keep: usize,
}

impl Default for ForYouParams {
    fn default() -> Self {
        // `cuecast recs eval --tune` on the Instacart sample (docs/benchmarks/recommend-eval.md).
        ForYouParams {
            basket_decay: 0.9,
            group_decay: 0.7,
            groups: 5,
            repeat_neighbours: 300,
            repeat_alpha: 0.9,
            neighbours: 100,
            similarity_alpha: 0.75,
            locality: 5.0,
            recent: 10,
            vote_decay: 1.0,
            fusion: 0.0,
            own_weight: 1.0,
            repeat_switch: 0.5,
            explore_slots: 0.0,
            item_weight: 0.4,
            item_neighbours: 50,
            repeat_rate_power: 0.0,
            item_propensity: 0.0,
            personal_propensity: 0.2,
            due_power: 1.0,
            hazard_weight: 0.0,
            day_hazard_weight: 0.4,
            interval_hazard_weight: 0.0,
            trial_share_power: 1.0,
            vote_propensity_power: 0.0,
            ease_weight: 0.5,
            ease_lambda: 200.0,
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
    /// For a new product that co-purchase recommends more than the neighbours do: the
    /// shopper's product it goes with.
    with: Option<ProductIx>,
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
    /// Per past product (in `past`'s order): the day the shopper last bought it and their mean
    /// days between its purchases (NaN: bought once, or days unknown).
    clock: Vec<(f32, f32)>,
    /// What a time-aware hazard is multiplied by before it is added to a blended score: the
    /// shopper's own weight over their own part's maximum (0: no day known).
    time_scale: f64,
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
    /// The products' repeat hazards by days, for the time-aware part.
    time: Arc<TimeHazards>,
    /// `day_hazard_weight` and `interval_hazard_weight`.
    time_weights: (f64, f64),
}

impl ForYou {
    /// Fits the model on every shopper of `data`.
    pub fn fit(data: &Baskets, params: &ForYouParams) -> ForYou {
        ForYou::fit_with(data, &mut Parts::new(data), params, Wanted::BOTH)
    }

    /// [`ForYou::fit`] reusing the parts of `parts` that `params` leaves unchanged (the
    /// validation grid fits many parameter sets on one split).
    pub(crate) fn fit_with(
        data: &Baskets,
        parts: &mut Parts,
        params: &ForYouParams,
        lists_wanted: Wanted,
    ) -> ForYou {
        parts.refresh(data, params);
        let Parts {
            popularity,
            sets,
            counts,
            spans,
            hazards,
            own,
            shares,
            copurchase,
            rates,
            others,
            repeat_ratios,
            time,
            ..
        } = &*parts;
        let empty = Copurchase::default();
        let copurchase = copurchase.as_ref().map_or(&empty, |c| &c.1);
        let keep = params.keep.max(1);
        let mut acc = Accumulator::new(data.products());
        let mut lists = Vec::with_capacity(data.users());
        for user in 0..data.users() {
            let (others, from_items) = &others.1[user];
            let past = &sets.sets[user];
            let is_past = |p: ProductIx| past.binary_search(&p).is_ok();
            let slots = explore_slots(data.history(user), repeat_ratios[user], params);
            let new = if lists_wanted.new || (lists_wanted.all && slots > 0) {
                popularity.ranked(others, keep, is_past)
            } else {
                Vec::new()
            };
            let own_scores = with_propensity(
                &own.1[user],
                &counts[user],
                &spans[user],
                data.history(user).len(),
                rates,
                hazards,
                params,
            );
            let own_max = max_value(&own_scores);
            let own_weight = params.own_weight * repeat_ratios[user].powf(params.repeat_switch);
            let (clock, time_scale) = if lists_wanted.all {
                let clock = past_clock(data.days(user), &counts[user], &spans[user]);
                let known = clock.iter().any(|c| c.0.is_finite());
                (clock, if known { own_weight / own_max } else { 0.0 })
            } else {
                (Vec::new(), 0.0)
            };
            for &(product, value) in own_scores.iter() {
                let rate = rates[product as usize]
                    .repeat
                    .powf(params.repeat_rate_power);
                acc.add(product, rate * value * own_weight / own_max);
            }
            acc.add_scaled(others, 1.0 - own_weight);
            let blended = acc.take();
            let all = if lists_wanted.all {
                with_slots(
                    popularity.ranked(&blended, keep, |_| false),
                    &new,
                    slots,
                    is_past,
                )
            } else {
                Vec::new()
            };
            let new = if lists_wanted.new { new } else { Vec::new() };
            let counts = &counts[user];
            let times = |p: ProductIx| match counts.binary_search_by_key(&p, |c| c.0) {
                Ok(i) => counts[i].1,
                Err(_) => 0,
            };
            let entries = |ranked: Sparse| -> Vec<Entry> {
                ranked
                    .into_iter()
                    .map(|(product, score)| {
                        let times = times(product);
                        let from_items = from_items.binary_search(&product).is_ok();
                        let with = (times == 0 && from_items)
                            .then(|| copurchase.strongest(&shares.1[user], product))
                            .flatten();
                        Entry {
                            product,
                            score,
                            times,
                            with,
                        }
                    })
                    .collect()
            };
            lists.push(Lists {
                all: entries(all),
                new: entries(new),
                past: past.clone(),
                clock,
                time_scale,
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
            time: Arc::clone(time),
            time_weights: (params.day_hazard_weight, params.interval_hazard_weight),
        }
    }

    /// Top `limit` products for `user`: the products they are likely to buy next, repeat
    /// purchases included. An unknown user (or one with no baskets) gets the popular products
    /// with `fallback = true`.
    pub fn recommend(&self, user: &str, limit: usize) -> Recommended {
        self.answer(user, limit, false, None)
    }

    /// [`ForYou::recommend`] at `now` (a day on the clock of the days the baskets were pushed
    /// with, [`Baskets::push_at`]; the server's: Unix days): the shopper's past products are
    /// re-ranked by how due they are after the days since they last bought them
    /// ([`ForYouParams::day_hazard_weight`], [`ForYouParams::interval_hazard_weight`]). `None`,
    /// or a shopper whose days are unknown, is [`ForYou::recommend`].
    pub fn recommend_at(&self, user: &str, limit: usize, now: Option<f64>) -> Recommended {
        self.answer(user, limit, false, now)
    }

    /// Whether a query's time changes answers (a time-aware weight is on).
    pub fn is_timed(&self) -> bool {
        self.time_weights.0 > 0.0 || self.time_weights.1 > 0.0
    }

    /// Top `limit` products `user` never bought, from the shoppers most like them (the
    /// "explore" setting of the evaluation). An unknown user gets the popular products with
    /// `fallback = true`.
    pub fn recommend_new(&self, user: &str, limit: usize) -> Recommended {
        self.answer(user, limit, true, None)
    }

    fn answer(&self, user: &str, limit: usize, new_only: bool, now: Option<f64>) -> Recommended {
        let Some(lists) = self.users.get(user).map(|&ix| &self.lists[ix]) else {
            return Recommended {
                items: self.popular(limit, &[], &[]),
                fallback: true,
            };
        };
        let timed = match now {
            Some(now) if !new_only && self.is_timed() && lists.time_scale > 0.0 => {
                Some(self.at_time(lists, now))
            }
            _ => None,
        };
        let list = match (&timed, new_only) {
            (Some(timed), _) => timed,
            (None, true) => &lists.new,
            (None, false) => &lists.all,
        };
        let mut items: Vec<Scored> = list
            .iter()
            .take(limit)
            .map(|entry| Scored {
                product: self.products[entry.product as usize].clone(),
                score: entry.score,
                reason: match (entry.times, entry.with) {
                    (0, Some(with)) => Reason::BoughtWith {
                        product: self.products[with as usize].clone(),
                    },
                    (0, None) => Reason::SimilarShoppers,
                    (times, _) => Reason::BuyAgain { times },
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

    /// The shopper's full list at day `now`: each past product's score plus its time-aware
    /// hazards, weighted and scaled ([`Lists::time_scale`]), re-sorted (ties keep their order).
    fn at_time(&self, lists: &Lists, now: f64) -> Vec<Entry> {
        let (by_days, by_interval) = self.time_weights;
        let mut list = lists.all.clone();
        for entry in &mut list {
            if entry.times == 0 {
                continue;
            }
            let Ok(i) = lists.past.binary_search(&entry.product) else {
                continue;
            };
            let (last, interval) = lists.clock[i];
            if !last.is_finite() {
                continue;
            }
            let since = (now - f64::from(last)).max(0.0);
            let product = entry.product as usize;
            let hazard = by_days * self.time.by_days(product, since)
                + by_interval * self.time.by_interval(product, since, f64::from(interval));
            entry.score += lists.time_scale * hazard;
        }
        list.sort_by(|a, b| b.score.total_cmp(&a.score));
        list
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
                    + l.clock.capacity() * std::mem::size_of::<(f32, f32)>()
            })
            .sum();
        ids + users
            + lists
            + self.popular.capacity() * std::mem::size_of::<(ProductIx, u32)>()
            + self.time.memory_bytes()
    }
}

/// Which lists a fit computes (a validation stage scores only one of them; the other is left
/// empty, so its answers are all popular filler).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Wanted {
    /// The blended list ([`ForYou::recommend`]).
    pub(crate) all: bool,
    /// The new-to-you list ([`ForYou::recommend_new`]).
    pub(crate) new: bool,
}

impl Wanted {
    /// Both lists, as the server needs.
    pub(crate) const BOTH: Wanted = Wanted {
        all: true,
        new: true,
    };
}

/// What a fit is assembled from, each piece with the parameters it was built with, so that a
/// fit with other parameters rebuilds only what they change.
pub(crate) struct Parts {
    popularity: Popularity,
    sets: ItemSets,
    /// Per shopper, `(product, orders holding it)`, sorted.
    counts: Vec<Vec<(ProductIx, u32)>>,
    /// Per shopper, `(product, first, last)`: the indices of the first and last orders holding
    /// it, in `counts`' order ([`spans`]).
    spans: Vec<Vec<Span>>,
    /// Per product, its repeat hazard by orders since the last purchase ([`repeat_hazards`]).
    hazards: Vec<[f64; GAP_BUCKETS]>,
    /// Own repeat scores (TIFU's vector, smoothed by its nearest shoppers' when
    /// `repeat_neighbours` > 0), for (basket_decay, group_decay, groups, repeat_neighbours,
    /// repeat_alpha).
    own: (OwnKey, Vec<Sparse>),
    /// Neighbour votes: the (decayed) share of the last `recent` baskets, for (recent,
    /// vote_decay's bits).
    shares: ((usize, u64), Vec<Sparse>),
    /// Per shopper, every other shopper sharing a product, most similar first, for
    /// `similarity_alpha`.
    neighbours: (f64, Vec<Vec<(usize, f64)>>),
    /// Item-to-item lists, for `item_neighbours` (built once an item weight asks for them).
    copurchase: Option<(usize, Copurchase)>,
    /// EASE, for `ease_lambda`'s bits (built once an EASE weight asks for it; `None` inside
    /// when the fit failed, which leaves the part out).
    ease: Option<(u64, Option<Ease>)>,
    /// Per product, its repeat rates and trial share ([`item_rates`]).
    rates: Vec<ItemRates>,
    /// Per shopper, the others' score (neighbour votes, co-purchase and EASE, each scaled to a
    /// maximum of 1) and the products, sorted, co-purchase recommends more than the neighbours
    /// do; for the parameters of [`OthersKey`].
    others: (Option<OthersKey>, Vec<(Sparse, Vec<ProductIx>)>),
    /// Per shopper, the share of repeat purchases ([`repeat_ratios`]).
    repeat_ratios: Vec<f64>,
    /// Per product, its repeat hazards by days ([`TimeHazards`]).
    time: Arc<TimeHazards>,
}

impl Parts {
    /// The parameter-free parts; [`Parts::refresh`] builds the rest.
    pub(crate) fn new(data: &Baskets) -> Parts {
        Parts {
            popularity: Popularity::new(data),
            sets: ItemSets::new(data),
            counts: data
                .histories()
                .iter()
                .map(|h| purchase_counts(h))
                .collect(),
            spans: data.histories().iter().map(|h| spans(h)).collect(),
            hazards: repeat_hazards(data),
            own: ((f64::NAN, f64::NAN, 0, 0, f64::NAN), Vec::new()),
            shares: ((0, 0), Vec::new()),
            neighbours: (f64::NAN, Vec::new()),
            copurchase: None,
            ease: None,
            rates: item_rates(data),
            others: (None, Vec::new()),
            repeat_ratios: repeat_ratios(data),
            time: Arc::new(TimeHazards::new(data)),
        }
    }

    /// Rebuilds the parts `params` changes.
    fn refresh(&mut self, data: &Baskets, params: &ForYouParams) {
        let own_key = (
            params.basket_decay,
            params.group_decay,
            params.groups.max(1),
            params.repeat_neighbours,
            params.repeat_alpha,
        );
        // A bitwise key: NaN marks "not built yet".
        let same = |a: &OwnKey, b: &OwnKey| {
            (a.0.to_bits(), a.1.to_bits(), a.2, a.3, a.4.to_bits())
                == (b.0.to_bits(), b.1.to_bits(), b.2, b.3, b.4.to_bits())
        };
        if !same(&self.own.0, &own_key) {
            let (rb, rg, m, k, alpha) = own_key;
            let vectors = if k == 0 {
                data.histories()
                    .iter()
                    .map(|h| tifu_vector(h, rb, rg, m))
                    .collect()
            } else {
                let model = TifuKnn::fit(data, rb, rg, m, k, alpha);
                let mut acc = Accumulator::new(data.products());
                (0..data.users())
                    .map(|user| {
                        let mut scores = model.scores(user, &mut acc);
                        scores.sort_unstable_by_key(|s| s.0);
                        scores
                    })
                    .collect()
            };
            self.own = (own_key, vectors);
        }
        let shares_key = (params.recent, params.vote_decay.to_bits());
        if self.shares.0 != shares_key || self.shares.1.is_empty() {
            let shares = data
                .histories()
                .iter()
                .map(|h| decayed_share(h, params.recent, params.vote_decay))
                .collect();
            self.shares = (shares_key, shares);
        }
        if self.neighbours.0 != params.similarity_alpha {
            let mut scratch = Vec::new();
            let lists = (0..data.users())
                .map(|user| {
                    self.sets.neighbours(
                        user,
                        usize::MAX,
                        params.similarity_alpha,
                        false,
                        &mut scratch,
                    )
                })
                .collect();
            self.neighbours = (params.similarity_alpha, lists);
        }
        let wanted = params.item_weight > 0.0;
        if wanted
            && self
                .copurchase
                .as_ref()
                .is_none_or(|c| c.0 != params.item_neighbours)
        {
            let lists = Copurchase::new(data, &self.popularity, params.item_neighbours);
            self.copurchase = Some((params.item_neighbours, lists));
        }
        if params.ease_weight > 0.0
            && self
                .ease
                .as_ref()
                .is_none_or(|e| e.0 != params.ease_lambda.to_bits())
        {
            let ease = match Ease::fit(&self.sets, params.ease_lambda, EASE_MAX_DIM) {
                Ok(ease) => Some(ease),
                Err(error) => {
                    tracing::warn!(%error, "for-you: EASE part left out");
                    None
                }
            };
            self.ease = Some((params.ease_lambda.to_bits(), ease));
        }
        let others_key = OthersKey::of(params);
        if self.others.0.as_ref() != Some(&others_key) {
            self.others = (Some(others_key), self.others_scores(data, params));
        }
    }

    /// Per shopper, the others' score and the products co-purchase recommends more than the
    /// neighbours do (the shopper's own products included; the lists leave them out or not).
    fn others_scores(
        &self,
        data: &Baskets,
        params: &ForYouParams,
    ) -> Vec<(Sparse, Vec<ProductIx>)> {
        let empty = Copurchase::default();
        let copurchase = self.copurchase.as_ref().map_or(&empty, |c| &c.1);
        let mut acc = Accumulator::new(data.products());
        let mut votes = Accumulator::new(data.products());
        let mut together = Accumulator::new(data.products());
        let mut linear = Accumulator::new(data.products());
        let ease = match &self.ease {
            Some((_, Some(ease))) if params.ease_weight > 0.0 => Some(ease),
            _ => None,
        };
        (0..data.users())
            .map(|user| {
                for &(other, sim) in self.neighbours.1[user].iter().take(params.neighbours) {
                    votes.add_scaled(&self.shares.1[other], sim.powf(params.locality));
                }
                if params.item_weight > 0.0 {
                    for &(product, weight) in &self.shares.1[user] {
                        together.add_scaled(copurchase.of(product), weight);
                    }
                }
                // The votes, each times its product's trial share, and co-purchase, each
                // divided by its largest raw value, or their reciprocal ranks divided by the
                // largest.
                let (mut votes_max, mut together_max) = (votes.max(), together.max());
                let mut voted: Sparse = votes
                    .entries()
                    .map(|(product, value)| {
                        let rates = self.rates[product as usize];
                        let trial = rates.trial.powf(params.trial_share_power)
                            * rates.propensity.powf(params.vote_propensity_power);
                        (product, trial * value)
                    })
                    .collect();
                let mut items: Sparse = together.entries().collect();
                together.clear();
                if params.fusion > 0.0 {
                    voted = reciprocal_ranks(&self.popularity, &voted, params.fusion);
                    items = reciprocal_ranks(&self.popularity, &items, params.fusion);
                    (votes_max, together_max) = (max_value(&voted), max_value(&items));
                }
                for &(product, value) in &voted {
                    acc.add(product, value * (1.0 - params.item_weight) / votes_max);
                }
                let mut from_items = Vec::new();
                for (product, value) in items {
                    let item = value * params.item_weight / together_max;
                    // The reason: co-purchase is the larger part (against the raw votes, trial
                    // share left out, in the score blend).
                    let voted = if params.fusion > 0.0 {
                        acc.get(product)
                    } else {
                        (1.0 - params.item_weight) * votes.get(product) / votes_max
                    };
                    if item > voted {
                        from_items.push(product);
                    }
                    acc.add(product, item);
                }
                votes.clear();
                if let Some(ease) = ease {
                    ease.scores(&self.sets, user, &mut linear);
                    let max = linear.max();
                    for (product, value) in linear.entries() {
                        if value > 0.0 {
                            acc.add(product, params.ease_weight * value / max);
                        }
                    }
                    linear.clear();
                }
                from_items.sort_unstable();
                (acc.take(), from_items)
            })
            .collect()
    }
}

/// The parameters the others' score is built with (bitwise, so that it can be compared):
/// neighbours, similarity alpha, locality, recent, item weight, item neighbours, trial share
/// power, vote decay, fusion, vote propensity power, EASE weight, EASE λ.
#[derive(Debug, Clone, PartialEq, Eq)]
struct OthersKey([u64; 12]);

impl OthersKey {
    fn of(params: &ForYouParams) -> OthersKey {
        OthersKey([
            params.neighbours as u64,
            params.similarity_alpha.to_bits(),
            params.locality.to_bits(),
            params.recent as u64,
            params.item_weight.to_bits(),
            params.item_neighbours as u64,
            params.trial_share_power.to_bits(),
            params.vote_decay.to_bits(),
            params.fusion.to_bits(),
            params.vote_propensity_power.to_bits(),
            params.ease_weight.to_bits(),
            params.ease_lambda.to_bits(),
        ])
    }
}

/// What the own repeat scores are built with: basket decay, group decay, groups, repeat
/// neighbours, repeat alpha.
type OwnKey = (f64, f64, usize, usize, f64);

/// The largest system EASE solves (shoppers or products, whichever is fewer; above it, the
/// products with the most buyers): a dense `n × n` inverse, `n³` work, 72 MB at 3,000.
const EASE_MAX_DIM: usize = 3000;

/// Smoothing of [`item_rates`], [`repeat_ratios`] and the personal re-purchase rates of
/// [`with_propensity`]: this many pseudo-observations at the prior rate.
const RATE_PRIOR: f64 = 5.0;

/// How much a product is bought again, over every shopper's training orders, each rate
/// smoothed towards its value over all products with [`RATE_PRIOR`] pseudo-observations.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct ItemRates {
    /// Of the orders after a shopper's first purchase of it, the share holding it again.
    pub(crate) repeat: f64,
    /// Of its buyers, the share who first bought it after their first order.
    pub(crate) trial: f64,
    /// Its repeat propensity: of its buyers who had an order after their first purchase of
    /// it, the share who bought it again.
    pub(crate) propensity: f64,
}

/// [`ItemRates`] of every product of `data`.
pub(crate) fn item_rates(data: &Baskets) -> Vec<ItemRates> {
    #[derive(Clone, Copy, Default)]
    struct Sums {
        repeats: f64,
        opportunities: f64,
        trial_buyers: f64,
        buyers: f64,
        rebuyers: f64,
        could_rebuy: f64,
    }
    let mut sums = vec![Sums::default(); data.products()];
    for history in data.histories() {
        let counts = purchase_counts(history);
        for (&(product, count), &(_, first, _)) in counts.iter().zip(&spans(history)) {
            let entry = &mut sums[product as usize];
            let after = (history.len() - 1 - first as usize) as f64;
            entry.repeats += f64::from(count - 1);
            entry.opportunities += after;
            entry.buyers += 1.0;
            if first > 0 {
                entry.trial_buyers += 1.0;
            }
            if after > 0.0 {
                entry.could_rebuy += 1.0;
                if count > 1 {
                    entry.rebuyers += 1.0;
                }
            }
        }
    }
    let total = sums.iter().fold(Sums::default(), |a, s| Sums {
        repeats: a.repeats + s.repeats,
        opportunities: a.opportunities + s.opportunities,
        trial_buyers: a.trial_buyers + s.trial_buyers,
        buyers: a.buyers + s.buyers,
        rebuyers: a.rebuyers + s.rebuyers,
        could_rebuy: a.could_rebuy + s.could_rebuy,
    });
    let repeat = total.repeats / total.opportunities.max(1.0);
    let trial = total.trial_buyers / total.buyers.max(1.0);
    let propensity = total.rebuyers / total.could_rebuy.max(1.0);
    let smooth = |hits: f64, of: f64, prior: f64| (hits + RATE_PRIOR * prior) / (of + RATE_PRIOR);
    sums.iter()
        .map(|s| ItemRates {
            repeat: smooth(s.repeats, s.opportunities, repeat),
            trial: smooth(s.trial_buyers, s.buyers, trial),
            propensity: smooth(s.rebuyers, s.could_rebuy, propensity),
        })
        .collect()
}

/// A product of a shopper's history: the product, the indices of the first and the last of
/// their orders holding it.
type Span = (ProductIx, u32, u32);

/// Per product of `history`, sorted by product (as [`purchase_counts`]): its [`Span`].
fn spans(history: &[Vec<ProductIx>]) -> Vec<Span> {
    let mut spans: std::collections::BTreeMap<ProductIx, (u32, u32)> = Default::default();
    for (b, basket) in history.iter().enumerate() {
        for &product in basket {
            spans
                .entry(product)
                .and_modify(|s| s.1 = b as u32)
                .or_insert((b as u32, b as u32));
        }
    }
    spans.into_iter().map(|(p, (f, l))| (p, f, l)).collect()
}

/// A shopper's own repeat score `own` with the repeat propensities of the parameters: `own`
/// scaled to a maximum of 1, plus, for each product the shopper bought (`counts` and `spans`,
/// from their `orders` orders), `item_propensity ·` its [`ItemRates::propensity`]
/// `+ personal_propensity ·` their own re-purchase rate of it (orders after the first holding it
/// again, smoothed towards the product's [`ItemRates::repeat`] with [`RATE_PRIOR`] orders; times
/// how due it is, `min(x, 1/x)^due_power`) `+ hazard_weight ·` the product's repeat hazard at the
/// orders since the shopper last bought it ([`repeat_hazards`]). All weights 0 leave `own` as
/// it is.
fn with_propensity<'a>(
    own: &'a [(ProductIx, f64)],
    counts: &[(ProductIx, u32)],
    spans: &[Span],
    orders: usize,
    rates: &[ItemRates],
    hazards: &[[f64; GAP_BUCKETS]],
    params: &ForYouParams,
) -> std::borrow::Cow<'a, [(ProductIx, f64)]> {
    if params.item_propensity <= 0.0
        && params.personal_propensity <= 0.0
        && params.hazard_weight <= 0.0
    {
        return std::borrow::Cow::Borrowed(own);
    }
    let own_max = max_value(own);
    let mut out: Sparse = own.iter().map(|&(p, v)| (p, v / own_max)).collect();
    out.sort_unstable_by_key(|e| e.0);
    for (&(product, count), &(_, first, last)) in counts.iter().zip(spans) {
        let rates = rates[product as usize];
        let after = orders.saturating_sub(1 + first as usize) as f64;
        let mut personal =
            (f64::from(count.saturating_sub(1)) + RATE_PRIOR * rates.repeat) / (after + RATE_PRIOR);
        if count > 1 && params.due_power > 0.0 {
            // Orders between purchases, on average, against orders since the last one (the
            // next order included): 1 when it is due.
            let interval = f64::from(last - first) / f64::from(count - 1);
            let since = orders.saturating_sub(last as usize) as f64;
            let ratio = since / interval;
            personal *= ratio.min(1.0 / ratio).powf(params.due_power);
        }
        let hazard = hazards[product as usize][gap_bucket(orders.saturating_sub(last as usize))];
        let extra = params.item_propensity * rates.propensity
            + params.personal_propensity * personal
            + params.hazard_weight * hazard;
        match out.binary_search_by_key(&product, |e| e.0) {
            Ok(i) => out[i].1 += extra,
            Err(i) => out.insert(i, (product, extra)),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Buckets of orders since a product's last purchase ([`gap_bucket`]).
pub(crate) const GAP_BUCKETS: usize = 8;

/// The bucket of `gap` orders since the last purchase (1: bought in the order just before):
/// 1, 2, 3, 4, 5–6, 7–9, 10–14, 15 or more.
fn gap_bucket(gap: usize) -> usize {
    match gap {
        0..=4 => gap.saturating_sub(1),
        5..=6 => 4,
        7..=9 => 5,
        10..=14 => 6,
        _ => 7,
    }
}

/// Per product, its repeat hazard by [`gap_bucket`]: over every shopper's orders after their
/// first, for each product they had bought before, whether the order holds it again, counted
/// by the orders since they last bought it; each bucket's share smoothed towards the bucket's
/// share over all products with [`RATE_PRIOR`] pseudo-observations.
pub(crate) fn repeat_hazards(data: &Baskets) -> Vec<[f64; GAP_BUCKETS]> {
    // Per product and bucket: (orders holding it again, orders).
    let mut sums = vec![[(0.0f64, 0.0f64); GAP_BUCKETS]; data.products()];
    let mut last: HashMap<ProductIx, usize> = HashMap::new();
    for history in data.histories() {
        last.clear();
        for (t, basket) in history.iter().enumerate() {
            for (&product, &l) in &last {
                let entry = &mut sums[product as usize][gap_bucket(t - l)];
                entry.1 += 1.0;
                if basket.binary_search(&product).is_ok() {
                    entry.0 += 1.0;
                }
            }
            for &product in basket {
                last.insert(product, t);
            }
        }
    }
    smoothed(&sums)
}

/// Buckets of days since a product's last purchase ([`day_bucket`]).
pub(crate) const DAY_BUCKETS: usize = 15;

/// The bucket of `days` since the last purchase: 0 (the same day), 1, 2, 3, 4–5, 6–7, 8–9,
/// 10–13, 14–17, 18–24, 25–31, 32–45, 46–60, 61–90, more (fractions round down).
fn day_bucket(days: f64) -> usize {
    const UPPER: [f64; DAY_BUCKETS - 1] = [
        1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 10.0, 14.0, 18.0, 25.0, 32.0, 46.0, 61.0, 91.0,
    ];
    UPPER.iter().take_while(|&&upper| days >= upper).count()
}

/// Buckets of the days since a product's last purchase over the shopper's mean days between
/// its purchases ([`interval_bucket`]), the last one for a product bought once.
pub(crate) const INTERVAL_BUCKETS: usize = 12;

/// Mean days between purchases are taken as at least this (two orders on the same day).
const MIN_INTERVAL_DAYS: f64 = 1.0;

/// The bucket of `since` days against a mean of `interval` days between purchases (NaN:
/// bought once): ratios below .25, .5, .75, .9, 1.1, 1.35, 1.75, 2.5, 4, 7, more; then once.
fn interval_bucket(since: f64, interval: f64) -> usize {
    const UPPER: [f64; INTERVAL_BUCKETS - 2] =
        [0.25, 0.5, 0.75, 0.9, 1.1, 1.35, 1.75, 2.5, 4.0, 7.0];
    if !interval.is_finite() {
        return INTERVAL_BUCKETS - 1;
    }
    let ratio = since / interval.max(MIN_INTERVAL_DAYS);
    UPPER.iter().take_while(|&&upper| ratio >= upper).count()
}

/// Per product, its repeat hazards on the shoppers' clocks, from the training orders whose days
/// are known: over every order of a shopper after their first, for each product they had
/// bought before, whether the order holds it again, counted by the days since they last bought
/// it ([`day_bucket`]) and by those days over their mean days between its purchases so far
/// ([`interval_bucket`]); each bucket's share smoothed towards the bucket's share over all
/// products with [`RATE_PRIOR`] pseudo-observations.
#[derive(Debug, Default)]
pub(crate) struct TimeHazards {
    days: Vec<[f32; DAY_BUCKETS]>,
    intervals: Vec<[f32; INTERVAL_BUCKETS]>,
}

impl TimeHazards {
    /// The hazards of `data`'s products (0 everywhere when no day is known).
    pub(crate) fn new(data: &Baskets) -> TimeHazards {
        let n = data.products();
        let mut days = vec![[(0.0f64, 0.0f64); DAY_BUCKETS]; n];
        let mut intervals = vec![[(0.0f64, 0.0f64); INTERVAL_BUCKETS]; n];
        // Per product bought so far: first day, last day, orders holding it.
        let mut seen: HashMap<ProductIx, (f64, f64, u32)> = HashMap::new();
        for (user, history) in data.histories().iter().enumerate() {
            seen.clear();
            for (basket, day) in history.iter().zip(data.days(user)) {
                // The clock stops at the first unknown day.
                let Some(day) = *day else {
                    break;
                };
                for (&product, &(first, last, count)) in &seen {
                    let since = (day - last).max(0.0);
                    let interval = if count > 1 {
                        (last - first) / f64::from(count - 1)
                    } else {
                        f64::NAN
                    };
                    let hit = f64::from(u8::from(basket.binary_search(&product).is_ok()));
                    let d = &mut days[product as usize][day_bucket(since)];
                    *d = (d.0 + hit, d.1 + 1.0);
                    let i = &mut intervals[product as usize][interval_bucket(since, interval)];
                    *i = (i.0 + hit, i.1 + 1.0);
                }
                for &product in basket {
                    seen.entry(product)
                        .and_modify(|s| {
                            s.1 = day;
                            s.2 += 1;
                        })
                        .or_insert((day, day, 1));
                }
            }
        }
        TimeHazards {
            days: narrow(smoothed(&days)),
            intervals: narrow(smoothed(&intervals)),
        }
    }

    /// `product`'s hazard `since` days after its last purchase.
    pub(crate) fn by_days(&self, product: usize, since: f64) -> f64 {
        self.days
            .get(product)
            .map_or(0.0, |h| f64::from(h[day_bucket(since)]))
    }

    /// `product`'s hazard `since` days after its last purchase, the shopper's mean days between
    /// its purchases being `interval` (NaN: bought once).
    pub(crate) fn by_interval(&self, product: usize, since: f64, interval: f64) -> f64 {
        self.intervals
            .get(product)
            .map_or(0.0, |h| f64::from(h[interval_bucket(since, interval)]))
    }

    fn memory_bytes(&self) -> usize {
        self.days.capacity() * std::mem::size_of::<[f32; DAY_BUCKETS]>()
            + self.intervals.capacity() * std::mem::size_of::<[f32; INTERVAL_BUCKETS]>()
    }
}

/// The time hazards are kept as `f32` (half the memory; a hazard needs no more).
fn narrow<const B: usize>(hazards: Vec<[f64; B]>) -> Vec<[f32; B]> {
    hazards.into_iter().map(|h| h.map(|v| v as f32)).collect()
}

/// Per product, each bucket's share `(hits, observations)` smoothed towards the bucket's share
/// over all products with [`RATE_PRIOR`] pseudo-observations.
fn smoothed<const B: usize>(sums: &[[(f64, f64); B]]) -> Vec<[f64; B]> {
    let mut global = [(0.0f64, 0.0f64); B];
    for product in sums {
        for (g, s) in global.iter_mut().zip(product) {
            g.0 += s.0;
            g.1 += s.1;
        }
    }
    let prior = global.map(|g| g.0 / g.1.max(1.0));
    sums.iter()
        .map(|product| {
            let mut out = [0.0; B];
            for (b, s) in product.iter().enumerate() {
                out[b] = (s.0 + RATE_PRIOR * prior[b]) / (s.1 + RATE_PRIOR);
            }
            out
        })
        .collect()
}

/// Per product of a shopper's history (`counts` and `spans`' order), the day of its last
/// purchase and the mean days between its purchases (NaN when bought once; both NaN when a
/// day is unknown).
fn past_clock(
    days: &[Option<f64>],
    counts: &[(ProductIx, u32)],
    spans: &[Span],
) -> Vec<(f32, f32)> {
    counts
        .iter()
        .zip(spans)
        .map(|(&(_, count), &(_, first, last))| {
            let day = |b: u32| days.get(b as usize).copied().flatten();
            match (day(first), day(last)) {
                (Some(first), Some(last)) => {
                    let interval = if count > 1 {
                        (last - first) / f64::from(count - 1)
                    } else {
                        f64::NAN
                    };
                    (last as f32, interval as f32)
                }
                _ => (f32::NAN, f32::NAN),
            }
        })
        .collect()
}

/// Per shopper: of the products in their orders after the first, the share they had bought
/// before, smoothed towards the share over all shoppers with [`RATE_PRIOR`] orders' worth of
/// purchases (a shopper with one order gets about the global share).
fn repeat_ratios(data: &Baskets) -> Vec<f64> {
    let mut seen = std::collections::HashSet::new();
    let counts: Vec<(f64, f64, f64)> = data
        .histories()
        .iter()
        .map(|history| {
            seen.clear();
            let (mut repeats, mut slots) = (0.0, 0.0);
            for (b, basket) in history.iter().enumerate() {
                for &product in basket {
                    if b > 0 {
                        slots += 1.0;
                        if seen.contains(&product) {
                            repeats += 1.0;
                        }
                    }
                }
                seen.extend(basket.iter().copied());
            }
            let per_order = slots / history.len().saturating_sub(1).max(1) as f64;
            (repeats, slots, per_order)
        })
        .collect();
    let total = counts
        .iter()
        .fold((0.0, 0.0), |a, c| (a.0 + c.0, a.1 + c.1));
    let global = total.0 / total.1.max(1.0);
    counts
        .iter()
        .map(|&(repeats, slots, per_order)| {
            let prior = RATE_PRIOR * per_order.max(1.0);
            (repeats + prior * global) / (slots + prior)
        })
        .collect()
}

/// The first entries of the full list at least a shopper's explore slots are kept for: the
/// length of the lists the evaluation scores (its K) and of a for-you carousel.
pub const SLOT_WINDOW: usize = 10;

/// A shopper's explore slots ([`ForYouParams::explore_slots`]): `explore_slots · (1 − ρ) ·`
/// their mean basket size, rounded, at most [`SLOT_WINDOW`].
fn explore_slots(history: &[Vec<ProductIx>], repeat_ratio: f64, params: &ForYouParams) -> usize {
    if params.explore_slots <= 0.0 || history.is_empty() {
        return 0;
    }
    let size = history.iter().map(Vec::len).sum::<usize>() as f64 / history.len() as f64;
    let slots = (params.explore_slots * (1.0 - repeat_ratio).max(0.0) * size).round();
    (slots as usize).min(SLOT_WINDOW)
}

/// The full list `all` (best first) with at least `slots` new products (not `is_past`) among
/// its first [`SLOT_WINDOW`] entries: the best of `new` not already there take the places of
/// the last past products in the window (which move down just after it). Each position keeps
/// its score, so scores still fall along the list.
fn with_slots(
    all: Vec<(ProductIx, f64)>,
    new: &[(ProductIx, f64)],
    slots: usize,
    is_past: impl Fn(ProductIx) -> bool,
) -> Vec<(ProductIx, f64)> {
    let window = all.len().min(SLOT_WINDOW);
    let present = all[..window].iter().filter(|e| !is_past(e.0)).count();
    let mut wanted = slots.saturating_sub(present);
    if wanted == 0 {
        return all;
    }
    let in_window = |p: ProductIx| all[..window].iter().any(|e| e.0 == p);
    let incoming: Vec<ProductIx> = new
        .iter()
        .map(|e| e.0)
        .filter(|&p| !in_window(p))
        .take(wanted)
        .collect();
    wanted = incoming.len();
    // The last `wanted` past products of the window move out of it.
    let mut moved = Vec::new();
    let mut kept: Vec<ProductIx> = Vec::with_capacity(all.len() + wanted);
    for (i, e) in all[..window].iter().enumerate().rev() {
        if moved.len() < wanted && is_past(e.0) {
            moved.push(e.0);
        } else {
            kept.push(all[i].0);
        }
    }
    kept.reverse();
    moved.reverse();
    kept.extend(&incoming);
    kept.extend(moved);
    kept.extend(
        all[window..]
            .iter()
            .map(|e| e.0)
            .filter(|p| !incoming.contains(p)),
    );
    // Scores by position: the old list's, then (past its end) its last.
    let last = all.last().map_or(0.0, |e| e.1);
    kept.into_iter()
        .enumerate()
        .map(|(i, p)| (p, all.get(i).map_or(last, |e| e.1)))
        .collect()
}

/// Reciprocal ranks of `scores` (best first, ties by popularity): `1 / (c + rank)`, rank
/// from 1.
fn reciprocal_ranks(popularity: &Popularity, scores: &[(ProductIx, f64)], c: f64) -> Sparse {
    popularity
        .ranked(scores, usize::MAX, |_| false)
        .into_iter()
        .enumerate()
        .map(|(i, (product, _))| (product, 1.0 / (c + 1.0 + i as f64)))
        .collect()
}

/// The largest value of a sparse vector, 1 when empty (a divisor).
fn max_value(vector: &[(ProductIx, f64)]) -> f64 {
    let max = vector.iter().map(|v| v.1).fold(0.0, f64::max);
    if max > 0.0 { max } else { 1.0 }
}

/// Item-to-item co-purchase: for each product, the products most often in the same basket,
/// as the confidence `P(other | product)` = baskets with both / baskets with `product`.
#[derive(Debug, Clone, Default)]
struct Copurchase {
    /// Per product, its strongest co-purchased products, sorted by product.
    lists: Vec<Sparse>,
}

impl Copurchase {
    /// The `keep` strongest per product (ties by popularity).
    fn new(data: &Baskets, popularity: &Popularity, keep: usize) -> Copurchase {
        let mut baskets_of: Vec<Vec<(usize, usize)>> = vec![Vec::new(); data.products()];
        for (user, history) in data.histories().iter().enumerate() {
            for (b, basket) in history.iter().enumerate() {
                for &product in basket {
                    baskets_of[product as usize].push((user, b));
                }
            }
        }
        let mut acc = Accumulator::new(data.products());
        let lists = baskets_of
            .iter()
            .enumerate()
            .map(|(product, holding)| {
                let product = product as ProductIx;
                let share = 1.0 / holding.len().max(1) as f64;
                for &(user, b) in holding {
                    for &other in &data.history(user)[b] {
                        if other != product {
                            acc.add(other, share);
                        }
                    }
                }
                let counts = acc.take();
                let mut top = popularity.ranked(&counts, keep, |_| false);
                top.sort_by_key(|t| t.0);
                top
            })
            .collect();
        Copurchase { lists }
    }

    /// The products co-purchased with `product`.
    fn of(&self, product: ProductIx) -> &[(ProductIx, f64)] {
        self.lists.get(product as usize).map_or(&[], Vec::as_slice)
    }

    /// Which of the shopper's products (weighted by `own`) contributes most to `target`.
    fn strongest(&self, own: &[(ProductIx, f64)], target: ProductIx) -> Option<ProductIx> {
        own.iter()
            .filter_map(|&(product, weight)| {
                let list = self.of(product);
                let i = list.binary_search_by_key(&target, |c| c.0).ok()?;
                Some((product, weight * list[i].1))
            })
            .max_by(|a, b| a.1.total_cmp(&b.1).then(b.0.cmp(&a.0)))
            .map(|best| best.0)
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
    fn a_dominant_ease_part_orders_the_new_to_you_list_as_ease_scores_it() {
        let mut data = shop();
        data.push("fay", ["coffee", "sugar", "bread"]);
        data.push("gil", ["tea", "honey", "bananas"]);
        let sets = ItemSets::new(&data);
        let ease = Ease::fit(&sets, 1.0, EASE_MAX_DIM).expect("fit");
        let dominant = ForYou::fit(
            &data,
            &ForYouParams {
                ease_weight: 1e6,
                ease_lambda: 1.0,
                ..ForYouParams::default()
            },
        );
        let without = ForYou::fit(
            &data,
            &ForYouParams {
                ease_weight: 0.0,
                ..ForYouParams::default()
            },
        );
        let mut differs = false;
        for user in 0..data.users() {
            let id = data.user_id(user).to_string();
            let mut acc = Accumulator::new(data.products());
            ease.scores(&sets, user, &mut acc);
            let new: Vec<(ProductIx, f64)> = acc
                .entries()
                .filter(|&(p, v)| v > 0.0 && sets.sets[user].binary_search(&p).is_err())
                .collect();
            let Some(best) = new.iter().map(|e| e.1).reduce(f64::max) else {
                continue;
            };
            let answer = dominant.recommend_new(&id, 10);
            let scored: Vec<f64> = answer
                .items
                .iter()
                .map(|s| acc.get(data.product_ix(&s.product).expect("known")))
                .take(new.len())
                .collect();
            assert_eq!(scored[0], best, "{id}: {scored:?}");
            assert!(scored.windows(2).all(|w| w[0] >= w[1]), "{id}: {scored:?}");
            differs |= without.recommend_new(&id, 10).items[0].product != answer.items[0].product;
        }
        assert!(differs, "EASE changed no shopper's first new product");
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
        // The own vector alone (no neighbour smoothing): dan's list runs out of his products.
        let params = ForYouParams {
            repeat_neighbours: 0,
            ..ForYouParams::default()
        };
        let model = ForYou::fit(&shop(), &params);
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
    fn a_new_product_co_purchased_with_recent_ones_says_what_it_goes_with() {
        let params = ForYouParams {
            item_weight: 1.0,
            ..ForYouParams::default()
        };
        let model = ForYou::fit(&shop(), &params);
        let answer = model.recommend_new("bob", 1);
        // bob's recent products: milk, tea, honey; milk goes with coffee in 5 of its 8 orders.
        assert_eq!(answer.items[0].product.as_ref(), "coffee");
        assert_eq!(
            answer.items[0].reason,
            Reason::BoughtWith {
                product: Arc::from("milk")
            }
        );
    }

    #[test]
    fn repeat_ratios_count_products_bought_before_smoothed_to_the_global_share() {
        let mut data = Baskets::new();
        for product in ["a", "a", "a"] {
            data.push("loyal", [product]);
        }
        for product in ["a", "b", "c"] {
            data.push("explorer", [product]);
        }
        // Global: 2 repeats of 4 purchases after a first order; prior 5 purchases at 0.5.
        let ratios = repeat_ratios(&data);
        assert!((ratios[0] - 4.5 / 7.0).abs() < 1e-12, "{ratios:?}");
        assert!((ratios[1] - 2.5 / 7.0).abs() < 1e-12, "{ratios:?}");
    }

    #[test]
    fn the_switch_lets_others_lead_for_a_shopper_who_rarely_repeats() {
        let mut data = shop();
        for basket in [["kiwi", "coffee"], ["lime", "sugar"], ["plum", "milk"]] {
            data.push("fay", basket);
        }
        let base = ForYouParams {
            own_weight: 1.0,
            repeat_switch: 0.0,
            item_weight: 0.0,
            trial_share_power: 0.0,
            ease_weight: 0.0,
            ..ForYouParams::default()
        };
        // fay bought 6 products, none twice: without the switch her top 5 are all repeats.
        let repeats = |params: &ForYouParams| {
            let answer = ForYou::fit(&data, params).recommend("fay", 5);
            answer
                .items
                .iter()
                .filter(|s| matches!(s.reason, Reason::BuyAgain { .. }))
                .count()
        };
        assert_eq!(repeats(&base), 5);
        // With a strong switch (her repeat ratio, about .4, to the power 20) the neighbours'
        // votes lead: they name bread, tea, honey and bananas, which she never bought.
        let switched = ForYouParams {
            repeat_switch: 20.0,
            ..base
        };
        assert!(repeats(&switched) < 5);
    }

    #[test]
    fn explore_slots_give_new_products_the_last_repeat_places_of_the_window() {
        // Twelve products ranked 0..12, scores falling; 0..=9 past, 10 and 11 new.
        let all: Vec<(ProductIx, f64)> = (0..12).map(|p| (p, 12.0 - p as f64)).collect();
        let is_past = |p: ProductIx| p < 10;
        let new = [(11, 0.9), (20, 0.8), (21, 0.7)];
        // Two slots: 11 and 20 (11 is not in the window) replace the window's last past
        // products, 8 and 9, which move down just after it; scores stay by position.
        let got = with_slots(all.clone(), &new, 2, is_past);
        let products: Vec<ProductIx> = got.iter().map(|e| e.0).collect();
        assert_eq!(products, [0, 1, 2, 3, 4, 5, 6, 7, 11, 20, 8, 9, 10]);
        let scores: Vec<f64> = got.iter().map(|e| e.1).collect();
        assert!(scores.windows(2).all(|w| w[0] >= w[1]), "{scores:?}");
        assert_eq!(got[8].1, 4.0);
        // A window already holding enough new products, or no slots, is left alone.
        let mut mixed = all.clone();
        mixed.swap(3, 10);
        assert_eq!(with_slots(mixed.clone(), &new, 1, is_past), mixed);
        assert_eq!(with_slots(all.clone(), &new, 0, is_past), all);
    }

    #[test]
    fn explore_slots_follow_the_predicted_number_of_new_products() {
        let history = vec![vec![0, 1, 2, 3], vec![0, 1, 2, 3, 4, 5]];
        let params = |explore_slots| ForYouParams {
            explore_slots,
            ..ForYouParams::default()
        };
        // Mean basket 5, repeat ratio .6: 2 new products expected.
        assert_eq!(explore_slots(&history, 0.6, &params(1.0)), 2);
        assert_eq!(explore_slots(&history, 0.6, &params(0.5)), 1);
        assert_eq!(explore_slots(&history, 0.6, &params(0.0)), 0);
        assert_eq!(explore_slots(&history, 0.0, &params(5.0)), SLOT_WINDOW);
    }

    #[test]
    fn slots_put_a_new_product_in_a_loyal_shoppers_top_list() {
        let mut data = shop();
        data.push("fay", ["kiwi", "coffee"]);
        data.push("fay", ["lime", "milk"]);
        let base = ForYouParams {
            own_weight: 1.0,
            repeat_switch: 0.0,
            repeat_neighbours: 0,
            ..ForYouParams::default()
        };
        let new_in_top = |params: &ForYouParams| {
            let answer = ForYou::fit(&data, params).recommend("fay", 4);
            answer
                .items
                .iter()
                .filter(|s| !matches!(s.reason, Reason::BuyAgain { .. } | Reason::Popular))
                .count()
        };
        // Own weight 1: her four past products fill her top 4.
        assert_eq!(new_in_top(&base), 0);
        let slotted = ForYouParams {
            explore_slots: 2.0,
            ..base
        };
        assert!(new_in_top(&slotted) >= 1);
    }

    #[test]
    fn reciprocal_ranks_follow_the_scores_ties_by_popularity() {
        let data = shop();
        let popularity = Popularity::new(&data);
        let milk = data.product_ix("milk").unwrap_or(ProductIx::MAX);
        let coffee = data.product_ix("coffee").unwrap_or(ProductIx::MAX);
        let tea = data.product_ix("tea").unwrap_or(ProductIx::MAX);
        // coffee and milk tie: milk is more popular.
        let ranks = reciprocal_ranks(&popularity, &[(tea, 3.0), (coffee, 1.0), (milk, 1.0)], 1.0);
        assert_eq!(ranks, [(tea, 0.5), (milk, 1.0 / 3.0), (coffee, 0.25)]);
    }

    #[test]
    fn fusion_and_vote_recency_keep_the_new_to_you_list_new() {
        for params in [
            ForYouParams {
                fusion: 10.0,
                ..ForYouParams::default()
            },
            ForYouParams {
                vote_decay: 0.5,
                ..ForYouParams::default()
            },
        ] {
            let answer = ForYou::fit(&shop(), &params).recommend_new("ann", 2);
            let products: Vec<&str> = answer.items.iter().map(|s| s.product.as_ref()).collect();
            // cat's sugar, which co-purchase (with coffee) and the neighbours both name.
            assert_eq!(products[0], "sugar", "{params:?}");
            assert!(!products.contains(&"coffee"));
        }
    }

    /// zoe bought milk and a candle once, in the same order. milk's buyers buy it again two
    /// orders later; the candle's never do, but it is in more baskets (6 against 5).
    fn milk_and_candle() -> Baskets {
        let mut data = Baskets::new();
        data.push("zoe", ["milk", "candle"]);
        data.push("zoe", ["bread"]);
        for user in ["a", "b"] {
            data.push(user, ["milk"]);
            data.push(user, ["tea"]);
            data.push(user, ["milk"]);
        }
        for user in ["c", "d", "e", "f", "g"] {
            data.push(user, ["candle"]);
            data.push(user, ["soap"]);
            data.push(user, ["salt"]);
        }
        data
    }

    /// Where `first` ranks against `second` in `user`'s full list (true: above).
    fn ranks_above(model: &ForYou, user: &str, first: &str, second: &str) -> bool {
        let answer = model.recommend(user, 10);
        let position = |product: &str| {
            answer
                .items
                .iter()
                .position(|s| s.product.as_ref() == product)
                .unwrap_or(usize::MAX)
        };
        position(first) < position(second)
    }

    #[test]
    fn a_product_its_buyers_buy_again_outranks_one_bought_as_often_they_do_not() {
        let data = milk_and_candle();
        let own_only = ForYouParams {
            own_weight: 1.0,
            repeat_switch: 0.0,
            repeat_neighbours: 0,
            item_propensity: 0.0,
            personal_propensity: 0.0,
            hazard_weight: 0.0,
            ..ForYouParams::default()
        };
        // The same own score: the more popular candle first.
        assert!(ranks_above(
            &ForYou::fit(&data, &own_only),
            "zoe",
            "candle",
            "milk"
        ));
        for params in [
            ForYouParams {
                item_propensity: 0.2,
                ..own_only.clone()
            },
            ForYouParams {
                hazard_weight: 0.2,
                ..own_only.clone()
            },
        ] {
            let model = ForYou::fit(&data, &params);
            assert!(ranks_above(&model, "zoe", "milk", "candle"), "{params:?}");
            assert_eq!(
                model.recommend("zoe", 3).items[1].reason,
                Reason::BuyAgain { times: 1 }
            );
        }
    }

    #[test]
    fn item_propensity_is_the_share_of_buyers_who_bought_again_smoothed() {
        let data = milk_and_candle();
        let rates = item_rates(&data);
        let of = |product: &str| rates[data.product_ix(product).map_or(0, |p| p as usize)];
        // Buyers with an order after their first purchase: milk 3 (zoe, a, b), 2 bought it
        // again; candle 6, none; tea 2, none; soap 5, none; every other product is bought in
        // a last order only. Global: 2 of 16.
        let global = 2.0 / 16.0;
        let milk = (2.0 + RATE_PRIOR * global) / (3.0 + RATE_PRIOR);
        let candle = (RATE_PRIOR * global) / (6.0 + RATE_PRIOR);
        assert!(
            (of("milk").propensity - milk).abs() < 1e-12,
            "{:?}",
            of("milk")
        );
        assert!((of("candle").propensity - candle).abs() < 1e-12);
        assert!((of("salt").propensity - global).abs() < 1e-12);
    }

    #[test]
    fn repeat_hazards_count_each_gap_since_the_last_purchase() {
        let mut data = Baskets::new();
        for basket in [["a"], ["b"], ["a"]] {
            data.push("u", basket);
        }
        for basket in [["a"], ["a"]] {
            data.push("v", basket);
        }
        let hazards = repeat_hazards(&data);
        let a = data.product_ix("a").map_or(0, |p| p as usize);
        let b = data.product_ix("b").map_or(0, |p| p as usize);
        // One order later: a bought again 1 time of 2 (u no, v yes), b 0 of 1; over all 1 of
        // 3. Two orders later: a 1 of 1.
        let one = 1.0 / 3.0;
        assert!((hazards[a][0] - (1.0 + RATE_PRIOR * one) / (2.0 + RATE_PRIOR)).abs() < 1e-12);
        assert!((hazards[b][0] - (RATE_PRIOR * one) / (1.0 + RATE_PRIOR)).abs() < 1e-12);
        assert!((hazards[a][1] - 1.0).abs() < 1e-12);
        // No observation at all: the bucket's share over all products (none here: 0).
        assert_eq!(hazards[a][7], 0.0);
    }

    #[test]
    fn gap_buckets_cover_every_gap() {
        let buckets: Vec<usize> = [1, 2, 3, 4, 5, 6, 7, 9, 10, 14, 15, 100]
            .into_iter()
            .map(gap_bucket)
            .collect();
        assert_eq!(buckets, [0, 1, 2, 3, 4, 4, 5, 5, 6, 6, 7, 7]);
        assert!(buckets.iter().all(|&b| b < GAP_BUCKETS));
    }

    #[test]
    fn a_product_due_now_outranks_one_bought_as_often_but_just_now() {
        // p every 3 orders, last bought 3 orders before the next one (due); q every 3 orders,
        // last bought in the order just before (not due), so its plain rate is higher (fewer
        // orders since its first purchase).
        let mut data = Baskets::new();
        for b in 0..9 {
            let mut basket = vec!["x"];
            if b % 3 == 0 {
                basket.push("p");
            }
            if b % 3 == 2 {
                basket.push("q");
            }
            data.push("u", basket);
        }
        let history = data.history(0);
        let (counts, spans) = (purchase_counts(history), spans(history));
        let rates = item_rates(&data);
        let hazards = repeat_hazards(&data);
        let p = data.product_ix("p").unwrap_or(ProductIx::MAX);
        let q = data.product_ix("q").unwrap_or(ProductIx::MAX);
        let extra = |due_power: f64, product: ProductIx| {
            let params = ForYouParams {
                item_propensity: 0.0,
                personal_propensity: 1.0,
                due_power,
                hazard_weight: 0.0,
                ..ForYouParams::default()
            };
            let scores = with_propensity(&[], &counts, &spans, 9, &rates, &hazards, &params);
            scores.iter().find(|e| e.0 == product).map_or(0.0, |e| e.1)
        };
        assert!(extra(0.0, q) > extra(0.0, p));
        assert!(extra(1.0, p) > extra(1.0, q));
        // p is exactly due: its rate is left alone; q's is divided by 3.
        assert!((extra(1.0, p) - extra(0.0, p)).abs() < 1e-12);
        assert!((extra(1.0, q) - extra(0.0, q) / 3.0).abs() < 1e-12);
    }

    #[test]
    fn no_propensity_leaves_the_own_score_as_it_is() {
        let own = [(3, 0.5), (1, 2.0)];
        let params = ForYouParams {
            item_propensity: 0.0,
            personal_propensity: 0.0,
            hazard_weight: 0.0,
            ..ForYouParams::default()
        };
        let out = with_propensity(&own, &[], &[], 4, &[], &[], &params);
        assert!(matches!(out, std::borrow::Cow::Borrowed(_)));
        assert_eq!(&*out, &own);
    }

    #[test]
    fn vote_propensity_keeps_the_new_to_you_list_new() {
        let params = ForYouParams {
            vote_propensity_power: 1.0,
            ..ForYouParams::default()
        };
        let answer = ForYou::fit(&shop(), &params).recommend_new("ann", 3);
        let products: Vec<&str> = answer.items.iter().map(|s| s.product.as_ref()).collect();
        for past in ["coffee", "milk", "bread"] {
            assert!(!products.contains(&past), "{past} in {products:?}");
        }
    }

    /// Four shoppers who order on days 0, 1, 7, 8, … 28: milk every 7 days (days 0, 7, … 28),
    /// tea every 7 days the day after (days 1, 8, … 22). Their last order is milk's, day 28.
    fn weekly_milk(with_days: bool) -> Baskets {
        let mut data = Baskets::new();
        for user in ["ann", "bob", "cat", "dan"] {
            for week in 0..5 {
                let day = f64::from(week * 7);
                let at = |d: f64| with_days.then_some(d);
                data.push_at(user, ["milk"], at(day));
                if week < 4 {
                    data.push_at(user, ["tea"], at(day + 1.0));
                }
            }
        }
        data
    }

    /// Own repeat scores and the hazard by days only, the latter strong.
    fn by_days_only(day_hazard_weight: f64) -> ForYouParams {
        ForYouParams {
            own_weight: 1.0,
            repeat_switch: 0.0,
            repeat_neighbours: 0,
            item_propensity: 0.0,
            personal_propensity: 0.0,
            hazard_weight: 0.0,
            day_hazard_weight,
            interval_hazard_weight: 0.0,
            ..ForYouParams::default()
        }
    }

    fn first_at(model: &ForYou, user: &str, now: Option<f64>) -> String {
        let answer = model.recommend_at(user, 2, now);
        answer.items[0].product.to_string()
    }

    #[test]
    fn a_shopper_who_buys_x_every_7_days_gets_x_first_when_7_days_have_passed() {
        let model = ForYou::fit(&weekly_milk(true), &by_days_only(5.0));
        assert!(model.is_timed());
        // 7 days after ann last bought milk: due (every past milk purchase came 7 days after
        // the one before); tea, 13 days after, was never bought that late.
        assert_eq!(first_at(&model, "ann", Some(35.0)), "milk");
        // 1 day after: milk was never bought again the next day; tea, 7 days after, is due.
        assert_eq!(first_at(&model, "ann", Some(29.0)), "tea");
        // Without a time, the order-based list: milk, in the last order.
        assert_eq!(first_at(&model, "ann", None), "milk");
        assert_eq!(
            model.recommend("ann", 2),
            model.recommend_at("ann", 2, None)
        );
        // The reasons stay the shopper's history.
        assert_eq!(
            model.recommend_at("ann", 1, Some(29.0)).items[0].reason,
            Reason::BuyAgain { times: 4 }
        );
    }

    #[test]
    fn without_days_or_weights_time_changes_nothing() {
        // Weight 0: the query's time is ignored.
        let off = ForYou::fit(&weekly_milk(true), &by_days_only(0.0));
        assert!(!off.is_timed());
        assert_eq!(first_at(&off, "ann", Some(29.0)), "milk");
        // Orders without days: the order-based list, whatever the time.
        let blind = ForYou::fit(&weekly_milk(false), &by_days_only(5.0));
        assert_eq!(
            blind.recommend_at("ann", 2, Some(29.0)),
            blind.recommend("ann", 2)
        );
        // An unknown shopper: popular fallback.
        assert!(blind.recommend_at("zed", 2, Some(29.0)).fallback);
    }

    #[test]
    fn time_hazards_count_each_gap_in_days_and_against_the_interval() {
        let data = weekly_milk(true);
        let hazards = TimeHazards::new(&data);
        let milk = data.product_ix("milk").map_or(0, |p| p as usize);
        let tea = data.product_ix("tea").map_or(0, |p| p as usize);
        // Milk: 16 observations 1 day after (never bought), 16 at 7 days (always; the first
        // at day 7 with no interval yet: 4 of them in the once bucket).
        assert!(hazards.by_days(milk, 1.0) < 0.01);
        assert!(hazards.by_days(milk, 7.0) > 0.9);
        assert!(hazards.by_interval(milk, 7.0, 7.0) > 0.9);
        assert!(hazards.by_interval(milk, 1.0, 7.0) < 0.1);
        // Tea: 6 days after (day 7k: never), 7 days after (day 7k + 1: always): one bucket.
        let tea_week = hazards.by_days(tea, 7.0);
        assert!((0.3..0.7).contains(&tea_week), "{tea_week}");
        // No day known: all zero.
        let blind = TimeHazards::new(&weekly_milk(false));
        assert_eq!(blind.by_days(milk, 7.0), 0.0);
        assert_eq!(blind.by_interval(milk, 7.0, f64::NAN), 0.0);
    }

    #[test]
    fn day_and_interval_buckets_cover_every_gap() {
        let days: Vec<usize> = [
            0.0, 0.5, 1.0, 3.0, 5.0, 7.0, 9.0, 13.0, 17.0, 24.0, 31.0, 45.0,
        ]
        .into_iter()
        .map(day_bucket)
        .collect();
        assert_eq!(days, [0, 0, 1, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(day_bucket(60.0), 12);
        assert_eq!(day_bucket(90.0), 13);
        assert_eq!(day_bucket(1e9), DAY_BUCKETS - 1);
        assert_eq!(interval_bucket(7.0, 7.0), 4);
        assert_eq!(interval_bucket(0.0, 7.0), 0);
        assert_eq!(interval_bucket(100.0, 7.0), INTERVAL_BUCKETS - 2);
        assert_eq!(interval_bucket(3.0, f64::NAN), INTERVAL_BUCKETS - 1);
        // Two purchases on one day: the interval counts as one day.
        assert_eq!(interval_bucket(1.0, 0.0), 4);
    }

    #[test]
    fn the_model_is_shared_across_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<ForYou>();
        assert!(ForYou::fit(&shop(), &ForYouParams::default()).memory_bytes() > 0);
    }
}
