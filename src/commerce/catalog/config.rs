//! `[catalog]`: request and page limits of the catalog API, and how popularity ranks results.

use serde::Deserialize;

use crate::setting::{Invalid, positive_secs};

/// `[catalog]`, also the catalog's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Largest `POST /api/catalog/products` body, bytes (413 above).
    pub max_request_bytes: usize,
    /// Most products in one `POST /api/catalog/products` (413 above).
    pub max_batch: usize,
    /// Page size when a listing gives no `limit`.
    pub default_limit: usize,
    /// Largest `limit` of a listing.
    pub max_limit: usize,
    /// Deepest rank a search page may start at (a cursor past it is refused).
    pub max_offset: usize,
    /// Half-life of a product's popularity, seconds: an event counts half after this long.
    pub popularity_half_life_s: f64,
    /// How much popularity raises a text match: score · (1 + weight · ln(1 + popularity)).
    /// 0 = text relevance only.
    pub popularity_weight: f64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[catalog]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.max_request_bytes < 1024 {
            return Err(Invalid::new("max_request_bytes", "must be at least 1024"));
        }
        if self.max_batch == 0 {
            return Err(Invalid::new("max_batch", "must be at least 1"));
        }
        if self.max_limit == 0 || self.max_limit > 1000 {
            return Err(Invalid::new("max_limit", "must be 1..=1000"));
        }
        if self.default_limit == 0 || self.default_limit > self.max_limit {
            return Err(Invalid::new(
                "default_limit",
                "must be 1..=catalog.max_limit",
            ));
        }
        if self.max_offset > 1_000_000 {
            return Err(Invalid::new("max_offset", "must be at most 1000000"));
        }
        positive_secs("popularity_half_life_s", self.popularity_half_life_s)?;
        if !(self.popularity_weight.is_finite() && (0.0..=100.0).contains(&self.popularity_weight))
        {
            return Err(Invalid::new("popularity_weight", "must be 0..=100"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_request_bytes: 16 << 20,
            max_batch: 50_000,
            default_limit: 20,
            max_limit: 100,
            max_offset: 10_000,
            popularity_half_life_s: 21_600.0,
            popularity_weight: 0.5,
        }
    }

    #[test]
    fn each_bad_key_is_named() {
        config().validate().unwrap();
        let cases: Vec<(Config, &str)> = vec![
            (
                Config {
                    max_request_bytes: 10,
                    ..config()
                },
                "max_request_bytes",
            ),
            (
                Config {
                    max_batch: 0,
                    ..config()
                },
                "max_batch",
            ),
            (
                Config {
                    max_limit: 0,
                    ..config()
                },
                "max_limit",
            ),
            (
                Config {
                    default_limit: 101,
                    ..config()
                },
                "default_limit",
            ),
            (
                Config {
                    max_offset: 2_000_000,
                    ..config()
                },
                "max_offset",
            ),
            (
                Config {
                    popularity_half_life_s: 0.0,
                    ..config()
                },
                "popularity_half_life_s",
            ),
            (
                Config {
                    popularity_weight: f64::NAN,
                    ..config()
                },
                "popularity_weight",
            ),
        ];
        for (c, key) in cases {
            assert_eq!(c.validate().unwrap_err().key, key);
        }
    }
}
