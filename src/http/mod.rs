//! The HTTP server: HLS origin (`/hls`), API (`/api`), health (`/healthz`), with CORS and
//! request tracing. Every feature's routes live here (`cues.rs`, `users.rs`, `chat.rs`,
//! `shows.rs`, `catalog.rs`, `events.rs`, `recommend.rs`), so the features do not depend on HTTP, and every admin route
//! checks the token in one place ([`auth::Admin`]).

pub mod auth;
pub mod catalog;
pub mod chat;
mod config;
pub mod cues;
pub mod events;
pub mod recommend;
mod server;
pub mod shows;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::trace::{DefaultOnFailure, TraceLayer};

use crate::cues::service::CueService;
use crate::hls::origin::{self, Origin};
use crate::ingest::{LiveSet, StreamKeys};
use crate::metrics::Metrics;
use crate::store::Store;

pub use config::{ApiConfig, Config, DEV_ADMIN_TOKEN};
pub use server::{HttpError, Server};

/// What the API handlers share.
pub struct ApiState {
    /// Admin bearer token.
    pub admin_token: auth::AdminToken,
    /// Configured streams.
    pub keys: StreamKeys,
    /// Current publishers.
    pub live: Arc<LiveSet>,
    /// Origin (for stream state).
    pub origin: Arc<Origin>,
    /// Counters and latency summaries.
    pub metrics: Arc<Metrics>,
    /// The database.
    pub store: Store,
    /// Timed product cues (`/api/streams/{stream}/cues`, `/rundown`).
    pub cues: Arc<CueService>,
    /// Chat accounts.
    pub users: Arc<crate::users::Users>,
    /// The chat service (None when `chat.enabled = false`).
    pub chat: Option<Arc<crate::chat::ChatService>>,
    /// Shows and their schedule (`/api/shows`).
    pub shows: Arc<crate::commerce::shows::Shows>,
    /// The shop's catalog (`/api/catalog/products`).
    pub catalog: Arc<crate::commerce::Catalog>,
    /// Shopper events and show analytics (`/api/events`, `/api/shows/{id}/analytics`).
    pub events: events::EventsApi,
    /// Recommendations (`/api/recommendations/...`, `/api/shows/{id}/products`).
    pub recommend: Arc<crate::commerce::recommend::Recommender>,
}

/// Builds the whole HTTP router.
pub fn router(api: Arc<ApiState>, cors_allow_origin: &str) -> Router {
    let cors = CorsLayer::new()
        .allow_methods([
            Method::GET,
            Method::HEAD,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_origin(match cors_allow_origin {
            "*" => AllowOrigin::any(),
            origin => match HeaderValue::from_str(origin) {
                Ok(value) => AllowOrigin::exact(value),
                Err(_) => AllowOrigin::any(),
            },
        });
    let api_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/streams", get(list_streams))
        .with_state(Arc::clone(&api));
    Router::new()
        .merge(origin::router(Arc::clone(&api.origin)))
        .merge(api_routes)
        .merge(cues::router(Arc::clone(&api)))
        .merge(users::router(Arc::clone(&api)))
        .merge(chat::router(Arc::clone(&api)))
        .merge(shows::router(Arc::clone(&api)))
        .merge(catalog::router(Arc::clone(&api)))
        .merge(events::router(Arc::clone(&api)))
        .merge(recommend::router(Arc::clone(&api)))
        .fallback(not_found)
        .layer(cors)
        // 503s are part of the protocol here (stream starting, blocking reload timeout): log
        // them with the requests at debug level, not as errors.
        .layer(
            TraceLayer::new_for_http()
                .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG)),
        )
}

async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        serde_json::json!({ "error": "no such resource" }).to_string(),
    )
        .into_response()
}

/// `GET /metrics`: Prometheus text format.
async fn metrics(State(api): State<Arc<ApiState>>) -> Response {
    let live = live_streams(&api) as u64;
    let held = api
        .origin
        .held_requests
        .load(std::sync::atomic::Ordering::Relaxed) as u64;
    let mut text = api.metrics.render(&[
        ("cuecast_live_streams", "Streams with a publisher.", live),
        (
            "cuecast_hls_held_requests",
            "Playlist and part requests currently held (blocking reload, preload hints).",
            held,
        ),
    ]);
    if let Some(chat) = &api.chat {
        text.push_str(&chat.hub.metrics.render());
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Configured streams that have a publisher now.
fn live_streams(api: &ApiState) -> usize {
    api.keys
        .names()
        .iter()
        .filter(|name| api.live.get(name).is_some())
        .count()
}

async fn healthz(State(api): State<Arc<ApiState>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "status": "ok", "live_streams": live_streams(&api) }))
}

/// `GET /api/streams` (admin): configured streams, who publishes them, playback URLs.
async fn list_streams(
    _admin: auth::Admin,
    State(api): State<Arc<ApiState>>,
) -> Json<serde_json::Value> {
    let streams: Vec<serde_json::Value> = api
        .keys
        .names()
        .into_iter()
        .map(|name| {
            let publisher = api.live.get(&name);
            let hls = api.origin.registry.get(&name);
            serde_json::json!({
                "name": name,
                "live": publisher.is_some(),
                "publisher": publisher.as_ref().map(|p| serde_json::json!({
                    "protocol": p.protocol,
                    "peer": p.peer.to_string(),
                    "live_for_s": p.since.elapsed().as_secs(),
                })),
                "ended": hls.as_ref().map(|s| s.is_ended()),
                "playback_url": format!("/hls/{name}/index.m3u8"),
            })
        })
        .collect();
    Json(serde_json::json!({ "streams": streams }))
}
