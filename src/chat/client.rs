//! A native chat client: connection setup (trust by CA file or by a pinned certificate hash),
//! framed send/receive, and the `cuecast chat` command that joins a room, posts stdin lines and
//! prints what arrives.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::BytesMut;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::proto::{self, ClientMsg, CloseCode, ServerMsg};
use crate::tls::sha256;

/// Largest frame the client accepts from the server.
pub const MAX_SERVER_FRAME: usize = 4 << 20;
/// How long the CLI waits for acknowledgements after stdin ends.
const DRAIN_WAIT: Duration = Duration::from_secs(10);

/// How the client trusts the server.
#[derive(Debug, Clone)]
pub enum Trust {
    /// CA certificates (PEM), verified as usual against the server name.
    Ca(Vec<CertificateDer<'static>>),
    /// SHA-256 hashes of acceptable leaf certificates (development certificates).
    Pinned(Vec<[u8; 32]>),
}

/// Accepts exactly the pinned leaf certificates (TLS signatures are still verified).
#[derive(Debug)]
struct PinnedVerifier {
    pins: Vec<[u8; 32]>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if self.pins.contains(&sha256(end_entity)) {
            Ok(ServerCertVerified::assertion())
        } else {
            Err(rustls::Error::InvalidCertificate(
                rustls::CertificateError::UnknownIssuer,
            ))
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Reads CA certificates from a PEM file.
pub fn load_ca(path: &std::path::Path) -> anyhow::Result<Trust> {
    let certs = CertificateDer::pem_file_iter(path)
        .with_context(|| format!("{}: cannot read", path.display()))?
        .collect::<Result<Vec<_>, _>>()
        .with_context(|| format!("{}: bad PEM", path.display()))?;
    if certs.is_empty() {
        bail!("{}: no CERTIFICATE in the file", path.display());
    }
    Ok(Trust::Ca(certs))
}

/// Fetches the development certificate hashes the server publishes at `GET {http}/api/chat/cert`
/// (a development convenience: it trusts that HTTP answer). Also returns the published port.
pub async fn fetch_pins(http: &str) -> anyhow::Result<(Trust, Option<u16>)> {
    let url = format!("{}/api/chat/cert", http.trim_end_matches('/'));
    let response = reqwest::Client::new()
        .get(&url)
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .with_context(|| format!("GET {url}"))?;
    if !response.status().is_success() {
        bail!("GET {url}: {}", response.status());
    }
    let body: serde_json::Value = serde_json::from_slice(&response.bytes().await?)
        .with_context(|| format!("GET {url}: not JSON"))?;
    let pins = body["sha256"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|h| h.as_str())
                .filter_map(parse_hex32)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    if pins.is_empty() {
        bail!("GET {url}: no sha256 hashes in the answer");
    }
    let port = body["port"].as_u64().and_then(|p| u16::try_from(p).ok());
    Ok((Trust::Pinned(pins), port))
}

fn parse_hex32(text: &str) -> Option<[u8; 32]> {
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

/// A rustls client config for `trust` and `alpn`.
pub fn tls_config(trust: &Trust, alpn: &[u8]) -> anyhow::Result<rustls::ClientConfig> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_protocol_versions(&[&rustls::version::TLS13])?;
    let mut config = match trust {
        Trust::Ca(certs) => {
            let mut roots = rustls::RootCertStore::empty();
            for cert in certs {
                roots.add(cert.clone())?;
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        Trust::Pinned(pins) => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedVerifier {
                pins: pins.clone(),
                provider,
            }))
            .with_no_client_auth(),
    };
    config.alpn_protocols = vec![alpn.to_vec()];
    Ok(config)
}

/// Kernel buffer of client sockets (several connections may share one).
const CLIENT_SOCKET_BUFFER: usize = 1 << 20;

/// A client endpoint (bound to an ephemeral port of `server`'s address family).
pub fn endpoint(server: SocketAddr) -> anyhow::Result<quinn::Endpoint> {
    let bind: SocketAddr = if server.is_ipv6() {
        "[::]:0".parse()?
    } else {
        "0.0.0.0:0".parse()?
    };
    let socket = super::server::udp_socket(bind, CLIENT_SOCKET_BUFFER)?;
    Ok(quinn::Endpoint::new(
        quinn::EndpointConfig::default(),
        None,
        socket,
        Arc::new(quinn::TokioRuntime),
    )?)
}

/// Connects with the native ALPN.
pub async fn connect(
    endpoint: &quinn::Endpoint,
    server: SocketAddr,
    server_name: &str,
    trust: &Trust,
) -> anyhow::Result<quinn::Connection> {
    let tls = tls_config(trust, proto::ALPN_NATIVE)?;
    let quic = quinn::crypto::rustls::QuicClientConfig::try_from(tls)?;
    let mut config = quinn::ClientConfig::new(Arc::new(quic));
    let mut transport = quinn::TransportConfig::default();
    transport.keep_alive_interval(Some(Duration::from_secs(10)));
    config.transport_config(Arc::new(transport));
    let conn = endpoint
        .connect_with(config, server, server_name)?
        .await
        .with_context(|| format!("QUIC connection to {server}"))?;
    Ok(conn)
}

/// One joined chat stream.
pub struct ChatStream {
    /// The connection.
    pub conn: quinn::Connection,
    /// Send side.
    pub send: quinn::SendStream,
    /// Receive side.
    pub recv: quinn::RecvStream,
    buf: BytesMut,
}

impl ChatStream {
    /// Opens the stream and sends `hello`.
    pub async fn join(
        conn: quinn::Connection,
        room: &str,
        token: Option<String>,
        backfill: Option<u32>,
    ) -> anyhow::Result<ChatStream> {
        let (send, recv) = conn.open_bi().await?;
        let mut stream = ChatStream {
            conn,
            send,
            recv,
            buf: BytesMut::new(),
        };
        stream
            .send(&ClientMsg::Hello {
                version: proto::VERSION,
                room: room.to_string(),
                token,
                backfill,
            })
            .await?;
        Ok(stream)
    }

    /// Sends a message.
    pub async fn send(&mut self, msg: &ClientMsg) -> anyhow::Result<()> {
        self.send.write_all(&proto::encode(msg)).await?;
        Ok(())
    }

    /// The next server message; `Ok(None)` when the server ended the stream.
    pub async fn next(&mut self) -> anyhow::Result<Option<ServerMsg>> {
        loop {
            if let Some(msg) = proto::read_server_frame(&mut self.buf, MAX_SERVER_FRAME)? {
                return Ok(Some(msg));
            }
            match self.recv.read_chunk(64 * 1024, true).await {
                Ok(None) => return Ok(None),
                Ok(Some(chunk)) => self.buf.extend_from_slice(&chunk.bytes),
                Err(quinn::ReadError::ConnectionLost(err)) => return Err(close_error(err)),
                Err(err) => return Err(err.into()),
            }
        }
    }
}

/// Names the close code in a connection error.
pub fn close_error(err: quinn::ConnectionError) -> anyhow::Error {
    match &err {
        quinn::ConnectionError::ApplicationClosed(close) => {
            let code = close.error_code.into_inner();
            match CloseCode::from_code(code) {
                Some(known) => {
                    anyhow::anyhow!("closed by the server: code {code:#x} ({})", known.reason())
                }
                None => anyhow::anyhow!("closed by the server: code {code:#x}"),
            }
        }
        _ => err.into(),
    }
}

/// The close code of a closed connection, if the server closed it with one.
pub fn close_code(conn: &quinn::Connection) -> Option<u64> {
    match conn.close_reason() {
        Some(quinn::ConnectionError::ApplicationClosed(close)) => {
            Some(close.error_code.into_inner())
        }
        _ => None,
    }
}

/// `cuecast chat` arguments.
#[derive(Debug, Clone)]
pub struct ChatArgs {
    /// Room.
    pub room: String,
    /// HOST:PORT of the QUIC endpoint.
    pub server: String,
    /// Login token.
    pub token: Option<String>,
    /// JSON lines output.
    pub json: bool,
    /// CA file.
    pub ca: Option<PathBuf>,
    /// HTTP base URL for the development certificate hash.
    pub http: String,
}

/// One output line for a server message.
pub fn render(msg: &ServerMsg, json: bool) -> Option<String> {
    if json {
        let value = match msg {
            ServerMsg::Message { message, history } => {
                let mut value = serde_json::to_value(message).ok()?;
                value["history"] = serde_json::Value::Bool(*history);
                value
            }
            other => {
                let mut value = serde_json::to_value(other).ok()?;
                if let Some(object) = value.as_object_mut()
                    && let Some(kind) = object.remove("type")
                {
                    object.insert("kind".into(), kind);
                }
                value
            }
        };
        return Some(value.to_string());
    }
    Some(match msg {
        ServerMsg::Welcome {
            room,
            user,
            presence,
            ..
        } => format!(
            "* joined {room} as {} ({presence} here)",
            user.as_deref().unwrap_or("anonymous (read only)")
        ),
        ServerMsg::Message { message, .. } => {
            let mut line = format!("[{}] {}: {}", message.id, message.user, message.text);
            if let Some(link) = &message.link {
                line.push_str(&format!(
                    " <{}{}>",
                    link.label
                        .as_deref()
                        .map(|l| format!("{l}: "))
                        .unwrap_or_default(),
                    link.url
                ));
            }
            if let Some(card) = &message.product {
                line.push_str(&format!(
                    " [product {} \"{}\" {} {}]",
                    card.id,
                    card.title.as_deref().unwrap_or(""),
                    card.price.as_deref().unwrap_or(""),
                    card.currency.as_deref().unwrap_or("")
                ));
            }
            line
        }
        ServerMsg::Live {} | ServerMsg::Ack { .. } => return None,
        ServerMsg::Rejected { code, reason, .. } => {
            format!(
                "* refused ({}): {reason}",
                serde_json::to_string(code).ok()?
            )
        }
        ServerMsg::Deleted { id } => format!("* message {id} deleted"),
        ServerMsg::Pinned { message: Some(m) } => format!("* pinned [{}] {}", m.id, m.text),
        ServerMsg::Pinned { message: None } => "* unpinned".to_string(),
        ServerMsg::Presence { count } => format!("* {count} here"),
        ServerMsg::SlowMode { seconds } => format!("* slow mode {seconds} s"),
    })
}

/// Runs `cuecast chat`.
pub async fn run(args: ChatArgs) -> anyhow::Result<()> {
    let server = tokio::net::lookup_host(&args.server)
        .await
        .with_context(|| format!("--server {}", args.server))?
        .next()
        .with_context(|| format!("--server {}: no address", args.server))?;
    let host = args
        .server
        .rsplit_once(':')
        .map(|(h, _)| h.trim_matches(['[', ']']))
        .unwrap_or("localhost")
        .to_string();
    let trust = match &args.ca {
        Some(path) => load_ca(path)?,
        None => fetch_pins(&args.http).await?.0,
    };
    let endpoint = endpoint(server)?;
    let conn = connect(&endpoint, server, &host, &trust).await?;
    let mut stream = ChatStream::join(conn.clone(), &args.room, args.token.clone(), None).await?;
    let mut stdout = tokio::io::stdout();
    let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
    let mut stdin_open = true;
    let mut outstanding: HashSet<String> = HashSet::new();
    let mut counter = 0u64;
    let mut drain_deadline = None;
    // After stdin ends: print the backfill (up to `live`) and the answers to our posts, then exit.
    let mut live = false;
    loop {
        let drain = async {
            match drain_deadline {
                Some(deadline) => tokio::time::sleep_until(deadline).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            line = lines.next_line(), if stdin_open => match line? {
                Some(line) if line.trim().is_empty() => {}
                Some(line) => {
                    counter += 1;
                    let nonce = format!("cli-{counter}");
                    outstanding.insert(nonce.clone());
                    stream.send(&ClientMsg::Post { text: line, link: None, product: None, nonce: Some(nonce) }).await?;
                }
                None => {
                    stdin_open = false;
                    if live && outstanding.is_empty() {
                        break;
                    }
                    drain_deadline = Some(tokio::time::Instant::now() + DRAIN_WAIT);
                }
            },
            msg = stream.next() => {
                let Some(msg) = msg? else { break };
                if let ServerMsg::Ack { nonce: Some(n), .. } | ServerMsg::Rejected { nonce: Some(n), .. } = &msg {
                    outstanding.remove(n);
                }
                live |= matches!(msg, ServerMsg::Live {});
                let refused = matches!(msg, ServerMsg::Rejected { .. });
                if let Some(line) = render(&msg, args.json) {
                    if refused && !args.json {
                        eprintln!("{line}");
                    } else {
                        stdout.write_all(format!("{line}\n").as_bytes()).await?;
                        stdout.flush().await?;
                    }
                }
                if !stdin_open && live && outstanding.is_empty() {
                    break;
                }
            }
            () = drain => break,
        }
    }
    let _ = stream.send.finish();
    conn.close(CloseCode::Normal.code().into(), b"bye");
    endpoint.wait_idle().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::hex;

    #[test]
    fn hex_pins_round_trip() {
        let hash = sha256(b"x");
        assert_eq!(parse_hex32(&hex(&hash)), Some(hash));
        assert_eq!(parse_hex32("zz"), None);
    }

    #[test]
    fn json_lines_have_kind() {
        let line = render(&ServerMsg::Deleted { id: 3 }, true).unwrap();
        assert_eq!(line, r#"{"id":3,"kind":"deleted"}"#);
        let line = render(&ServerMsg::Presence { count: 2 }, false).unwrap();
        assert_eq!(line, "* 2 here");
    }
}
