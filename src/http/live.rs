//! What a show's audience does while it is on: how many watch (`GET /api/shows/{id}/viewers`,
//! public: distinct viewers now and per minute over the show, from the pages' `view_show`
//! heartbeats) and what they said (`GET /api/shows/{id}/chat.csv`: the show's chat as CSV, for
//! the admin or the show's host).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json};
use super::openapi::ErrorBody;
use super::shows::show_actor;
use crate::chat::{export, history};
use crate::commerce::shows::{Actor, Show};

/// The routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(viewers))
        .routes(routes!(chat_csv))
}

/// The body of `GET /api/shows/{id}/viewers`.
#[derive(ToSchema)]
pub struct ViewersJson {
    /// Distinct viewers with a `view_show` heartbeat in the last 60 s.
    pub now: u64,
    /// Distinct viewers per minute from the show's start to its end (or now); empty before it
    /// started.
    pub timeline: Vec<ViewerMinute>,
}

/// One minute of [`ViewersJson::timeline`].
#[derive(ToSchema)]
pub struct ViewerMinute {
    /// The minute's start (RFC 3339, UTC).
    pub t: String,
    /// Distinct viewers with a heartbeat in that minute.
    pub viewers: u64,
}

/// The show `id`, or 404.
fn find_show(api: &ApiState, id: &str) -> Result<Show, ApiError> {
    api.shows
        .get(id)
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, format!("no show {id:?}")))
}

/// The show's time on air in Unix ms: from its start to its end, or to `now_ms` while live.
/// None before it started.
fn on_air(show: &Show, now_ms: i64) -> Option<(i64, i64)> {
    let start = show.status.started_at?.timestamp_millis();
    let end = show
        .status
        .ended_at
        .map_or(now_ms, |end| end.timestamp_millis());
    Some((start, end.max(start)))
}

#[utoipa::path(get, path = "/api/shows/{id}/viewers", tag = "shows", operation_id = "show_viewers",
    summary = "Watching now, and distinct viewers per minute over the show",
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 200, description = "Viewers now and the per-minute timeline", body = ViewersJson),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn viewers(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let show = find_show(&api, &id)?;
    let now_ms = chrono::Utc::now().timestamp_millis();
    let events = &api.events.service;
    let now = events.viewers_now(&show.id, now_ms);
    let minutes = match on_air(&show, now_ms) {
        Some((from, to)) => events
            .viewer_timeline(&show.id, from, to)
            .await
            .map_err(|err| {
                tracing::error!(error = %err, "viewer timeline");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            })?,
        None => Vec::new(),
    };
    let timeline: Vec<_> = minutes
        .iter()
        .map(|minute| {
            let t = chrono::DateTime::from_timestamp_millis(minute.start_ms)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
            serde_json::json!({ "t": t, "viewers": minute.viewers })
        })
        .collect();
    Ok(json(
        StatusCode::OK,
        serde_json::json!({ "now": now, "timeline": timeline }),
    ))
}

#[utoipa::path(get, path = "/api/shows/{id}/chat.csv", tag = "shows", operation_id = "show_chat_csv",
    summary = "The show's chat as CSV",
    description = "The messages of the show's room (its stream) sent while the show was on air \
                   (from its start to its end, or now), oldest first: id, sent_at, \
                   media_time_ms, user, role, kind, text, link_url, product_id. Cells that a \
                   spreadsheet would run as a formula get a leading `'`.",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 200, description = "The CSV (header row first; only the header before the show started)",
            content_type = "text/csv", body = String),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not a host, or another host's show", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn chat_csv(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let actor = show_actor(caller, "the chat export")?;
    let show = find_show(&api, &id)?;
    if let Actor::Host(user) = &actor
        && *user != show.host
    {
        let message = format!("show {id:?} belongs to another host");
        return Err(ApiError::new(StatusCode::FORBIDDEN, message));
    }
    let failed = |message: String| {
        tracing::error!(error = %message, "chat export");
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "chat export failed")
    };
    let now_ms = chrono::Utc::now().timestamp_millis();
    let messages = match on_air(&show, now_ms) {
        Some((from, to)) => history::sent_between(&api.store, &show.stream, from, to)
            .await
            .map_err(|e| failed(e.to_string()))?,
        None => Vec::new(),
    };
    let csv = export::to_csv(&messages).map_err(|e| failed(e.to_string()))?;
    let disposition = format!("attachment; filename=\"{}-chat.csv\"", show.id);
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (header::CONTENT_DISPOSITION, disposition),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        csv,
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_on_air_runs_from_start_to_end_or_now() {
        let start = chrono::DateTime::from_timestamp_millis(1_000_000).unwrap();
        let mut show = Show {
            id: "show-1".into(),
            title: "t".into(),
            description: String::new(),
            host: "h".into(),
            stream: "demo".into(),
            cover_image_url: None,
            tags: Vec::new(),
            products: Vec::new(),
            status: crate::commerce::shows::ShowState::scheduled(start),
        };
        assert_eq!(on_air(&show, 5_000_000), None);
        show.status.started_at = Some(start);
        assert_eq!(on_air(&show, 5_000_000), Some((1_000_000, 5_000_000)));
        show.status.ended_at = chrono::DateTime::from_timestamp_millis(2_000_000);
        assert_eq!(on_air(&show, 5_000_000), Some((1_000_000, 2_000_000)));
    }
}
