//! Caps and frame durations from the publisher's codec configuration, and the codec facts for
//! the playlists read back from the caps entering a rendition's muxer.

use gst::prelude::*;

use crate::hls::stream::{RenditionKind, TrackInfo};
use crate::media::MediaError;
use crate::media::codec::{
    AAC_OBJECT_TYPE_PS, AAC_OBJECT_TYPE_SBR, AacInfo, Av1Info, AvcInfo, HevcInfo,
};
use crate::media::frame::{AudioConfig, VideoConfig};
use crate::media::ladder::{SourceCodec, SourceVideo};

/// Complete video caps (size and rate from the SPS, codec_data): templates feed cmafmux
/// directly, without h264parse/h265parse. AV1 (ladder only, for av1dec): temporal units of
/// OBUs, no codec_data.
pub(super) fn video_caps(config: &VideoConfig) -> Result<gst::Caps, MediaError> {
    let source = source_video(config)?;
    let record = match config {
        VideoConfig::H264 { avcc } => Some(("video/x-h264", "avc", avcc)),
        VideoConfig::H265 { hvcc } => Some(("video/x-h265", "hvc1", hvcc)),
        VideoConfig::Av1 { .. } => None,
    };
    let mut caps = match record {
        Some((media_type, stream_format, record)) => gst::Caps::builder(media_type)
            .field("stream-format", stream_format)
            .field("alignment", "au")
            .field("parsed", true)
            .field("codec_data", gst::Buffer::from_slice(record.clone())),
        None => gst::Caps::builder("video/x-av1")
            .field("stream-format", "obu-stream")
            .field("alignment", "tu"),
    }
    .field("width", i32::try_from(source.width).unwrap_or(i32::MAX))
    .field("height", i32::try_from(source.height).unwrap_or(i32::MAX));
    if let Some(rate) = source.frame_rate.and_then(gst::Fraction::approximate_f64) {
        caps = caps.field("framerate", rate);
    }
    Ok(caps.build())
}

/// The source facts the ladder plans with.
pub(crate) fn source_video(config: &VideoConfig) -> Result<SourceVideo, MediaError> {
    let (codec, width, height, frame_rate) = match config {
        VideoConfig::H264 { avcc } => {
            let i = AvcInfo::from_avcc(avcc)?;
            (SourceCodec::H264, i.width, i.height, i.frame_rate)
        }
        VideoConfig::H265 { hvcc } => {
            let i = HevcInfo::from_hvcc(hvcc)?;
            (SourceCodec::H265, i.width, i.height, i.frame_rate)
        }
        VideoConfig::Av1 { av1c } => {
            let i = Av1Info::from_av1c(av1c)?;
            (SourceCodec::Av1, i.width, i.height, i.frame_rate)
        }
    };
    Ok(SourceVideo {
        codec,
        width,
        height,
        frame_rate,
    })
}

/// One frame's duration in ns, when the configuration record declares a frame rate.
pub(super) fn video_frame_ns(config: &VideoConfig) -> Option<u64> {
    let rate = source_video(config).ok()?.frame_rate?;
    (rate > 0.0).then(|| (1e9 / rate).round() as u64)
}

/// A frame duration when the stream declares no frame rate: the DTS step from the previous
/// frame, within 1 ms..1 s (1/30 s for the first frame).
pub(super) fn estimated_frame_ns(previous_dts: Option<u64>, dts: u64) -> u64 {
    const DEFAULT: u64 = 1_000_000_000 / 30;
    previous_dts
        .map(|p| dts.saturating_sub(p))
        .filter(|d| (1_000_000..=1_000_000_000).contains(d))
        .unwrap_or(DEFAULT)
}

/// One AAC frame's duration in ns: 1024 samples at the signalled rate, 2048 at the SBR rate
/// for explicitly signalled HE-AAC (object types 5 and 29).
pub(super) fn audio_frame_ns(config: &AudioConfig) -> Option<u64> {
    match config {
        AudioConfig::Aac { asc } => {
            let info = AacInfo::from_asc(asc).ok()?;
            let samples = match info.object_type {
                AAC_OBJECT_TYPE_SBR | AAC_OBJECT_TYPE_PS => 2048,
                _ => 1024,
            };
            (info.sample_rate > 0).then(|| samples * 1_000_000_000 / u64::from(info.sample_rate))
        }
    }
}

/// Raw AAC caps with the AudioSpecificConfig as codec_data.
pub(super) fn audio_caps(config: &AudioConfig) -> Result<gst::Caps, MediaError> {
    match config {
        AudioConfig::Aac { asc } => {
            let info = AacInfo::from_asc(asc)?;
            Ok(gst::Caps::builder("audio/mpeg")
                .field("mpegversion", 4i32)
                .field("stream-format", "raw")
                .field("rate", info.sample_rate as i32)
                .field("channels", info.channels as i32)
                .field("framed", true)
                .field("codec_data", gst::Buffer::from_slice(asc.clone()))
                .build())
        }
    }
}

/// Codec facts for the multivariant playlist, read from the caps entering the rendition's muxer
/// (so they hold for passthrough and transcoded renditions alike).
pub(super) fn track_info(sink: &gst_app::AppSink, kind: RenditionKind) -> TrackInfo {
    let caps = sink
        .static_pad("sink")
        .and_then(|pad| pad.peer())
        .and_then(|pad| pad.parent_element())
        .and_then(|muxer| muxer.sink_pads().into_iter().next())
        .and_then(|pad| pad.current_caps());
    let Some(s) = caps.as_ref().and_then(|c| c.structure(0)) else {
        return TrackInfo::default();
    };
    let codec_data = s
        .get::<gst::Buffer>("codec_data")
        .ok()
        .and_then(|b| b.map_readable().ok().map(|m| m.to_vec()));
    match kind {
        RenditionKind::Video => video_track_info(s, codec_data.as_deref()),
        RenditionKind::Audio => audio_track_info(s, codec_data.as_deref()),
    }
}

/// A video rendition's codec string, size and frame rate: the caps' fields first, else the
/// codec configuration record's.
fn video_track_info(s: &gst::StructureRef, codec_data: Option<&[u8]>) -> TrackInfo {
    // (codec string, coded size, frame rate) from the codec configuration record.
    let from_record = codec_data.and_then(|d| {
        if s.name() == "video/x-h265" {
            HevcInfo::from_hvcc(d)
                .ok()
                .map(|h| (h.codec_string(), (h.width, h.height), h.frame_rate))
        } else {
            AvcInfo::from_avcc(d)
                .ok()
                .map(|a| (a.codec_string(), (a.width, a.height), a.frame_rate))
        }
    });
    let width = s
        .get::<i32>("width")
        .ok()
        .and_then(|w| u32::try_from(w).ok());
    let height = s
        .get::<i32>("height")
        .ok()
        .and_then(|h| u32::try_from(h).ok());
    let caps_rate = s
        .get::<gst::Fraction>("framerate")
        .ok()
        .filter(|f| f.numer() > 0 && f.denom() > 0)
        .map(|f| f64::from(f.numer()) / f64::from(f.denom()));
    TrackInfo {
        codecs: from_record.as_ref().map(|r| r.0.clone()),
        resolution: width
            .zip(height)
            .or_else(|| from_record.as_ref().map(|r| r.1)),
        frame_rate: caps_rate.or_else(|| from_record.as_ref().and_then(|r| r.2)),
        channels: None,
    }
}

/// An audio rendition's codec string and channel count: the caps' channels first, else the
/// AudioSpecificConfig's.
fn audio_track_info(s: &gst::StructureRef, codec_data: Option<&[u8]>) -> TrackInfo {
    let aac = codec_data.and_then(|d| AacInfo::from_asc(d).ok());
    TrackInfo {
        codecs: aac.as_ref().map(|a| a.codec_string()),
        resolution: None,
        frame_rate: None,
        channels: s
            .get::<i32>("channels")
            .ok()
            .and_then(|c| u32::try_from(c).ok())
            .or_else(|| aac.as_ref().map(|a| u32::from(a.channels))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_duration_estimate_without_a_declared_rate() {
        assert_eq!(estimated_frame_ns(None, 0), 33_333_333);
        assert_eq!(estimated_frame_ns(Some(0), 40_000_000), 40_000_000);
        // Same DTS or a jump of more than a second: the default.
        assert_eq!(estimated_frame_ns(Some(5), 5), 33_333_333);
        assert_eq!(estimated_frame_ns(Some(0), 5_000_000_000), 33_333_333);
    }
}
