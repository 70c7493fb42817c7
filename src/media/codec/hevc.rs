//! H.265: the `HEVCDecoderConfigurationRecord` (`hvcC`, ISO/IEC 14496-15 §8.3.3.1) and its first
//! sequence parameter set up to the conformance window (ITU-T H.265 §7.3.2.2.1,
//! `profile_tier_level()` §7.3.3, cropping §7.4.3.2.1), and the Annex E.3 `hvc1.…` codec string.

use super::CodecError;
use super::avc::{MAX_CHROMA_FORMAT_IDC, crop};
use super::bits::{BitReader, unescape_rbsp};

/// Largest H.265 `pic_width/height_in_luma_samples`: `Sqrt(MaxLumaPs * 8)` for the largest
/// `MaxLumaPs` (35 651 584, levels 6–6.2, H.265 Table A.8).
pub const MAX_HEVC_DIMENSION: u32 = 16_888;

/// Largest `sps_max_sub_layers_minus1` (H.265 §7.4.3.2.1: `0..=6`).
pub const MAX_HEVC_SUB_LAYERS_MINUS1: u32 = 6;

/// H.265 `nal_unit_type` of a sequence parameter set (Table 7-1).
const HEVC_NAL_TYPE_SPS: u8 = 33;

/// Bytes of the fixed `hvcC` header before `numOfArrays`.
const HVCC_HEADER_LEN: usize = 22;

/// Parsed H.265 decoder configuration (from an hvcC record's first SPS).
#[derive(Debug, Clone, PartialEq)]
pub struct HevcInfo {
    /// `general_profile_space` (0; 1–3 are reserved for future use and written as A/B/C).
    pub profile_space: u8,
    /// `general_tier_flag`: false = Main tier, true = High tier.
    pub high_tier: bool,
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions, …).
    pub profile_idc: u8,
    /// `general_profile_compatibility_flag[0..32]`, flag 0 in the most significant bit.
    pub compatibility_flags: u32,
    /// The 48 bits from `general_progressive_source_flag` to `general_inbld_flag` /
    /// reserved bit, as six bytes.
    pub constraint_flags: [u8; 6],
    /// `general_level_idc` (level × 30, e.g. 93 for level 3.1).
    pub level_idc: u8,
    /// `chroma_format_idc` (0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4).
    pub chroma_format_idc: u8,
    /// Displayed width in luma samples, after the conformance window.
    pub width: u32,
    /// Displayed height in luma samples, after the conformance window.
    pub height: u32,
    /// Frames per second from the hvcC `avgFrameRate` (frames per 256 s); `None` when 0
    /// (unspecified, as ffmpeg and OBS write it).
    pub frame_rate: Option<f64>,
}

impl HevcInfo {
    /// Parse an HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 §8.3.3.1): the first SPS
    /// gives profile/tier/level, chroma format and the cropped resolution; the record header
    /// gives the average frame rate.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] if the record or SPS ends early, [`CodecError::NoHevcSps`] /
    /// [`CodecError::NotHevcSps`] if there is no SPS, and the other variants for reserved or
    /// out-of-range SPS fields.
    pub fn from_hvcc(hvcc: &[u8]) -> Result<HevcInfo, CodecError> {
        const WHAT: &str = "hvcC";
        let header = hvcc
            .get(..HVCC_HEADER_LEN)
            .ok_or(CodecError::Truncated { what: WHAT })?;
        if header[0] != 1 {
            return Err(CodecError::Unsupported {
                field: "hvcC configurationVersion",
                value: u32::from(header[0]),
            });
        }
        let avg_frame_rate = u16::from_be_bytes([header[19], header[20]]);
        let (&num_arrays, mut rest) = hvcc[HVCC_HEADER_LEN..]
            .split_first()
            .ok_or(CodecError::Truncated { what: WHAT })?;
        for _ in 0..num_arrays {
            // array_completeness(1) reserved(1) NAL_unit_type(6), numNalus(16).
            let [kind, n_hi, n_lo, tail @ ..] = rest else {
                return Err(CodecError::Truncated { what: WHAT });
            };
            rest = tail;
            for _ in 0..u16::from_be_bytes([*n_hi, *n_lo]) {
                let [l_hi, l_lo, tail @ ..] = rest else {
                    return Err(CodecError::Truncated { what: WHAT });
                };
                let len = usize::from(u16::from_be_bytes([*l_hi, *l_lo]));
                let nal = tail
                    .get(..len)
                    .ok_or(CodecError::Truncated { what: WHAT })?;
                if kind & 0x3f == HEVC_NAL_TYPE_SPS {
                    let mut info = parse_hevc_sps_nal(nal)?;
                    info.frame_rate =
                        (avg_frame_rate != 0).then(|| f64::from(avg_frame_rate) / 256.0);
                    return Ok(info);
                }
                rest = &tail[len..];
            }
        }
        Err(CodecError::NoHevcSps)
    }

    /// Codec string per ISO/IEC 14496-15 Annex E.3 (RFC 6381 `codecs` parameter), e.g.
    /// `hvc1.1.6.L93.B0`: profile space letter (none for 0, A/B/C) + profile idc; the
    /// compatibility flags in reverse bit order, hex; `L`/`H` (tier) + level idc; the
    /// constraint bytes in hex, dot-separated, trailing zero bytes omitted (one kept).
    pub fn codec_string(&self) -> String {
        let space = match self.profile_space {
            1 => "A",
            2 => "B",
            3 => "C",
            _ => "",
        };
        let tier = if self.high_tier { 'H' } else { 'L' };
        let kept = self
            .constraint_flags
            .iter()
            .rposition(|&b| b != 0)
            .map_or(1, |last| last + 1);
        let constraints: Vec<String> = self.constraint_flags[..kept]
            .iter()
            .map(|b| format!("{b:X}"))
            .collect();
        format!(
            "hvc1.{space}{}.{:X}.{tier}{}.{}",
            self.profile_idc,
            self.compatibility_flags.reverse_bits(),
            self.level_idc,
            constraints.join(".")
        )
    }
}

/// Parse an H.265 SPS NAL unit (two-byte header included, emulation prevention still present).
fn parse_hevc_sps_nal(nal: &[u8]) -> Result<HevcInfo, CodecError> {
    let [header, _, payload @ ..] = nal else {
        return Err(CodecError::Truncated { what: "SPS" });
    };
    let nal_type = (header >> 1) & 0x3f;
    if nal_type != HEVC_NAL_TYPE_SPS {
        return Err(CodecError::NotHevcSps(nal_type));
    }
    parse_hevc_sps_rbsp(&unescape_rbsp(payload))
}

/// Parse `seq_parameter_set_rbsp()` (H.265 §7.3.2.2.1) up to the conformance window.
fn parse_hevc_sps_rbsp(rbsp: &[u8]) -> Result<HevcInfo, CodecError> {
    let mut r = BitReader::new(rbsp, "SPS");
    r.skip(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)?;
    if max_sub_layers_minus1 > MAX_HEVC_SUB_LAYERS_MINUS1 {
        return Err(CodecError::OutOfRange {
            field: "sps_max_sub_layers_minus1",
            value: i64::from(max_sub_layers_minus1),
            max: i64::from(MAX_HEVC_SUB_LAYERS_MINUS1),
        });
    }
    r.skip(1)?; // sps_temporal_id_nesting_flag

    // profile_tier_level(1, sps_max_sub_layers_minus1), §7.3.3.
    let profile_space = r.bits(2)? as u8;
    let high_tier = r.bit()?;
    let profile_idc = r.bits(5)? as u8;
    let compatibility_flags = r.bits(32)?;
    let mut constraint_flags = [0u8; 6];
    for byte in &mut constraint_flags {
        *byte = r.u8()?;
    }
    let level_idc = r.u8()?;
    skip_sub_layers(&mut r, max_sub_layers_minus1 as usize)?;

    r.ue_max("sps_seq_parameter_set_id", 15)?;
    let chroma_format_idc = r.ue_max("chroma_format_idc", MAX_CHROMA_FORMAT_IDC)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let coded_width = r.ue_max("pic_width_in_luma_samples", MAX_HEVC_DIMENSION)?;
    let coded_height = r.ue_max("pic_height_in_luma_samples", MAX_HEVC_DIMENSION)?;
    let (width, height) = if r.bit()? {
        // conformance_window_flag: offsets in chroma units (§7.4.3.2.1, Table 6-1).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let left = r.ue("conf_win_left_offset")?;
        let right = r.ue("conf_win_right_offset")?;
        let top = r.ue("conf_win_top_offset")?;
        let bottom = r.ue("conf_win_bottom_offset")?;
        crop(
            (coded_width, coded_height),
            chroma_array_type,
            1,
            [left, right, top, bottom],
        )?
    } else {
        (coded_width, coded_height)
    };
    if width == 0 || height == 0 {
        return Err(CodecError::BadCropping {
            width: coded_width,
            height: coded_height,
        });
    }
    Ok(HevcInfo {
        profile_space,
        high_tier,
        profile_idc,
        compatibility_flags,
        constraint_flags,
        level_idc,
        // At most 3.
        chroma_format_idc: chroma_format_idc as u8,
        width,
        height,
        frame_rate: None,
    })
}

/// Skip the sub-layer part of `profile_tier_level()` (§7.3.3) for `max_sub_layers_minus1`
/// sub-layers (at most 6).
fn skip_sub_layers(r: &mut BitReader<'_>, max_sub_layers_minus1: usize) -> Result<(), CodecError> {
    let mut sub_layer_profile = [false; 6];
    let mut sub_layer_level = [false; 6];
    for i in 0..max_sub_layers_minus1 {
        sub_layer_profile[i] = r.bit()?;
        sub_layer_level[i] = r.bit()?;
    }
    if max_sub_layers_minus1 > 0 {
        // reserved_zero_2bits for i in max_sub_layers_minus1..8.
        r.skip(2 * (8 - max_sub_layers_minus1))?;
    }
    for i in 0..max_sub_layers_minus1 {
        if sub_layer_profile[i] {
            // profile space, tier, idc, 32 compatibility flags, 48 constraint bits.
            r.skip(88)?;
        }
        if sub_layer_level[i] {
            r.skip(8)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::media::codec::bits::testing::hex;
    use crate::testing::XorShift;

    // hvcC records (VPS, SPS and PPS arrays; x265's SEI array dropped) extracted from MP4 files
    // written by ffmpeg/libx265 (`ffmpeg -f lavfi -i testsrc2=size=WxH:rate=30 -pix_fmt P
    // -c:v libx265 -tag:v hvc1`); profile, level and size cross-checked with ffprobe.
    /// 320x240, Main, level 2 (60).
    const HVCC_MAIN_240P: &str = "0101600000009000000000003cf000fcfdf8f800000f03a00001001840010c01ffff01600000030090000003000003003c959809a10001002a42010101600000030090000003000003003ca00a080f165959a4932bc05a020000030002000003003c10a2000100074401c172b46240";
    /// 426x240, Main, level 2: coded 432 wide, conformance window crops 2 × 3 on the right.
    const HVCC_MAIN_426X240: &str = "0101600000009000000000003cf000fcfdf8f800000f03a00001001840010c01ffff01600000030090000003000003003c959809a10001002b42010101600000030090000003000003003ca00d880f1c9e5959a4932bc05a020000030002000003003c10a2000100074401c172b46240";
    /// 1280x720, Main 10, level 3.1 (93).
    const HVCC_MAIN10_720P: &str = "0102200000009000000000005df000fcfdfafa00000f03a00001001840010c01ffff02200000030090000003000003005d959809a10001002b42010102200000030090000003000003005da00280802d1365959a4932bc05a020000003002000000303c1a2000100074401c172b46240";
    /// 352x288, 4:4:4 (format range extensions, profile 4), level 2.
    const HVCC_REXT444_288P: &str = "0104080000009e08000000003cf000fcfff8f800000f03a00001001740010c01ffff0408000003009e0800000300003c959809a10001002a4201010408000003009e0800000300003c9001610090b2cacd24995e02d010000003001000000301e080a2000100084401c172860c4624";
    /// 1920x1080, Main, level 4 (120).
    const HVCC_MAIN_1080P: &str = "01016000000090000000000078f000fcfdf8f800000f03a00001001840010c01ffff016000000300900000030000030078959809a10001002a420101016000000300900000030000030078a003c08010e596566924caf0168080000003008000000f04a2000100074401c172b46240";

    fn hevc(s: &str) -> HevcInfo {
        HevcInfo::from_hvcc(&hex(s)).expect("valid hvcC")
    }

    #[test]
    fn hevc_records_from_x265() {
        for (record, codec, width, height, chroma) in [
            (HVCC_MAIN_240P, "hvc1.1.6.L60.90", 320, 240, 1),
            (HVCC_MAIN_426X240, "hvc1.1.6.L60.90", 426, 240, 1),
            (HVCC_MAIN10_720P, "hvc1.2.4.L93.90", 1280, 720, 1),
            (HVCC_REXT444_288P, "hvc1.4.10.L60.9E.8", 352, 288, 3),
            (HVCC_MAIN_1080P, "hvc1.1.6.L120.90", 1920, 1080, 1),
        ] {
            let info = hevc(record);
            assert_eq!(info.codec_string(), codec);
            assert_eq!((info.width, info.height), (width, height), "{codec}");
            assert_eq!(info.chroma_format_idc, chroma);
            assert_eq!(info.frame_rate, None);
        }
        let info = hevc(HVCC_MAIN_1080P);
        assert_eq!(
            (info.profile_space, info.high_tier, info.profile_idc),
            (0, false, 1)
        );
        assert_eq!(info.compatibility_flags, 0x6000_0000);
        assert_eq!(info.constraint_flags, [0x90, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn hevc_codec_string_forms() {
        let mut info = hevc(HVCC_MAIN_240P);
        // The Annex E examples: Main, level 3.1, progressive + non-packed + frame-only.
        info.level_idc = 93;
        info.constraint_flags = [0xB0, 0, 0, 0, 0, 0];
        assert_eq!(info.codec_string(), "hvc1.1.6.L93.B0");
        info.high_tier = true;
        info.level_idc = 120;
        info.profile_space = 1;
        assert_eq!(info.codec_string(), "hvc1.A1.6.H120.B0");
        info.constraint_flags = [0; 6];
        assert_eq!(info.codec_string(), "hvc1.A1.6.H120.0");
        info.constraint_flags = [0, 0, 0, 0, 0, 1];
        assert_eq!(info.codec_string(), "hvc1.A1.6.H120.0.0.0.0.0.1");
    }

    #[test]
    fn hevc_frame_rate_from_hvcc() {
        let mut record = hex(HVCC_MAIN_240P);
        // avgFrameRate = 30 * 256.
        record[19..21].copy_from_slice(&(30u16 * 256).to_be_bytes());
        assert_eq!(HevcInfo::from_hvcc(&record).unwrap().frame_rate, Some(30.0));
    }

    #[test]
    fn hevc_record_errors() {
        let record = hex(HVCC_MAIN_240P);
        // Every cut before the end of the SPS fails; the 12-byte PPS array after it is not read.
        let sps_end = record.len() - 12;
        assert!(HevcInfo::from_hvcc(&record[..sps_end]).is_ok());
        for len in 0..sps_end {
            assert!(HevcInfo::from_hvcc(&record[..len]).is_err(), "prefix {len}");
        }
        let mut bad = record.clone();
        bad[0] = 0;
        assert!(matches!(
            HevcInfo::from_hvcc(&bad),
            Err(CodecError::Unsupported { .. })
        ));
        // No arrays at all.
        let mut empty = record[..HVCC_HEADER_LEN].to_vec();
        empty.push(0);
        assert_eq!(HevcInfo::from_hvcc(&empty), Err(CodecError::NoHevcSps));
        // An SPS array whose NAL unit is a PPS (type 34).
        let mut wrong = record[..HVCC_HEADER_LEN].to_vec();
        wrong.extend_from_slice(&[1, 0xA1, 0, 1, 0, 3, 0x44, 0x01, 0xC1]);
        assert_eq!(HevcInfo::from_hvcc(&wrong), Err(CodecError::NotHevcSps(34)));
    }

    #[test]
    fn hevc_garbage_never_panics() {
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        let seeds: Vec<Vec<u8>> = [
            HVCC_MAIN_240P,
            HVCC_MAIN_426X240,
            HVCC_MAIN10_720P,
            HVCC_REXT444_288P,
        ]
        .iter()
        .map(|s| hex(s))
        .collect();
        for i in 0..20_000 {
            let len = (rng.next() % 96) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if i % 2 == 0 && buf.len() >= 28 {
                // Plausible header: version 1, one SPS array with one NAL unit.
                buf[0] = 1;
                buf[22] = 1;
                buf[23] = 0x21;
                buf[24..26].copy_from_slice(&[0, 1]);
                buf[26..28].copy_from_slice(&((len - 28) as u16).to_be_bytes());
            }
            let _ = HevcInfo::from_hvcc(&buf);

            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = 23 + (rng.next() as usize) % (m.len() - 23);
                m[at] ^= 1 << (rng.next() % 8);
            }
            if rng.next().is_multiple_of(4) {
                m.truncate((rng.next() as usize) % m.len());
            }
            if let Ok(info) = HevcInfo::from_hvcc(&m) {
                assert!(info.width > 0 && info.width <= MAX_HEVC_DIMENSION);
                assert!(info.height > 0 && info.height <= MAX_HEVC_DIMENSION);
                let _ = info.codec_string();
            }
        }
    }
}
