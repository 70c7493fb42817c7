//! `GET /api/streams` (admin): the streams (configured and hosts'), who publishes them, playback
//! URLs; `GET /api/streams/{stream}/status`: a stream's live statistics (the studio's health
//! panel), read from [`crate::metrics::stream`] and the HLS stream's renditions.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Admin, Caller, may_manage_stream};
use super::cues::{ApiError, json};
use super::openapi::ErrorBody;
use crate::commerce::shows::model::rfc3339;
use crate::hls::directory::Owner;
use crate::hls::origin::is_valid_stream_name;
use crate::hls::stream::RenditionKind;

/// The stream routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_streams))
        .routes(routes!(stream_status))
}

/// The body of `GET /api/streams`.
#[derive(Serialize, ToSchema)]
pub struct StreamList {
    /// Every stream, configured and hosts'.
    pub streams: Vec<StreamInfo>,
}

/// A stream.
#[derive(Serialize, ToSchema)]
pub struct StreamInfo {
    /// Public stream name (in playback URLs; never the key).
    pub name: String,
    /// The host whose stream key publishes it (null: a configured stream).
    pub owner: Option<String>,
    /// Whether a publisher is on it now.
    pub live: bool,
    /// The publisher, while live.
    pub publisher: Option<Publisher>,
    /// Whether its HLS stream has ended (null: no HLS stream yet).
    pub ended: Option<bool>,
    /// `/hls/{name}/index.m3u8`.
    pub playback_url: String,
}

/// Who publishes a stream.
#[derive(Serialize, ToSchema)]
pub struct Publisher {
    /// `rtmp`, `rtmps` or `srt`.
    pub protocol: String,
    /// The encoder's address.
    pub peer: String,
    /// Seconds since the publish started.
    pub live_for_s: u64,
}

/// `GET /api/streams` (admin): the streams, who publishes them, playback URLs.
#[utoipa::path(get, path = "/api/streams", tag = "streams", security(("admin" = [])),
    responses(
        (status = 200, description = "The streams (configured and hosts')", body = StreamList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
    ))]
async fn list_streams(_admin: Admin, State(api): State<Arc<ApiState>>) -> Json<StreamList> {
    let streams = api
        .keys
        .names()
        .into_iter()
        .map(|name| {
            let publisher = api.live.get(&name).map(|p| Publisher {
                protocol: p.protocol.to_string(),
                peer: p.peer.to_string(),
                live_for_s: p.since.elapsed().as_secs(),
            });
            let ended = api.origin.registry.get(&name).map(|s| s.is_ended());
            let owner = match api.keys.directory().owner(&name) {
                Some(Owner::Host(host)) => Some(host),
                _ => None,
            };
            StreamInfo {
                owner,
                live: publisher.is_some(),
                publisher,
                ended,
                playback_url: format!("/hls/{name}/index.m3u8"),
                name,
            }
        })
        .collect();
    Json(StreamList { streams })
}

/// The body of `GET /api/streams/{stream}/status`.
#[derive(Serialize, ToSchema)]
pub struct StreamStatus {
    /// The stream name.
    pub stream: String,
    /// Whether a publisher is on it now.
    pub live: bool,
    /// `rtmp`, `rtmps` or `srt` while live, else null.
    #[schema(required = true)]
    pub protocol: Option<String>,
    /// When the current publish started (RFC 3339), null when not live.
    #[schema(required = true)]
    pub started_at: Option<String>,
    /// The publisher's video as its decoder configuration declares it (null before it, or
    /// when not live).
    #[schema(required = true)]
    pub video: Option<VideoStatus>,
    /// The publisher's audio (null before its configuration, or when not live).
    #[schema(required = true)]
    pub audio: Option<AudioStatus>,
    /// Ingest bitrate over the latest 5 s, kbit/s (0 when not live).
    pub ingest_bitrate_kbps: f64,
    /// Frames dropped since the publish started (before their decoder configuration, or not
    /// transcoded while the ladder was behind).
    pub dropped_frames: u64,
    /// Frames whose timestamp did not advance past their track's previous one, since the
    /// publish started.
    pub late_frames: u64,
    /// The HLS stream's video renditions (empty before the pipeline starts or after the
    /// stream ended).
    pub renditions: Vec<RenditionStatus>,
    /// Time from a part's last frame arriving to the part being published, ms, over the
    /// latest 1024 parts of the current publish (null before the first).
    pub part_publish_delay_ms: DelayQuantiles,
    /// Time since the latest part was published, ms (null before the first).
    #[schema(required = true)]
    pub live_edge_age_ms: Option<f64>,
}

/// A publisher's video.
#[derive(Serialize, ToSchema)]
pub struct VideoStatus {
    /// `h264`, `h265` or `av1`.
    pub codec: String,
    /// Picture width.
    pub width: u32,
    /// Picture height.
    pub height: u32,
    /// Frames per second measured on the latest 64 frames' timestamps (null before two).
    #[schema(required = true)]
    pub fps: Option<f64>,
}

/// A publisher's audio.
#[derive(Serialize, ToSchema)]
pub struct AudioStatus {
    /// `aac`.
    pub codec: String,
    /// Samples per second.
    pub sample_rate: u32,
    /// Channels.
    pub channels: u8,
}

/// A video rendition of the HLS stream.
#[derive(Serialize, ToSchema)]
pub struct RenditionStatus {
    /// Rendition name (`source`, or a ladder rung's).
    pub name: String,
    /// Picture width (null before its init segment).
    #[schema(required = true)]
    pub width: Option<u32>,
    /// Picture height (null before its init segment).
    #[schema(required = true)]
    pub height: Option<u32>,
    /// Peak segment bitrate, bit/s (the playlist's BANDWIDTH; null before a complete
    /// segment).
    #[schema(required = true)]
    pub bandwidth: Option<u64>,
    /// How far its latest part trails the source's latest frame, ms: 0 for the passthrough
    /// `source`, null for a transcoded rendition before its first part.
    #[schema(required = true)]
    pub encode_lag_ms: Option<f64>,
}

/// p50 and p99 of a delay, ms.
#[derive(Serialize, ToSchema)]
pub struct DelayQuantiles {
    /// Median.
    #[schema(required = true)]
    pub p50: Option<f64>,
    /// 99th percentile.
    #[schema(required = true)]
    pub p99: Option<f64>,
}

/// Rounds to 0.1 (ms and kbit/s read better so).
fn tenth(value: f64) -> f64 {
    (value * 10.0).round() / 10.0
}

#[utoipa::path(get, path = "/api/streams/{stream}/status", tag = "streams",
    operation_id = "stream_status", summary = "A stream's live statistics",
    security(("admin" = [])),
    params(("stream" = String, Path, description = "Stream name")),
    responses(
        (status = 200, description = "The stream's live statistics", body = StreamStatus),
        (status = 400, description = "Not a stream name", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not the admin or the stream's owner", body = ErrorBody),
        (status = 404, description = "No such stream", body = ErrorBody),
    ))]
async fn stream_status(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    Path(stream): Path<String>,
) -> Result<Response, ApiError> {
    if !is_valid_stream_name(&stream) {
        let message = format!("stream: not a stream name: {stream:?}");
        return Err(ApiError::field("stream", message));
    }
    // The admin, or the stream's host (404 for a stream that does not exist).
    may_manage_stream(&api, &caller, &stream)?;
    Ok(json(StatusCode::OK, status_of(&api, &stream)))
}

/// The status of the known stream `stream`, as JSON.
fn status_of(api: &ApiState, stream: &str) -> serde_json::Value {
    let live = api.live.get(stream).is_some();
    let snapshot = api
        .metrics
        .streams
        .get(stream)
        .map(|stats| stats.snapshot(stats.now_ns()))
        .filter(|_| live);
    let renditions: Vec<RenditionStatus> = api
        .origin
        .registry
        .get(stream)
        .filter(|s| !s.is_ended())
        .map(|hls| hls.renditions())
        .unwrap_or_default()
        .iter()
        .filter(|r| r.kind == RenditionKind::Video)
        .map(|r| {
            let resolution = r.info().resolution;
            let lag = api.metrics.rung_lag_ns(stream, &r.name);
            RenditionStatus {
                name: r.name.clone(),
                width: resolution.map(|(w, _)| w),
                height: resolution.map(|(_, h)| h),
                bandwidth: r.packager().bandwidth().map(|b| b.peak),
                encode_lag_ms: match lag {
                    Some(ns) => Some(tenth(ns as f64 / 1e6)),
                    None if r.name == "source" => Some(0.0),
                    None => None,
                },
            }
        })
        .collect();
    let publish = snapshot.as_ref().map(|s| &s.publish);
    let status = StreamStatus {
        stream: stream.to_string(),
        live,
        protocol: publish.and_then(|p| p.protocol).map(str::to_string),
        started_at: publish.and_then(|p| p.started_at).map(rfc3339),
        video: publish.and_then(|p| p.video.as_ref()).map(|v| VideoStatus {
            codec: v.codec.to_string(),
            width: v.width,
            height: v.height,
            fps: snapshot
                .as_ref()
                .and_then(|s| s.fps)
                .map(|f| (f * 100.0).round() / 100.0),
        }),
        audio: publish.and_then(|p| p.audio.as_ref()).map(|a| AudioStatus {
            codec: a.codec.to_string(),
            sample_rate: a.sample_rate,
            channels: a.channels,
        }),
        ingest_bitrate_kbps: snapshot
            .as_ref()
            .map_or(0.0, |s| tenth(s.ingest_bps / 1000.0)),
        dropped_frames: snapshot.as_ref().map_or(0, |s| s.dropped_frames),
        late_frames: snapshot.as_ref().map_or(0, |s| s.late_frames),
        renditions,
        part_publish_delay_ms: {
            let quantiles = snapshot.as_ref().and_then(|s| s.part_delay_p50_p99);
            DelayQuantiles {
                p50: quantiles.map(|(p50, _)| tenth(p50 * 1000.0)),
                p99: quantiles.map(|(_, p99)| tenth(p99 * 1000.0)),
            }
        },
        live_edge_age_ms: snapshot
            .as_ref()
            .and_then(|s| s.live_edge_age)
            .map(|age| tenth(age.as_secs_f64() * 1000.0)),
    };
    serde_json::to_value(status).unwrap_or_default()
}
