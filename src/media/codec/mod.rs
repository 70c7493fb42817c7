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
//!
//! One module per format: `avc` (H.264), `hevc` (H.265), `av1` and `aac`, over the shared bit
//! reader in `bits`. Everything public is re-exported here, so callers name
//! `crate::media::codec::X`.

mod aac;
mod av1;
mod avc;
mod bits;
mod hevc;

use thiserror::Error;

pub use aac::{AAC_OBJECT_TYPE_PS, AAC_OBJECT_TYPE_SBR, AacInfo, MAX_AAC_CHANNEL_CONFIG};
pub use av1::{AV1_OBU_SEQUENCE_HEADER, Av1Info, Obu, next_obu};
pub use avc::{
    AvcInfo, MAX_BIT_DEPTH_MINUS8, MAX_CHROMA_FORMAT_IDC, MAX_CHROMA_SAMPLE_LOC_TYPE,
    MAX_DIMENSION_MBS, MAX_LOG2_MINUS4, MAX_NUM_REF_FRAMES, MAX_POC_TYPE,
    MAX_REF_FRAMES_IN_POC_CYCLE,
};
pub use bits::MAX_EXP_GOLOMB_LEADING_ZEROS;
pub use hevc::{HevcInfo, MAX_HEVC_DIMENSION, MAX_HEVC_SUB_LAYERS_MINUS1};

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
