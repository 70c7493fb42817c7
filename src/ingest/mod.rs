//! Ingest: the protocols through which hosts publish (RTMP, SRT), and what they share:
//! stream-key authentication, the one-publisher-per-stream rule, and continuity across
//! reconnects ([`IngestContext::begin_publish`], [`Publication::end`]).

mod config;
pub mod flv;
pub mod keys;
pub mod limits;
pub mod names;
pub mod rtmp;
mod runtime;
pub mod srt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::cluster::handoff::HandoffSource;
use crate::cluster::lease::{LeaseError, LeaseGuard, Leases};
use crate::hls::handoff::StreamHandoff;
use crate::hls::registry::Registry;
use crate::hls::stream::HlsStream;
use crate::media::frame::MediaUnit;
use crate::media::{MediaError, MediaSettings, StreamPipeline};
use crate::metrics::Metrics;
use crate::metrics::stream::StreamStats;
use crate::webhooks::admission::AdmissionHook;

pub use config::{Config, StreamConfig};
pub use keys::{HostKeys, StreamKeys};
pub use runtime::{Ingest, IngestError};

/// Who is publishing a stream.
#[derive(Debug, Clone)]
pub struct PublisherInfo {
    /// The publisher's address.
    pub peer: SocketAddr,
    /// Protocol name ("rtmp", "srt").
    pub protocol: &'static str,
    /// When the publish started.
    pub since: Instant,
}

/// One live stream's publisher.
#[derive(Debug)]
struct LiveEntry {
    info: PublisherInfo,
    /// Identifies the claim holding the entry (a replaced claim must not remove its successor).
    claim_id: u64,
    /// Cancelled when another publisher takes the stream over.
    kick: CancellationToken,
}

/// The streams that currently have a publisher.
#[derive(Debug, Default)]
pub struct LiveSet {
    live: Mutex<HashMap<String, LiveEntry>>,
    next_id: AtomicU64,
}

impl LiveSet {
    /// Claims `name` for a publisher; `Err` with the current publisher if it is taken.
    pub fn claim(
        self: &Arc<Self>,
        name: &str,
        info: PublisherInfo,
    ) -> Result<PublishClaim, PublisherInfo> {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(current) = live.get(name) {
            return Err(current.info.clone());
        }
        Ok(self.insert(&mut live, name, info))
    }

    /// Claims `name` even if it is taken: the current publisher's claim is told to stop
    /// ([`PublishClaim::kicked`]) and the current publisher is returned.
    pub fn take_over(
        self: &Arc<Self>,
        name: &str,
        info: PublisherInfo,
    ) -> (PublishClaim, Option<PublisherInfo>) {
        let mut live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        let previous = live.remove(name).map(|entry| {
            entry.kick.cancel();
            entry.info
        });
        (self.insert(&mut live, name, info), previous)
    }

    fn insert(
        self: &Arc<Self>,
        live: &mut HashMap<String, LiveEntry>,
        name: &str,
        info: PublisherInfo,
    ) -> PublishClaim {
        let claim_id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let kick = CancellationToken::new();
        live.insert(
            name.to_string(),
            LiveEntry {
                info,
                claim_id,
                kick: kick.clone(),
            },
        );
        PublishClaim {
            name: name.to_string(),
            claim_id,
            kick,
            set: Arc::clone(self),
        }
    }

    /// Tells the publisher of `name`, if live, to stop (its key was revoked); `true` if there
    /// was one.
    pub fn kick(&self, name: &str) -> bool {
        let live = self.live.lock().unwrap_or_else(|e| e.into_inner());
        live.get(name).map(|entry| entry.kick.cancel()).is_some()
    }

    /// The publisher of `name`, if live.
    pub fn get(&self, name: &str) -> Option<PublisherInfo> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .map(|entry| entry.info.clone())
    }
}

/// A stream's publish slot, released on drop.
#[derive(Debug)]
pub struct PublishClaim {
    name: String,
    claim_id: u64,
    kick: CancellationToken,
    set: Arc<LiveSet>,
}

impl PublishClaim {
    /// Cancelled when another publisher took the stream over: end this publish.
    pub fn kicked(&self) -> CancellationToken {
        self.kick.clone()
    }
}

impl Drop for PublishClaim {
    fn drop(&mut self) {
        let mut live = self.set.live.lock().unwrap_or_else(|e| e.into_inner());
        if live
            .get(&self.name)
            .is_some_and(|entry| entry.claim_id == self.claim_id)
        {
            live.remove(&self.name);
        }
    }
}

/// What every ingest protocol needs from the rest of the server.
pub struct IngestContext {
    /// Key → name (configured and hosts' keys, updated at run time).
    pub keys: Arc<StreamKeys>,
    /// Current publishers.
    pub live: Arc<LiveSet>,
    /// Where streams are packaged and served.
    pub registry: Arc<Registry>,
    /// Pipeline settings.
    pub media: Arc<MediaSettings>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// How long a stream whose publisher was lost waits for it to come back (zero: it ends at
    /// once).
    pub reconnect_grace: Duration,
    /// A new publisher of a live stream replaces the current one instead of being refused.
    pub takeover: bool,
    /// The publish admission hook (RTMP, RTMPS and SRT), when configured.
    pub admission: Option<Arc<AdmissionHook>>,
    /// Stream ownership leases in Redis, when clustered: a publish takes its stream's lease
    /// before it claims the stream here (docs/scaling.md).
    pub leases: Option<Arc<Leases>>,
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishEnd {
    /// The server is shutting down: the playlists end now (EXT-X-ENDLIST).
    Finished,
    /// The publisher stopped on purpose (RTMP FCUnpublish/deleteStream): the playlists end now,
    /// unless the registry's lifecycle holds the session (a stream whose show has not ended:
    /// an encoder restart keeps the show) — then it is treated as [`PublishEnd::Lost`].
    Unpublished,
    /// The connection was lost (dropped, timed out, or closed without an unpublish — SRT has
    /// none): the stream stays live for the reconnect grace period, and a publisher of the
    /// same key within it continues the same session.
    Lost,
}

/// One publish in progress: the publish slot, the stream it feeds and its media pipeline.
pub struct Publication {
    /// Public stream name.
    pub name: String,
    /// The stream (a continued session when `resumed`).
    pub stream: Arc<HlsStream>,
    /// This publish continues a stream whose publisher was lost within the grace period.
    pub resumed: bool,
    pipeline: StreamPipeline,
    grace: Duration,
    /// The stream's publish generation this publication belongs to.
    generation: u64,
    /// Asked whether a clean unpublish holds the session.
    registry: Arc<Registry>,
    /// Released after the pipeline was told to end.
    claim: PublishClaim,
    /// The stream's live statistics, fed with every unit.
    stats: Arc<StreamStats>,
    /// The stream's ownership lease (clustered), held until the stream ends here — through the
    /// reconnect grace.
    lease: Option<LeaseGuard>,
}

impl IngestContext {
    /// Takes `name`'s ownership lease when clustered (`Ok(None)` on a single node). `Err`
    /// when another node publishes it, or Redis cannot say — the publish is then refused as a
    /// duplicate publish is on one node.
    pub async fn lease(&self, name: &str) -> Result<Option<LeaseGuard>, LeaseError> {
        match &self.leases {
            Some(leases) => leases.acquire(name).await.map(Some),
            None => Ok(None),
        }
    }

    /// [`IngestContext::lease`] from a thread outside the runtime (SRT's).
    pub fn lease_blocking(&self, name: &str) -> Result<Option<LeaseGuard>, LeaseError> {
        match &self.leases {
            Some(leases) => leases.acquire_blocking(name).map(Some),
            None => Ok(None),
        }
    }

    /// Starts publishing `name` (a known stream): claims the publish slot, then continues the
    /// stream's session if its previous publisher was lost within the grace period, else starts
    /// a new session. `Err` with the current publisher if the stream is live — unless takeover
    /// is on: then the current publisher is told to stop ([`Publication::kicked`]) and this one
    /// continues its session.
    pub fn begin_publish(
        &self,
        name: &str,
        info: PublisherInfo,
    ) -> Result<Publication, PublisherInfo> {
        self.begin_publish_leased(name, info, None)
    }

    /// [`Self::begin_publish`] holding `lease` (clustered, [`Self::lease`]) for as long as the
    /// stream is live here. When the lease was just taken from a node that died within the
    /// reconnect grace, its handoff continues that node's session here (same URLs, numbering
    /// continued, EXT-X-DISCONTINUITY at the seam); and while the stream is live here its
    /// handoff is kept in Redis for the next node (docs/scaling.md).
    pub fn begin_publish_leased(
        &self,
        name: &str,
        info: PublisherInfo,
        mut lease: Option<LeaseGuard>,
    ) -> Result<Publication, PublisherInfo> {
        let (peer, protocol) = (info.peer, info.protocol);
        let (claim, replaced) = if self.takeover {
            self.live.take_over(name, info)
        } else {
            (self.live.claim(name, info)?, None)
        };
        if let Some(previous) = &replaced {
            tracing::info!(
                stream = %name,
                %peer,
                previous = %previous.peer,
                previous_protocol = previous.protocol,
                "new publisher takes the stream over"
            );
        }
        let handoff = lease
            .as_mut()
            .and_then(LeaseGuard::take_handoff)
            .filter(|_| !self.reconnect_grace.is_zero())
            .and_then(|json| match StreamHandoff::from_json(&json) {
                Ok(handoff) => Some(handoff),
                Err(err) => {
                    tracing::warn!(stream = %name, error = %err, "cluster: unreadable handoff; starting a new session");
                    None
                }
            });
        let handoff_session = handoff.as_ref().map(|h| h.session.clone());
        let (stream, resumed) = self.registry.publish_continuing(
            name,
            self.reconnect_grace,
            replaced.is_some(),
            handoff,
        );
        if let Some(session) = handoff_session.filter(|s| *s == stream.session) {
            tracing::info!(
                stream = %name,
                %session,
                "cluster: continuing the session of a node that died (handoff)"
            );
        }
        if let Some(lease) = &lease
            && !self.reconnect_grace.is_zero()
            && stream.keep_handoff()
        {
            let ttl = self.reconnect_grace + lease.leases().cluster().lease_ttl();
            lease.leases().spawn_handoff_writer(
                name,
                Arc::new(HandoffOf(Arc::clone(&stream))),
                ttl,
            );
        }
        let generation = stream.generation();
        if resumed {
            self.metrics
                .publishes_resumed
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::info!(
                stream = %name,
                session = %stream.session,
                "publisher is back within the grace period; continuing the session"
            );
        }
        tracing::info!(
            %peer,
            stream = %name,
            session = %stream.session,
            resumed,
            "{} publish started",
            protocol.to_ascii_uppercase()
        );
        let pipeline = StreamPipeline::new(Arc::clone(&stream), Arc::clone(&self.media));
        let stats = self.metrics.streams.get_or_create(name);
        stats.begin(protocol, chrono::Utc::now());
        Ok(Publication {
            stats,
            name: name.to_string(),
            stream,
            resumed,
            pipeline,
            grace: self.reconnect_grace,
            generation,
            registry: Arc::clone(&self.registry),
            claim,
            lease,
        })
    }
}

/// A live stream as the cluster's handoff writer reads it.
struct HandoffOf(Arc<HlsStream>);

impl HandoffSource for HandoffOf {
    fn key(&self) -> u64 {
        self.0.handoff_key()
    }

    fn snapshot(&self) -> String {
        self.0.handoff().to_json()
    }

    fn ended(&self) -> bool {
        self.0.is_ended()
    }
}

impl Publication {
    /// Cancelled when another publisher took the stream over (with `ingest.takeover`): the
    /// driver ends this publish ([`PublishEnd::Lost`]) and closes its connection.
    pub fn kicked(&self) -> CancellationToken {
        self.claim.kicked()
    }

    /// Feeds one media unit (see [`StreamPipeline::push`]), counted in the stream's
    /// statistics.
    pub fn push(&mut self, unit: MediaUnit) -> Result<(), MediaError> {
        crate::media::stats::observe(&self.stats, self.stats.now_ns(), &unit);
        self.pipeline.push(unit)
    }

    /// Ends the publish. [`PublishEnd::Lost`] (or an [`PublishEnd::Unpublished`] that the
    /// registry holds) with a grace period: the pipeline drains, the playlists stay live, and
    /// the stream ends (EXT-X-ENDLIST) when the grace period passes without a publisher
    /// continuing it. Needs a Tokio runtime (the grace timer).
    pub fn end(mut self, how: PublishEnd) {
        let hold = match how {
            PublishEnd::Finished => false,
            PublishEnd::Lost => true,
            PublishEnd::Unpublished => self.registry.holds_on_unpublish(&self.name),
        };
        if !hold || self.grace.is_zero() {
            self.pipeline.finish();
            return;
        }
        if how == PublishEnd::Unpublished {
            tracing::info!(
                stream = %self.name,
                "publisher stopped; the session is held for the reconnect grace (its show goes on)"
            );
        }
        self.pipeline.interrupt();
        if !self.stream.interrupt(self.generation) {
            // Taken over: the stream already belongs to the next publisher.
            return;
        }
        let generation = self.generation;
        let (stream, grace) = (Arc::clone(&self.stream), self.grace);
        // The stream stays this node's while it waits for its publisher.
        let lease = self.lease.take();
        tracing::info!(
            stream = %self.name,
            grace_s = grace.as_secs_f64(),
            "publisher lost; the stream waits for it to reconnect"
        );
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            if stream.end_if_still_interrupted(generation) {
                tracing::info!(
                    stream = %stream.name,
                    "no publisher came back within the grace period; the stream ended"
                );
            }
            drop(lease);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info() -> PublisherInfo {
        PublisherInfo {
            peer: "127.0.0.1:5000".parse().unwrap(),
            protocol: "rtmp",
            since: Instant::now(),
        }
    }

    #[test]
    fn take_over_kicks_the_current_claim_which_then_releases_nothing() {
        let live = Arc::new(LiveSet::default());
        let first = live.claim("demo", info()).expect("first claim");
        let kicked = first.kicked();
        let (second, previous) = live.take_over("demo", info());
        assert!(previous.is_some());
        assert!(kicked.is_cancelled());
        assert!(!second.kicked().is_cancelled());
        drop(first);
        assert!(live.get("demo").is_some(), "the new claim stays");
        drop(second);
        assert!(live.get("demo").is_none());
        let (_third, previous) = live.take_over("demo", info());
        assert!(previous.is_none());
    }

    #[test]
    fn one_publisher_per_stream_and_release_on_drop() {
        let live = Arc::new(LiveSet::default());
        let claim = live.claim("demo", info()).expect("first claim");
        assert!(live.claim("demo", info()).is_err());
        assert!(live.claim("other", info()).is_ok());
        drop(claim);
        assert!(live.get("demo").is_none());
        assert!(live.claim("demo", info()).is_ok());
    }
}
