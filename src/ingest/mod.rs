//! Ingest: the protocols through which hosts publish (RTMP, SRT), and what they share:
//! stream-key authentication, the one-publisher-per-stream rule, and continuity across
//! reconnects ([`IngestContext::begin_publish`], [`Publication::end`]).

pub mod flv;
pub mod rtmp;
pub mod srt;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::config::StreamConfig;
use crate::hls::registry::Registry;
use crate::hls::stream::HlsStream;
use crate::media::frame::MediaUnit;
use crate::media::{MediaError, MediaSettings, StreamPipeline};
use crate::metrics::Metrics;

/// Publish keys → public stream names.
#[derive(Debug, Clone, Default)]
pub struct StreamKeys {
    by_key: HashMap<String, String>,
}

impl StreamKeys {
    /// Keys from the `[[streams]]` config.
    pub fn new(streams: &[StreamConfig]) -> StreamKeys {
        StreamKeys {
            by_key: streams
                .iter()
                .map(|s| (s.key.clone(), s.name.clone()))
                .collect(),
        }
    }

    /// The stream name for a publish key (a `?query` suffix, as some encoders append, is ignored).
    pub fn stream_for(&self, key: &str) -> Option<&str> {
        let key = key.split('?').next().unwrap_or(key);
        self.by_key.get(key).map(String::as_str)
    }

    /// All configured stream names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.by_key.values().cloned().collect();
        names.sort();
        names
    }
}

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

/// The streams that currently have a publisher.
#[derive(Debug, Default)]
pub struct LiveSet {
    live: Mutex<HashMap<String, PublisherInfo>>,
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
            return Err(current.clone());
        }
        live.insert(name.to_string(), info);
        Ok(PublishClaim {
            name: name.to_string(),
            set: Arc::clone(self),
        })
    }

    /// The publisher of `name`, if live.
    pub fn get(&self, name: &str) -> Option<PublisherInfo> {
        self.live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(name)
            .cloned()
    }
}

/// A stream's publish slot, released on drop.
#[derive(Debug)]
pub struct PublishClaim {
    name: String,
    set: Arc<LiveSet>,
}

impl Drop for PublishClaim {
    fn drop(&mut self) {
        self.set
            .live
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.name);
    }
}

/// What every ingest protocol needs from the rest of the server.
pub struct IngestContext {
    /// Key → name.
    pub keys: StreamKeys,
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
}

/// How a publish ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PublishEnd {
    /// The publisher stopped on purpose (RTMP FCUnpublish/deleteStream) or the server is
    /// shutting down: the playlists end now (EXT-X-ENDLIST).
    Finished,
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
    /// Released after the pipeline was told to end.
    _claim: PublishClaim,
}

impl IngestContext {
    /// Starts publishing `name` (a known stream): claims the publish slot, then continues the
    /// stream's session if its previous publisher was lost within the grace period, else starts
    /// a new session. `Err` with the current publisher if the stream is live.
    pub fn begin_publish(
        &self,
        name: &str,
        info: PublisherInfo,
    ) -> Result<Publication, PublisherInfo> {
        let (peer, protocol) = (info.peer, info.protocol);
        let claim = self.live.claim(name, info)?;
        let (stream, resumed) = self.registry.publish(name, self.reconnect_grace);
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
        Ok(Publication {
            name: name.to_string(),
            stream,
            resumed,
            pipeline,
            grace: self.reconnect_grace,
            _claim: claim,
        })
    }
}

impl Publication {
    /// Feeds one media unit (see [`StreamPipeline::push`]).
    pub fn push(&mut self, unit: MediaUnit) -> Result<(), MediaError> {
        self.pipeline.push(unit)
    }

    /// Ends the publish. [`PublishEnd::Lost`] with a grace period: the pipeline drains, the
    /// playlists stay live, and the stream ends (EXT-X-ENDLIST) when the grace period passes
    /// without a publisher continuing it. Needs a Tokio runtime (the grace timer).
    pub fn end(mut self, how: PublishEnd) {
        if how == PublishEnd::Finished || self.grace.is_zero() {
            self.pipeline.finish();
            return;
        }
        self.pipeline.interrupt();
        let generation = self.stream.interrupt();
        let (stream, grace) = (Arc::clone(&self.stream), self.grace);
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
    fn keys_map_to_names_ignoring_query() {
        let keys = StreamKeys::new(&[StreamConfig {
            name: "demo".into(),
            key: "demo-key".into(),
            srt_passphrase: String::new(),
        }]);
        assert_eq!(keys.stream_for("demo-key"), Some("demo"));
        assert_eq!(keys.stream_for("demo-key?obs=1"), Some("demo"));
        assert_eq!(keys.stream_for("demo"), None);
        assert_eq!(keys.stream_for(""), None);
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
