//! `[chat]`: the QUIC endpoint and the WebSocket fallback, its certificates, a room's rules, fan-out batching, connection
//! limits and the review hook.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use super::hub::HubSettings;
use super::review::{Decision, ReviewSettings};
use super::room::{LinkPolicy, RoomSettings};
use super::session::ServerSettings;
use crate::setting::{Invalid, positive_secs, secs};

/// `[chat]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run the chat endpoint.
    pub enabled: bool,
    /// UDP address of the QUIC endpoint.
    pub listen: SocketAddr,
    /// Serve the WebSocket fallback (`GET /api/chat/{room}/ws` on the HTTP port).
    pub websocket: bool,
    /// Operator certificate chain (PEM); empty = development certificate.
    pub cert_file: PathBuf,
    /// Operator private key (PEM).
    pub key_file: PathBuf,
    /// Names in the development certificate.
    pub dev_cert_names: Vec<String>,
    /// Development certificate validity, days (≤ 14).
    pub dev_cert_validity_days: u64,
    /// Messages sent on join and kept in memory per room.
    pub backfill: usize,
    /// Longest viewer message, characters.
    pub max_text_chars: usize,
    /// Longest host/moderator message, characters.
    pub max_staff_text_chars: usize,
    /// Viewer links outside the allowlist: "strip" or "reject".
    pub link_policy: LinkPolicy,
    /// Domains viewers may link to.
    pub link_allowlist: Vec<String>,
    /// Per-user burst.
    pub rate_burst: u32,
    /// Per-user sustained rate, messages per second.
    pub rate_per_s: f64,
    /// Default slow mode, seconds.
    pub slow_mode_s: u64,
    /// Largest client frame, bytes.
    pub max_frame_bytes: usize,
    /// Per-client queue, batches.
    pub queue_batches: usize,
    /// Fan-out tick, ms (0 = immediate).
    pub batch_ms: u64,
    /// Member groups flushed in turn across the tick.
    pub batch_phases: usize,
    /// UDP socket send/receive buffer, bytes.
    pub socket_buffer_bytes: usize,
    /// Time to send hello, seconds.
    pub hello_timeout_s: f64,
    /// Idle timeout, seconds.
    pub idle_timeout_s: f64,
    /// Connections per client IP.
    pub max_connections_per_ip: usize,
    /// Connections in total.
    pub max_connections: usize,
    /// Review hook URL (empty = none).
    pub review_url: String,
    /// Review hook timeout, ms.
    pub review_timeout_ms: u64,
    /// Decision when the hook fails: "allow" or "deny".
    pub review_fallback: Decision,
    /// Origins a browser's WebTransport session may come from besides the chat's own host.
    pub allowed_origins: Vec<String>,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[chat]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        for (key, value) in [
            ("hello_timeout_s", self.hello_timeout_s),
            ("idle_timeout_s", self.idle_timeout_s),
            ("rate_per_s", self.rate_per_s),
        ] {
            positive_secs(key, value)?;
        }
        if !(1..=14).contains(&self.dev_cert_validity_days) {
            return Err(Invalid::new(
                "dev_cert_validity_days",
                "must be 1..=14 (browsers refuse serverCertificateHashes beyond 14 days)",
            ));
        }
        if self.cert_file.as_os_str().is_empty() != self.key_file.as_os_str().is_empty() {
            return Err(Invalid::new(
                "key_file",
                "chat.cert_file and chat.key_file must be set together",
            ));
        }
        if self.dev_cert_names.is_empty() {
            return Err(Invalid::new("dev_cert_names", "must not be empty"));
        }
        for (key, value, min) in [
            ("max_text_chars", self.max_text_chars, 1),
            ("max_staff_text_chars", self.max_staff_text_chars, 1),
            ("max_frame_bytes", self.max_frame_bytes, 1024),
            ("queue_batches", self.queue_batches, 4),
            ("max_connections_per_ip", self.max_connections_per_ip, 1),
            ("max_connections", self.max_connections, 1),
            ("rate_burst", self.rate_burst as usize, 1),
        ] {
            if value < min {
                return Err(Invalid::new(key, format!("must be at least {min}")));
            }
        }
        for origin in &self.allowed_origins {
            if origin != "*" && !super::server::is_origin(origin.trim_end_matches('/')) {
                return Err(Invalid::new(
                    "allowed_origins",
                    format!("`{origin}` is not \"*\" or an origin such as https://shop.example"),
                ));
            }
        }
        if !(1..=100).contains(&self.batch_phases) {
            return Err(Invalid::new("batch_phases", "must be 1..=100"));
        }
        if self.batch_ms > 0 && self.batch_ms < self.batch_phases as u64 {
            return Err(Invalid::new(
                "batch_phases",
                format!(
                    "must be at most chat.batch_ms ({}): one phase per millisecond at most",
                    self.batch_ms
                ),
            ));
        }
        if self.max_frame_bytes > 1 << 20 {
            return Err(Invalid::new("max_frame_bytes", "must be at most 1048576"));
        }
        let web = ["http://", "https://"]
            .iter()
            .any(|scheme| self.review_url.starts_with(scheme));
        if !self.review_url.is_empty() && !web {
            return Err(Invalid::new("review_url", "must be an http(s) URL"));
        }
        if !(1..=10_000).contains(&self.review_timeout_ms) {
            return Err(Invalid::new("review_timeout_ms", "must be 1..=10000"));
        }
        Ok(())
    }

    /// The QUIC endpoint's limits.
    pub fn server_settings(&self) -> ServerSettings {
        ServerSettings {
            max_frame: self.max_frame_bytes,
            hello_timeout: secs(self.hello_timeout_s),
            max_connections_per_ip: self.max_connections_per_ip,
            max_connections: self.max_connections,
            idle_timeout: secs(self.idle_timeout_s),
            websocket: self.websocket,
            allowed_origins: self
                .allowed_origins
                .iter()
                .map(|o| o.trim_end_matches('/').to_ascii_lowercase())
                .collect(),
        }
    }

    /// The rooms' rules and the fan-out batching.
    pub fn hub_settings(&self) -> HubSettings {
        HubSettings {
            room: Arc::new(RoomSettings {
                backfill: self.backfill,
                max_text_chars: self.max_text_chars,
                max_staff_text_chars: self.max_staff_text_chars,
                link_policy: self.link_policy,
                link_allowlist: self
                    .link_allowlist
                    .iter()
                    .map(|d| d.to_ascii_lowercase())
                    .collect(),
                rate_burst: self.rate_burst,
                rate_per_s: self.rate_per_s,
                slow_mode: Duration::from_secs(self.slow_mode_s),
            }),
            tick: Duration::from_millis(self.batch_ms),
            phases: self.batch_phases,
            queue: self.queue_batches,
        }
    }

    /// The review hook, when a URL is set.
    pub fn review_settings(&self) -> Option<ReviewSettings> {
        (!self.review_url.is_empty()).then(|| ReviewSettings {
            url: self.review_url.clone(),
            timeout: Duration::from_millis(self.review_timeout_ms),
            fallback: self.review_fallback,
        })
    }
}
