//! Playback of recordings: `/vod/{id}/…` served from the recordings directory.
//!
//! URLs (the playlists' relative URIs resolve to these):
//! - `/vod/{id}/index.m3u8` — multivariant playlist
//! - `/vod/{id}/{rendition}/playlist.m3u8` — media playlist
//! - `/vod/{id}/{rendition}/init.mp4`, `init{n}.mp4` — CMAF headers
//! - `/vod/{id}/{rendition}/seg{msn}.m4s` — segments
//!
//! Every path segment is checked against these shapes before the file system is touched: ids
//! and rendition names are `[A-Za-z0-9_-]`, file names are the canonical ones
//! ([`Resource::parse`]), so `..`, encoded or not, never reaches a path (400). Files are served
//! by tower-http's `ServeFile`, which answers `Range` requests (206, RFC 9110 §14) and
//! conditional ones. Media files never change once written: `immutable`. Playlists of a
//! recording still being written change with every segment: `no-cache`; a finished
//! recording's are final until retention deletes it: cached for an hour.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower_http::services::ServeFile;

use super::manifest::{INDEX_FILE, PLAYLIST_FILE};
use super::{Recorder, is_valid_id};
use crate::hls::origin::{PLAYLIST_CONTENT_TYPE, is_valid_stream_name};
use crate::hls::packager::Resource;

/// Cache-Control of media files (init segments and segments).
pub const MEDIA_CACHE_CONTROL: &str = "public, max-age=31536000, immutable";
/// Cache-Control of the playlists of a finished recording.
pub const FINISHED_PLAYLIST_CACHE_CONTROL: &str = "public, max-age=3600";
/// Cache-Control of the playlists of a recording being written.
pub const LIVE_PLAYLIST_CACHE_CONTROL: &str = "no-cache";

/// The `/vod` routes.
pub fn router(recorder: Arc<Recorder>) -> Router {
    Router::new()
        .route("/vod/{id}/{file}", get(recording_file))
        .route("/vod/{id}/{rendition}/{file}", get(rendition_file))
        .with_state(recorder)
}

/// A JSON error response.
fn error(status: StatusCode, reason: String) -> Response {
    (
        status,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        serde_json::json!({ "error": reason }).to_string(),
    )
        .into_response()
}

async fn recording_file(
    State(recorder): State<Arc<Recorder>>,
    Path((id, file)): Path<(String, String)>,
    request: Request,
) -> Response {
    if !is_valid_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("id: not a recording id: {id:?}"),
        );
    }
    if file != INDEX_FILE {
        return error(StatusCode::NOT_FOUND, format!("no such file: {file:?}"));
    }
    let path = recorder.dir().join(&id).join(INDEX_FILE);
    let cache = playlist_cache(&recorder, &id);
    serve(path, PLAYLIST_CONTENT_TYPE, cache, request, &id).await
}

async fn rendition_file(
    State(recorder): State<Arc<Recorder>>,
    Path((id, rendition, file)): Path<(String, String, String)>,
    request: Request,
) -> Response {
    if !is_valid_id(&id) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("id: not a recording id: {id:?}"),
        );
    }
    if !is_valid_stream_name(&rendition) {
        return error(
            StatusCode::BAD_REQUEST,
            format!("rendition: not a rendition name: {rendition:?}"),
        );
    }
    let (content_type, cache) = if file == PLAYLIST_FILE {
        (PLAYLIST_CONTENT_TYPE, playlist_cache(&recorder, &id))
    } else {
        match Resource::parse(&file) {
            Some(Resource::Init(_) | Resource::Segment(_)) => ("video/mp4", MEDIA_CACHE_CONTROL),
            _ => {
                return error(
                    StatusCode::BAD_REQUEST,
                    format!("file: not a recording file name: {file:?}"),
                );
            }
        }
    };
    let path = recorder.dir().join(&id).join(&rendition).join(&file);
    serve(path, content_type, cache, request, &id).await
}

fn playlist_cache(recorder: &Recorder, id: &str) -> &'static str {
    if recorder.is_live(id) {
        LIVE_PLAYLIST_CACHE_CONTROL
    } else {
        FINISHED_PLAYLIST_CACHE_CONTROL
    }
}

/// Serves `path` (ranges included) with `content_type` and `cache` on success.
async fn serve(
    path: std::path::PathBuf,
    content_type: &'static str,
    cache: &'static str,
    request: Request,
    id: &str,
) -> Response {
    let response = match ServeFile::new(&path).try_call(request).await {
        Ok(response) => response.map(Body::new),
        Err(err) => {
            tracing::warn!(path = %path.display(), error = %err, "recording file not served");
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("recording {id}: read error"),
            );
        }
    };
    let status = response.status();
    if status == StatusCode::NOT_FOUND {
        return error(
            StatusCode::NOT_FOUND,
            format!("recording {id}: no such file"),
        );
    }
    let mut response = response;
    if status.is_success() || status == StatusCode::NOT_MODIFIED {
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    }
    response
}
