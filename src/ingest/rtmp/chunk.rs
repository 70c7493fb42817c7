//! RTMP chunk stream: reader (de-chunking, reassembly) and writer (RTMP spec 1.0 §5.3).
//!
//! Each chunk is a basic header (1–3 bytes: format + chunk stream id), a message header
//! (11, 7, 3 or 0 bytes for formats 0–3), an optional 4-byte extended timestamp and at most
//! *chunk size* bytes of payload.
//!
//! Rules enforced here, quoted from the spec:
//! - "Type 1 … The message stream ID is not included; this chunk takes the same stream ID as
//!   the preceding chunk." Types 1–3 need an earlier type 0 on the same chunk stream.
//! - "Type 3 … If the delta between the first message and the second message is same as the
//!   timestamp of the first message, then a chunk of Type 3 could immediately follow the chunk
//!   of Type 0": after a type 0 header the implied delta is its timestamp.
//! - Extended timestamp: present when the 24-bit field is 0xFFFFFF; as librtmp and ffmpeg do,
//!   type 3 chunks following such a header carry it too (it is read and, on continuation
//!   chunks, ignored).
//! - "The maximum chunk size can be 65536 bytes … (range 1–2147483647)": a peer's Set Chunk
//!   Size must be within [`MIN_PEER_CHUNK_SIZE`]`..=`[`MAX_PEER_CHUNK_SIZE`] (128..=65536, as
//!   SRS requires; encoders send 4096) and must not arrive while a message is incomplete on
//!   any chunk stream; otherwise the connection is closed. Tiny chunk sizes only multiply the
//!   header work per byte, huge ones only serve to make a server allocate what a length field
//!   claims (the bug of nginx-rtmp forks); neither is needed by a real encoder.
//!
//! Against hostile peers the reader bounds the message length (`max_message_size`), the number
//! of chunk streams ([`MAX_CHUNK_STREAMS`]), how many of them hold an incomplete message
//! ([`MAX_PARTIAL_CHUNK_STREAMS`]) and the total bytes of incomplete messages
//! ([`MAX_PARTIAL_BYTES`], or `max_message_size` if larger). It never allocates from a length
//! field: buffers grow with the bytes that actually arrive.

use std::collections::HashMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::RtmpError;

/// Chunk size both sides use until a Set Chunk Size message (spec §5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// Largest chunk size allowed by the spec (the top bit must be 0).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Smallest chunk size accepted from a peer (the protocol's default).
pub const MIN_PEER_CHUNK_SIZE: u32 = DEFAULT_CHUNK_SIZE;
/// Largest chunk size accepted from a peer ("The maximum chunk size can be 65536 bytes").
pub const MAX_PEER_CHUNK_SIZE: u32 = 65_536;
/// Most distinct chunk streams a peer may use on one connection.
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Most chunk streams that may hold an incomplete message at once.
pub const MAX_PARTIAL_CHUNK_STREAMS: usize = 16;
/// Most bytes held in incomplete messages across chunk streams (raised to the message size
/// limit if that is larger).
pub const MAX_PARTIAL_BYTES: usize = 32 << 20;
/// Upper bound on the capacity reserved up front for a reassembly buffer.
const INITIAL_REASSEMBLY_CAPACITY: usize = 64 << 10;
/// Value of the 24-bit timestamp field signalling an extended timestamp.
const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// A complete message reassembled from chunks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    /// Chunk stream id it arrived on.
    pub csid: u32,
    /// Absolute timestamp (ms), deltas accumulated, wrapping mod 2^32.
    pub timestamp: u32,
    /// Message type id.
    pub type_id: u8,
    /// Message stream id.
    pub stream_id: u32,
    /// Message payload.
    pub payload: Bytes,
}

/// Per chunk stream state: the last message header and any incomplete message.
#[derive(Debug, Default)]
struct ChunkStream {
    /// Absolute timestamp of the current (or last) message.
    timestamp: u32,
    /// Timestamp delta applied when a type 3 chunk starts a new message.
    delta: u32,
    /// Length of the current message.
    length: u32,
    /// Type id of the current message.
    type_id: u8,
    /// Message stream id of the current message.
    stream_id: u32,
    /// The last type 0/1/2 header used an extended timestamp, so type 3 chunks carry one too.
    extended: bool,
    /// Payload received so far when a message is incomplete.
    partial: Option<BytesMut>,
}

/// Parsed chunk header, not yet committed to the chunk stream state.
struct ChunkHeader {
    /// Bytes taken by basic header, message header and extended timestamp.
    header_len: usize,
    /// Chunk stream id.
    csid: u32,
    /// Header format (0–3).
    fmt: u8,
    /// 24-bit timestamp field (types 0–2) or the extended value when present.
    timestamp: Option<u32>,
    /// Message length (types 0–1).
    length: Option<u32>,
    /// Message type id (types 0–1).
    type_id: Option<u8>,
    /// Message stream id (type 0).
    stream_id: Option<u32>,
    /// The chunk carried an extended timestamp.
    extended: bool,
}

/// Reads big-endian fields from a slice without consuming the caller's buffer.
struct Cursor<'a> {
    /// Unread bytes.
    rest: &'a [u8],
    /// Bytes read so far.
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.rest.len() < n {
            return None;
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        self.pos += n;
        Some(head)
    }

    fn u8(&mut self) -> Option<u8> {
        self.take(1).and_then(|b| b.first().copied())
    }

    fn be(&mut self, n: usize) -> Option<u32> {
        Some(
            self.take(n)?
                .iter()
                .fold(0u32, |acc, &b| (acc << 8) | u32::from(b)),
        )
    }

    fn le32(&mut self) -> Option<u32> {
        let b = self.take(4)?;
        Some(
            b.iter()
                .rev()
                .fold(0u32, |acc, &byte| (acc << 8) | u32::from(byte)),
        )
    }
}

/// De-chunks the peer's byte stream into messages. Pure: bytes in, messages out.
#[derive(Debug)]
pub struct ChunkReader {
    /// The peer's chunk size (changed by its Set Chunk Size messages).
    chunk_size: usize,
    /// Largest message accepted.
    max_message_size: usize,
    /// State per chunk stream id.
    streams: HashMap<u32, ChunkStream>,
    /// Bytes currently held in incomplete messages.
    partial_bytes: usize,
    /// Number of chunk streams with an incomplete message.
    partial_streams: usize,
}

impl ChunkReader {
    /// A reader with the default chunk size (128) and the given message size limit.
    pub fn new(max_message_size: usize) -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
            max_message_size,
            streams: HashMap::new(),
            partial_bytes: 0,
            partial_streams: 0,
        }
    }

    /// The current peer chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Applies the peer's Set Chunk Size: within
    /// [`MIN_PEER_CHUNK_SIZE`]`..=`[`MAX_PEER_CHUNK_SIZE`], and not while a message is
    /// incomplete.
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), RtmpError> {
        if !(MIN_PEER_CHUNK_SIZE..=MAX_PEER_CHUNK_SIZE).contains(&size) {
            return Err(RtmpError::BadChunkSize(size));
        }
        if self.partial_streams > 0 {
            return Err(RtmpError::ChunkSizeMidMessage(size));
        }
        self.chunk_size = usize::try_from(size).map_err(|_| RtmpError::BadChunkSize(size))?;
        Ok(())
    }

    /// Applies an Abort Message: drops the incomplete message on chunk stream `csid`.
    pub fn abort(&mut self, csid: u32) {
        if let Some(partial) = self.streams.get_mut(&csid).and_then(|s| s.partial.take()) {
            self.partial_bytes -= partial.len();
            self.partial_streams -= 1;
        }
    }

    /// Bytes held in incomplete messages.
    pub fn buffered(&self) -> usize {
        self.partial_bytes
    }

    /// Reads chunks from `input` until a message completes (`Some`) or more bytes are needed
    /// (`None`). Only whole chunks are consumed.
    pub fn read_message(&mut self, input: &mut BytesMut) -> Result<Option<RawMessage>, RtmpError> {
        loop {
            match self.read_chunk(input)? {
                ChunkOutcome::NeedMore => return Ok(None),
                ChunkOutcome::Partial => {}
                ChunkOutcome::Message(message) => return Ok(Some(message)),
            }
        }
    }

    fn parse_header(&self, input: &[u8]) -> Result<Option<ChunkHeader>, RtmpError> {
        let mut cur = Cursor {
            rest: input,
            pos: 0,
        };
        let Some(first) = cur.u8() else {
            return Ok(None);
        };
        let fmt = first >> 6;
        let csid = match first & 0x3F {
            0 => match cur.u8() {
                Some(b) => 64 + u32::from(b),
                None => return Ok(None),
            },
            1 => match cur.take(2) {
                Some(&[lo, hi]) => 64 + u32::from(lo) + (u32::from(hi) << 8),
                _ => return Ok(None),
            },
            n => u32::from(n),
        };
        let prev = self.streams.get(&csid);
        if fmt != 0 && prev.is_none() {
            return Err(RtmpError::MissingPreviousHeader { csid, fmt });
        }
        let mut header = ChunkHeader {
            header_len: 0,
            csid,
            fmt,
            timestamp: None,
            length: None,
            type_id: None,
            stream_id: None,
            extended: false,
        };
        let parsed = (|| {
            if fmt <= 2 {
                header.timestamp = Some(cur.be(3)?);
            }
            if fmt <= 1 {
                header.length = Some(cur.be(3)?);
                header.type_id = Some(cur.u8()?);
            }
            if fmt == 0 {
                header.stream_id = Some(cur.le32()?);
            }
            header.extended = match header.timestamp {
                Some(ts) => ts == EXTENDED_TIMESTAMP,
                None => prev.is_some_and(|p| p.extended),
            };
            if header.extended {
                header.timestamp = Some(cur.be(4)?);
            }
            Some(())
        })();
        if parsed.is_none() {
            return Ok(None);
        }
        header.header_len = cur.pos;
        Ok(Some(header))
    }

    fn read_chunk(&mut self, input: &mut BytesMut) -> Result<ChunkOutcome, RtmpError> {
        let Some(header) = self.parse_header(input)? else {
            return Ok(ChunkOutcome::NeedMore);
        };
        let prev = self.streams.get(&header.csid);
        let continuing = prev.and_then(|p| p.partial.as_ref()).map(BytesMut::len);
        if header.fmt != 3 && continuing.is_some() {
            return Err(RtmpError::InterruptedMessage(header.csid));
        }
        let length = header.length.or(prev.map(|p| p.length)).unwrap_or(0);
        let length_usize = usize::try_from(length).unwrap_or(usize::MAX);
        if length_usize > self.max_message_size {
            return Err(RtmpError::MessageTooLarge {
                length: length_usize,
                limit: self.max_message_size,
            });
        }
        let received = continuing.unwrap_or(0);
        let chunk_len = length_usize.saturating_sub(received).min(self.chunk_size);
        let Some(total) = header.header_len.checked_add(chunk_len) else {
            return Ok(ChunkOutcome::NeedMore);
        };
        if input.len() < total {
            return Ok(ChunkOutcome::NeedMore);
        }
        let completes = received + chunk_len == length_usize;
        if !completes {
            self.check_partial_limits(continuing.is_none(), chunk_len)?;
        }
        if prev.is_none() && self.streams.len() >= MAX_CHUNK_STREAMS {
            return Err(RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS));
        }

        // Commit: the chunk is complete and within limits.
        input.advance(header.header_len);
        let data = input.split_to(chunk_len);
        let stream = self.streams.entry(header.csid).or_default();
        if continuing.is_none() {
            // First chunk of a new message: update the header state.
            match header.fmt {
                0 => {
                    let ts = header.timestamp.unwrap_or(0);
                    stream.timestamp = ts;
                    stream.delta = ts;
                }
                1 | 2 => {
                    let delta = header.timestamp.unwrap_or(0);
                    stream.delta = delta;
                    stream.timestamp = stream.timestamp.wrapping_add(delta);
                }
                _ => {
                    if let Some(delta) = header.timestamp {
                        stream.delta = delta;
                    }
                    stream.timestamp = stream.timestamp.wrapping_add(stream.delta);
                }
            }
            if header.fmt != 3 {
                stream.extended = header.extended;
            }
            stream.length = length;
            if let Some(type_id) = header.type_id {
                stream.type_id = type_id;
            }
            if let Some(stream_id) = header.stream_id {
                stream.stream_id = stream_id;
            }
        }

        let payload = match (stream.partial.take(), completes) {
            (None, true) => data.freeze(),
            (None, false) => {
                let mut buf =
                    BytesMut::with_capacity(length_usize.min(INITIAL_REASSEMBLY_CAPACITY));
                buf.extend_from_slice(&data);
                self.partial_bytes += data.len();
                self.partial_streams += 1;
                stream.partial = Some(buf);
                return Ok(ChunkOutcome::Partial);
            }
            (Some(mut buf), done) => {
                buf.extend_from_slice(&data);
                if !done {
                    self.partial_bytes += data.len();
                    stream.partial = Some(buf);
                    return Ok(ChunkOutcome::Partial);
                }
                self.partial_bytes -= received;
                self.partial_streams -= 1;
                buf.freeze()
            }
        };
        Ok(ChunkOutcome::Message(RawMessage {
            csid: header.csid,
            timestamp: stream.timestamp,
            type_id: stream.type_id,
            stream_id: stream.stream_id,
            payload,
        }))
    }

    fn check_partial_limits(&self, new_partial: bool, add: usize) -> Result<(), RtmpError> {
        if new_partial && self.partial_streams >= MAX_PARTIAL_CHUNK_STREAMS {
            return Err(RtmpError::TooManyChunkStreams(MAX_PARTIAL_CHUNK_STREAMS));
        }
        let limit = MAX_PARTIAL_BYTES.max(self.max_message_size);
        if self.partial_bytes.saturating_add(add) > limit {
            return Err(RtmpError::TooMuchBuffered(limit));
        }
        Ok(())
    }
}

/// What reading one chunk produced.
enum ChunkOutcome {
    /// Not enough bytes for a whole chunk.
    NeedMore,
    /// A chunk was consumed; its message is still incomplete.
    Partial,
    /// A chunk completed this message.
    Message(RawMessage),
}

/// Splits outgoing messages into chunks: a type 0 chunk, then type 3 continuations.
#[derive(Debug, Clone)]
pub struct ChunkWriter {
    /// Our chunk size (what we announced with Set Chunk Size).
    chunk_size: usize,
}

impl Default for ChunkWriter {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkWriter {
    /// A writer using the default chunk size (128).
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE as usize,
        }
    }

    /// Changes the chunk size; call after queuing our Set Chunk Size message. Clamped to
    /// `1..=0x7FFFFFFF`.
    pub fn set_chunk_size(&mut self, size: u32) {
        let size = size.clamp(1, MAX_CHUNK_SIZE);
        self.chunk_size = usize::try_from(size).unwrap_or(usize::MAX);
    }

    /// Current chunk size.
    pub fn chunk_size(&self) -> usize {
        self.chunk_size
    }

    /// Appends `payload` as one message. `csid` must be in `2..=65599`; the payload length must
    /// fit in 24 bits (it is truncated otherwise).
    pub fn write(
        &self,
        out: &mut BytesMut,
        csid: u32,
        timestamp: u32,
        type_id: u8,
        stream_id: u32,
        payload: &[u8],
    ) {
        let extended = timestamp >= EXTENDED_TIMESTAMP;
        let ts_field = if extended {
            EXTENDED_TIMESTAMP
        } else {
            timestamp
        };
        write_basic_header(out, 0, csid);
        put_u24(out, ts_field);
        put_u24(out, u32::try_from(payload.len()).unwrap_or(u32::MAX));
        out.put_u8(type_id);
        out.put_u32_le(stream_id);
        if extended {
            out.put_u32(timestamp);
        }
        let mut chunks = payload.chunks(self.chunk_size);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for chunk in chunks {
            write_basic_header(out, 3, csid);
            if extended {
                out.put_u32(timestamp);
            }
            out.put_slice(chunk);
        }
    }
}

fn put_u24(out: &mut BytesMut, v: u32) {
    let b = v.min(0xFF_FFFF).to_be_bytes();
    out.put_slice(&b[1..]);
}

/// Appends a basic header (spec §5.3.1.1) for format `fmt` and chunk stream `csid`.
pub fn write_basic_header(out: &mut BytesMut, fmt: u8, csid: u32) {
    let fmt = (fmt & 3) << 6;
    match csid {
        2..=63 => out.put_u8(fmt | csid as u8),
        64..=319 => {
            out.put_u8(fmt);
            out.put_u8((csid - 64) as u8);
        }
        _ => {
            let id = csid.saturating_sub(64).min(0xFFFF);
            out.put_u8(fmt | 1);
            out.put_u16_le(id as u16);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Hand-built chunk header for the header types the writer does not produce.
    fn header(out: &mut BytesMut, fmt: u8, csid: u32, ts: u32, len: u32, ty: u8, sid: u32) {
        write_basic_header(out, fmt, csid);
        if fmt <= 2 {
            put_u24(out, ts.min(EXTENDED_TIMESTAMP));
        }
        if fmt <= 1 {
            put_u24(out, len);
            out.put_u8(ty);
        }
        if fmt == 0 {
            out.put_u32_le(sid);
        }
        if fmt <= 2 && ts >= EXTENDED_TIMESTAMP {
            out.put_u32(ts);
        }
    }

    fn read_all(reader: &mut ChunkReader, input: &mut BytesMut) -> Vec<RawMessage> {
        let mut out = Vec::new();
        while let Some(m) = reader.read_message(input).expect("read") {
            out.push(m);
        }
        out
    }

    #[test]
    fn all_four_header_types() {
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 1000, 3, 9, 1);
        b.put_slice(b"abc");
        header(&mut b, 1, 4, 40, 2, 8, 0);
        b.put_slice(b"de");
        header(&mut b, 2, 4, 20, 0, 0, 0);
        b.put_slice(b"fg");
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(b"hi");
        let mut reader = ChunkReader::new(1 << 20);
        let msgs = read_all(&mut reader, &mut b);
        let summary: Vec<_> = msgs
            .iter()
            .map(|m| (m.timestamp, m.type_id, m.stream_id, m.payload.to_vec()))
            .collect();
        assert_eq!(
            summary,
            vec![
                (1000, 9, 1, b"abc".to_vec()),
                (1040, 8, 1, b"de".to_vec()),
                (1060, 8, 1, b"fg".to_vec()),
                (1080, 8, 1, b"hi".to_vec()),
            ]
        );
        assert!(b.is_empty());
    }

    #[test]
    fn type3_after_type0_reuses_its_timestamp_as_delta() {
        let mut b = BytesMut::new();
        header(&mut b, 0, 3, 33, 1, 9, 1);
        b.put_u8(1);
        header(&mut b, 3, 3, 0, 0, 0, 0);
        b.put_u8(2);
        let msgs = read_all(&mut ChunkReader::new(100), &mut b);
        assert_eq!(msgs[1].timestamp, 66);
    }

    #[test]
    fn multi_chunk_message_and_two_byte_csid() {
        let payload: Vec<u8> = (0..300u32).map(|i| i as u8).collect();
        let mut b = BytesMut::new();
        ChunkWriter::new().write(&mut b, 400, 5, 9, 1, &payload);
        // 3-byte basic header (csid 400), 128 + 128 + 44.
        assert_eq!(b.len(), 3 + 11 + 300 + 2 * 3);
        let mut reader = ChunkReader::new(1 << 20);
        let msgs = read_all(&mut reader, &mut b);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].csid, 400);
        assert_eq!(msgs[0].payload, payload);
        assert_eq!(reader.buffered(), 0);

        let mut b = BytesMut::new();
        ChunkWriter::new().write(&mut b, 100, 5, 9, 1, &payload);
        assert_eq!(b.len(), 2 + 11 + 300 + 2 * 2);
        let msgs = read_all(&mut reader, &mut b);
        assert_eq!(msgs[0].csid, 100);
    }

    #[test]
    fn extended_timestamps_including_type3_continuations() {
        let payload = vec![7u8; 200];
        let mut b = BytesMut::new();
        ChunkWriter::new().write(&mut b, 6, 0x0100_0000, 9, 1, &payload);
        // Type 0 + ext, then a type 3 continuation that also carries the ext timestamp.
        assert_eq!(b.len(), 1 + 11 + 4 + 128 + 1 + 4 + 72);
        // New message with a type 3 header: the extended field is the delta.
        write_basic_header(&mut b, 3, 6);
        b.put_u32(0x10);
        b.put_slice(&payload[..128]);
        write_basic_header(&mut b, 3, 6);
        b.put_u32(0x10);
        b.put_slice(&payload[128..]);
        let msgs = read_all(&mut ChunkReader::new(1 << 20), &mut b);
        assert_eq!(msgs.len(), 2);
        assert_eq!(msgs[0].timestamp, 0x0100_0000);
        assert_eq!(msgs[0].payload, payload);
        assert_eq!(msgs[1].timestamp, 0x0100_0010);
        assert_eq!(msgs[1].payload, payload);
    }

    #[test]
    fn extended_delta_on_type1() {
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0xFFFF_FFF0, 1, 8, 1);
        b.put_u8(0);
        header(&mut b, 1, 4, 0x0100_0000, 1, 8, 0);
        b.put_u8(1);
        let msgs = read_all(&mut ChunkReader::new(100), &mut b);
        assert_eq!(msgs[0].timestamp, 0xFFFF_FFF0);
        assert_eq!(msgs[1].timestamp, 0xFFFF_FFF0u32.wrapping_add(0x0100_0000));
    }

    #[test]
    fn chunk_size_change_mid_stream() {
        let payload = vec![1u8; 5000];
        let mut writer = ChunkWriter::new();
        let mut b = BytesMut::new();
        writer.write(&mut b, 4, 0, 9, 1, &payload);
        writer.set_chunk_size(4096);
        writer.write(&mut b, 4, 0, 9, 1, &payload);
        let mut reader = ChunkReader::new(1 << 20);
        let first = reader.read_message(&mut b).expect("ok").expect("message");
        assert_eq!(first.payload.len(), 5000);
        reader.set_chunk_size(4096).expect("valid");
        let second = reader.read_message(&mut b).expect("ok").expect("message");
        assert_eq!(second.payload.len(), 5000);
        assert!(b.is_empty());
        for bad in [0, 1, 127, 65_537, MAX_CHUNK_SIZE, 0x8000_0000] {
            assert_eq!(
                reader.set_chunk_size(bad),
                Err(RtmpError::BadChunkSize(bad))
            );
        }
        assert_eq!(reader.chunk_size(), 4096);
        reader
            .set_chunk_size(MAX_PEER_CHUNK_SIZE)
            .expect("the spec's maximum");
        reader
            .set_chunk_size(MIN_PEER_CHUNK_SIZE)
            .expect("the default");
    }

    #[test]
    fn chunk_size_change_mid_message_is_refused() {
        let mut reader = ChunkReader::new(1 << 20);
        let mut b = BytesMut::new();
        // 300-byte message on csid 4: one 128-byte chunk arrives, the rest never does.
        header(&mut b, 0, 4, 0, 300, 9, 1);
        b.put_slice(&[0; 128]);
        assert_eq!(reader.read_message(&mut b), Ok(None));
        assert_eq!(
            reader.set_chunk_size(4096),
            Err(RtmpError::ChunkSizeMidMessage(4096))
        );
        assert_eq!(reader.chunk_size(), 128);
        // Once the message completes, a change is fine.
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(&[0; 128]);
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(&[0; 44]);
        assert_eq!(reader.read_message(&mut b).map(|m| m.is_some()), Ok(true));
        reader.set_chunk_size(4096).expect("between messages");
    }

    #[test]
    fn memory_follows_the_bytes_received_not_the_declared_length() {
        // An 8 MiB message declared with the largest chunk size, fed 1 KiB at a time: the
        // reader holds what arrived and reserves at most 64 KiB ahead.
        let limit = 8 << 20;
        let mut reader = ChunkReader::new(limit);
        reader.set_chunk_size(MAX_PEER_CHUNK_SIZE).expect("valid");
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0, limit as u32, 9, 1);
        assert_eq!(reader.read_message(&mut b), Ok(None));
        let mut sent = 0;
        for i in 0..64 {
            b.put_slice(&[7; 1024]);
            sent += 1024;
            assert_eq!(reader.read_message(&mut b), Ok(None));
            // Bytes wait in the input until a whole chunk is in, then move to the message.
            if i < 63 {
                assert_eq!((reader.buffered(), b.len()), (0, 12 + sent));
            }
        }
        assert_eq!((reader.buffered(), b.len()), (sent, 0));
        // Further chunks (type 3) add what they carry.
        b.put_u8(0xC4);
        b.put_slice(&[7; 65_536]);
        sent += 65_536;
        assert_eq!(reader.read_message(&mut b), Ok(None));
        assert_eq!(reader.buffered(), sent);
        let held: usize = reader
            .streams
            .values()
            .filter_map(|s| s.partial.as_ref())
            .map(BytesMut::capacity)
            .sum();
        assert!(
            held <= sent + INITIAL_REASSEMBLY_CAPACITY,
            "{held} for {sent}"
        );
        // One byte past the limit is refused from the header, before any payload.
        let mut reader = ChunkReader::new(limit);
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0, limit as u32 + 1, 9, 1);
        assert_eq!(
            reader.read_message(&mut b),
            Err(RtmpError::MessageTooLarge {
                length: limit + 1,
                limit
            })
        );
    }

    #[test]
    fn interleaved_chunk_streams() {
        let a = vec![b'a'; 200];
        let v = vec![b'v'; 200];
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 10, 200, 8, 1);
        b.put_slice(&a[..128]);
        header(&mut b, 0, 6, 20, 200, 9, 1);
        b.put_slice(&v[..128]);
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(&a[128..]);
        header(&mut b, 3, 6, 0, 0, 0, 0);
        b.put_slice(&v[128..]);
        let msgs = read_all(&mut ChunkReader::new(1 << 20), &mut b);
        assert_eq!(msgs.len(), 2);
        assert_eq!((msgs[0].csid, msgs[0].type_id), (4, 8));
        assert_eq!(msgs[0].payload, a);
        assert_eq!((msgs[1].csid, msgs[1].type_id), (6, 9));
        assert_eq!(msgs[1].payload, v);
    }

    #[test]
    fn abort_drops_partial_message() {
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0, 200, 9, 1);
        b.put_slice(&[0; 128]);
        let mut reader = ChunkReader::new(1 << 20);
        assert_eq!(reader.read_message(&mut b), Ok(None));
        assert_eq!(reader.buffered(), 128);
        reader.abort(4);
        assert_eq!(reader.buffered(), 0);
        // The next type 3 chunk starts a fresh 200-byte message.
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(&[1; 128]);
        header(&mut b, 3, 4, 0, 0, 0, 0);
        b.put_slice(&[1; 72]);
        let msgs = read_all(&mut reader, &mut b);
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0].payload, vec![1; 200]);
    }

    #[test]
    fn byte_at_a_time() {
        let payload = vec![9u8; 1000];
        let mut all = BytesMut::new();
        ChunkWriter::new().write(&mut all, 4, 77, 9, 1, &payload);
        let mut reader = ChunkReader::new(1 << 20);
        let mut input = BytesMut::new();
        let mut got = Vec::new();
        for byte in all.iter() {
            input.put_u8(*byte);
            if let Some(m) = reader.read_message(&mut input).expect("ok") {
                got.push(m);
            }
        }
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].payload, payload);
        assert_eq!(got[0].timestamp, 77);
    }

    #[test]
    fn hostile_headers_are_refused() {
        let mut reader = ChunkReader::new(1000);
        let mut b = BytesMut::new();
        header(&mut b, 1, 4, 0, 1, 8, 0);
        assert_eq!(
            reader.read_message(&mut b),
            Err(RtmpError::MissingPreviousHeader { csid: 4, fmt: 1 })
        );
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0, 0xFF_FFFF, 8, 0);
        assert_eq!(
            reader.read_message(&mut b),
            Err(RtmpError::MessageTooLarge {
                length: 0xFF_FFFF,
                limit: 1000
            })
        );
        // New header in the middle of a message.
        let mut reader = ChunkReader::new(1000);
        let mut b = BytesMut::new();
        header(&mut b, 0, 4, 0, 500, 8, 0);
        b.put_slice(&[0; 128]);
        header(&mut b, 0, 4, 0, 5, 8, 0);
        b.put_slice(&[0; 5]);
        assert_eq!(
            reader.read_message(&mut b),
            Err(RtmpError::InterruptedMessage(4))
        );
    }

    #[test]
    fn partial_chunk_streams_are_bounded() {
        let mut reader = ChunkReader::new(1000);
        let mut b = BytesMut::new();
        for csid in 3..(3 + MAX_PARTIAL_CHUNK_STREAMS as u32 + 1) {
            header(&mut b, 0, csid, 0, 500, 8, 0);
            b.put_slice(&[0; 128]);
        }
        assert_eq!(
            reader.read_message(&mut b),
            Err(RtmpError::TooManyChunkStreams(MAX_PARTIAL_CHUNK_STREAMS))
        );
        let mut reader = ChunkReader::new(1000);
        let mut b = BytesMut::new();
        for csid in 3..(3 + MAX_CHUNK_STREAMS as u32 + 1) {
            header(&mut b, 0, csid, 0, 0, 8, 0);
        }
        assert_eq!(reader.read_message(&mut b).map(|m| m.is_some()), Ok(true));
        let result = (0..MAX_CHUNK_STREAMS).try_for_each(|_| reader.read_message(&mut b).map(drop));
        assert_eq!(
            result,
            Err(RtmpError::TooManyChunkStreams(MAX_CHUNK_STREAMS))
        );
    }
}
