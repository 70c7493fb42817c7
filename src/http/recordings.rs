//! HTTP API of recordings (JSON, public like the playback URLs), around
//! [`crate::hls::recording::Recorder`]'s index:
//! - `GET /api/recordings[?stream=&show=]` → `{"items": [...]}`, newest first
//! - `GET /api/recordings/{id}` → one recording
//! - `DELETE /api/recordings/{id}` (admin, or the host of the recording's show) → 204; 409
//!   while it is being written
//!
//! and the `replay` of a show (its newest recording), which the show routes join in. The
//! recordings themselves play at `/vod/{id}/index.m3u8` ([`crate::hls::recording::vod`]).
//! Errors are `{"error", "field"}`: 400 an unknown or malformed parameter or id, 404 an
//! unknown recording. With recordings disabled the list is empty and every id is unknown.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json};
use super::openapi::ErrorBody;
use super::shows::show_actor;
use crate::commerce::shows::State as ShowState;
use crate::commerce::shows::model::{Show, rfc3339};
use crate::commerce::shows::service::Actor;
use crate::hls::origin::is_valid_stream_name;
use crate::hls::recording::{DeleteError, Entry, Filter, index::playlist_url, is_valid_id};

/// The recording routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list))
        .routes(routes!(recording, delete_recording))
}

/// A recording as the API answers it ([`to_json`]).
#[derive(ToSchema)]
pub struct RecordingJson {
    /// Unique id.
    pub id: String,
    /// The stream it recorded.
    pub stream: String,
    /// The HLS session it recorded (the chat replay key).
    pub session: String,
    /// The show that was live on the stream, if any.
    #[schema(required = true)]
    pub show: Option<String>,
    /// When it started (RFC 3339).
    pub started_at: String,
    /// When it ended (RFC 3339); null while recording.
    #[schema(required = true)]
    pub ended_at: Option<String>,
    /// Recorded media time, seconds.
    pub duration_s: f64,
    /// Rendition names.
    pub renditions: Vec<String>,
    /// `/vod/{id}/index.m3u8`.
    pub playlist: String,
    /// `recording` (still growing), `complete` or `cut_short` (the server stopped mid-stream).
    pub state: RecordingStateName,
    /// Bytes on disk.
    pub bytes: u64,
}

/// A recording's state.
#[derive(ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RecordingStateName {
    /// Still growing.
    Recording,
    /// Finished at the stream's end.
    Complete,
    /// Finished at its last complete segment after the server stopped mid-stream.
    CutShort,
}

/// `GET /api/recordings`'s answer.
#[derive(ToSchema)]
pub struct RecordingList {
    /// Newest first.
    pub items: Vec<RecordingJson>,
}

/// The query string of `GET /api/recordings`; any other parameter is refused (400).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only recordings of this stream.
    pub stream: Option<String>,
    /// Only recordings of this show.
    pub show: Option<String>,
}

/// The API's JSON of a recording.
pub fn to_json(entry: &Entry) -> serde_json::Value {
    serde_json::json!({
        "id": entry.id,
        "stream": entry.stream,
        "session": entry.session,
        "show": entry.show,
        "started_at": rfc3339(entry.started_at),
        "ended_at": entry.ended_at.map(rfc3339),
        "duration_s": entry.duration_s,
        "renditions": entry.renditions,
        "playlist": entry.playlist(),
        "state": entry.state.as_str(),
        "bytes": entry.bytes,
    })
}

fn storage_error(err: sqlx::Error) -> ApiError {
    tracing::error!(error = %err, "recordings index");
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
}

#[utoipa::path(get, path = "/api/recordings", tag = "recordings",
    operation_id = "list_recordings", summary = "Recordings, newest first",
    params(ListQuery),
    responses(
        (status = 200, description = "The recordings", body = RecordingList),
        (status = 400, description = "An unknown or malformed parameter, named", body = ErrorBody),
    ))]
async fn list(
    State(api): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    for key in query.keys() {
        if key != "stream" && key != "show" {
            let message = format!("{key}: unknown parameter (stream and show are known)");
            return Err(ApiError::field(key.clone(), message));
        }
    }
    let stream = query.get("stream").cloned();
    if let Some(stream) = stream.as_deref().filter(|s| !is_valid_stream_name(s)) {
        let message = format!("stream: not a stream name: {stream:?}");
        return Err(ApiError::field("stream", message));
    }
    let show = query.get("show").cloned();
    if let Some(show) = show.as_deref().filter(|s| !is_valid_id(s)) {
        let message = format!("show: not a show id: {show:?}");
        return Err(ApiError::field("show", message));
    }
    let items = match &api.recordings {
        Some(recorder) => recorder
            .index()
            .list(&Filter { stream, show })
            .await
            .map_err(storage_error)?,
        None => Vec::new(),
    };
    let items: Vec<_> = items.iter().map(to_json).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "items": items })))
}

#[utoipa::path(get, path = "/api/recordings/{id}", tag = "recordings",
    operation_id = "get_recording", summary = "A recording",
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 200, description = "The recording", body = RecordingJson),
        (status = 400, description = "Not a recording id", body = ErrorBody),
        (status = 404, description = "No such recording", body = ErrorBody),
    ))]
async fn recording(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !is_valid_id(&id) {
        return Err(ApiError::field(
            "id",
            format!("id: not a recording id: {id:?}"),
        ));
    }
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no recording {id}"));
    let recorder = api.recordings.as_ref().ok_or_else(not_found)?;
    let entry = recorder.index().get(&id).await.map_err(storage_error)?;
    let entry = entry.ok_or_else(not_found)?;
    Ok(json(StatusCode::OK, to_json(&entry)))
}

#[utoipa::path(delete, path = "/api/recordings/{id}", tag = "recordings",
    operation_id = "delete_recording", summary = "Delete a finished recording (files and listing)",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Recording id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 400, description = "Not a recording id", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not the admin or the host of the recording's show", body = ErrorBody),
        (status = 404, description = "No such recording", body = ErrorBody),
        (status = 409, description = "The recording is still being written (its stream is live)", body = ErrorBody),
    ))]
async fn delete_recording(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    if !is_valid_id(&id) {
        return Err(ApiError::field(
            "id",
            format!("id: not a recording id: {id:?}"),
        ));
    }
    let actor = show_actor(caller, "deleting a recording")?;
    let not_found = || ApiError::new(StatusCode::NOT_FOUND, format!("no recording {id}"));
    let recorder = api.recordings.as_ref().ok_or_else(not_found)?;
    let entry = recorder.index().get(&id).await.map_err(storage_error)?;
    let entry = entry.ok_or_else(not_found)?;
    if let Actor::Host(user) = &actor {
        let host = entry
            .show
            .as_deref()
            .and_then(|show| api.shows.get(show))
            .map(|show| show.host);
        if host.as_ref() != Some(user) {
            let message = format!("recording {id} is not of a show of yours");
            return Err(ApiError::new(StatusCode::FORBIDDEN, message));
        }
    }
    match recorder.delete(&id).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(DeleteError::Unknown(_)) => Err(not_found()),
        Err(err @ DeleteError::Live(_)) => {
            Err(ApiError::new(StatusCode::CONFLICT, err.to_string()))
        }
        Err(DeleteError::Failed(err)) => {
            tracing::error!(recording = %id, error = %err, "recording not deleted");
            Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the recording could not be deleted",
            ))
        }
    }
}

/// The `replay` of each of `shows` that has ended and has a recording: show id →
/// `{"recording", "playlist"}` of its newest one (one index query for them all).
pub async fn replays(api: &ApiState, shows: &[&Show]) -> HashMap<String, serde_json::Value> {
    let Some(recorder) = &api.recordings else {
        return HashMap::new();
    };
    let ended: Vec<&str> = shows
        .iter()
        .filter(|s| s.status.state == ShowState::Ended)
        .map(|s| s.id.as_str())
        .collect();
    match recorder.index().newest_of_shows(&ended).await {
        Ok(newest) => newest
            .into_iter()
            .map(|(show, entry)| {
                let replay = serde_json::json!({
                    "recording": entry.id,
                    "playlist": playlist_url(&entry.id),
                });
                (show, replay)
            })
            .collect(),
        Err(err) => {
            tracing::error!(error = %err, "recordings index: show replays left out");
            HashMap::new()
        }
    }
}
