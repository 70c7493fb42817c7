//! HTTP API of cues (JSON), around [`crate::cues::service::CueService`]:
//! - `POST /api/streams/{stream}/cues` → 201 cue; `GET …/cues` → `{"cues": [...]}`
//! - `DELETE /api/streams/{stream}/cues/{id}` (or `POST …/cues/{id}/end`) → 200 cue, ended now
//! - `PUT /api/streams/{stream}/rundown` (replace) / `POST` (append) → `{"items": [...]}`;
//!   `GET …/rundown` lists unfired items
//!
//! Errors are `{"error": "...", "field": "..."}` (field only for 400): 400 bad input, 401
//! missing/invalid token, 404 unknown stream / not live / unknown cue, 409 not applicable,
//! 413 too large, 429 over the rate (with Retry-After), 503 no media yet, 500 storage.
//!
//! Clustered, an operation (not a GET) on a stream published on another node is forwarded to
//! that node with the caller's `Authorization` and answered with its answer
//! ([`super::edge::forward_cue`]); 503 if it does not answer.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use utoipa::{IntoParams, IntoResponses, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::{Caller, may_manage_stream};
use super::openapi::{ErrorBody, FieldErrorBody};
use crate::commerce::Product;
use crate::cues::model::{CueError, CueKind, CueRequest, check_seconds, ns_to_s};
use crate::cues::rundown::ScheduledCue;
use crate::cues::service::{MAX_OFFSET_S, RundownItem, ServiceError};

/// The cue routes (the admin token, or the stream's host: [`may_manage_stream`]).
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(post_cue, list_cues))
        .routes(routes!(delete_cue))
        .routes(routes!(end_cue))
        .routes(routes!(get_rundown, replace_rundown, append_rundown))
}

/// An API error response: `{"error": "...", "field": "..."}`, with `"errors"` (every field
/// error, `[{"field", "error"}]`) when a request had more than one, and Retry-After.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    field: Option<String>,
    errors: Vec<(String, String)>,
    retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status` and `message`, naming no field.
    pub(super) fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
            field: None,
            errors: Vec::new(),
            retry_after: None,
        }
    }

    /// A 400 naming `field`.
    pub(super) fn field(field: impl Into<String>, message: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..ApiError::new(StatusCode::BAD_REQUEST, message)
        }
    }

    /// The same error naming `field`.
    pub(super) fn with_field(self, field: impl Into<String>) -> ApiError {
        ApiError {
            field: Some(field.into()),
            ..self
        }
    }

    /// The same error listing every field error (field, message) of the request.
    pub(super) fn errors(self, errors: Vec<(String, String)>) -> ApiError {
        ApiError { errors, ..self }
    }

    /// The same error telling the client to wait `retry_after`.
    pub(super) fn retry_after(self, retry_after: std::time::Duration) -> ApiError {
        ApiError {
            retry_after: Some(retry_after.as_secs_f64().ceil().max(1.0) as u64),
            ..self
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(err: ServiceError) -> ApiError {
        let message = err.to_string();
        match err {
            ServiceError::Cue(CueError::Invalid { field, .. }) => ApiError::field(field, message),
            ServiceError::Cue(CueError::TooLarge { .. }) => {
                ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
            }
            ServiceError::NotFound(_) => ApiError::new(StatusCode::NOT_FOUND, message),
            ServiceError::Conflict(_) => ApiError::new(StatusCode::CONFLICT, message),
            ServiceError::RateLimited { retry_after, .. } => {
                ApiError::new(StatusCode::TOO_MANY_REQUESTS, message).retry_after(retry_after)
            }
            ServiceError::NoMedia(_) => ApiError {
                retry_after: Some(1),
                ..ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message)
            },
            ServiceError::Store(err) => {
                tracing::error!(error = %err, "cue request failed");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage error")
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.message,
            field: self.field,
            errors: (self.errors.len() > 1).then(|| {
                self.errors
                    .into_iter()
                    .map(|(field, error)| FieldErrorBody { field, error })
                    .collect()
            }),
        };
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_json(),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 9110 §15.5.2: a 401 names its challenge (as `auth::AuthError` does).
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// A JSON response.
pub(super) fn json(status: StatusCode, value: serde_json::Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        value.to_string(),
    )
        .into_response()
}

/// A cue request past the checks every cue route makes, in this order: a token (401), a
/// stream (404) the caller may manage (403, [`may_manage_stream`]), a body within
/// `cues.max_request_bytes` (413).
struct Admitted {
    /// The `{stream}` of the path.
    stream: String,
    /// The request body.
    body: Bytes,
}

impl FromRequest<Arc<ApiState>> for Admitted {
    type Rejection = Response;

    async fn from_request(request: Request, api: &Arc<ApiState>) -> Result<Admitted, Response> {
        let (mut parts, body) = request.into_parts();
        let caller = Caller::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let stream = params.remove("stream").unwrap_or_default();
        may_manage_stream(api, &caller, &stream).map_err(IntoResponse::into_response)?;
        let body = read_body(body, api.cues.settings.max_request_bytes)
            .await
            .map_err(IntoResponse::into_response)?;
        // Clustered: the owner's packager puts cues in the media every node serves.
        if let Some(answer) = super::edge::forward_cue(
            api.edge.as_ref(),
            &api.origin.registry,
            &stream,
            &parts.method,
            &parts.uri,
            &parts.headers,
            &body,
        )
        .await
        {
            return Err(answer);
        }
        Ok(Admitted { stream, body })
    }
}

/// A request body of at most `limit` bytes; 413 above.
pub(super) async fn read_body(body: axum::body::Body, limit: usize) -> Result<Bytes, ApiError> {
    to_bytes(body, limit).await.map_err(|_| {
        let message = format!("request body over {limit} bytes");
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, message)
    })
}

/// Deserializes with the failing field's path in the error.
pub(super) fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|err| {
        let path = err.path().to_string();
        let field = if path == "." {
            "body".to_string()
        } else {
            path
        };
        let message = format!("{field}: {}", err.into_inner());
        ApiError::field(field, message)
    })
}

#[utoipa::path(post, path = "/api/streams/{stream}/cues", tag = "cues",
    summary = "Post a timed product cue",
    security(("admin" = []), ("login" = [])),
    params(StreamPath),
    request_body = CueBody,
    responses(
        (status = 201, description = "The cue, placed on the live session", body = CueJson),
        (status = 400, description = "A bad field, named", body = ErrorBody),
        Unadmitted,
        (status = 404, description = "No such stream, or it is not live", body = ErrorBody),
        (status = 409, description = "Not applicable now", body = ErrorBody),
        (status = 413, description = "Body over `cues.max_request_bytes` or payload over `cues.max_payload_bytes`", body = ErrorBody),
        (status = 429, description = "Over the stream's cue rate (Retry-After)", body = ErrorBody),
        (status = 503, description = "The stream has no media yet, or (clustered) the node publishing it did not answer (Retry-After)", body = ErrorBody),
    ))]
async fn post_cue(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let request: CueRequest = parse(&admitted.body)?;
    let cue = api.cues.post(&admitted.stream, request).await?;
    Ok(json(StatusCode::CREATED, cue.to_json()))
}

#[utoipa::path(get, path = "/api/streams/{stream}/cues", tag = "cues",
    summary = "A stream's cues",
    security(("admin" = []), ("login" = [])),
    params(StreamPath),
    responses(
        (status = 200, description = "The cues of the stream's sessions", body = CueList),
        Unadmitted,
        NoStream,
    ))]
async fn list_cues(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let cues = api.cues.list(&admitted.stream).await?;
    let cues: Vec<_> = cues.iter().map(|c| c.to_json()).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "cues": cues })))
}

#[utoipa::path(delete, path = "/api/streams/{stream}/cues/{id}", tag = "cues",
    summary = "End a cue now (or drop an unfired rundown item)",
    security(("admin" = []), ("login" = [])),
    params(CuePath),
    responses(
        (status = 200, description = "The cue, ended now; or the rundown item removed", body = Ended),
        Unadmitted,
        EndRefused,
        OwnerSilent,
    ))]
async fn delete_cue(
    State(api): State<Arc<ApiState>>,
    Path(path): Path<CuePath>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    end(&api, &admitted.stream, &path.id).await
}

#[utoipa::path(post, path = "/api/streams/{stream}/cues/{id}/end", tag = "cues",
    summary = "End a cue now (as DELETE, for clients without DELETE)",
    security(("admin" = []), ("login" = [])),
    params(CuePath),
    responses(
        (status = 200, description = "The cue, ended now; or the rundown item removed", body = Ended),
        Unadmitted,
        EndRefused,
        OwnerSilent,
    ))]
async fn end_cue(
    State(api): State<Arc<ApiState>>,
    Path(path): Path<CuePath>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    end(&api, &admitted.stream, &path.id).await
}

async fn end(api: &ApiState, stream: &str, id: &str) -> Result<Response, ApiError> {
    Ok(match api.cues.end(stream, id).await? {
        Some(cue) => json(StatusCode::OK, cue.to_json()),
        None => json(
            StatusCode::OK,
            serde_json::json!({ "id": id, "removed_from_rundown": true }),
        ),
    })
}

fn rundown_json(items: &[ScheduledCue]) -> serde_json::Value {
    let items: Vec<_> = items
        .iter()
        .map(|i| {
            serde_json::json!({
                "id": i.id,
                "offset_s": ns_to_s(i.offset_ns),
                "kind": i.spec.kind.as_str(),
                "duration_s": i.spec.duration.map(|d| d.as_secs_f64()),
                "end_on_next": i.spec.end_on_next,
                "product": i.spec.product,
                "data": i.spec.data,
            })
        })
        .collect();
    serde_json::json!({ "items": items })
}

/// `{"cues": [{"offset_s": 30, "kind": ..., ...}, ...]}`: each item is a cue request with
/// `offset_s` instead of `at`.
fn parse_rundown(body: &[u8], api: &ApiState) -> Result<Vec<RundownItem>, ApiError> {
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Upload {
        cues: Vec<serde_json::Map<String, serde_json::Value>>,
    }
    let upload: Upload = parse(body)?;
    let limit = api.cues.settings.max_rundown_items;
    if upload.cues.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("{} rundown items; the limit is {limit}", upload.cues.len()),
        ));
    }
    let mut items = Vec::with_capacity(upload.cues.len());
    for (index, mut item) in upload.cues.into_iter().enumerate() {
        let prefix = format!("cues[{index}]");
        let bad = |field: &str, reason: String| ApiError {
            field: Some(format!("{prefix}.{field}")),
            ..ApiError::new(
                StatusCode::BAD_REQUEST,
                format!("{prefix}.{field}: {reason}"),
            )
        };
        let offset_s = item
            .remove("offset_s")
            .and_then(|v| v.as_f64())
            .ok_or_else(|| bad("offset_s", "required: seconds from stream start".into()))?;
        check_seconds("offset_s", offset_s, false, MAX_OFFSET_S)
            .map_err(|e| bad("offset_s", e.to_string()))?;
        if item.contains_key("at") {
            return Err(bad("at", "rundown items take offset_s, not at".into()));
        }
        let mut request: CueRequest = parse(serde_json::Value::Object(item).to_string().as_bytes())
            .map_err(|e| ApiError {
                field: e.field.as_ref().map(|f| format!("{prefix}.{f}")),
                message: format!("{prefix}.{}", e.message),
                ..e
            })?;
        let spec = api
            .cues
            .fill_product(&mut request)
            .and_then(|()| request.validate(api.cues.settings.max_payload_bytes))
            .map_err(|err| match err {
                CueError::Invalid { field, reason } => bad(&field, reason),
                too_large => ApiError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!("{prefix}: {too_large}"),
                ),
            })?;
        items.push(RundownItem { offset_s, spec });
    }
    Ok(items)
}

#[utoipa::path(put, path = "/api/streams/{stream}/rundown", tag = "cues",
    summary = "Replace the unfired rundown items",
    security(("admin" = []), ("login" = [])),
    params(StreamPath),
    request_body = RundownUpload,
    responses(
        (status = 200, description = "The unfired rundown items", body = Rundown),
        RundownRefused,
        Unadmitted,
        NoStream,
        OwnerSilent,
    ))]
async fn replace_rundown(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    upload_rundown(&api, admitted, true).await
}

#[utoipa::path(post, path = "/api/streams/{stream}/rundown", tag = "cues",
    summary = "Append rundown items",
    security(("admin" = []), ("login" = [])),
    params(StreamPath),
    request_body = RundownUpload,
    responses(
        (status = 200, description = "The unfired rundown items", body = Rundown),
        RundownRefused,
        Unadmitted,
        NoStream,
        OwnerSilent,
    ))]
async fn append_rundown(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    upload_rundown(&api, admitted, false).await
}

/// Replaces (`replace`) or appends to the unfired items.
async fn upload_rundown(
    api: &ApiState,
    admitted: Admitted,
    replace: bool,
) -> Result<Response, ApiError> {
    let items = parse_rundown(&admitted.body, api)?;
    let scheduled = api.cues.schedule(&admitted.stream, items, replace).await?;
    Ok(json(StatusCode::OK, rundown_json(&scheduled)))
}

#[utoipa::path(get, path = "/api/streams/{stream}/rundown", tag = "cues",
    summary = "The unfired rundown items",
    security(("admin" = []), ("login" = [])),
    params(StreamPath),
    responses(
        (status = 200, description = "The unfired rundown items", body = Rundown),
        Unadmitted,
        NoStream,
    ))]
async fn get_rundown(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let items = api.cues.rundown_items(&admitted.stream);
    Ok(json(StatusCode::OK, rundown_json(&items)))
}

// The routes' parameters and the error answers several of them share, for their
// `#[utoipa::path]` attributes (documentation only: the answers are `ApiError`s).

/// `{stream}` of a cue route.
#[derive(IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)]
struct StreamPath {
    /// Stream name
    stream: String,
}

/// `{stream}` and `{id}` of a route on one cue.
#[derive(serde::Deserialize, IntoParams)]
#[into_params(parameter_in = Path)]
struct CuePath {
    /// Stream name
    #[allow(dead_code)]
    stream: String,
    /// Cue or rundown item id
    id: String,
}

/// A caller the route does not admit (the admin token, or the stream's host).
#[derive(IntoResponses)]
#[allow(dead_code)]
enum Unadmitted {
    #[response(status = 401, description = "Missing or invalid token")]
    Unauthorized(ErrorBody),
    #[response(
        status = 403,
        description = "Another host's stream (admin, or the stream's host)"
    )]
    Forbidden(ErrorBody),
}

/// An unknown stream.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum NoStream {
    #[response(status = 404, description = "No such stream")]
    NotFound(ErrorBody),
}

/// A cue that cannot be ended.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum EndRefused {
    #[response(status = 404, description = "No such stream or cue")]
    NotFound(ErrorBody),
    #[response(status = 409, description = "The cue has already ended")]
    Ended(ErrorBody),
    #[response(status = 413, description = "Body over `cues.max_request_bytes`")]
    TooLarge(ErrorBody),
}

/// A rundown upload refused for its contents.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum RundownRefused {
    #[response(
        status = 400,
        description = "A bad item field, named (`cues[2].offset_s`)"
    )]
    BadItem(ErrorBody),
    #[response(
        status = 413,
        description = "Body over `cues.max_request_bytes`, more items than `cues.max_rundown_items`, or a payload over `cues.max_payload_bytes`"
    )]
    TooLarge(ErrorBody),
}

/// Clustered: the operation was forwarded to the stream's owner, which did not answer.
#[derive(IntoResponses)]
#[allow(dead_code)]
enum OwnerSilent {
    #[response(
        status = 503,
        description = "Clustered: the node publishing the stream did not answer (Retry-After)"
    )]
    Unavailable(ErrorBody),
}

// The bodies' schemas: what `CueRequest` parses and what `Cue::to_json` and `rundown_json`
// write, field for field (the schemathesis run checks every answer against them).

/// The body of `POST /api/streams/{stream}/cues`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CueBody {
    /// What the cue means to the player.
    pub kind: CueKind,
    /// When it starts (default `"now"`).
    pub at: Option<At>,
    /// Duration, seconds (0 to one day); absent = open-ended.
    pub duration_s: Option<f64>,
    /// Ends at the start of the next cue of the same kind.
    #[serde(default)]
    pub end_on_next: bool,
    /// The product: a catalog id alone, or full display data.
    pub product: Option<Product>,
    /// Free JSON object for the player.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// When a cue starts: `"now"`, a media time or a wall-clock time.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum At {
    /// The media time of the latest ingested frame.
    Now(AtNow),
    /// Seconds on the session's media timeline.
    MediaTime(AtMediaTime),
    /// A wall-clock time, mapped through PROGRAM-DATE-TIME.
    WallClock(AtWallClock),
}

/// `"now"`.
#[derive(ToSchema)]
pub enum AtNow {
    /// The latest ingested frame.
    #[serde(rename = "now")]
    Now,
}

/// `{"media_time_s": seconds}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AtMediaTime {
    /// Seconds on the session's media timeline (0 = first frame).
    pub media_time_s: f64,
}

/// `{"wall_clock": "RFC 3339"}`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AtWallClock {
    /// An RFC 3339 time.
    #[schema(format = DateTime)]
    pub wall_clock: String,
}

/// A cue as the API answers it.
#[derive(ToSchema)]
pub struct CueJson {
    /// Stable public id (the DATERANGE ID).
    pub id: String,
    /// Meaning.
    pub kind: CueKind,
    /// Start on the session's media timeline, seconds.
    pub media_time_s: f64,
    /// START-DATE (RFC 3339, milliseconds).
    pub start_date: String,
    /// Duration, seconds; null = open-ended.
    #[schema(required = true)]
    pub duration_s: Option<f64>,
    /// END-ON-NEXT.
    pub end_on_next: bool,
    /// Free JSON object for the player.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    /// The product, with its display data.
    pub product: Option<Product>,
    /// Stream name.
    pub stream: String,
    /// HLS session the media time belongs to.
    pub session: String,
    /// `api` or `rundown`.
    pub source: String,
    /// End (RFC 3339); null = open-ended.
    #[schema(required = true)]
    pub end_date: Option<String>,
    /// Whether it was ended before its planned end.
    pub ended_early: bool,
}

/// The body of `GET /api/streams/{stream}/cues`.
#[derive(ToSchema)]
pub struct CueList {
    /// The cues.
    pub cues: Vec<CueJson>,
}

/// The answer to ending a cue: the cue, or the rundown item that was removed.
#[derive(ToSchema)]
#[serde(untagged)]
pub enum Ended {
    /// The cue, ended now.
    Cue(Box<CueJson>),
    /// An unfired rundown item, removed.
    Removed(RemovedFromRundown),
}

/// An unfired rundown item that was removed.
#[derive(ToSchema)]
pub struct RemovedFromRundown {
    /// Its id.
    pub id: String,
    /// Always true.
    pub removed_from_rundown: bool,
}

/// The body of `PUT`/`POST /api/streams/{stream}/rundown`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RundownUpload {
    /// The items.
    pub cues: Vec<RundownCue>,
}

/// A rundown item as uploaded: a cue body with `offset_s` instead of `at`.
#[derive(ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RundownCue {
    /// Seconds from stream start.
    pub offset_s: f64,
    /// What the cue means to the player.
    pub kind: CueKind,
    /// Duration, seconds; absent = open-ended.
    pub duration_s: Option<f64>,
    /// Ends at the start of the next cue of the same kind.
    #[serde(default)]
    pub end_on_next: bool,
    /// The product: a catalog id alone, or full display data.
    pub product: Option<Product>,
    /// Free JSON object for the player.
    #[schema(value_type = Option<Object>)]
    pub data: Option<serde_json::Value>,
}

/// The unfired items of a rundown.
#[derive(ToSchema)]
pub struct Rundown {
    /// The items, in offset order.
    pub items: Vec<RundownEntry>,
}

/// An unfired rundown item.
#[derive(ToSchema)]
pub struct RundownEntry {
    /// Its id (the cue's id once it fires).
    pub id: String,
    /// Seconds from stream start.
    pub offset_s: f64,
    /// Meaning.
    pub kind: CueKind,
    /// Duration, seconds; null = open-ended.
    #[schema(required = true)]
    pub duration_s: Option<f64>,
    /// END-ON-NEXT.
    pub end_on_next: bool,
    /// The product.
    #[schema(required = true)]
    pub product: Option<Product>,
    /// Free JSON object for the player.
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}
