//! Trending (sans-IO): per product, exponentially decayed counts of weighted events — one per
//! short half-life (the `window=` choices) and one long baseline. A product trends when its
//! short count is well above what its own baseline rate predicts for the short window: the
//! Poisson z-score `(S − E) / √E` with `E = rate_long × window + prior`, where a decayed count
//! with half-life `h` over a history of `age` seconds spans `h/ln 2 × (1 − 2^(−age/h))` seconds.
//! A steady best seller sits near its baseline (z ≤ 0); an uptick stands out. Products under
//! the minimum volume never trend.
//!
//! History starts at the first event the model saw; a model younger than the long half-life
//! assumes nothing happened before it (new activity trends). Time is Unix seconds, passed in.
//!
//! Queries read [`Rankings`]: every trending product of every window, overall and per category,
//! ranked once as of one instant ([`Rankings::build`]) so a query is a lookup and a slice.

use std::collections::HashMap;
use std::sync::Arc;

use super::config::MAX_WINDOWS;
use super::ids::Id;

/// How a product trends in one window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Trend {
    /// The product.
    pub product: Id,
    /// The Poisson z-score of its short count against its baseline.
    pub z: f64,
    /// Its decayed short count (weighted events).
    pub recent: f64,
    /// The short count its baseline predicts (prior included).
    pub expected: f64,
}

/// The decayed counts of one product, as of `at`.
#[derive(Debug, Clone, Copy)]
struct Counts {
    at: f64,
    short: [f64; MAX_WINDOWS],
    long: f64,
}

/// The trending model's parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    /// Short half-lives, seconds.
    pub windows: Vec<f64>,
    /// Long half-life, seconds.
    pub long: f64,
    /// Pseudo-events added to the expected short count.
    pub prior: f64,
    /// Least short count of a trending product.
    pub min_volume: f64,
}

/// Decayed event counts per product.
#[derive(Debug)]
pub struct Trending {
    params: Params,
    /// When the first event happened (Unix seconds).
    start: Option<f64>,
    items: HashMap<Id, Counts>,
}

/// `0.5^(dt / half_life)`.
fn decay(dt: f64, half_life: f64) -> f64 {
    (-dt / half_life).exp2()
}

/// Seconds a decayed count with `half_life` spans after `age` seconds of history.
fn span(half_life: f64, age: f64) -> f64 {
    half_life / std::f64::consts::LN_2 * (1.0 - decay(age, half_life))
}

impl Trending {
    /// An empty model (`params.windows` holds at most [`MAX_WINDOWS`]; more are ignored).
    pub fn new(mut params: Params) -> Trending {
        params.windows.truncate(MAX_WINDOWS);
        Trending {
            params,
            start: None,
            items: HashMap::new(),
        }
    }

    /// The parameters.
    pub fn params(&self) -> &Params {
        &self.params
    }

    /// Adds an event of `weight` on `product` at `t` (Unix seconds; late events count decayed).
    pub fn record(&mut self, product: Id, weight: f64, t: f64) {
        if !(weight.is_finite() && weight > 0.0 && t.is_finite()) {
            return;
        }
        self.start = Some(self.start.map_or(t, |s| s.min(t)));
        let params = &self.params;
        let counts = self.items.entry(product).or_insert(Counts {
            at: t,
            short: [0.0; MAX_WINDOWS],
            long: 0.0,
        });
        let (at, dt) = if t >= counts.at {
            (t, t - counts.at)
        } else {
            (counts.at, 0.0)
        };
        let late = counts.at - t;
        for (i, h) in params.windows.iter().enumerate() {
            counts.short[i] = counts.short[i] * decay(dt, *h) + weight * decay(late.max(0.0), *h);
        }
        counts.long =
            counts.long * decay(dt, params.long) + weight * decay(late.max(0.0), params.long);
        counts.at = at;
    }

    /// How `product` trends in window `window` (an index of the short half-lives) at `now`;
    /// `None` when it has no events.
    pub fn trend(&self, product: Id, window: usize, now: f64) -> Option<Trend> {
        let counts = self.items.get(&product)?;
        let h = *self.params.windows.get(window)?;
        let dt = (now - counts.at).max(0.0);
        let recent = counts.short[window] * decay(dt, h);
        let long = counts.long * decay(dt, self.params.long);
        let age = (now - self.start.unwrap_or(now)).max(self.params.long);
        let expected = long / span(self.params.long, age) * span(h, age) + self.params.prior;
        let z = (recent - expected) / expected.max(f64::MIN_POSITIVE).sqrt();
        Some(Trend {
            product,
            z,
            recent,
            expected,
        })
    }

    /// Whether `trend` is trending: above its baseline with at least the minimum volume.
    pub fn is_trending(&self, trend: &Trend) -> bool {
        trend.z > 0.0 && trend.recent >= self.params.min_volume
    }

    /// The trending products among those `admit` accepts, highest z first, at most `limit`.
    pub fn top(
        &self,
        window: usize,
        now: f64,
        limit: usize,
        admit: impl Fn(Id) -> bool,
    ) -> Vec<Trend> {
        let mut trends: Vec<Trend> = self
            .items
            .keys()
            .filter_map(|&p| self.trend(p, window, now))
            .filter(|t| self.is_trending(t) && admit(t.product))
            .collect();
        let limit = limit.min(trends.len());
        if limit == 0 {
            return Vec::new();
        }
        trends.select_nth_unstable_by(limit - 1, by_z);
        trends.truncate(limit);
        trends.sort_by(by_z);
        trends
    }

    /// Products with events.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Whether no product has events.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Approximate heap bytes.
    pub fn memory_bytes(&self) -> usize {
        self.items.capacity() * (std::mem::size_of::<Counts>() + 8)
    }
}

/// A ranked product: its id, its name (so a reader needs nothing else) and how it trends.
#[derive(Debug, Clone, PartialEq)]
pub struct Ranked {
    /// The product's name (its id in the catalog).
    pub name: Arc<str>,
    /// How it trends.
    pub trend: Trend,
}

/// The trending products of one window: all of them and those of each category, best first.
#[derive(Debug, Default)]
struct WindowRanking {
    all: Vec<Ranked>,
    /// Keyed by every category path a product is in, its own and each one above it
    /// (`a > b > c` is in `a > b > c`, `a > b` and `a`).
    by_category: HashMap<Box<str>, Vec<Ranked>>,
}

/// Every trending product of every window, overall and per category, best first, as of one
/// instant. Built whole ([`Rankings::build`]) and then only read: a reader takes a slice.
#[derive(Debug, Default)]
pub struct Rankings {
    at: Option<f64>,
    windows: Vec<WindowRanking>,
}

/// The order of a ranking: highest z first, then the lower id (deterministic).
fn by_z(a: &Trend, b: &Trend) -> std::cmp::Ordering {
    b.z.total_cmp(&a.z).then(a.product.cmp(&b.product))
}

impl Rankings {
    /// Ranks every trending product of `model` at `now` in each window, overall and per
    /// category: `describe` gives a product's name and category path (levels joined by
    /// `separator`; a product in `a > b` is listed under `a > b` and `a`). The cost: one trend
    /// per product and window, a sort, and a push per category level of each trending product.
    pub fn build<'a>(
        model: &Trending,
        now: f64,
        separator: &str,
        describe: impl Fn(Id) -> (Arc<str>, Option<&'a str>),
    ) -> Rankings {
        let mut described: HashMap<Id, (Arc<str>, Option<&'a str>)> = HashMap::new();
        let windows = (0..model.params.windows.len())
            .map(|window| {
                let mut trends: Vec<Trend> = model
                    .items
                    .keys()
                    .filter_map(|&p| model.trend(p, window, now))
                    .filter(|t| model.is_trending(t))
                    .collect();
                trends.sort_unstable_by(by_z);
                let mut ranking = WindowRanking::default();
                for trend in trends {
                    let (name, category) = described
                        .entry(trend.product)
                        .or_insert_with(|| describe(trend.product));
                    let ranked = Ranked {
                        name: Arc::clone(name),
                        trend,
                    };
                    if let Some(path) = *category {
                        let ends = path
                            .match_indices(separator)
                            .map(|(i, _)| i)
                            .chain([path.len()]);
                        for end in ends {
                            let level = &path[..end];
                            match ranking.by_category.get_mut(level) {
                                Some(list) => list.push(ranked.clone()),
                                None => {
                                    ranking
                                        .by_category
                                        .insert(level.into(), vec![ranked.clone()]);
                                }
                            }
                        }
                    }
                    ranking.all.push(ranked);
                }
                ranking
            })
            .collect();
        Rankings {
            at: Some(now),
            windows,
        }
    }

    /// When it was built (Unix seconds; `None`: never, it is empty).
    pub fn at(&self) -> Option<f64> {
        self.at
    }

    /// The trending products of window `window` (an index of the short half-lives), of
    /// `category` and below it (a normalized path; `None`: all), best first.
    pub fn get(&self, window: usize, category: Option<&str>) -> &[Ranked] {
        let Some(ranking) = self.windows.get(window) else {
            return &[];
        };
        match category {
            None => &ranking.all,
            Some(category) => ranking.by_category.get(category).map_or(&[], Vec::as_slice),
        }
    }

    /// Products ranked (in any window or category; each counted once per list it is in).
    pub fn len(&self) -> usize {
        self.windows
            .iter()
            .map(|w| w.all.len() + w.by_category.values().map(Vec::len).sum::<usize>())
            .sum()
    }

    /// Whether nothing trends.
    pub fn is_empty(&self) -> bool {
        self.windows.iter().all(|w| w.all.is_empty())
    }

    /// Approximate heap bytes (the names are shared with the ids).
    pub fn memory_bytes(&self) -> usize {
        let entry = std::mem::size_of::<Ranked>();
        self.windows
            .iter()
            .map(|w| {
                w.all.capacity() * entry
                    + w.by_category
                        .iter()
                        .map(|(k, v)| k.len() + 48 + v.capacity() * entry)
                        .sum::<usize>()
            })
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: f64 = 3600.0;
    const DAY: f64 = 86_400.0;

    fn model() -> Trending {
        Trending::new(Params {
            windows: vec![HOUR, 6.0 * HOUR],
            long: 7.0 * DAY,
            prior: 1.0,
            min_volume: 3.0,
        })
    }

    #[test]
    fn an_uptick_trends_and_a_steady_best_seller_does_not() {
        let mut m = model();
        let now = 30.0 * DAY;
        // Product 1 sells 300 a day, every day for 30 days (far more than product 2 ever).
        let mut t = 0.0;
        while t < now {
            m.record(1, 1.0, t);
            t += DAY / 300.0;
        }
        // Product 2 sold 1 a day until an hour ago, then 12 within the hour.
        for day in 0..30 {
            m.record(2, 1.0, f64::from(day) * DAY + 5.0);
        }
        for i in 0..12 {
            m.record(2, 1.0, now - HOUR + f64::from(i) * 300.0);
        }
        // Product 3: two events just now, under the minimum volume.
        m.record(3, 1.0, now - 10.0);
        m.record(3, 1.0, now - 5.0);
        let steady = m.trend(1, 0, now).unwrap();
        let uptick = m.trend(2, 0, now).unwrap();
        assert!(steady.recent > uptick.recent, "the best seller sells more");
        assert!(steady.z < 1.0, "{steady:?}");
        assert!(uptick.z > 3.0, "{uptick:?}");
        let top: Vec<Id> = m
            .top(0, now, 10, |_| true)
            .iter()
            .map(|t| t.product)
            .collect();
        assert_eq!(top[0], 2, "{top:?}");
        assert!(!top.contains(&3), "under the minimum volume");
        assert!(m.top(0, now, 10, |p| p != 2).iter().all(|t| t.product != 2));
        // A week later the uptick has faded into its baseline.
        let later = m.trend(2, 0, now + 7.0 * DAY).unwrap();
        assert!(!m.is_trending(&later), "{later:?}");
    }

    #[test]
    fn late_events_count_decayed_and_a_young_model_lets_new_activity_trend() {
        let mut m = model();
        for i in 0..5 {
            m.record(9, 2.0, 1000.0 + f64::from(i));
        }
        let fresh = m.trend(9, 0, 1010.0).unwrap();
        assert!(m.is_trending(&fresh), "{fresh:?}");
        let mut late = model();
        late.record(9, 2.0, 1000.0 + HOUR);
        late.record(9, 2.0, 1000.0);
        let t = late.trend(9, 0, 1000.0 + HOUR).unwrap();
        assert!((t.recent - 3.0).abs() < 1e-9, "{t:?}");
        assert!(m.trend(9, 5, 1010.0).is_none(), "no such window");
    }

    #[test]
    fn rankings_hold_what_top_ranks_overall_and_in_each_category_and_above_it() {
        let mut m = model();
        let now = 10.0 * DAY;
        // Product p: p events within the last hour (so p ranks by p), in one of three aisles.
        let aisles = ["food > dairy", "food > bakery", "home"];
        for p in 1..=30u32 {
            for i in 0..p {
                m.record(p, 1.0, now - f64::from(i) * 60.0);
            }
        }
        let aisle = |p: Id| aisles[p as usize % 3];
        let names: Vec<Arc<str>> = (0..=30).map(|p| Arc::from(format!("p{p}"))).collect();
        let rankings = Rankings::build(&m, now, " > ", |p| {
            (Arc::clone(&names[p as usize]), Some(aisle(p)))
        });
        assert_eq!(rankings.at(), Some(now));
        let ids = |list: &[Ranked]| list.iter().map(|r| r.trend.product).collect::<Vec<_>>();
        let top = |admit: &dyn Fn(Id) -> bool| {
            m.top(0, now, usize::MAX, admit)
                .iter()
                .map(|t| t.product)
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(rankings.get(0, None)), top(&|_| true));
        assert!(rankings.get(0, None).len() > 20, "most trend");
        for filter in ["food > dairy", "food > bakery", "home"] {
            assert_eq!(
                ids(rankings.get(0, Some(filter))),
                top(&|p| aisle(p) == filter),
                "{filter}"
            );
        }
        // A category holds those below it, and only at a level's boundary.
        assert_eq!(
            ids(rankings.get(0, Some("food"))),
            top(&|p| aisle(p).starts_with("food > "))
        );
        assert!(rankings.get(0, Some("foo")).is_empty());
        assert!(rankings.get(0, Some("food > d")).is_empty());
        // Each window ranks by its own half-life; an unknown window ranks nothing.
        assert_eq!(
            ids(rankings.get(1, Some("home"))),
            m.top(1, now, usize::MAX, |p| aisle(p) == "home")
                .iter()
                .map(|t| t.product)
                .collect::<Vec<_>>()
        );
        assert!(rankings.get(2, None).is_empty());
        // Each entry carries its name and its trend at `now`.
        let first = &rankings.get(0, None)[0];
        assert_eq!(&*first.name, "p30");
        assert_eq!(Some(first.trend), m.trend(30, 0, now));
        assert!(rankings.memory_bytes() > 0 && !rankings.is_empty());
        assert_eq!(Rankings::default().get(0, None), &[] as &[Ranked]);
    }
}
