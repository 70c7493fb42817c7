//! FLV audio/video tag bodies → protocol-neutral [`MediaUnit`]s, with the timestamp mapping.
//!
//! Implements the tag body layouts of the *Adobe Flash Video File Format Specification* 10.1,
//! Annex E (`VIDEODATA`/`AVCVIDEOPACKET`, `AUDIODATA`/`AACAUDIODATA`), as carried in RTMP audio
//! (type 8) and video (type 9) messages:
//!
//! ```text
//! video: FrameType(4) CodecID(4) | AVCPacketType(8) CompositionTime(SI24) | data
//! audio: SoundFormat(4) SoundRate(2) SoundSize(1) SoundType(1) | AACPacketType(8) | data
//! ```
//!
//! Only H.264 (CodecID 7) and AAC (SoundFormat 10) are supported. Enhanced RTMP tags
//! (video `IsExHeader` bit, audio SoundFormat 9) are recognised and refused with
//! [`FlvError::UnsupportedEnhanced`] until E-RTMP parsing lands. Payloads are zero-copy slices of
//! the tag body.
//!
//! Timestamps go through one [`Timeline`] per publish, shared by audio and video.

use bytes::Bytes;

use crate::media::frame::{AudioConfig, AudioFrame, MediaUnit, NS_PER_MS, VideoConfig, VideoFrame};

/// FLV video CodecID for AVC (H.264).
const CODEC_AVC: u8 = 7;
/// FLV SoundFormat for AAC.
const SOUND_FORMAT_AAC: u8 = 10;
/// FLV SoundFormat signalling an Enhanced RTMP audio header (`ExHeader`).
const SOUND_FORMAT_EX_HEADER: u8 = 9;
/// Video FrameType 1: keyframe (for AVC, a seekable frame).
const FRAME_TYPE_KEY: u8 = 1;
/// Video FrameType 5: video info/command frame.
const FRAME_TYPE_COMMAND: u8 = 5;
/// Bit of the first video byte marking an Enhanced RTMP header (`IsExHeader`).
const VIDEO_EX_HEADER: u8 = 0x80;
/// AVCPacketType / AACPacketType: sequence header.
const PACKET_SEQUENCE_HEADER: u8 = 0;
/// AVCPacketType / AACPacketType: NALUs / raw frame.
const PACKET_DATA: u8 = 1;
/// AVCPacketType: end of sequence.
const PACKET_END_OF_SEQUENCE: u8 = 2;
/// Bytes before the AVC payload: flags, packet type, 24-bit composition time.
const AVC_HEADER_LEN: usize = 5;
/// Bytes before the AAC payload: flags, packet type.
const AAC_HEADER_LEN: usize = 2;
/// Half the 32-bit millisecond range: a larger backwards jump is a wrap forwards.
const HALF_RANGE: i64 = 1 << 31;
/// The 32-bit millisecond range.
const FULL_RANGE: i64 = 1 << 32;

/// Errors from parsing FLV tag bodies.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FlvError {
    /// The tag body is shorter than its header requires.
    #[error("FLV tag body truncated")]
    Truncated,
    /// A video codec other than H.264.
    #[error("unsupported FLV video codec id {0}")]
    UnsupportedVideoCodec(u8),
    /// An audio codec other than AAC.
    #[error("unsupported FLV audio sound format {0}")]
    UnsupportedAudioCodec(u8),
    /// An Enhanced RTMP tag (with the FourCC it names); not parsed yet.
    #[error("Enhanced RTMP codec {0:?} is not supported yet")]
    UnsupportedEnhanced(String),
    /// An AVCPacketType or AACPacketType outside the spec.
    #[error("unknown FLV packet type {0}")]
    UnknownPacketType(u8),
}

/// Maps 32-bit RTMP millisecond timestamps onto a 64-bit nanosecond timeline starting at 0.
///
/// The first timestamp seen maps to 0. Timestamps are unwrapped to 64 bits by choosing the
/// candidate closest to the last one seen (so a jump backwards by more than 2^31 ms is a wrap
/// forwards); timestamps before the first one clamp to 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Timeline {
    /// Unwrapped first timestamp (ms), once one was seen.
    first: Option<i64>,
    /// Unwrapped last timestamp (ms).
    last: i64,
}

impl Timeline {
    /// An empty timeline.
    pub fn new() -> Self {
        Self::default()
    }

    /// The position of `timestamp_ms` on the timeline, in nanoseconds.
    pub fn map(&mut self, timestamp_ms: u32) -> u64 {
        let ts = i64::from(timestamp_ms);
        let Some(first) = self.first else {
            self.first = Some(ts);
            self.last = ts;
            return 0;
        };
        // Same 2^32 epoch as `last`, then move one epoch if that is closer.
        let mut unwrapped = (self.last & !(FULL_RANGE - 1)) | ts;
        if unwrapped - self.last > HALF_RANGE {
            unwrapped -= FULL_RANGE;
        } else if self.last - unwrapped > HALF_RANGE {
            unwrapped += FULL_RANGE;
        }
        self.last = unwrapped;
        u64::try_from(unwrapped - first)
            .unwrap_or(0)
            .saturating_mul(NS_PER_MS)
    }
}

/// Turns one publish's FLV tag bodies into [`MediaUnit`]s.
#[derive(Debug, Clone, Default)]
pub struct FlvUnpacker {
    /// Timeline shared by audio and video.
    timeline: Timeline,
}

impl FlvUnpacker {
    /// A fresh unpacker (one per publish).
    pub fn new() -> Self {
        Self::default()
    }

    /// FLV video tag body at RTMP timestamp `timestamp_ms`. `Ok(None)` for tags carrying nothing
    /// to forward (AVC end-of-sequence, video info/command frames, empty NALU packets).
    /// Produces [`MediaUnit::VideoConfig`] for an AVC sequence header (AVCPacketType 0, body =
    /// avcC) and [`MediaUnit::Video`] for NALUs (AVCPacketType 1) with dts = timeline(timestamp),
    /// pts = dts + composition time (signed 24-bit ms; clamped at 0), keyframe = frame type 1.
    pub fn video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Option<MediaUnit>, FlvError> {
        let &first = body.first().ok_or(FlvError::Truncated)?;
        if first & VIDEO_EX_HEADER != 0 {
            return Err(FlvError::UnsupportedEnhanced(fourcc(&body)?));
        }
        let frame_type = first >> 4;
        let codec = first & 0x0F;
        if frame_type == FRAME_TYPE_COMMAND {
            return Ok(None);
        }
        if codec != CODEC_AVC {
            return Err(FlvError::UnsupportedVideoCodec(codec));
        }
        let header = body.get(..AVC_HEADER_LEN).ok_or(FlvError::Truncated)?;
        let &[_, packet_type, c0, c1, c2] = header else {
            return Err(FlvError::Truncated);
        };
        let payload = body.slice(AVC_HEADER_LEN..);
        match packet_type {
            PACKET_SEQUENCE_HEADER => Ok(Some(MediaUnit::VideoConfig(VideoConfig::H264 {
                avcc: payload,
            }))),
            PACKET_DATA => {
                let dts = self.timeline.map(timestamp_ms);
                if payload.is_empty() {
                    return Ok(None);
                }
                // SI24: sign-extend the 24-bit big-endian value.
                let composition_ms = i64::from(i32::from_be_bytes([c0, c1, c2, 0]) >> 8);
                let offset_ns = composition_ms * NS_PER_MS as i64;
                let pts = i64::try_from(dts)
                    .unwrap_or(i64::MAX)
                    .saturating_add(offset_ns)
                    .max(0) as u64;
                Ok(Some(MediaUnit::Video(VideoFrame {
                    dts,
                    pts,
                    keyframe: frame_type == FRAME_TYPE_KEY,
                    data: payload,
                })))
            }
            PACKET_END_OF_SEQUENCE => Ok(None),
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    /// FLV audio tag body: AAC (sound format 10) sequence header (AACPacketType 0, body =
    /// AudioSpecificConfig) → [`MediaUnit::AudioConfig`]; raw (1) → [`MediaUnit::Audio`].
    pub fn audio(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Option<MediaUnit>, FlvError> {
        let &first = body.first().ok_or(FlvError::Truncated)?;
        let format = first >> 4;
        if format == SOUND_FORMAT_EX_HEADER {
            return Err(FlvError::UnsupportedEnhanced(fourcc(&body)?));
        }
        if format != SOUND_FORMAT_AAC {
            return Err(FlvError::UnsupportedAudioCodec(format));
        }
        let &packet_type = body.get(1).ok_or(FlvError::Truncated)?;
        let payload = body.slice(AAC_HEADER_LEN..);
        match packet_type {
            PACKET_SEQUENCE_HEADER => Ok(Some(MediaUnit::AudioConfig(AudioConfig::Aac {
                asc: payload,
            }))),
            PACKET_DATA => {
                let pts = self.timeline.map(timestamp_ms);
                if payload.is_empty() {
                    return Ok(None);
                }
                Ok(Some(MediaUnit::Audio(AudioFrame { pts, data: payload })))
            }
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }
}

/// The FourCC after the first byte of an Enhanced RTMP tag, as text.
fn fourcc(body: &[u8]) -> Result<String, FlvError> {
    let code = body.get(1..5).ok_or(FlvError::Truncated)?;
    Ok(String::from_utf8_lossy(code).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: u64 = NS_PER_MS;

    fn avc(frame_type: u8, packet_type: u8, cts: i32, data: &[u8]) -> Bytes {
        let c = cts.to_be_bytes();
        let mut v = vec![(frame_type << 4) | CODEC_AVC, packet_type, c[1], c[2], c[3]];
        v.extend_from_slice(data);
        Bytes::from(v)
    }

    fn aac(packet_type: u8, data: &[u8]) -> Bytes {
        let mut v = vec![0xAF, packet_type];
        v.extend_from_slice(data);
        Bytes::from(v)
    }

    #[test]
    fn sequence_headers() {
        let mut u = FlvUnpacker::new();
        let avcc = [1, 0x64, 0, 0x1f, 0xff];
        assert_eq!(
            u.video(0, avc(1, 0, 0, &avcc)),
            Ok(Some(MediaUnit::VideoConfig(VideoConfig::H264 {
                avcc: Bytes::copy_from_slice(&avcc)
            })))
        );
        assert_eq!(
            u.audio(0, aac(0, &[0x12, 0x10])),
            Ok(Some(MediaUnit::AudioConfig(AudioConfig::Aac {
                asc: Bytes::from_static(&[0x12, 0x10])
            })))
        );
    }

    #[test]
    fn nalus_with_composition_time_and_keyframe_flag() {
        let mut u = FlvUnpacker::new();
        let body = avc(1, 1, 66, &[0, 0, 0, 1, 0x65]);
        let Ok(Some(MediaUnit::Video(frame))) = u.video(1000, body.clone()) else {
            panic!("expected a frame");
        };
        assert_eq!((frame.dts, frame.pts, frame.keyframe), (0, 66 * MS, true));
        assert_eq!(&frame.data[..], &[0, 0, 0, 1, 0x65]);
        // Zero-copy: the payload points into the tag body.
        assert_eq!(frame.data.as_ptr(), body[5..].as_ptr());

        let Ok(Some(MediaUnit::Video(frame))) = u.video(1033, avc(2, 1, -20, &[0, 0, 0, 1, 0x41]))
        else {
            panic!("expected a frame");
        };
        assert_eq!(
            (frame.dts, frame.pts, frame.keyframe),
            (33 * MS, 13 * MS, false)
        );

        // Negative composition time below the timeline start clamps at 0.
        let mut u = FlvUnpacker::new();
        let Ok(Some(MediaUnit::Video(frame))) = u.video(0, avc(1, 1, -40, &[1])) else {
            panic!("expected a frame");
        };
        assert_eq!((frame.dts, frame.pts), (0, 0));
    }

    #[test]
    fn nothing_to_forward() {
        let mut u = FlvUnpacker::new();
        assert_eq!(u.video(0, avc(1, 2, 0, &[])), Ok(None));
        assert_eq!(u.video(0, Bytes::from_static(&[0x57, 0])), Ok(None));
        assert_eq!(
            u.video(0, avc(1, 3, 0, &[])),
            Err(FlvError::UnknownPacketType(3))
        );
    }

    #[test]
    fn aac_raw_frame() {
        let mut u = FlvUnpacker::new();
        assert!(matches!(u.video(500, avc(1, 1, 0, &[1])), Ok(Some(_))));
        let Ok(Some(MediaUnit::Audio(frame))) = u.audio(523, aac(1, &[0x21, 0x10])) else {
            panic!("expected audio");
        };
        assert_eq!(frame.pts, 23 * MS);
        assert_eq!(&frame.data[..], &[0x21, 0x10]);
    }

    #[test]
    fn unsupported_and_truncated() {
        let mut u = FlvUnpacker::new();
        // Sorenson H.263 (2), HEVC-in-legacy-FLV (12).
        assert_eq!(
            u.video(0, Bytes::from_static(&[0x12, 0])),
            Err(FlvError::UnsupportedVideoCodec(2))
        );
        assert_eq!(
            u.video(0, Bytes::from_static(&[0x1C, 0])),
            Err(FlvError::UnsupportedVideoCodec(12))
        );
        // MP3 (2).
        assert_eq!(
            u.audio(0, Bytes::from_static(&[0x2F, 0])),
            Err(FlvError::UnsupportedAudioCodec(2))
        );
        assert_eq!(u.video(0, Bytes::new()), Err(FlvError::Truncated));
        assert_eq!(
            u.video(0, Bytes::from_static(&[0x17, 1, 0])),
            Err(FlvError::Truncated)
        );
        assert_eq!(u.audio(0, Bytes::new()), Err(FlvError::Truncated));
        assert_eq!(
            u.audio(0, Bytes::from_static(&[0xAF])),
            Err(FlvError::Truncated)
        );
    }

    #[test]
    fn enhanced_rtmp_is_refused_for_now() {
        let mut u = FlvUnpacker::new();
        // IsExHeader | keyframe, PacketType SequenceStart, FourCC "hvc1".
        assert_eq!(
            u.video(0, Bytes::from_static(b"\x90hvc1\x01")),
            Err(FlvError::UnsupportedEnhanced("hvc1".into()))
        );
        assert_eq!(
            u.audio(0, Bytes::from_static(b"\x90Opus")),
            Err(FlvError::UnsupportedEnhanced("Opus".into()))
        );
        assert_eq!(
            u.video(0, Bytes::from_static(b"\x90hv")),
            Err(FlvError::Truncated)
        );
    }

    #[test]
    fn timeline_starts_at_zero_and_interleaves_tracks() {
        let mut t = Timeline::new();
        assert_eq!(t.map(5000), 0); // video
        assert_eq!(t.map(4990), 0); // audio slightly earlier clamps
        assert_eq!(t.map(5033), 33 * MS);
        assert_eq!(t.map(5012), 12 * MS); // audio behind video
        assert_eq!(t.map(5066), 66 * MS);
    }

    #[test]
    fn timeline_wraps_at_32_bits() {
        let mut t = Timeline::new();
        assert_eq!(t.map(0xFFFF_FFF0), 0);
        assert_eq!(t.map(0xFFFF_FFFF), 15 * MS);
        assert_eq!(t.map(0), 16 * MS);
        assert_eq!(t.map(0xFFFF_FFFE), 14 * MS); // jitter back across the wrap
        assert_eq!(t.map(40), 56 * MS);
        // A second wrap.
        let mut t = Timeline::new();
        let mut ts = 0u32;
        let mut expected = 0u64;
        assert_eq!(t.map(ts), 0);
        for _ in 0..3 {
            for _ in 0..4 {
                ts = ts.wrapping_add(0x4000_0000);
                expected += 0x4000_0000;
                assert_eq!(t.map(ts), expected * MS);
            }
        }
    }

    #[test]
    fn timeline_backwards_jitter_before_start_clamps() {
        let mut t = Timeline::new();
        assert_eq!(t.map(10), 0);
        assert_eq!(t.map(3), 0);
        assert_eq!(t.map(0xFFFF_FFFF), 0); // just before 0, not 49 days later
        assert_eq!(t.map(20), 10 * MS);
    }
}
