//! One client's session, whatever carries it: `hello`, join, then requests until the client
//! leaves. The transports — a QUIC stream (native or WebTransport, [`super::server`]) or a
//! WebSocket on the HTTP port (`http::chat_ws`) — only turn their bytes into [`ClientMsg`]s
//! ([`FrameSource`]) and write the hub's encoded batches ([`FrameSink`]); admission (connection
//! limits, counters), the hello timeout and the request loop are here, once.

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::hub::{Closer, Hub};
use super::metrics::ChatMetrics;
use super::proto::{self, ClientMsg, CloseCode};
use super::room::Identity;
use crate::users::Users;

/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 8192;
/// How long a session that ended normally may take to write out what is queued (acks).
const DRAIN: Duration = Duration::from_secs(2);

/// Endpoint settings, shared by every transport.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest frame a client may send.
    pub max_frame: usize,
    /// How long a client has to send `hello`.
    pub hello_timeout: Duration,
    /// Connections per client IP (QUIC and WebSocket together).
    pub max_connections_per_ip: usize,
    /// Connections in total (QUIC and WebSocket together).
    pub max_connections: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
    /// Whether the WebSocket fallback on the HTTP port is served.
    pub websocket: bool,
    /// Origins (lowercase `scheme://host[:port]`) a WebTransport session may come from besides
    /// the host it connected to; `*` = any.
    pub allowed_origins: Vec<String>,
}

/// Where a session reads the client's messages from.
pub trait FrameSource {
    /// The next message; `Ok(None)` when the client is gone (cleanly or not), `Err` with the
    /// close code for a frame that breaks the protocol.
    fn next_msg(&mut self) -> impl Future<Output = Result<Option<ClientMsg>, CloseCode>> + Send;
}

/// Where a session writes the hub's output: batches of length-prefixed frames
/// ([`proto::encode`]), each holding one or more whole frames.
pub trait FrameSink: Send + 'static {
    /// Writes one batch; false when the client can no longer be written to.
    fn send_batch(&mut self, batch: Bytes) -> impl Future<Output = bool> + Send;
    /// The queue is drained and the session is over: end the output side.
    fn finish(&mut self) -> impl Future<Output = ()> + Send;
}

/// A byte stream carrying length-prefixed frames (a QUIC stream).
pub struct StreamSource<R> {
    recv: R,
    buf: BytesMut,
    max_frame: usize,
}

impl<R: AsyncRead + Unpin + Send> StreamSource<R> {
    /// Frames of at most `max_frame` bytes read from `recv`.
    pub fn new(recv: R, max_frame: usize) -> StreamSource<R> {
        StreamSource {
            recv,
            buf: BytesMut::with_capacity(READ_CHUNK),
            max_frame,
        }
    }
}

impl<R: AsyncRead + Unpin + Send> FrameSource for StreamSource<R> {
    async fn next_msg(&mut self) -> Result<Option<ClientMsg>, CloseCode> {
        loop {
            match proto::read_client_frame(&mut self.buf, self.max_frame) {
                Ok(Some(msg)) => return Ok(Some(msg)),
                Ok(None) => {}
                Err(err) => return Err(err.close_code()),
            }
            self.buf.reserve(READ_CHUNK);
            match self.recv.read_buf(&mut self.buf).await {
                Ok(0) if self.buf.is_empty() => return Ok(None),
                Ok(0) => return Err(CloseCode::MalformedFrame),
                Ok(_) => {}
                // Reset stream or lost connection: nothing to report to the peer.
                Err(_) => return Ok(None),
            }
        }
    }
}

/// A byte stream the batches are written to as they are (a QUIC stream).
pub struct StreamSink<W>(pub W);

impl<W: AsyncWrite + Unpin + Send + 'static> FrameSink for StreamSink<W> {
    async fn send_batch(&mut self, batch: Bytes) -> bool {
        self.0.write_all(&batch).await.is_ok()
    }

    async fn finish(&mut self) {
        let _ = self.0.shutdown().await;
    }
}

/// Splits an encoded batch into the JSON texts of its frames (a WebSocket sends each as one
/// text message). Frames the hub encoded are whole and UTF-8; anything else is skipped.
pub fn frame_texts(batch: &[u8]) -> impl Iterator<Item = &str> {
    let mut rest = batch;
    std::iter::from_fn(move || {
        if rest.len() < proto::LENGTH_PREFIX {
            return None;
        }
        let len = u32::from_be_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize;
        let end = (proto::LENGTH_PREFIX + len).min(rest.len());
        let body = &rest[proto::LENGTH_PREFIX..end];
        rest = &rest[end..];
        Some(std::str::from_utf8(body).unwrap_or_default())
    })
    .filter(|text| !text.is_empty())
}

/// Connections per IP (QUIC and WebSocket together).
#[derive(Default)]
struct Limits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// An admitted connection: counted per IP and in the open gauge until dropped.
pub struct Admission {
    limits: Arc<Limits>,
    metrics: Arc<ChatMetrics>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.metrics.open.fetch_sub(1, Ordering::Relaxed);
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// What every session shares: the rooms, the accounts, the limits, shutdown.
pub struct Sessions {
    /// The rooms.
    pub hub: Arc<Hub>,
    users: Arc<Users>,
    /// The limits.
    pub settings: ServerSettings,
    limits: Arc<Limits>,
    /// Cancelled when the chat shuts down.
    pub shutdown: CancellationToken,
}

impl Sessions {
    /// Sessions over `hub`, checking tokens with `users`.
    pub fn new(
        hub: Arc<Hub>,
        users: Arc<Users>,
        settings: ServerSettings,
        shutdown: CancellationToken,
    ) -> Sessions {
        Sessions {
            hub,
            users,
            settings,
            limits: Arc::default(),
            shutdown,
        }
    }

    /// Counts a new connection from `ip`; `Err(ConnectionLimit)` (counted as a close) when
    /// the IP or the server has too many already.
    pub fn admit(&self, ip: IpAddr) -> Result<Admission, CloseCode> {
        let metrics = &self.hub.metrics;
        metrics.connections.fetch_add(1, Ordering::Relaxed);
        let open = metrics.open.fetch_add(1, Ordering::Relaxed).max(0) as usize;
        let admission = Admission {
            limits: Arc::clone(&self.limits),
            metrics: Arc::clone(metrics),
            ip,
        };
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        // Counted first so that the drop of a refused admission evens it out.
        *count += 1;
        if *count > self.settings.max_connections_per_ip || open >= self.settings.max_connections {
            drop(map);
            drop(admission);
            metrics.closed(CloseCode::ConnectionLimit);
            return Err(CloseCode::ConnectionLimit);
        }
        Ok(admission)
    }

    /// Closes `closer` with `code`, counted.
    pub fn close(&self, closer: &dyn Closer, code: CloseCode) {
        self.hub.metrics.closed(code);
        closer.close(code);
    }

    /// Ends a session [`Sessions::run`] returned `code` for: the close code of a protocol
    /// error (counted), or a normal close.
    pub fn finish(&self, closer: &dyn Closer, code: Option<CloseCode>) {
        match code {
            Some(code) => self.close(closer, code),
            None => closer.close(CloseCode::Normal),
        }
    }

    /// One client: hello (within the hello timeout), join, then requests until the client
    /// leaves. Returns the close code for a protocol error, None for a normal end.
    pub async fn run<S: FrameSource, K: FrameSink>(
        &self,
        closer: Arc<dyn Closer>,
        mut sink: K,
        source: &mut S,
    ) -> Option<CloseCode> {
        let hello = tokio::time::timeout(self.settings.hello_timeout, source.next_msg()).await;
        let (room, token, backfill) = match hello {
            Err(_) => return Some(CloseCode::HelloTimeout),
            Ok(Err(code)) => return Some(code),
            Ok(Ok(None)) => return None,
            Ok(Ok(Some(ClientMsg::Hello {
                version,
                room,
                token,
                backfill,
            }))) => {
                if version != proto::VERSION {
                    return Some(CloseCode::ProtocolViolation);
                }
                (room, token, backfill)
            }
            Ok(Ok(Some(_))) => return Some(CloseCode::ProtocolViolation),
        };
        let who = match token {
            None => Identity::anonymous(),
            Some(token) => match self.users.verify(&token) {
                Ok(claims) => Identity {
                    user: Some(claims.sub),
                    caps: claims.caps.into_iter().collect(),
                },
                Err(_) => return Some(CloseCode::Unauthorized),
            },
        };
        let (joined, mut rx) = match self.hub.join(&room, &who, backfill, closer).await {
            Ok(joined) => joined,
            Err(code) => return Some(code),
        };
        // The writer: drains the queue, whatever is waiting at once.
        let writer = tokio::spawn(async move {
            let mut batch = Vec::new();
            while rx.recv_many(&mut batch, 64).await > 0 {
                for bytes in batch.drain(..) {
                    if !sink.send_batch(bytes).await {
                        return;
                    }
                }
            }
            sink.finish().await;
        });
        let code = loop {
            let msg = match source.next_msg().await {
                Ok(Some(msg)) => msg,
                Ok(None) => break None,
                Err(code) => break Some(code),
            };
            if matches!(msg, ClientMsg::Hello { .. }) {
                break Some(CloseCode::ProtocolViolation);
            }
            if let Some(reply) = self.hub.handle(&joined, &who, msg).await
                && joined.tx.try_send(reply).is_err()
            {
                break Some(CloseCode::SlowConsumer);
            }
        };
        self.hub.leave(&joined);
        drop(joined);
        if code.is_none() {
            // The client finished its side: deliver what is queued (acks) before closing.
            let abort = writer.abort_handle();
            if tokio::time::timeout(DRAIN, writer).await.is_err() {
                abort.abort();
            }
        } else {
            writer.abort();
        }
        code
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chat::proto::ServerMsg;

    #[test]
    fn a_batch_splits_into_its_frames_json() {
        let mut batch = BytesMut::new();
        proto::encode_into(&ServerMsg::Live {}, &mut batch);
        proto::encode_into(&ServerMsg::Presence { count: 3 }, &mut batch);
        let texts: Vec<_> = frame_texts(&batch).collect();
        assert_eq!(
            texts,
            [r#"{"type":"live"}"#, r#"{"type":"presence","count":3}"#]
        );
        assert_eq!(frame_texts(&[]).count(), 0);
        // A truncated tail yields what is there, never panics.
        assert_eq!(frame_texts(&batch[..batch.len() - 3]).count(), 2);
    }
}
