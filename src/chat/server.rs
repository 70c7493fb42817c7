//! The QUIC driver: one quinn endpoint for both ALPNs. `cuecast-chat/1` connections carry the
//! native protocol on their one bidirectional stream; `h3` connections are WebTransport
//! sessions (web-transport-quinn on the same connection) carrying the same frames on the
//! session's one bidirectional stream. The one-stream rule and the handshake timeouts are enforced
//! here; admission (per-IP and total limits), the hello timeout and the session itself are
//! [`Sessions`] (shared with the WebSocket fallback), the rooms [`super::hub::Hub`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::task::TaskTracker;

use super::cert::{CertSource, Resolver};
use super::hub::Closer;
use super::proto::{self, CloseCode};
use super::session::{ServerSettings, Sessions, StreamSink, StreamSource};

/// The URL path of WebTransport sessions (`https://HOST:PORT/chat`).
pub const WEBTRANSPORT_PATH: &str = "/chat";

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

/// Accepts connections until `shutdown`, then closes every one with `SHUTDOWN`.
pub async fn serve(endpoint: quinn::Endpoint, ctx: Arc<Sessions>, tracker: TaskTracker) {
    let shutdown = ctx.shutdown.clone();
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
                Err(err) => {
                    ctx.hub
                        .metrics
                        .handshake_failures
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::debug!(%peer, error = %err, "chat handshake failed");
                }
            }
        });
    }
    ctx.hub.close_all(CloseCode::Shutdown).await;
    endpoint.close(
        CloseCode::Shutdown.code().into(),
        CloseCode::Shutdown.reason().as_bytes(),
    );
}

async fn connection(ctx: Arc<Sessions>, conn: quinn::Connection, peer: SocketAddr) {
    let _admission = match ctx.admit(peer.ip()) {
        Ok(admission) => admission,
        Err(code) => {
            tracing::debug!(%peer, "chat connection limit reached");
            Closer::close(&conn, code);
            return;
        }
    };
    let alpn = conn
        .handshake_data()
        .and_then(|data| data.downcast::<quinn::crypto::rustls::HandshakeData>().ok())
        .and_then(|data| data.protocol);
    match alpn.as_deref() {
        Some(proto::ALPN_NATIVE) => native(&ctx, conn).await,
        Some(proto::ALPN_H3) => webtransport(&ctx, conn, peer).await,
        _ => ctx.close(&conn, CloseCode::ProtocolViolation),
    }
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

async fn native(ctx: &Sessions, conn: quinn::Connection) {
    let stream = tokio::select! {
        stream = tokio::time::timeout(ctx.settings.hello_timeout, conn.accept_bi()) => stream,
        Ok(_) = conn.accept_uni() => {
            ctx.close(&conn, CloseCode::StreamLimit);
            return;
        }
    };
    let (send, recv) = match stream {
        Ok(Ok(streams)) => streams,
        Ok(Err(_)) => return,
        Err(_) => {
            ctx.close(&conn, CloseCode::HelloTimeout);
            return;
        }
    };
    let closer: Arc<dyn Closer> = Arc::new(conn.clone());
    let mut source = StreamSource::new(recv, ctx.settings.max_frame);
    let code = tokio::select! {
        code = ctx.run(Arc::clone(&closer), StreamSink(send), &mut source) => code,
        () = native_extra_stream(&conn) => Some(CloseCode::StreamLimit),
    };
    ctx.finish(&*closer, code);
    // Let the close frame go out before the connection is dropped.
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
}

async fn wt_extra_stream(session: &web_transport_quinn::Session) {
    tokio::select! {
        Ok(_) = session.accept_bi() => {},
        Ok(_) = session.accept_uni() => {},
        else => std::future::pending::<()>().await,
    }
}

async fn webtransport(ctx: &Sessions, conn: quinn::Connection, peer: SocketAddr) {
    let request = match tokio::time::timeout(
        ctx.settings.hello_timeout,
        web_transport_quinn::Request::accept(conn.clone()),
    )
    .await
    {
        Ok(Ok(request)) => request,
        Ok(Err(err)) => {
            tracing::debug!(%peer, error = %err, "WebTransport handshake failed");
            ctx.close(&conn, CloseCode::ProtocolViolation);
            return;
        }
        Err(_) => {
            ctx.close(&conn, CloseCode::HelloTimeout);
            return;
        }
    };
    if request.connect().url.path() != WEBTRANSPORT_PATH {
        let _ = request
            .reject(web_transport_quinn::http::StatusCode::NOT_FOUND)
            .await;
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
        return;
    }
    let origin = request
        .connect()
        .headers
        .get("origin")
        .map(|v| v.to_str().unwrap_or("\u{fffd}").to_string());
    let host = request.connect().url.host_str().unwrap_or("").to_string();
    if !origin_allowed(origin.as_deref(), &host, &ctx.settings.allowed_origins) {
        tracing::debug!(%peer, ?origin, "WebTransport session from a foreign origin refused");
        ctx.hub
            .metrics
            .origin_refused
            .fetch_add(1, Ordering::Relaxed);
        let _ = request
            .reject(web_transport_quinn::http::StatusCode::FORBIDDEN)
            .await;
        // Let the 403 reach the client (it closes then) before the connection is dropped.
        let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
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
            ctx.close(&session, CloseCode::HelloTimeout);
            return;
        }
    };
    let closer: Arc<dyn Closer> = Arc::new(session.clone());
    let mut source = StreamSource::new(recv, ctx.settings.max_frame);
    let code = tokio::select! {
        code = ctx.run(Arc::clone(&closer), StreamSink(send), &mut source) => code,
        () = wt_extra_stream(&session) => Some(CloseCode::StreamLimit),
    };
    ctx.finish(&*closer, code);
    let _ = tokio::time::timeout(Duration::from_secs(1), conn.closed()).await;
}

/// Whether `text` is a serialized origin: `http` or `https`, a host, an optional port, nothing
/// else (no path, query, user info).
pub fn is_origin(text: &str) -> bool {
    url::Url::parse(text).is_ok_and(|url| {
        matches!(url.scheme(), "http" | "https")
            && url.host_str().is_some()
            && url.username().is_empty()
            && url.password().is_none()
            && url.path() == "/"
            && url.query().is_none()
            && url.fragment().is_none()
            && !text.ends_with('/')
    })
}

/// Whether a WebTransport session whose CONNECT carried `origin` (browsers always send it) to
/// `host` may proceed: no Origin (a native client), an Origin on the same host name (the pages of
/// this server, any port), or one of `allowed` (lowercase origins, or `*`).
pub fn origin_allowed(origin: Option<&str>, host: &str, allowed: &[String]) -> bool {
    let Some(origin) = origin else { return true };
    if allowed.iter().any(|a| a == "*") {
        return true;
    }
    let origin = origin.trim().to_ascii_lowercase();
    if allowed.contains(&origin) {
        return true;
    }
    match url::Url::parse(&origin) {
        Ok(url) if matches!(url.scheme(), "http" | "https") => url
            .host_str()
            .is_some_and(|h| !host.is_empty() && h.eq_ignore_ascii_case(host)),
        _ => false,
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_checked_against_the_host_and_the_allowlist() {
        let none: Vec<String> = Vec::new();
        assert!(origin_allowed(None, "chat.example", &none), "native client");
        assert!(origin_allowed(
            Some("https://chat.example:8080"),
            "chat.example",
            &none
        ));
        assert!(origin_allowed(
            Some("HTTPS://Chat.Example"),
            "chat.example",
            &none
        ));
        assert!(!origin_allowed(
            Some("https://evil.example"),
            "chat.example",
            &none
        ));
        assert!(!origin_allowed(
            Some("https://chat.example.evil.example"),
            "chat.example",
            &none
        ));
        assert!(!origin_allowed(Some("null"), "chat.example", &none));
        assert!(!origin_allowed(Some("https://x"), "", &none));
        let shop = vec!["https://shop.example".to_string()];
        assert!(origin_allowed(
            Some("https://shop.example"),
            "chat.example",
            &shop
        ));
        assert!(!origin_allowed(
            Some("https://shop.example:444"),
            "chat.example",
            &shop
        ));
        let any = vec!["*".to_string()];
        assert!(origin_allowed(
            Some("https://evil.example"),
            "chat.example",
            &any
        ));
    }

    #[test]
    fn only_serialized_origins_are_origins() {
        assert!(is_origin("https://shop.example"));
        assert!(is_origin("http://127.0.0.1:8080"));
        for bad in [
            "shop.example",
            "https://shop.example/path",
            "ftp://shop.example",
            "https://u@shop.example",
            "*",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
    }
}
