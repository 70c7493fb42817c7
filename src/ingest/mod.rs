//! Ingest: the protocols through which hosts publish (RTMP; SRT later), and what they share:
//! stream-key authentication and the one-publisher-per-stream rule.

pub mod flv;
pub mod rtmp;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::config::StreamConfig;
use crate::hls::registry::Registry;
use crate::media::MediaSettings;
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
    /// Protocol name ("rtmp").
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
