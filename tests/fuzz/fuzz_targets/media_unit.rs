//! What the media side derives from one unpacked unit, shared by the ingest targets: every
//! configuration record through the codec parsers behind the pipeline's caps and the playlists'
//! CODECS, every video frame through the AV1 OBU walk (which must always advance).

use cuecast::media::codec::{AacInfo, Av1Info, AvcInfo, HevcInfo, next_obu};
use cuecast::media::frame::{AudioConfig, MediaUnit, VideoConfig};

pub fn check(unit: &MediaUnit) {
    match unit {
        MediaUnit::VideoConfig(VideoConfig::H264 { avcc }) => {
            let _ = AvcInfo::from_avcc(avcc).map(|i| i.codec_string());
        }
        MediaUnit::VideoConfig(VideoConfig::H265 { hvcc }) => {
            let _ = HevcInfo::from_hvcc(hvcc).map(|i| i.codec_string());
        }
        MediaUnit::VideoConfig(VideoConfig::Av1 { av1c }) => {
            let _ = Av1Info::from_av1c(av1c).map(|i| i.codec_string());
        }
        MediaUnit::AudioConfig(AudioConfig::Aac { asc }) => {
            let _ = AacInfo::from_asc(asc).map(|i| i.codec_string());
        }
        MediaUnit::Video(frame) => {
            let mut obus = &frame.data[..];
            while let Ok(Some((_, _, rest))) = next_obu(obus) {
                assert!(rest.len() < obus.len(), "next_obu made no progress");
                obus = rest;
            }
        }
        MediaUnit::Audio(_) => {}
    }
}
