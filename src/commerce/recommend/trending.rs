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

use std::collections::HashMap;

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
        let order = |a: &Trend, b: &Trend| b.z.total_cmp(&a.z).then(a.product.cmp(&b.product));
        trends.select_nth_unstable_by(limit - 1, order);
        trends.truncate(limit);
        trends.sort_by(order);
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
}
