//! RTMP ingest: a sans-IO server for publishers (OBS, ffmpeg, GStreamer `rtmp2sink`).
//!
//! Specs implemented:
//! - *Adobe Real Time Messaging Protocol* specification 1.0 (2012): the simple handshake (§5.2),
//!   chunking (§5.3), protocol control messages (§5.4), user control messages (§6.2, §7.1.7),
//!   command and data messages and the NetConnection/NetStream commands a publisher uses (§7).
//! - *AMF0 File Format Specification* (Adobe, 2007): the value types RTMP commands use.
//!
//! Layers, bottom up: [`handshake`] → [`chunk`] (reader + writer) → [`message`] (decode +
//! encode per message type, [`amf0`] for command/data bodies) → [`session`] (the
//! connect/createStream/publish state machine). Nothing here does I/O or reads a clock:
//! the async driver ([`server`]) feeds bytes into [`ServerSession::handle_input`] and writes out
//! [`ServerSession::poll_transmit`]; over RTMPS it does so after [`tls`] has completed the TLS
//! handshake. See `docs/rtmp.md` for the design notes.

pub mod amf0;
pub mod chunk;
mod config;
pub mod error;
pub mod handshake;
pub mod message;
pub mod server;
pub mod session;
pub mod tls;

pub use amf0::Amf0Error;
pub use config::{Config, TlsConfig};
pub use error::RtmpError;
pub use session::{Event, ServerSession, SessionConfig};
