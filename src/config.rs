//! Configuration: the embedded default (`config/cuecast.toml`), an optional file on top of it,
//! and `CUECAST_<SECTION>_<KEY>` environment overrides on top of both.
//!
//! Errors name where the bad value came from (the file or the environment variable), the key,
//! and the reason, so a bad config fails at startup with something an operator can act on.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

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

/// The whole configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Process-wide settings.
    pub server: ServerConfig,
    /// What every ingest protocol shares.
    pub ingest: IngestConfig,
    /// RTMP ingest.
    pub rtmp: RtmpConfig,
    /// SRT ingest.
    pub srt: SrtConfig,
    /// HTTP server.
    pub http: HttpConfig,
    /// API authentication.
    pub api: ApiConfig,
    /// HLS packaging and origin.
    pub hls: HlsConfig,
    /// Media pipelines.
    pub media: MediaConfig,
    /// Timed product cues.
    pub cues: CuesConfig,
    /// Live chat over QUIC.
    pub chat: ChatConfig,
    /// Chat accounts and login tokens.
    pub users: UsersConfig,
    /// Publish keys and the public stream names they map to.
    pub streams: Vec<StreamConfig>,
}

/// `[chat]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChatConfig {
    /// Run the chat endpoint.
    pub enabled: bool,
    /// UDP address of the QUIC endpoint.
    pub listen: SocketAddr,
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
    pub link_policy: crate::chat::room::LinkPolicy,
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
    pub review_fallback: crate::chat::review::Decision,
}

/// `[users]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsersConfig {
    /// Token lifetime, seconds.
    pub token_ttl_s: u64,
    /// Open sign-up.
    pub signup_enabled: bool,
}

/// `[server]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Directory for persistent data.
    pub data_dir: PathBuf,
    /// Shutdown grace period, seconds.
    pub shutdown_grace_s: f64,
}

/// `[rtmp]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RtmpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Application name publishers connect to.
    pub app: String,
    /// Outgoing chunk size.
    pub chunk_size: u32,
    /// Largest accepted message.
    pub max_message_size: usize,
    /// Idle timeout, seconds.
    pub idle_timeout_s: f64,
    /// Connection limit.
    pub max_connections: usize,
    /// Read batching period, ms (0 = off).
    pub read_batch_ms: u64,
}

/// `[ingest]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    /// How long a stream whose publisher was lost waits for it to reconnect, seconds (0 = end
    /// at once).
    pub reconnect_grace_s: f64,
    /// A new publisher of a live stream replaces the current one instead of being refused.
    pub takeover: bool,
}

/// `[srt]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SrtConfig {
    /// Run the SRT listener.
    pub enabled: bool,
    /// UDP listen address.
    pub listen: SocketAddr,
    /// Receiver latency (SRTO_LATENCY / SRTO_RCVLATENCY), ms.
    pub latency_ms: u32,
    /// Passphrase every caller must use (empty = none), unless its stream has its own.
    pub passphrase: String,
    /// Key length for the listener's passphrase: 16, 24 or 32 bytes (AES-128/192/256).
    pub pbkeylen: u32,
    /// A caller that sends no data for this long is closed, seconds.
    pub idle_timeout_s: f64,
    /// Connection limit.
    pub max_connections: usize,
    /// Read batching period, ms (0 = off).
    pub read_batch_ms: u64,
}

/// `[http]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpConfig {
    /// Listen address.
    pub listen: SocketAddr,
    /// Access-Control-Allow-Origin value.
    pub cors_allow_origin: String,
}

/// `[api]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// Admin bearer token.
    pub admin_token: String,
}

/// `[hls]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HlsConfig {
    /// Serve LL-HLS.
    pub low_latency: bool,
    /// Segment target, seconds.
    pub segment_duration_s: f64,
    /// Part target, seconds.
    pub part_duration_s: f64,
    /// Playlist window, seconds.
    pub window_s: f64,
    /// Retention of ended streams, seconds.
    pub ended_retention_s: f64,
    /// Cache-Control max-age of segments, seconds.
    pub segment_max_age_s: u64,
    /// Cache-Control max-age of the multivariant playlist, seconds.
    pub multivariant_max_age_s: u64,
    /// Cache-Control max-age of media playlists, seconds.
    pub playlist_max_age_s: u64,
    /// Cache-Control max-age of blocking-reload playlist responses, seconds.
    pub blocking_playlist_max_age_s: u64,
}

/// `[media]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaConfig {
    /// Directory of pipeline templates.
    pub pipelines_dir: PathBuf,
    /// Passthrough template file name.
    pub passthrough_template: String,
    /// How long to wait for a missing track, seconds of media time.
    pub track_wait_s: f64,
    /// Ladder head template file name (decode once, `tee`).
    pub ladder_template: String,
    /// Per-rung template file name (scale, rate cap, encode, `cmafmux`, appsink).
    pub rung_template: String,
    /// Publish the publisher's own video untouched as the `source` rendition.
    pub source_rung: bool,
    /// Transcoded renditions; empty = no transcoding.
    pub ladder: Vec<RungConfig>,
}

/// One `[[media.ladder]]` rung: an H.264 rendition transcoded from the source.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RungConfig {
    /// Rendition name in URLs.
    pub name: String,
    /// Largest width, pixels (even).
    pub width: u32,
    /// Largest height, pixels (even).
    pub height: u32,
    /// Video bitrate, kbit/s.
    pub video_bitrate_kbps: u32,
    /// Frame rate cap, frames per second.
    pub max_fps: u32,
    /// H.264 profile.
    pub profile: String,
    /// x264 speed preset.
    pub preset: String,
    /// x264 threads for this rung's encoder (0 = x264's automatic count).
    #[serde(default = "default_rung_threads")]
    pub threads: u32,
}

/// x264 threads of a rung that does not set `threads`.
pub const DEFAULT_RUNG_THREADS: u32 = 2;

fn default_rung_threads() -> u32 {
    DEFAULT_RUNG_THREADS
}

/// H.264 profiles a rung may ask for (x264enc's caps names).
pub const H264_PROFILES: [&str; 4] = ["constrained-baseline", "baseline", "main", "high"];
/// x264 speed presets (x264enc `speed-preset`).
pub const X264_PRESETS: [&str; 10] = [
    "ultrafast",
    "superfast",
    "veryfast",
    "faster",
    "fast",
    "medium",
    "slow",
    "slower",
    "veryslow",
    "placebo",
];
/// Rendition names the passthrough pipeline uses; rungs cannot take them.
pub const RESERVED_RENDITIONS: [&str; 2] = ["source", "audio"];

impl RungConfig {
    /// Checks one rung; returns (field, reason).
    fn validate(&self) -> Result<(), (&'static str, String)> {
        if !is_valid_stream_name(&self.name) || RESERVED_RENDITIONS.contains(&self.name.as_str()) {
            return Err((
                "name",
                format!(
                    "`{}` must be 1-64 letters, digits, '-' or '_' and not one of {RESERVED_RENDITIONS:?}",
                    self.name
                ),
            ));
        }
        for (field, value) in [("width", self.width), ("height", self.height)] {
            if !(16..=7680).contains(&value) || value % 2 != 0 {
                return Err((
                    field,
                    format!("must be an even number within 16..=7680, got {value}"),
                ));
            }
        }
        if !(50..=100_000).contains(&self.video_bitrate_kbps) {
            return Err(("video_bitrate_kbps", "must be within 50..=100000".into()));
        }
        if !(1..=240).contains(&self.max_fps) {
            return Err(("max_fps", "must be within 1..=240".into()));
        }
        if !H264_PROFILES.contains(&self.profile.as_str()) {
            return Err(("profile", format!("must be one of {H264_PROFILES:?}")));
        }
        if !X264_PRESETS.contains(&self.preset.as_str()) {
            return Err(("preset", format!("must be one of {X264_PRESETS:?}")));
        }
        if self.threads > 64 {
            return Err((
                "threads",
                "must be within 0..=64 (0 = x264's automatic count)".into(),
            ));
        }
        Ok(())
    }
}

/// `[cues]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CuesConfig {
    /// Accepted cue requests per second per stream.
    pub rate_per_s: f64,
    /// Burst of requests allowed at once.
    pub rate_burst: u32,
    /// Largest JSON of product + data, bytes.
    pub max_payload_bytes: usize,
    /// Largest request body, bytes.
    pub max_request_bytes: usize,
    /// Most items in one rundown upload.
    pub max_rundown_items: usize,
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

/// The dev-only admin token shipped in the default config.
pub const DEV_ADMIN_TOKEN: &str = "dev-admin-token";

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
            .map_err(|(key, reason)| ConfigError::Invalid {
                origin: origin_of(&origins, &key, &file_origin),
                key,
                reason,
            })?;
        Ok(config)
    }

    /// Semantic checks serde cannot express. Returns (key, reason).
    fn validate(&self) -> Result<(), (String, String)> {
        let positive = [
            ("server.shutdown_grace_s", self.server.shutdown_grace_s),
            ("rtmp.idle_timeout_s", self.rtmp.idle_timeout_s),
            ("hls.segment_duration_s", self.hls.segment_duration_s),
            ("hls.part_duration_s", self.hls.part_duration_s),
            ("hls.window_s", self.hls.window_s),
            ("hls.ended_retention_s", self.hls.ended_retention_s),
            ("media.track_wait_s", self.media.track_wait_s),
            ("srt.idle_timeout_s", self.srt.idle_timeout_s),
            ("chat.hello_timeout_s", self.chat.hello_timeout_s),
            ("chat.idle_timeout_s", self.chat.idle_timeout_s),
            ("chat.rate_per_s", self.chat.rate_per_s),
        ];
        for (key, value) in positive {
            if !(value.is_finite() && value > 0.0 && value < 1e7) {
                return Err((
                    key.into(),
                    format!("must be a positive number of seconds, got {value}"),
                ));
            }
        }
        if self.hls.part_duration_s > self.hls.segment_duration_s {
            return Err((
                "hls.part_duration_s".into(),
                "must not be longer than hls.segment_duration_s".into(),
            ));
        }
        if self.hls.window_s < 3.0 * self.hls.segment_duration_s {
            return Err((
                "hls.window_s".into(),
                "must hold at least 3 segments (3 × hls.segment_duration_s)".into(),
            ));
        }
        if !(self.cues.rate_per_s.is_finite() && self.cues.rate_per_s > 0.0) {
            return Err(("cues.rate_per_s".into(), "must be a positive number".into()));
        }
        if self.cues.rate_burst == 0 {
            return Err(("cues.rate_burst".into(), "must be at least 1".into()));
        }
        if self.cues.max_payload_bytes < 64 {
            return Err((
                "cues.max_payload_bytes".into(),
                "must be at least 64".into(),
            ));
        }
        if self.cues.max_request_bytes < self.cues.max_payload_bytes {
            return Err((
                "cues.max_request_bytes".into(),
                "must be at least cues.max_payload_bytes".into(),
            ));
        }
        if self.cues.max_rundown_items == 0 {
            return Err(("cues.max_rundown_items".into(), "must be at least 1".into()));
        }
        if !(128..=65536).contains(&self.rtmp.chunk_size) {
            return Err((
                "rtmp.chunk_size".into(),
                "must be within 128..=65536".into(),
            ));
        }
        if self.rtmp.max_message_size < 1024 {
            return Err((
                "rtmp.max_message_size".into(),
                "must be at least 1024".into(),
            ));
        }
        let grace = self.ingest.reconnect_grace_s;
        if !(grace.is_finite() && (0.0..=3600.0).contains(&grace)) {
            return Err((
                "ingest.reconnect_grace_s".into(),
                format!("must be between 0 and 3600 seconds, got {grace}"),
            ));
        }
        if ![16, 24, 32].contains(&self.srt.pbkeylen) {
            return Err((
                "srt.pbkeylen".into(),
                "must be 16, 24 or 32 (AES-128/192/256)".into(),
            ));
        }
        check_passphrase("srt.passphrase", &self.srt.passphrase)?;
        if self.srt.read_batch_ms > 1000 {
            return Err(("srt.read_batch_ms".into(), "must be at most 1000 ms".into()));
        }
        if !(20..=60_000).contains(&self.srt.latency_ms) {
            return Err((
                "srt.latency_ms".into(),
                "must be within 20..=60000 ms".into(),
            ));
        }
        if self.rtmp.app.is_empty() {
            return Err(("rtmp.app".into(), "must not be empty".into()));
        }
        if self.api.admin_token.len() < 8 {
            return Err((
                "api.admin_token".into(),
                "must be at least 8 characters".into(),
            ));
        }
        let mut rungs = std::collections::HashSet::new();
        for (i, rung) in self.media.ladder.iter().enumerate() {
            rung.validate()
                .map_err(|(field, reason)| (format!("media.ladder[{i}].{field}"), reason))?;
            if !rungs.insert(rung.name.as_str()) {
                return Err((
                    format!("media.ladder[{i}].name"),
                    "duplicate rung name".into(),
                ));
            }
        }
        if self.media.ladder.is_empty() && !self.media.source_rung {
            return Err((
                "media.source_rung".into(),
                "must be true when media.ladder is empty (no video rendition otherwise)".into(),
            ));
        }
        self.validate_chat()?;
        let mut names = std::collections::HashSet::new();
        let mut keys = std::collections::HashSet::new();
        for (i, stream) in self.streams.iter().enumerate() {
            if !is_valid_stream_name(&stream.name) {
                return Err((
                    format!("streams[{i}].name"),
                    format!(
                        "`{}` must be 1-64 characters of letters, digits, '-' or '_'",
                        stream.name
                    ),
                ));
            }
            if stream.key.is_empty() || stream.key.contains(['?', '/', ' ']) {
                return Err((
                    format!("streams[{i}].key"),
                    "must be non-empty without '?', '/' or spaces".into(),
                ));
            }
            check_passphrase(
                &format!("streams[{i}].srt_passphrase"),
                &stream.srt_passphrase,
            )?;
            if !names.insert(stream.name.as_str()) {
                return Err((format!("streams[{i}].name"), "duplicate stream name".into()));
            }
            if !keys.insert(stream.key.as_str()) {
                return Err((format!("streams[{i}].key"), "duplicate stream key".into()));
            }
        }
        Ok(())
    }
}

/// SRT passphrases are 10 to 79 characters (`SRTO_PASSPHRASE`); empty means none.
fn check_passphrase(key: &str, passphrase: &str) -> Result<(), (String, String)> {
    if passphrase.is_empty() || (10..=79).contains(&passphrase.len()) {
        Ok(())
    } else {
        Err((
            key.into(),
            format!(
                "an SRT passphrase has 10 to 79 characters, got {}",
                passphrase.len()
            ),
        ))
    }
}

impl Config {
    fn validate_chat(&self) -> Result<(), (String, String)> {
        let chat = &self.chat;
        if !(1..=14).contains(&chat.dev_cert_validity_days) {
            return Err((
                "chat.dev_cert_validity_days".into(),
                "must be 1..=14 (browsers refuse serverCertificateHashes beyond 14 days)".into(),
            ));
        }
        if chat.cert_file.as_os_str().is_empty() != chat.key_file.as_os_str().is_empty() {
            return Err((
                "chat.key_file".into(),
                "chat.cert_file and chat.key_file must be set together".into(),
            ));
        }
        if chat.dev_cert_names.is_empty() {
            return Err(("chat.dev_cert_names".into(), "must not be empty".into()));
        }
        for (key, value, min) in [
            ("chat.max_text_chars", chat.max_text_chars, 1),
            ("chat.max_staff_text_chars", chat.max_staff_text_chars, 1),
            ("chat.max_frame_bytes", chat.max_frame_bytes, 1024),
            ("chat.queue_batches", chat.queue_batches, 4),
            (
                "chat.max_connections_per_ip",
                chat.max_connections_per_ip,
                1,
            ),
            ("chat.max_connections", chat.max_connections, 1),
            ("chat.rate_burst", chat.rate_burst as usize, 1),
        ] {
            if value < min {
                return Err((key.into(), format!("must be at least {min}")));
            }
        }
        if !(1..=100).contains(&chat.batch_phases) {
            return Err(("chat.batch_phases".into(), "must be 1..=100".into()));
        }
        if chat.batch_ms > 0 && chat.batch_ms < chat.batch_phases as u64 {
            return Err((
                "chat.batch_phases".into(),
                format!(
                    "must be at most chat.batch_ms ({}): one phase per millisecond at most",
                    chat.batch_ms
                ),
            ));
        }
        if chat.max_frame_bytes > 1 << 20 {
            return Err((
                "chat.max_frame_bytes".into(),
                "must be at most 1048576".into(),
            ));
        }
        let web = ["http://", "https://"]
            .iter()
            .any(|scheme| chat.review_url.starts_with(scheme));
        if !chat.review_url.is_empty() && !web {
            return Err(("chat.review_url".into(), "must be an http(s) URL".into()));
        }
        if !(1..=10_000).contains(&chat.review_timeout_ms) {
            return Err(("chat.review_timeout_ms".into(), "must be 1..=10000".into()));
        }
        if self.users.token_ttl_s < 60 {
            return Err(("users.token_ttl_s".into(), "must be at least 60".into()));
        }
        Ok(())
    }
}

/// Public stream names: 1–64 of `[A-Za-z0-9_-]` (they appear in URLs and file names).
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Seconds from config → Duration (validated positive and finite at load).
pub fn secs(value: f64) -> Duration {
    Duration::from_secs_f64(value)
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
        assert_eq!(config.api.admin_token, DEV_ADMIN_TOKEN);
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
    fn missing_file_is_reported() {
        let err = Config::load(Some(Path::new("/nonexistent/cuecast.toml")), no_env())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/nonexistent/cuecast.toml"), "{err}");
    }
}
