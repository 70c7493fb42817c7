//! `[shows]`: the window around a show's `scheduled_start` in which its stream takes it live,
//! whether a clean unpublish of a stream without a live show also waits the reconnect grace,
//! and the size limit of show requests.

use serde::Deserialize;

use super::state::Window;
use crate::setting::Invalid;

/// Longest window edge: 7 days.
const MAX_WINDOW_S: f64 = 7.0 * 86_400.0;

/// `[shows]`, also the show service's settings.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How long before `scheduled_start` the stream going live takes the show live, seconds.
    pub live_window_before_s: f64,
    /// How long after `scheduled_start` it still does, seconds.
    pub live_window_after_s: f64,
    /// A clean unpublish of a stream without a live show also waits the reconnect grace
    /// (default: it ends the session at once).
    pub hold_unpublish_without_show: bool,
    /// Largest show request body, bytes (413 above).
    pub max_request_bytes: usize,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[shows]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("live_window_before_s", self.live_window_before_s),
            ("live_window_after_s", self.live_window_after_s),
        ] {
            if !(value.is_finite() && (0.0..=MAX_WINDOW_S).contains(&value)) {
                return Err(Invalid::new(
                    key,
                    format!("must be between 0 and {MAX_WINDOW_S} seconds, got {value}"),
                ));
            }
        }
        if self.max_request_bytes < 1024 {
            return Err(Invalid::new("max_request_bytes", "must be at least 1024"));
        }
        Ok(())
    }

    /// The live window.
    pub fn window(&self) -> Window {
        let millis = |s: f64| chrono::Duration::milliseconds((s * 1000.0).round() as i64);
        Window {
            before: millis(self.live_window_before_s),
            after: millis(self.live_window_after_s),
        }
    }
}

/// The default `[shows]` (tests).
#[cfg(test)]
pub(crate) fn example() -> Config {
    Config {
        live_window_before_s: 1800.0,
        live_window_after_s: 3600.0,
        hold_unpublish_without_show: false,
        max_request_bytes: 65536,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        example()
    }

    #[test]
    fn bad_values_name_their_key() {
        assert!(config().validate().is_ok());
        assert_eq!(config().window().before, chrono::Duration::minutes(30));
        for (mutate, key) in [
            (
                (|c: &mut Config| c.live_window_before_s = -1.0) as fn(&mut Config),
                "live_window_before_s",
            ),
            (|c| c.live_window_after_s = f64::NAN, "live_window_after_s"),
            (|c| c.live_window_after_s = 1e9, "live_window_after_s"),
            (|c| c.max_request_bytes = 10, "max_request_bytes"),
        ] {
            let mut bad = config();
            mutate(&mut bad);
            assert_eq!(bad.validate().expect_err("refused").key, key);
        }
    }
}
