//! Configuration: the embedded default (`config/cuecast.toml`), an optional file on top of it,
//! and `CUECAST_<SECTION>_<KEY>` environment overrides on top of both.
//!
//! Each feature owns its section (struct, checks, conversion into runtime settings:
//! `hls::Config`, `chat::Config`, `ingest::rtmp::Config`, ...); this module only loads the
//! layers and composes the sections into [`Config`]. Errors name where the bad value came from
//! (the file or the environment variable), the key, and the reason, so a bad config fails at
//! startup with something an operator can act on.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::ingest::StreamConfig;
use crate::setting::{Invalid, positive_secs};
use crate::{chat, cluster, commerce, cues, hls, http, ingest, media, store, users, webhooks};

/// The embedded default configuration, also the documentation of every key.
pub const DEFAULT_CONFIG: &str = include_str!("../config/cuecast.toml");

/// Prefix of environment variables that override config keys.
pub const ENV_PREFIX: &str = "CUECAST_";

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The config file could not be read.
    #[error("{path}: cannot read config file: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The config file is not valid TOML.
    #[error("{origin}: invalid TOML: {message}")]
    Syntax {
        /// The file (or "built-in default").
        origin: String,
        /// The parser's message (with line and column).
        message: String,
    },
    /// An environment variable does not name a config key.
    #[error(
        "environment variable {var}: no config key `{key}` (see config/cuecast.toml for the keys)"
    )]
    UnknownEnv {
        /// The variable.
        var: String,
        /// The key it was mapped to.
        key: String,
    },
    /// A key has a value of the wrong type or an unknown key was given.
    #[error("{origin}: key `{key}`: {reason}")]
    Invalid {
        /// The file or environment variable the value came from.
        origin: String,
        /// The dotted key path.
        key: String,
        /// Why it is wrong.
        reason: String,
    },
}

/// The whole configuration: every feature's section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    pub server: ServerConfig,
    /// Where persistent state lives (embedded SQLite or PostgreSQL).
    pub store: store::Config,
    /// Several nodes sharing state through Redis.
    pub cluster: cluster::Config,
    /// What every ingest protocol shares.
    pub ingest: ingest::Config,
    /// RTMP ingest.
    pub rtmp: ingest::rtmp::Config,
    /// RTMP over TLS.
    pub rtmps: ingest::rtmp::TlsConfig,
    /// SRT ingest.
    pub srt: ingest::srt::Config,
    /// HTTP server.
    pub http: http::Config,
    /// API authentication.
    pub api: http::ApiConfig,
    /// HLS packaging and origin.
    pub hls: hls::Config,
    /// Media pipelines.
    pub media: media::Config,
    /// Timed product cues.
    pub cues: cues::Config,
    /// Live chat over QUIC.
    pub chat: chat::Config,
    /// Chat accounts and login tokens.
    pub users: users::Config,
    /// Shows and their schedule.
    pub shows: commerce::shows::Config,
    /// The shop's catalog.
    pub catalog: commerce::catalog::Config,
    /// Shopper events (`POST /api/events`).
    pub events: commerce::events::Config,
    /// Recordings of live sessions and their retention.
    pub recordings: hls::recording::Config,
    /// Recommendations (`/api/recommendations/...`).
    pub recommend: commerce::recommend::Config,
    /// Signed webhooks.
    pub webhooks: webhooks::Config,
    /// The web pages (viewer app, studio) and the shop's theme.
    pub web: http::pages::Config,
    /// Publish keys and the public stream names they map to.
    pub streams: Vec<StreamConfig>,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Directory for persistent data.
    pub data_dir: PathBuf,
    /// Shutdown grace period, seconds.
    pub shutdown_grace_s: f64,
    /// How often the heap's free memory goes back to the system, seconds (0 = never).
    pub heap_trim_interval_s: f64,
}

impl ServerConfig {
    /// Checks what serde cannot; keys are relative to `[server]`.
    fn validate(&self) -> Result<(), Invalid> {
        positive_secs("shutdown_grace_s", self.shutdown_grace_s)?;
        if self.heap_trim_interval_s != 0.0 {
            positive_secs("heap_trim_interval_s", self.heap_trim_interval_s)?;
        }
        Ok(())
    }

    /// The heap trim interval; `None` when off.
    pub fn heap_trim_interval(&self) -> Option<std::time::Duration> {
        (self.heap_trim_interval_s > 0.0)
            .then(|| std::time::Duration::from_secs_f64(self.heap_trim_interval_s))
    }
}

impl Config {
    /// Loads the embedded default, then `path` (if any) on top, then `CUECAST_*` variables from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Config, ConfigError> {
        let mut table = parse_table(DEFAULT_CONFIG, "built-in default")?;
        let mut origins: BTreeMap<String, String> = BTreeMap::new();
        let file_origin = match path {
            Some(path) => {
                let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                    path: path.to_path_buf(),
                    source,
                })?;
                let origin = path.display().to_string();
                let overlay = parse_table(&text, &origin)?;
                merge(&mut table, overlay, "", &origin, &mut origins)?;
                origin
            }
            None => "built-in default".to_string(),
        };
        for (var, value) in env {
            let Some(rest) = var.strip_prefix(ENV_PREFIX) else {
                continue;
            };
            apply_env(&mut table, &var, &rest.to_ascii_lowercase(), &value)?;
            origins.insert(env_key(&table, &rest.to_ascii_lowercase()), var.clone());
        }
        let config: Config = serde_path_to_error::deserialize(toml::Value::Table(table.clone()))
            .map_err(|err| {
                let key = err.path().to_string();
                ConfigError::Invalid {
                    origin: origin_of(&origins, &key, &file_origin),
                    reason: err.into_inner().to_string(),
                    key,
                }
            })?;
        config
            .validate()
            .map_err(|Invalid { key, reason }| ConfigError::Invalid {
                origin: origin_of(&origins, &key, &file_origin),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// Semantic checks serde cannot express: each section's own, its keys put under the
    /// section's name.
    fn validate(&self) -> Result<(), Invalid> {
        let sections = [
            ("server", self.server.validate()),
            ("store", self.store.validate()),
            ("cluster", self.cluster.validate()),
            ("ingest", self.ingest.validate()),
            ("rtmp", self.rtmp.validate()),
            ("rtmps", self.rtmps.validate()),
            ("srt", self.srt.validate()),
            ("http", self.http.validate()),
            ("api", self.api.validate()),
            ("hls", self.hls.validate()),
            ("media", self.media.validate()),
            ("cues", self.cues.validate()),
            ("chat", self.chat.validate()),
            ("users", self.users.validate()),
            ("shows", self.shows.validate()),
            ("catalog", self.catalog.validate()),
            ("events", self.events.validate()),
            ("recordings", self.recordings.validate()),
            ("recommend", self.recommend.validate()),
            ("webhooks", self.webhooks.validate()),
            ("web", self.web.validate()),
            ("streams", StreamConfig::validate_list(&self.streams)),
        ];
        for (section, checked) in sections {
            checked.map_err(|err| err.within(section))?;
        }
        Ok(())
    }
}

fn parse_table(text: &str, origin: &str) -> Result<toml::Table, ConfigError> {
    text.parse::<toml::Table>()
        .map_err(|err| ConfigError::Syntax {
            origin: origin.to_string(),
            message: err.to_string().trim_end().to_string(),
        })
}

/// Merges `overlay` into `base` recursively; keys unknown to the base are kept so the
/// deserializer reports them (with `deny_unknown_fields`) under their origin.
fn merge(
    base: &mut toml::Table,
    overlay: toml::Table,
    prefix: &str,
    origin: &str,
    origins: &mut BTreeMap<String, String>,
) -> Result<(), ConfigError> {
    for (key, value) in overlay {
        let path = if prefix.is_empty() {
            key.clone()
        } else {
            format!("{prefix}.{key}")
        };
        match (base.get_mut(&key), value) {
            (Some(toml::Value::Table(existing)), toml::Value::Table(sub)) => {
                merge(existing, sub, &path, origin, origins)?;
            }
            (_, value) => {
                origins.insert(path, origin.to_string());
                base.insert(key, value);
            }
        }
    }
    Ok(())
}

/// Resolves `rest` (lower-cased variable name after the prefix) to a dotted key path by walking
/// the known keys: `hls_segment_duration_s` → `hls.segment_duration_s`.
fn resolve_env_path(table: &toml::Table, rest: &str) -> Option<Vec<String>> {
    if table.contains_key(rest) {
        return Some(vec![rest.to_string()]);
    }
    for (key, value) in table {
        if let (Some(tail), toml::Value::Table(sub)) =
            (rest.strip_prefix(&format!("{key}_")), value)
            && let Some(mut path) = resolve_env_path(sub, tail)
        {
            path.insert(0, key.clone());
            return Some(path);
        }
    }
    None
}

fn env_key(table: &toml::Table, rest: &str) -> String {
    resolve_env_path(table, rest)
        .map(|p| p.join("."))
        .unwrap_or_else(|| rest.to_string())
}

fn apply_env(table: &mut toml::Table, var: &str, rest: &str, raw: &str) -> Result<(), ConfigError> {
    let path = resolve_env_path(table, rest).ok_or_else(|| ConfigError::UnknownEnv {
        var: var.to_string(),
        key: rest.replace('_', "."),
    })?;
    // A value that parses as TOML keeps its type (numbers, booleans, arrays); else it is a string.
    let value = format!("v = {raw}")
        .parse::<toml::Table>()
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_string()));
    let mut cursor = table;
    let (last, parents) = path.split_last().ok_or_else(|| ConfigError::UnknownEnv {
        var: var.to_string(),
        key: rest.to_string(),
    })?;
    for key in parents {
        cursor = match cursor.get_mut(key) {
            Some(toml::Value::Table(sub)) => sub,
            _ => {
                return Err(ConfigError::UnknownEnv {
                    var: var.to_string(),
                    key: path.join("."),
                });
            }
        };
    }
    // Keep strings as strings even when they look like numbers (e.g. a numeric token).
    let value = match (cursor.get(last), value) {
        (Some(toml::Value::String(_)), v) if !v.is_str() => toml::Value::String(raw.to_string()),
        (_, v) => v,
    };
    cursor.insert(last.clone(), value);
    Ok(())
}

/// The origin of a dotted key from serde_path_to_error (which prints arrays as `streams[0].key`).
fn origin_of(origins: &BTreeMap<String, String>, key: &str, default: &str) -> String {
    let mut probe = key.to_string();
    loop {
        if let Some(origin) = origins.get(&probe) {
            return origin.clone();
        }
        match probe.rfind(['.', '[']) {
            Some(pos) => probe.truncate(pos),
            None => return default.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn no_env() -> Vec<(String, String)> {
        Vec::new()
    }

    #[test]
    fn embedded_default_loads_with_dev_stream() {
        let config = Config::load(None, no_env()).expect("default config");
        assert_eq!(config.rtmp.listen.port(), 1935);
        assert_eq!(config.http.listen.port(), 8080);
        assert_eq!(config.api.admin_token, crate::http::DEV_ADMIN_TOKEN);
        assert_eq!(config.streams.len(), 1);
        assert_eq!(config.streams[0].name, "demo");
        assert_eq!(config.streams[0].key, "demo-key");
        assert_eq!(config.hls.segment_duration_s, 2.0);
        assert!(config.media.source_rung);
        let ladder: Vec<_> = config
            .media
            .ladder
            .iter()
            .map(|r| (r.name.as_str(), r.width, r.height))
            .collect();
        assert_eq!(ladder, [("480p", 854, 480), ("360p", 640, 360)]);
    }

    #[test]
    fn ladder_can_be_emptied_and_rungs_are_validated() {
        let env = vec![("CUECAST_MEDIA_LADDER".to_string(), "[]".to_string())];
        let config = Config::load(None, env).expect("config");
        assert!(config.media.ladder.is_empty());

        let env = vec![
            ("CUECAST_MEDIA_LADDER".to_string(), "[]".to_string()),
            ("CUECAST_MEDIA_SOURCE_RUNG".to_string(), "false".to_string()),
        ];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("media.source_rung"), "{err}");

        let f = file(
            "[[media.ladder]]\nname = \"source\"\nwidth = 640\nheight = 360\nvideo_bitrate_kbps = 800\nmax_fps = 30\nprofile = \"main\"\npreset = \"veryfast\"\n",
        );
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.ladder[0].name"), "{err}");

        let f = file(
            "[[media.ladder]]\nname = \"odd\"\nwidth = 641\nheight = 360\nvideo_bitrate_kbps = 800\nmax_fps = 30\nprofile = \"main\"\npreset = \"veryfast\"\n",
        );
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.ladder[0].width"), "{err}");

        let f = file(
            "[[media.ladder]]\nname = \"p\"\nwidth = 640\nheight = 360\nvideo_bitrate_kbps = 800\nmax_fps = 30\nprofile = \"main\"\npreset = \"turbo\"\n",
        );
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("media.ladder[0].preset"), "{err}");
    }

    #[test]
    fn env_overrides_nested_keys_with_types() {
        let env = vec![
            (
                "CUECAST_HLS_SEGMENT_DURATION_S".to_string(),
                "4".to_string(),
            ),
            (
                "CUECAST_HTTP_LISTEN".to_string(),
                "127.0.0.1:9000".to_string(),
            ),
            (
                "CUECAST_HTTP_MAX_CONNECTIONS_PER_IP".to_string(),
                "64".to_string(),
            ),
            (
                "CUECAST_STREAMS".to_string(),
                r#"[{name="a", key="ka"}, {name="b", key="kb"}]"#.to_string(),
            ),
            (
                "CUECAST_API_ADMIN_TOKEN".to_string(),
                "12345678".to_string(),
            ),
            ("PATH".to_string(), "/bin".to_string()),
        ];
        let config = Config::load(None, env).expect("config");
        assert_eq!(config.hls.segment_duration_s, 4.0);
        assert_eq!(config.http.listen.port(), 9000);
        assert_eq!(config.http.max_connections_per_ip, 64);
        assert_eq!(config.streams.len(), 2);
        // A numeric-looking value for a string key stays a string.
        assert_eq!(config.api.admin_token, "12345678");
    }

    #[test]
    fn unknown_env_key_is_an_error() {
        let env = vec![("CUECAST_HLS_NOPE".to_string(), "1".to_string())];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("CUECAST_HLS_NOPE"), "{err}");
    }

    #[test]
    fn bad_env_value_names_variable_and_key() {
        let env = vec![(
            "CUECAST_RTMP_LISTEN".to_string(),
            "not-an-address".to_string(),
        )];
        let err = Config::load(None, env).unwrap_err().to_string();
        assert!(err.contains("CUECAST_RTMP_LISTEN"), "{err}");
        assert!(err.contains("rtmp.listen"), "{err}");
    }

    #[test]
    fn the_heap_trim_interval_is_off_at_zero_and_never_negative() {
        let load = |value: &str| {
            let env = vec![(
                "CUECAST_SERVER_HEAP_TRIM_INTERVAL_S".to_string(),
                value.to_string(),
            )];
            Config::load(None, env)
        };
        let default = Config::load(None, no_env()).expect("default");
        assert_eq!(
            default.server.heap_trim_interval(),
            Some(std::time::Duration::from_secs(60))
        );
        assert_eq!(load("0").expect("off").server.heap_trim_interval(), None);
        let err = load("-1").unwrap_err().to_string();
        assert!(err.contains("server.heap_trim_interval_s"), "{err}");
    }

    fn file(text: &str) -> tempfile::NamedTempFile {
        let mut f = tempfile::NamedTempFile::new().expect("tempfile");
        f.write_all(text.as_bytes()).expect("write");
        f
    }

    #[test]
    fn file_overlays_default_and_errors_name_file_key_reason() {
        let f = file("[hls]\nwindow_s = 60\n");
        let config = Config::load(Some(f.path()), no_env()).expect("config");
        assert_eq!(config.hls.window_s, 60.0);
        assert_eq!(config.hls.segment_duration_s, 2.0);

        let f = file("[hls]\nsegment_duration_s = \"two\"\n");
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        let name = f.path().display().to_string();
        assert!(err.contains(&name), "{err}");
        assert!(err.contains("hls.segment_duration_s"), "{err}");
        assert!(err.contains("invalid type"), "{err}");

        let f = file("[hls]\nsegment_length = 2\n");
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("segment_length"), "{err}");

        let f = file("[hls\n");
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        let name = f.path().display().to_string();
        assert!(err.contains("invalid TOML") && err.contains(&name), "{err}");
    }

    #[test]
    fn semantic_errors_name_the_key() {
        let f = file("[hls]\npart_duration_s = 3.0\n");
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("hls.part_duration_s"), "{err}");

        let f = file("[[streams]]\nname = \"a b\"\nkey = \"k\"\n");
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("streams[0].name"), "{err}");

        let f = file(
            "[[streams]]\nname = \"a\"\nkey = \"k\"\n[[streams]]\nname = \"b\"\nkey = \"k\"\n",
        );
        let err = Config::load(Some(f.path()), no_env())
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("streams[1].key") && err.contains("duplicate"),
            "{err}"
        );
    }

    #[test]
    fn srt_and_ingest_keys_are_checked() {
        let config = Config::load(None, no_env()).expect("default config");
        assert_eq!(config.srt.listen.port(), 8890);
        assert_eq!(config.ingest.reconnect_grace_s, 15.0);
        assert_eq!(config.streams[0].srt_passphrase, "");
        for (text, key) in [
            ("[srt]\npbkeylen = 20\n", "srt.pbkeylen"),
            ("[srt]\npassphrase = \"short\"\n", "srt.passphrase"),
            ("[srt]\nlatency_ms = 1\n", "srt.latency_ms"),
            (
                "[ingest]\nreconnect_grace_s = -1\n",
                "ingest.reconnect_grace_s",
            ),
            (
                "[[streams]]\nname = \"a\"\nkey = \"k\"\nsrt_passphrase = \"abc\"\n",
                "streams[0].srt_passphrase",
            ),
        ] {
            let f = file(text);
            let err = Config::load(Some(f.path()), no_env())
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{text}: {err}");
        }
        let env = vec![(
            "CUECAST_INGEST_RECONNECT_GRACE_S".to_string(),
            "0".to_string(),
        )];
        assert_eq!(
            Config::load(None, env).unwrap().ingest.reconnect_grace_s,
            0.0
        );
    }

    #[test]
    fn chat_keys_are_validated() {
        let config = Config::load(None, no_env()).expect("default config");
        assert_eq!(config.chat.listen.to_string(), "[::]:4433");
        assert_eq!(config.chat.max_text_chars, 500);
        assert_eq!(config.chat.review_timeout_ms, 200);
        for (var, value, key) in [
            (
                "CUECAST_CHAT_DEV_CERT_VALIDITY_DAYS",
                "15",
                "chat.dev_cert_validity_days",
            ),
            ("CUECAST_CHAT_CERT_FILE", "/etc/cert.pem", "chat.key_file"),
            ("CUECAST_CHAT_REVIEW_URL", "ftp://x", "chat.review_url"),
            ("CUECAST_CHAT_LINK_POLICY", "maybe", "chat.link_policy"),
            (
                "CUECAST_CHAT_REVIEW_FALLBACK",
                "perhaps",
                "chat.review_fallback",
            ),
            ("CUECAST_CHAT_MAX_FRAME_BYTES", "10", "chat.max_frame_bytes"),
            ("CUECAST_USERS_TOKEN_TTL_S", "1", "users.token_ttl_s"),
        ] {
            let err = Config::load(None, vec![(var.to_string(), value.to_string())])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{var}: {err}");
        }
    }

    #[test]
    fn rtmps_keys_are_validated_under_their_section() {
        let config = Config::load(None, no_env()).expect("default config");
        assert!(config.rtmps.enabled);
        assert_eq!(config.rtmps.listen.to_string(), "0.0.0.0:1936");
        assert_eq!(config.rtmp.listen.ip(), config.rtmps.listen.ip());
        for (var, value, key) in [
            (
                "CUECAST_RTMPS_HANDSHAKE_TIMEOUT_S",
                "0",
                "rtmps.handshake_timeout_s",
            ),
            ("CUECAST_RTMPS_CERT_FILE", "/etc/cert.pem", "rtmps.key_file"),
            ("CUECAST_RTMPS_LISTEN", "nowhere", "rtmps.listen"),
            (
                "CUECAST_RTMPS_DEV_CERT_NAMES",
                "[\"localhost\", \"caf\u{e9}\"]",
                "rtmps.dev_cert_names[1]",
            ),
        ] {
            let err = Config::load(None, vec![(var.to_string(), value.to_string())])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{var}: {err}");
        }
    }

    #[test]
    fn event_keys_are_validated_under_their_section() {
        let config = Config::load(None, no_env()).expect("default config");
        assert_eq!(config.events.settings().limits.max_batch_events, 100);
        for (var, value, key) in [
            (
                "CUECAST_EVENTS_MAX_BATCH_EVENTS",
                "0",
                "events.max_batch_events",
            ),
            (
                "CUECAST_EVENTS_RATE_BURST_EVENTS",
                "10",
                "events.rate_burst_events",
            ),
            ("CUECAST_EVENTS_CURRENCY", "\"euro\"", "events.currency"),
        ] {
            let err = Config::load(None, vec![(var.to_string(), value.to_string())])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(var), "{var}: {err}");
        }
    }

    #[test]
    fn recording_keys_are_validated_under_their_section() {
        let config = Config::load(None, no_env()).expect("default config");
        assert!(config.recordings.enabled);
        for (var, value, key) in [
            (
                "CUECAST_RECORDINGS_MAX_AGE_DAYS",
                "-1.0",
                "recordings.max_age_days",
            ),
            ("CUECAST_RECORDINGS_QUEUE_MB", "0", "recordings.queue_mb"),
            ("CUECAST_RECORDINGS_DIR", "\"\"", "recordings.dir"),
        ] {
            let err = Config::load(None, vec![(var.to_string(), value.to_string())])
                .unwrap_err()
                .to_string();
            assert!(err.contains(key) && err.contains(var), "{var}: {err}");
        }
    }

    #[test]
    fn missing_file_is_reported() {
        let err = Config::load(Some(Path::new("/nonexistent/cuecast.toml")), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/cuecast.toml"), "{err}");
    }
}
