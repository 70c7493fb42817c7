//! `[ingest]` (what every ingest protocol shares: reconnect grace, takeover) and the
//! `[[streams]]` list (publish keys → public stream names).

use std::collections::HashSet;
use std::sync::Arc;

use serde::Deserialize;

use super::names::check_publish_name;
use super::srt::check_passphrase;
use super::{IngestContext, LiveSet, StreamKeys};
use crate::hls::origin::is_valid_stream_name;
use crate::hls::registry::Registry;
use crate::media::MediaSettings;
use crate::metrics::Metrics;
use crate::setting::{Invalid, secs_or_zero};

/// The stream key shipped in the default config.
const DEV_STREAM_KEY: &str = "demo-key";

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// How long a stream whose publisher was lost waits for it to reconnect, seconds (0 = end
    /// at once).
    pub reconnect_grace_s: f64,
    /// A new publisher of a live stream replaces the current one instead of being refused.
    pub takeover: bool,
}

impl Config {
    /// Checks what serde cannot; keys are relative to `[ingest]`.
    pub fn validate(&self) -> Result<(), Invalid> {
        let grace = self.reconnect_grace_s;
        if !(grace.is_finite() && (0.0..=3600.0).contains(&grace)) {
            return Err(Invalid::new(
                "reconnect_grace_s",
                format!("must be between 0 and 3600 seconds, got {grace}"),
            ));
        }
        Ok(())
    }

    /// What every ingest protocol needs from the rest of the server.
    pub fn context(
        &self,
        keys: Arc<StreamKeys>,
        live: Arc<LiveSet>,
        registry: Arc<Registry>,
        media: Arc<MediaSettings>,
        metrics: Arc<Metrics>,
    ) -> IngestContext {
        IngestContext {
            keys,
            live,
            registry,
            media,
            metrics,
            reconnect_grace: secs_or_zero(self.reconnect_grace_s),
            takeover: self.takeover,
            admission: None,
            leases: None,
        }
    }
}

/// One `[[streams]]` entry.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// Public name (playback URLs).
    pub name: String,
    /// Secret publish key.
    pub key: String,
    /// SRT passphrase of this stream (overrides `srt.passphrase`; empty = the global one).
    #[serde(default)]
    pub srt_passphrase: String,
}

impl StreamConfig {
    /// Checks the `[[streams]]` list: each entry, and that names and keys are unique. Keys are
    /// relative to the list (`[1].key`).
    pub fn validate_list(streams: &[StreamConfig]) -> Result<(), Invalid> {
        let mut names = HashSet::new();
        let mut keys = HashSet::new();
        for (i, stream) in streams.iter().enumerate() {
            let within = |err: Invalid| err.within(&format!("[{i}]"));
            stream.validate().map_err(within)?;
            if !names.insert(stream.name.as_str()) {
                return Err(within(Invalid::new("name", "duplicate stream name")));
            }
            if !keys.insert(stream.key.as_str()) {
                return Err(within(Invalid::new("key", "duplicate stream key")));
            }
        }
        Ok(())
    }

    /// Checks one entry; keys are relative to it.
    fn validate(&self) -> Result<(), Invalid> {
        if !is_valid_stream_name(&self.name) {
            return Err(Invalid::new(
                "name",
                format!(
                    "`{}` must be 1-64 characters of letters, digits, '-' or '_'",
                    self.name
                ),
            ));
        }
        if self.key.is_empty() || self.key.contains(['?', '/', ' ']) {
            return Err(Invalid::new(
                "key",
                "must be non-empty without '?', '/' or spaces",
            ));
        }
        // What publishers may send as a name (ingest::names): a key outside it could never
        // publish.
        if let Err(reason) = check_publish_name(&self.key) {
            return Err(Invalid::new(
                "key",
                format!("publishers could not use it: {reason}"),
            ));
        }
        check_passphrase("srt_passphrase", &self.srt_passphrase)
    }

    /// The publish keys of `streams`; warns about a stream still on the public development key.
    pub fn keys(streams: &[StreamConfig]) -> StreamKeys {
        for stream in streams.iter().filter(|s| s.key == DEV_STREAM_KEY) {
            tracing::warn!(stream = %stream.name, "stream key `{DEV_STREAM_KEY}` is the public development default");
        }
        StreamKeys::new(streams)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stream(name: &str, key: &str, srt_passphrase: &str) -> StreamConfig {
        StreamConfig {
            name: name.into(),
            key: key.into(),
            srt_passphrase: srt_passphrase.into(),
        }
    }

    #[test]
    fn stream_errors_name_the_entry_and_field() {
        let ok = [stream("a", "ka", ""), stream("b", "kb", "ten-chars!")];
        assert_eq!(StreamConfig::validate_list(&ok), Ok(()));
        for (streams, key) in [
            (vec![stream("a b", "k", "")], "[0].name"),
            (vec![stream("a", "k/1", "")], "[0].key"),
            (vec![stream("a", "k%2e", "")], "[0].key"),
            (vec![stream("a", "k..1", "")], "[0].key"),
            (vec![stream("a", "k\\1", "")], "[0].key"),
            (vec![stream("a", "k", "short")], "[0].srt_passphrase"),
            (vec![stream("a", "k", ""), stream("a", "l", "")], "[1].name"),
            (vec![stream("a", "k", ""), stream("b", "k", "")], "[1].key"),
        ] {
            let err = StreamConfig::validate_list(&streams).unwrap_err();
            assert_eq!(err.key, key, "{err}");
        }
        let keys = StreamConfig::keys(&ok);
        assert_eq!(keys.stream_for("kb").as_deref(), Some("b"));
    }
}
