//! `[recommend]`: the recommenders' parameters (docs/recommendations.md): the minimum support of
//! bought-together, the co-view session window and the weight of behaviour against content in
//! related products, trending's half-lives, prior and minimum volume, the upcoming-shows blend,
//! the for-you refit interval, the `limit` of every query, and the answer cache (its size, how
//! far an answer may trail the models, how often related lists are refreshed).

use serde::Deserialize;

use crate::setting::{Invalid, positive_secs};

/// Most short half-lives `trending_windows_s` may list.
pub const MAX_WINDOWS: usize = 8;
/// Largest `answer_cache_bytes`.
pub const MAX_CACHE_BYTES: usize = 16 << 30;
/// Largest `answer_cache_lag_s`: with the trending rankings' rebuild at most every 0.25 s, an
/// event stays visible within 1 s.
pub const MAX_LAG_S: f64 = 0.5;

/// `[recommend]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// `limit` of a query that gives none.
    pub default_limit: usize,
    /// Largest `limit` a query accepts (1..=1000); more answer 400.
    pub max_limit: usize,
    /// Orders a pair must share before it is bought together.
    pub together_min_support: u32,
    /// Two products a shopper touched within this many seconds are co-viewed.
    pub related_session_s: f64,
    /// Weight of co-views against content similarity in related products (0..=1).
    pub related_behaviour_weight: f64,
    /// The short half-lives `window=` may choose, seconds; the first is the default.
    pub trending_windows_s: Vec<f64>,
    /// The long half-life of the baseline, seconds (longer than every short one).
    pub trending_long_half_life_s: f64,
    /// Pseudo-events added to the expected short count (smoothing prior).
    pub trending_prior: f64,
    /// Least weighted, decayed short count of a trending product.
    pub trending_min_volume: f64,
    /// Weight of the shopper's affinity in upcoming shows.
    pub upcoming_affinity_weight: f64,
    /// Weight of the trending of a show's products in upcoming shows.
    pub upcoming_trending_weight: f64,
    /// Weight of how soon a show starts in upcoming shows.
    pub upcoming_soon_weight: f64,
    /// A show this many seconds away gets half the soonness of one starting now.
    pub upcoming_soon_half_s: f64,
    /// Least seconds between two for-you refits (purchases arriving meanwhile wait).
    pub for_you_refit_interval_s: f64,
    /// Most bytes of cached answers (JSON bodies, keys, bookkeeping); 0 turns the cache off.
    pub answer_cache_bytes: usize,
    /// Seconds a cached answer may trail the models (0..=0.5): served that long whatever
    /// changed, and the lifetime of answers that move with time (upcoming shows, a show's
    /// products; trending answers last until the next rebuild of the rankings).
    pub answer_cache_lag_s: f64,
    /// Seconds between two refreshes of the related lists when co-views changed (a cached
    /// related answer stays until then).
    pub related_refresh_s: f64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[recommend]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=1000).contains(&self.max_limit) {
            return Err(Invalid::new("max_limit", "must be 1 to 1000"));
        }
        if !(1..=self.max_limit).contains(&self.default_limit) {
            return Err(Invalid::new("default_limit", "must be 1 to max_limit"));
        }
        if self.together_min_support == 0 {
            return Err(Invalid::new("together_min_support", "must be at least 1"));
        }
        positive_secs("related_session_s", self.related_session_s)?;
        unit("related_behaviour_weight", self.related_behaviour_weight)?;
        if self.trending_windows_s.is_empty() || self.trending_windows_s.len() > MAX_WINDOWS {
            return Err(Invalid::new(
                "trending_windows_s",
                format!("must list 1 to {MAX_WINDOWS} half-lives"),
            ));
        }
        for (i, window) in self.trending_windows_s.iter().enumerate() {
            positive_secs(&format!("trending_windows_s[{i}]"), *window)?;
        }
        positive_secs("trending_long_half_life_s", self.trending_long_half_life_s)?;
        if self
            .trending_windows_s
            .iter()
            .any(|w| *w >= self.trending_long_half_life_s)
        {
            return Err(Invalid::new(
                "trending_long_half_life_s",
                "must be longer than every trending_windows_s",
            ));
        }
        non_negative("trending_prior", self.trending_prior)?;
        non_negative("trending_min_volume", self.trending_min_volume)?;
        non_negative("upcoming_affinity_weight", self.upcoming_affinity_weight)?;
        non_negative("upcoming_trending_weight", self.upcoming_trending_weight)?;
        non_negative("upcoming_soon_weight", self.upcoming_soon_weight)?;
        positive_secs("upcoming_soon_half_s", self.upcoming_soon_half_s)?;
        positive_secs("for_you_refit_interval_s", self.for_you_refit_interval_s)?;
        if self.answer_cache_bytes > MAX_CACHE_BYTES {
            return Err(Invalid::new(
                "answer_cache_bytes",
                format!("must be at most {MAX_CACHE_BYTES} (16 GiB)"),
            ));
        }
        if !(0.0..=MAX_LAG_S).contains(&self.answer_cache_lag_s) {
            return Err(Invalid::new(
                "answer_cache_lag_s",
                format!("must be 0 to {MAX_LAG_S} (an event shows within 1 s)"),
            ));
        }
        positive_secs("related_refresh_s", self.related_refresh_s)?;
        Ok(())
    }
}

fn unit(key: &str, value: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&value) {
        Ok(())
    } else {
        Err(Invalid::new(key, "must be 0 to 1"))
    }
}

fn non_negative(key: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(Invalid::new(key, "must be a number at least 0"))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The shipped defaults (config/cuecast.toml).
    pub(crate) fn config() -> Config {
        Config {
            default_limit: 10,
            max_limit: 100,
            together_min_support: 2,
            related_session_s: 1800.0,
            related_behaviour_weight: 0.6,
            trending_windows_s: vec![3600.0, 900.0, 21600.0],
            trending_long_half_life_s: 604_800.0,
            trending_prior: 1.0,
            trending_min_volume: 3.0,
            upcoming_affinity_weight: 0.6,
            upcoming_trending_weight: 0.25,
            upcoming_soon_weight: 0.15,
            upcoming_soon_half_s: 86_400.0,
            for_you_refit_interval_s: 10.0,
            answer_cache_bytes: 64 << 20,
            answer_cache_lag_s: 0.25,
            related_refresh_s: 30.0,
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(config().validate(), Ok(()));
        type Spoil = fn(&mut Config);
        let cases: [(Spoil, &str); 13] = [
            (|c| c.max_limit = 0, "max_limit"),
            (|c| c.default_limit = 101, "default_limit"),
            (|c| c.together_min_support = 0, "together_min_support"),
            (
                |c| c.related_behaviour_weight = 1.5,
                "related_behaviour_weight",
            ),
            (|c| c.trending_windows_s = vec![], "trending_windows_s"),
            (|c| c.trending_windows_s[1] = -1.0, "trending_windows_s[1]"),
            (
                |c| c.trending_long_half_life_s = 3600.0,
                "trending_long_half_life_s",
            ),
            (|c| c.trending_prior = f64::NAN, "trending_prior"),
            (
                |c| c.for_you_refit_interval_s = 0.0,
                "for_you_refit_interval_s",
            ),
            (|c| c.answer_cache_bytes = 17 << 30, "answer_cache_bytes"),
            (|c| c.answer_cache_lag_s = 0.6, "answer_cache_lag_s"),
            (|c| c.answer_cache_lag_s = f64::NAN, "answer_cache_lag_s"),
            (|c| c.related_refresh_s = 0.0, "related_refresh_s"),
        ];
        for (spoil, key) in cases {
            let mut c = config();
            spoil(&mut c);
            assert_eq!(c.validate().map_err(|e| e.key), Err(key.to_string()));
        }
    }
}
