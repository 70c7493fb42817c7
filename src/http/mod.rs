//! The HTTP server: the web pages (`/`, `/shows/{id}`, `/studio`: [`pages`]), HLS origin (`/hls`),
//! API (`/api`), health (`/healthz`), with CORS and
//! request tracing. Every feature's routes live here (`streams.rs`, `cues.rs`, `users.rs`,
//! `chat.rs`, `chat_ws.rs`, `shows.rs`, `catalog.rs`, `events.rs`, `live.rs`, `recordings.rs`, `recommend.rs`; the recordings' playback
//! `/vod` is `hls::recording::vod`), so the features do not depend on HTTP, and every admin route
//! checks the token in one place ([`auth::Admin`]). Every `/api` route is documented in the
//! OpenAPI document served at `/api/openapi.json` ([`openapi`]), built from the same routers.

pub mod auth;
pub mod catalog;
pub mod chat;
pub mod chat_ws;
mod config;
pub mod cues;
pub mod edge;
pub mod events;
pub mod keys;
pub mod live;
pub mod openapi;
pub mod pages;
pub mod recommend;
pub mod recordings;
mod server;
pub mod shows;
pub mod streams;
pub mod users;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use tower_http::cors::{AllowOrigin, Cors};
use tower_http::trace::{DefaultOnFailure, Trace};

use crate::cues::service::CueService;
use crate::hls::origin::{self, Origin};
use crate::hls::recording::vod;
use crate::ingest::{HostKeys, LiveSet, StreamKeys};
use crate::metrics::Metrics;
use crate::store::Store;

pub use config::{ApiConfig, Config, DEV_ADMIN_TOKEN};
pub use server::{Connections, HttpError, Limits, Refusal, Server};

/// What the API handlers share.
pub struct ApiState {
    /// Admin bearer token.
    pub admin_token: auth::AdminToken,
    /// Publish keys and the streams (configured and hosts').
    pub keys: Arc<StreamKeys>,
    /// Hosts' stream keys (`/api/keys`).
    pub host_keys: Arc<HostKeys>,
    /// Where the ingest listeners are (`/api/ingest`).
    pub ingest: keys::IngestPorts,
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
    /// Recordings (`/api/recordings`, `/vod`); `None` when `recordings.enabled = false`.
    pub recordings: Option<Arc<crate::hls::recording::Recorder>>,
    /// Recommendations (`/api/recommendations/...`, `/api/shows/{id}/products`).
    pub recommend: Arc<crate::commerce::recommend::Recommender>,
    /// Signed webhooks (their counters in `/metrics`).
    pub webhooks: Arc<crate::webhooks::Webhooks>,
    /// Clustered: playback of and cue forwarding to streams other nodes own (`None` on a
    /// single node).
    pub edge: Option<Arc<crate::cluster::edge::Edge>>,
    /// The HTTP connections and their limits (their counters in `/metrics`).
    pub connections: Arc<Connections>,
}

/// Builds the whole HTTP router.
pub fn router(api: Arc<ApiState>, cors_allow_origin: &str, web: &pages::Config) -> Router {
    let cors_methods = [
        Method::GET,
        Method::HEAD,
        Method::POST,
        Method::PUT,
        Method::PATCH,
        Method::DELETE,
        Method::OPTIONS,
    ];
    let cors_origin = match cors_allow_origin {
        "*" => AllowOrigin::any(),
        origin => match HeaderValue::from_str(origin) {
            Ok(value) => AllowOrigin::exact(value),
            Err(_) => AllowOrigin::any(),
        },
    };
    let api_routes = openapi::api_router();
    let service_routes = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(Arc::clone(&api));
    // Every HLS request (live and VOD) is counted by object kind and status class.
    let count_hls =
        axum::middleware::from_fn_with_state(Arc::clone(&api.metrics), origin::count_requests);
    let hls = origin::router(Arc::clone(&api.origin));
    let router = Router::new()
        .merge(pages::router(web))
        .merge(hls.layer(count_hls.clone()))
        .merge(service_routes)
        .merge(
            api_routes
                .with_state(Arc::clone(&api))
                .layer(axum::middleware::map_response(json_errors)),
        );
    let router = match &api.recordings {
        Some(recorder) => router.merge(vod::router(Arc::clone(recorder)).layer(count_hls)),
        None => router,
    };
    let router = router.fallback(not_found);
    // Clustered: a stream published on another node is fetched from it, in front of the
    // router (`edge::EdgeFirst`).
    let hls_edge = api.edge.as_ref().map(|proxy| {
        Arc::new(edge::HlsEdge {
            edge: Arc::clone(proxy),
            registry: Arc::clone(&api.origin.registry),
        })
    });
    let service = edge::EdgeFirst::new(hls_edge, Arc::clone(&api.metrics), router);
    // CORS and tracing wrap the whole service once (as layers of the router they would wrap,
    // and be cloned with, every route a request goes through).
    let service = Cors::new(service)
        .allow_methods(cors_methods)
        .allow_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        .allow_origin(cors_origin);
    // 503s are part of the protocol here (stream starting, blocking reload timeout): log
    // them with the requests at debug level, not as errors.
    let service = Trace::new_for_http(service)
        .on_failure(DefaultOnFailure::new().level(tracing::Level::DEBUG));
    Router::new().fallback_service(service)
}

/// Largest plain-text error body [`json_errors`] rewrites (axum's rejections are one line).
const MAX_TEXT_ERROR: usize = 16 * 1024;

/// Every `/api` error answers `{"error": "..."}` (the document promises it): the handlers' own
/// errors already do; this rewrites what axum answers before a handler runs — a path or query
/// that does not decode (400 text/plain), a method a path does not take (405, empty) — keeping
/// the status and the other headers (`Allow`, `Retry-After`).
async fn json_errors(response: Response) -> Response {
    let status = response.status();
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT_ERROR)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&text);
    let message = match text.trim() {
        "" => status.canonical_reason().unwrap_or("error").to_string(),
        text => text.to_string(),
    };
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    let body = openapi::ErrorBody::message(message).to_json();
    Response::from_parts(parts, axum::body::Body::from(body))
}

async fn not_found() -> Response {
    (
        axum::http::StatusCode::NOT_FOUND,
        [(header::CONTENT_TYPE, "application/json")],
        openapi::ErrorBody::message("no such resource").to_json(),
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
    // Per stream, for the streams that exist (labels stay bounded by them).
    api.metrics
        .streams
        .render(&mut text, &api.keys.names(), |name| {
            api.live.get(name).is_some()
        });
    if let Some(recorder) = &api.recordings {
        text.push_str(&recorder.counters.render());
    }
    if let Some(chat) = &api.chat {
        text.push_str(&chat.hub.metrics.render());
    }
    text.push_str(&api.webhooks.render_metrics());
    text.push_str(&api.recommend.cache_stats().render());
    if let Some(edge) = &api.edge {
        text.push_str(&edge.render_metrics());
    }
    text.push_str(&api.connections.render());
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], text).into_response()
}

/// Streams that have a publisher now.
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
