//! `GET /api/streams` (admin): the streams (configured and hosts'), who publishes them, playback
//! URLs.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::ApiState;
use super::auth::Admin;
use super::openapi::ErrorBody;
use crate::hls::directory::Owner;

/// The stream routes.
pub fn routes() -> OpenApiRouter<Arc<ApiState>> {
    OpenApiRouter::new().routes(routes!(list_streams))
}

/// The body of `GET /api/streams`.
#[derive(Serialize, ToSchema)]
pub struct StreamList {
    /// Every stream, configured and hosts'.
    pub streams: Vec<StreamInfo>,
}

/// A stream.
#[derive(Serialize, ToSchema)]
pub struct StreamInfo {
    /// Public stream name (in playback URLs; never the key).
    pub name: String,
    /// The host whose stream key publishes it (null: a configured stream).
    pub owner: Option<String>,
    /// Whether a publisher is on it now.
    pub live: bool,
    /// The publisher, while live.
    pub publisher: Option<Publisher>,
    /// Whether its HLS stream has ended (null: no HLS stream yet).
    pub ended: Option<bool>,
    /// `/hls/{name}/index.m3u8`.
    pub playback_url: String,
}

/// Who publishes a stream.
#[derive(Serialize, ToSchema)]
pub struct Publisher {
    /// `rtmp` or `srt`.
    pub protocol: String,
    /// The encoder's address.
    pub peer: String,
    /// Seconds since the publish started.
    pub live_for_s: u64,
}

/// `GET /api/streams` (admin): the streams, who publishes them, playback URLs.
#[utoipa::path(get, path = "/api/streams", tag = "streams", security(("admin" = [])),
    responses(
        (status = 200, description = "The streams (configured and hosts')", body = StreamList),
        (status = 401, description = "Missing or invalid admin token", body = ErrorBody),
    ))]
async fn list_streams(_admin: Admin, State(api): State<Arc<ApiState>>) -> Json<StreamList> {
    let streams = api
        .keys
        .names()
        .into_iter()
        .map(|name| {
            let publisher = api.live.get(&name).map(|p| Publisher {
                protocol: p.protocol.to_string(),
                peer: p.peer.to_string(),
                live_for_s: p.since.elapsed().as_secs(),
            });
            let ended = api.origin.registry.get(&name).map(|s| s.is_ended());
            let owner = match api.keys.directory().owner(&name) {
                Some(Owner::Host(host)) => Some(host),
                _ => None,
            };
            StreamInfo {
                owner,
                live: publisher.is_some(),
                publisher,
                ended,
                playback_url: format!("/hls/{name}/index.m3u8"),
                name,
            }
        })
        .collect();
    Json(StreamList { streams })
}
