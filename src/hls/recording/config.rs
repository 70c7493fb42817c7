//! `[recordings]`: whether live streams are recorded, where, how much the write queue may hold,
//! and the retention limits.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use super::retention::Limits;
use crate::setting::Invalid;

/// `[recordings]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Record every live stream.
    pub enabled: bool,
    /// Directory of the recordings; relative paths are under `server.data_dir`.
    pub dir: PathBuf,
    /// Finished recordings older than this many days are deleted (0: no age limit).
    pub max_age_days: f64,
    /// The oldest finished recordings are deleted while all take more than this many GB
    /// (10⁹ bytes; 0: no size limit).
    pub max_total_gb: f64,
    /// Most bytes of segments waiting for the disk per stream, MB (10⁶ bytes); a segment
    /// beyond it is not recorded (logged, the recording marked incomplete).
    pub queue_mb: u64,
    /// How often retention runs, seconds.
    pub retention_interval_s: f64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[recordings]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("max_age_days", self.max_age_days),
            ("max_total_gb", self.max_total_gb),
        ] {
            if !(value.is_finite() && (0.0..1e9).contains(&value)) {
                return Err(Invalid::new(
                    key,
                    format!("must be 0 (no limit) or a positive number, got {value}"),
                ));
            }
        }
        if self.dir.as_os_str().is_empty() {
            return Err(Invalid::new("dir", "must not be empty"));
        }
        if !(1..=65_536).contains(&self.queue_mb) {
            return Err(Invalid::new("queue_mb", "must be 1 to 65536"));
        }
        crate::setting::positive_secs("retention_interval_s", self.retention_interval_s)
    }

    /// The recordings directory for data directory `data_dir`.
    pub fn dir(&self, data_dir: &Path) -> PathBuf {
        data_dir.join(&self.dir)
    }

    /// The retention limits.
    pub fn limits(&self) -> Limits {
        Limits {
            max_age: (self.max_age_days > 0.0)
                .then(|| chrono::Duration::milliseconds((self.max_age_days * 86_400_000.0) as i64)),
            max_total_bytes: (self.max_total_gb > 0.0).then_some((self.max_total_gb * 1e9) as u64),
        }
    }

    /// The write queue's bound, bytes.
    pub fn queue_bytes(&self) -> usize {
        usize::try_from(self.queue_mb.saturating_mul(1_000_000)).unwrap_or(usize::MAX)
    }

    /// How often retention runs.
    pub fn retention_interval(&self) -> Duration {
        crate::setting::secs(self.retention_interval_s)
    }
}

#[cfg(test)]
pub(crate) fn example() -> Config {
    Config {
        enabled: true,
        dir: "recordings".into(),
        max_age_days: 30.0,
        max_total_gb: 0.0,
        queue_mb: 64,
        retention_interval_s: 60.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_values_name_their_key() {
        assert_eq!(example().validate(), Ok(()));
        type Spoil = fn(&mut Config);
        let cases: [(Spoil, &str); 5] = [
            (|c| c.max_age_days = -1.0, "max_age_days"),
            (|c| c.max_total_gb = f64::NAN, "max_total_gb"),
            (|c| c.dir = PathBuf::new(), "dir"),
            (|c| c.queue_mb = 0, "queue_mb"),
            (|c| c.retention_interval_s = 0.0, "retention_interval_s"),
        ];
        for (spoil, key) in cases {
            let mut c = example();
            spoil(&mut c);
            assert_eq!(c.validate().map_err(|e| e.key), Err(key.to_string()));
        }
    }

    #[test]
    fn limits_and_paths() {
        let mut config = example();
        config.max_total_gb = 1.5;
        let limits = config.limits();
        assert_eq!(limits.max_age, Some(chrono::Duration::days(30)));
        assert_eq!(limits.max_total_bytes, Some(1_500_000_000));
        config.max_age_days = 0.0;
        assert_eq!(config.limits().max_age, None);
        assert_eq!(
            config.dir(Path::new("/data")),
            PathBuf::from("/data/recordings")
        );
        config.dir = "/srv/rec".into();
        assert_eq!(config.dir(Path::new("/data")), PathBuf::from("/srv/rec"));
        assert_eq!(config.queue_bytes(), 64_000_000);
    }
}
