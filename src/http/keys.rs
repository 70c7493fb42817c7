//! Hosts' stream keys and what an encoder needs to publish with them:
//! - `GET /api/keys[?host=]` → `{"items": [...]}` (a host's own keys; the admin's: every key)
//! - `POST /api/keys` `{"name", "stream"?}` → 201 the key with `"key"`, the plaintext, shown once
//! - `PATCH /api/keys/{id}` `{"name"}`; `POST /api/keys/{id}/rotate` → the key with its new
//!   `"key"`; `DELETE /api/keys/{id}` revokes (204)
//! - `GET /api/ingest` → the RTMP, RTMPS and SRT URLs (public)
//!
//! Keys are managed by their host (a login with the `host` capability) or the admin token;
//! another host's key is 403. See [`crate::ingest::keys`].

use std::collections::HashMap;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Path, Query, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Caller;
use super::cues::{ApiError, json, parse, read_body};
use super::openapi::ErrorBody;
use super::shows::show_actor;
use crate::commerce::shows::Actor;
use crate::ingest::keys::{KeyActor, KeyError, KeyInfo, NewKey};
use crate::users::Capability;

/// Largest key request body, bytes.
const MAX_BODY: usize = 16 * 1024;

/// The key routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(list_keys, create_key))
        .routes(routes!(rename_key, revoke_key))
        .routes(routes!(rotate_key))
        .routes(routes!(ingest_urls))
}

/// Where the ingest listeners are, for `GET /api/ingest` (the host part comes from each
/// request's `Host`).
#[derive(Debug, Clone)]
pub struct IngestPorts {
    /// The RTMP application (`rtmp.app`).
    pub app: String,
    /// RTMP's port.
    pub rtmp: u16,
    /// RTMPS's port, when enabled.
    pub rtmps: Option<u16>,
    /// SRT's port, when enabled.
    pub srt: Option<u16>,
}

/// The body of `GET /api/keys`.
#[derive(Serialize, ToSchema)]
pub struct KeyList {
    /// The keys, oldest first.
    pub items: Vec<KeyInfo>,
}

/// A key just created or rotated: its listing and the key, shown this once.
#[derive(Serialize, ToSchema)]
pub struct KeyCreated {
    /// The listing.
    #[serde(flatten)]
    pub item: KeyInfo,
    /// The stream key (plaintext, shown once: only its hash is kept).
    pub key: String,
}

impl From<NewKey> for KeyCreated {
    fn from(new: NewKey) -> KeyCreated {
        KeyCreated {
            item: new.info,
            key: new.key,
        }
    }
}

/// The body of `POST /api/keys`.
#[derive(Deserialize, ToSchema)]
pub struct CreateKey {
    /// A label (1-64 characters).
    pub name: String,
    /// The stream to publish (letters, digits, '-', '_'); default `<host>-<slug(name)>`.
    #[serde(default)]
    pub stream: Option<String>,
    /// The host the key is for (the admin token only; a host's key is their own).
    #[serde(default)]
    pub host: Option<String>,
}

/// The body of `PATCH /api/keys/{id}`.
#[derive(Deserialize, ToSchema)]
pub struct RenameKey {
    /// The new label (1-64 characters).
    pub name: String,
}

/// The filter of `GET /api/keys`.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
pub struct KeyFilter {
    /// Only this host's keys (a host may name only themself).
    pub host: Option<String>,
}

/// The body of `GET /api/ingest`: what OBS (or ffmpeg) needs, with a stream key.
#[derive(Serialize, ToSchema)]
pub struct IngestUrls {
    /// RTMP server URL (`rtmp://HOST:PORT/APP`); the stream key goes in OBS's key field.
    pub rtmp: String,
    /// RTMPS server URL, when enabled.
    pub rtmps: Option<String>,
    /// SRT URL (`srt://HOST:PORT`), when enabled.
    pub srt: Option<String>,
    /// The SRT stream id, `{key}` to be replaced by the stream key.
    pub srt_streamid_template: String,
}

impl From<KeyError> for ApiError {
    fn from(err: KeyError) -> ApiError {
        let message = err.to_string();
        match err {
            KeyError::Invalid { field, .. } => ApiError::field(field, message),
            KeyError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, message),
            KeyError::Forbidden(_) => ApiError::new(StatusCode::FORBIDDEN, message),
            KeyError::Conflict { field, .. } => {
                ApiError::new(StatusCode::CONFLICT, message).with_field(field)
            }
            KeyError::Store(err) => {
                tracing::error!(error = %err, "stream key request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

/// Who manages keys: the admin token, or a login with the `host` capability (401 / 403 as for
/// shows).
fn key_actor(caller: Caller) -> Result<KeyActor, ApiError> {
    Ok(match show_actor(caller, "managing stream keys")? {
        Actor::Admin => KeyActor::Admin,
        Actor::Host(user) => KeyActor::Host(user),
    })
}

/// A key request past its checks: a token that manages keys, a body within [`MAX_BODY`].
struct KeyRequest {
    actor: KeyActor,
    body: axum::body::Bytes,
}

impl axum::extract::FromRequest<Arc<ApiState>> for KeyRequest {
    type Rejection = Response;

    async fn from_request(request: Request, api: &Arc<ApiState>) -> Result<KeyRequest, Response> {
        let (mut parts, body) = request.into_parts();
        let actor = actor_of(&mut parts, api).await?;
        let body = read_body(body, MAX_BODY)
            .await
            .map_err(IntoResponse::into_response)?;
        Ok(KeyRequest { actor, body })
    }
}

async fn actor_of(parts: &mut Parts, api: &Arc<ApiState>) -> Result<KeyActor, Response> {
    let caller = Caller::from_request_parts(parts, api)
        .await
        .map_err(IntoResponse::into_response)?;
    key_actor(caller).map_err(IntoResponse::into_response)
}

#[utoipa::path(get, path = "/api/keys", tag = "keys", operation_id = "list_keys",
    summary = "Stream keys (a host's own; the admin's: all)",
    security(("admin" = []), ("login" = [])),
    params(KeyFilter),
    responses(
        (status = 200, description = "The keys (never the keys themselves)", body = KeyList),
        (status = 400, description = "A bad parameter, named", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "A login without the host capability, or another host's keys", body = ErrorBody),
    ))]
async fn list_keys(
    State(api): State<Arc<ApiState>>,
    caller: Caller,
    Query(query): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    if let Some(name) = query.keys().find(|k| *k != "host") {
        return Err(ApiError::field(
            name.clone(),
            format!("unknown parameter `{name}`"),
        ));
    }
    let host = query.get("host").map(|h| h.to_ascii_lowercase());
    let host = match (key_actor(caller)?, host) {
        (KeyActor::Admin, host) => host,
        (KeyActor::Host(user), Some(host)) if host != user => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a host lists their own keys",
            ));
        }
        (KeyActor::Host(user), _) => Some(user),
    };
    let items = api.host_keys.list(host.as_deref()).await?;
    Ok(json(StatusCode::OK, serde_json::json!({ "items": items })))
}

#[utoipa::path(post, path = "/api/keys", tag = "keys", operation_id = "create_key",
    summary = "Create a stream key",
    security(("admin" = []), ("login" = [])),
    request_body(content = CreateKey, description = "`name` is required; the admin names the `host`"),
    responses(
        (status = 201, description = "The key, with the plaintext `key` shown this once", body = KeyCreated),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "A login without the host capability, or a key for another host", body = ErrorBody),
        (status = 409, description = "The stream is configured, another host's, or already has an active key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
    ))]
async fn create_key(
    State(api): State<Arc<ApiState>>,
    request: KeyRequest,
) -> Result<Response, ApiError> {
    let body: CreateKey = parse(&request.body)?;
    let host = match (&request.actor, body.host) {
        (KeyActor::Admin, None) => {
            return Err(ApiError::field(
                "host",
                "host: required when the admin token creates a key",
            ));
        }
        (KeyActor::Admin, Some(host)) => {
            let host = host.to_ascii_lowercase();
            let is_host = api
                .users
                .capabilities(&host)
                .await
                .is_ok_and(|caps| caps.contains(&Capability::Host));
            if !is_host {
                let message = format!("host: `{host}` is not a user with the host capability");
                return Err(ApiError::field("host", message));
            }
            host
        }
        (KeyActor::Host(user), Some(host)) if host.to_ascii_lowercase() != *user => {
            return Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "a host creates their own keys",
            ));
        }
        (KeyActor::Host(user), _) => user.clone(),
    };
    let created = api
        .host_keys
        .create(&host, &body.name, body.stream.as_deref())
        .await?;
    Ok(json(
        StatusCode::CREATED,
        serde_json::to_value(KeyCreated::from(created)).unwrap_or_default(),
    ))
}

#[utoipa::path(patch, path = "/api/keys/{id}", tag = "keys", operation_id = "rename_key",
    summary = "Rename a stream key",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Key id")),
    request_body = RenameKey,
    responses(
        (status = 200, description = "The key", body = KeyInfo),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Another host's key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 413, description = "Body over 16 KiB", body = ErrorBody),
    ))]
async fn rename_key(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    request: KeyRequest,
) -> Result<Response, ApiError> {
    let body: RenameKey = parse(&request.body)?;
    let info = api
        .host_keys
        .rename(&request.actor, &id, &body.name)
        .await?;
    Ok(json(
        StatusCode::OK,
        serde_json::to_value(info).unwrap_or_default(),
    ))
}

#[utoipa::path(post, path = "/api/keys/{id}/rotate", tag = "keys", operation_id = "rotate_key",
    summary = "Replace a stream key by a new one (same stream)",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 200, description = "The key, with the new plaintext `key` shown this once", body = KeyCreated),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Another host's key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
        (status = 409, description = "The key is revoked", body = ErrorBody),
    ))]
async fn rotate_key(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let actor = key_actor(caller)?;
    let rotated = api.host_keys.rotate(&actor, &id).await?;
    Ok(json(
        StatusCode::OK,
        serde_json::to_value(KeyCreated::from(rotated)).unwrap_or_default(),
    ))
}

#[utoipa::path(delete, path = "/api/keys/{id}", tag = "keys", operation_id = "revoke_key",
    summary = "Revoke a stream key (a publisher live with it is disconnected)",
    security(("admin" = []), ("login" = [])),
    params(("id" = String, Path, description = "Key id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "No token, or an invalid one", body = ErrorBody),
        (status = 403, description = "Another host's key", body = ErrorBody),
        (status = 404, description = "No such key", body = ErrorBody),
    ))]
async fn revoke_key(
    State(api): State<Arc<ApiState>>,
    Path(id): Path<String>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let actor = key_actor(caller)?;
    api.host_keys.revoke(&actor, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The host name of a `Host` header value (without the port; brackets kept for IPv6), or
/// `localhost` when there is none or it is not a plain host name.
fn host_name(value: Option<&str>) -> String {
    let value = value.unwrap_or("").trim();
    let host = if value.starts_with('[') {
        value.split_inclusive(']').next().unwrap_or("")
    } else {
        value.split(':').next().unwrap_or("")
    };
    let plain = !host.is_empty()
        && host.len() <= 253
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'[' | b']' | b':'));
    if plain {
        host.to_string()
    } else {
        "localhost".to_string()
    }
}

#[utoipa::path(get, path = "/api/ingest", tag = "keys", operation_id = "ingest_urls",
    summary = "The publish URLs for OBS (with a stream key)",
    responses(
        (status = 200, description = "RTMP, RTMPS and SRT URLs (the host as the request named it)", body = IngestUrls),
    ))]
async fn ingest_urls(State(api): State<Arc<ApiState>>, headers: HeaderMap) -> Response {
    let host = host_name(headers.get(header::HOST).and_then(|v| v.to_str().ok()));
    let ports = &api.ingest;
    let app = &ports.app;
    let urls = IngestUrls {
        rtmp: format!("rtmp://{host}:{}/{app}", ports.rtmp),
        rtmps: ports.rtmps.map(|p| format!("rtmps://{host}:{p}/{app}")),
        srt: ports.srt.map(|p| format!("srt://{host}:{p}")),
        srt_streamid_template: format!("#!::r={app}/{{key}},m=publish"),
    };
    json(
        StatusCode::OK,
        serde_json::to_value(urls).unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_drop_the_port_and_refuse_odd_values() {
        assert_eq!(host_name(Some("example.com:8080")), "example.com");
        assert_eq!(host_name(Some("[::1]:8080")), "[::1]");
        assert_eq!(host_name(Some("10.0.0.2")), "10.0.0.2");
        assert_eq!(host_name(None), "localhost");
        assert_eq!(host_name(Some("a b/c")), "localhost");
    }
}
