//! The simple (unsigned) RTMP handshake, server side (RTMP spec 1.0 §5.2).
//!
//! ```text
//! client                     server
//!   C0 (1 byte: version 3)  →
//!   C1 (1536 bytes)         →
//!                           ←  S0 (3) S1 (time 0, zero 0, 1528 random) S2 (echo of C1)
//!   C2 (1536 bytes)         →
//! ```
//!
//! "The server MUST wait until C1 has been received before sending S2." We send S0+S1+S2
//! together once C0 and C1 are in. C2 content is not validated: the digest ("complex")
//! handshake is only checked by clients when *playing* (ffmpeg, librtmp), and publishers
//! accept the echo handshake.

use bytes::{Buf, BufMut, BytesMut};

use super::RtmpError;

/// The only RTMP version defined (C0/S0).
pub const RTMP_VERSION: u8 = 3;
/// Size of C1/S1/C2/S2.
pub const HANDSHAKE_SIZE: usize = 1536;
/// Size of the random field of C1/S1 (after time and zero fields).
pub const RANDOM_SIZE: usize = 1528;

/// Progress of the server handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeState {
    /// Waiting for C0 and C1.
    AwaitC0C1,
    /// S0/S1/S2 sent; waiting for C2.
    AwaitC2,
    /// Handshake complete; further bytes are chunk data.
    Done,
}

/// Server side of the handshake, as a pure state machine.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    /// Where the handshake is.
    state: HandshakeState,
    /// Random field of S1, supplied by the caller to keep the machine deterministic.
    s1_random: [u8; RANDOM_SIZE],
}

impl ServerHandshake {
    /// A handshake whose S1 carries `s1_random`.
    pub fn new(s1_random: [u8; RANDOM_SIZE]) -> Self {
        Self {
            state: HandshakeState::AwaitC0C1,
            s1_random,
        }
    }

    /// Current state.
    pub fn state(&self) -> HandshakeState {
        self.state
    }

    /// Consumes handshake bytes from `input`, appending S0/S1/S2 to `out` when C0+C1 are in.
    /// Returns the state afterwards; bytes after C2 are left in `input`.
    pub fn read(
        &mut self,
        input: &mut BytesMut,
        out: &mut BytesMut,
    ) -> Result<HandshakeState, RtmpError> {
        if self.state == HandshakeState::AwaitC0C1 {
            // Reject a bad version as soon as the first byte arrives.
            if let Some(&version) = input.first()
                && version != RTMP_VERSION
            {
                return Err(RtmpError::BadHandshakeVersion(version));
            }
            if input.len() < 1 + HANDSHAKE_SIZE {
                return Ok(self.state);
            }
            input.advance(1);
            let c1 = input.split_to(HANDSHAKE_SIZE);
            write_s0_s1_s2(out, &self.s1_random, &c1);
            self.state = HandshakeState::AwaitC2;
        }
        if self.state == HandshakeState::AwaitC2 {
            if input.len() < HANDSHAKE_SIZE {
                return Ok(self.state);
            }
            input.advance(HANDSHAKE_SIZE);
            self.state = HandshakeState::Done;
        }
        Ok(self.state)
    }
}

/// Writes S0, S1 (time 0, zero 0, `s1_random`) and S2 (echo of `c1`).
pub fn write_s0_s1_s2(out: &mut impl BufMut, s1_random: &[u8; RANDOM_SIZE], c1: &[u8]) {
    out.put_u8(RTMP_VERSION);
    out.put_u32(0);
    out.put_u32(0);
    out.put_slice(s1_random);
    out.put_slice(c1);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c1() -> Vec<u8> {
        (0..HANDSHAKE_SIZE).map(|i| (i % 251) as u8).collect()
    }

    #[test]
    fn replies_s0_s1_s2_and_waits_for_c2() {
        let random = [7u8; RANDOM_SIZE];
        let mut hs = ServerHandshake::new(random);
        let mut input = BytesMut::new();
        let mut out = BytesMut::new();
        input.put_u8(3);
        input.extend_from_slice(&c1()[..100]);
        assert_eq!(hs.read(&mut input, &mut out), Ok(HandshakeState::AwaitC0C1));
        assert!(out.is_empty());
        input.extend_from_slice(&c1()[100..]);
        assert_eq!(hs.read(&mut input, &mut out), Ok(HandshakeState::AwaitC2));
        assert_eq!(out.len(), 1 + 2 * HANDSHAKE_SIZE);
        assert_eq!(out[0], 3);
        assert_eq!(&out[1..9], &[0u8; 8]);
        assert_eq!(&out[9..1 + HANDSHAKE_SIZE], &random[..]);
        assert_eq!(&out[1 + HANDSHAKE_SIZE..], &c1()[..]);
        // C2 plus two bytes of chunk data.
        input.extend_from_slice(&[0xAA; HANDSHAKE_SIZE]);
        input.extend_from_slice(&[1, 2]);
        assert_eq!(hs.read(&mut input, &mut out), Ok(HandshakeState::Done));
        assert_eq!(&input[..], &[1, 2]);
    }

    #[test]
    fn rejects_other_versions_immediately() {
        let mut hs = ServerHandshake::new([0; RANDOM_SIZE]);
        let mut input = BytesMut::from(&[6u8][..]);
        let mut out = BytesMut::new();
        assert_eq!(
            hs.read(&mut input, &mut out),
            Err(RtmpError::BadHandshakeVersion(6))
        );
    }
}
