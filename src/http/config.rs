//! `[http]` (where the server listens, CORS) and `[api]` (the admin token).

use std::net::SocketAddr;

use serde::Deserialize;
use tokio::net::{TcpListener, TcpSocket};

use super::HttpError;
use super::auth::AdminToken;
use super::server::Limits;
use crate::setting::{Invalid, positive_secs, secs};

/// The development admin token shipped in the default config.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Access-Control-Allow-Origin value.
    pub cors_allow_origin: String,
    /// Time a client has to send a whole request head, seconds.
    pub header_read_timeout_s: f64,
    /// Largest request head (request line and headers), bytes.
    pub max_header_bytes: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Open connections in total.
    pub max_connections: usize,
}

/// Connections the kernel queues before they are accepted: a burst of players (a show starts,
/// a CDN fails over) beyond it would wait for SYN retransmits (1 s, 3 s, 7 s …).
const LISTEN_BACKLOG: u32 = 4096;

/// Smallest `max_header_bytes` (hyper's smallest read buffer).
const MIN_HEADER_BYTES: usize = 8192;
/// Largest `max_header_bytes`.
const MAX_HEADER_BYTES: usize = 1024 * 1024;

impl Config {
    /// Checks what serde cannot; keys are relative to `[http]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        positive_secs("header_read_timeout_s", self.header_read_timeout_s)?;
        if !(MIN_HEADER_BYTES..=MAX_HEADER_BYTES).contains(&self.max_header_bytes) {
            return Err(Invalid::new(
                "max_header_bytes",
                format!("must be {MIN_HEADER_BYTES}..={MAX_HEADER_BYTES}"),
            ));
        }
        for (key, value) in [
            ("max_connections_per_ip", self.max_connections_per_ip),
            ("max_connections", self.max_connections),
        ] {
            if value < 1 {
                return Err(Invalid::new(key, "must be at least 1"));
            }
        }
        if self.max_connections_per_ip > self.max_connections {
            return Err(Invalid::new(
                "max_connections_per_ip",
                "must not exceed http.max_connections",
            ));
        }
        Ok(())
    }

    /// The connection limits the server applies.
    pub fn limits(&self) -> Limits {
        Limits {
            header_read_timeout: secs(self.header_read_timeout_s),
            max_header_bytes: self.max_header_bytes,
            max_connections_per_ip: self.max_connections_per_ip,
            max_connections: self.max_connections,
        }
    }

    /// Binds the listen address (`http.listen` in the error).
    /// The backlog is [`LISTEN_BACKLOG`] (the kernel caps it at `net.core.somaxconn`).
    pub async fn bind(&self) -> Result<TcpListener, HttpError> {
        let bind = || {
            let socket = if self.listen.is_ipv4() {
                TcpSocket::new_v4()?
            } else {
                TcpSocket::new_v6()?
            };
            socket.set_reuseaddr(true)?;
            socket.bind(self.listen)?;
            socket.listen(LISTEN_BACKLOG)
        };
        bind().map_err(|source| HttpError::Bind {
            addr: self.listen,
            source,
        })
    }
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Admin bearer token.
    pub admin_token: String,
}

impl ApiConfig {
    /// Checks what serde cannot; keys are relative to `[api]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        if self.admin_token.len() < 8 {
            return Err(Invalid::new("admin_token", "must be at least 8 characters"));
        }
        Ok(())
    }

    /// The admin token the routers check; warns while it is the public development default.
    pub fn admin_token(&self) -> AdminToken {
        if self.admin_token == DEV_ADMIN_TOKEN {
            tracing::warn!(
                "api.admin_token is the public development default; set your own before exposing this server"
            );
        }
        AdminToken::new(self.admin_token.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> Config {
        Config {
            listen: "127.0.0.1:0".parse().unwrap(),
            cors_allow_origin: "*".into(),
            header_read_timeout_s: 10.0,
            max_header_bytes: 16384,
            max_connections_per_ip: 1024,
            max_connections: 16384,
        }
    }

    #[test]
    fn limits_are_validated_naming_the_key() {
        assert!(config().validate().is_ok());
        type Change = fn(&mut Config);
        let cases: [(&str, Change); 6] = [
            ("header_read_timeout_s", |c| c.header_read_timeout_s = 0.0),
            ("header_read_timeout_s", |c| {
                c.header_read_timeout_s = f64::NAN
            }),
            ("max_header_bytes", |c| c.max_header_bytes = 4096),
            ("max_header_bytes", |c| c.max_header_bytes = 2 << 20),
            ("max_connections", |c| c.max_connections = 0),
            ("max_connections_per_ip", |c| {
                c.max_connections_per_ip = 20000
            }),
        ];
        for (key, change) in cases {
            let mut bad = config();
            change(&mut bad);
            let err = bad.validate().expect_err(key);
            assert!(err.to_string().contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn limits_carry_the_configured_values() {
        let limits = config().limits();
        assert_eq!(
            limits.header_read_timeout,
            std::time::Duration::from_secs(10)
        );
        assert_eq!(limits.max_header_bytes, 16384);
        assert_eq!(limits.max_connections_per_ip, 1024);
        assert_eq!(limits.max_connections, 16384);
    }
}
