//! The chat wire protocol (`docs/chat-protocol.md`), sans-IO.
//!
//! A frame is a 4-byte big-endian length `L` followed by `L` bytes of a UTF-8 JSON object whose
//! `"type"` names the message. The same frames flow on the one bidirectional stream of a native
//! connection (ALPN `cuecast-chat/1`) and of a WebTransport session (ALPN `h3`).
//! [`read_frame`] parses what has arrived so far: `Ok(None)` means "need more bytes".

use bytes::{Buf, BufMut, Bytes, BytesMut};
use serde::{Deserialize, Serialize};

/// What a login token grants (defined by accounts, carried in `welcome`).
pub use crate::users::Capability;

/// ALPN of the native protocol; the `/1` is the major version.
pub const ALPN_NATIVE: &[u8] = b"cuecast-chat/1";
/// ALPN of HTTP/3 (WebTransport sessions).
pub const ALPN_H3: &[u8] = b"h3";
/// The protocol version a `hello` must carry.
pub const VERSION: u32 = 1;
/// Bytes of the length prefix.
pub const LENGTH_PREFIX: usize = 4;

/// Application error codes a connection (or WebTransport session) is closed with.
///
/// The numbers are part of the protocol: clients show them, tests assert them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum CloseCode {
    /// Normal close (client done).
    Normal = 0x0,
    /// A frame was not a JSON object of a known shape (bad JSON, bad UTF-8, empty frame,
    /// missing or mistyped fields).
    MalformedFrame = 0x1,
    /// A frame's length exceeds the server's limit.
    FrameTooLarge = 0x2,
    /// A frame's `type` is not a message this version knows.
    UnknownMessage = 0x3,
    /// Messages out of order (`hello` not first, or twice) or an unsupported version.
    ProtocolViolation = 0x4,
    /// More streams opened than the protocol allows (one bidirectional stream).
    StreamLimit = 0x5,
    /// The user is banned or timed out in this room.
    Banned = 0x6,
    /// Too many connections from this IP address (or in total).
    ConnectionLimit = 0x7,
    /// The client read too slowly; its queue overflowed.
    SlowConsumer = 0x8,
    /// The room does not exist (rooms are the stream names: configured and hosts').
    UnknownRoom = 0x9,
    /// The token is invalid or expired.
    Unauthorized = 0xA,
    /// The server is shutting down.
    Shutdown = 0xB,
    /// No `hello` within the hello timeout.
    HelloTimeout = 0xC,
}

impl CloseCode {
    /// The code on the wire.
    pub fn code(self) -> u32 {
        self as u32
    }

    /// Short reason phrase sent with the close.
    pub fn reason(self) -> &'static str {
        match self {
            CloseCode::Normal => "bye",
            CloseCode::MalformedFrame => "malformed frame",
            CloseCode::FrameTooLarge => "frame too large",
            CloseCode::UnknownMessage => "unknown message type",
            CloseCode::ProtocolViolation => "protocol violation",
            CloseCode::StreamLimit => "stream limit",
            CloseCode::Banned => "banned",
            CloseCode::ConnectionLimit => "connection limit",
            CloseCode::SlowConsumer => "slow consumer",
            CloseCode::UnknownRoom => "unknown room",
            CloseCode::Unauthorized => "unauthorized",
            CloseCode::Shutdown => "server shutting down",
            CloseCode::HelloTimeout => "hello timeout",
        }
    }

    /// The code for a wire value, if known.
    pub fn from_code(code: u64) -> Option<CloseCode> {
        ALL_CLOSE_CODES
            .iter()
            .copied()
            .find(|c| c.code() as u64 == code)
    }
}

/// Every close code, in order.
pub const ALL_CLOSE_CODES: [CloseCode; 13] = [
    CloseCode::Normal,
    CloseCode::MalformedFrame,
    CloseCode::FrameTooLarge,
    CloseCode::UnknownMessage,
    CloseCode::ProtocolViolation,
    CloseCode::StreamLimit,
    CloseCode::Banned,
    CloseCode::ConnectionLimit,
    CloseCode::SlowConsumer,
    CloseCode::UnknownRoom,
    CloseCode::Unauthorized,
    CloseCode::Shutdown,
    CloseCode::HelloTimeout,
];

/// Why a frame could not be read. Each maps to a [`CloseCode`].
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    /// Length prefix above the limit.
    #[error("frame of {len} bytes exceeds the limit of {max}")]
    TooLarge {
        /// Announced length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// Not a valid message.
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A well-formed object with an unknown `type`.
    #[error("unknown message type `{0}`")]
    Unknown(String),
}

impl FrameError {
    /// The close code for this error.
    pub fn close_code(&self) -> CloseCode {
        match self {
            FrameError::TooLarge { .. } => CloseCode::FrameTooLarge,
            FrameError::Malformed(_) => CloseCode::MalformedFrame,
            FrameError::Unknown(_) => CloseCode::UnknownMessage,
        }
    }
}

/// What a message's author was when it was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// A logged-in viewer.
    Viewer,
    /// A moderator.
    Moderator,
    /// The host.
    Host,
}

impl Role {
    /// Name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Moderator => "moderator",
            Role::Host => "host",
        }
    }

    /// Parses a stored name (unknown → viewer).
    pub fn parse(name: &str) -> Role {
        match name {
            "host" => Role::Host,
            "moderator" => Role::Moderator,
            _ => Role::Viewer,
        }
    }
}

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Text only.
    Chat,
    /// Text with a link.
    Link,
    /// A product card (and maybe text).
    Product,
}

impl MessageKind {
    /// Name in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            MessageKind::Chat => "chat",
            MessageKind::Link => "link",
            MessageKind::Product => "product",
        }
    }

    /// Parses a stored name (unknown → chat).
    pub fn parse(name: &str) -> MessageKind {
        match name {
            "link" => MessageKind::Link,
            "product" => MessageKind::Product,
            _ => MessageKind::Chat,
        }
    }
}

/// A link attached to a host's or moderator's message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Link {
    /// Target (http or https).
    pub url: String,
    /// Text to show instead of the URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
}

/// A product card: the same product display data as a product cue.
pub use crate::commerce::Product as ProductCard;

/// A chat message as stored and broadcast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct ChatMessage {
    /// Server-assigned id, increasing, unique across rooms and restarts.
    pub id: i64,
    /// Room (stream name).
    pub room: String,
    /// Author's username.
    pub user: String,
    /// Author's role when sending.
    pub role: Role,
    /// What it carries.
    pub kind: MessageKind,
    /// Text (after link policy).
    pub text: String,
    /// Attached link (hosts and moderators).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<Link>,
    /// Attached product card (hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<ProductCard>,
    /// Wall clock at acceptance, Unix milliseconds.
    pub sent_at_ms: i64,
    /// HLS session of the stream when sent (None when the stream was not live).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Stream media time when sent, milliseconds since the session started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_time_ms: Option<i64>,
}

/// Client → server messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum ClientMsg {
    /// First frame: join a room.
    Hello {
        /// Must be [`VERSION`].
        version: u32,
        /// Room (stream name).
        room: String,
        /// Login token; absent = anonymous (read only).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
        /// How many past messages to receive (capped by the server; default: server's).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        backfill: Option<u32>,
    },
    /// Post a message.
    Post {
        /// Text.
        #[serde(default)]
        text: String,
        /// A link (hosts and moderators).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        link: Option<Link>,
        /// A product card (hosts).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        product: Option<Box<ProductCard>>,
        /// Client's correlation id, echoed in `ack`/`rejected`.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<String>,
    },
    /// Delete a message (moderate).
    Delete {
        /// Message id.
        id: i64,
    },
    /// Pin a message (host).
    Pin {
        /// Message id.
        id: i64,
    },
    /// Remove the pin (host).
    Unpin {},
    /// Time a user out: disconnect and refuse for `seconds` (moderate).
    Timeout {
        /// Username.
        user: String,
        /// Duration.
        seconds: u64,
    },
    /// Ban a user from the room until unbanned (moderate).
    Ban {
        /// Username.
        user: String,
    },
    /// Lift a ban or timeout (moderate).
    Unban {
        /// Username.
        user: String,
    },
    /// Set slow mode: seconds between a viewer's messages; 0 = off (moderate).
    SlowMode {
        /// Seconds.
        seconds: u64,
    },
}

/// The `type` names of [`ClientMsg`], to tell unknown types from malformed known ones.
const CLIENT_TYPES: [&str; 9] = [
    "hello",
    "post",
    "delete",
    "pin",
    "unpin",
    "timeout",
    "ban",
    "unban",
    "slow_mode",
];

/// Why a request was refused (the connection stays open).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectCode {
    /// Anonymous users cannot post.
    LoginRequired,
    /// The token lacks the needed capability.
    Forbidden,
    /// Text too long.
    TooLong,
    /// Empty message.
    Empty,
    /// A viewer's link outside the allowlist (policy `reject`).
    LinkNotAllowed,
    /// A link or product field is not a valid http(s) URL.
    InvalidLink,
    /// Per-user rate limit.
    RateLimited,
    /// Slow mode: too soon after the previous message.
    SlowMode,
    /// The review hook denied the message.
    Denied,
    /// No such message.
    NotFound,
    /// Invalid argument (e.g. a username that does not exist in the request).
    Invalid,
}

/// Server → client messages.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerMsg {
    /// Answer to `hello`.
    Welcome {
        /// Protocol version.
        version: u32,
        /// Room joined.
        room: String,
        /// Username (None = anonymous).
        user: Option<String>,
        /// Capabilities of the token.
        capabilities: Vec<Capability>,
        /// Connections in the room, this one included.
        presence: usize,
        /// Slow mode seconds (0 = off).
        slow_mode_s: u64,
        /// Longest viewer text, characters.
        max_text_chars: usize,
        /// The pinned message.
        pinned: Option<ChatMessage>,
    },
    /// A message (live, or `history: true` during backfill).
    Message {
        /// The message.
        #[serde(flatten)]
        message: ChatMessage,
        /// Part of the backfill.
        #[serde(default, skip_serializing_if = "std::ops::Not::not")]
        history: bool,
    },
    /// End of the backfill; live messages follow.
    Live {},
    /// Our own post was accepted.
    Ack {
        /// The post's nonce.
        nonce: Option<String>,
        /// Id of the new message.
        id: i64,
        /// Links were removed from the text by policy.
        stripped: bool,
    },
    /// A request was refused.
    Rejected {
        /// The request's nonce, for posts.
        nonce: Option<String>,
        /// Why.
        code: RejectCode,
        /// Human-readable explanation.
        reason: String,
        /// When to try again, for rate limit and slow mode.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after_ms: Option<u64>,
    },
    /// A message was deleted.
    Deleted {
        /// Its id.
        id: i64,
    },
    /// The pinned message changed (None = unpinned).
    Pinned {
        /// The message.
        message: Option<ChatMessage>,
    },
    /// Number of connections in the room changed.
    Presence {
        /// Connections.
        count: usize,
    },
    /// Slow mode changed.
    SlowMode {
        /// Seconds (0 = off).
        seconds: u64,
    },
}

/// Reads one frame from `buf` if complete, consuming it.
pub fn read_frame<T: serde::de::DeserializeOwned>(
    buf: &mut BytesMut,
    max_len: usize,
    known_types: &[&str],
) -> Result<Option<T>, FrameError> {
    if buf.len() < LENGTH_PREFIX {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]) as usize;
    if len > max_len {
        return Err(FrameError::TooLarge { len, max: max_len });
    }
    if len == 0 {
        return Err(FrameError::Malformed("empty frame".into()));
    }
    if buf.len() < LENGTH_PREFIX + len {
        return Ok(None);
    }
    buf.advance(LENGTH_PREFIX);
    let body = buf.split_to(len);
    decode(&body, known_types).map(Some)
}

fn decode<T: serde::de::DeserializeOwned>(
    body: &[u8],
    known_types: &[&str],
) -> Result<T, FrameError> {
    match serde_json::from_slice::<T>(body) {
        Ok(msg) => Ok(msg),
        Err(err) => {
            // Unknown type or malformed? Look at `type` of whatever JSON object it is.
            let value: serde_json::Value =
                serde_json::from_slice(body).map_err(|e| FrameError::Malformed(e.to_string()))?;
            match value.get("type").and_then(|t| t.as_str()) {
                Some(kind) if !known_types.contains(&kind) => {
                    Err(FrameError::Unknown(kind.chars().take(64).collect()))
                }
                _ => Err(FrameError::Malformed(err.to_string())),
            }
        }
    }
}

/// Reads one client frame (server side).
pub fn read_client_frame(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<ClientMsg>, FrameError> {
    read_frame(buf, max_len, &CLIENT_TYPES)
}

/// Decodes one client message that arrives without a length prefix (a WebSocket text
/// message): the same limits and errors as [`read_client_frame`].
pub fn decode_client_msg(body: &[u8], max_len: usize) -> Result<ClientMsg, FrameError> {
    if body.len() > max_len {
        return Err(FrameError::TooLarge {
            len: body.len(),
            max: max_len,
        });
    }
    if body.is_empty() {
        return Err(FrameError::Malformed("empty frame".into()));
    }
    decode(body, &CLIENT_TYPES)
}

/// Reads one server frame (client side). Unknown server types are an error for this version.
pub fn read_server_frame(
    buf: &mut BytesMut,
    max_len: usize,
) -> Result<Option<ServerMsg>, FrameError> {
    const SERVER_TYPES: [&str; 9] = [
        "welcome",
        "message",
        "live",
        "ack",
        "rejected",
        "deleted",
        "pinned",
        "presence",
        "slow_mode",
    ];
    read_frame(buf, max_len, &SERVER_TYPES)
}

/// Appends one encoded frame to `out`.
pub fn encode_into<T: Serialize>(msg: &T, out: &mut BytesMut) {
    let start = out.len();
    out.put_u32(0);
    // Serializing these plain data types into memory cannot fail.
    let mut writer = out.writer();
    let _ = serde_json::to_writer(&mut writer, msg);
    let out = writer.into_inner();
    let len = (out.len() - start - LENGTH_PREFIX) as u32;
    out[start..start + LENGTH_PREFIX].copy_from_slice(&len.to_be_bytes());
}

/// One encoded frame.
pub fn encode<T: Serialize>(msg: &T) -> Bytes {
    let mut out = BytesMut::with_capacity(128);
    encode_into(msg, &mut out);
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(body: &[u8]) -> BytesMut {
        let mut buf = BytesMut::new();
        buf.put_u32(body.len() as u32);
        buf.put_slice(body);
        buf
    }

    #[test]
    fn round_trip_and_partial_input() {
        let msg = ClientMsg::Hello {
            version: 1,
            room: "demo".into(),
            token: None,
            backfill: Some(10),
        };
        let encoded = encode(&msg);
        let mut buf = BytesMut::new();
        for (i, byte) in encoded.iter().enumerate() {
            assert_eq!(read_client_frame(&mut buf, 1024), Ok(None), "byte {i}");
            buf.put_u8(*byte);
        }
        assert_eq!(read_client_frame(&mut buf, 1024), Ok(Some(msg)));
        assert!(buf.is_empty());
    }

    #[test]
    fn wire_shape_is_documented_json() {
        let bytes = encode(&ClientMsg::Post {
            text: "hi".into(),
            link: None,
            product: None,
            nonce: Some("n1".into()),
        });
        assert_eq!(&bytes[..4], &[0, 0, 0, 40]);
        assert_eq!(&bytes[4..], br#"{"type":"post","text":"hi","nonce":"n1"}"#);
        let unpin = encode(&ClientMsg::Unpin {});
        assert_eq!(&unpin[4..], br#"{"type":"unpin"}"#);
    }

    #[test]
    fn errors_map_to_close_codes() {
        let mut big = BytesMut::new();
        big.put_u32(70_000);
        let err = read_client_frame(&mut big, 65_536).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::FrameTooLarge);

        let err = read_client_frame(&mut frame(b"{not json"), 1024).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::MalformedFrame);

        let err = read_client_frame(&mut frame(b"\xff\xfe"), 1024).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::MalformedFrame);

        let err = read_client_frame(&mut frame(br#"{"type":"dance"}"#), 1024).unwrap_err();
        assert_eq!(err, FrameError::Unknown("dance".into()));
        assert_eq!(err.close_code(), CloseCode::UnknownMessage);

        let err =
            read_client_frame(&mut frame(br#"{"type":"delete","id":"x"}"#), 1024).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::MalformedFrame);

        let err = read_client_frame(&mut frame(br#"[1,2]"#), 1024).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::MalformedFrame);

        let err = read_client_frame(&mut frame(b""), 1024).unwrap_err();
        assert_eq!(err.close_code(), CloseCode::MalformedFrame);
    }

    #[test]
    fn server_messages_round_trip() {
        let message = ChatMessage {
            id: 7,
            room: "demo".into(),
            user: "alice".into(),
            role: Role::Host,
            kind: MessageKind::Product,
            text: "look".into(),
            link: None,
            product: Some(ProductCard {
                id: "sku-1".into(),
                title: Some("Mug".into()),
                price: Some("9.99".into()),
                currency: Some("EUR".into()),
                image_url: None,
                cta: Some(crate::commerce::Cta {
                    label: "Buy".into(),
                    url: "https://shop.example/mug".into(),
                }),
            }),
            sent_at_ms: 1,
            session: Some("abc".into()),
            media_time_ms: Some(1500),
        };
        for msg in [
            ServerMsg::Message {
                message: message.clone(),
                history: true,
            },
            ServerMsg::Pinned {
                message: Some(message),
            },
            ServerMsg::Live {},
            ServerMsg::Presence { count: 3 },
        ] {
            let mut buf = BytesMut::from(&encode(&msg)[..]);
            assert_eq!(read_server_frame(&mut buf, 65_536), Ok(Some(msg)));
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let seeds: [&[u8]; 3] = [
            br#"{"type":"post","text":"x","link":{"url":"https://a.b"}}"#,
            br#"{"type":"hello","version":1,"room":"demo"}"#,
            br#"{"type":"timeout","user":"u","seconds":5}"#,
        ];
        for round in 0..20_000 {
            let mut body = seeds[round % seeds.len()].to_vec();
            for _ in 0..rng.random_range(1..4) {
                let at = rng.random_range(0..body.len());
                body[at] = rng.random();
            }
            let mut buf = frame(&body);
            if rng.random_bool(0.1) {
                buf.truncate(rng.random_range(0..buf.len()));
            }
            let _ = read_client_frame(&mut buf, 1024);
        }
    }

    #[test]
    fn close_codes_are_stable() {
        for (i, code) in ALL_CLOSE_CODES.iter().enumerate() {
            assert_eq!(code.code(), i as u32);
            assert_eq!(CloseCode::from_code(i as u64), Some(*code));
        }
    }
}
