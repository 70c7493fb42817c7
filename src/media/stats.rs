//! Feeding a stream's live statistics ([`crate::metrics::stream::StreamStats`]) from the media
//! units its publisher sends: codec facts from the decoder configurations, sizes and
//! timestamps from the frames.

use crate::metrics::stream::{AudioFacts, StreamStats, VideoFacts};

use super::codec::AacInfo;
use super::frame::{AudioConfig, MediaUnit};
use super::pipeline::source_video;

/// Counts `unit`, arrived at `now_ns` on `stats`' clock. A configuration that does not parse
/// declares nothing (the pipeline refuses it).
pub fn observe(stats: &StreamStats, now_ns: u64, unit: &MediaUnit) {
    match unit {
        MediaUnit::VideoConfig(config) => {
            if let Ok(video) = source_video(config) {
                stats.set_video(VideoFacts {
                    codec: video.codec.name(),
                    width: video.width,
                    height: video.height,
                });
            }
        }
        MediaUnit::AudioConfig(AudioConfig::Aac { asc }) => {
            if let Ok(info) = AacInfo::from_asc(asc) {
                stats.set_audio(AudioFacts {
                    codec: "aac",
                    sample_rate: info.sample_rate,
                    channels: info.channels,
                });
            }
        }
        MediaUnit::Video(frame) => stats.on_video(now_ns, frame.data.len(), frame.dts),
        MediaUnit::Audio(frame) => stats.on_audio(now_ns, frame.data.len(), frame.pts),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::media::frame::{AudioFrame, VideoConfig, VideoFrame};

    /// An avcC of H.264 High 1280x720 at 30 fps.
    const AVCC_720P: &str = "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000668ebe3cb22c0fdf8f800";

    fn hex(text: &str) -> Bytes {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).expect("hex"))
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn codec_facts_from_the_configurations_and_frames_counted() {
        let stats = StreamStats::new(std::time::Instant::now());
        stats.begin("rtmp", chrono::Utc::now());
        observe(
            &stats,
            0,
            &MediaUnit::VideoConfig(VideoConfig::H264 {
                avcc: hex(AVCC_720P),
            }),
        );
        // AAC LC, 48 kHz, stereo.
        observe(
            &stats,
            0,
            &MediaUnit::AudioConfig(AudioConfig::Aac {
                asc: Bytes::from_static(&[0x11, 0x90]),
            }),
        );
        // Garbage declares nothing.
        observe(
            &stats,
            0,
            &MediaUnit::AudioConfig(AudioConfig::Aac {
                asc: Bytes::from_static(&[0xff]),
            }),
        );
        for frame in 0..30u64 {
            let t = frame * 1_000_000_000 / 30;
            observe(
                &stats,
                t,
                &MediaUnit::Video(VideoFrame {
                    dts: t,
                    pts: t,
                    keyframe: frame == 0,
                    data: Bytes::from_static(&[0; 100]),
                }),
            );
            observe(
                &stats,
                t,
                &MediaUnit::Audio(AudioFrame {
                    pts: t,
                    data: Bytes::from_static(&[0; 10]),
                }),
            );
        }
        let snapshot = stats.snapshot(1_000_000_000);
        assert_eq!(
            snapshot.publish.video,
            Some(VideoFacts {
                codec: "h264",
                width: 1280,
                height: 720
            })
        );
        assert_eq!(
            snapshot.publish.audio,
            Some(AudioFacts {
                codec: "aac",
                sample_rate: 48_000,
                channels: 2
            })
        );
        assert_eq!(stats.ingest_bytes_total(), 30 * 110);
        assert_eq!(snapshot.dropped_frames, 0);
        assert!((snapshot.fps.expect("fps") - 30.0).abs() < 0.01);
    }
}
