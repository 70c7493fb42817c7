//! A clustered node's HTTP side of playback from any node (docs/scaling.md): `/hls` requests
//! for a stream that is not live here fall through to its owner ([`crate::cluster::edge`]),
//! and cue operations on such a stream are forwarded to the owner with the caller's
//! credentials ([`forward_cue`]).

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::cluster::edge::{EDGE_HEADER, Edge, FORWARDED_HEADER, Route, Upstream};
use crate::hls::registry::Registry;

/// How long a viewer's request is held while its stream's owner does not answer or nobody
/// owns a stream that has a handoff waiting (a failover: the lease expires, the publisher
/// reconnects to another node): below hls.js's 10 s time to first byte, so the player waits
/// instead of counting an error. After it: 503 with `Retry-After`.
const FAILOVER_HOLD: std::time::Duration = std::time::Duration::from_secs(8);
/// How often a held request looks for the owner again.
const FAILOVER_POLL: std::time::Duration = std::time::Duration::from_millis(250);
/// An owner's 503 that comes back within this is "starting" (retried while held), not a held
/// reload that timed out.
const QUICK_ANSWER: std::time::Duration = std::time::Duration::from_secs(1);

/// What the `/hls` fall-through needs.
pub struct HlsEdge {
    /// The proxy.
    pub edge: Arc<Edge>,
    /// The streams live here.
    pub registry: Arc<Registry>,
}

/// Whether `stream` is published here (then it is served here whatever Redis says).
fn live_here(registry: &Registry, stream: &str) -> bool {
    registry.get(stream).is_some_and(|s| !s.is_ended())
}

/// Middleware of the `/hls` routes: a stream that is not live here and whose lease another
/// node holds is fetched from that node; anything else goes to the local origin (which answers
/// 404 for a stream nobody publishes).
pub async fn hls_fallthrough(
    State(hls): State<Arc<HlsEdge>>,
    request: Request,
    next: Next,
) -> Response {
    let Some(stream) = request
        .uri()
        .path()
        .strip_prefix("/hls/")
        .and_then(|rest| rest.split('/').next())
        .filter(|name| crate::hls::origin::is_valid_stream_name(name))
    else {
        return next.run(request).await;
    };
    if request.headers().contains_key(FORWARDED_HEADER)
        || !matches!(*request.method(), Method::GET | Method::HEAD)
        || live_here(&hls.registry, stream)
    {
        return next.run(request).await;
    }
    let deadline = tokio::time::Instant::now() + FAILOVER_HOLD;
    loop {
        let owner = match hls.edge.route(stream).await {
            Route::Remote(owner) => owner,
            Route::Local if live_here(&hls.registry, stream) => return next.run(request).await,
            // Nobody owns it, but a node that died (or lost its publisher) left the session
            // for a successor: hold the request until one continues it.
            Route::Local
                if tokio::time::Instant::now() < deadline
                    && hls.edge.handoff_pending(stream).await =>
            {
                tokio::time::sleep(FAILOVER_POLL).await;
                if live_here(&hls.registry, stream) {
                    return next.run(request).await;
                }
                hls.edge.forget(stream, FAILOVER_POLL);
                continue;
            }
            Route::Local => return next.run(request).await,
        };
        let uri = request.uri();
        let asked = tokio::time::Instant::now();
        let (answer, served) = hls.edge.fetch(&owner, uri.path(), uri.query()).await;
        let retry = match &answer {
            Ok(upstream) => {
                // A 503 that came back at once: the owner is starting the stream (a successor
                // before its first segment after the seam). A held reload that timed out is
                // passed on.
                upstream.status == 503 && asked.elapsed() < QUICK_ANSWER
            }
            Err(_) => true,
        };
        if retry && tokio::time::Instant::now() + FAILOVER_POLL < deadline {
            if let Err(err) = &answer {
                tracing::debug!(stream, %owner, error = %err, "cluster: the owner did not answer; looking for the stream's owner again");
            }
            tokio::time::sleep(FAILOVER_POLL).await;
            hls.edge.forget(stream, FAILOVER_POLL);
            continue;
        }
        return match answer {
            Ok(upstream) => {
                let mut response = upstream_response(upstream);
                response
                    .headers_mut()
                    .insert(EDGE_HEADER, HeaderValue::from_static(served.as_str()));
                response
            }
            Err(err) => {
                tracing::warn!(stream, %owner, error = %err, "cluster: HLS request to the owner failed");
                unavailable(&err.to_string())
            }
        };
    }
}

/// 503 + `Retry-After: 1`, JSON: players retry.
fn unavailable(reason: &str) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-cache"),
            (header::RETRY_AFTER, "1"),
        ],
        serde_json::json!({ "error": reason }).to_string(),
    )
        .into_response()
}

/// The owner's answer as ours.
fn upstream_response(upstream: Upstream) -> Response {
    let status = StatusCode::from_u16(upstream.status).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut response = (status, Body::from(upstream.body)).into_response();
    for (name, value) in upstream.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::try_from(name.as_str()),
            HeaderValue::from_str(&value),
        ) {
            response.headers_mut().insert(name, value);
        }
    }
    response
}

/// Forwards a cue operation on `stream` to its owner when the stream is not live here and
/// another node holds its lease: the owner's answer, or `None` to handle it here. Reads of the
/// store (GET) are never forwarded.
pub async fn forward_cue(
    edge: Option<&Arc<Edge>>,
    registry: &Registry,
    stream: &str,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Option<Response> {
    let edge = edge?;
    if *method == Method::GET
        || headers.contains_key(FORWARDED_HEADER)
        || live_here(registry, stream)
    {
        return None;
    }
    let Route::Remote(owner) = edge.route(stream).await else {
        return None;
    };
    let method = reqwest::Method::from_bytes(method.as_str().as_bytes()).ok()?;
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok());
    let path_and_query = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    tracing::info!(stream, %owner, %method, path = uri.path(), "cluster: cue operation forwarded to the stream's owner");
    Some(
        match edge
            .forward(
                &owner,
                method,
                path_and_query,
                text(header::AUTHORIZATION),
                text(header::CONTENT_TYPE),
                body.clone(),
            )
            .await
        {
            Ok(upstream) => upstream_response(upstream),
            Err(err) => unavailable(&err.to_string()),
        },
    )
}
