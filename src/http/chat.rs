//! Chat routes: `GET /api/chat/cert` (the QUIC endpoint's port and certificate hashes, for
//! WebTransport `serverCertificateHashes` and `cuecast chat`), and
//! `GET /api/chat/{room}/history` (messages of a replay's media-time range).

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::openapi::ErrorBody;
use super::users::error;
use crate::chat::history::{self, ReplayQuery};
use crate::chat::proto::ChatMessage;

/// The body of `GET /api/chat/cert` (what `CertSource::describe` writes, and the endpoint).
#[derive(ToSchema)]
pub struct ChatCert {
    /// Whether the certificate is a self-signed development one.
    pub development: bool,
    /// Always `sha-256`.
    pub algorithm: String,
    /// The certificates' SHA-256 hashes, hex (WebTransport `serverCertificateHashes`).
    pub sha256: Vec<String>,
    /// The certificates served now and next.
    pub certificates: Vec<CertHash>,
    /// The chat endpoint's UDP port.
    pub port: u16,
    /// The WebTransport path.
    pub webtransport_path: String,
}

/// One certificate of [`ChatCert`].
#[derive(ToSchema)]
pub struct CertHash {
    /// SHA-256 of the DER certificate, hex.
    pub sha256_hex: String,
    /// The same, base64.
    pub sha256_base64: String,
    /// Valid from, Unix seconds (null: not known).
    #[schema(required = true)]
    pub not_before: Option<i64>,
    /// Valid until, Unix seconds (null: not known).
    #[schema(required = true)]
    pub not_after: Option<i64>,
}

/// The body of `GET /api/chat/{room}/history`.
#[derive(ToSchema)]
pub struct ChatHistory {
    /// The room (stream name).
    pub room: String,
    /// The HLS session the messages belong to (null: the room has none).
    #[schema(required = true)]
    pub session: Option<String>,
    /// The messages, in media-time order.
    pub messages: Vec<ChatMessage>,
}

#[utoipa::path(get, path = "/api/chat/cert", tag = "chat", operation_id = "chat_cert",
    summary = "The chat endpoint's port and certificate hashes",
    responses(
        (status = 200, description = "Port and certificate hashes (refetch after rotation)", body = ChatCert),
        (status = 404, description = "Chat is disabled", body = ErrorBody),
    ))]
async fn cert(State(api): State<Arc<ApiState>>) -> Response {
    let Some(chat) = &api.chat else {
        return error(StatusCode::NOT_FOUND, "chat is disabled");
    };
    let mut body = chat.certs.describe();
    body["port"] = chat.addr.port().into();
    body["webtransport_path"] = crate::chat::server::WEBTRANSPORT_PATH.into();
    // The hashes change on rotation: let clients refetch rather than cache.
    ([(header::CACHE_CONTROL, "no-cache")], Json(body)).into_response()
}

#[utoipa::path(get, path = "/api/chat/{room}/history", tag = "chat", operation_id = "chat_history",
    summary = "Chat messages of a replay's media-time range",
    params(("room" = String, Path, description = "The room (stream name)"), ReplayQuery),
    responses(
        (status = 200, description = "The messages", body = ChatHistory),
        (status = 400, description = "A bad query parameter", body = ErrorBody),
        (status = 404, description = "No such room", body = ErrorBody),
    ))]
async fn replay(
    State(api): State<Arc<ApiState>>,
    Path(room): Path<String>,
    query: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.body_text()),
    };
    if !api.keys.is_stream(&room) {
        return error(StatusCode::NOT_FOUND, "no such room");
    }
    match history::replay(&api.store, &room, &query).await {
        Ok((session, messages)) => Json(serde_json::json!({
            "room": room,
            "session": session,
            "messages": messages,
        }))
        .into_response(),
        Err(err) => {
            tracing::error!(error = %err, "chat replay query failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "database error")
        }
    }
}

/// The chat routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new()
        .routes(routes!(cert))
        .routes(routes!(replay))
}
