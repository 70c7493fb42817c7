//! Chat routes: `GET /api/chat/cert` (the QUIC endpoint's port and certificate hashes, for
//! WebTransport `serverCertificateHashes` and `cuecast chat`), and
//! `GET /api/chat/{room}/history` (messages of a replay's media-time range).

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;

use super::ApiState;
use super::users::error;
use crate::chat::history::{self, ReplayQuery};

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

async fn replay(
    State(api): State<Arc<ApiState>>,
    Path(room): Path<String>,
    query: Result<Query<ReplayQuery>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let Query(query) = match query {
        Ok(q) => q,
        Err(err) => return error(StatusCode::BAD_REQUEST, err.body_text()),
    };
    if !api.keys.names().contains(&room) {
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
pub fn router(api: Arc<ApiState>) -> Router {
    Router::new()
        .route("/api/chat/cert", get(cert))
        .route("/api/chat/{room}/history", get(replay))
        .with_state(api)
}
