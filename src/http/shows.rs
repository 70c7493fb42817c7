//! HTTP API of shows (JSON), around [`crate::commerce::shows::Shows`]:
//! - `GET /api/shows[?state=scheduled|live|ended&host=&stream=]` → `{"shows": [...]}` (public)
//! - `GET /api/shows/{id}` → show (public); every show's JSON has `replay`: its recording once
//!   it ended (`{"recording", "playlist"}`), else null
//! - `POST /api/shows` → 201 show; `PATCH /api/shows/{id}` → show (fields given, and the
//!   `state` override `live`/`ended`); `DELETE /api/shows/{id}` → 204
//!
//! Changes need a login token with the `host` capability (the host's own shows) or the admin
//! token (any show; creating one names its `host`). Errors are `{"error", "field"}` (field
//! only for 400): 400 bad input, 401 missing/invalid token, 403 not a host or another host's
//! show, 404 unknown show, 409 not applicable in the show's state, 413 too large.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json, parse, read_body};
use crate::commerce::shows::{Actor, Show, ShowError, ShowRequest, State as ShowState};
use crate::users::Capability;

/// The show routes.
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/shows", get(list).post(create))
        .route("/api/shows/{id}", get(show).patch(update).delete(delete))
        .with_state(api)
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
    let replays = super::recordings::replays(&api).await;
    let shows: Vec<_> = shows.iter().map(|s| with_replay(s, &replays)).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "shows": shows })))
}

async fn show(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let show = api.shows.get(&id).ok_or(ShowError::NotFound(id))?;
    let replays = super::recordings::replays(&api).await;
    Ok(json(StatusCode::OK, with_replay(&show, &replays)))
}

/// The show's JSON with its `replay`: the recording of an ended show, else null.
fn with_replay(show: &Show, replays: &HashMap<String, serde_json::Value>) -> serde_json::Value {
    let mut value = show.to_json();
    let replay = replays
        .get(&show.id)
        .filter(|_| show.status.state == ShowState::Ended)
        .cloned()
        .unwrap_or(serde_json::Value::Null);
    if let Some(object) = value.as_object_mut() {
        object.insert("replay".into(), replay);
    }
    value
}

async fn create(State(api): State<Arc<ApiState>>, change: Change) -> Result<Response, ApiError> {
    let request: ShowRequest = parse(&change.body)?;
    check_host(&api, &change.actor, &request).await?;
    let show = api.shows.create(&change.actor, request).await?;
    let replays = super::recordings::replays(&api).await;
    Ok(json(StatusCode::CREATED, with_replay(&show, &replays)))
}

async fn update(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, ApiError> {
    let request: ShowRequest = parse(&change.body)?;
    check_host(&api, &change.actor, &request).await?;
    let show = api.shows.update(&change.actor, &id, request).await?;
    let replays = super::recordings::replays(&api).await;
    Ok(json(StatusCode::OK, with_replay(&show, &replays)))
}

async fn delete(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    change: Change,
) -> Result<Response, ApiError> {
    api.shows.delete(&change.actor, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
