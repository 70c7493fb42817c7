//! Protocol-neutral media units handed from ingest to the media pipeline.
//!
//! Ingest protocols (RTMP today, SRT later) normalise what they receive into these types:
//! codec configuration records and access units with 64-bit nanosecond timestamps on the
//! stream's own timeline (0 = first media timestamp seen from the publisher).

use bytes::Bytes;

use crate::hls::timed::{FrameTime, Ingested};

/// Nanoseconds per millisecond, the unit of RTMP/FLV timestamps.
pub const NS_PER_MS: u64 = 1_000_000;

/// Video codec configuration, sent before the first coded frame and again on changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VideoConfig {
    /// H.264: the AVCDecoderConfigurationRecord (`avcC`, ISO/IEC 14496-15 §5.3.3.1).
    H264 {
        /// The record's bytes.
        avcc: Bytes,
    },
    /// H.265: the HEVCDecoderConfigurationRecord (`hvcC`, ISO/IEC 14496-15 §8.3.3.1).
    H265 {
        /// The record's bytes.
        hvcc: Bytes,
    },
    /// AV1: the AV1CodecConfigurationRecord (`av1C`, AV1-ISOBMFF §2.3.3). Transcoded only
    /// (the ladder decodes it); not passed through.
    Av1 {
        /// The record's bytes (with its sequence header OBU).
        av1c: Bytes,
    },
}

/// Audio codec configuration, sent before the first frame and again on changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AudioConfig {
    /// AAC: the AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
    Aac {
        /// The AudioSpecificConfig's bytes.
        asc: Bytes,
    },
}

/// One unit of media from a publisher, in decode order per track.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaUnit {
    /// New video decoder configuration.
    VideoConfig(VideoConfig),
    /// New audio decoder configuration.
    AudioConfig(AudioConfig),
    /// One coded video access unit.
    Video(VideoFrame),
    /// One coded audio frame.
    Audio(AudioFrame),
}

impl Ingested for MediaUnit {
    fn frame_time(&self) -> Option<FrameTime> {
        match self {
            MediaUnit::Video(frame) => Some(FrameTime {
                media_ns: frame.pts,
                video: true,
            }),
            MediaUnit::Audio(frame) => Some(FrameTime {
                media_ns: frame.pts,
                video: false,
            }),
            MediaUnit::VideoConfig(_) | MediaUnit::AudioConfig(_) => None,
        }
    }
}

/// A coded video access unit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoFrame {
    /// Decode timestamp in nanoseconds on the stream timeline.
    pub dts: u64,
    /// Presentation timestamp in nanoseconds (`dts` + composition offset, never below 0).
    pub pts: u64,
    /// True for a random access point (IDR / keyframe).
    pub keyframe: bool,
    /// Length-prefixed NAL units as carried in FLV/MP4 (H.264 `avc`, H.265 `hvc1` stream
    /// format); the length size is the one the avcC/hvcC declares (4 bytes in practice).
    /// For AV1: the OBUs of one temporal unit (low-overhead format, as in an MP4 sample).
    pub data: Bytes,
}

/// A coded audio frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioFrame {
    /// Presentation (= decode) timestamp in nanoseconds on the stream timeline.
    pub pts: u64,
    /// For AAC: one raw access unit without ADTS header (`raw` stream format).
    pub data: Bytes,
}
