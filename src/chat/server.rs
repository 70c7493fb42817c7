//! The QUIC driver: one quinn endpoint for both ALPNs. `cuecast-chat/1` connections carry the
//! native protocol on their one bidirectional stream; `h3` connections are WebTransport
//! sessions (web-transport-quinn on the same connection) carrying the same frames on the
//! session's one bidirectional stream. Per-IP and total connection limits, the hello timeout and
//! the one-stream rule are enforced here; everything else is in [`Hub`] and [`super::room`].

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::cert::{CertSource, Resolver};
use super::hub::{Closer, Hub};
use super::proto::{self, ClientMsg, CloseCode};
use super::room::Identity;
use crate::users::Users;

/// The URL path of WebTransport sessions (`https://HOST:PORT/chat`).
pub const WEBTRANSPORT_PATH: &str = "/chat";
/// Bytes read from a stream at a time.
const READ_CHUNK: usize = 8192;

/// Endpoint settings.
#[derive(Debug, Clone)]
pub struct ServerSettings {
    /// Largest frame a client may send.
    pub max_frame: usize,
    /// How long a client has to send `hello`.
    pub hello_timeout: Duration,
    /// Connections per client IP.
    pub max_connections_per_ip: usize,
    /// Connections in total.
    pub max_connections: usize,
    /// Idle timeout.
    pub idle_timeout: Duration,
}

/// Builds the endpoint's QUIC server config (TLS 1.3, both ALPNs, certificate resolver).
pub fn server_config(
    certs: Arc<CertSource>,
    settings: &ServerSettings,
) -> anyhow::Result<quinn::ServerConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])?
        .with_no_client_auth()
        .with_cert_resolver(Arc::new(Resolver(certs)));
    tls.alpn_protocols = vec![proto::ALPN_H3.to_vec(), proto::ALPN_NATIVE.to_vec()];
    tls.max_early_data_size = 0;
    let quic = quinn::crypto::rustls::QuicServerConfig::try_from(Arc::new(tls))?;
    let mut config = quinn::ServerConfig::with_crypto(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    // Native clients use one bidirectional stream; a WebTransport session needs its CONNECT
    // stream and HTTP/3's control and QPACK unidirectional streams besides.
    transport
        .max_concurrent_bidi_streams(4u32.into())
        .max_concurrent_uni_streams(4u32.into())
        .keep_alive_interval(Some(Duration::from_secs(10)))
        .max_idle_timeout(Some(
            quinn::IdleTimeout::try_from(settings.idle_timeout)
                .unwrap_or_else(|_| quinn::IdleTimeout::from(quinn::VarInt::from_u32(30_000))),
        ));
    config.transport_config(Arc::new(transport));
    Ok(config)
}

impl Closer for quinn::Connection {
    fn close(&self, code: CloseCode) {
        quinn::Connection::close(self, code.code().into(), code.reason().as_bytes());
    }
}

impl Closer for web_transport_quinn::Session {
    fn close(&self, code: CloseCode) {
        web_transport_quinn::Session::close(self, code.code(), code.reason().as_bytes());
    }
}

/// Connections per IP and in total.
#[derive(Default)]
struct Limits {
    per_ip: Mutex<HashMap<IpAddr, usize>>,
}

/// Releases a counted connection.
struct Slot {
    limits: Arc<Limits>,
    ip: IpAddr,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.limits.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Limits {
    fn acquire(
        self: &Arc<Self>,
        ip: IpAddr,
        settings: &ServerSettings,
        open: usize,
    ) -> Option<Slot> {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let count = map.entry(ip).or_insert(0);
        if *count >= settings.max_connections_per_ip || open >= settings.max_connections {
            if *count == 0 {
                map.remove(&ip);
            }
            return None;
        }
        *count += 1;
        Some(Slot {
            limits: Arc::clone(self),
            ip,
        })
    }
}

/// Shared by the connection tasks.
struct Ctx {
    hub: Arc<Hub>,
    users: Arc<Users>,
    settings: ServerSettings,
    limits: Arc<Limits>,
}

/// Accepts connections until `shutdown`, then closes every one with `SHUTDOWN`.
pub async fn serve(
    endpoint: quinn::Endpoint,
    hub: Arc<Hub>,
    users: Arc<Users>,
    settings: ServerSettings,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let ctx = Arc::new(Ctx {
        hub,
        users,
        settings,
        limits: Arc::default(),
    });
    loop {
        let incoming = tokio::select! {
            incoming = endpoint.accept() => incoming,
            () = shutdown.cancelled() => break,
        };
        let Some(incoming) = incoming else { break };
        let ctx = Arc::clone(&ctx);
        tracker.spawn(async move {
            let peer = incoming.remote_address();
            match incoming.await {
                Ok(conn) => connection(ctx, conn, peer).await,
                Err(err) => tracing::debug!(%peer, error = %err, "chat handshake failed"),
            }
        });
    }
    ctx.hub.close_all(CloseCode::Shutdown).await;
    endpoint.close(
        CloseCode::Shutdown.code().into(),
        CloseCode::Shutdown.reason().as_bytes(),
    );
}

async fn connection(ctx: Arc<Ctx>, conn: quinn::Connection, peer: SocketAddr) {
    let metrics = Arc::clone(&ctx.hub.metrics);
    metrics
        .connections
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let open = metrics
        .open
        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let _open = OpenGuard(Arc::clone(&metrics));
    let Some(_slot) = ctx
        .limits
        .acquire(peer.ip(), &ctx.settings, open.max(0) as usize)
    else {
        tracing::debug!(%peer, "chat connection limit reached");
        close_conn(&ctx, &conn, CloseCode::ConnectionLimit);
        return;
    };
    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol);
    match alpn.as_deref() {
        Some(proto::ALPN_NATIVE) => native(&ctx, conn).await,
        Some(proto::ALPN_H3) => webtransport(&ctx, conn, peer).await,
        _ => close_conn(&ctx, &conn, CloseCode::ProtocolViolation),
    }
}

/// Decrements the open-connection gauge on drop.
struct OpenGuard(Arc<super::metrics::ChatMetrics>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

fn close_conn(ctx: &Ctx, closer: &dyn Closer, code: CloseCode) {
    ctx.hub.metrics.closed(code);
    closer.close(code);
}

/// Resolves if the peer opens any stream beyond the first; never on errors (the main task ends
/// then anyway).
async fn native_extra_stream(conn: &quinn::Connection) {
    tokio::select! {
        Ok(_) = conn.accept_bi() => {},
        Ok(_) = conn.accept_uni() => {},
        else => std::future::pending::<()>().await,
    }
}

async fn native(ctx: &Ctx, conn: quinn::Connection) {
    let stream = tokio::select! {
        stream = tokio::time::timeout(ctx.settings.hello_timeout, conn.accept_bi()) => stream,
        Ok(_) = conn.accept_uni() => {
            close_conn(ctx, &conn, CloseCode::StreamLimit);
            return;
        }
    };
    let (send, recv) = match stream {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return,
        Err(_) => {
            close_conn(ctx, &conn, CloseCode::HelloTimeout);
            return;
        }
    };
    let closer: Arc<dyn Closer> = Arc::new(conn.clone());
    let code = tokio::select! {
        code = client_session(ctx, Arc::clone(&closer), send, recv) => code,
        () = native_extra_stream(&conn) => Some(CloseCode::StreamLimit),
    };
    finish(ctx, &*closer, code);
    // Let the close frame go out before the connection is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
}

fn finish(ctx: &Ctx, closer: &dyn Closer, code: Option<CloseCode>) {
    match code {
        Some(code) => close_conn(ctx, closer, code),
        None => closer.close(CloseCode::Normal),
    }
}

async fn wt_extra_stream(session: &web_transport_quinn::Session) {
    tokio::select! {
        Ok(_) = session.accept_bi() => {},
        Ok(_) = session.accept_uni() => {},
        else => std::future::pending::<()>().await,
    }
}

async fn webtransport(ctx: &Ctx, conn: quinn::Connection, peer: SocketAddr) {
    let request = match tokio::time::timeout(
        ctx.settings.hello_timeout,
        web_transport_quinn::Request::accept(conn.clone()),
    )
    .await
    {
        Ok(Ok(request)) => request,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "WebTransport handshake failed");
            close_conn(ctx, &conn, CloseCode::ProtocolViolation);
            return;
        }
        Err(_) => {
            close_conn(ctx, &conn, CloseCode::HelloTimeout);
            return;
        }
    };
    if request.connect().url.path() != WEBTRANSPORT_PATH {
        let _ = request
            .reject(web_transport_quinn::http::StatusCode::NOT_FOUND)
            .await;
        return;
    }
    let session = match request.ok().await {
        Ok(session) => session,
        Err(err) => {
            tracing::debug!(%peer, error = %err, "WebTransport session refused");
            return;
        }
    };
    let stream = tokio::time::timeout(ctx.settings.hello_timeout, session.accept_bi()).await;
    let (send, recv) = match stream {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return,
        Err(_) => {
            close_conn(ctx, &session, CloseCode::HelloTimeout);
            return;
        }
    };
    let closer: Arc<dyn Closer> = Arc::new(session.clone());
    let code = tokio::select! {
        code = client_session(ctx, Arc::clone(&closer), send, recv) => code,
        () = wt_extra_stream(&session) => Some(CloseCode::StreamLimit),
    };
    finish(ctx, &*closer, code);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
}

/// Reads frames into `buf` until one is complete. `Ok(None)` = clean end of stream.
async fn next_frame<R: AsyncRead + Unpin>(
    recv: &mut R,
    buf: &mut BytesMut,
    max_frame: usize,
) -> Result<Option<ClientMsg>, CloseCode> {
    loop {
        match proto::read_client_frame(buf, max_frame) {
            Ok(Some(msg)) => return Ok(Some(msg)),
            Ok(None) => {}
            Err(err) => return Err(err.close_code()),
        }
        buf.reserve(READ_CHUNK);
        match recv.read_buf(buf).await {
            Ok(0) if buf.is_empty() => return Ok(None),
            Ok(0) => return Err(CloseCode::MalformedFrame),
            Ok(_) => {}
            // Reset stream or lost connection: nothing to report to the peer.
            Err(_) => return Ok(None),
        }
    }
}

/// One client: hello, join, then requests until the stream ends. Returns the close code for a
/// protocol error, None for a normal end.
async fn client_session<W, R>(
    ctx: &Ctx,
    closer: Arc<dyn Closer>,
    mut send: W,
    mut recv: R,
) -> Option<CloseCode>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let max_frame = ctx.settings.max_frame;
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let hello = tokio::time::timeout(
        ctx.settings.hello_timeout,
        next_frame(&mut recv, &mut buf, max_frame),
    )
    .await;
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
        Some(token) => match ctx.users.verify(&token) {
            Ok(claims) => Identity {
                user: Some(claims.sub),
                caps: claims.caps.into_iter().collect(),
            },
            Err(_) => return Some(CloseCode::Unauthorized),
        },
    };
    let (joined, mut rx) = match ctx.hub.join(&room, &who, backfill, closer).await {
        Ok(joined) => joined,
        Err(code) => return Some(code),
    };
    // The writer: drains the queue, coalescing whatever is waiting into one write.
    let writer = tokio::spawn(async move {
        let mut batch = Vec::new();
        while rx.recv_many(&mut batch, 64).await > 0 {
            for bytes in batch.drain(..) {
                if send.write_all(&bytes).await.is_err() {
                    return;
                }
            }
        }
        let _ = send.shutdown().await;
    });
    let code = loop {
        let msg = match next_frame(&mut recv, &mut buf, max_frame).await {
            Ok(Some(msg)) => msg,
            Ok(None) => break None,
            Err(code) => break Some(code),
        };
        if matches!(msg, ClientMsg::Hello { .. }) {
            break Some(CloseCode::ProtocolViolation);
        }
        if let Some(reply) = ctx.hub.handle(&joined, &who, msg).await
            && joined.tx.try_send(reply).is_err()
        {
            break Some(CloseCode::SlowConsumer);
        }
    };
    ctx.hub.leave(&joined);
    drop(joined);
    if code.is_none() {
        // The client finished its side: deliver what is queued (acks) before closing.
        let abort = writer.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), writer)
            .await
            .is_err()
        {
            abort.abort();
        }
    } else {
        writer.abort();
    }
    code
}

/// A UDP socket for a QUIC endpoint: explicitly dual-stack when bound to `[::]`, with `buffer`
/// bytes of kernel send and receive buffer (capped by `net.core.{r,w}mem_max`). A room's fan-out
/// sends and receives (acknowledgements) in bursts, one packet per member per tick; the
/// default 208 kB buffer drops those bursts and loss recovery turns the drops into delays.
pub fn udp_socket(addr: SocketAddr, buffer: usize) -> std::io::Result<std::net::UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() && addr.ip().is_unspecified() {
        socket.set_only_v6(false)?;
    }
    if buffer > 0 {
        // Best effort: the kernel caps the sizes silently.
        let _ = socket.set_recv_buffer_size(buffer);
        let _ = socket.set_send_buffer_size(buffer);
    }
    socket.bind(&addr.into())?;
    let effective = socket.recv_buffer_size().unwrap_or(0);
    // Linux reports twice the requested size (bookkeeping overhead included).
    if buffer > 0 && effective < buffer {
        tracing::warn!(
            requested = buffer,
            effective,
            "UDP receive buffer capped by the kernel (raise net.core.rmem_max for large rooms)"
        );
    }
    Ok(socket.into())
}

/// Binds the endpoint.
pub fn bind(
    addr: SocketAddr,
    config: quinn::ServerConfig,
    buffer: usize,
) -> std::io::Result<quinn::Endpoint> {
    quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        Some(config),
        udp_socket(addr, buffer)?,
        Arc::new(quinn::TokioRuntime),
    )
}
