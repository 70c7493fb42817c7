//! `[hls]`: segment and part targets, the playlist window, retention of ended streams, and the
//! origin's cache lifetimes.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::origin::{CachePolicy, Origin};
use super::packager::PackagerConfig;
use super::registry::Registry;
use crate::setting::{Invalid, positive_secs, secs};

/// `[hls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Serve LL-HLS.
    pub low_latency: bool,
    /// Segment target, seconds.
    pub segment_duration_s: f64,
    /// Part target, seconds.
    pub part_duration_s: f64,
    /// Playlist window, seconds.
    pub window_s: f64,
    /// Retention of ended streams, seconds.
    pub ended_retention_s: f64,
    /// Cache-Control max-age of segments, seconds.
    pub segment_max_age_s: u64,
    /// Cache-Control max-age of the multivariant playlist, seconds.
    pub multivariant_max_age_s: u64,
    /// Cache-Control max-age of media playlists, seconds.
    pub playlist_max_age_s: u64,
    /// Cache-Control max-age of blocking-reload playlist responses, seconds.
    pub blocking_playlist_max_age_s: u64,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[hls]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("segment_duration_s", self.segment_duration_s),
            ("part_duration_s", self.part_duration_s),
            ("window_s", self.window_s),
            ("ended_retention_s", self.ended_retention_s),
        ] {
            positive_secs(key, value)?;
        }
        if self.part_duration_s > self.segment_duration_s {
            return Err(Invalid::new(
                "part_duration_s",
                "must not be longer than hls.segment_duration_s",
            ));
        }
        if self.window_s < 3.0 * self.segment_duration_s {
            return Err(Invalid::new(
                "window_s",
                "must hold at least 3 segments (3 × hls.segment_duration_s)",
            ));
        }
        Ok(())
    }

    /// The packager's targets and window.
    pub fn packager(&self) -> PackagerConfig {
        PackagerConfig {
            segment_target: secs(self.segment_duration_s),
            part_target: secs(self.part_duration_s),
            window: secs(self.window_s),
        }
    }

    /// An empty registry of streams packaged with these targets.
    pub fn registry(&self) -> Registry {
        Registry::new(self.packager(), secs(self.ended_retention_s))
    }

    /// The origin serving the streams of `registry`.
    pub fn origin(&self, registry: Arc<Registry>) -> Origin {
        Origin::new(
            registry,
            CachePolicy {
                segment_max_age: Duration::from_secs(self.segment_max_age_s),
                multivariant_max_age: Duration::from_secs(self.multivariant_max_age_s),
                playlist_max_age: Duration::from_secs(self.playlist_max_age_s),
                blocking_playlist_max_age: Duration::from_secs(self.blocking_playlist_max_age_s),
            },
            self.low_latency,
        )
    }
}
