//! The server side of an RTMP publishing session, as a sans-IO state machine.
//!
//! Call order (as in quinn-proto): [`ServerSession::handle_input`] with bytes from the socket,
//! then drain [`ServerSession::poll_event`], answer events with the application calls
//! (`accept_*` / `reject_*` / `end_publish`), and write out [`ServerSession::poll_transmit`].
//! Close the connection once [`ServerSession::wants_close`] is true and the output is flushed.
//!
//! Conversation with a publisher (OBS/librtmp, ffmpeg, GStreamer `rtmp2sink`):
//!
//! ```text
//! C0 C1 → S0 S1 S2 ← C2 →
//! [Set Chunk Size] connect(1, {app, tcUrl, …})  → Event::Connect
//!   accept_connect: Window Ack Size, Set Peer Bandwidth, Set Chunk Size, _result(NetConnection.Connect.Success)
//! releaseStream(2) → _result;  FCPublish(3) → _result + onFCPublish;  createStream(4) → _result(1)
//! publish(5, key, "live") on stream 1           → Event::Publish
//!   accept_publish: StreamBegin(1), onStatus(NetStream.Publish.Start)
//! @setDataFrame onMetaData {...}                → Event::Metadata
//! audio / video (FLV tag bodies)                → Event::Audio / Event::Video
//! FCUnpublish, deleteStream / closeStream       → Event::Unpublish
//! ```
//!
//! Choices where the spec is silent:
//! - Commands that arrive while `connect` awaits the application's answer are queued (at most
//!   [`MAX_PENDING_COMMANDS`]) and run after `accept_connect`.
//! - Audio, video and data messages on a stream that is not publishing (not yet accepted, or
//!   never published) are ignored, not errors: clients sometimes send a last packet after
//!   unpublishing.
//! - `end_publish` (server-initiated) does not produce an [`Event::Unpublish`]: the application
//!   already knows.
//! - After the session decides to close, further input is discarded.
//!
//! Enhanced RTMP (veovera E-RTMP v1, "Enhancing NetConnection connect Command"): a client that
//! lists `fourCcList` in its `connect` command object gets the video FourCCs this server
//! ingests ([`SUPPORTED_VIDEO_FOURCCS`]) back as `fourCcList` in the `_result` properties; OBS
//! 30+ then sends HEVC as E-RTMP `hvc1`. Legacy clients see the plain FMS answer.

use std::collections::{BTreeMap, VecDeque};

use bytes::{Bytes, BytesMut};

use super::RtmpError;
use super::amf0::{Object, Value};
use super::chunk::{ChunkReader, ChunkWriter, RawMessage};
use super::handshake::{HandshakeState, RANDOM_SIZE, ServerHandshake};
use super::message::{self, Command, LIMIT_TYPE_DYNAMIC, Message, UserControl, split_aggregate};
use crate::ingest::names::check_publish_name;

/// Default chunk size the server announces and uses.
pub const DEFAULT_CHUNK_SIZE: u32 = 4096;
/// Default Window Acknowledgement Size announced to the peer.
pub const DEFAULT_WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Default Set Peer Bandwidth size.
pub const DEFAULT_PEER_BANDWIDTH: u32 = 2_500_000;
/// Default largest message accepted from the peer.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 16 << 20;
/// Most message streams one connection may create.
pub const MAX_STREAMS: usize = 8;
/// Most commands queued while `connect` awaits the application.
pub const MAX_PENDING_COMMANDS: usize = 16;

/// Chunk stream for protocol control and user control messages.
const CSID_PROTOCOL_CONTROL: u32 = 2;
/// Chunk stream for command replies on stream 0.
const CSID_COMMAND: u32 = 3;
/// Chunk stream for `onStatus` on a message stream.
const CSID_STREAM_STATUS: u32 = 5;
/// `fmsVer` reported in the connect result (what clients expect from an FMS-compatible server).
const FMS_VERSION: &str = "FMS/3,0,1,123";
/// `capabilities` reported in the connect result.
const FMS_CAPABILITIES: f64 = 31.0;
/// E-RTMP video FourCCs the ingest parses (`ingest::flv`), answered as `fourCcList`.
pub const SUPPORTED_VIDEO_FOURCCS: [&str; 3] = ["hvc1", "avc1", "av01"];
/// The `connect` command object property listing a client's E-RTMP FourCCs.
const FOURCC_LIST: &str = "fourCcList";

/// Session settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    /// Chunk size the server announces and uses for its own messages (default 4096).
    pub chunk_size: u32,
    /// Window acknowledgement size announced to the peer (default 2_500_000).
    pub window_ack_size: u32,
    /// Peer bandwidth announced (Set Peer Bandwidth, limit type dynamic) (default 2_500_000).
    pub peer_bandwidth: u32,
    /// Largest message (bytes) accepted from the peer; bigger ones are a protocol error (default 16 MiB).
    pub max_message_size: usize,
}

impl Default for SessionConfig {
    fn default() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            window_ack_size: DEFAULT_WINDOW_ACK_SIZE,
            peer_bandwidth: DEFAULT_PEER_BANDWIDTH,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
        }
    }
}

/// What the session reports to the application.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// `connect` command; answer with `accept_connect` or `reject_connect`.
    Connect {
        /// The `app` property (application name), empty if absent.
        app: String,
        /// The `tcUrl` property, if present.
        tc_url: Option<String>,
        /// The whole command object (e.g. for Enhanced RTMP `fourCcList`).
        command_object: Object,
    },
    /// `publish` command; answer with `accept_publish` or `reject_publish`.
    Publish {
        /// Message stream id the publish arrived on.
        stream_id: u32,
        /// Publishing name (stream key) as sent, including any `?query`.
        stream_key: String,
        /// Publishing type (`live`, `record`, `append`); `live` if absent.
        publish_type: String,
    },
    /// `@setDataFrame onMetaData` (or bare `onMetaData`) data message.
    Metadata {
        /// Message stream id.
        stream_id: u32,
        /// The metadata properties.
        metadata: Object,
    },
    /// Audio message: FLV audio tag body.
    Audio {
        /// Message stream id.
        stream_id: u32,
        /// Absolute RTMP timestamp (ms), wrapping mod 2^32.
        timestamp: u32,
        /// FLV audio tag body.
        data: Bytes,
    },
    /// Video message: FLV video tag body.
    Video {
        /// Message stream id.
        stream_id: u32,
        /// Absolute RTMP timestamp (ms), wrapping mod 2^32.
        timestamp: u32,
        /// FLV video tag body.
        data: Bytes,
    },
    /// The publisher stopped (FCUnpublish, closeStream or deleteStream); once per publish.
    Unpublish {
        /// Message stream id.
        stream_id: u32,
    },
}

/// Progress of the `connect` exchange.
#[derive(Debug, Clone, Copy, PartialEq)]
enum ConnectState {
    /// No `connect` yet.
    AwaitConnect,
    /// `connect` reported; waiting for the application.
    Pending {
        /// Transaction id of the `connect` command, echoed in the reply.
        transaction_id: f64,
        /// The client sent `fourCcList` (Enhanced RTMP): answer with ours.
        enhanced: bool,
    },
    /// Connect accepted.
    Connected,
    /// Connect rejected; the session is closing.
    Rejected,
}

/// Publishing state of one message stream.
#[derive(Debug, Clone, PartialEq, Eq)]
enum PublishState {
    /// Created, not publishing.
    Idle,
    /// `publish` reported; waiting for the application.
    Pending {
        /// The stream key.
        stream_key: String,
    },
    /// Publishing accepted; media is forwarded.
    Publishing {
        /// The stream key.
        stream_key: String,
    },
}

impl PublishState {
    fn stream_key(&self) -> Option<&str> {
        match self {
            PublishState::Idle => None,
            PublishState::Pending { stream_key } | PublishState::Publishing { stream_key } => {
                Some(stream_key)
            }
        }
    }
}

/// Server side of one RTMP connection.
#[derive(Debug)]
pub struct ServerSession {
    /// Settings.
    config: SessionConfig,
    /// Handshake state machine (done before any chunk is read).
    handshake: ServerHandshake,
    /// Received bytes not yet consumed (at most one incomplete chunk after each call).
    input: BytesMut,
    /// De-chunker for the peer's messages.
    reader: ChunkReader,
    /// Chunker for our messages.
    writer: ChunkWriter,
    /// Bytes queued for the peer.
    output: BytesMut,
    /// Events not yet polled.
    events: VecDeque<Event>,
    /// Total bytes received from the peer.
    bytes_received: u64,
    /// Value of `bytes_received` when we last sent an Acknowledgement.
    acked_at: u64,
    /// The peer's Window Acknowledgement Size, once it sent one.
    peer_window: Option<u32>,
    /// Progress of `connect`.
    connect: ConnectState,
    /// Commands (with their message stream id) received while `connect` was pending.
    pending_commands: VecDeque<(u32, Command)>,
    /// Message streams created by `createStream`, by id.
    streams: BTreeMap<u32, PublishState>,
    /// Id returned by the next `createStream`.
    next_stream_id: u32,
    /// The session decided to close once output is flushed.
    closing: bool,
    /// An error found outside `handle_input` (replaying queued commands), reported by the next call.
    deferred_error: Option<RtmpError>,
    /// `handle_input` failed; the session is dead.
    failed: bool,
}

impl ServerSession {
    /// A session in the handshake state. `s1_random` fills S1's random field, so the machine
    /// stays deterministic (the driver passes random bytes).
    pub fn new(config: SessionConfig, s1_random: [u8; RANDOM_SIZE]) -> Self {
        Self {
            reader: ChunkReader::new(config.max_message_size),
            config,
            handshake: ServerHandshake::new(s1_random),
            input: BytesMut::new(),
            writer: ChunkWriter::new(),
            output: BytesMut::new(),
            events: VecDeque::new(),
            bytes_received: 0,
            acked_at: 0,
            peer_window: None,
            connect: ConnectState::AwaitConnect,
            pending_commands: VecDeque::new(),
            streams: BTreeMap::new(),
            next_stream_id: 1,
            closing: false,
            deferred_error: None,
            failed: false,
        }
    }

    /// Feed bytes received from the peer (any split, even 1 byte at a time). On `Err` the
    /// session is dead; the driver closes the connection. Never panics.
    pub fn handle_input(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        if self.failed {
            return Err(RtmpError::SessionClosed);
        }
        let result = match self.deferred_error.take() {
            Some(error) => Err(error),
            None => self.process(data),
        };
        if result.is_err() {
            self.failed = true;
            self.input.clear();
        }
        result
    }

    fn process(&mut self, data: &[u8]) -> Result<(), RtmpError> {
        if self.closing {
            return Ok(());
        }
        self.bytes_received += data.len() as u64;
        self.input.extend_from_slice(data);
        if self.handshake.state() != HandshakeState::Done
            && self.handshake.read(&mut self.input, &mut self.output)? != HandshakeState::Done
        {
            return Ok(());
        }
        while !self.closing {
            let Some(message) = self.reader.read_message(&mut self.input)? else {
                break;
            };
            self.on_message(message)?;
        }
        if self.closing {
            self.input.clear();
        }
        self.acknowledge();
        Ok(())
    }

    /// Next event for the application, in order.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// Bytes to write to the peer (everything queued so far), or `None`.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        (!self.output.is_empty()).then(|| self.output.split().freeze())
    }

    /// Accepts the pending `connect`: Window Ack Size, Set Peer Bandwidth, Set Chunk Size, then
    /// `_result` with NetConnection.Connect.Success. Queued commands then run.
    pub fn accept_connect(&mut self) {
        let ConnectState::Pending {
            transaction_id,
            enhanced,
        } = self.connect
        else {
            tracing::debug!("accept_connect without a pending connect");
            return;
        };
        self.connect = ConnectState::Connected;
        self.send_control(Message::WindowAckSize(self.config.window_ack_size));
        self.send_control(Message::SetPeerBandwidth {
            size: self.config.peer_bandwidth,
            limit_type: LIMIT_TYPE_DYNAMIC,
        });
        self.send_control(Message::SetChunkSize(self.config.chunk_size));
        self.writer.set_chunk_size(self.config.chunk_size);
        let mut properties = Object::new()
            .with("fmsVer", FMS_VERSION)
            .with("capabilities", FMS_CAPABILITIES);
        if enhanced {
            let fourccs = SUPPORTED_VIDEO_FOURCCS.iter().map(|&f| f.into()).collect();
            properties = properties.with(FOURCC_LIST, Value::StrictArray(fourccs));
        }
        let information = Object::new()
            .with("level", "status")
            .with("code", "NetConnection.Connect.Success")
            .with("description", "Connection succeeded.")
            .with("objectEncoding", 0.0);
        self.send_command(
            CSID_COMMAND,
            0,
            "_result",
            transaction_id,
            properties.into(),
            vec![information.into()],
        );
        while let Some((stream_id, command)) = self.pending_commands.pop_front() {
            if let Err(error) = self.on_command(stream_id, command) {
                self.deferred_error = Some(error);
                self.closing = true;
                self.pending_commands.clear();
            }
        }
    }

    /// Rejects the pending `connect`: `_error` NetConnection.Connect.Rejected, then closes.
    pub fn reject_connect(&mut self, description: &str) {
        let ConnectState::Pending { transaction_id, .. } = self.connect else {
            tracing::debug!("reject_connect without a pending connect");
            self.closing = true;
            return;
        };
        self.connect = ConnectState::Rejected;
        let information = Object::new()
            .with("level", "error")
            .with("code", "NetConnection.Connect.Rejected")
            .with("description", description);
        self.send_command(
            CSID_COMMAND,
            0,
            "_error",
            transaction_id,
            Value::Null,
            vec![information.into()],
        );
        self.closing = true;
    }

    /// Accepts the pending `publish` on `stream_id`: StreamBegin, then onStatus
    /// NetStream.Publish.Start. Media on the stream is forwarded from then on.
    pub fn accept_publish(&mut self, stream_id: u32) {
        let Some(state) = self.streams.get_mut(&stream_id) else {
            tracing::debug!(stream_id, "accept_publish on unknown stream");
            return;
        };
        let PublishState::Pending { stream_key } = state else {
            tracing::debug!(stream_id, "accept_publish without a pending publish");
            return;
        };
        let stream_key = std::mem::take(stream_key);
        let description = format!("{stream_key} is now published.");
        *state = PublishState::Publishing {
            stream_key: stream_key.clone(),
        };
        self.send_control(Message::UserControl(UserControl::StreamBegin(stream_id)));
        let info = Object::new()
            .with("level", "status")
            .with("code", "NetStream.Publish.Start")
            .with("description", description)
            .with("details", stream_key);
        self.send_on_status(stream_id, info);
    }

    /// Rejects the pending `publish` on `stream_id` with onStatus level "error" and `code`
    /// (e.g. "NetStream.Publish.BadName"), then closes.
    pub fn reject_publish(&mut self, stream_id: u32, code: &str, description: &str) {
        if let Some(state) = self.streams.get_mut(&stream_id) {
            *state = PublishState::Idle;
            let info = Object::new()
                .with("level", "error")
                .with("code", code)
                .with("description", description);
            self.send_on_status(stream_id, info);
        }
        self.closing = true;
    }

    /// Server-initiated end of a publish (e.g. shutdown): onStatus NetStream.Unpublish.Success
    /// on that stream, then closes. No [`Event::Unpublish`] follows.
    pub fn end_publish(&mut self, stream_id: u32, description: &str) {
        if let Some(state) = self.streams.get_mut(&stream_id)
            && *state != PublishState::Idle
        {
            *state = PublishState::Idle;
            let info = Object::new()
                .with("level", "status")
                .with("code", "NetStream.Unpublish.Success")
                .with("description", description);
            self.send_on_status(stream_id, info);
        }
        self.closing = true;
    }

    /// True once the session has decided the connection should close (after the queued bytes
    /// are flushed), or after an error.
    pub fn wants_close(&self) -> bool {
        self.closing || self.failed
    }

    /// Why the session closes, when a command queued during `connect` failed as it was
    /// replayed by `accept_connect` (otherwise reported by the next `handle_input`): the driver
    /// asks once [`Self::wants_close`] is true. Taking it marks the session failed.
    pub fn take_deferred_error(&mut self) -> Option<RtmpError> {
        let error = self.deferred_error.take();
        if error.is_some() {
            self.failed = true;
            self.input.clear();
        }
        error
    }

    /// Bytes held by the session's input buffers (for bounded-memory tests and metrics).
    pub fn buffered_input(&self) -> usize {
        self.input.len() + self.reader.buffered()
    }

    fn acknowledge(&mut self) {
        let Some(window) = self.peer_window else {
            return;
        };
        if self.bytes_received - self.acked_at >= u64::from(window) {
            self.acked_at = self.bytes_received;
            // The sequence number is the byte count so far, wrapping at 32 bits.
            self.send_control(Message::Acknowledgement(self.bytes_received as u32));
        }
    }

    fn on_message(&mut self, raw: RawMessage) -> Result<(), RtmpError> {
        let RawMessage {
            timestamp,
            type_id,
            stream_id,
            payload,
            ..
        } = raw;
        match Message::decode(type_id, payload)? {
            Message::SetChunkSize(size) => self.reader.set_chunk_size(size)?,
            Message::Abort(csid) => self.reader.abort(csid),
            Message::WindowAckSize(size) => self.peer_window = (size > 0).then_some(size),
            Message::UserControl(UserControl::PingRequest(ts)) => {
                self.send_control(Message::UserControl(UserControl::PingResponse(ts)));
            }
            Message::Audio(data) => self.on_media(stream_id, timestamp, data, false),
            Message::Video(data) => self.on_media(stream_id, timestamp, data, true),
            Message::Data(values) => self.on_data(stream_id, values),
            Message::Command(command) => self.on_command(stream_id, command)?,
            Message::Aggregate(payload) => {
                for sub in split_aggregate(timestamp, &payload)? {
                    match sub.type_id {
                        message::type_id::AUDIO => {
                            self.on_media(stream_id, sub.timestamp, sub.payload, false);
                        }
                        message::type_id::VIDEO => {
                            self.on_media(stream_id, sub.timestamp, sub.payload, true);
                        }
                        message::type_id::DATA_AMF0 => {
                            let values = super::amf0::decode_all(&sub.payload)?;
                            self.on_data(stream_id, values);
                        }
                        other => tracing::debug!(other, "ignoring aggregate sub-message"),
                    }
                }
            }
            Message::Acknowledgement(_)
            | Message::SetPeerBandwidth { .. }
            | Message::UserControl(_)
            | Message::Unknown { .. } => {}
        }
        Ok(())
    }

    fn is_publishing(&self, stream_id: u32) -> bool {
        matches!(
            self.streams.get(&stream_id),
            Some(PublishState::Publishing { .. })
        )
    }

    fn on_media(&mut self, stream_id: u32, timestamp: u32, data: Bytes, video: bool) {
        if !self.is_publishing(stream_id) {
            tracing::trace!(
                stream_id,
                "ignoring media on a stream that is not publishing"
            );
            return;
        }
        self.events.push_back(if video {
            Event::Video {
                stream_id,
                timestamp,
                data,
            }
        } else {
            Event::Audio {
                stream_id,
                timestamp,
                data,
            }
        });
    }

    fn on_data(&mut self, stream_id: u32, values: Vec<Value>) {
        let mut values = values.into_iter().peekable();
        if values.peek().and_then(Value::as_str) == Some("@setDataFrame") {
            values.next();
        }
        if values.next().as_ref().and_then(Value::as_str) != Some("onMetaData") {
            return;
        }
        let metadata = match values.next() {
            Some(Value::Object(o) | Value::EcmaArray(o)) => o,
            _ => return,
        };
        if self.is_publishing(stream_id) {
            self.events.push_back(Event::Metadata {
                stream_id,
                metadata,
            });
        }
    }

    fn on_command(&mut self, stream_id: u32, command: Command) -> Result<(), RtmpError> {
        match (self.connect, command.name.as_str()) {
            (ConnectState::AwaitConnect, "connect") => self.on_connect(command),
            (ConnectState::AwaitConnect, _) => {
                Err(RtmpError::ProtocolViolation("command before connect"))
            }
            (_, "connect") => Err(RtmpError::ProtocolViolation("second connect")),
            (ConnectState::Pending { .. }, _) => {
                if self.pending_commands.len() >= MAX_PENDING_COMMANDS {
                    return Err(RtmpError::TooManyPendingCommands(MAX_PENDING_COMMANDS));
                }
                self.pending_commands.push_back((stream_id, command));
                Ok(())
            }
            (ConnectState::Rejected, _) => Ok(()),
            (ConnectState::Connected, _) => self.on_connected_command(stream_id, command),
        }
    }

    fn on_connect(&mut self, command: Command) -> Result<(), RtmpError> {
        let Value::Object(command_object) = command.command_object else {
            return Err(RtmpError::ProtocolViolation(
                "connect without a command object",
            ));
        };
        self.connect = ConnectState::Pending {
            transaction_id: command.transaction_id,
            enhanced: command_object.get(FOURCC_LIST).is_some(),
        };
        self.events.push_back(Event::Connect {
            app: command_object.get_str("app").unwrap_or_default().to_owned(),
            tc_url: command_object.get_str("tcUrl").map(str::to_owned),
            command_object,
        });
        Ok(())
    }

    fn on_connected_command(&mut self, stream_id: u32, command: Command) -> Result<(), RtmpError> {
        let txn = command.transaction_id;
        let first_arg = command.arguments.first();
        match command.name.as_str() {
            "releaseStream" => self.send_result(txn, Value::Undefined),
            "FCPublish" => {
                self.send_result(txn, Value::Undefined);
                // Echoed back only when it is a name `publish` would accept.
                let name = first_arg
                    .and_then(Value::as_str)
                    .filter(|name| check_publish_name(name).is_ok())
                    .unwrap_or_default();
                let info = Object::new()
                    .with("code", "NetStream.Publish.Start")
                    .with("description", name);
                self.send_command(
                    CSID_COMMAND,
                    0,
                    "onFCPublish",
                    0.0,
                    Value::Null,
                    vec![info.into()],
                );
            }
            "createStream" => {
                if self.streams.len() >= MAX_STREAMS {
                    return Err(RtmpError::TooManyStreams(MAX_STREAMS));
                }
                let id = self.next_stream_id;
                self.next_stream_id = self.next_stream_id.wrapping_add(1).max(1);
                self.streams.insert(id, PublishState::Idle);
                self.send_result(txn, Value::Number(f64::from(id)));
            }
            "publish" => self.on_publish(stream_id, &command)?,
            "FCUnpublish" => {
                let name = first_arg.and_then(Value::as_str).unwrap_or_default();
                let stream = self
                    .streams
                    .iter()
                    .find(|(_, s)| s.stream_key() == Some(name))
                    .map(|(id, _)| *id);
                if let Some(id) = stream {
                    self.stop_publishing(id);
                }
                self.send_result(txn, Value::Undefined);
                let info = Object::new()
                    .with("code", "NetStream.Unpublish.Success")
                    .with("description", name);
                self.send_command(
                    CSID_COMMAND,
                    0,
                    "onFCUnpublish",
                    0.0,
                    Value::Null,
                    vec![info.into()],
                );
            }
            "closeStream" => self.stop_publishing(stream_id),
            "deleteStream" => {
                let id = first_arg.and_then(Value::as_number).unwrap_or(-1.0);
                if id >= 0.0 && id <= f64::from(u32::MAX) {
                    let id = id as u32;
                    self.stop_publishing(id);
                    self.streams.remove(&id);
                }
            }
            // Replies and status messages from the client need no answer.
            "_result" | "_error" | "onStatus" => {}
            // getStreamLength, checkbw, play, and anything else.
            other => {
                tracing::debug!(command = other, "unsupported RTMP command");
                if txn != 0.0 {
                    let info = Object::new()
                        .with("level", "error")
                        .with("code", "NetConnection.Call.Failed")
                        .with("description", "Method not supported.");
                    self.send_command(
                        CSID_COMMAND,
                        0,
                        "_error",
                        txn,
                        Value::Null,
                        vec![info.into()],
                    );
                }
            }
        }
        Ok(())
    }

    fn on_publish(&mut self, stream_id: u32, command: &Command) -> Result<(), RtmpError> {
        let Some(state) = self.streams.get_mut(&stream_id) else {
            return Err(RtmpError::UnknownStream(stream_id));
        };
        if *state != PublishState::Idle {
            return Err(RtmpError::ProtocolViolation(
                "publish on a stream that is already publishing",
            ));
        }
        let mut args = command.arguments.iter();
        let Some(stream_key) = args.next().and_then(Value::as_str) else {
            return Err(RtmpError::ProtocolViolation("publish without a name"));
        };
        // Refused before the application sees the name (no lookup, no path, no log of it).
        if let Err(reason) = check_publish_name(stream_key) {
            let info = Object::new()
                .with("level", "error")
                .with("code", "NetStream.Publish.BadName")
                .with("description", format!("refused stream name: {reason}"));
            self.send_on_status(stream_id, info);
            return Err(RtmpError::BadStreamName(reason));
        }
        let publish_type = args.next().and_then(Value::as_str).unwrap_or("live");
        *state = PublishState::Pending {
            stream_key: stream_key.to_owned(),
        };
        self.events.push_back(Event::Publish {
            stream_id,
            stream_key: stream_key.to_owned(),
            publish_type: publish_type.to_owned(),
        });
        Ok(())
    }

    /// Ends a pending or active publish on `stream_id`, emitting [`Event::Unpublish`] once.
    fn stop_publishing(&mut self, stream_id: u32) {
        if let Some(state) = self.streams.get_mut(&stream_id)
            && *state != PublishState::Idle
        {
            *state = PublishState::Idle;
            self.events.push_back(Event::Unpublish { stream_id });
        }
    }

    fn send_control(&mut self, message: Message) {
        let (type_id, payload) = message.encode();
        self.writer.write(
            &mut self.output,
            CSID_PROTOCOL_CONTROL,
            0,
            type_id,
            0,
            &payload,
        );
    }

    fn send_command(
        &mut self,
        csid: u32,
        stream_id: u32,
        name: &str,
        transaction_id: f64,
        command_object: Value,
        arguments: Vec<Value>,
    ) {
        let (type_id, payload) = Message::Command(Command {
            name: name.to_owned(),
            transaction_id,
            command_object,
            arguments,
        })
        .encode();
        self.writer
            .write(&mut self.output, csid, 0, type_id, stream_id, &payload);
    }

    /// `_result` for transaction `txn` with a null command object and one value; nothing when
    /// the transaction id is 0 (no reply expected).
    fn send_result(&mut self, txn: f64, value: Value) {
        if txn != 0.0 {
            self.send_command(CSID_COMMAND, 0, "_result", txn, Value::Null, vec![value]);
        }
    }

    fn send_on_status(&mut self, stream_id: u32, info: Object) {
        self.send_command(
            CSID_STREAM_STATUS,
            stream_id,
            "onStatus",
            0.0,
            Value::Null,
            vec![info.into()],
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::rtmp::chunk::ChunkWriter;
    use crate::ingest::rtmp::handshake::HANDSHAKE_SIZE;
    use crate::testing::XorShift;

    const KEY: &str = "live_abc?token=1";
    const TC_URL: &str = "rtmp://localhost:1935/live";

    /// Builds client bytes with our own chunk writer and AMF0 encoder.
    struct Client {
        writer: ChunkWriter,
        out: BytesMut,
    }

    impl Client {
        fn new() -> Self {
            Self {
                writer: ChunkWriter::new(),
                out: BytesMut::new(),
            }
        }

        fn message(&mut self, csid: u32, timestamp: u32, stream_id: u32, message: Message) {
            let (type_id, payload) = message.encode();
            self.writer
                .write(&mut self.out, csid, timestamp, type_id, stream_id, &payload);
        }

        fn command(&mut self, csid: u32, stream_id: u32, name: &str, txn: f64, args: Vec<Value>) {
            let mut args = args.into_iter();
            let command_object = args.next().unwrap_or(Value::Null);
            self.message(
                csid,
                0,
                stream_id,
                Message::Command(Command {
                    name: name.into(),
                    transaction_id: txn,
                    command_object,
                    arguments: args.collect(),
                }),
            );
        }

        fn set_chunk_size(&mut self, size: u32) {
            self.message(2, 0, 0, Message::SetChunkSize(size));
            self.writer.set_chunk_size(size);
        }

        fn take(&mut self) -> Vec<u8> {
            self.out.split().to_vec()
        }
    }

    fn video_tag(key: bool, len: usize) -> Bytes {
        let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        v.extend((0..len).map(|i| i as u8));
        Bytes::from(v)
    }

    /// What ffmpeg 5.1 (`-f flv rtmp://…`) sends, in the phases it waits for replies between.
    fn ffmpeg_phases(media_frames: usize) -> Vec<Vec<u8>> {
        let mut c = Client::new();
        let mut phases = Vec::new();
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| (i * 7) as u8));
        phases.push(c0c1);

        let mut p = vec![0x55u8; HANDSHAKE_SIZE]; // C2
        let connect = Object::new()
            .with("app", "live")
            .with("type", "nonprivate")
            .with("flashVer", "FMLE/3.0 (compatible; Lavf59.27.100)")
            .with("tcUrl", TC_URL);
        c.command(3, 0, "connect", 1.0, vec![connect.into()]);
        p.extend(c.take());
        phases.push(p);

        // ffmpeg echoes the server's Set Chunk Size (handle_chunk_size) before its next commands.
        c.set_chunk_size(4096);

        c.command(3, 0, "releaseStream", 2.0, vec![Value::Null, KEY.into()]);
        c.command(3, 0, "FCPublish", 3.0, vec![Value::Null, KEY.into()]);
        c.command(3, 0, "createStream", 4.0, vec![Value::Null]);
        phases.push(c.take());

        c.command(
            8,
            1,
            "publish",
            5.0,
            vec![Value::Null, KEY.into(), "live".into()],
        );
        phases.push(c.take());

        let metadata = Object::new()
            .with("width", 1280.0)
            .with("height", 720.0)
            .with("encoder", "Lavf59.27.100");
        c.message(
            4,
            0,
            1,
            Message::Data(vec![
                "@setDataFrame".into(),
                "onMetaData".into(),
                Value::EcmaArray(metadata),
            ]),
        );
        c.message(
            6,
            0,
            1,
            Message::Video(Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 0x64])),
        );
        c.message(
            4,
            0,
            1,
            Message::Audio(Bytes::from_static(&[0xAF, 0, 0x12, 0x10])),
        );
        for i in 0..media_frames {
            let ts = i as u32 * 33;
            c.message(6, ts, 1, Message::Video(video_tag(i == 0, 5000 + i)));
            c.message(
                4,
                ts,
                1,
                Message::Audio(Bytes::from_static(&[0xAF, 1, 0x21])),
            );
        }
        c.command(3, 0, "FCUnpublish", 6.0, vec![Value::Null, KEY.into()]);
        c.command(3, 0, "deleteStream", 7.0, vec![Value::Null, 1.0.into()]);
        phases.push(c.take());
        phases
    }

    /// How the test application answers events.
    #[derive(Clone, Copy, PartialEq)]
    enum Answer {
        Accept,
        RejectConnect,
        RejectPublish,
    }

    /// Drives a session like the async driver, answering events.
    struct Harness {
        session: ServerSession,
        events: Vec<Event>,
        output: BytesMut,
        answer: Answer,
    }

    impl Harness {
        fn new(config: SessionConfig, answer: Answer) -> Self {
            Self {
                session: ServerSession::new(config, [0xA5; RANDOM_SIZE]),
                events: Vec::new(),
                output: BytesMut::new(),
                answer,
            }
        }

        /// Feeds `data` in random slices (1 byte up to `max_slice`).
        fn feed(
            &mut self,
            data: &[u8],
            rng: &mut XorShift,
            max_slice: usize,
        ) -> Result<(), RtmpError> {
            let mut rest = data;
            while !rest.is_empty() {
                let n = (1 + rng.below(max_slice)).min(rest.len());
                let (slice, tail) = rest.split_at(n);
                rest = tail;
                self.session.handle_input(slice)?;
                self.drain();
                assert!(
                    self.session.buffered_input() <= 2 * 65_536 * MAX_PARTIAL_CHUNK_STREAMS_TEST
                );
            }
            Ok(())
        }

        fn drain(&mut self) {
            while let Some(event) = self.session.poll_event() {
                match (&event, self.answer) {
                    (Event::Connect { .. }, Answer::RejectConnect) => {
                        self.session.reject_connect("not allowed");
                    }
                    (Event::Connect { .. }, _) => self.session.accept_connect(),
                    (Event::Publish { stream_id, .. }, Answer::RejectPublish) => {
                        self.session.reject_publish(
                            *stream_id,
                            "NetStream.Publish.BadName",
                            "bad key",
                        );
                    }
                    (Event::Publish { stream_id, .. }, _) => {
                        self.session.accept_publish(*stream_id)
                    }
                    _ => {}
                }
                self.events.push(event);
            }
            while let Some(bytes) = self.session.poll_transmit() {
                self.output.extend_from_slice(&bytes);
            }
        }
    }

    /// Bound used by the harness' memory assertion (chunk streams × message limit).
    const MAX_PARTIAL_CHUNK_STREAMS_TEST: usize =
        crate::ingest::rtmp::chunk::MAX_PARTIAL_CHUNK_STREAMS;

    /// Parses the server's bytes with our own reader: S0 S1 S2, then messages.
    fn server_messages(output: &[u8]) -> Vec<(u32, u32, Message)> {
        assert_eq!(output.first(), Some(&3));
        let mut input = BytesMut::from(&output[1 + 2 * HANDSHAKE_SIZE..]);
        let mut reader = ChunkReader::new(1 << 20);
        let mut out = Vec::new();
        while let Some(raw) = reader
            .read_message(&mut input)
            .expect("server output decodes")
        {
            let message = Message::decode(raw.type_id, raw.payload).expect("message decodes");
            if let Message::SetChunkSize(size) = message {
                reader.set_chunk_size(size).expect("valid chunk size");
            }
            out.push((raw.csid, raw.stream_id, message));
        }
        assert!(input.is_empty(), "server output ends on a message boundary");
        out
    }

    fn commands(messages: &[(u32, u32, Message)]) -> Vec<(u32, Command)> {
        messages
            .iter()
            .filter_map(|(_, sid, m)| match m {
                Message::Command(c) => Some((*sid, c.clone())),
                _ => None,
            })
            .collect()
    }

    fn run_phases(harness: &mut Harness, phases: &[Vec<u8>], rng: &mut XorShift, max_slice: usize) {
        for phase in phases {
            harness.feed(phase, rng, max_slice).expect("valid session");
        }
    }

    #[test]
    fn ffmpeg_publish_in_random_slices() {
        let phases = ffmpeg_phases(3);
        for seed in 1..=30u64 {
            let mut rng = XorShift(seed * 0x9E37_79B9);
            let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
            let max_slice = if seed == 1 { 1 } else { 1 + rng.below(3000) };
            run_phases(&mut h, &phases, &mut rng, max_slice);
            check_publish(&h);
        }
    }

    fn check_publish(h: &Harness) {
        let events = &h.events;
        assert!(matches!(
            &events[0],
            Event::Connect { app, tc_url: Some(tc), command_object }
                if app == "live" && tc == TC_URL && command_object.get_str("type") == Some("nonprivate")
        ));
        assert_eq!(
            events[1],
            Event::Publish {
                stream_id: 1,
                stream_key: KEY.into(),
                publish_type: "live".into()
            }
        );
        assert!(
            matches!(&events[2], Event::Metadata { stream_id: 1, metadata }
            if metadata.get("width") == Some(&Value::Number(1280.0)))
        );
        assert!(
            matches!(&events[3], Event::Video { stream_id: 1, timestamp: 0, data } if data.len() == 7)
        );
        assert!(matches!(
            &events[4],
            Event::Audio {
                stream_id: 1,
                timestamp: 0,
                ..
            }
        ));
        let videos: Vec<_> = events
            .iter()
            .filter_map(|e| match e {
                Event::Video {
                    timestamp, data, ..
                } => Some((*timestamp, data.len())),
                _ => None,
            })
            .collect();
        assert_eq!(videos, vec![(0, 7), (0, 5005), (33, 5006), (66, 5007)]);
        let unpublishes = events
            .iter()
            .filter(|e| matches!(e, Event::Unpublish { .. }))
            .count();
        assert_eq!(unpublishes, 1);
        assert_eq!(events.last(), Some(&Event::Unpublish { stream_id: 1 }));

        let messages = server_messages(&h.output);
        let control: Vec<_> = messages.iter().take(3).map(|(_, _, m)| m.clone()).collect();
        assert_eq!(
            control,
            vec![
                Message::WindowAckSize(DEFAULT_WINDOW_ACK_SIZE),
                Message::SetPeerBandwidth {
                    size: DEFAULT_PEER_BANDWIDTH,
                    limit_type: 2
                },
                Message::SetChunkSize(4096),
            ]
        );
        let cmds = commands(&messages);
        let (_, connect) = &cmds[0];
        assert_eq!(
            (connect.name.as_str(), connect.transaction_id),
            ("_result", 1.0)
        );
        assert_eq!(connect.status_code(), Some("NetConnection.Connect.Success"));
        assert_eq!(
            connect
                .command_object
                .as_object()
                .and_then(|o| o.get_str("fmsVer")),
            Some(FMS_VERSION)
        );
        let create = cmds
            .iter()
            .find(|(_, c)| c.transaction_id == 4.0)
            .expect("createStream result");
        assert_eq!(create.1.name, "_result");
        assert_eq!(create.1.arguments, vec![Value::Number(1.0)]);
        assert!(cmds.iter().any(|(_, c)| c.name == "onFCPublish"));
        assert!(cmds.iter().any(|(_, c)| c.name == "onFCUnpublish"));
        let status = cmds
            .iter()
            .find(|(_, c)| c.name == "onStatus")
            .expect("onStatus");
        assert_eq!(status.0, 1);
        assert_eq!(status.1.status_code(), Some("NetStream.Publish.Start"));
        assert!(
            messages.iter().any(|(csid, _, m)| *csid == 2
                && *m == Message::UserControl(UserControl::StreamBegin(1)))
        );
        assert!(!h.session.wants_close());
    }

    #[test]
    fn pipelined_commands_wait_for_accept_connect() {
        let phases = ffmpeg_phases(1);
        let mut rng = XorShift(7);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        h.feed(&phases[0], &mut rng, 10_000).expect("c0c1");
        // C2, connect, releaseStream, FCPublish, createStream, publish in one read.
        let pipelined: Vec<u8> = phases[1..4].concat();
        h.session.handle_input(&pipelined).expect("valid");
        assert!(matches!(
            h.session.poll_event(),
            Some(Event::Connect { .. })
        ));
        assert_eq!(h.session.poll_event(), None);
        h.session.accept_connect();
        assert!(matches!(
            h.session.poll_event(),
            Some(Event::Publish { stream_id: 1, .. })
        ));
        h.drain();
        let cmds = commands(&server_messages(&h.output));
        let names: Vec<_> = cmds
            .iter()
            .map(|(_, c)| (c.name.as_str(), c.transaction_id))
            .collect();
        assert_eq!(
            names,
            vec![
                ("_result", 1.0),
                ("_result", 2.0),
                ("_result", 3.0),
                ("onFCPublish", 0.0),
                ("_result", 4.0)
            ]
        );
    }

    #[test]
    fn reject_publish_sends_bad_name_and_closes() {
        let phases = ffmpeg_phases(1);
        let mut rng = XorShift(11);
        let mut h = Harness::new(SessionConfig::default(), Answer::RejectPublish);
        run_phases(&mut h, &phases[..4], &mut rng, 100);
        assert!(h.session.wants_close());
        let cmds = commands(&server_messages(&h.output));
        let (sid, status) = cmds.last().expect("onStatus");
        assert_eq!((*sid, status.name.as_str()), (1, "onStatus"));
        assert_eq!(status.status_code(), Some("NetStream.Publish.BadName"));
        let level = status.arguments[0]
            .as_object()
            .and_then(|o| o.get_str("level"));
        assert_eq!(level, Some("error"));
        // Media after the rejection is discarded.
        h.feed(&phases[4], &mut rng, 100).expect("ignored");
        assert_eq!(h.events.len(), 2);
    }

    /// C0 C1, then C2 + `connect` with the given command object.
    fn connect_phases(connect: Object) -> Vec<Vec<u8>> {
        let mut c = Client::new();
        let mut c0c1 = vec![3u8];
        c0c1.extend((0..HANDSHAKE_SIZE).map(|i| (i * 7) as u8));
        let mut p = vec![0x55u8; HANDSHAKE_SIZE];
        c.command(3, 0, "connect", 1.0, vec![connect.into()]);
        p.extend(c.take());
        vec![c0c1, p]
    }

    fn connect_result_properties(h: &Harness) -> Object {
        let cmds = commands(&server_messages(&h.output));
        let (_, result) = cmds
            .iter()
            .find(|(_, c)| c.name == "_result" && c.transaction_id == 1.0)
            .expect("connect _result");
        assert_eq!(result.status_code(), Some("NetConnection.Connect.Success"));
        result
            .command_object
            .as_object()
            .expect("properties")
            .clone()
    }

    #[test]
    fn enhanced_connect_gets_the_supported_fourcc_list() {
        // As OBS 30 sends it.
        let connect = Object::new()
            .with("app", "live")
            .with("type", "nonprivate")
            .with("flashVer", "FMLE/3.0 (compatible; FMSc/1.0)")
            .with("tcUrl", TC_URL)
            .with(
                "fourCcList",
                Value::StrictArray(vec!["av01".into(), "vp09".into(), "hvc1".into()]),
            );
        let mut rng = XorShift(21);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &connect_phases(connect), &mut rng, 100);
        let Some(Event::Connect { command_object, .. }) = h.events.first() else {
            panic!("expected a connect event");
        };
        assert!(command_object.get("fourCcList").is_some());
        let properties = connect_result_properties(&h);
        assert_eq!(properties.get_str("fmsVer"), Some(FMS_VERSION));
        assert_eq!(
            properties.get("fourCcList"),
            Some(&Value::StrictArray(vec![
                "hvc1".into(),
                "avc1".into(),
                "av01".into()
            ]))
        );

        // A legacy client gets no fourCcList.
        let legacy = Object::new().with("app", "live").with("tcUrl", TC_URL);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &connect_phases(legacy), &mut rng, 100);
        assert_eq!(connect_result_properties(&h).get("fourCcList"), None);
    }

    #[test]
    fn reject_connect_sends_error_and_closes() {
        let phases = ffmpeg_phases(1);
        let mut rng = XorShift(13);
        let mut h = Harness::new(SessionConfig::default(), Answer::RejectConnect);
        run_phases(&mut h, &phases[..2], &mut rng, 100);
        assert!(h.session.wants_close());
        let cmds = commands(&server_messages(&h.output));
        assert_eq!(cmds.len(), 1);
        assert_eq!(
            (cmds[0].1.name.as_str(), cmds[0].1.transaction_id),
            ("_error", 1.0)
        );
        assert_eq!(
            cmds[0].1.status_code(),
            Some("NetConnection.Connect.Rejected")
        );
    }

    #[test]
    fn end_publish_sends_unpublish_success_without_event() {
        let phases = ffmpeg_phases(1);
        let mut rng = XorShift(17);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..4], &mut rng, 100);
        h.session.end_publish(1, "server shutting down");
        assert!(h.session.wants_close());
        h.drain();
        let cmds = commands(&server_messages(&h.output));
        let (sid, status) = cmds.last().expect("onStatus");
        assert_eq!(*sid, 1);
        assert_eq!(status.status_code(), Some("NetStream.Unpublish.Success"));
        h.feed(&phases[4], &mut rng, 100).expect("ignored");
        assert!(
            !h.events
                .iter()
                .any(|e| matches!(e, Event::Unpublish { .. }))
        );
    }

    #[test]
    fn acknowledgements_follow_the_peer_window() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(19);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..4], &mut rng, 10_000);
        let mut c = Client::new();
        c.set_chunk_size(4096);
        c.message(2, 0, 0, Message::WindowAckSize(10_000));
        h.feed(&c.take(), &mut rng, 10_000).expect("window");
        let before = h.session.bytes_received;
        for i in 0..10u32 {
            c.message(6, i * 33, 1, Message::Video(video_tag(false, 3000)));
        }
        let media = c.take();
        h.feed(&media, &mut rng, 500).expect("media");
        let acks: Vec<u32> = server_messages(&h.output)
            .into_iter()
            .filter_map(|(_, _, m)| match m {
                Message::Acknowledgement(n) => Some(n),
                _ => None,
            })
            .collect();
        let total = before + media.len() as u64;
        assert_eq!(acks.len() as u64, total / 10_000, "acks: {acks:?}");
        assert!(acks.windows(2).all(|w| w[1] - w[0] >= 10_000));
        assert!(acks.iter().all(|&n| u64::from(n) <= total));
    }

    #[test]
    fn aggregate_messages_are_split_into_media_events() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(37);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..4], &mut rng, 10_000);
        let mut agg = BytesMut::new();
        for (ty, ts, data) in [
            (9u8, 100u32, &b"\x27\x01\0\0\0v"[..]),
            (8, 110, b"\xaf\x01a"),
        ] {
            agg.extend_from_slice(&[ty, 0, 0, data.len() as u8]);
            agg.extend_from_slice(&ts.to_be_bytes()[1..]);
            agg.extend_from_slice(&[0, 0, 0, 1]);
            agg.extend_from_slice(data);
            agg.extend_from_slice(&(data.len() as u32 + 11).to_be_bytes());
        }
        let mut c = Client::new();
        c.writer.set_chunk_size(4096);
        c.message(6, 2000, 1, Message::Aggregate(agg.freeze()));
        h.feed(&c.take(), &mut rng, 7).expect("aggregate");
        let media: Vec<_> = h.events[2..]
            .iter()
            .map(|e| match e {
                Event::Video { timestamp, .. } => ("video", *timestamp),
                Event::Audio { timestamp, .. } => ("audio", *timestamp),
                _ => ("other", 0),
            })
            .collect();
        assert_eq!(media, vec![("video", 2000), ("audio", 2010)]);
    }

    #[test]
    fn ping_request_gets_a_response() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(23);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..2], &mut rng, 10_000);
        let mut c = Client::new();
        c.writer.set_chunk_size(4096);
        c.message(2, 0, 0, Message::UserControl(UserControl::PingRequest(42)));
        h.feed(&c.take(), &mut rng, 10).expect("ping");
        let messages = server_messages(&h.output);
        assert!(
            messages
                .iter()
                .any(|(_, _, m)| *m == Message::UserControl(UserControl::PingResponse(42)))
        );
    }

    #[test]
    fn protocol_violations() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(29);

        // A command before connect.
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        h.feed(&phases[0], &mut rng, 10_000).expect("c0c1");
        let mut c = Client::new();
        c.command(3, 0, "createStream", 2.0, vec![Value::Null]);
        let mut bytes = vec![0u8; HANDSHAKE_SIZE];
        bytes.extend(c.take());
        assert_eq!(
            h.session.handle_input(&bytes),
            Err(RtmpError::ProtocolViolation("command before connect"))
        );
        assert!(h.session.wants_close());
        assert_eq!(h.session.handle_input(&[0]), Err(RtmpError::SessionClosed));

        // publish on a stream id never created.
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..3], &mut rng, 10_000);
        let mut c = Client::new();
        c.writer.set_chunk_size(4096);
        c.command(8, 7, "publish", 5.0, vec![Value::Null, KEY.into()]);
        assert_eq!(
            h.feed(&c.take(), &mut rng, 10_000),
            Err(RtmpError::UnknownStream(7))
        );

        // Bad handshake version.
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        assert_eq!(
            h.session.handle_input(&[6]),
            Err(RtmpError::BadHandshakeVersion(6))
        );

        // Set Chunk Size with the top bit set.
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..2], &mut rng, 10_000);
        let mut c = Client::new();
        c.writer.set_chunk_size(4096);
        c.message(
            2,
            0,
            0,
            Message::Unknown {
                type_id: 1,
                payload: Bytes::from_static(&[0x80, 0, 0, 0]),
            },
        );
        assert_eq!(
            h.feed(&c.take(), &mut rng, 10_000),
            Err(RtmpError::BadChunkSize(0x8000_0000))
        );
    }

    #[test]
    fn hostile_publish_names_are_refused_before_the_application_sees_them() {
        let phases = ffmpeg_phases(0);
        let long = "k".repeat(10 * 1024);
        for name in [
            long.as_str(),
            "../../etc/passwd",
            "%2e%2e%2fx",
            "demo-key\0",
        ] {
            let mut rng = XorShift(37);
            let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
            run_phases(&mut h, &phases[..3], &mut rng, 10_000);
            let mut c = Client::new();
            c.writer.set_chunk_size(4096);
            c.command(8, 1, "publish", 5.0, vec![Value::Null, name.into()]);
            let result = h.feed(&c.take(), &mut rng, 10_000);
            assert!(
                matches!(result, Err(RtmpError::BadStreamName(_))),
                "{name:?}: {result:?}"
            );
            h.drain();
            assert!(h.session.wants_close());
            assert!(
                !h.events.iter().any(|e| matches!(e, Event::Publish { .. })),
                "{name:?} reached the application"
            );
            let replies = commands(&server_messages(&h.output));
            let (sid, status) = replies.last().expect("a reply");
            assert_eq!((*sid, status.name.as_str()), (1, "onStatus"));
            let Some(Value::Object(info)) = status.arguments.first() else {
                panic!("onStatus without info: {status:?}");
            };
            assert_eq!(info.get_str("code"), Some("NetStream.Publish.BadName"));
        }
    }

    #[test]
    fn hostile_name_pipelined_before_connect_is_answered_is_reported() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(39);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        h.feed(&phases[0], &mut rng, 10_000).expect("c0c1");
        // C2, connect, createStream and publish in one read: publish is queued until the
        // application accepts connect, and fails when replayed.
        let mut bytes = phases[1].clone();
        bytes.extend(&phases[2]);
        let mut c = Client::new();
        c.writer.set_chunk_size(4096);
        c.command(8, 1, "publish", 5.0, vec![Value::Null, "../x".into()]);
        bytes.extend(c.take());
        h.session.handle_input(&bytes).expect("queued");
        h.drain();
        assert!(h.session.wants_close());
        assert_eq!(
            h.session.take_deferred_error(),
            Some(RtmpError::BadStreamName("path separator in the key"))
        );
        assert_eq!(h.session.handle_input(&[0]), Err(RtmpError::SessionClosed));
        assert!(!h.events.iter().any(|e| matches!(e, Event::Publish { .. })));
    }

    #[test]
    fn set_chunk_size_out_of_range_or_mid_message_closes() {
        let phases = ffmpeg_phases(0);
        for size in [0u32, 1, 0x7FFF_FFFF] {
            let mut rng = XorShift(41);
            let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
            run_phases(&mut h, &phases[..2], &mut rng, 10_000);
            let mut c = Client::new();
            c.message(2, 0, 0, Message::SetChunkSize(size));
            assert_eq!(
                h.feed(&c.take(), &mut rng, 10_000),
                Err(RtmpError::BadChunkSize(size))
            );
            assert!(h.session.wants_close());
        }
        // A video message half sent on chunk stream 6, then Set Chunk Size on chunk stream 2.
        let mut rng = XorShift(43);
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..2], &mut rng, 10_000);
        let mut c = Client::new();
        c.message(6, 0, 1, Message::Video(video_tag(true, 1000)));
        let mut bytes = c.take();
        bytes.truncate(12 + 128 + 1 + 128);
        let mut c = Client::new();
        c.message(2, 0, 0, Message::SetChunkSize(4096));
        bytes.extend(c.take());
        assert_eq!(
            h.feed(&bytes, &mut rng, 10_000),
            Err(RtmpError::ChunkSizeMidMessage(4096))
        );
    }

    #[test]
    fn huge_message_lengths_are_refused_or_not_allocated() {
        let phases = ffmpeg_phases(0);
        let mut rng = XorShift(31);
        // A 24-bit maximum length header with a 1 MiB limit: refused.
        let config = SessionConfig {
            max_message_size: 1 << 20,
            ..SessionConfig::default()
        };
        let mut h = Harness::new(config, Answer::Accept);
        run_phases(&mut h, &phases[..2], &mut rng, 10_000);
        let header = [0x06, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 1, 0, 0, 0, 0x17];
        assert_eq!(
            h.session.handle_input(&header),
            Err(RtmpError::MessageTooLarge {
                length: 0xFF_FFFF,
                limit: 1 << 20
            })
        );
        // With the default 16 MiB limit it is allowed, but memory grows only with real bytes.
        let mut h = Harness::new(SessionConfig::default(), Answer::Accept);
        run_phases(&mut h, &phases[..2], &mut rng, 10_000);
        h.session.handle_input(&header).expect("within limit");
        h.session.handle_input(&[0; 100]).expect("partial");
        assert!(h.session.buffered_input() < 200);
    }

    /// A whole valid publish as one byte string (answers are produced by the harness).
    fn valid_session() -> Vec<u8> {
        ffmpeg_phases(2).concat()
    }

    fn hostile_config() -> SessionConfig {
        SessionConfig {
            max_message_size: 65_536,
            ..SessionConfig::default()
        }
    }

    /// Feeds `data`; must never panic. Returns whether it was accepted.
    fn feed_hostile(data: &[u8], rng: &mut XorShift) -> bool {
        let mut h = Harness::new(hostile_config(), Answer::Accept);
        let result = h.feed(data, rng, 2_000);
        if result.is_err() {
            assert_eq!(h.session.handle_input(&[3]), Err(RtmpError::SessionClosed));
        }
        result.is_ok()
    }

    #[test]
    fn hostile_random_bytes() {
        let mut rng = XorShift(0xDEAD_BEEF);
        let prefix: Vec<u8> = ffmpeg_phases(0)[..2].concat();
        for case in 0..3_000 {
            let len = rng.below(6_000);
            let mut data: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
            match case % 3 {
                // Pure random bytes.
                0 => {}
                // Past the version check: random C1/C2 and chunk data.
                1 => {
                    if let Some(b) = data.first_mut() {
                        *b = 3;
                    }
                }
                // Random chunk data after a valid handshake and connect.
                _ => data = [prefix.clone(), data].concat(),
            }
            feed_hostile(&data, &mut rng);
        }
    }

    #[test]
    fn hostile_truncations() {
        let session = valid_session();
        let mut rng = XorShift(0x1234_5678);
        for end in 0..=session.len() {
            assert!(
                feed_hostile(&session[..end], &mut rng),
                "prefix {end} must be valid"
            );
        }
    }

    #[test]
    fn hostile_mutations() {
        let session = valid_session();
        let mut rng = XorShift(0xC0FF_EE00);
        let chunk_start = 1 + 2 * HANDSHAKE_SIZE;
        for _ in 0..3_000 {
            let mut data = session.clone();
            for _ in 0..1 + rng.below(6) {
                // Mostly mutate chunk data; sometimes anywhere.
                let at = if rng.below(8) == 0 {
                    rng.below(data.len())
                } else {
                    chunk_start + rng.below(data.len() - chunk_start)
                };
                data[at] = rng.next() as u8;
            }
            feed_hostile(&data, &mut rng);
        }
    }
}
