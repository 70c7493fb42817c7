//! AAC: the `AudioSpecificConfig` (ISO/IEC 14496-3 §1.6.2.1), its `GASpecificConfig()` (§4.4.1)
//! and `program_config_element()` (§4.4.1.1, for channel configuration 0), and the RFC 6381
//! `mp4a.40.N` codec string.

use super::CodecError;
use super::bits::BitReader;

/// AAC `samplingFrequencyIndex` → Hz (ISO/IEC 14496-3 Table 1.18); 13 and 14 are reserved,
/// 15 means an explicit 24-bit frequency follows.
const AAC_SAMPLE_RATES: [u32; 13] = [
    96_000, 88_200, 64_000, 48_000, 44_100, 32_000, 24_000, 22_050, 16_000, 12_000, 11_025, 8_000,
    7_350,
];

/// `samplingFrequencyIndex` escape: an explicit 24-bit `samplingFrequency` follows.
const AAC_EXPLICIT_FREQUENCY_INDEX: u8 = 15;

/// `audioObjectType` escape: `32 + audioObjectTypeExt` (6 bits) follows.
const AAC_OBJECT_TYPE_ESCAPE: u8 = 31;

/// AAC object type: SBR (HE-AAC v1), explicit hierarchical signalling.
pub const AAC_OBJECT_TYPE_SBR: u8 = 5;

/// AAC object type: parametric stereo (HE-AAC v2), explicit hierarchical signalling.
pub const AAC_OBJECT_TYPE_PS: u8 = 29;

/// Largest `channelConfiguration` we accept (7 = 7.1, eight channels).
pub const MAX_AAC_CHANNEL_CONFIG: u8 = 7;

/// Audio object types whose specific config is `GASpecificConfig()` (14496-3 Table 1.15).
const AAC_GA_OBJECT_TYPES: [u8; 12] = [1, 2, 3, 4, 6, 7, 17, 19, 20, 21, 22, 23];

/// Parsed AAC AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacInfo {
    /// `audioObjectType` (2 = AAC-LC, 5 = SBR/HE-AAC, 29 = PS/HE-AACv2, escapes resolved).
    pub object_type: u8,
    /// Output sampling rate in Hz; for explicit SBR/PS signalling this is the extension
    /// (SBR) rate, e.g. 48 000 for HE-AAC with a 24 000 Hz core.
    pub sample_rate: u32,
    /// Output channel count: from `channelConfiguration` 1–7 (7 → 8), from the
    /// `program_config_element` when it is 0, and 2 for parametric stereo (type 29) over mono.
    pub channels: u8,
}

impl AacInfo {
    /// Parse an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1).
    ///
    /// Handles the escape object type 31, frequency index 15 (explicit 24-bit rate),
    /// channel configurations 0–7 and explicit SBR/PS signalling (object types 5 and 29).
    /// Bytes after the fields read (e.g. a backward-compatible sync extension) are ignored.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] if the config ends early; [`CodecError::Unsupported`] for
    /// object type 0, reserved frequency indices 13/14, a 0 Hz explicit rate, channel
    /// configurations above 7, or a channel configuration 0 that declares no channels.
    pub fn from_asc(asc: &[u8]) -> Result<AacInfo, CodecError> {
        let mut r = BitReader::new(asc, "AudioSpecificConfig");
        let object_type = read_aac_object_type(&mut r)?;
        let mut sample_rate = read_aac_sample_rate(&mut r)?;
        // 4 bits, below 16.
        let channel_config = r.bits(4)? as u8;
        if channel_config > MAX_AAC_CHANNEL_CONFIG {
            return Err(CodecError::Unsupported {
                field: "channelConfiguration",
                value: u32::from(channel_config),
            });
        }

        // Explicit hierarchical SBR/PS signalling: the extension rate and core type follow.
        let mut core_type = object_type;
        if object_type == AAC_OBJECT_TYPE_SBR || object_type == AAC_OBJECT_TYPE_PS {
            sample_rate = read_aac_sample_rate(&mut r)?;
            core_type = read_aac_object_type(&mut r)?;
        }

        let channels = match channel_config {
            0 if AAC_GA_OBJECT_TYPES.contains(&core_type) => read_ga_pce_channels(&mut r)?,
            0 => {
                return Err(CodecError::Unsupported {
                    field: "channelConfiguration 0 with audioObjectType",
                    value: u32::from(core_type),
                });
            }
            7 => 8,
            n => n,
        };
        if channels == 0 {
            return Err(CodecError::Unsupported {
                field: "program_config_element channel count",
                value: 0,
            });
        }
        let channels = if object_type == AAC_OBJECT_TYPE_PS && channels == 1 {
            2
        } else {
            channels
        };
        Ok(AacInfo {
            object_type,
            sample_rate,
            channels,
        })
    }

    /// RFC 6381 codec string: `"mp4a.40.<object type>"` (decimal), e.g. `"mp4a.40.2"`.
    pub fn codec_string(&self) -> String {
        format!("mp4a.40.{}", self.object_type)
    }
}

/// `GetAudioObjectType()` (14496-3 §1.6.2.1.1): 5 bits, 31 escapes to `32 + 6 bits`.
fn read_aac_object_type(r: &mut BitReader<'_>) -> Result<u8, CodecError> {
    // 5 bits, below 32.
    let aot = r.bits(5)? as u8;
    if aot == 0 {
        return Err(CodecError::Unsupported {
            field: "audioObjectType",
            value: 0,
        });
    }
    if aot == AAC_OBJECT_TYPE_ESCAPE {
        // 32 + 6 bits ≤ 95.
        return Ok(32 + r.bits(6)? as u8);
    }
    Ok(aot)
}

/// `samplingFrequencyIndex` and, for index 15, the explicit 24-bit `samplingFrequency`.
fn read_aac_sample_rate(r: &mut BitReader<'_>) -> Result<u32, CodecError> {
    // 4 bits, below 16.
    let index = r.bits(4)? as u8;
    if index == AAC_EXPLICIT_FREQUENCY_INDEX {
        let rate = r.bits(24)?;
        if rate == 0 {
            return Err(CodecError::Unsupported {
                field: "samplingFrequency",
                value: 0,
            });
        }
        return Ok(rate);
    }
    AAC_SAMPLE_RATES
        .get(usize::from(index))
        .copied()
        .ok_or(CodecError::Unsupported {
            field: "samplingFrequencyIndex",
            value: u32::from(index),
        })
}

/// Read the head of `GASpecificConfig()` (§4.4.1) up to and including the
/// `program_config_element()` (§4.4.1.1) and return the channel count it declares.
fn read_ga_pce_channels(r: &mut BitReader<'_>) -> Result<u8, CodecError> {
    r.bit()?; // frameLengthFlag
    if r.bit()? {
        // dependsOnCoreCoder
        r.skip(14)?; // coreCoderDelay
    }
    r.bit()?; // extensionFlag

    // program_config_element()
    r.skip(4 + 2 + 4)?; // element_instance_tag, object_type, sampling_frequency_index
    let front = r.bits(4)?;
    let side = r.bits(4)?;
    let back = r.bits(4)?;
    let lfe = r.bits(2)?;
    r.skip(3 + 4)?; // num_assoc_data_elements, num_valid_cc_elements
    for _ in 0..2 {
        // mono_mixdown_present, stereo_mixdown_present
        if r.bit()? {
            r.skip(4)?; // *_mixdown_element_number
        }
    }
    if r.bit()? {
        // matrix_mixdown_idx_present
        r.skip(2 + 1)?; // matrix_mixdown_idx, pseudo_surround_enable
    }
    // front + side + back ≤ 45 elements of ≤ 2 channels, plus ≤ 3 LFE: fits u8.
    let mut channels: u32 = lfe;
    for _ in 0..front + side + back {
        let is_cpe = r.bit()?;
        r.skip(4)?; // *_element_tag_select
        channels += if is_cpe { 2 } else { 1 };
    }
    for _ in 0..lfe {
        r.skip(4)?; // lfe_element_tag_select
    }
    Ok(channels as u8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::bits::testing::{BitWriter, hex};

    // AudioSpecificConfigs from ffmpeg's native AAC encoder (esds DecoderSpecificInfo),
    // including its trailing backward-compatible SBR sync extension.
    /// AAC-LC, 48 kHz, stereo.
    const ASC_LC_48K_STEREO: &str = "119056e500";
    /// AAC-LC, 44.1 kHz, mono.
    const ASC_LC_44K_MONO: &str = "120856e500";
    /// AAC-LC, 48 kHz, 5.1.
    const ASC_LC_48K_51: &str = "11b056e500";

    #[test]
    fn aac_real_encoder_configs() {
        assert_eq!(
            AacInfo::from_asc(&hex(ASC_LC_48K_STEREO)).unwrap(),
            AacInfo {
                object_type: 2,
                sample_rate: 48_000,
                channels: 2
            }
        );
        assert_eq!(
            AacInfo::from_asc(&hex(ASC_LC_44K_MONO)).unwrap(),
            AacInfo {
                object_type: 2,
                sample_rate: 44_100,
                channels: 1
            }
        );
        assert_eq!(
            AacInfo::from_asc(&hex(ASC_LC_48K_51)).unwrap(),
            AacInfo {
                object_type: 2,
                sample_rate: 48_000,
                channels: 6
            }
        );
    }

    #[test]
    fn aac_lc_48k_stereo_minimal() {
        let info = AacInfo::from_asc(&[0x11, 0x90]).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (2, 48_000, 2)
        );
        assert_eq!(info.codec_string(), "mp4a.40.2");
    }

    #[test]
    fn aac_he_explicit_sbr_and_ps() {
        // HE-AAC: AOT 5, core 24 kHz, stereo, extension 48 kHz, core AOT 2.
        let info = AacInfo::from_asc(&[0x2b, 0x11, 0x88, 0x00]).unwrap();
        assert_eq!(
            info,
            AacInfo {
                object_type: 5,
                sample_rate: 48_000,
                channels: 2
            }
        );
        assert_eq!(info.codec_string(), "mp4a.40.5");

        // HE-AACv2: AOT 29, core 24 kHz, mono, extension 48 kHz, core AOT 2 → stereo out.
        let mut w = BitWriter::default();
        w.bits(29, 5);
        w.bits(6, 4);
        w.bits(1, 4);
        w.bits(3, 4);
        w.bits(2, 5);
        w.bits(0, 3);
        let info = AacInfo::from_asc(&w.finish()).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (29, 48_000, 2)
        );
        assert_eq!(info.codec_string(), "mp4a.40.29");
    }

    #[test]
    fn aac_explicit_frequency_and_escape_object_type() {
        // AOT 2, index 15, 24-bit rate 37 800, channel config 7 (→ 8 channels).
        let mut w = BitWriter::default();
        w.bits(2, 5);
        w.bits(15, 4);
        w.bits(37_800, 24);
        w.bits(7, 4);
        let info = AacInfo::from_asc(&w.finish()).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (2, 37_800, 8)
        );

        // AOT 31 escape: 32 + 10 = 42 (USAC), 48 kHz, stereo.
        let mut w = BitWriter::default();
        w.bits(31, 5);
        w.bits(10, 6);
        w.bits(3, 4);
        w.bits(2, 4);
        let info = AacInfo::from_asc(&w.finish()).unwrap();
        assert_eq!(
            (info.object_type, info.sample_rate, info.channels),
            (42, 48_000, 2)
        );
        assert_eq!(info.codec_string(), "mp4a.40.42");
    }

    #[test]
    fn aac_channel_config_0_reads_pce() {
        // AAC-LC, 48 kHz, channelConfiguration 0, PCE: 2 front (SCE + CPE), 1 back CPE, 1 LFE.
        let mut w = BitWriter::default();
        w.bits(2, 5);
        w.bits(3, 4);
        w.bits(0, 4);
        w.bits(0, 3); // frameLengthFlag, dependsOnCoreCoder, extensionFlag
        w.bits(0, 4); // element_instance_tag
        w.bits(1, 2); // object_type
        w.bits(3, 4); // sampling_frequency_index
        w.bits(2, 4); // front
        w.bits(0, 4); // side
        w.bits(1, 4); // back
        w.bits(1, 2); // lfe
        w.bits(0, 3 + 4);
        w.bits(0, 3); // no mixdowns
        w.bits(0b0_0000, 5); // front SCE
        w.bits(0b1_0001, 5); // front CPE
        w.bits(0b1_0010, 5); // back CPE
        w.bits(0, 4); // lfe tag
        let info = AacInfo::from_asc(&w.finish()).unwrap();
        assert_eq!(info.channels, 6);

        // An empty PCE declares no channels.
        let err = AacInfo::from_asc(&[0x11, 0x80, 0, 0, 0, 0, 0, 0]).unwrap_err();
        assert!(matches!(err, CodecError::Unsupported { value: 0, .. }));
    }

    #[test]
    fn aac_errors() {
        assert_eq!(
            AacInfo::from_asc(&[]),
            Err(CodecError::Truncated {
                what: "AudioSpecificConfig"
            })
        );
        assert_eq!(
            AacInfo::from_asc(&[0x11]),
            Err(CodecError::Truncated {
                what: "AudioSpecificConfig"
            })
        );
        // Reserved frequency index 13.
        assert!(matches!(
            AacInfo::from_asc(&[0x16, 0x90]),
            Err(CodecError::Unsupported {
                field: "samplingFrequencyIndex",
                value: 13
            })
        ));
        // Channel configuration 8 (not supported here).
        assert!(matches!(
            AacInfo::from_asc(&[0x11, 0xc0]),
            Err(CodecError::Unsupported {
                field: "channelConfiguration",
                value: 8
            })
        ));
        // Object type 0 is "null".
        assert!(matches!(
            AacInfo::from_asc(&[0x01, 0x90]),
            Err(CodecError::Unsupported {
                field: "audioObjectType",
                ..
            })
        ));
        // Explicit frequency of 0 Hz.
        assert!(AacInfo::from_asc(&[0x17, 0x80, 0x00, 0x00, 0x10]).is_err());
        // Truncated explicit frequency and truncated SBR extension.
        assert!(AacInfo::from_asc(&[0x17, 0x80, 0x00]).is_err());
        assert!(AacInfo::from_asc(&[0x2b, 0x11]).is_err());
    }
}
