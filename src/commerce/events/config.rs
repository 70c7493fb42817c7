//! `[events]`: the bounds of the public `POST /api/events` (body size, batch length, per-client
//! rate, timestamp clamp) and the currency revenue is recorded in.

use serde::Deserialize;

use super::{Limits, Settings};
use crate::commerce::product::check_currency;
use crate::setting::{Invalid, positive_secs};

/// `[events]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Most events in one batch (413 above).
    pub max_batch_events: usize,
    /// Largest request body, bytes (413 above).
    pub max_body_bytes: usize,
    /// Events per second one client address may send (429 above).
    pub rate_per_client_per_s: f64,
    /// Events a client may send at once before the rate applies.
    pub rate_burst_events: u32,
    /// How far in the past a client's `ts` may lie, seconds (older ones are clamped).
    pub max_clock_skew_s: f64,
    /// The currency of prices and revenue (ISO 4217).
    pub currency: String,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[events]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !(1..=10_000).contains(&self.max_batch_events) {
            return Err(Invalid::new("max_batch_events", "must be 1 to 10000"));
        }
        if self.max_body_bytes < 1024 {
            return Err(Invalid::new("max_body_bytes", "must be at least 1024"));
        }
        if !(self.rate_per_client_per_s.is_finite() && self.rate_per_client_per_s > 0.0) {
            return Err(Invalid::new(
                "rate_per_client_per_s",
                "must be a positive number",
            ));
        }
        if (self.rate_burst_events as usize) < self.max_batch_events {
            return Err(Invalid::new(
                "rate_burst_events",
                "must be at least events.max_batch_events (or no full batch is ever accepted)",
            ));
        }
        positive_secs("max_clock_skew_s", self.max_clock_skew_s)?;
        check_currency("currency", &self.currency)
            .map_err(|err| Invalid::new("currency", err.reason))?;
        Ok(())
    }

    /// The event service's settings.
    pub fn settings(&self) -> Settings {
        Settings {
            limits: Limits {
                max_batch_events: self.max_batch_events,
                max_clock_skew_ms: (self.max_clock_skew_s * 1000.0) as i64,
                currency: self.currency.clone(),
            },
            max_body_bytes: self.max_body_bytes,
            rate_per_client_per_s: self.rate_per_client_per_s,
            rate_burst_events: f64::from(self.rate_burst_events),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            max_batch_events: 100,
            max_body_bytes: 65536,
            rate_per_client_per_s: 50.0,
            rate_burst_events: 200,
            max_clock_skew_s: 300.0,
            currency: "USD".into(),
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(config().validate(), Ok(()));
        type Spoil = fn(&mut Config);
        let cases: [(Spoil, &str); 6] = [
            (|c| c.max_batch_events = 0, "max_batch_events"),
            (|c| c.max_body_bytes = 10, "max_body_bytes"),
            (
                |c| c.rate_per_client_per_s = f64::NAN,
                "rate_per_client_per_s",
            ),
            (|c| c.rate_burst_events = 99, "rate_burst_events"),
            (|c| c.max_clock_skew_s = 0.0, "max_clock_skew_s"),
            (|c| c.currency = "dollars".into(), "currency"),
        ];
        for (spoil, key) in cases {
            let mut c = config();
            spoil(&mut c);
            assert_eq!(c.validate().map_err(|e| e.key), Err(key.to_string()));
        }
        let settings = config().settings();
        assert_eq!(settings.limits.max_clock_skew_ms, 300_000);
        assert_eq!(settings.rate_burst_events, 200.0);
    }
}
