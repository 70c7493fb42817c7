//! `[media]` and its `[[media.ladder]]` rungs: the pipeline templates, the track wait, and the
//! transcoding ladder.

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use super::ladder::Ladder;
use super::template::Template;
use super::{MediaError, MediaSettings};
use crate::hls::origin::is_valid_stream_name;
use crate::hls::packager::PackagerConfig;
use crate::metrics::Metrics;
use crate::setting::{Invalid, positive_secs, secs};

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Directory of pipeline templates.
    pub pipelines_dir: std::path::PathBuf,
    /// Passthrough template file name.
    pub passthrough_template: String,
    /// How long to wait for a missing track, seconds of media time.
    pub track_wait_s: f64,
    /// Ladder head template file name (decode once, `tee`).
    pub ladder_template: String,
    /// Per-rung template file name (scale, rate cap, encode, `cmafmux`, appsink).
    pub rung_template: String,
    /// Publish the publisher's own video untouched as the `source` rendition.
    pub source_rung: bool,
    /// Transcoded renditions; empty = no transcoding.
    pub ladder: Vec<RungConfig>,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[media]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("track_wait_s", self.track_wait_s)?;
        let mut rungs = HashSet::new();
        for (i, rung) in self.ladder.iter().enumerate() {
            let within = |err: Invalid| err.within(&format!("[{i}]")).within("ladder");
            rung.validate().map_err(within)?;
            if !rungs.insert(rung.name.as_str()) {
                return Err(within(Invalid::new("name", "duplicate rung name")));
            }
        }
        if self.ladder.is_empty() && !self.source_rung {
            return Err(Invalid::new(
                "source_rung",
                "must be true when media.ladder is empty (no video rendition otherwise)",
            ));
        }
        Ok(())
    }

    /// Loads and checks the templates for the packager's targets: the settings every stream
    /// pipeline shares.
    pub fn settings(
        &self,
        packager: &PackagerConfig,
        metrics: Arc<Metrics>,
    ) -> Result<MediaSettings, MediaError> {
        let values =
            MediaSettings::placeholder_values(packager.segment_target, packager.part_target);
        let template = Template::load(&self.pipelines_dir, &self.passthrough_template, &values)?;
        let ladder = if self.ladder.is_empty() {
            None
        } else {
            Some(Ladder::load(
                &self.pipelines_dir,
                &self.ladder_template,
                &self.rung_template,
                &self.ladder,
                &values,
            )?)
        };
        Ok(MediaSettings {
            template,
            values,
            track_wait_ns: secs(self.track_wait_s).as_nanos() as u64,
            metrics,
            ladder,
            source_rung: self.source_rung,
            ladder_block: false,
        })
    }
}

/// One `[[media.ladder]]` rung: an H.264 rendition transcoded from the source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Rendition name in URLs.
    pub name: String,
    /// Largest width, pixels (even).
    pub width: u32,
    /// Largest height, pixels (even).
    pub height: u32,
    /// Video bitrate, kbit/s.
    pub video_bitrate_kbps: u32,
    /// Frame rate cap, frames per second.
    pub max_fps: u32,
    /// H.264 profile.
    pub profile: String,
    /// x264 speed preset.
    pub preset: String,
    /// x264 threads for this rung's encoder (0 = x264's automatic count).
    #[serde(default = "default_rung_threads")]
    pub threads: u32,
}

/// x264 threads of a rung that does not set `threads`.
pub const DEFAULT_RUNG_THREADS: u32 = 2;

fn default_rung_threads() -> u32 {
    DEFAULT_RUNG_THREADS
}

/// H.264 profiles a rung may ask for (x264enc's caps names).
pub const H264_PROFILES: [&str; 4] = ["constrained-baseline", "baseline", "main", "high"];
/// x264 speed presets (x264enc `speed-preset`).
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// Rendition names the passthrough pipeline uses; rungs cannot take them.
pub const RESERVED_RENDITIONS: [&str; 2] = ["source", "audio"];

impl RungConfig {
    /// Checks one rung; keys are relative to the rung.
    pub fn validate(&self) -> Result<(), Invalid> {
        if !is_valid_stream_name(&self.name) || RESERVED_RENDITIONS.contains(&self.name.as_str()) {
            return Err(Invalid::new(
                "name",
                format!(
                    "`{}` must be 1-64 letters, digits, '-' or '_' and not one of {RESERVED_RENDITIONS:?}",
                    self.name
                ),
            ));
        }
        for (field, value) in [("width", self.width), ("height", self.height)] {
            if !(16..=7680).contains(&value) || value % 2 != 0 {
                return Err(Invalid::new(
                    field,
                    format!("must be an even number within 16..=7680, got {value}"),
                ));
            }
        }
        if !(50..=100_000).contains(&self.video_bitrate_kbps) {
            return Err(Invalid::new(
                "video_bitrate_kbps",
                "must be within 50..=100000",
            ));
        }
        if !(1..=240).contains(&self.max_fps) {
            return Err(Invalid::new("max_fps", "must be within 1..=240"));
        }
        if !H264_PROFILES.contains(&self.profile.as_str()) {
            return Err(Invalid::new(
                "profile",
                format!("must be one of {H264_PROFILES:?}"),
            ));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(Invalid::new(
                "preset",
                format!("must be one of {X264_PRESETS:?}"),
            ));
        }
        if self.threads > 64 {
            return Err(Invalid::new(
                "threads",
                "must be within 0..=64 (0 = x264's automatic count)",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rung(name: &str, width: u32) -> RungConfig {
        RungConfig {
            name: name.into(),
            width,
            height: 360,
            video_bitrate_kbps: 800,
            max_fps: 30,
            profile: "main".into(),
            preset: "veryfast".into(),
            threads: DEFAULT_RUNG_THREADS,
        }
    }

    fn config(ladder: Vec<RungConfig>, source_rung: bool) -> Config {
        Config {
            pipelines_dir: "pipelines".into(),
            passthrough_template: "passthrough.pipeline".into(),
            track_wait_s: 1.0,
            ladder_template: "ladder.pipeline".into(),
            rung_template: "rung.pipeline".into(),
            source_rung,
            ladder,
        }
    }

    #[test]
    fn rung_errors_name_the_rung_and_field() {
        assert_eq!(config(vec![rung("360p", 640)], false).validate(), Ok(()));
        let key = |config: Config| config.validate().unwrap_err().key;
        assert_eq!(
            key(config(vec![rung("360p", 641)], true)),
            "ladder[0].width"
        );
        assert_eq!(
            key(config(vec![rung("source", 640)], true)),
            "ladder[0].name"
        );
        let twins = vec![rung("360p", 640), rung("360p", 640)];
        assert_eq!(key(config(twins, true)), "ladder[1].name");
        assert_eq!(key(config(Vec::new(), false)), "source_rung");
    }
}
