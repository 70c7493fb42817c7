//! AV1: the `AV1CodecConfigurationRecord` (`av1C`, AV1-ISOBMFF §2.3.3), the walk over OBUs in
//! the low-overhead format (AV1 §5.3) and the sequence header fields the playlists need (§5.5).

use super::CodecError;
use super::bits::BitReader;

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
    use crate::media::codec::bits::testing::BitWriter;

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
