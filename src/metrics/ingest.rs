//! Ingest connections refused or closed by a limit, by protocol and reason (bounded labels:
//! 3 protocols × 6 reasons), rendered as `cuecast_ingest_refused_total{protocol,reason}`.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The ingest protocol of a refused connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestProtocol {
    /// RTMP over TCP.
    Rtmp,
    /// RTMP over TLS.
    Rtmps,
    /// SRT.
    Srt,
}

impl IngestProtocol {
    const ALL: [IngestProtocol; 3] = [Self::Rtmp, Self::Rtmps, Self::Srt];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::Rtmp => "rtmp",
            Self::Rtmps => "rtmps",
            Self::Srt => "srt",
        }
    }

    /// `rtmp` or `rtmps` from the protocol names the RTMP listener uses.
    pub fn rtmp(tls: bool) -> IngestProtocol {
        if tls { Self::Rtmps } else { Self::Rtmp }
    }
}

/// Why a connection was refused or closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// `max_connections` reached.
    MaxConnections,
    /// `max_connections_per_ip` reached.
    MaxConnectionsPerIp,
    /// No publish within `handshake_timeout_s` of the connection.
    HandshakeTimeout,
    /// Nothing received for `idle_timeout_s`.
    IdleTimeout,
    /// A stream name or key refused before any lookup (too long, path characters, control
    /// characters).
    BadStreamName,
    /// A protocol limit: Set Chunk Size out of range or mid-message, message or buffer limits.
    ProtocolLimit,
}

impl RefusalReason {
    const ALL: [RefusalReason; 6] = [
        Self::MaxConnections,
        Self::MaxConnectionsPerIp,
        Self::HandshakeTimeout,
        Self::IdleTimeout,
        Self::BadStreamName,
        Self::ProtocolLimit,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Self::MaxConnections => "max_connections",
            Self::MaxConnectionsPerIp => "max_connections_per_ip",
            Self::HandshakeTimeout => "handshake_timeout",
            Self::IdleTimeout => "idle_timeout",
            Self::BadStreamName => "bad_stream_name",
            Self::ProtocolLimit => "protocol_limit",
        }
    }
}

/// One counter per (protocol, reason).
#[derive(Debug, Default)]
pub struct IngestRefusals {
    counts: [[AtomicU64; RefusalReason::ALL.len()]; IngestProtocol::ALL.len()],
}

impl IngestRefusals {
    /// Counts one refusal.
    pub fn count(&self, protocol: IngestProtocol, reason: RefusalReason) {
        self.counts[protocol as usize][reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// The count of (protocol, reason).
    pub fn get(&self, protocol: IngestProtocol, reason: RefusalReason) -> u64 {
        self.counts[protocol as usize][reason as usize].load(Ordering::Relaxed)
    }

    /// Prometheus text of every (protocol, reason), zeros included.
    pub fn write(&self, out: &mut String) {
        let name = "cuecast_ingest_refused_total";
        let _ = writeln!(
            out,
            "# HELP {name} Ingest connections refused or closed by a limit, by protocol and reason.\n# TYPE {name} counter"
        );
        for protocol in IngestProtocol::ALL {
            for reason in RefusalReason::ALL {
                let _ = writeln!(
                    out,
                    "{name}{{protocol=\"{}\",reason=\"{}\"}} {}",
                    protocol.name(),
                    reason.name(),
                    self.get(protocol, reason)
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_pair_is_rendered_and_counted_apart() {
        let refusals = IngestRefusals::default();
        refusals.count(IngestProtocol::Srt, RefusalReason::MaxConnectionsPerIp);
        refusals.count(IngestProtocol::Srt, RefusalReason::MaxConnectionsPerIp);
        refusals.count(IngestProtocol::Rtmps, RefusalReason::HandshakeTimeout);
        let mut out = String::new();
        refusals.write(&mut out);
        assert!(out.contains(
            "cuecast_ingest_refused_total{protocol=\"srt\",reason=\"max_connections_per_ip\"} 2\n"
        ));
        assert!(out.contains(
            "cuecast_ingest_refused_total{protocol=\"rtmps\",reason=\"handshake_timeout\"} 1\n"
        ));
        assert!(out.contains(
            "cuecast_ingest_refused_total{protocol=\"rtmp\",reason=\"handshake_timeout\"} 0\n"
        ));
        assert_eq!(out.lines().filter(|l| !l.starts_with('#')).count(), 18);
    }
}
