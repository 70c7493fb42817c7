//! Codec configuration parsing: H.264 `avcC` / SPS and AAC `AudioSpecificConfig`.
//!
//! Pure parsers over byte slices, used to build HLS multivariant `CODECS`/`RESOLUTION`/
//! `FRAME-RATE` attributes and GStreamer caps. Nothing here allocates more than the size of
//! its input, and every count read from the wire is bounded by a named constant, so hostile
//! input yields a [`CodecError`], never a panic.
//!
//! Specifications implemented:
//! - ISO/IEC 14496-15 §5.3.3.1 — `AVCDecoderConfigurationRecord` (`avcC`).
//! - ITU-T H.264 (08/2021) §7.3.2.1.1 `seq_parameter_set_data()`, §7.3.2.1.1.1
//!   `scaling_list()`, §7.4.2.1.1 SPS semantics (frame cropping), Annex E.1.1
//!   `vui_parameters()` up to and including `timing_info`.
//! - ISO/IEC 14496-3 §1.6.2.1 `AudioSpecificConfig()`, §4.4.1 `GASpecificConfig()` and
//!   §4.4.1.1 `program_config_element()` (for channel configuration 0).
//! - RFC 6381 §3.3 — `avc1.PPCCLL` and `mp4a.40.N` codec strings.
//! - ISO/IEC 14496-15 §8.3.3.1 — `HEVCDecoderConfigurationRecord` (`hvcC`); Annex E.3 — the
//!   `hvc1.…` codec string.
//! - ITU-T H.265 (08/2021) §7.3.2.2.1 `seq_parameter_set_rbsp()` up to the conformance
//!   window, §7.3.3 `profile_tier_level()`, §7.4.3.2.1 (cropping, `SubWidthC`/`SubHeightC`).

use thiserror::Error;

/// Largest `pic_width_in_mbs` / frame height in macroblocks we accept.
///
/// H.264 Table A-1 caps `PicWidthInMbs` and `FrameHeightInMbs` at `Sqrt(MaxFS * 8)`; with
/// the largest `MaxFS` (139 264, levels 6–6.2) that is 1055.
pub const MAX_DIMENSION_MBS: u32 = 1055;

/// Largest `max_num_ref_frames` (H.264 §7.4.2.1.1: `0..=MaxDpbFrames`, at most 16).
pub const MAX_NUM_REF_FRAMES: u32 = 16;

/// Largest `num_ref_frames_in_pic_order_cnt_cycle` (H.264 §7.4.2.1.1: `0..=255`).
pub const MAX_REF_FRAMES_IN_POC_CYCLE: u32 = 255;

/// Largest `log2_max_frame_num_minus4` and `log2_max_pic_order_cnt_lsb_minus4` (`0..=12`).
pub const MAX_LOG2_MINUS4: u32 = 12;

/// Largest `bit_depth_luma_minus8` / `bit_depth_chroma_minus8` (`0..=6`).
pub const MAX_BIT_DEPTH_MINUS8: u32 = 6;

/// Largest `chroma_format_idc` (3 = 4:4:4).
pub const MAX_CHROMA_FORMAT_IDC: u32 = 3;

/// Largest `pic_order_cnt_type`.
pub const MAX_POC_TYPE: u32 = 2;

/// Largest `chroma_sample_loc_type_top/bottom_field` (E.2.1: `0..=5`).
pub const MAX_CHROMA_SAMPLE_LOC_TYPE: u32 = 5;

/// Most leading zero bits in an exp-Golomb code whose value fits `u32` (§9.1).
pub const MAX_EXP_GOLOMB_LEADING_ZEROS: u32 = 31;

/// `aspect_ratio_idc` value meaning an explicit `sar_width`/`sar_height` follows (Table E-1).
const EXTENDED_SAR: u8 = 255;

/// `nal_unit_type` of a sequence parameter set (Table 7-1).
const NAL_TYPE_SPS: u8 = 7;

/// `profile_idc` values whose SPS carries `chroma_format_idc`, bit depths and scaling
/// matrices (§7.3.2.1.1).
const HIGH_PROFILES: [u8; 13] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

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

/// Largest H.265 `pic_width/height_in_luma_samples`: `Sqrt(MaxLumaPs * 8)` for the largest
/// `MaxLumaPs` (35 651 584, levels 6–6.2, H.265 Table A.8).
pub const MAX_HEVC_DIMENSION: u32 = 16_888;

/// Largest `sps_max_sub_layers_minus1` (H.265 §7.4.3.2.1: `0..=6`).
pub const MAX_HEVC_SUB_LAYERS_MINUS1: u32 = 6;

/// H.265 `nal_unit_type` of a sequence parameter set (Table 7-1).
const HEVC_NAL_TYPE_SPS: u8 = 33;

/// Bytes of the fixed `hvcC` header before `numOfArrays`.
const HVCC_HEADER_LEN: usize = 22;

/// Errors from parsing codec configuration.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CodecError {
    /// The input ended before a required field.
    #[error("{what} truncated: input ended before a required field")]
    Truncated {
        /// Which structure was being read (`"avcC"`, `"SPS"`, `"AudioSpecificConfig"`).
        what: &'static str,
    },
    /// The `avcC` record lists no sequence parameter set.
    #[error("avcC contains no sequence parameter set")]
    NoSps,
    /// The first parameter set in `avcC` is not an SPS NAL unit.
    #[error("first avcC parameter set is NAL unit type {0}, expected 7 (SPS)")]
    NotSps(u8),
    /// The `hvcC` record lists no sequence parameter set.
    #[error("hvcC contains no sequence parameter set")]
    NoHevcSps,
    /// The NAL unit in the `hvcC` SPS array is not an SPS.
    #[error("hvcC SPS array holds NAL unit type {0}, expected 33 (SPS)")]
    NotHevcSps(u8),
    /// An exp-Golomb code has more leading zero bits than any value fitting 32 bits.
    #[error("invalid exp-Golomb code in {field}: more than 31 leading zero bits")]
    BadExpGolomb {
        /// The SPS syntax element being read.
        field: &'static str,
    },
    /// A field holds a value outside the range the specification allows.
    #[error("{field} = {value} is out of range (maximum {max})")]
    OutOfRange {
        /// The syntax element.
        field: &'static str,
        /// The value read.
        value: i64,
        /// The largest value allowed.
        max: i64,
    },
    /// A field holds a value the specification reserves or this parser does not support.
    #[error("unsupported {field} = {value}")]
    Unsupported {
        /// The syntax element.
        field: &'static str,
        /// The value read.
        value: u32,
    },
    /// Frame cropping removes the whole picture.
    #[error("frame cropping removes the whole {width}x{height} picture")]
    BadCropping {
        /// Coded width in luma samples before cropping.
        width: u32,
        /// Coded height in luma samples before cropping.
        height: u32,
    },
}

/// Parsed H.264 decoder configuration (from an avcC record).
#[derive(Debug, Clone, PartialEq)]
pub struct AvcInfo {
    /// `profile_idc` from the SPS (66 baseline, 77 main, 100 high, …).
    pub profile_idc: u8,
    /// The SPS byte holding `constraint_set0_flag..constraint_set5_flag` and the two
    /// reserved zero bits (RFC 6381 "profile-compat" byte).
    pub constraint_flags: u8,
    /// `level_idc` from the SPS (level × 10, e.g. 31 for level 3.1).
    pub level_idc: u8,
    /// Displayed width in luma samples, after frame cropping.
    pub width: u32,
    /// Displayed (frame) height in luma samples, after frame cropping.
    pub height: u32,
    /// Frames per second from VUI `timing_info`: `time_scale / (2 * num_units_in_tick)`;
    /// `None` when the VUI carries no (non-zero) timing information.
    pub frame_rate: Option<f64>,
}

impl AvcInfo {
    /// Parse an AVCDecoderConfigurationRecord (ISO/IEC 14496-15 §5.3.3.1): first SPS →
    /// profile/level/resolution (apply frame cropping, chroma format, frame_mbs_only).
    ///
    /// Only the record header and the first SPS are read; the picture parameter sets and
    /// any later SPS are not needed for the attributes this type exposes.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] if the record or SPS ends early, [`CodecError::NoSps`] /
    /// [`CodecError::NotSps`] if there is no SPS, and the other variants for malformed,
    /// reserved or out-of-range SPS fields.
    pub fn from_avcc(avcc: &[u8]) -> Result<AvcInfo, CodecError> {
        const WHAT: &str = "avcC";
        // configurationVersion, AVCProfileIndication, profile_compatibility,
        // AVCLevelIndication, lengthSizeMinusOne, numOfSequenceParameterSets.
        let [version, _, _, _, _, num_sps_byte, rest @ ..] = avcc else {
            return Err(CodecError::Truncated { what: WHAT });
        };
        if *version != 1 {
            return Err(CodecError::Unsupported {
                field: "avcC configurationVersion",
                value: u32::from(*version),
            });
        }
        if num_sps_byte & 0x1f == 0 {
            return Err(CodecError::NoSps);
        }
        let [len_hi, len_lo, rest @ ..] = rest else {
            return Err(CodecError::Truncated { what: WHAT });
        };
        let sps_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
        let sps = rest
            .get(..sps_len)
            .ok_or(CodecError::Truncated { what: WHAT })?;
        parse_sps_nal(sps)
    }

    /// RFC 6381 codec string: "avc1.PPCCLL" (hex, lowercase), e.g. "avc1.64001f".
    pub fn codec_string(&self) -> String {
        format!(
            "avc1.{:02x}{:02x}{:02x}",
            self.profile_idc, self.constraint_flags, self.level_idc
        )
    }
}

/// Remove emulation-prevention bytes: every `0x03` that follows two zero bytes
/// (H.264 §7.4.1: `emulation_prevention_three_byte`).
fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(nal.len());
    let mut zeros = 0usize;
    for &b in nal {
        if zeros >= 2 && b == 0x03 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// MSB-first bit reader over an RBSP that reports truncation instead of panicking.
struct BitReader<'a> {
    /// The bytes being read.
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    /// Structure name reported in [`CodecError::Truncated`].
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    /// Read one bit.
    fn bit(&mut self) -> Result<bool, CodecError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(CodecError::Truncated { what: self.what })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Read `n` (≤ 32) bits as an unsigned big-endian value.
    fn bits(&mut self, n: u32) -> Result<u32, CodecError> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        // At most 32 bits were shifted in.
        Ok(v as u32)
    }

    /// Read 8 bits.
    fn u8(&mut self) -> Result<u8, CodecError> {
        // `bits(8)` is below 256.
        Ok(self.bits(8)? as u8)
    }

    /// Skip `n` bits.
    fn skip(&mut self, n: usize) -> Result<(), CodecError> {
        let end = self.pos.saturating_add(n);
        if end > self.data.len().saturating_mul(8) {
            return Err(CodecError::Truncated { what: self.what });
        }
        self.pos = end;
        Ok(())
    }

    /// Unsigned exp-Golomb `ue(v)` (H.264 §9.1).
    fn ue(&mut self, field: &'static str) -> Result<u32, CodecError> {
        let mut zeros = 0u32;
        while !self.bit()? {
            zeros += 1;
            if zeros > MAX_EXP_GOLOMB_LEADING_ZEROS {
                return Err(CodecError::BadExpGolomb { field });
            }
        }
        let suffix = u64::from(self.bits(zeros)?);
        // zeros ≤ 31, so the value is at most 2^32 - 2.
        Ok(((1u64 << zeros) - 1 + suffix) as u32)
    }

    /// Signed exp-Golomb `se(v)` (H.264 §9.1.1).
    fn se(&mut self, field: &'static str) -> Result<i32, CodecError> {
        let k = i64::from(self.ue(field)?);
        let magnitude = (k + 1) / 2;
        // |value| ≤ 2^31 - 1.
        Ok(if k % 2 == 1 { magnitude } else { -magnitude } as i32)
    }

    /// `ue(v)` that must not exceed `max`.
    fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, CodecError> {
        let v = self.ue(field)?;
        if v > max {
            return Err(CodecError::OutOfRange {
                field,
                value: i64::from(v),
                max: i64::from(max),
            });
        }
        Ok(v)
    }
}

/// Parse an SPS NAL unit (header byte included, emulation prevention still present).
fn parse_sps_nal(nal: &[u8]) -> Result<AvcInfo, CodecError> {
    let Some(&header) = nal.first() else {
        return Err(CodecError::Truncated { what: "SPS" });
    };
    let nal_type = header & 0x1f;
    if nal_type != NAL_TYPE_SPS {
        return Err(CodecError::NotSps(nal_type));
    }
    let rbsp = unescape_rbsp(&nal[1..]);
    parse_sps_rbsp(&rbsp)
}

/// Parse `seq_parameter_set_data()` (H.264 §7.3.2.1.1) from an unescaped RBSP.
fn parse_sps_rbsp(rbsp: &[u8]) -> Result<AvcInfo, CodecError> {
    let mut r = BitReader::new(rbsp, "SPS");
    let profile_idc = r.u8()?;
    let constraint_flags = r.u8()?;
    let level_idc = r.u8()?;
    r.ue("seq_parameter_set_id")?;

    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if HIGH_PROFILES.contains(&profile_idc) {
        chroma_format_idc = r.ue_max("chroma_format_idc", MAX_CHROMA_FORMAT_IDC)?;
        if chroma_format_idc == 3 {
            separate_colour_plane = r.bit()?;
        }
        r.ue_max("bit_depth_luma_minus8", MAX_BIT_DEPTH_MINUS8)?;
        r.ue_max("bit_depth_chroma_minus8", MAX_BIT_DEPTH_MINUS8)?;
        r.bit()?; // qpprime_y_zero_transform_bypass_flag
        if r.bit()? {
            // seq_scaling_matrix_present_flag
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.bit()? {
                    // seq_scaling_list_present_flag[i]
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }

    r.ue_max("log2_max_frame_num_minus4", MAX_LOG2_MINUS4)?;
    let poc_type = r.ue_max("pic_order_cnt_type", MAX_POC_TYPE)?;
    match poc_type {
        0 => {
            r.ue_max("log2_max_pic_order_cnt_lsb_minus4", MAX_LOG2_MINUS4)?;
        }
        1 => {
            r.bit()?; // delta_pic_order_always_zero_flag
            r.se("offset_for_non_ref_pic")?;
            r.se("offset_for_top_to_bottom_field")?;
            let cycle = r.ue_max(
                "num_ref_frames_in_pic_order_cnt_cycle",
                MAX_REF_FRAMES_IN_POC_CYCLE,
            )?;
            for _ in 0..cycle {
                r.se("offset_for_ref_frame")?;
            }
        }
        _ => {}
    }
    r.ue_max("max_num_ref_frames", MAX_NUM_REF_FRAMES)?;
    r.bit()?; // gaps_in_frame_num_value_allowed_flag
    let width_mbs = r.ue_max("pic_width_in_mbs_minus1", MAX_DIMENSION_MBS - 1)? + 1;
    let height_map_units = r.ue_max("pic_height_in_map_units_minus1", MAX_DIMENSION_MBS - 1)? + 1;
    let frame_mbs_only = r.bit()?;
    if !frame_mbs_only {
        r.bit()?; // mb_adaptive_frame_field_flag
    }
    r.bit()?; // direct_8x8_inference_flag

    // §7.4.2.1.1: FrameHeightInMbs = (2 − frame_mbs_only_flag) * PicHeightInMapUnits.
    let field_factor: u32 = if frame_mbs_only { 1 } else { 2 };
    let height_mbs = field_factor * height_map_units;
    if height_mbs > MAX_DIMENSION_MBS {
        return Err(CodecError::OutOfRange {
            field: "FrameHeightInMbs",
            value: i64::from(height_mbs),
            max: i64::from(MAX_DIMENSION_MBS),
        });
    }
    let coded_width = width_mbs * 16;
    let coded_height = height_mbs * 16;

    let (mut width, mut height) = (coded_width, coded_height);
    if r.bit()? {
        // frame_cropping_flag
        let left = r.ue("frame_crop_left_offset")?;
        let right = r.ue("frame_crop_right_offset")?;
        let top = r.ue("frame_crop_top_offset")?;
        let bottom = r.ue("frame_crop_bottom_offset")?;
        // §7.4.2.1.1: ChromaArrayType 0 → CropUnitX = 1, CropUnitY = 2 − frame_mbs_only_flag;
        // otherwise CropUnitX = SubWidthC, CropUnitY = SubHeightC * (2 − frame_mbs_only_flag).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let (sub_width_c, sub_height_c): (u32, u32) = match chroma_array_type {
            1 => (2, 2),
            2 => (2, 1),
            _ => (1, 1), // 4:4:4 and monochrome / separate planes
        };
        let crop_x = u64::from(sub_width_c) * (u64::from(left) + u64::from(right));
        let crop_y = u64::from(sub_height_c * field_factor) * (u64::from(top) + u64::from(bottom));
        if crop_x >= u64::from(coded_width) || crop_y >= u64::from(coded_height) {
            return Err(CodecError::BadCropping {
                width: coded_width,
                height: coded_height,
            });
        }
        // Both crops are below the coded size, which fits u32.
        width = coded_width - crop_x as u32;
        height = coded_height - crop_y as u32;
    }

    let frame_rate = if r.bit()? {
        parse_vui_frame_rate(&mut r)?
    } else {
        None
    };

    Ok(AvcInfo {
        profile_idc,
        constraint_flags,
        level_idc,
        width,
        height,
        frame_rate,
    })
}

/// Skip `scaling_list(…, sizeOfScalingList, …)` (H.264 §7.3.2.1.1.1).
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), CodecError> {
    let mut last_scale: i32 = 8;
    let mut next_scale: i32 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se("delta_scale")?;
            // §7.4.2.1.1.1: delta_scale shall be in the range −128..=127.
            if !(-128..=127).contains(&delta) {
                return Err(CodecError::OutOfRange {
                    field: "delta_scale",
                    value: i64::from(delta),
                    max: 127,
                });
            }
            next_scale = (last_scale + delta + 256) % 256;
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Read `vui_parameters()` (H.264 E.1.1) up to `timing_info` and return the frame rate.
fn parse_vui_frame_rate(r: &mut BitReader<'_>) -> Result<Option<f64>, CodecError> {
    if r.bit()? {
        // aspect_ratio_info_present_flag
        if r.u8()? == EXTENDED_SAR {
            r.skip(32)?; // sar_width u(16), sar_height u(16)
        }
    }
    if r.bit()? {
        // overscan_info_present_flag
        r.bit()?; // overscan_appropriate_flag
    }
    if r.bit()? {
        // video_signal_type_present_flag
        r.skip(3 + 1)?; // video_format, video_full_range_flag
        if r.bit()? {
            // colour_description_present_flag
            r.skip(24)?; // colour_primaries, transfer_characteristics, matrix_coefficients
        }
    }
    if r.bit()? {
        // chroma_loc_info_present_flag
        r.ue_max(
            "chroma_sample_loc_type_top_field",
            MAX_CHROMA_SAMPLE_LOC_TYPE,
        )?;
        r.ue_max(
            "chroma_sample_loc_type_bottom_field",
            MAX_CHROMA_SAMPLE_LOC_TYPE,
        )?;
    }
    if !r.bit()? {
        // timing_info_present_flag
        return Ok(None);
    }
    let num_units_in_tick = r.bits(32)?;
    let time_scale = r.bits(32)?;
    r.bit()?; // fixed_frame_rate_flag
    // E.2.1: both "shall be greater than 0"; treat zero as absent timing rather than failing.
    if num_units_in_tick == 0 || time_scale == 0 {
        return Ok(None);
    }
    Ok(Some(
        f64::from(time_scale) / (2.0 * f64::from(num_units_in_tick)),
    ))
}

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
    let mut sub_layer_profile = [false; 6];
    let mut sub_layer_level = [false; 6];
    for i in 0..max_sub_layers_minus1 as usize {
        sub_layer_profile[i] = r.bit()?;
        sub_layer_level[i] = r.bit()?;
    }
    if max_sub_layers_minus1 > 0 {
        // reserved_zero_2bits for i in max_sub_layers_minus1..8.
        r.skip(2 * (8 - max_sub_layers_minus1 as usize))?;
    }
    for i in 0..max_sub_layers_minus1 as usize {
        if sub_layer_profile[i] {
            // profile space, tier, idc, 32 compatibility flags, 48 constraint bits.
            r.skip(88)?;
        }
        if sub_layer_level[i] {
            r.skip(8)?;
        }
    }

    r.ue_max("sps_seq_parameter_set_id", 15)?;
    let chroma_format_idc = r.ue_max("chroma_format_idc", MAX_CHROMA_FORMAT_IDC)?;
    let separate_colour_plane = chroma_format_idc == 3 && r.bit()?;
    let coded_width = r.ue_max("pic_width_in_luma_samples", MAX_HEVC_DIMENSION)?;
    let coded_height = r.ue_max("pic_height_in_luma_samples", MAX_HEVC_DIMENSION)?;
    let (mut width, mut height) = (coded_width, coded_height);
    if r.bit()? {
        // conformance_window_flag: offsets in chroma units (§7.4.3.2.1, Table 6-1).
        let chroma_array_type = if separate_colour_plane {
            0
        } else {
            chroma_format_idc
        };
        let sub_width = u64::from(if chroma_array_type == 1 || chroma_array_type == 2 {
            2u32
        } else {
            1
        });
        let sub_height = u64::from(if chroma_array_type == 1 { 2u32 } else { 1 });
        let left = u64::from(r.ue("conf_win_left_offset")?);
        let right = u64::from(r.ue("conf_win_right_offset")?);
        let top = u64::from(r.ue("conf_win_top_offset")?);
        let bottom = u64::from(r.ue("conf_win_bottom_offset")?);
        let crop_w = sub_width * (left + right);
        let crop_h = sub_height * (top + bottom);
        if crop_w >= u64::from(coded_width) || crop_h >= u64::from(coded_height) {
            return Err(CodecError::BadCropping {
                width: coded_width,
                height: coded_height,
            });
        }
        // Both are below the coded size, which fits u32.
        width = coded_width - crop_w as u32;
        height = coded_height - crop_h as u32;
    }
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

/// AV1 OBU type of a sequence header (AV1 §6.2.2).
pub const AV1_OBU_SEQUENCE_HEADER: u8 = 1;
/// Bytes of the fixed av1C header before `configOBUs`.
const AV1C_HEADER_LEN: usize = 4;

/// Parsed AV1 decoder configuration (from an av1C record and its sequence header OBU).
#[derive(Debug, Clone, PartialEq)]
pub struct Av1Info {
    /// `seq_profile` (0 Main, 1 High, 2 Professional).
    pub profile: u8,
    /// `seq_level_idx_0`.
    pub level_idx: u8,
    /// `seq_tier_0`.
    pub high_tier: bool,
    /// 8, 10 or 12.
    pub bit_depth: u8,
    /// `max_frame_width_minus_1 + 1` from the sequence header.
    pub width: u32,
    /// `max_frame_height_minus_1 + 1` from the sequence header.
    pub height: u32,
    /// Frames per second from the sequence header's timing info (constant rate only).
    pub frame_rate: Option<f64>,
}

impl Av1Info {
    /// Parse an AV1CodecConfigurationRecord (AV1-ISOBMFF §2.3.3): the 4-byte header gives
    /// profile, level, tier and bit depth; the sequence header OBU in `configOBUs` the maximum
    /// frame size and timing.
    ///
    /// # Errors
    /// [`CodecError::Truncated`] if the record or OBU ends early; [`CodecError::Unsupported`]
    /// for a bad marker/version or when `configOBUs` holds no sequence header.
    pub fn from_av1c(av1c: &[u8]) -> Result<Av1Info, CodecError> {
        const WHAT: &str = "av1C";
        let header = av1c
            .get(..AV1C_HEADER_LEN)
            .ok_or(CodecError::Truncated { what: WHAT })?;
        if header[0] != 0x81 {
            return Err(CodecError::Unsupported {
                field: "av1C marker/version",
                value: u32::from(header[0]),
            });
        }
        let profile = header[1] >> 5;
        let level_idx = header[1] & 0x1f;
        let high_tier = header[2] & 0x80 != 0;
        let bit_depth = match (header[2] & 0x40 != 0, header[2] & 0x20 != 0) {
            (true, true) => 12,
            (true, false) => 10,
            _ => 8,
        };
        let mut obus = &av1c[AV1C_HEADER_LEN..];
        while let Some((obu_type, payload, rest)) = next_obu(obus)? {
            if obu_type == AV1_OBU_SEQUENCE_HEADER {
                let (width, height, frame_rate) = parse_av1_sequence_header(payload)?;
                return Ok(Av1Info {
                    profile,
                    level_idx,
                    high_tier,
                    bit_depth,
                    width,
                    height,
                    frame_rate,
                });
            }
            obus = rest;
        }
        Err(CodecError::Unsupported {
            field: "av1C configOBUs without a sequence header, length",
            value: u32::try_from(av1c.len()).unwrap_or(u32::MAX),
        })
    }

    /// Codec string per AV1-ISOBMFF §5 (short form), e.g. `av01.0.08M.08`.
    pub fn codec_string(&self) -> String {
        let tier = if self.high_tier { 'H' } else { 'M' };
        format!(
            "av01.{}.{:02}{tier}.{:02}",
            self.profile, self.level_idx, self.bit_depth
        )
    }
}

/// One OBU split off a byte string: (obu_type, payload, the bytes after it).
pub type Obu<'a> = (u8, &'a [u8], &'a [u8]);

/// The first OBU of `data` (low-overhead format): (type, payload, rest); `None` at the end.
/// An OBU without a size field extends to the end of `data`.
///
/// # Errors
/// [`CodecError::Truncated`] when the header or payload is cut short.
pub fn next_obu(data: &[u8]) -> Result<Option<Obu<'_>>, CodecError> {
    const WHAT: &str = "AV1 OBU";
    let Some((&header, mut rest)) = data.split_first() else {
        return Ok(None);
    };
    let obu_type = (header >> 3) & 0x0f;
    if header & 0x04 != 0 {
        rest = rest.get(1..).ok_or(CodecError::Truncated { what: WHAT })?;
    }
    let size = if header & 0x02 != 0 {
        // leb128, at most 8 bytes.
        let mut value: u64 = 0;
        let mut i = 0;
        loop {
            let &byte = rest.get(i).ok_or(CodecError::Truncated { what: WHAT })?;
            value |= u64::from(byte & 0x7f) << (7 * i);
            i += 1;
            if byte & 0x80 == 0 {
                break;
            }
            if i == 8 {
                return Err(CodecError::Unsupported {
                    field: "OBU leb128 size longer than 8 bytes, first byte",
                    value: u32::from(rest[0]),
                });
            }
        }
        rest = &rest[i..];
        usize::try_from(value).unwrap_or(usize::MAX)
    } else {
        rest.len()
    };
    let payload = rest
        .get(..size)
        .ok_or(CodecError::Truncated { what: WHAT })?;
    Ok(Some((obu_type, payload, &rest[size..])))
}

/// Width, height and constant frame rate from an AV1 sequence header OBU payload (AV1 §5.5).
fn parse_av1_sequence_header(payload: &[u8]) -> Result<(u32, u32, Option<f64>), CodecError> {
    let mut r = BitReader::new(payload, "AV1 sequence header");
    r.skip(4)?; // seq_profile, still_picture
    let reduced_still_picture_header = r.bit()?;
    let mut frame_rate = None;
    if reduced_still_picture_header {
        r.skip(5)?; // seq_level_idx[0]
    } else {
        let mut buffer_delay_length = 0;
        let mut decoder_model_info_present = false;
        if r.bit()? {
            // timing_info()
            let units_in_tick = r.bits(32)?;
            let time_scale = r.bits(32)?;
            if r.bit()? {
                // equal_picture_interval: num_ticks_per_picture_minus_1, uvlc().
                let mut zeros = 0;
                while !r.bit()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return Err(CodecError::BadExpGolomb {
                            field: "num_ticks_per_picture_minus_1",
                        });
                    }
                }
                let ticks = u64::from(r.bits(zeros)?) + (1u64 << zeros);
                if units_in_tick > 0 {
                    frame_rate =
                        Some(f64::from(time_scale) / (f64::from(units_in_tick) * ticks as f64));
                }
            }
            decoder_model_info_present = r.bit()?;
            if decoder_model_info_present {
                buffer_delay_length = r.bits(5)? + 1;
                r.skip(32 + 5 + 5)?;
            }
        }
        let initial_display_delay_present = r.bit()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.skip(12)?; // operating_point_idc
            if r.bits(5)? > 7 {
                r.skip(1)?; // seq_tier
            }
            if decoder_model_info_present && r.bit()? {
                r.skip(2 * buffer_delay_length as usize + 1)?;
            }
            if initial_display_delay_present && r.bit()? {
                r.skip(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? + 1;
    let height_bits = r.bits(4)? + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    Ok((width, height, frame_rate))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Decode a hex string (test vectors are copied from real encoder output).
    fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2));
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // avcC records extracted from MP4 files written by ffmpeg/libx264
    // (`ffmpeg -f lavfi -i testsrc2=size=WxH:rate=R -frames:v 1 -c:v libx264 -profile:v P`);
    // expected values cross-checked with ffprobe.
    /// 1280x720 @ 30, High, level 3.1.
    const AVCC_HIGH_720P30: &str = "0164001fffe1001a6764001facd9405005bb0110000003001000000303c0f183196001000668ebe3cb22c0fdf8f800";
    /// 1920x1080 @ 25, High, level 4.0 (coded 1088, cropped to 1080).
    const AVCC_HIGH_1080P25: &str = "01640028ffe1001b67640028acd940780227e5c044000003000400000300c83c60c65801000668ebe3cb22c0fdf8f800";
    /// 640x360 @ 30, Constrained Baseline, level 3.0 (pic_order_cnt_type 2).
    const AVCC_BASELINE_360P30: &str =
        "0142c01effe100196742c01ed900a02ff970110000030001000003003c0f162e4801000568cb83cb20";
    /// 640x360 @ 25, Main, level 3.0.
    const AVCC_MAIN_360P25: &str =
        "014d401effe10018674d401eeca05017fcb808800000030080000019078b16cb01000568ebe3cb20";
    /// 854x480 @ 30, High, level 3.1 (width not a multiple of 16).
    const AVCC_HIGH_480P30: &str = "0164001fffe1001a6764001facd940d83de6f0110000030001000003003c0f18319601000668ebe3cb22c0fdf8f800";
    /// 320x240 @ 30, High 4:4:4 Predictive, level 1.3 (chroma_format_idc 3).
    const AVCC_HIGH444_240P30: &str = "01f4000dffe1001967f4000d919b28283f6022000003000200000300781e28532c01000668ebe3c44844fff8f800";
    /// 638x478 @ 30, High (crop right and bottom by 2).
    const AVCC_HIGH_638X478: &str = "0164001effe1001a6764001eacd940a03deab0110000030001000003003c0f162d9601000668ebe3cb22c0fdf8f800";
    /// 1920x1080 @ 25 interlaced (frame_mbs_only_flag 0), High, level 4.0.
    const AVCC_HIGH_1080I25: &str = "01640028ffe1001a67640028acd94078044fde0220000003002000000643e2c5b2c001000668fba3cb22c0fdf8f800";
    /// 640x360 @ 30, High 4:2:2, SAR 5:7 (Extended_SAR), BT.709 colour description.
    const AVCC_HIGH422_SAR: &str = "017a001effe10022677a001ebcd940a02ff89ffc0014001da808080a000003000200000300781e2c5b2c01000668ebe3cb22c0fef8f800";
    /// 640x360 @ 30, High 10.
    const AVCC_HIGH10_360P30: &str = "016e001effe1001b676e001ea6cd940a02ff970110000003001000000303c0f162d96001000668ebe3cb22c0fdfafa00";
    /// 640x360 @ 30000/1001, Main.
    const AVCC_MAIN_360P2997: &str =
        "014d401effe10017674d401eeca05017fcb808800001f480007530078b16cb01000568ebe3cb20";

    // AudioSpecificConfigs from ffmpeg's native AAC encoder (esds DecoderSpecificInfo),
    // including its trailing backward-compatible SBR sync extension.
    /// AAC-LC, 48 kHz, stereo.
    const ASC_LC_48K_STEREO: &str = "119056e500";
    /// AAC-LC, 44.1 kHz, mono.
    const ASC_LC_44K_MONO: &str = "120856e500";
    /// AAC-LC, 48 kHz, 5.1.
    const ASC_LC_48K_51: &str = "11b056e500";

    fn avc(s: &str) -> AvcInfo {
        AvcInfo::from_avcc(&hex(s)).expect("valid avcC")
    }

    fn assert_avc(info: &AvcInfo, codec: &str, width: u32, height: u32, fps: Option<f64>) {
        assert_eq!(info.codec_string(), codec);
        assert_eq!((info.width, info.height), (width, height));
        match (info.frame_rate, fps) {
            (Some(a), Some(b)) => assert!((a - b).abs() < 1e-9, "fps {a} != {b}"),
            (a, b) => assert_eq!(a, b),
        }
    }

    #[test]
    fn high_720p30() {
        let info = avc(AVCC_HIGH_720P30);
        assert_eq!(
            info,
            AvcInfo {
                profile_idc: 100,
                constraint_flags: 0,
                level_idc: 31,
                width: 1280,
                height: 720,
                frame_rate: Some(30.0),
            }
        );
        assert_eq!(info.codec_string(), "avc1.64001f");
    }

    #[test]
    fn high_1080p25_cropped_from_1088() {
        assert_avc(
            &avc(AVCC_HIGH_1080P25),
            "avc1.640028",
            1920,
            1080,
            Some(25.0),
        );
    }

    #[test]
    fn baseline_and_main_360p() {
        assert_avc(
            &avc(AVCC_BASELINE_360P30),
            "avc1.42c01e",
            640,
            360,
            Some(30.0),
        );
        assert_avc(&avc(AVCC_MAIN_360P25), "avc1.4d401e", 640, 360, Some(25.0));
    }

    #[test]
    fn high_854x480() {
        assert_avc(&avc(AVCC_HIGH_480P30), "avc1.64001f", 854, 480, Some(30.0));
    }

    #[test]
    fn high444_chroma_format_3() {
        assert_avc(
            &avc(AVCC_HIGH444_240P30),
            "avc1.f4000d",
            320,
            240,
            Some(30.0),
        );
    }

    #[test]
    fn crop_right_and_bottom() {
        assert_avc(&avc(AVCC_HIGH_638X478), "avc1.64001e", 638, 478, Some(30.0));
    }

    #[test]
    fn interlaced_1080i() {
        // 34 map units x 2 fields = 68 MBs = 1088 rows, cropped by 2 units of 4 rows.
        assert_avc(
            &avc(AVCC_HIGH_1080I25),
            "avc1.640028",
            1920,
            1080,
            Some(25.0),
        );
    }

    #[test]
    fn high422_extended_sar_and_colour_description() {
        assert_avc(&avc(AVCC_HIGH422_SAR), "avc1.7a001e", 640, 360, Some(30.0));
    }

    #[test]
    fn high10() {
        assert_avc(
            &avc(AVCC_HIGH10_360P30),
            "avc1.6e001e",
            640,
            360,
            Some(30.0),
        );
    }

    #[test]
    fn ntsc_frame_rate() {
        assert_avc(
            &avc(AVCC_MAIN_360P2997),
            "avc1.4d401e",
            640,
            360,
            Some(30_000.0 / 1001.0),
        );
    }

    #[test]
    fn every_truncation_of_a_real_avcc_is_an_error() {
        for vector in [AVCC_HIGH_720P30, AVCC_HIGH422_SAR, AVCC_BASELINE_360P30] {
            let bytes = hex(vector);
            let sps_end = 8 + usize::from(u16::from_be_bytes([bytes[6], bytes[7]]));
            for len in 0..sps_end {
                let err = AvcInfo::from_avcc(&bytes[..len]).unwrap_err();
                assert!(
                    matches!(err, CodecError::Truncated { .. }),
                    "len {len}: {err:?}"
                );
            }
            // Everything after the first SPS (the PPS list) is not needed.
            AvcInfo::from_avcc(&bytes[..sps_end]).unwrap();
        }
    }

    #[test]
    fn truncated_sps_inside_valid_avcc_is_an_error() {
        // Shorten the SPS itself (and its length field) so the bit reader runs out.
        let bytes = hex(AVCC_HIGH_720P30);
        for sps_len in 1..4u16 {
            let mut v = bytes[..6].to_vec();
            v.extend_from_slice(&sps_len.to_be_bytes());
            v.extend_from_slice(&bytes[8..8 + usize::from(sps_len)]);
            assert_eq!(
                AvcInfo::from_avcc(&v),
                Err(CodecError::Truncated { what: "SPS" })
            );
        }
    }

    #[test]
    fn avcc_header_errors() {
        let mut bytes = hex(AVCC_HIGH_720P30);
        bytes[5] = 0xe0; // numOfSequenceParameterSets = 0
        assert_eq!(AvcInfo::from_avcc(&bytes), Err(CodecError::NoSps));

        let mut bytes = hex(AVCC_HIGH_720P30);
        bytes[0] = 2;
        assert!(matches!(
            AvcInfo::from_avcc(&bytes),
            Err(CodecError::Unsupported { value: 2, .. })
        ));

        let mut bytes = hex(AVCC_HIGH_720P30);
        bytes[8] = 0x68; // a PPS where the SPS should be
        assert_eq!(AvcInfo::from_avcc(&bytes), Err(CodecError::NotSps(8)));

        assert_eq!(
            AvcInfo::from_avcc(&[]),
            Err(CodecError::Truncated { what: "avcC" })
        );
    }

    #[test]
    fn emulation_prevention_is_removed() {
        assert_eq!(
            unescape_rbsp(&[0, 0, 3, 1, 0, 0, 3, 0, 0, 3]),
            vec![0, 0, 1, 0, 0, 0, 0]
        );
        assert_eq!(unescape_rbsp(&[0, 3, 0, 0, 0, 3]), vec![0, 3, 0, 0, 0]);
    }

    #[test]
    fn exp_golomb() {
        // 1 | 010 | 011 | 00100 | 00101 → ue 0, 1, 2, 3, 4
        let data = [0b1010_0110, 0b0100_0010, 0b1000_0000];
        let mut r = BitReader::new(&data, "test");
        for want in 0..5 {
            assert_eq!(r.ue("x").unwrap(), want);
        }
        // se: 0 → 0, 1 → 1, 2 → −1, 3 → 2, 4 → −2
        let mut r = BitReader::new(&data, "test");
        for want in [0, 1, -1, 2, -2] {
            assert_eq!(r.se("x").unwrap(), want);
        }
        // 31 leading zeros then 1 and 31 ones: 2^32 − 2, the largest legal value.
        let mut w = BitWriter::default();
        w.bits(0, 31);
        w.bits(1, 1);
        w.bits(0x7fff_ffff, 31);
        let max = w.finish();
        assert_eq!(BitReader::new(&max, "t").ue("x").unwrap(), u32::MAX - 1);
        // 32 leading zeros is not a value that fits u32.
        let zeros = [0u8; 8];
        assert_eq!(
            BitReader::new(&zeros, "t").ue("x"),
            Err(CodecError::BadExpGolomb { field: "x" })
        );
        // Prefix without its suffix.
        assert_eq!(
            BitReader::new(&[0b0000_0010], "t").ue("x"),
            Err(CodecError::Truncated { what: "t" })
        );
    }

    /// Test-only MSB-first bit writer with exp-Golomb, for synthetic SPSs covering syntax
    /// libx264 never emits (poc type 1, SPS scaling lists, cropping in 4:2:2, …).
    #[derive(Default)]
    struct BitWriter {
        bytes: Vec<u8>,
        nbits: usize,
    }

    impl BitWriter {
        fn bits(&mut self, v: u64, n: u32) {
            for i in (0..n).rev() {
                if self.nbits.is_multiple_of(8) {
                    self.bytes.push(0);
                }
                if (v >> i) & 1 == 1 {
                    *self.bytes.last_mut().unwrap() |= 0x80 >> (self.nbits % 8);
                }
                self.nbits += 1;
            }
        }
        fn flag(&mut self, b: bool) {
            self.bits(u64::from(b), 1);
        }
        fn ue(&mut self, v: u32) {
            let x = u64::from(v) + 1;
            let len = 64 - x.leading_zeros();
            self.bits(0, len - 1);
            self.bits(x, len);
        }
        fn se(&mut self, v: i32) {
            let k = if v > 0 {
                2 * v as u32 - 1
            } else {
                2 * v.unsigned_abs()
            };
            self.ue(k);
        }
        /// rbsp_trailing_bits and return the bytes.
        fn finish(mut self) -> Vec<u8> {
            self.flag(true);
            while !self.nbits.is_multiple_of(8) {
                self.flag(false);
            }
            self.bytes
        }
    }

    /// Knobs for a synthetic SPS.
    struct Sps {
        profile: u8,
        chroma_format_idc: u32,
        separate_colour_plane: bool,
        scaling_lists: bool,
        poc_type: u32,
        poc_cycle: u32,
        width_mbs: u32,
        height_map_units: u32,
        frame_mbs_only: bool,
        crop: Option<[u32; 4]>,
        vui: Option<(u32, u32)>,
    }

    impl Default for Sps {
        fn default() -> Self {
            Sps {
                profile: 100,
                chroma_format_idc: 1,
                separate_colour_plane: false,
                scaling_lists: false,
                poc_type: 0,
                poc_cycle: 0,
                width_mbs: 80,
                height_map_units: 45,
                frame_mbs_only: true,
                crop: None,
                vui: None,
            }
        }
    }

    /// Build an SPS NAL unit: header byte + RBSP, without emulation prevention
    /// (`wrap_avcc` inserts it).
    fn build_sps(s: &Sps) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(u64::from(s.profile), 8);
        w.bits(0, 8);
        w.bits(40, 8);
        w.ue(0);
        if HIGH_PROFILES.contains(&s.profile) {
            w.ue(s.chroma_format_idc);
            if s.chroma_format_idc == 3 {
                w.flag(s.separate_colour_plane);
            }
            w.ue(2);
            w.ue(2);
            w.flag(false);
            w.flag(s.scaling_lists);
            if s.scaling_lists {
                let n = if s.chroma_format_idc == 3 { 12 } else { 8 };
                for i in 0..n {
                    // Alternate: explicit list, absent list.
                    let present = i % 2 == 0;
                    w.flag(present);
                    if present {
                        let size = if i < 6 { 16 } else { 64 };
                        if i == 0 {
                            // delta_scale −8 → nextScale 0: "use default", stops the loop.
                            w.se(-8);
                        } else {
                            for j in 0..size {
                                w.se(if j % 2 == 0 { 5 } else { -3 });
                            }
                        }
                    }
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(s.poc_type);
        match s.poc_type {
            0 => w.ue(2),
            1 => {
                w.flag(false);
                w.se(-2);
                w.se(1);
                w.ue(s.poc_cycle);
                for i in 0..s.poc_cycle {
                    w.se(i as i32 - 100);
                }
            }
            _ => {}
        }
        w.ue(4); // max_num_ref_frames
        w.flag(false);
        w.ue(s.width_mbs - 1);
        w.ue(s.height_map_units - 1);
        w.flag(s.frame_mbs_only);
        if !s.frame_mbs_only {
            w.flag(true);
        }
        w.flag(true);
        w.flag(s.crop.is_some());
        if let Some(c) = s.crop {
            for v in c {
                w.ue(v);
            }
        }
        w.flag(s.vui.is_some());
        if let Some((units, scale)) = s.vui {
            w.flag(true); // aspect_ratio_info_present
            w.bits(255, 8);
            w.bits(4, 16);
            w.bits(3, 16);
            w.flag(true); // overscan
            w.flag(false);
            w.flag(true); // video_signal_type
            w.bits(5, 3);
            w.flag(true);
            w.flag(true);
            w.bits(0x010101, 24);
            w.flag(true); // chroma_loc
            w.ue(1);
            w.ue(1);
            w.flag(true); // timing
            w.bits(u64::from(units), 32);
            w.bits(u64::from(scale), 32);
            w.flag(true);
            w.flag(false); // nal_hrd
        }
        let mut nal = vec![0x67];
        nal.extend(w.finish());
        nal
    }

    /// Escape an RBSP (insert emulation prevention) and wrap it in an avcC record.
    fn wrap_avcc(sps: &[u8]) -> Vec<u8> {
        let mut escaped = vec![sps[0]];
        let mut zeros = 0;
        for &b in &sps[1..] {
            if zeros >= 2 && b <= 3 {
                escaped.push(3);
                zeros = 0;
            }
            zeros = if b == 0 { zeros + 1 } else { 0 };
            escaped.push(b);
        }
        let mut v = vec![1, sps[1], sps[2], sps[3], 0xff, 0xe1];
        v.extend_from_slice(&(escaped.len() as u16).to_be_bytes());
        v.extend_from_slice(&escaped);
        v.extend_from_slice(&[1, 0, 2, 0x68, 0xce]);
        v
    }

    fn synth(s: &Sps) -> Result<AvcInfo, CodecError> {
        AvcInfo::from_avcc(&wrap_avcc(&build_sps(s)))
    }

    #[test]
    fn synthetic_scaling_lists_8_and_12() {
        let info = synth(&Sps {
            scaling_lists: true,
            crop: Some([0, 0, 0, 4]),
            vui: Some((1, 50)),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1280, 712));
        assert_eq!(info.frame_rate, Some(25.0));

        let info = synth(&Sps {
            profile: 244,
            chroma_format_idc: 3,
            scaling_lists: true,
            crop: Some([1, 1, 1, 1]),
            vui: Some((1001, 60_000)),
            ..Sps::default()
        })
        .unwrap();
        // 4:4:4: crop units are 1x1.
        assert_eq!((info.width, info.height), (1278, 718));
        assert!((info.frame_rate.unwrap() - 29.97).abs() < 0.001);
    }

    #[test]
    fn synthetic_poc_type_1_cycle() {
        let info = synth(&Sps {
            poc_type: 1,
            poc_cycle: 255,
            vui: Some((1, 60)),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!(
            (info.width, info.height, info.frame_rate),
            (1280, 720, Some(30.0))
        );

        let err = synth(&Sps {
            poc_type: 1,
            poc_cycle: 256,
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::OutOfRange {
                field: "num_ref_frames_in_pic_order_cnt_cycle",
                value: 256,
                max: 255
            }
        ));
    }

    #[test]
    fn synthetic_crop_units_by_chroma_format() {
        // 4:2:2 progressive: CropUnitX 2, CropUnitY 1.
        let info = synth(&Sps {
            profile: 122,
            chroma_format_idc: 2,
            crop: Some([1, 2, 3, 4]),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1280 - 6, 720 - 7));

        // 4:2:0 interlaced: CropUnitY = 2 * 2 = 4; 34 map units → 68 MBs → 1088.
        let info = synth(&Sps {
            width_mbs: 120,
            height_map_units: 34,
            frame_mbs_only: false,
            crop: Some([0, 0, 0, 2]),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));

        // Separate colour planes (ChromaArrayType 0): CropUnitX 1, CropUnitY 1.
        let info = synth(&Sps {
            profile: 244,
            chroma_format_idc: 3,
            separate_colour_plane: true,
            crop: Some([3, 0, 5, 0]),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1277, 715));

        // Monochrome (chroma_format_idc 0): CropUnitX 1, CropUnitY 2 − frame_mbs_only.
        let info = synth(&Sps {
            chroma_format_idc: 0,
            frame_mbs_only: false,
            height_map_units: 23,
            crop: Some([1, 0, 0, 1]),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1279, 734));

        // Baseline ignores the chroma knobs: 4:2:0 implied.
        let info = synth(&Sps {
            profile: 66,
            chroma_format_idc: 3,
            crop: Some([1, 0, 0, 1]),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!((info.width, info.height), (1278, 718));
    }

    #[test]
    fn synthetic_limits() {
        let err = synth(&Sps {
            crop: Some([320, 320, 0, 0]),
            ..Sps::default()
        })
        .unwrap_err();
        assert_eq!(
            err,
            CodecError::BadCropping {
                width: 1280,
                height: 720
            }
        );
        // Huge crop values must not overflow.
        let err = synth(&Sps {
            crop: Some([0, 0, u32::MAX - 1, u32::MAX - 1]),
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(err, CodecError::BadCropping { .. }));

        let err = synth(&Sps {
            width_mbs: MAX_DIMENSION_MBS + 1,
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::OutOfRange {
                field: "pic_width_in_mbs_minus1",
                ..
            }
        ));
        let err = synth(&Sps {
            height_map_units: 600,
            frame_mbs_only: false,
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::OutOfRange {
                field: "FrameHeightInMbs",
                ..
            }
        ));
        let err = synth(&Sps {
            chroma_format_idc: 4,
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::OutOfRange {
                field: "chroma_format_idc",
                ..
            }
        ));
        let err = synth(&Sps {
            poc_type: 3,
            ..Sps::default()
        })
        .unwrap_err();
        assert!(matches!(
            err,
            CodecError::OutOfRange {
                field: "pic_order_cnt_type",
                ..
            }
        ));
    }

    #[test]
    fn synthetic_zero_timing_is_absent() {
        let info = synth(&Sps {
            vui: Some((0, 60)),
            ..Sps::default()
        })
        .unwrap();
        assert_eq!(info.frame_rate, None);
        let info = synth(&Sps::default()).unwrap();
        assert_eq!(info.frame_rate, None);
    }

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

    /// Deterministic xorshift64 for the garbage tests.
    struct XorShift(u64);

    impl XorShift {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
    }

    #[test]
    fn garbage_never_panics() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        let seeds: Vec<Vec<u8>> = [
            AVCC_HIGH_720P30,
            AVCC_HIGH_1080I25,
            AVCC_HIGH422_SAR,
            AVCC_HIGH444_240P30,
            AVCC_BASELINE_360P30,
        ]
        .iter()
        .map(|s| hex(s))
        .collect();
        for i in 0..20_000 {
            // Pure noise, with a plausible avcC header half the time.
            let len = (rng.next() % 64) as usize;
            let mut buf: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            if i % 2 == 0 && buf.len() >= 9 {
                buf[0] = 1;
                buf[5] = 0xe1;
                buf[6] = 0;
                buf[7] = (len - 8) as u8;
                buf[8] = 0x67;
            }
            let _ = AvcInfo::from_avcc(&buf);
            let _ = AacInfo::from_asc(&buf);

            // Mutations of real records: flip a few bytes and maybe cut the tail.
            let mut m = seeds[i % seeds.len()].clone();
            for _ in 0..1 + rng.next() % 4 {
                let at = 8 + (rng.next() as usize) % (m.len() - 8);
                m[at] ^= 1 << (rng.next() % 8);
            }
            if rng.next().is_multiple_of(4) {
                m.truncate((rng.next() as usize) % m.len());
            }
            if let Ok(info) = AvcInfo::from_avcc(&m) {
                assert!(info.width > 0 && info.width <= MAX_DIMENSION_MBS * 16);
                assert!(info.height > 0 && info.height <= MAX_DIMENSION_MBS * 16);
            }
        }
    }

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

    /// An av1C record around a synthetic sequence header OBU.
    fn av1c(timing: bool, level: u8, tier: bool, width: u32, height: u32) -> Vec<u8> {
        let mut w = BitWriter::default();
        w.bits(0, 3); // seq_profile
        w.flag(false); // still_picture
        w.flag(false); // reduced_still_picture_header
        w.flag(timing);
        if timing {
            w.bits(1001, 32); // num_units_in_display_tick
            w.bits(60_000, 32); // time_scale
            w.flag(true); // equal_picture_interval
            w.ue(1); // num_ticks_per_picture_minus_1 (uvlc): 2 ticks per picture
            w.flag(false); // decoder_model_info_present_flag
        }
        w.flag(false); // initial_display_delay_present_flag
        w.bits(0, 5); // operating_points_cnt_minus_1
        w.bits(0, 12); // operating_point_idc[0]
        w.bits(u64::from(level), 5);
        if level > 7 {
            w.flag(tier);
        }
        w.bits(10, 4); // frame_width_bits_minus_1
        w.bits(10, 4); // frame_height_bits_minus_1
        w.bits(u64::from(width - 1), 11);
        w.bits(u64::from(height - 1), 11);
        let payload = w.finish();
        let mut record = vec![
            0x81,
            level,
            (u8::from(tier) << 7) | 0x0c, // 8-bit, 4:2:0
            0,
            // Sequence header OBU with a size field.
            (AV1_OBU_SEQUENCE_HEADER << 3) | 0x02,
            u8::try_from(payload.len()).unwrap(),
        ];
        record.extend_from_slice(&payload);
        record
    }

    #[test]
    fn av1c_gives_size_rate_and_codec_string() {
        let info = Av1Info::from_av1c(&av1c(true, 8, false, 1280, 720)).unwrap();
        assert_eq!((info.width, info.height), (1280, 720));
        assert_eq!(info.codec_string(), "av01.0.08M.08");
        let rate = info.frame_rate.unwrap();
        assert!((rate - 29.97).abs() < 0.01, "{rate}");

        let info = Av1Info::from_av1c(&av1c(false, 13, true, 1920, 1080)).unwrap();
        assert_eq!((info.width, info.height), (1920, 1080));
        assert_eq!(info.frame_rate, None);
        assert_eq!(info.codec_string(), "av01.0.13H.08");
    }

    #[test]
    fn bad_av1c_is_an_error() {
        let good = av1c(true, 8, false, 640, 360);
        assert!(matches!(
            Av1Info::from_av1c(&good[..3]),
            Err(CodecError::Truncated { .. })
        ));
        let mut bad_marker = good.clone();
        bad_marker[0] = 0x01;
        assert!(matches!(
            Av1Info::from_av1c(&bad_marker),
            Err(CodecError::Unsupported { .. })
        ));
        // No configOBUs: nothing gives the frame size.
        assert!(Av1Info::from_av1c(&good[..4]).is_err());
        // The OBU claims more bytes than there are.
        assert!(matches!(
            Av1Info::from_av1c(&good[..good.len() - 2]),
            Err(CodecError::Truncated { .. })
        ));
        for len in 0..good.len() {
            let _ = Av1Info::from_av1c(&good[..len]);
        }
    }
}
