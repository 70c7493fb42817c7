//! The HLS origin: `/hls/{stream}/…` served from memory, for players and for CDNs pulling.
//!
//! URLs (relative URIs inside the playlists resolve to these):
//! - `/hls/{stream}/index.m3u8` — multivariant playlist
//! - `/hls/{stream}/{rendition}/playlist.m3u8` — media playlist
//! - `/hls/{stream}/{rendition}/init.mp4` — CMAF header (EXT-X-MAP)
//! - `/hls/{stream}/{rendition}/seg{msn}.m4s` — segment
//! - `/hls/{stream}/{rendition}/part{msn}.{part}.m4s` — LL-HLS part
//!
//! Names are matched against these shapes only; nothing is ever read from the file system, so
//! there is no path to traverse.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::packager::Resource;
use super::registry::Registry;
use super::stream::{HlsStream, Rendition, RenditionKind};
use crate::config::is_valid_stream_name;

/// Content type of playlists (RFC 8216 §4).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// Cache lifetimes per object kind.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// Segments, parts and init segments (immutable once published).
    pub segment_max_age: Duration,
    /// The multivariant playlist.
    pub multivariant_max_age: Duration,
    /// Media playlists (zero → `no-cache`).
    pub playlist_max_age: Duration,
}

/// What the origin handlers share.
pub struct Origin {
    /// The streams.
    pub registry: Arc<Registry>,
    /// Cache-Control policy.
    pub cache: CachePolicy,
}

/// The `/hls` routes.
pub fn router(origin: Arc<Origin>) -> Router {
    Router::new()
        .route("/hls/{stream}/index.m3u8", get(multivariant))
        .route(
            "/hls/{stream}/{session}/{rendition}/{file}",
            get(rendition_file),
        )
        .with_state(origin)
}

/// Why an origin request has no content; the body is JSON `{"error": reason}`.
#[derive(Debug)]
pub enum OriginError {
    /// 404: unknown stream, rendition or object.
    NotFound(String),
    /// 503 + `Retry-After: 1`: the stream is live but not playable yet.
    Starting(String),
}

impl IntoResponse for OriginError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            OriginError::NotFound(reason) => (StatusCode::NOT_FOUND, reason),
            OriginError::Starting(reason) => (StatusCode::SERVICE_UNAVAILABLE, reason),
        };
        let body = serde_json::json!({ "error": reason }).to_string();
        let mut response = (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn cache_control(max_age: Duration, immutable: bool) -> HeaderValue {
    let secs = max_age.as_secs();
    let value = match (secs, immutable) {
        (0, _) => "no-cache".to_string(),
        (s, true) => format!("public, max-age={s}, immutable"),
        (s, false) => format!("public, max-age={s}"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("no-cache"))
}

fn find_stream(origin: &Origin, name: &str) -> Result<Arc<HlsStream>, OriginError> {
    if !is_valid_stream_name(name) {
        return Err(OriginError::NotFound("invalid stream name".into()));
    }
    origin
        .registry
        .get(name)
        .ok_or_else(|| OriginError::NotFound(format!("stream `{name}` is not live")))
}

async fn multivariant(
    State(origin): State<Arc<Origin>>,
    Path(name): Path<String>,
) -> Result<Response, OriginError> {
    let stream = find_stream(&origin, &name)?;
    match stream.multivariant() {
        Some(playlist) => Ok((
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
                ),
                (
                    header::CACHE_CONTROL,
                    cache_control(origin.cache.multivariant_max_age, false),
                ),
            ],
            playlist.to_string(),
        )
            .into_response()),
        None if stream.is_ended() => Err(OriginError::NotFound(format!(
            "stream `{name}` ended before its first segment"
        ))),
        None => Err(OriginError::Starting(format!(
            "stream `{name}` is starting; its first segment is not complete yet"
        ))),
    }
}

async fn rendition_file(
    State(origin): State<Arc<Origin>>,
    Path((name, session, rendition_name, file)): Path<(String, String, String, String)>,
) -> Result<Response, OriginError> {
    let stream = find_stream(&origin, &name)?;
    if session != stream.session {
        return Err(OriginError::NotFound(format!(
            "session `{session}` of stream `{name}` is over; reload /hls/{name}/index.m3u8"
        )));
    }
    let rendition = stream.rendition(&rendition_name).ok_or_else(|| {
        OriginError::NotFound(format!(
            "stream `{name}` has no rendition `{rendition_name}`"
        ))
    })?;
    if file == "playlist.m3u8" {
        return media_playlist(&origin, &rendition);
    }
    let resource = Resource::parse(&file)
        .ok_or_else(|| OriginError::NotFound(format!("no such object `{file}`")))?;
    let bytes = rendition.packager().resource(resource).ok_or_else(|| {
        OriginError::NotFound(format!(
            "`{resource}` is not available (not yet published or no longer in the window)"
        ))
    })?;
    Ok(media(&origin, &rendition, bytes))
}

fn media_playlist(origin: &Origin, rendition: &Rendition) -> Result<Response, OriginError> {
    let packager = rendition.packager();
    if packager.init().is_none() {
        return Err(OriginError::Starting(format!(
            "rendition `{}` is starting",
            rendition.name
        )));
    }
    let text = packager.media_playlist(false).to_string();
    drop(packager);
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
            ),
            (
                header::CACHE_CONTROL,
                cache_control(origin.cache.playlist_max_age, false),
            ),
        ],
        text,
    )
        .into_response())
}

fn media(origin: &Origin, rendition: &Rendition, bytes: Bytes) -> Response {
    let content_type = match rendition.kind {
        RenditionKind::Video => "video/mp4",
        RenditionKind::Audio => "audio/mp4",
    };
    (
        [
            (header::CONTENT_TYPE, HeaderValue::from_static(content_type)),
            (
                header::CACHE_CONTROL,
                cache_control(origin.cache.segment_max_age, true),
            ),
        ],
        bytes,
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cache_control_values() {
        assert_eq!(
            cache_control(Duration::from_secs(86400), true),
            "public, max-age=86400, immutable"
        );
        assert_eq!(
            cache_control(Duration::from_secs(2), false),
            "public, max-age=2"
        );
        assert_eq!(cache_control(Duration::ZERO, false), "no-cache");
    }
}
