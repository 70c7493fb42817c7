//! The chat's WebSocket fallback: `GET /api/chat/{room}/ws` on the HTTP port, for browsers or
//! networks without WebTransport. The transport only: every WebSocket text message is one
//! protocol JSON object (no length prefix), in both directions; the session — admission
//! (limits shared with the QUIC endpoint), hello timeout, rooms, rules — is the QUIC one's
//! ([`Sessions::run`]). The server closes with WebSocket code `4000 +` the chat close code and
//! its reason (1000 for a normal end); a binary message is a malformed frame. The server pings
//! a quiet client and ends the session after `chat.idle_timeout_s` without a word from it.

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::extract::rejection::ExtensionRejection;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, Path, State};
use axum::http::header::{HOST, ORIGIN};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use futures_util::stream::{SplitSink, SplitStream};
use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ApiState;
use super::openapi::ErrorBody;
use super::users::error;
use crate::chat::hub::Closer;
use crate::chat::proto::{self, ClientMsg, CloseCode};
use crate::chat::server::origin_allowed;
use crate::chat::session::{FrameSink, FrameSource, Sessions, frame_texts};

/// The WebSocket close code of a normal end.
const NORMAL_CLOSURE: u16 = 1000;
/// WebSocket close codes of the chat's close codes start here (4000–4999 are the
/// application's).
const CLOSE_BASE: u16 = 4000;
/// Messages larger than this many times `chat.max_frame_bytes` are refused by the WebSocket
/// layer itself (bounded buffering); smaller ones over the limit are refused by the protocol.
const BUFFER_FRAMES: usize = 4;

/// The WebSocket close code of `code`.
pub fn ws_close_code(code: CloseCode) -> u16 {
    match code {
        CloseCode::Normal => NORMAL_CLOSURE,
        code => CLOSE_BASE + code.code() as u16,
    }
}

#[utoipa::path(get, path = "/api/chat/{room}/ws", tag = "chat", operation_id = "chat_websocket",
    summary = "Chat over a WebSocket (the fallback for clients without WebTransport)",
    description = "A WebSocket upgrade. Every text message is one chat protocol JSON object \
                   (docs/chat-protocol.md): the client sends `hello` first, the server answers \
                   `welcome`, the backfill (`message` with `history: true`), `live`, then live \
                   events. The server closes with 4000 + the chat close code.",
    params(("room" = String, Path, description = "The room (stream name)")),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 403, description = "A browser page from a foreign Origin (neither this host nor one of `chat.allowed_origins`)", body = ErrorBody),
        (status = 404, description = "No such room, or chat (or its WebSocket fallback) is disabled", body = ErrorBody),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody),
    ))]
async fn websocket(
    State(api): State<Arc<ApiState>>,
    Path(room): Path<String>,
    peer: Result<ConnectInfo<SocketAddr>, ExtensionRejection>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Response {
    let Some(chat) = api.chat.as_ref().filter(|c| c.sessions.settings.websocket) else {
        return error(StatusCode::NOT_FOUND, "chat over WebSocket is disabled");
    };
    if !chat.hub.exists(&room) {
        return error(StatusCode::NOT_FOUND, format!("no room {room:?}"));
    }
    // Browsers send the page's Origin with the upgrade (and cookies of this host with it): a
    // page of another site must not open sessions in a shopper's name (cross-site WebSocket
    // hijacking). The rule is the WebTransport one.
    let origin = headers
        .get(ORIGIN)
        .map(|v| v.to_str().unwrap_or("\u{fffd}"));
    let host = headers
        .get(HOST)
        .and_then(|v| v.to_str().ok())
        .map_or("", host_name);
    if !origin_allowed(origin, host, &chat.sessions.settings.allowed_origins) {
        tracing::debug!(
            ?origin,
            host,
            "chat WebSocket from a foreign origin refused"
        );
        chat.hub
            .metrics
            .origin_refused
            .fetch_add(1, Ordering::Relaxed);
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "origin {:?} may not open chat sessions here (chat.allowed_origins)",
                origin.unwrap_or_default()
            ),
        );
    }
    let upgrade = match upgrade {
        Ok(upgrade) => upgrade,
        Err(rejection) => {
            let message = format!("a WebSocket upgrade is required: {}", rejection.body_text());
            let mut response = error(StatusCode::UPGRADE_REQUIRED, message);
            response.headers_mut().insert(
                axum::http::header::UPGRADE,
                axum::http::HeaderValue::from_static("websocket"),
            );
            return response;
        }
    };
    let ip = peer.map_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED), |ConnectInfo(a)| a.ip());
    let sessions = Arc::clone(&chat.sessions);
    let max = sessions.settings.max_frame;
    upgrade
        .max_message_size(max * BUFFER_FRAMES)
        .max_frame_size(max * BUFFER_FRAMES)
        .on_upgrade(move |socket| session(sessions, socket, ip))
}

/// The host of a `Host` header value without its port (an IPv6 literal keeps its brackets, as
/// a URL's host does).
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.find(']').map_or(host, |end| &host[..=end]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

/// The chat routes served over HTTP upgrades.
pub fn routes() -> utoipa_axum::router::OpenApiRouter<Arc<ApiState>> {
    utoipa_axum::router::OpenApiRouter::new().routes(utoipa_axum::routes!(websocket))
}

/// Closes a WebSocket session: remembers the first code and wakes its reader (the hub calls
/// this from anywhere: a ban, a slow consumer, shutdown).
#[derive(Default)]
struct WsCloser {
    code: OnceLock<CloseCode>,
    closed: CancellationToken,
}

impl Closer for WsCloser {
    fn close(&self, code: CloseCode) {
        let _ = self.code.set(code);
        self.closed.cancel();
    }
}

type Outgoing = Arc<tokio::sync::Mutex<SplitSink<WebSocket, Message>>>;

/// How long the server waits for the client's answer to its close frame before it drops the
/// connection.
const CLOSE_LINGER: Duration = Duration::from_secs(1);

/// One WebSocket client: admitted, run as a chat session, closed with its code.
async fn session(sessions: Arc<Sessions>, socket: WebSocket, ip: IpAddr) {
    let (out, incoming) = socket.split();
    let out: Outgoing = Arc::new(tokio::sync::Mutex::new(out));
    let closer = Arc::new(WsCloser::default());
    let mut source = WsSource {
        incoming,
        out: Arc::clone(&out),
        closer: Arc::clone(&closer),
        shutdown: sessions.shutdown.clone(),
        max_frame: sessions.settings.max_frame,
        idle_timeout: sessions.settings.idle_timeout,
        last_heard: Instant::now(),
    };
    let code = match sessions.admit(ip) {
        Err(code) => Some(code),
        Ok(_admission) => {
            let sink = WsSink(Arc::clone(&out));
            let closer = closer.clone() as Arc<dyn Closer>;
            let code = sessions.run(closer, sink, &mut source).await;
            if let Some(code) = code {
                sessions.hub.metrics.closed(code);
            }
            code
        }
    };
    // A protocol error's code; else the one the hub closed with; else a normal end.
    let code = code
        .or_else(|| closer.code.get().copied())
        .unwrap_or(CloseCode::Normal);
    let frame = CloseFrame {
        code: ws_close_code(code),
        reason: Utf8Bytes::from(code.reason()),
    };
    // The closing handshake: the client answers with its close frame (a client that already
    // sent one has its answer); until then it may still be reading what came before. Bounded:
    // a client that reads nothing (a slow consumer) cannot hold the connection open.
    let _ = tokio::time::timeout(CLOSE_LINGER, async {
        let mut out = out.lock().await;
        if out.send(Message::Close(Some(frame))).await.is_ok() {
            while let Some(Ok(message)) = source.incoming.next().await {
                if matches!(message, Message::Close(_)) {
                    break;
                }
            }
        }
        let _ = out.close().await;
    })
    .await;
}

/// The client's messages: one protocol message per text message. While it waits, it pings
/// the client every third of `chat.idle_timeout_s` and ends the session when nothing (not even
/// a pong) came for the whole timeout, as QUIC's idle timeout does.
struct WsSource {
    incoming: SplitStream<WebSocket>,
    out: Outgoing,
    closer: Arc<WsCloser>,
    shutdown: CancellationToken,
    max_frame: usize,
    idle_timeout: Duration,
    last_heard: Instant,
}

impl FrameSource for WsSource {
    async fn next_msg(&mut self) -> Result<Option<ClientMsg>, CloseCode> {
        let every = (self.idle_timeout / 3).max(Duration::from_millis(100));
        let mut ping = tokio::time::interval_at(Instant::now() + every, every);
        loop {
            let message = tokio::select! {
                message = self.incoming.next() => message,
                _ = ping.tick() => {
                    if self.last_heard.elapsed() >= self.idle_timeout {
                        return Ok(None);
                    }
                    // The writer holding the socket is traffic enough; a ping never waits on a
                    // client that does not read.
                    if let Ok(mut out) = self.out.try_lock() {
                        let ping = out.send(Message::Ping(Bytes::new()));
                        let _ = tokio::time::timeout(every, ping).await;
                    }
                    continue;
                }
                () = self.closer.closed.cancelled() => return Ok(None),
                () = self.shutdown.cancelled() => {
                    self.closer.close(CloseCode::Shutdown);
                    return Ok(None);
                }
            };
            self.last_heard = Instant::now();
            return match message {
                Some(Ok(Message::Text(text))) => {
                    proto::decode_client_msg(text.as_bytes(), self.max_frame)
                        .map(Some)
                        .map_err(|err| err.close_code())
                }
                Some(Ok(Message::Binary(_))) => Err(CloseCode::MalformedFrame),
                Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                Some(Ok(Message::Close(_))) | None => Ok(None),
                // Over the WebSocket layer's own size limit; anything else is a lost connection.
                Some(Err(err)) if is_too_large(&err) => Err(CloseCode::FrameTooLarge),
                Some(Err(_)) => Ok(None),
            };
        }
    }
}

/// Whether the WebSocket layer refused a message for its size.
fn is_too_large(err: &axum::Error) -> bool {
    let text = err.to_string();
    text.contains("Space limit exceeded") || text.contains("too long")
}

/// Writes each frame of the hub's batches as one text message.
struct WsSink(Outgoing);

impl FrameSink for WsSink {
    async fn send_batch(&mut self, batch: Bytes) -> bool {
        let mut out = self.0.lock().await;
        for text in frame_texts(&batch) {
            if out
                .feed(Message::Text(Utf8Bytes::from(text)))
                .await
                .is_err()
            {
                return false;
            }
        }
        out.flush().await.is_ok()
    }

    async fn finish(&mut self) {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn close_codes_are_4000_plus_the_chat_code() {
        assert_eq!(ws_close_code(CloseCode::Normal), 1000);
        assert_eq!(ws_close_code(CloseCode::MalformedFrame), 4001);
        assert_eq!(ws_close_code(CloseCode::FrameTooLarge), 4002);
        assert_eq!(ws_close_code(CloseCode::HelloTimeout), 4012);
        for code in proto::ALL_CLOSE_CODES {
            assert!(ws_close_code(code) == 1000 || (4000..5000).contains(&ws_close_code(code)));
        }
    }

    #[test]
    fn the_host_header_loses_its_port_only() {
        assert_eq!(host_name("shop.example:8080"), "shop.example");
        assert_eq!(host_name("shop.example"), "shop.example");
        assert_eq!(host_name("[::1]:8080"), "[::1]");
        assert_eq!(host_name("[::1]"), "[::1]");
        assert_eq!(host_name("[::1"), "[::1");
        assert_eq!(host_name(""), "");
    }
}
