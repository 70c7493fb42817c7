//! Bit-level reading shared by the codec parsers: removal of emulation-prevention bytes and an
//! MSB-first bit reader with exp-Golomb codes (H.264 §7.4.1, §9.1) that reports truncation as a
//! [`CodecError`] instead of panicking.

use super::CodecError;

/// Most leading zero bits in an exp-Golomb code whose value fits `u32` (§9.1).
pub const MAX_EXP_GOLOMB_LEADING_ZEROS: u32 = 31;

/// Remove emulation-prevention bytes: every `0x03` that follows two zero bytes
/// (H.264 §7.4.1: `emulation_prevention_three_byte`).
pub(super) fn unescape_rbsp(nal: &[u8]) -> Vec<u8> {
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
pub(super) struct BitReader<'a> {
    /// The bytes being read.
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
    /// Structure name reported in [`CodecError::Truncated`].
    what: &'static str,
}

impl<'a> BitReader<'a> {
    /// A reader positioned at the first bit of `data`.
    pub(super) fn new(data: &'a [u8], what: &'static str) -> Self {
        BitReader { data, pos: 0, what }
    }

    /// Read one bit.
    pub(super) fn bit(&mut self) -> Result<bool, CodecError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(CodecError::Truncated { what: self.what })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(bit == 1)
    }

    /// Read `n` (≤ 32) bits as an unsigned big-endian value.
    pub(super) fn bits(&mut self, n: u32) -> Result<u32, CodecError> {
        debug_assert!(n <= 32);
        let mut v: u64 = 0;
        for _ in 0..n {
            v = (v << 1) | u64::from(self.bit()?);
        }
        // At most 32 bits were shifted in.
        Ok(v as u32)
    }

    /// Read 8 bits.
    pub(super) fn u8(&mut self) -> Result<u8, CodecError> {
        // `bits(8)` is below 256.
        Ok(self.bits(8)? as u8)
    }

    /// Skip `n` bits.
    pub(super) fn skip(&mut self, n: usize) -> Result<(), CodecError> {
        let end = self.pos.saturating_add(n);
        if end > self.data.len().saturating_mul(8) {
            return Err(CodecError::Truncated { what: self.what });
        }
        self.pos = end;
        Ok(())
    }

    /// Unsigned exp-Golomb `ue(v)` (H.264 §9.1).
    pub(super) fn ue(&mut self, field: &'static str) -> Result<u32, CodecError> {
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
    pub(super) fn se(&mut self, field: &'static str) -> Result<i32, CodecError> {
        let k = i64::from(self.ue(field)?);
        let magnitude = (k + 1) / 2;
        // |value| ≤ 2^31 - 1.
        Ok(if k % 2 == 1 { magnitude } else { -magnitude } as i32)
    }

    /// `ue(v)` that must not exceed `max`.
    pub(super) fn ue_max(&mut self, field: &'static str, max: u32) -> Result<u32, CodecError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use testing::BitWriter;

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
}

/// Test support shared by the codec parsers' tests: hex decoding, a bit writer for synthetic
/// records and a deterministic random source.
#[cfg(test)]
pub(super) mod testing {
    /// Decode a hex string (test vectors are copied from real encoder output).
    pub(crate) fn hex(s: &str) -> Vec<u8> {
        assert!(s.len().is_multiple_of(2));
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    /// Test-only MSB-first bit writer with exp-Golomb, for synthetic SPSs covering syntax
    /// libx264 never emits (poc type 1, SPS scaling lists, cropping in 4:2:2, …).
    #[derive(Default)]
    pub(crate) struct BitWriter {
        bytes: Vec<u8>,
        nbits: usize,
    }

    impl BitWriter {
        pub(crate) fn bits(&mut self, v: u64, n: u32) {
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
        pub(crate) fn flag(&mut self, b: bool) {
            self.bits(u64::from(b), 1);
        }
        pub(crate) fn ue(&mut self, v: u32) {
            let x = u64::from(v) + 1;
            let len = 64 - x.leading_zeros();
            self.bits(0, len - 1);
            self.bits(x, len);
        }
        pub(crate) fn se(&mut self, v: i32) {
            let k = if v > 0 {
                2 * v as u32 - 1
            } else {
                2 * v.unsigned_abs()
            };
            self.ue(k);
        }
        /// rbsp_trailing_bits and return the bytes.
        pub(crate) fn finish(mut self) -> Vec<u8> {
            self.flag(true);
            while !self.nbits.is_multiple_of(8) {
                self.flag(false);
            }
            self.bytes
        }
    }
}
