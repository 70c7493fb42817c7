//! RTMP messages: decode from and encode to message payloads (RTMP spec 1.0 §5.4, §6, §7).
//!
//! | type | message                        | spec   |
//! |------|--------------------------------|--------|
//! | 1    | Set Chunk Size                 | §5.4.1 |
//! | 2    | Abort Message                  | §5.4.2 |
//! | 3    | Acknowledgement                | §5.4.3 |
//! | 4    | User Control Message           | §6.2, §7.1.7 |
//! | 5    | Window Acknowledgement Size    | §5.4.4 |
//! | 6    | Set Peer Bandwidth             | §5.4.5 |
//! | 8    | Audio (FLV audio tag body)     | §7.1.4 |
//! | 9    | Video (FLV video tag body)     | §7.1.5 |
//! | 15/18| Data (AMF3 / AMF0)             | §7.1.2 |
//! | 17/20| Command (AMF3 / AMF0)          | §7.1.1 |
//! | 22   | Aggregate                      | §7.1.6 |
//!
//! Types 15 and 17 ("AMF3") are accepted when their body is AMF0 after a leading 0 byte, which
//! is what clients send in practice.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::RtmpError;
use super::amf0::{self, Value};

/// Message type ids.
pub mod type_id {
    /// Set Chunk Size.
    pub const SET_CHUNK_SIZE: u8 = 1;
    /// Abort Message.
    pub const ABORT: u8 = 2;
    /// Acknowledgement.
    pub const ACKNOWLEDGEMENT: u8 = 3;
    /// User Control Message.
    pub const USER_CONTROL: u8 = 4;
    /// Window Acknowledgement Size.
    pub const WINDOW_ACK_SIZE: u8 = 5;
    /// Set Peer Bandwidth.
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    /// Audio data.
    pub const AUDIO: u8 = 8;
    /// Video data.
    pub const VIDEO: u8 = 9;
    /// Data message, AMF3 encoding.
    pub const DATA_AMF3: u8 = 15;
    /// Command message, AMF3 encoding.
    pub const COMMAND_AMF3: u8 = 17;
    /// Data message, AMF0 encoding.
    pub const DATA_AMF0: u8 = 18;
    /// Command message, AMF0 encoding.
    pub const COMMAND_AMF0: u8 = 20;
    /// Aggregate message.
    pub const AGGREGATE: u8 = 22;
}

/// Set Peer Bandwidth limit type "dynamic" (spec §5.4.5).
pub const LIMIT_TYPE_DYNAMIC: u8 = 2;
/// Size of an FLV tag header inside an aggregate message.
const AGGREGATE_TAG_HEADER: usize = 11;
/// Size of the back pointer after each aggregate sub-message.
const AGGREGATE_BACK_POINTER: usize = 4;

/// User Control Message events (spec §7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    /// Stream Begin (0): the stream is functional.
    StreamBegin(u32),
    /// Stream EOF (1).
    StreamEof(u32),
    /// Stream Dry (2).
    StreamDry(u32),
    /// Set Buffer Length (3): stream id and buffer length in ms.
    SetBufferLength {
        /// Message stream id.
        stream_id: u32,
        /// Buffer length in milliseconds.
        buffer_ms: u32,
    },
    /// Stream Is Recorded (4).
    StreamIsRecorded(u32),
    /// Ping Request (6) with the sender's timestamp.
    PingRequest(u32),
    /// Ping Response (7) echoing the request's timestamp.
    PingResponse(u32),
    /// Any other event type.
    Other {
        /// Event type.
        event_type: u16,
        /// Event data.
        data: Bytes,
    },
}

/// A command message (type 20, or 17 with a leading 0): name, transaction id, command object,
/// further arguments (spec §7.1.1).
#[derive(Debug, Clone, PartialEq)]
pub struct Command {
    /// Procedure name (`connect`, `publish`, `_result`, …).
    pub name: String,
    /// Transaction id; 0 when no reply is expected.
    pub transaction_id: f64,
    /// Command object (an object, or null).
    pub command_object: Value,
    /// Remaining arguments.
    pub arguments: Vec<Value>,
}

impl Command {
    /// The `code` of a status reply (`_result`, `_error`, `onStatus`): its first argument's
    /// `code` property, e.g. `NetStream.Publish.Start`.
    pub fn status_code(&self) -> Option<&str> {
        self.arguments
            .first()
            .and_then(Value::as_object)
            .and_then(|o| o.get_str("code"))
    }
}

/// A decoded RTMP message payload.
#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    /// Set Chunk Size (31-bit size).
    SetChunkSize(u32),
    /// Abort the partial message on a chunk stream.
    Abort(u32),
    /// Acknowledgement: bytes received so far.
    Acknowledgement(u32),
    /// User control event.
    UserControl(UserControl),
    /// Window Acknowledgement Size.
    WindowAckSize(u32),
    /// Set Peer Bandwidth: window size and limit type (0 hard, 1 soft, 2 dynamic).
    SetPeerBandwidth {
        /// Window size in bytes.
        size: u32,
        /// Limit type.
        limit_type: u8,
    },
    /// Audio message: an FLV audio tag body.
    Audio(Bytes),
    /// Video message: an FLV video tag body.
    Video(Bytes),
    /// Data message: AMF0 values.
    Data(Vec<Value>),
    /// Command message.
    Command(Command),
    /// Aggregate message: use [`split_aggregate`].
    Aggregate(Bytes),
    /// A message type cuecast does not handle.
    Unknown {
        /// Message type id.
        type_id: u8,
        /// Payload.
        payload: Bytes,
    },
}

fn malformed(message_type: u8, reason: &'static str) -> RtmpError {
    RtmpError::MalformedMessage {
        message_type,
        reason,
    }
}

fn read_u32(payload: &[u8], message_type: u8) -> Result<u32, RtmpError> {
    match payload.get(..4) {
        Some(&[a, b, c, d]) => Ok(u32::from_be_bytes([a, b, c, d])),
        _ => Err(malformed(message_type, "payload shorter than 4 bytes")),
    }
}

/// Strips the leading 0 byte of an AMF3-typed message whose body is AMF0.
fn amf0_body(type_id: u8, payload: &Bytes) -> Result<&[u8], RtmpError> {
    if type_id == type_id::DATA_AMF3 || type_id == type_id::COMMAND_AMF3 {
        match payload.split_first() {
            Some((0, rest)) => Ok(rest),
            Some(_) => Err(malformed(type_id, "AMF3 body is not supported")),
            None => Err(malformed(type_id, "empty payload")),
        }
    } else {
        Ok(payload)
    }
}

impl Message {
    /// Decodes the payload of a message of type `type_id`.
    pub fn decode(type_id: u8, payload: Bytes) -> Result<Self, RtmpError> {
        use self::type_id as t;
        Ok(match type_id {
            t::SET_CHUNK_SIZE => Message::SetChunkSize(read_u32(&payload, type_id)?),
            t::ABORT => Message::Abort(read_u32(&payload, type_id)?),
            t::ACKNOWLEDGEMENT => Message::Acknowledgement(read_u32(&payload, type_id)?),
            t::WINDOW_ACK_SIZE => Message::WindowAckSize(read_u32(&payload, type_id)?),
            t::SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: read_u32(&payload, type_id)?,
                limit_type: payload
                    .get(4)
                    .copied()
                    .ok_or_else(|| malformed(type_id, "missing limit type"))?,
            },
            t::USER_CONTROL => Message::UserControl(decode_user_control(payload)?),
            t::AUDIO => Message::Audio(payload),
            t::VIDEO => Message::Video(payload),
            t::DATA_AMF0 | t::DATA_AMF3 => {
                Message::Data(amf0::decode_all(amf0_body(type_id, &payload)?)?)
            }
            t::COMMAND_AMF0 | t::COMMAND_AMF3 => {
                let mut values = amf0::decode_all(amf0_body(type_id, &payload)?)?.into_iter();
                let name = match values.next() {
                    Some(Value::String(name)) => name,
                    _ => return Err(malformed(type_id, "command name is not a string")),
                };
                let transaction_id = values.next().and_then(|v| v.as_number()).unwrap_or(0.0);
                let command_object = values.next().unwrap_or(Value::Null);
                Message::Command(Command {
                    name,
                    transaction_id,
                    command_object,
                    arguments: values.collect(),
                })
            }
            t::AGGREGATE => Message::Aggregate(payload),
            _ => Message::Unknown { type_id, payload },
        })
    }

    /// The type id and payload bytes of this message.
    pub fn encode(&self) -> (u8, Bytes) {
        use self::type_id as t;
        let mut out = BytesMut::new();
        let ty = match self {
            Message::SetChunkSize(v) => {
                out.put_u32(*v & 0x7FFF_FFFF);
                t::SET_CHUNK_SIZE
            }
            Message::Abort(v) => {
                out.put_u32(*v);
                t::ABORT
            }
            Message::Acknowledgement(v) => {
                out.put_u32(*v);
                t::ACKNOWLEDGEMENT
            }
            Message::WindowAckSize(v) => {
                out.put_u32(*v);
                t::WINDOW_ACK_SIZE
            }
            Message::SetPeerBandwidth { size, limit_type } => {
                out.put_u32(*size);
                out.put_u8(*limit_type);
                t::SET_PEER_BANDWIDTH
            }
            Message::UserControl(uc) => {
                encode_user_control(&mut out, uc);
                t::USER_CONTROL
            }
            Message::Audio(data) => return (t::AUDIO, data.clone()),
            Message::Video(data) => return (t::VIDEO, data.clone()),
            Message::Data(values) => {
                amf0::encode_all(&mut out, values);
                t::DATA_AMF0
            }
            Message::Command(cmd) => {
                amf0::encode(&mut out, &Value::String(cmd.name.clone()));
                amf0::encode(&mut out, &Value::Number(cmd.transaction_id));
                amf0::encode(&mut out, &cmd.command_object);
                amf0::encode_all(&mut out, &cmd.arguments);
                t::COMMAND_AMF0
            }
            Message::Aggregate(data) => return (t::AGGREGATE, data.clone()),
            Message::Unknown { type_id, payload } => return (*type_id, payload.clone()),
        };
        (ty, out.freeze())
    }
}

fn decode_user_control(mut payload: Bytes) -> Result<UserControl, RtmpError> {
    let ty = type_id::USER_CONTROL;
    if payload.len() < 2 {
        return Err(malformed(ty, "missing event type"));
    }
    let event_type = payload.get_u16();
    let first = || read_u32(&payload, ty);
    Ok(match event_type {
        0 => UserControl::StreamBegin(first()?),
        1 => UserControl::StreamEof(first()?),
        2 => UserControl::StreamDry(first()?),
        3 => UserControl::SetBufferLength {
            stream_id: first()?,
            buffer_ms: read_u32(payload.get(4..).unwrap_or_default(), ty)?,
        },
        4 => UserControl::StreamIsRecorded(first()?),
        6 => UserControl::PingRequest(first()?),
        7 => UserControl::PingResponse(first()?),
        _ => UserControl::Other {
            event_type,
            data: payload,
        },
    })
}

fn encode_user_control(out: &mut BytesMut, uc: &UserControl) {
    let (event, a, b) = match uc {
        UserControl::StreamBegin(id) => (0, *id, None),
        UserControl::StreamEof(id) => (1, *id, None),
        UserControl::StreamDry(id) => (2, *id, None),
        UserControl::SetBufferLength {
            stream_id,
            buffer_ms,
        } => (3, *stream_id, Some(*buffer_ms)),
        UserControl::StreamIsRecorded(id) => (4, *id, None),
        UserControl::PingRequest(ts) => (6, *ts, None),
        UserControl::PingResponse(ts) => (7, *ts, None),
        UserControl::Other { event_type, data } => {
            out.put_u16(*event_type);
            out.put_slice(data);
            return;
        }
    };
    out.put_u16(event);
    out.put_u32(a);
    if let Some(b) = b {
        out.put_u32(b);
    }
}

/// One sub-message of an aggregate message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubMessage {
    /// Message type id (8 audio, 9 video, 18 data).
    pub type_id: u8,
    /// Absolute timestamp: the aggregate's timestamp plus the offset from its first sub-message.
    pub timestamp: u32,
    /// Payload (zero-copy slice of the aggregate).
    pub payload: Bytes,
}

/// Splits an aggregate message (spec §7.1.6) into its sub-messages: each is an FLV tag
/// (11-byte header: type, 24-bit size, 24+8-bit timestamp, 24-bit stream id), its data and a
/// 4-byte back pointer. "The timestamp of the first sub-message is the same as the aggregate
/// message's timestamp"; later ones keep their offset from the first.
pub fn split_aggregate(timestamp: u32, payload: &Bytes) -> Result<Vec<SubMessage>, RtmpError> {
    let ty = type_id::AGGREGATE;
    let mut out = Vec::new();
    let mut pos = 0usize;
    let mut first_ts: Option<u32> = None;
    while pos < payload.len() {
        let header = payload
            .get(pos..pos + AGGREGATE_TAG_HEADER)
            .ok_or_else(|| malformed(ty, "truncated sub-message header"))?;
        let mut h = header;
        let sub_type = h.get_u8();
        let size = usize::try_from(h.get_uint(3)).unwrap_or(usize::MAX);
        let ts_low = h.get_uint(3) as u32;
        let ts = ts_low | (u32::from(h.get_u8()) << 24);
        let start = pos + AGGREGATE_TAG_HEADER;
        let end = start
            .checked_add(size)
            .filter(|&end| end <= payload.len())
            .ok_or_else(|| malformed(ty, "truncated sub-message"))?;
        let first = *first_ts.get_or_insert(ts);
        out.push(SubMessage {
            type_id: sub_type,
            timestamp: timestamp.wrapping_add(ts.wrapping_sub(first)),
            payload: payload.slice(start..end),
        });
        // The back pointer is sometimes missing after the last tag; tolerate that.
        pos = end.saturating_add(AGGREGATE_BACK_POINTER);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rtmp::amf0::Object;

    fn round_trip(message: Message) {
        let (ty, payload) = message.encode();
        assert_eq!(Message::decode(ty, payload), Ok(message));
    }

    #[test]
    fn round_trips() {
        round_trip(Message::SetChunkSize(4096));
        round_trip(Message::Abort(4));
        round_trip(Message::Acknowledgement(123_456));
        round_trip(Message::WindowAckSize(2_500_000));
        round_trip(Message::SetPeerBandwidth {
            size: 2_500_000,
            limit_type: LIMIT_TYPE_DYNAMIC,
        });
        round_trip(Message::UserControl(UserControl::StreamBegin(1)));
        round_trip(Message::UserControl(UserControl::SetBufferLength {
            stream_id: 1,
            buffer_ms: 3000,
        }));
        round_trip(Message::UserControl(UserControl::PingRequest(9)));
        round_trip(Message::Audio(Bytes::from_static(b"\xaf\x01x")));
        round_trip(Message::Data(vec![
            "@setDataFrame".into(),
            "onMetaData".into(),
            Value::EcmaArray(Object::new().with("width", 1280.0)),
        ]));
        round_trip(Message::Command(Command {
            name: "connect".into(),
            transaction_id: 1.0,
            command_object: Value::Object(Object::new().with("app", "live")),
            arguments: vec![],
        }));
    }

    #[test]
    fn amf3_command_with_leading_zero() {
        let (_, body) = Message::Command(Command {
            name: "publish".into(),
            transaction_id: 5.0,
            command_object: Value::Null,
            arguments: vec!["key".into()],
        })
        .encode();
        let mut payload = vec![0u8];
        payload.extend_from_slice(&body);
        let Ok(Message::Command(cmd)) =
            Message::decode(type_id::COMMAND_AMF3, Bytes::from(payload))
        else {
            panic!("not a command");
        };
        assert_eq!(cmd.name, "publish");
        assert!(Message::decode(type_id::COMMAND_AMF3, Bytes::from_static(&[1, 2])).is_err());
    }

    #[test]
    fn malformed_payloads() {
        assert!(Message::decode(1, Bytes::from_static(&[0, 0])).is_err());
        assert!(Message::decode(6, Bytes::from_static(&[0, 0, 0, 1])).is_err());
        assert!(Message::decode(4, Bytes::from_static(&[0])).is_err());
        assert!(Message::decode(4, Bytes::from_static(&[0, 3, 0, 0, 0, 1])).is_err());
        assert!(Message::decode(20, Bytes::from_static(&[0x05])).is_err());
    }

    #[test]
    fn aggregate_split() {
        let mut agg = BytesMut::new();
        for (ty, ts, data) in [(9u8, 1000u32, &b"vid"[..]), (8, 1020, b"au")] {
            agg.put_u8(ty);
            agg.put_uint(data.len() as u64, 3);
            agg.put_uint(u64::from(ts & 0xFF_FFFF), 3);
            agg.put_u8((ts >> 24) as u8);
            agg.put_uint(1, 3);
            agg.put_slice(data);
            agg.put_u32((data.len() + 11) as u32);
        }
        let subs = split_aggregate(5000, &agg.freeze()).expect("split");
        assert_eq!(subs.len(), 2);
        assert_eq!((subs[0].type_id, subs[0].timestamp), (9, 5000));
        assert_eq!(&subs[0].payload[..], b"vid");
        assert_eq!((subs[1].type_id, subs[1].timestamp), (8, 5020));
        assert!(split_aggregate(0, &Bytes::from_static(&[9, 0, 0, 9, 0])).is_err());
        assert!(
            split_aggregate(
                0,
                &Bytes::from_static(&[9, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 0])
            )
            .is_err()
        );
    }
}
