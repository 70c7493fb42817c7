//! What every feature's `Config` shares: the error that names a bad key, and the checks and
//! conversions of the values many sections have (seconds).
//!
//! Each feature owns its section of `config/cuecast.toml` (`hls::Config`, `chat::Config`, ...):
//! its struct, its checks and its conversion into runtime settings. A feature names keys
//! relative to its section (`part_duration_s`, `ladder[0].name`); `crate::config`, which
//! composes the sections, puts them under the section's name ([`Invalid::within`]) and adds where
//! the value came from.

use std::time::Duration;

/// The `tracing` target of the one line each listener logs when bound (`listening http=ADDR`,
/// `rtmp=`, `srt=`, `chat=`): the address it got, also for a configured port 0.
/// `RUST_LOG=warn,cuecast::listen=info` shows these lines and nothing else at info.
pub const LISTEN_TARGET: &str = "cuecast::listen";

/// A value that is well typed but not acceptable: which key, and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key `{key}`: {reason}")]
pub struct Invalid {
    /// The key, relative to the section that checked it (`window_s`, `[1].key`).
    pub key: String,
    /// Why the value is refused.
    pub reason: String,
}

impl Invalid {
    /// An error for `key`.
    pub fn new(key: impl Into<String>, reason: impl Into<String>) -> Invalid {
        Invalid {
            key: key.into(),
            reason: reason.into(),
        }
    }

    /// The same error with its key under `parent`: `hls` + `window_s` → `hls.window_s`,
    /// `streams` + `[0].name` → `streams[0].name`.
    pub fn within(self, parent: &str) -> Invalid {
        let separator = if self.key.starts_with('[') { "" } else { "." };
        Invalid {
            key: format!("{parent}{separator}{}", self.key),
            reason: self.reason,
        }
    }
}

/// Checks a duration in seconds: finite, above zero and below 10⁷ (about 115 days).
pub fn positive_secs(key: &str, value: f64) -> Result<(), Invalid> {
    if value.is_finite() && value > 0.0 && value < 1e7 {
        Ok(())
    } else {
        Err(Invalid::new(
            key,
            format!("must be a positive number of seconds, got {value}"),
        ))
    }
}

/// Seconds from config → [`Duration`] (checked positive and finite by [`positive_secs`]).
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value)
}

/// Seconds from config that may be zero → [`Duration`]; anything not representable is zero.
pub fn secs_or_zero(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

/// Milliseconds from config where 0 means "off".
pub fn millis_or_off(value: u64) -> Option<Duration> {
    (value > 0).then(|| Duration::from_millis(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_go_under_their_section() {
        let err = Invalid::new("window_s", "too short").within("hls");
        assert_eq!(err.key, "hls.window_s");
        assert_eq!(err.to_string(), "key `hls.window_s`: too short");
        let err = Invalid::new("name", "bad").within("[2]").within("streams");
        assert_eq!(err.key, "streams[2].name");
        let err = Invalid::new("width", "odd")
            .within("[0]")
            .within("ladder")
            .within("media");
        assert_eq!(err.key, "media.ladder[0].width");
    }

    #[test]
    fn seconds() {
        assert!(positive_secs("a", 0.5).is_ok());
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, 1e7] {
            let err = positive_secs("a", bad).unwrap_err();
            assert!(err.reason.contains("positive number of seconds"), "{err}");
        }
        assert_eq!(secs(1.5), Duration::from_millis(1500));
        assert_eq!(secs_or_zero(0.0), Duration::ZERO);
        assert_eq!(secs_or_zero(-1.0), Duration::ZERO);
        assert_eq!(millis_or_off(0), None);
        assert_eq!(millis_or_off(20), Some(Duration::from_millis(20)));
    }
}
