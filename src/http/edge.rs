//! A clustered node's HTTP side of playback from any node (docs/scaling.md): `/hls` requests
//! for a stream that is not live here fall through to its owner ([`crate::cluster::edge`],
//! [`EdgeFirst`]),
//! and cue operations on such a stream are forwarded to the owner with the caller's
//! credentials ([`forward_cue`]).

use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::future::RouteFuture;
use futures_util::future::{BoxFuture, Either};
use tower_service::Service;

use crate::cluster::edge::{EDGE_HEADER, Edge, FORWARDED_HEADER, Route, Upstream};
use crate::hls::registry::Registry;
use crate::metrics::Metrics;

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

/// The whole HTTP service of a node, with the `/hls` fall-through in front of the router: a
/// GET or HEAD of `/hls/{stream}/…` for a stream that is not live here and whose lease another
/// node holds is fetched from that node ([`serve_remote`]) without going through the router;
/// anything else goes to the router (whose origin answers 404 for a stream nobody publishes).
///
/// It sits in front of the router rather than as a layer of its `/hls` routes because an edge
/// answers most of its requests this way (1,000 viewers' blocking reloads and parts per part
/// the owner publishes): the route match, its path parameters and the per-route layers were
/// most of an edge request's allocations (≈ 63 → 26 per request when it moved here,
/// `docs/benchmarks/cluster.md`), for a request that uses none of them. Requests it answers are counted in `cuecast_hls_requests_total` here;
/// the router counts the others.
#[derive(Clone)]
pub struct EdgeFirst {
    hls: Option<Arc<HlsEdge>>,
    metrics: Arc<Metrics>,
    inner: Router,
}

impl EdgeFirst {
    /// `inner` behind the fall-through of `hls` (`None` on a single node: `inner` alone).
    pub fn new(hls: Option<Arc<HlsEdge>>, metrics: Arc<Metrics>, inner: Router) -> EdgeFirst {
        EdgeFirst {
            hls,
            metrics,
            inner,
        }
    }
}

impl tower_service::Service<Request> for EdgeFirst {
    type Response = Response;
    type Error = Infallible;
    type Future = Either<RouteFuture<Infallible>, BoxFuture<'static, Result<Response, Infallible>>>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let remote = self
            .hls
            .as_ref()
            .and_then(|hls| Some((hls, remote_candidate(hls, &request)?.to_string())));
        match remote {
            Some((hls, stream)) => {
                let (hls, metrics, inner) = (
                    Arc::clone(hls),
                    Arc::clone(&self.metrics),
                    self.inner.clone(),
                );
                Either::Right(Box::pin(async move {
                    Ok(serve_remote(hls, metrics, stream, request, inner).await)
                }))
            }
            None => Either::Left(self.inner.call(request)),
        }
    }
}

/// The stream of `request` if it may be another node's: a GET or HEAD of `/hls/{stream}/…`
/// (a valid name) that no node forwarded, for a stream not live here.
fn remote_candidate<'r>(hls: &HlsEdge, request: &'r Request) -> Option<&'r str> {
    let stream = request
        .uri()
        .path()
        .strip_prefix("/hls/")
        .and_then(|rest| rest.split('/').next())
        .filter(|name| crate::hls::origin::is_valid_stream_name(name))?;
    let candidate = !request.headers().contains_key(FORWARDED_HEADER)
        && matches!(*request.method(), Method::GET | Method::HEAD)
        && !live_here(&hls.registry, stream);
    candidate.then_some(stream)
}

/// `request` for `stream` (a [`remote_candidate`]): from the stream's owner, counted here; or
/// from `inner` when the stream turns out to be ours or nobody's (after holding it while a
/// failover's successor takes over).
async fn serve_remote(
    hls: Arc<HlsEdge>,
    metrics: Arc<Metrics>,
    stream: String,
    request: Request,
    inner: Router,
) -> Response {
    let deadline = tokio::time::Instant::now() + FAILOVER_HOLD;
    loop {
        let owner = match hls.edge.route(&stream).await {
            Route::Remote(owner) => owner,
            Route::Local if live_here(&hls.registry, &stream) => {
                return local(inner, request).await;
            }
            // Nobody owns it, but a node that died (or lost its publisher) left the session
            // for a successor: hold the request until one continues it.
            Route::Local
                if tokio::time::Instant::now() < deadline
                    && hls.edge.handoff_pending(&stream).await =>
            {
                tokio::time::sleep(FAILOVER_POLL).await;
                if live_here(&hls.registry, &stream) {
                    return local(inner, request).await;
                }
                hls.edge.forget(&stream, FAILOVER_POLL);
                continue;
            }
            Route::Local => return local(inner, request).await,
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
            hls.edge.forget(&stream, FAILOVER_POLL);
            continue;
        }
        let response = match answer {
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
        metrics.hls_requests.record(
            crate::hls::origin::object_of(request.uri().path()),
            response.status().as_u16(),
        );
        return response;
    }
}

/// `request` answered by the router (always ready).
async fn local(mut inner: Router, request: Request) -> Response {
    match inner.call(request).await {
        Ok(response) => response,
        Err(never) => match never {},
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
    let headers = response.headers_mut();
    // Once for what follows (the owner's, the edge's, CORS's): no growing on the way.
    headers.reserve(8);
    for (name, value) in upstream.headers.iter() {
        headers.insert(name.clone(), value.clone());
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
