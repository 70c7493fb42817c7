//! Chat counters, appended to `GET /metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::proto::{ALL_CLOSE_CODES, CloseCode};

/// Everything chat counts.
#[derive(Debug, Default)]
pub struct ChatMetrics {
    /// Connections accepted (native, WebTransport and WebSocket).
    pub connections: AtomicU64,
    /// Connections open now.
    pub open: AtomicI64,
    /// Closes by the server, per close code (index = code).
    pub closes: [AtomicU64; ALL_CLOSE_CODES.len()],
    /// Messages accepted.
    pub messages: AtomicU64,
    /// Requests refused (rate limit, slow mode, policy, permissions).
    pub rejected: AtomicU64,
    /// Review hook answered allow / deny.
    pub review_allow: AtomicU64,
    /// Review hook denied.
    pub review_deny: AtomicU64,
    /// Review hook failed or timed out; the fallback decided.
    pub review_fallback: AtomicU64,
    /// Frames (batches) queued to clients.
    pub deliveries: AtomicU64,
    /// Room events this node appended to the rooms' Redis streams (cluster mode).
    pub bus_published: AtomicU64,
    /// Room events read from the rooms' Redis streams and applied (cluster mode).
    pub bus_applied: AtomicU64,
    /// Room events handled on this node only because Redis could not be reached (cluster mode).
    pub bus_local_only: AtomicU64,
    /// Redis errors of the chat bus (publish, load, stream reads).
    pub bus_errors: AtomicU64,
    /// QUIC handshakes that failed (no common ALPN, not TLS 1.3, bad packets, timeout).
    pub handshake_failures: AtomicU64,
    /// WebTransport sessions refused for their `Origin` (403).
    pub origin_refused: AtomicU64,
}

impl ChatMetrics {
    /// Counts a close by the server.
    pub fn closed(&self, code: CloseCode) {
        self.closes[code.code() as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Prometheus text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for (name, help, value) in [
            (
                "cuecast_chat_connections_total",
                "Chat connections accepted (native, WebTransport and WebSocket).",
                &self.connections,
            ),
            (
                "cuecast_chat_messages_total",
                "Chat messages accepted.",
                &self.messages,
            ),
            (
                "cuecast_chat_rejected_total",
                "Chat requests refused (rate limit, slow mode, link policy, permissions, review).",
                &self.rejected,
            ),
            (
                "cuecast_chat_deliveries_total",
                "Frame batches queued to chat clients.",
                &self.deliveries,
            ),
            (
                "cuecast_chat_bus_published_total",
                "Room events appended to the rooms' Redis streams (cluster mode).",
                &self.bus_published,
            ),
            (
                "cuecast_chat_bus_applied_total",
                "Room events read from the rooms' Redis streams and applied (cluster mode).",
                &self.bus_applied,
            ),
            (
                "cuecast_chat_bus_local_only_total",
                "Room events delivered on this node only because Redis was unreachable.",
                &self.bus_local_only,
            ),
            (
                "cuecast_chat_bus_errors_total",
                "Redis errors of the chat bus (publish, room load, stream reads).",
                &self.bus_errors,
            ),
            (
                "cuecast_chat_handshake_failures_total",
                "QUIC handshakes that failed (no common ALPN, TLS, timeout).",
                &self.handshake_failures,
            ),
            (
                "cuecast_chat_origin_refused_total",
                "WebTransport sessions and WebSocket upgrades refused (403) for a foreign Origin (chat.allowed_origins).",
                &self.origin_refused,
            ),
        ] {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let name = "cuecast_chat_review_total";
        let _ = writeln!(
            out,
            "# HELP {name} Review hook outcomes.\n# TYPE {name} counter"
        );
        for (outcome, value) in [
            ("allow", &self.review_allow),
            ("deny", &self.review_deny),
            ("fallback", &self.review_fallback),
        ] {
            let _ = writeln!(
                out,
                "{name}{{outcome=\"{outcome}\"}} {}",
                value.load(Ordering::Relaxed)
            );
        }
        let name = "cuecast_chat_closes_total";
        let _ = writeln!(
            out,
            "# HELP {name} Chat connections closed by the server, by application error code.\n# TYPE {name} counter"
        );
        for code in ALL_CLOSE_CODES {
            let _ = writeln!(
                out,
                "{name}{{code=\"{}\",reason=\"{}\"}} {}",
                code.code(),
                code.reason(),
                self.closes[code.code() as usize].load(Ordering::Relaxed)
            );
        }
        let name = "cuecast_chat_open_connections";
        let _ = writeln!(
            out,
            "# HELP {name} Chat connections open now.\n# TYPE {name} gauge\n{name} {}",
            self.open.load(Ordering::Relaxed)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_close_codes() {
        let metrics = ChatMetrics::default();
        metrics.closed(CloseCode::FrameTooLarge);
        let text = metrics.render();
        assert!(
            text.contains("cuecast_chat_closes_total{code=\"2\",reason=\"frame too large\"} 1\n")
        );
        assert!(text.contains("cuecast_chat_open_connections 0\n"));
    }
}
