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
//! Enhanced RTMP video (veovera *Enhanced RTMP* v1/v2, `ExVideoTagHeader`) is parsed for the
//! FourCCs `hvc1` (H.265), `avc1` (H.264) and `av01` (AV1):
//!
//! ```text
//! video: IsExHeader(1) FrameType(3) PacketType(4) | FourCC(32) | [CompositionTime(SI24)] data
//! ```
//!
//! "CompositionTime" is present only for PacketType 1 (`CodedFrames`) of `avc1`/`hvc1`;
//! PacketType 3 (`CodedFramesX`) implies a composition time of 0. For `av01`, `SequenceStart`
//! carries the AV1CodecConfigurationRecord and `CodedFrames` the OBUs of a temporal unit.
//!
//! Supported: H.264 (legacy CodecID 7 or E-RTMP `avc1`), H.265 (E-RTMP `hvc1`), AV1 (E-RTMP
//! `av01`) and AAC (SoundFormat 10). Other E-RTMP FourCCs (`vp09`, E-RTMP audio) are refused with
//! [`FlvError::UnsupportedEnhanced`]; the E-RTMP v2 `Multitrack` and `ModEx` packet types with
//! [`FlvError::UnsupportedEnhancedPacket`]. Payloads are zero-copy slices of the tag body.
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
/// E-RTMP VideoPacketType 0: `SequenceStart` (body = decoder configuration record).
const EX_SEQUENCE_START: u8 = 0;
/// E-RTMP VideoPacketType 1: `CodedFrames` (SI24 composition time, then NAL units for
/// `avc1`/`hvc1`).
const EX_CODED_FRAMES: u8 = 1;
/// E-RTMP VideoPacketType 2: `SequenceEnd`.
const EX_SEQUENCE_END: u8 = 2;
/// E-RTMP VideoPacketType 3: `CodedFramesX` (composition time 0, no SI24 field).
const EX_CODED_FRAMES_X: u8 = 3;
/// E-RTMP VideoPacketType 4: `Metadata` (AMF-encoded, e.g. HDR colour info).
const EX_METADATA: u8 = 4;
/// E-RTMP VideoPacketType 5: `MPEG2TSSequenceStart` (AV1 only).
const EX_MPEG2TS_SEQUENCE_START: u8 = 5;
/// E-RTMP v2 VideoPacketType 6: `Multitrack`.
const EX_MULTITRACK: u8 = 6;
/// E-RTMP v2 VideoPacketType 7: `ModEx` (modifier extension before the real packet type).
const EX_MOD_EX: u8 = 7;
/// E-RTMP FourCC of H.265.
const FOURCC_HEVC: &[u8; 4] = b"hvc1";
/// E-RTMP FourCC of H.264.
const FOURCC_AVC: &[u8; 4] = b"avc1";
/// E-RTMP FourCC of AV1.
const FOURCC_AV1: &[u8; 4] = b"av01";
/// Bytes of an E-RTMP video header: flags/packet type byte and FourCC.
const EX_HEADER_LEN: usize = 5;
/// Bytes of the SI24 composition time.
const COMPOSITION_TIME_LEN: usize = 3;
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
    /// An E-RTMP v2 video packet type not parsed here (6 `Multitrack`, 7 `ModEx`).
    #[error("Enhanced RTMP v2 video packet type {0} (multitrack/ModEx) is not supported")]
    UnsupportedEnhancedPacket(u8),
    /// An AVCPacketType, AACPacketType or E-RTMP VideoPacketType outside the spec.
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
    /// to forward (AVC end-of-sequence, E-RTMP `SequenceEnd`/`Metadata`, video info/command
    /// frames, empty NALU packets).
    /// Produces [`MediaUnit::VideoConfig`] for an AVC sequence header (AVCPacketType 0, body =
    /// avcC) and [`MediaUnit::Video`] for NALUs (AVCPacketType 1) with dts = timeline(timestamp),
    /// pts = dts + composition time (signed 24-bit ms; clamped at 0), keyframe = frame type 1.
    /// E-RTMP tags (`IsExHeader` set) are handled by [`Self::enhanced_video`].
    pub fn video(&mut self, timestamp_ms: u32, body: Bytes) -> Result<Option<MediaUnit>, FlvError> {
        let &first = body.first().ok_or(FlvError::Truncated)?;
        if first & VIDEO_EX_HEADER != 0 {
            return self.enhanced_video(timestamp_ms, body);
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
            PACKET_DATA => Ok(self.coded_frame(
                timestamp_ms,
                si24([c0, c1, c2]),
                frame_type == FRAME_TYPE_KEY,
                payload,
            )),
            PACKET_END_OF_SEQUENCE => Ok(None),
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    /// An Enhanced RTMP video tag body (`ExVideoTagHeader`, E-RTMP v1/v2 "Extended VideoTagHeader"):
    /// `IsExHeader(1) FrameType(3) PacketType(4)`, FourCC, then the packet body.
    ///
    /// `hvc1`: `SequenceStart` → [`VideoConfig::H265`] (body = HEVCDecoderConfigurationRecord);
    /// `avc1`: `SequenceStart` → [`VideoConfig::H264`] (body = avcC). `CodedFrames` (SI24
    /// composition time, then length-prefixed NAL units) and `CodedFramesX` (composition time 0)
    /// → [`MediaUnit::Video`], keyframe = frame type 1. `SequenceEnd` and `Metadata` carry
    /// nothing to forward.
    fn enhanced_video(
        &mut self,
        timestamp_ms: u32,
        body: Bytes,
    ) -> Result<Option<MediaUnit>, FlvError> {
        let &first = body.first().ok_or(FlvError::Truncated)?;
        let frame_type = (first >> 4) & 0x07;
        let packet_type = first & 0x0F;
        // E-RTMP v2: Multitrack and ModEx change the layout after the first byte; not parsed.
        if packet_type == EX_MULTITRACK || packet_type == EX_MOD_EX {
            return Err(FlvError::UnsupportedEnhancedPacket(packet_type));
        }
        let code: [u8; 4] = body
            .get(1..EX_HEADER_LEN)
            .and_then(|c| c.try_into().ok())
            .ok_or(FlvError::Truncated)?;
        let codec = match &code {
            FOURCC_HEVC | FOURCC_AVC | FOURCC_AV1 => code,
            _ => return Err(FlvError::UnsupportedEnhanced(fourcc(&body)?)),
        };
        // "If FrameType == Command and PacketType != Metadata": a one-byte VideoCommand, no
        // media.
        if frame_type == FRAME_TYPE_COMMAND && packet_type != EX_METADATA {
            return Ok(None);
        }
        let payload = body.slice(EX_HEADER_LEN..);
        let keyframe = frame_type == FRAME_TYPE_KEY;
        match packet_type {
            EX_SEQUENCE_START => {
                let config = match &codec {
                    FOURCC_HEVC => VideoConfig::H265 { hvcc: payload },
                    FOURCC_AV1 => VideoConfig::Av1 { av1c: payload },
                    _ => VideoConfig::H264 { avcc: payload },
                };
                Ok(Some(MediaUnit::VideoConfig(config)))
            }
            // AV1 has no composition time: CodedFrames is OBUs only.
            EX_CODED_FRAMES if &codec == FOURCC_AV1 => {
                Ok(self.coded_frame(timestamp_ms, 0, keyframe, payload))
            }
            EX_CODED_FRAMES => {
                let header = payload
                    .get(..COMPOSITION_TIME_LEN)
                    .ok_or(FlvError::Truncated)?;
                let &[c0, c1, c2] = header else {
                    return Err(FlvError::Truncated);
                };
                let data = payload.slice(COMPOSITION_TIME_LEN..);
                Ok(self.coded_frame(timestamp_ms, si24([c0, c1, c2]), keyframe, data))
            }
            EX_CODED_FRAMES_X => Ok(self.coded_frame(timestamp_ms, 0, keyframe, payload)),
            EX_SEQUENCE_END | EX_METADATA => Ok(None),
            EX_MPEG2TS_SEQUENCE_START => Err(FlvError::UnsupportedEnhanced(format!(
                "{} MPEG2TSSequenceStart",
                fourcc(&body)?
            ))),
            other => Err(FlvError::UnknownPacketType(other)),
        }
    }

    /// A coded video access unit: dts = timeline(timestamp), pts = dts + composition time
    /// (clamped at 0). `None` for an empty payload (the timeline still advances).
    fn coded_frame(
        &mut self,
        timestamp_ms: u32,
        composition_ms: i32,
        keyframe: bool,
        data: Bytes,
    ) -> Option<MediaUnit> {
        let dts = self.timeline.map(timestamp_ms);
        if data.is_empty() {
            return None;
        }
        let offset_ns = i64::from(composition_ms) * NS_PER_MS as i64;
        let pts = i64::try_from(dts)
            .unwrap_or(i64::MAX)
            .saturating_add(offset_ns)
            .max(0) as u64;
        Some(MediaUnit::Video(VideoFrame {
            dts,
            pts,
            keyframe,
            data,
        }))
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

/// SI24: sign-extend a 24-bit big-endian value.
fn si24(b: [u8; 3]) -> i32 {
    i32::from_be_bytes([b[0], b[1], b[2], 0]) >> 8
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

    /// An E-RTMP video tag: `IsExHeader | frame_type << 4 | packet_type`, FourCC, body.
    fn ex(frame_type: u8, packet_type: u8, fourcc: &[u8; 4], body: &[u8]) -> Bytes {
        let mut v = vec![VIDEO_EX_HEADER | (frame_type << 4) | packet_type];
        v.extend_from_slice(fourcc);
        v.extend_from_slice(body);
        Bytes::from(v)
    }

    #[test]
    fn enhanced_hevc_sequence_start_and_frames() {
        let mut u = FlvUnpacker::new();
        let hvcc = [1, 1, 0x60, 0, 0, 0];
        let body = ex(1, EX_SEQUENCE_START, b"hvc1", &hvcc);
        let Ok(Some(MediaUnit::VideoConfig(VideoConfig::H265 { hvcc: got }))) =
            u.video(0, body.clone())
        else {
            panic!("expected an H.265 config");
        };
        assert_eq!(&got[..], &hvcc);
        assert_eq!(got.as_ptr(), body[5..].as_ptr());

        // CodedFrames: SI24 composition time 66 ms, keyframe.
        let body = ex(1, EX_CODED_FRAMES, b"hvc1", &[0, 0, 66, 0, 0, 0, 1, 0x26]);
        let Ok(Some(MediaUnit::Video(frame))) = u.video(1000, body.clone()) else {
            panic!("expected a frame");
        };
        assert_eq!((frame.dts, frame.pts, frame.keyframe), (0, 66 * MS, true));
        assert_eq!(&frame.data[..], &[0, 0, 0, 1, 0x26]);
        assert_eq!(frame.data.as_ptr(), body[8..].as_ptr());

        // Negative composition time (-20 ms), inter frame.
        let body = ex(
            2,
            EX_CODED_FRAMES,
            b"hvc1",
            &[0xFF, 0xFF, 0xEC, 0, 0, 0, 1, 2],
        );
        let Ok(Some(MediaUnit::Video(frame))) = u.video(1100, body) else {
            panic!("expected a frame");
        };
        assert_eq!(
            (frame.dts, frame.pts, frame.keyframe),
            (100 * MS, 80 * MS, false)
        );

        // CodedFramesX: no composition time field.
        let body = ex(2, EX_CODED_FRAMES_X, b"hvc1", &[0, 0, 0, 1, 2]);
        let Ok(Some(MediaUnit::Video(frame))) = u.video(1133, body.clone()) else {
            panic!("expected a frame");
        };
        assert_eq!(
            (frame.dts, frame.pts, frame.keyframe),
            (133 * MS, 133 * MS, false)
        );
        assert_eq!(frame.data.as_ptr(), body[5..].as_ptr());
    }

    #[test]
    fn enhanced_avc1_maps_onto_h264() {
        let mut u = FlvUnpacker::new();
        let avcc = [1, 0x64, 0, 0x1f, 0xff];
        assert_eq!(
            u.video(0, ex(1, EX_SEQUENCE_START, b"avc1", &avcc)),
            Ok(Some(MediaUnit::VideoConfig(VideoConfig::H264 {
                avcc: Bytes::copy_from_slice(&avcc)
            })))
        );
        let Ok(Some(MediaUnit::Video(frame))) =
            u.video(40, ex(1, EX_CODED_FRAMES, b"avc1", &[0, 0, 33, 9, 9]))
        else {
            panic!("expected a frame");
        };
        assert_eq!((frame.dts, frame.pts, frame.keyframe), (0, 33 * MS, true));
        assert_eq!(&frame.data[..], &[9, 9]);
    }

    #[test]
    fn enhanced_nothing_to_forward() {
        let mut u = FlvUnpacker::new();
        assert_eq!(u.video(0, ex(1, EX_SEQUENCE_END, b"hvc1", &[])), Ok(None));
        assert_eq!(
            u.video(0, ex(1, EX_METADATA, b"hvc1", b"\x02\x00\x09colorInfo")),
            Ok(None)
        );
        // Command frame (frame type 5) with a VideoCommand byte.
        assert_eq!(
            u.video(0, ex(5, EX_CODED_FRAMES_X, b"hvc1", &[0])),
            Ok(None)
        );
        // Empty frames.
        assert_eq!(u.video(0, ex(1, EX_CODED_FRAMES_X, b"hvc1", &[])), Ok(None));
        assert_eq!(
            u.video(0, ex(1, EX_CODED_FRAMES, b"hvc1", &[0, 0, 0])),
            Ok(None)
        );
    }

    #[test]
    fn enhanced_av1_sequence_start_and_obus_without_composition_time() {
        let mut u = FlvUnpacker::new();
        // av1C: marker/version, Main profile level 8 (4.0), 8-bit 4:2:0, then a sequence
        // header OBU (type 1, with size).
        let av1c = [0x81, 0x08, 0x0c, 0x00, 0x0a, 0x03, 0x00, 0x00, 0x00];
        assert_eq!(
            u.video(0, ex(1, EX_SEQUENCE_START, b"av01", &av1c)),
            Ok(Some(MediaUnit::VideoConfig(VideoConfig::Av1 {
                av1c: Bytes::copy_from_slice(&av1c)
            })))
        );
        // CodedFrames for av01: the body is the temporal unit's OBUs, no SI24 in front.
        let tu = [0x32, 0x02, 0xaa, 0xbb];
        assert_eq!(
            u.video(0, ex(1, EX_CODED_FRAMES, b"av01", &tu)),
            Ok(Some(MediaUnit::Video(VideoFrame {
                dts: 0,
                pts: 0,
                keyframe: true,
                data: Bytes::copy_from_slice(&tu),
            })))
        );
        assert_eq!(
            u.video(33, ex(2, EX_CODED_FRAMES_X, b"av01", &tu)),
            Ok(Some(MediaUnit::Video(VideoFrame {
                dts: 33 * NS_PER_MS,
                pts: 33 * NS_PER_MS,
                keyframe: false,
                data: Bytes::copy_from_slice(&tu),
            })))
        );
        assert_eq!(
            u.video(0, ex(1, EX_MPEG2TS_SEQUENCE_START, b"av01", &[1])),
            Err(FlvError::UnsupportedEnhanced(
                "av01 MPEG2TSSequenceStart".into()
            ))
        );
        assert_eq!(u.video(0, ex(1, EX_SEQUENCE_END, b"av01", &[])), Ok(None));
    }

    #[test]
    fn enhanced_unsupported() {
        let mut u = FlvUnpacker::new();
        for code in [b"vp09", b"xxxx"] {
            assert_eq!(
                u.video(0, ex(1, EX_SEQUENCE_START, code, &[1, 2, 3])),
                Err(FlvError::UnsupportedEnhanced(
                    String::from_utf8_lossy(code).into()
                ))
            );
        }
        assert_eq!(
            u.video(0, ex(1, EX_MPEG2TS_SEQUENCE_START, b"hvc1", &[1])),
            Err(FlvError::UnsupportedEnhanced(
                "hvc1 MPEG2TSSequenceStart".into()
            ))
        );
        for packet_type in [EX_MULTITRACK, EX_MOD_EX] {
            assert_eq!(
                u.video(0, ex(1, packet_type, b"hvc1", &[0, 0, 0, 0])),
                Err(FlvError::UnsupportedEnhancedPacket(packet_type))
            );
        }
        for packet_type in 8..=15 {
            assert_eq!(
                u.video(0, ex(1, packet_type, b"hvc1", &[])),
                Err(FlvError::UnknownPacketType(packet_type))
            );
        }
        assert_eq!(
            u.audio(0, Bytes::from_static(b"\x90Opus")),
            Err(FlvError::UnsupportedEnhanced("Opus".into()))
        );
    }

    #[test]
    fn enhanced_truncated() {
        let mut u = FlvUnpacker::new();
        assert_eq!(
            u.video(0, Bytes::from_static(b"\x90hv")),
            Err(FlvError::Truncated)
        );
        assert_eq!(
            u.video(0, Bytes::from_static(b"\x91hvc")),
            Err(FlvError::Truncated)
        );
        // CodedFrames needs the 3-byte composition time.
        for len in 0..3 {
            assert_eq!(
                u.video(0, ex(1, EX_CODED_FRAMES, b"hvc1", &[0, 0, 0][..len])),
                Err(FlvError::Truncated)
            );
        }
        // Every prefix of every packet type is an error or a value, never a panic.
        let full = ex(1, EX_CODED_FRAMES, b"hvc1", &[0, 0, 1, 0, 0, 0, 1, 0x26]);
        for packet_type in 0..16u8 {
            let mut v = full.to_vec();
            v[0] = VIDEO_EX_HEADER | 0x10 | packet_type;
            for len in 0..=v.len() {
                let _ = u.video(0, Bytes::copy_from_slice(&v[..len]));
            }
        }
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
