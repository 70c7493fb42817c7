//! HTTP API of cues (JSON), around [`crate::cues::service::CueService`]:
//! - `POST /api/streams/{stream}/cues` → 201 cue; `GET …/cues` → `{"cues": [...]}`
//! - `DELETE /api/streams/{stream}/cues/{id}` (or `POST …/cues/{id}/end`) → 200 cue, ended now
//! - `PUT /api/streams/{stream}/rundown` (replace) / `POST` (append) → `{"items": [...]}`;
//!   `GET …/rundown` lists unfired items
//!
//! Errors are `{"error": "...", "field": "..."}` (field only for 400): 400 bad input, 401
//! missing/invalid token, 404 unknown stream / not live / unknown cue, 409 not applicable,
//! 413 too large, 429 over the rate (with Retry-After), 503 no media yet, 500 storage.

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::body::{Bytes, to_bytes};
use axum::extract::{FromRequest, FromRequestParts, Path, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use super::ApiState;
use super::auth::Admin;
use crate::cues::model::{CueError, CueRequest, check_seconds, ns_to_s};
use crate::cues::rundown::ScheduledCue;
use crate::cues::service::{MAX_OFFSET_S, RundownItem, ServiceError};

/// The cue routes (admin token required).
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/streams/{stream}/cues", post(post_cue).get(list_cues))
        .route(
            "/api/streams/{stream}/cues/{id}",
            axum::routing::delete(end_cue),
        )
        .route("/api/streams/{stream}/cues/{id}/end", post(end_cue))
        .route(
            "/api/streams/{stream}/rundown",
            get(get_rundown).put(upload_rundown).post(upload_rundown),
        )
        .with_state(api)
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
        let mut body = serde_json::json!({ "error": self.message });
        if let (Some(field), Some(obj)) = (&self.field, body.as_object_mut()) {
            obj.insert("field".into(), field.clone().into());
        }
        if self.errors.len() > 1 {
            let errors: Vec<_> = self
                .errors
                .iter()
                .map(|(field, error)| serde_json::json!({ "field": field, "error": error }))
                .collect();
            body["errors"] = errors.into();
        }
        let mut response = (
            self.status,
            [(header::CONTENT_TYPE, "application/json")],
            body.to_string(),
        )
            .into_response();
        if let Some(secs) = self.retry_after
            && let Ok(value) = HeaderValue::from_str(&secs.to_string())
        {
            response.headers_mut().insert(header::RETRY_AFTER, value);
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

/// A cue request past the checks every cue route makes, in this order: the admin token (401),
/// a configured stream (404), a body within `cues.max_request_bytes` (413).
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
        Admin::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let Path(mut params) = Path::<HashMap<String, String>>::from_request_parts(&mut parts, api)
            .await
            .map_err(IntoResponse::into_response)?;
        let stream = params.remove("stream").unwrap_or_default();
        if !api.keys.names().contains(&stream) {
            let message = format!("no stream `{stream}`");
            return Err(ApiError::new(StatusCode::NOT_FOUND, message).into_response());
        }
        let body = read_body(body, api.cues.settings.max_request_bytes)
            .await
            .map_err(IntoResponse::into_response)?;
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

async fn post_cue(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let request: CueRequest = parse(&admitted.body)?;
    let cue = api.cues.post(&admitted.stream, request).await?;
    Ok(json(StatusCode::CREATED, cue.to_json()))
}

async fn list_cues(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let cues = api.cues.list(&admitted.stream).await?;
    let cues: Vec<_> = cues.iter().map(|c| c.to_json()).collect();
    Ok(json(StatusCode::OK, serde_json::json!({ "cues": cues })))
}

async fn end_cue(
    State(api): State<Arc<ApiState>>,
    Path((_, id)): Path<(String, String)>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    Ok(match api.cues.end(&admitted.stream, &id).await? {
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

/// `PUT …/rundown` replaces the unfired items, `POST` appends to them.
async fn upload_rundown(
    State(api): State<Arc<ApiState>>,
    method: Method,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let items = parse_rundown(&admitted.body, &api)?;
    let replace = method == Method::PUT;
    let scheduled = api.cues.schedule(&admitted.stream, items, replace).await?;
    Ok(json(StatusCode::OK, rundown_json(&scheduled)))
}

async fn get_rundown(
    State(api): State<Arc<ApiState>>,
    admitted: Admitted,
) -> Result<Response, ApiError> {
    let items = api.cues.rundown_items(&admitted.stream);
    Ok(json(StatusCode::OK, rundown_json(&items)))
}
