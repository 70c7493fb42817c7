//! The RTMP error type.

use super::amf0::Amf0Error;

/// Why an RTMP session failed. Every error is fatal for the connection: the driver closes it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RtmpError {
    /// C0 carried a version other than 3 (RTMP spec §5.2.2).
    #[error("unsupported RTMP handshake version {0} (expected 3)")]
    BadHandshakeVersion(u8),
    /// A message longer than the configured limit.
    #[error("RTMP message of {length} bytes exceeds the limit of {limit} bytes")]
    MessageTooLarge {
        /// Length announced in the message header.
        length: usize,
        /// The configured maximum.
        limit: usize,
    },
    /// Set Chunk Size with a value outside 128..=65536 (RTMP spec §5.4.1 allows
    /// 1..=0x7FFFFFFF; nothing real sends less than the default or more than the maximum it
    /// names).
    #[error("RTMP chunk size {0} is outside 128..=65536")]
    BadChunkSize(u32),
    /// Set Chunk Size while a message was incomplete on some chunk stream.
    #[error("RTMP Set Chunk Size {0} while a message is incomplete")]
    ChunkSizeMidMessage(u32),
    /// A publishing name refused before any lookup (too long, path or control characters).
    #[error("refused stream name: {0}")]
    BadStreamName(&'static str),
    /// A chunk of type 1, 2 or 3 on a chunk stream that never had a type 0 header.
    #[error("chunk header type {fmt} on chunk stream {csid} without a previous type 0 header")]
    MissingPreviousHeader {
        /// Chunk stream id.
        csid: u32,
        /// Chunk header type (1, 2 or 3).
        fmt: u8,
    },
    /// A new message header (type 0/1/2) while a message was still incomplete on that chunk stream.
    #[error("new message header on chunk stream {0} before the previous message was complete")]
    InterruptedMessage(u32),
    /// More chunk streams with incomplete messages than the limit.
    #[error("more than {0} chunk streams with incomplete messages")]
    TooManyChunkStreams(usize),
    /// Incomplete messages across all chunk streams hold more bytes than the limit.
    #[error("incomplete RTMP messages buffer more than {0} bytes")]
    TooMuchBuffered(usize),
    /// An AMF0 command or data message failed to decode.
    #[error("AMF0: {0}")]
    Amf0(#[from] Amf0Error),
    /// A message whose payload does not match its type.
    #[error("malformed RTMP message of type {message_type}: {reason}")]
    MalformedMessage {
        /// RTMP message type id.
        message_type: u8,
        /// What was wrong.
        reason: &'static str,
    },
    /// A command other than `connect` before `connect`, or a second `connect`.
    #[error("RTMP protocol violation: {0}")]
    ProtocolViolation(&'static str),
    /// A `publish` (or other stream command) on a message stream id that `createStream` never returned.
    #[error("RTMP command on unknown message stream {0}")]
    UnknownStream(u32),
    /// More `createStream` calls than the limit.
    #[error("more than {0} RTMP message streams")]
    TooManyStreams(usize),
    /// Too many commands queued while the application decides on `connect`.
    #[error("more than {0} commands queued while connect is pending")]
    TooManyPendingCommands(usize),
    /// `handle_input` after the session already failed or closed.
    #[error("RTMP session is closed")]
    SessionClosed,
}
