//! SRT ingest: one UDP port, many publishers, routed by stream id (docs/srt.md).
//!
//! - [`streamid`]: parsing the stream id forms (pure).
//! - [`Admission`] / [`SrtSettings::admit`]: the handshake-time decision — which stream, which
//!   passphrase, or which reject reason (pure; `srt_listen_callback` calls it).
//! - [`ffi`]: the few libsrt functions used, hand-bound and private, behind a safe API (an owned
//!   socket closed on drop, an epoll set, errors with libsrt's code and text).
//! - [`server`]: the driver — one thread with one `srt_epoll` for the listener and every caller,
//!   MPEG-TS handed to a [`crate::media::mpegts::TsDemuxer`] per publisher, units to a Tokio task
//!   owning the [`crate::ingest::Publication`].

mod config;
pub mod ffi;
pub mod server;
pub mod streamid;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use streamid::{RejectReason, Rejection};

use super::{LiveSet, StreamConfig, StreamKeys};

pub use config::{Config, check_passphrase};

/// Settings of the SRT listener.
#[derive(Debug, Clone)]
pub struct SrtSettings {
    /// UDP address to bind.
    pub listen: SocketAddr,
    /// Application name accepted in resources (`live` in `live/KEY`): RTMP's `rtmp.app`.
    pub app: String,
    /// Receiver latency, ms.
    pub latency_ms: u32,
    /// Passphrase for callers whose stream has none of its own (`None`: no encryption).
    pub passphrase: Option<String>,
    /// Key length for the listener's passphrase (16, 24, 32).
    pub pbkeylen: u32,
    /// Per stream key: its own passphrase.
    pub stream_passphrases: HashMap<String, String>,
    /// Close callers silent for this long.
    pub idle_timeout: Duration,
    /// Most simultaneous callers.
    pub max_connections: usize,
    /// Most simultaneous callers from one address (IPv6: per /64).
    pub max_connections_per_ip: usize,
    /// A caller for a live stream takes it over (`ingest.takeover`) instead of being refused.
    pub takeover: bool,
    /// Read callers' data in batches of this period (None: as it arrives).
    pub read_batch: Option<Duration>,
}

impl SrtSettings {
    /// Per-stream passphrases from the `[[streams]]` config.
    pub fn stream_passphrases(streams: &[StreamConfig]) -> HashMap<String, String> {
        streams
            .iter()
            .filter(|s| !s.srt_passphrase.is_empty())
            .map(|s| (s.key.clone(), s.srt_passphrase.clone()))
            .collect()
    }

    /// The handshake-time decision for a caller with `stream_id`.
    ///
    /// Refused: unparsable ids and other modes (see [`streamid`]), unknown keys
    /// (`SRT_REJX_FORBIDDEN`), streams that already have a publisher (`SRT_REJX_CONFLICT`,
    /// unless takeover is on).
    /// Accepted: the stream's name and the passphrase the caller must use (the stream's own,
    /// else the global one; libsrt then rejects a wrong one with `SRT_REJ_BADSECRET`).
    pub fn admit(
        &self,
        stream_id: &str,
        keys: &StreamKeys,
        live: &LiveSet,
    ) -> Result<Admission, Rejection> {
        let request = streamid::parse(stream_id, &self.app)?;
        let name = keys.stream_for(&request.key).ok_or_else(|| Rejection {
            reason: RejectReason::Forbidden,
            detail: "unknown stream key".into(),
        })?;
        self.admit_to(name, &request, live)
    }

    /// The rest of [`SrtSettings::admit`] once the key's stream `name` is decided (by the keys,
    /// or by the admission hook): refused if live (unless takeover), else the passphrase.
    pub fn admit_to(
        &self,
        name: String,
        request: &streamid::PublishRequest,
        live: &LiveSet,
    ) -> Result<Admission, Rejection> {
        if let Some(current) = live.get(&name).filter(|_| !self.takeover) {
            return Err(Rejection {
                reason: RejectReason::Conflict,
                detail: format!(
                    "stream `{name}` already has a publisher ({} from {})",
                    current.protocol, current.peer
                ),
            });
        }
        let passphrase = self
            .stream_passphrases
            .get(&request.key)
            .cloned()
            .or_else(|| self.passphrase.clone());
        Ok(Admission {
            name,
            user: request.user.clone(),
            passphrase,
        })
    }
}

/// A caller admitted at handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    /// Public stream name.
    pub name: String,
    /// `u=` from the stream id.
    pub user: Option<String>,
    /// The passphrase the caller must have used.
    pub passphrase: Option<String>,
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Instant;

    use super::*;
    use crate::ingest::PublisherInfo;

    fn settings() -> SrtSettings {
        SrtSettings {
            listen: "127.0.0.1:0".parse().unwrap(),
            app: "live".into(),
            latency_ms: 200,
            passphrase: Some("global-passphrase".into()),
            pbkeylen: 16,
            stream_passphrases: HashMap::from([("k2".into(), "second-passphrase".into())]),
            idle_timeout: Duration::from_secs(10),
            max_connections: 10,
            max_connections_per_ip: 4,
            takeover: false,
            read_batch: None,
        }
    }

    fn keys() -> StreamKeys {
        StreamKeys::new(&[
            StreamConfig {
                name: "one".into(),
                key: "k1".into(),
                srt_passphrase: String::new(),
            },
            StreamConfig {
                name: "two".into(),
                key: "k2".into(),
                srt_passphrase: "second-passphrase".into(),
            },
        ])
    }

    #[test]
    fn admits_known_keys_with_their_passphrase() {
        let live = LiveSet::default();
        let admission = settings()
            .admit("#!::r=live/k1,m=publish,u=host", &keys(), &live)
            .unwrap();
        assert_eq!(admission.name, "one");
        assert_eq!(admission.user.as_deref(), Some("host"));
        assert_eq!(admission.passphrase.as_deref(), Some("global-passphrase"));
        let admission = settings().admit("publish:live/k2", &keys(), &live).unwrap();
        assert_eq!(admission.name, "two");
        assert_eq!(admission.passphrase.as_deref(), Some("second-passphrase"));
        let open = SrtSettings {
            passphrase: None,
            ..settings()
        };
        assert_eq!(open.admit("k1", &keys(), &live).unwrap().passphrase, None);
    }

    #[test]
    fn refuses_unknown_keys_live_streams_and_bad_ids() {
        let live = Arc::new(LiveSet::default());
        let reason = |id: &str| settings().admit(id, &keys(), &live).unwrap_err().reason;
        assert_eq!(reason("nope"), RejectReason::Forbidden);
        assert_eq!(reason("#!::r=live/k1,m=request"), RejectReason::BadMode);
        assert_eq!(reason("#!::r"), RejectReason::BadRequest);
        let _claim = live
            .claim(
                "one",
                PublisherInfo {
                    peer: "10.0.0.1:5000".parse().unwrap(),
                    protocol: "rtmp",
                    since: Instant::now(),
                },
            )
            .unwrap();
        let rejection = settings().admit("k1", &keys(), &live).unwrap_err();
        assert_eq!(rejection.reason, RejectReason::Conflict);
        assert!(rejection.detail.contains("10.0.0.1:5000"), "{rejection}");
        let takeover = SrtSettings {
            takeover: true,
            ..settings()
        };
        assert_eq!(takeover.admit("k1", &keys(), &live).unwrap().name, "one");
    }
}
