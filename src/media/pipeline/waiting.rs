//! Before the start: units held in order until the tracks are known.

use std::collections::VecDeque;

use crate::media::frame::{AudioConfig, MediaUnit, VideoConfig};

/// A publish whose tracks are not known yet.
#[derive(Default)]
pub(super) struct Waiting {
    /// Video configuration, once seen.
    pub(super) video: Option<VideoConfig>,
    /// Audio configuration, once seen.
    pub(super) audio: Option<AudioConfig>,
    /// Coded frames held until the start, in arrival order.
    pub(super) pending: VecDeque<MediaUnit>,
    /// Bytes held in `pending`.
    pub(super) pending_bytes: usize,
    /// Media time of the first coded frame, ns.
    first_time: Option<u64>,
}

impl Waiting {
    /// Holds `unit`; true once the pipeline can start.
    pub(super) fn hold(&mut self, unit: MediaUnit, track_wait_ns: u64) -> bool {
        match unit {
            MediaUnit::VideoConfig(config) => self.video = Some(config),
            MediaUnit::AudioConfig(config) => self.audio = Some(config),
            MediaUnit::Video(_) | MediaUnit::Audio(_) => {
                let has_config = match &unit {
                    MediaUnit::Video(_) => self.video.is_some(),
                    _ => self.audio.is_some(),
                };
                // Frames before their decoder configuration cannot be decoded: drop them.
                if has_config {
                    let time = unit_time(&unit).unwrap_or(0);
                    self.first_time.get_or_insert(time);
                    self.pending_bytes += unit_len(&unit);
                    self.pending.push_back(unit);
                }
            }
        }
        if self.video.is_some() && self.audio.is_some() {
            return true;
        }
        let waited = match (self.first_time, self.pending.back().and_then(unit_time)) {
            (Some(first), Some(last)) => last.saturating_sub(first),
            _ => 0,
        };
        (self.video.is_some() || self.audio.is_some()) && waited >= track_wait_ns
    }
}

/// A coded unit's time on the stream timeline: video DTS, audio PTS; `None` for a configuration.
pub(super) fn unit_time(unit: &MediaUnit) -> Option<u64> {
    match unit {
        MediaUnit::Video(frame) => Some(frame.dts),
        MediaUnit::Audio(frame) => Some(frame.pts),
        _ => None,
    }
}

/// Bytes of coded data in `unit`.
fn unit_len(unit: &MediaUnit) -> usize {
    match unit {
        MediaUnit::Video(frame) => frame.data.len(),
        MediaUnit::Audio(frame) => frame.data.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::frame::{AudioFrame, VideoFrame};

    fn video(dts: u64) -> MediaUnit {
        MediaUnit::Video(VideoFrame {
            dts,
            pts: dts,
            keyframe: true,
            data: Bytes::from_static(&[0; 10]),
        })
    }

    fn audio(pts: u64) -> MediaUnit {
        MediaUnit::Audio(AudioFrame {
            pts,
            data: Bytes::from_static(&[0; 4]),
        })
    }

    fn video_config() -> MediaUnit {
        MediaUnit::VideoConfig(VideoConfig::H264 {
            avcc: Bytes::from_static(b"avcC"),
        })
    }

    fn audio_config() -> MediaUnit {
        MediaUnit::AudioConfig(AudioConfig::Aac {
            asc: Bytes::from_static(b"asc"),
        })
    }

    #[test]
    fn frames_before_their_configuration_are_dropped() {
        let mut waiting = Waiting::default();
        assert!(!waiting.hold(video(0), 1_000));
        assert!(!waiting.hold(audio(0), 1_000));
        assert!(waiting.pending.is_empty());
        assert_eq!(waiting.pending_bytes, 0);
        assert!(!waiting.hold(video_config(), 1_000));
        assert!(!waiting.hold(video(10), 1_000));
        // Audio still has no configuration: its frame is dropped, the video frame held.
        assert!(!waiting.hold(audio(20), 1_000));
        assert_eq!(waiting.pending, [video(10)]);
        assert_eq!(waiting.pending_bytes, 10);
    }

    #[test]
    fn both_configurations_start_at_once() {
        let mut waiting = Waiting::default();
        assert!(!waiting.hold(audio_config(), u64::MAX));
        assert!(!waiting.hold(audio(0), u64::MAX));
        assert!(waiting.hold(video_config(), u64::MAX));
    }

    #[test]
    fn one_track_starts_after_the_wait_in_media_time() {
        let mut waiting = Waiting::default();
        assert!(!waiting.hold(video_config(), 1_000));
        assert!(!waiting.hold(video(5_000), 1_000));
        assert!(!waiting.hold(video(5_999), 1_000));
        assert!(waiting.hold(video(6_000), 1_000));
        assert_eq!(waiting.pending.len(), 3);
    }

    #[test]
    fn no_configuration_never_starts() {
        let mut waiting = Waiting::default();
        for t in [0, 10_000, 1_000_000] {
            assert!(!waiting.hold(video(t), 0));
        }
    }
}
