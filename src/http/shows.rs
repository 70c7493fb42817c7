//! HTTP API of shows (JSON), around [`crate::commerce::shows::Shows`]:
//! - `GET /api/shows[?state=scheduled|live|ended&host=&stream=]` → `{"shows": [...]}` (public)
//! - `GET /api/shows/{id}` → show (public); every show's JSON has `replay`: its recording once
//!   it ended (`{"recording", "playlist"}`), else null, and `viewers`: watching now
//! - `POST /api/shows` → 201 show; `PATCH /api/shows/{id}` → show (fields given, and the
//!   `state` override `live`/`ended`); `DELETE /api/shows/{id}` → 204
//!
//! Changes need a login token with the `host` capability (the host's own shows) or the admin
//! token (any show; creating one names its `host`). Errors are `{"error", "field"}` (field
//! only for 400): 400 bad input, 401 missing/invalid token, 403 not a host or another host's
//! show, 404 unknown show, 409 not applicable in the show's state, 413 too large.

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json, parse, read_body};
use super::openapi::ErrorBody;
use crate::commerce::shows::{Actor, Show, ShowError, ShowRequest, State as ShowState};
use crate::users::Capability;

/// The show routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list, create))
        .routes(routes!(show, update, delete))
}

/// A show as the API answers it (`Show::to_json`).
#[derive(ToSchema)]
pub struct ShowJson {
    /// Unique id (`show-` + 16 hex digits).
    pub id: String,
    /// Title.
    pub title: String,
    /// Description (may be empty).
    pub description: String,
    /// The host's username.
    pub host: String,
    /// The configured stream it is broadcast on.
    pub stream: String,
    /// Scheduled start (RFC 3339, UTC, milliseconds).
    pub scheduled_start: String,
    /// Cover image URL.
    #[schema(required = true)]
    pub cover_image_url: Option<String>,
    /// Tags, in order.
    pub tags: Vec<String>,
    /// Featured catalog product ids, in order.
    pub products: Vec<String>,
    /// `scheduled`, `live` or `ended`.
    pub state: ShowStateName,
    /// When it went live (RFC 3339).
    #[schema(required = true)]
    pub started_at: Option<String>,
    /// When it ended (RFC 3339).
    #[schema(required = true)]
    pub ended_at: Option<String>,
    /// `/hls/{stream}/index.m3u8`.
    pub playback_url: String,
    /// The recording of an ended show (its newest), else null.
    #[schema(required = true)]
    pub replay: Option<ReplayJson>,
    /// Watching now: distinct viewers (visitors or users) with a `view_show` heartbeat in the
    /// last 60 s.
    pub viewers: u64,
}

/// Where an ended show replays.
#[derive(ToSchema)]
pub struct ReplayJson {
    /// The recording's id.
    pub recording: String,
    /// `/vod/{id}/index.m3u8`.
    pub playlist: String,
}

/// A show's state.
#[derive(ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum ShowStateName {
    /// Not live yet.
    Scheduled,
    /// On air.
    Live,
    /// Over.
    Ended,
}

/// The body of `GET /api/shows`.
#[derive(ToSchema)]
pub struct ShowList {
    /// The shows, by scheduled start.
    pub shows: Vec<ShowJson>,
}

/// The filters of `GET /api/shows` (all optional, combined).
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ShowFilter {
    /// Only shows in this state.
    pub state: Option<ShowStateName>,
    /// Only this host's shows.
    pub host: Option<String>,
    /// Only shows on this stream.
    pub stream: Option<String>,
}

impl From<ShowError> for ApiError {
    fn from(err: ShowError) -> ApiError {
        let message = err.to_string();
        match err {
            ShowError::Invalid(field) => ApiError::field(field.field, message),
            ShowError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, message),
            ShowError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, message),
            ShowError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, message),
            ShowError::Store(err) => {
                tracing::error!(error = %err, "show request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

/// Who may manage shows: the admin token, or a login token with the `host` capability (no
/// token 401, a login without `host` 403).
pub(super) fn show_actor(caller: Caller, needs: &str) -> Result<Actor, ApiError> {
    match caller {
        Caller::Admin => Ok(Actor::Admin),
        Caller::User(claims) if claims.caps.contains(&Capability::Host) => {
            Ok(Actor::Host(claims.sub))
        }
        Caller::User(_) => Err(ApiError::new(
            StatusCode::FORBIDDEN,
            format!("{needs} needs the host capability"),
        )),
        Caller::Anonymous => Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!("{needs} needs the admin token or a host's login token"),
        )),
    }
}

/// A show change past the checks every change makes, in this order: a token (401) that may
/// manage shows (403), a body within `shows.max_request_bytes` (413).
struct Change {
    actor: Actor,
    body: axum::body::Bytes,
}

impl axum::extract::FromRequest<Arc<ApiState>> for Change {
    type Rejection = Response;

    async fn from_request(request: Request, api: &Arc<ApiState>) -> Result<Change, Response> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let actor = show_actor(caller, "managing shows").map_err(IntoResponse::into_response)?;
        let body = read_body(body, api.shows.settings().max_request_bytes)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(Change { actor, body })
    }
}

/// The `host` an admin names must be an account with the `host` capability.
async fn check_host(api: &ApiState, actor: &Actor, request: &ShowRequest) -> Result<(), ApiError> {
    let (Actor::Admin, Some(host)) = (actor, &request.host) else {
        return Ok(());
    };
    let is_host = api
        .users
        .capabilities(host)
        .await
        .is_ok_and(|caps| caps.contains(&Capability::Host));
    if is_host {
        Ok(())
    } else {
        let message = format!("host: `{host}` is not a user with the host capability");
        Err(ApiError::field("host", message))
    }
}

#[utoipa::path(get, path = "/api/shows", tag = "shows", operation_id = "list_shows", summary = "List shows",
    params(ShowFilter),
    responses(
        (status = 200, description = "The shows", body = ShowList),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
    ))]
async fn list(
    State(api): State<Arc<ApiState>>,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let state = match query.get("state") {
        Some(name) => Some(ShowState::parse(name).ok_or_else(|| {
            let message = "state: must be \"scheduled\", \"live\" or \"ended\"";
            ApiError::field("state", message)
        })?),
        None => None,
    };
    let shows: Vec<_> = api
        .shows
        .list(state)
        .iter()
        .filter(|s| {
            query
                .get("host")
                .is_none_or(|h| s.host == h.to_ascii_lowercase())
        })
        .filter(|s| query.get("stream").is_none_or(|name| s.stream == *name))
        .cloned()
        .collect();
    let replays = super::recordings::replays(&api, &shows.iter().collect::<Vec<_>>()).await;
    let shows: Vec<_> = shows.iter().map(|s| show_json(&api, s, &replays)).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "shows": shows })))
}

#[utoipa::path(get, path = "/api/shows/{id}", tag = "shows", operation_id = "get_show", summary = "A show",
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 200, description = "The show", body = ShowJson),
        (status = 404, description = "No such show", body = ErrorBody),
    ))]
async fn show(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let show = api.shows.get(&id).ok_or(ShowError::NotFound(id))?;
    let replays = super::recordings::replays(&api, &[&show]).await;
    Ok(json(StatusCode::OK, show_json(&api, &show, &replays)))
}

/// The show's JSON with its `replay` (the recording of an ended show, else null) and its
/// `viewers` watching now.
fn show_json(
    api: &ApiState,
    show: &Show,
    replays: &HashMap<String, serde_json::Value>,
) -> serde_json::Value {
    let mut value = show.to_json();
    let now_ms = chrono::Utc::now().timestamp_millis();
    let viewers = api.events.service.viewers_now(&show.id, now_ms);
    let replay = replays
        .get(&show.id)
        .filter(|_| show.status.state == ShowState::Ended)
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("replay".into(), replay);
        object.insert("viewers".into(), viewers.into());
    }
    value
}

#[utoipa::path(post, path = "/api/shows", tag = "shows", operation_id = "create_show", summary = "Schedule a show",
    security(("admin" = []), ("login" = [])),
    request_body(content = ShowRequest, description = "`title`, `stream` and `scheduled_start` are required; the admin names the `host`"),
    responses(
        (status = 201, description = "The show", body = ShowJson),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "A login without the host capability, or another host's stream", body = ErrorBody),
        (status = 409, description = "Conflicts with the show's state", body = ErrorBody),
        (status = 413, description = "Body over `shows.max_request_bytes`", body = ErrorBody),
    ))]
async fn create(State(api): State<Arc<ApiState>>, change: Change) -> Result<Response, ApiError> {
    let request: ShowRequest = parse(&change.body)?;
    check_host(&api, &change.actor, &request).await?;
    let show = api.shows.create(&change.actor, request).await?;
    let replays = super::recordings::replays(&api, &[&show]).await;
    Ok(json(StatusCode::CREATED, show_json(&api, &show, &replays)))
}

#[utoipa::path(patch, path = "/api/shows/{id}", tag = "shows", operation_id = "update_show",
    summary = "Change a show's fields, or override its state",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Show id")),
    request_body(content = ShowRequest, description = "The fields to change; `state` (`live`, `ended`) overrides the schedule"),
    responses(
        (status = 200, description = "The show", body = ShowJson),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not a host, another host's show, or another host's stream", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 409, description = "Not applicable in the show's state", body = ErrorBody),
        (status = 413, description = "Body over `shows.max_request_bytes`", body = ErrorBody),
    ))]
async fn update(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, ApiError> {
    let request: ShowRequest = parse(&change.body)?;
    check_host(&api, &change.actor, &request).await?;
    let show = api.shows.update(&change.actor, &id, request).await?;
    let replays = super::recordings::replays(&api, &[&show]).await;
    Ok(json(StatusCode::OK, show_json(&api, &show, &replays)))
}

#[utoipa::path(delete, path = "/api/shows/{id}", tag = "shows", operation_id = "delete_show", summary = "Delete a show",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Show id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Not a host, or another host's show", body = ErrorBody),
        (status = 404, description = "No such show", body = ErrorBody),
        (status = 409, description = "Not applicable in the show's state (live)", body = ErrorBody),
        (status = 413, description = "Body over `shows.max_request_bytes`", body = ErrorBody),
    ))]
async fn delete(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, ApiError> {
    api.shows.delete(&change.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
