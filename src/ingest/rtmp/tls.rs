//! RTMPS: RTMP inside TLS (rustls, ring provider; TLS 1.2 and 1.3) on its own listener. The TLS
//! handshake happens here; the decrypted stream then goes through the same [`super::server`]
//! connection code as plain RTMP.
//!
//! Before handing a connection to rustls its first byte is peeked: a TLS connection starts
//! with a handshake record (content type 22, RFC 8446 §5.1), a plain RTMP one with the version
//! byte C0 = 3 (RTMP 1.0 §5.2.2). So an encoder pointed at the TLS port with `rtmp://` is told
//! apart from a broken TLS client in the log and in the metrics.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use crate::metrics::Metrics;
use crate::tls::{CertError, Issued};

/// Validity of the development certificate (made once per start; encoders that accept it do
/// not check dates).
pub const DEV_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// TLS record content type `handshake` (RFC 8446 §5.1): the first byte of a ClientHello.
const TLS_HANDSHAKE_RECORD: u8 = 22;
/// RTMP's C0 version byte (RTMP 1.0 §5.2.2): the first byte of a plain RTMP client.
const RTMP_VERSION: u8 = 3;

/// Why the RTMPS listener could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The configured files, or generating the development certificate.
    #[error("rtmps.cert_file/key_file: {0}")]
    Certificate(#[source] CertError),
    /// rustls refused the configuration.
    #[error("rtmps: TLS configuration: {0}")]
    Config(#[from] rustls::Error),
}

/// Why a connection to the RTMPS port was closed before RTMP started.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The client spoke plain RTMP.
    #[error("plain RTMP on the TLS port (use rtmps:// or the rtmp port)")]
    PlainRtmp,
    /// The client did not finish the handshake in time.
    #[error("TLS handshake not completed within {0:?}")]
    Timeout(Duration),
    /// The client's first bytes were not a TLS record, or the handshake failed.
    #[error("TLS handshake failed: {0}")]
    Handshake(std::io::Error),
}

impl Refusal {
    /// The `reason` label of `cuecast_rtmps_handshake_failures_total`.
    pub fn label(&self) -> &'static str {
        match self {
            Refusal::PlainRtmp => "plain_rtmp",
            Refusal::Timeout(_) => "timeout",
            Refusal::Handshake(_) => "tls",
        }
    }

    /// Counts this refusal.
    pub fn count(&self, metrics: &Metrics) {
        let counter = match self {
            Refusal::PlainRtmp => &metrics.rtmps_refused_plain_rtmp,
            Refusal::Timeout(_) => &metrics.rtmps_refused_timeout,
            Refusal::Handshake(_) => &metrics.rtmps_refused_tls,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What a connection's first byte says it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    /// A TLS record: go on with the handshake.
    Tls,
    /// RTMP's version byte: plain RTMP.
    PlainRtmp,
    /// Anything else (rustls will refuse it with its own reason).
    Other,
}

impl Opening {
    /// Classifies a connection by its first byte.
    pub fn of(first: u8) -> Opening {
        match first {
            TLS_HANDSHAKE_RECORD => Opening::Tls,
            RTMP_VERSION => Opening::PlainRtmp,
            _ => Opening::Other,
        }
    }
}

/// The RTMPS listener's settings.
#[derive(Clone)]
pub struct TlsSettings {
    /// Listen address.
    pub listen: SocketAddr,
    /// Serves the certificate.
    pub acceptor: TlsAcceptor,
    /// Time a client has from connecting to a completed handshake.
    pub handshake_timeout: Duration,
    /// The certificate is a self-signed development one.
    pub development: bool,
}

impl std::fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsSettings")
            .field("listen", &self.listen)
            .field("handshake_timeout", &self.handshake_timeout)
            .field("development", &self.development)
            .finish_non_exhaustive()
    }
}

impl TlsSettings {
    /// A listener presenting `issued`.
    pub fn new(
        listen: SocketAddr,
        issued: &Issued,
        handshake_timeout: Duration,
        development: bool,
    ) -> Result<TlsSettings, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
            .with_no_client_auth()
            .with_cert_resolver(Arc::new(Fixed(Arc::clone(&issued.key))));
        Ok(TlsSettings {
            listen,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            handshake_timeout,
            development,
        })
    }

    /// Runs the server side of the TLS handshake on `socket`, within the handshake timeout.
    pub async fn accept(&self, socket: TcpStream) -> Result<TlsStream<TcpStream>, Refusal> {
        let timeout = self.handshake_timeout;
        let handshake = async {
            let mut first = [0u8; 1];
            let opening = match socket.peek(&mut first).await {
                Ok(0) => {
                    return Err(Refusal::Handshake(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "closed before sending anything",
                    )));
                }
                Ok(_) => Opening::of(first[0]),
                Err(err) => return Err(Refusal::Handshake(err)),
            };
            if opening == Opening::PlainRtmp {
                return Err(Refusal::PlainRtmp);
            }
            self.acceptor
                .accept(socket)
                .await
                .map_err(Refusal::Handshake)
        };
        tokio::time::timeout(timeout, handshake)
            .await
            .unwrap_or(Err(Refusal::Timeout(timeout)))
    }
}

/// Resolves every ClientHello to the one certificate (SNI is not needed: one listener, one
/// certificate).
#[derive(Debug)]
struct Fixed(Arc<rustls::sign::CertifiedKey>);

impl rustls::server::ResolvesServerCert for Fixed {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        Some(Arc::clone(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_byte_tells_tls_from_plain_rtmp() {
        assert_eq!(Opening::of(0x16), Opening::Tls);
        assert_eq!(Opening::of(0x03), Opening::PlainRtmp);
        assert_eq!(Opening::of(b'G'), Opening::Other);
        let labels = [
            Refusal::PlainRtmp.label(),
            Refusal::Timeout(Duration::from_secs(1)).label(),
            Refusal::Handshake(std::io::ErrorKind::InvalidData.into()).label(),
        ];
        assert_eq!(labels, ["plain_rtmp", "timeout", "tls"]);
    }
}
