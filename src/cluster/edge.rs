//! Playback from any node: a node asked for a stream it does not own fetches it from the owner
//! (found through the stream's lease, [`super::lease`]), as a CDN shield would:
//!
//! - identical concurrent requests — same path and the same `_HLS_msn`, `_HLS_part`,
//!   `_HLS_skip` — become one upstream request whose answer every waiter gets ([`Flights`]);
//!   blocking playlist reloads and preload-hinted parts are forwarded as they are, so the
//!   owner holds them and N viewers here cost one held request there;
//! - answers the owner lets caches keep (`Cache-Control: max-age` — init segments, segments,
//!   parts, blocking playlist reloads) are kept that long, at most [`ObjectCache::TTL`], so late
//!   requests for the same part or playlist update do not go upstream again;
//! - paths, session ids, segment and part numbers are the owner's, untouched: a viewer moved
//!   between nodes keeps playing.
//!
//! Cue operations posted to a node that does not own the stream are forwarded the same way
//! ([`Edge::forward`]) with the caller's `Authorization`, so the owner's packager puts the cue
//! in the media (EXT-X-DATERANGE, `emsg`) that every node serves.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::FutureExt;
use futures_util::future::Shared;
use reqwest::header::{HeaderName, HeaderValue};

use super::lease::{Leases, node_url_of};

/// The header marking a request one node made to another: never forwarded again (no loops
/// while leases move).
pub const FORWARDED_HEADER: &str = "x-cuecast-forwarded";
/// The header saying how the edge answered: `upstream` (this request went to the owner),
/// `collapsed` (it waited for another request's upstream answer), `cached`.
pub const EDGE_HEADER: &str = "x-cuecast-edge";

/// How long an owner lookup is reused.
const OWNER_TTL: Duration = Duration::from_millis(500);
/// How long the last owner seen is used while Redis does not answer.
const STALE_OWNER: Duration = Duration::from_secs(60);
/// Upper bound of one upstream request (a blocking reload is held by the owner a few target
/// durations at most).
const UPSTREAM_TIMEOUT: Duration = Duration::from_secs(15);

/// Why the owner could not answer.
#[derive(Debug, Clone, thiserror::Error)]
pub enum EdgeError {
    /// The owner did not answer (connection refused, timeout).
    #[error("the stream's owner {owner} did not answer: {reason}")]
    Upstream {
        /// The owner's base URL.
        owner: String,
        /// The client's error.
        reason: String,
    },
}

/// An upstream answer: status, the headers worth passing on, body. Every waiter of a collapsed
/// request and every cache hit gets a clone, so cloning allocates nothing: the headers are
/// shared and their values (like the body) are reference-counted bytes.
#[derive(Debug, Clone)]
pub struct Upstream {
    /// HTTP status.
    pub status: u16,
    /// Content-Type, Cache-Control, Retry-After, as the owner sent them.
    pub headers: Arc<[(HeaderName, HeaderValue)]>,
    /// The body.
    pub body: Bytes,
}

impl Upstream {
    /// The value of header `name` (lower case), if the owner sent it (and it is text).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.as_str() == name)
            .and_then(|(_, v)| v.to_str().ok())
    }
}

/// How the edge answered a request (the [`EDGE_HEADER`] value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Served {
    /// This request went upstream.
    Upstream,
    /// It waited for another identical request's upstream answer.
    Collapsed,
    /// From the object cache.
    Cached,
}

impl Served {
    /// The header value.
    pub fn as_str(self) -> &'static str {
        match self {
            Served::Upstream => "upstream",
            Served::Collapsed => "collapsed",
            Served::Cached => "cached",
        }
    }
}

/// Where a stream is served from, seen from this node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    /// Here (it is ours, nobody's, or Redis cannot say).
    Local,
    /// From the owner at this base URL (shared: every request of the stream clones it).
    Remote(Arc<str>),
}

/// The collapsing key of an HLS request: its path and its delivery directives (other query
/// parameters do not change the owner's answer), sans-IO.
pub fn collapse_key(path: &str, query: Option<&str>) -> String {
    let mut directives: Vec<&str> = query
        .unwrap_or_default()
        .split('&')
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name);
            matches!(name, "_HLS_msn" | "_HLS_part" | "_HLS_skip")
        })
        .collect();
    directives.sort_unstable();
    let mut key = String::with_capacity(path.len() + query.map_or(0, |q| q.len() + 1));
    key.push_str(path);
    for (i, directive) in directives.iter().enumerate() {
        key.push(if i == 0 { '?' } else { '&' });
        key.push_str(directive);
    }
    key
}

/// How long an answer may be kept: its `Cache-Control` `max-age` (none for `no-cache`,
/// `no-store`, `private` or without one), at most [`ObjectCache::TTL`].
pub fn keep_for(status: u16, cache_control: Option<&str>) -> Option<Duration> {
    if status != 200 {
        return None;
    }
    let mut max_age = None;
    for directive in cache_control?.split(',').map(str::trim) {
        match directive.split_once('=') {
            Some(("max-age", secs)) => max_age = secs.trim().parse::<u64>().ok(),
            None if matches!(directive, "no-cache" | "no-store" | "private") => return None,
            _ => {}
        }
    }
    max_age
        .filter(|&secs| secs > 0)
        .map(|secs| Duration::from_secs(secs).min(ObjectCache::TTL))
}

type Flight<V> = Shared<Pin<Box<dyn Future<Output = Option<V>> + Send>>>;

/// Requests in flight by key: the first of a key runs, the others wait for its answer.
pub struct Flights<V: Clone> {
    flights: Mutex<HashMap<String, Flight<V>>>,
}

impl<V: Clone> Default for Flights<V> {
    fn default() -> Self {
        Flights {
            flights: Mutex::new(HashMap::new()),
        }
    }
}

impl<V: Clone + Send + Sync + 'static> Flights<V> {
    /// The answer for `key`: the future `start` makes if no request of `key` is in flight
    /// (then [`Served::Upstream`]), else the one in flight's ([`Served::Collapsed`]; `start`
    /// is not called, so a waiter costs no request building). The upstream future runs to
    /// completion in its own task even when every waiter goes away, and the key is free again
    /// only after it (so what it does on its answer, such as filling a cache, is seen by the next
    /// request). `None` if the task panicked.
    pub async fn run<F, S>(self: &Arc<Self>, key: &str, start: S) -> (Option<V>, Served)
    where
        F: Future<Output = V> + Send + 'static,
        S: FnOnce() -> F,
    {
        let (flight, served) = {
            let mut flights = self.flights.lock().unwrap_or_else(|e| e.into_inner());
            match flights.get(key) {
                Some(flight) => (flight.clone(), Served::Collapsed),
                None => {
                    let this = Arc::clone(self);
                    let owned_key = key.to_string();
                    let upstream = start();
                    // The lock is held until the flight is in the map: the task's removal
                    // comes after.
                    let task = tokio::spawn(async move {
                        let value = upstream.await;
                        this.flights
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .remove(&owned_key);
                        value
                    });
                    let flight: Pin<Box<dyn Future<Output = Option<V>> + Send>> =
                        Box::pin(async move { task.await.ok() });
                    let flight = flight.shared();
                    flights.insert(key.to_string(), flight.clone());
                    (flight, Served::Upstream)
                }
            }
        };
        (flight.await, served)
    }

    /// Requests in flight now.
    pub fn len(&self) -> usize {
        self.flights.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether none is in flight.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Answers fetched from owners that may be kept, each until its expiry, within a byte budget
/// (oldest out first): sans-IO, time passed in.
#[derive(Debug, Default)]
pub struct ObjectCache {
    /// Expiry and answer.
    entries: HashMap<String, (Instant, Upstream)>,
    order: VecDeque<String>,
    bytes: usize,
}

impl ObjectCache {
    /// How long an answer is kept at most (a few segments' worth of late requests).
    pub const TTL: Duration = Duration::from_secs(10);
    /// Bytes kept at most.
    pub const MAX_BYTES: usize = 64 * 1024 * 1024;

    /// The object at `key` if fresh at `now`.
    pub fn get(&self, key: &str, now: Instant) -> Option<Upstream> {
        self.entries
            .get(key)
            .filter(|(expiry, _)| now < *expiry)
            .map(|(_, object)| object.clone())
    }

    /// Keeps `object` under `key` from `now` for `ttl`, dropping expired and, over the budget,
    /// oldest.
    pub fn put(&mut self, key: &str, object: Upstream, now: Instant, ttl: Duration) {
        if object.body.len() > Self::MAX_BYTES || self.entries.contains_key(key) {
            return;
        }
        self.bytes += object.body.len();
        self.entries.insert(key.to_string(), (now + ttl, object));
        self.order.push_back(key.to_string());
        while let Some(oldest) = self.order.front() {
            let expired = self
                .entries
                .get(oldest)
                .is_none_or(|(expiry, _)| now >= *expiry);
            if !expired && self.bytes <= Self::MAX_BYTES {
                break;
            }
            if let Some(old) = self.order.pop_front()
                && let Some((_, object)) = self.entries.remove(&old)
            {
                self.bytes -= object.body.len();
            }
        }
    }

    /// Objects kept.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether it keeps nothing.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

/// Counters of the edge (`/metrics`).
#[derive(Debug, Default)]
pub struct EdgeCounters {
    /// Requests sent to owners (HLS).
    pub upstream: AtomicU64,
    /// Requests answered by waiting for another's upstream request.
    pub collapsed: AtomicU64,
    /// Requests answered from the object cache.
    pub cached: AtomicU64,
    /// Upstream requests that failed (no answer).
    pub failed: AtomicU64,
    /// Cue operations forwarded to owners.
    pub forwarded: AtomicU64,
}

/// The playback proxy and request forwarder of a clustered node.
pub struct Edge {
    leases: Arc<Leases>,
    client: reqwest::Client,
    owners: Mutex<HashMap<String, (Instant, Route)>>,
    flights: Arc<Flights<Result<Upstream, EdgeError>>>,
    cache: Arc<Mutex<ObjectCache>>,
    /// Counters.
    pub counters: EdgeCounters,
}

impl std::fmt::Debug for Edge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Edge")
            .field("leases", &self.leases)
            .finish()
    }
}

impl Edge {
    /// The edge of the node holding `leases`.
    pub fn new(leases: Arc<Leases>) -> Result<Edge, reqwest::Error> {
        let client = reqwest::Client::builder()
            .timeout(UPSTREAM_TIMEOUT)
            .pool_max_idle_per_host(64)
            .build()?;
        Ok(Edge {
            leases,
            client,
            owners: Mutex::new(HashMap::new()),
            flights: Arc::new(Flights::default()),
            cache: Arc::new(Mutex::new(ObjectCache::default())),
            counters: EdgeCounters::default(),
        })
    }

    /// Where `stream` is served from: the owner's URL when another node holds its lease (looked
    /// up at most every [`OWNER_TTL`]); here otherwise, or when Redis cannot say.
    pub async fn route(&self, stream: &str) -> Route {
        let now = Instant::now();
        let known = self
            .owners
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(stream)
            .cloned();
        if let Some((at, route)) = &known
            && now.duration_since(*at) < OWNER_TTL
        {
            return route.clone();
        }
        let me = self.leases.cluster().node_url().to_string();
        let route = match self.leases.owner(stream).await {
            Ok(Some(holder)) if holder != self.leases.cluster().node_id() => {
                let url = node_url_of(&holder).trim_end_matches('/');
                // A previous life of this node (same URL): nothing to fetch from.
                if url == me {
                    Route::Local
                } else {
                    Route::Remote(Arc::from(url))
                }
            }
            Ok(_) => Route::Local,
            // Redis is unreachable: the owner last seen (within STALE_OWNER) is still the best
            // guess, so its viewers here keep playing through the outage.
            Err(err) => match known {
                Some((at, route)) if now.duration_since(at) < STALE_OWNER => {
                    tracing::debug!(stream, error = %err, "cluster: owner lookup failed; using the last owner seen");
                    route
                }
                _ => {
                    tracing::debug!(stream, error = %err, "cluster: owner lookup failed; serving locally");
                    Route::Local
                }
            },
        };
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        owners.retain(|_, (at, _)| now.duration_since(*at) < STALE_OWNER);
        owners.insert(stream.to_string(), (now, route.clone()));
        route
    }

    /// Drops what is known of `stream`'s owner when it was looked up more than `older_than`
    /// ago: the next [`Self::route`] asks Redis (its owner did not answer: it may have died and
    /// its lease moved). However many requests are held, the owner is looked up at most once
    /// per `older_than`.
    pub fn forget(&self, stream: &str, older_than: Duration) {
        let now = Instant::now();
        let mut owners = self.owners.lock().unwrap_or_else(|e| e.into_inner());
        if owners
            .get(stream)
            .is_some_and(|(at, _)| now.duration_since(*at) >= older_than)
        {
            owners.remove(stream);
        }
    }

    /// Whether `stream`, owned by nobody now, has a handoff waiting for a node to continue it
    /// (see [`super::handoff`]).
    pub async fn handoff_pending(&self, stream: &str) -> bool {
        self.leases.handoff_pending(stream).await
    }

    /// GET `path?query` from the owner at `owner`, collapsed with identical requests in flight
    /// and answered from the cache while a previous answer may be kept ([`keep_for`]).
    pub async fn fetch(
        &self,
        owner: &str,
        path: &str,
        query: Option<&str>,
    ) -> (Result<Upstream, EdgeError>, Served) {
        // Not keyed by owner: the URLs of a session are the same objects on whichever node
        // owns it (a successor continues the numbering without reusing any), so what was
        // fetched from a previous owner still answers after a failover.
        let key = collapse_key(path, query);
        if let Some(object) = self
            .cache
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key, Instant::now())
        {
            self.counters.cached.fetch_add(1, Ordering::Relaxed);
            return (Ok(object), Served::Cached);
        }
        // Only the first request of a key builds the upstream request (the others wait for
        // its answer).
        let start = || {
            let url = match query {
                Some(query) => format!("{owner}{path}?{query}"),
                None => format!("{owner}{path}"),
            };
            let request = self.client.get(&url).header(FORWARDED_HEADER, "1");
            let owner_name = owner.to_string();
            let cache = Arc::clone(&self.cache);
            let cache_key = key.clone();
            async move {
                let answer = read(request, &owner_name).await;
                if let Ok(object) = &answer
                    && let Some(ttl) = keep_for(object.status, object.header("cache-control"))
                {
                    cache.lock().unwrap_or_else(|e| e.into_inner()).put(
                        &cache_key,
                        object.clone(),
                        Instant::now(),
                        ttl,
                    );
                }
                answer
            }
        };
        let (answer, served) = self.flights.run(&key, start).await;
        let answer = answer.unwrap_or_else(|| {
            Err(EdgeError::Upstream {
                owner: owner.to_string(),
                reason: "the upstream request failed".into(),
            })
        });
        let counter = match served {
            Served::Upstream => &self.counters.upstream,
            _ => &self.counters.collapsed,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if answer.is_err() {
            self.counters.failed.fetch_add(1, Ordering::Relaxed);
        }
        (answer, served)
    }

    /// Sends a request as it came (method, path, query, `Authorization`, `Content-Type`, body)
    /// to the owner at `owner` and returns its answer (never collapsed).
    pub async fn forward(
        &self,
        owner: &str,
        method: reqwest::Method,
        path_and_query: &str,
        authorization: Option<&str>,
        content_type: Option<&str>,
        body: Bytes,
    ) -> Result<Upstream, EdgeError> {
        self.counters.forwarded.fetch_add(1, Ordering::Relaxed);
        let mut request = self
            .client
            .request(method, format!("{owner}{path_and_query}"))
            .header(FORWARDED_HEADER, "1")
            .body(body);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        if let Some(value) = content_type {
            request = request.header(reqwest::header::CONTENT_TYPE, value);
        }
        read(request, owner).await
    }

    /// The counters in Prometheus text format.
    pub fn render_metrics(&self) -> String {
        let c = &self.counters;
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        format!(
            "# HELP cuecast_edge_requests_total HLS requests for streams owned by another node, by how they were answered.\n\
             # TYPE cuecast_edge_requests_total counter\n\
             cuecast_edge_requests_total{{served=\"upstream\"}} {}\n\
             cuecast_edge_requests_total{{served=\"collapsed\"}} {}\n\
             cuecast_edge_requests_total{{served=\"cached\"}} {}\n\
             # HELP cuecast_edge_upstream_failures_total Requests to owners that got no answer.\n\
             # TYPE cuecast_edge_upstream_failures_total counter\n\
             cuecast_edge_upstream_failures_total {}\n\
             # HELP cuecast_edge_forwarded_total Cue operations forwarded to the stream's owner.\n\
             # TYPE cuecast_edge_forwarded_total counter\n\
             cuecast_edge_forwarded_total {}\n",
            load(&c.upstream),
            load(&c.collapsed),
            load(&c.cached),
            load(&c.failed),
            load(&c.forwarded),
        )
    }
}

/// Sends `request` and reads the whole answer.
async fn read(request: reqwest::RequestBuilder, owner: &str) -> Result<Upstream, EdgeError> {
    let failed = |err: reqwest::Error| EdgeError::Upstream {
        owner: owner.to_string(),
        reason: err.to_string(),
    };
    let response = request.send().await.map_err(failed)?;
    let status = response.status().as_u16();
    let headers = [
        reqwest::header::CONTENT_TYPE,
        reqwest::header::CACHE_CONTROL,
        reqwest::header::RETRY_AFTER,
    ]
    .into_iter()
    .filter_map(|name| {
        let value = response.headers().get(&name)?.clone();
        Some((name, value))
    })
    .collect();
    let body = response.bytes().await.map_err(failed)?;
    Ok(Upstream {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collapse_keys_keep_only_delivery_directives_in_order() {
        assert_eq!(
            collapse_key("/hls/a/s/v/playlist.m3u8", None),
            "/hls/a/s/v/playlist.m3u8"
        );
        assert_eq!(
            collapse_key(
                "/hls/a/s/v/playlist.m3u8",
                Some("_HLS_part=2&cb=123&_HLS_msn=7")
            ),
            "/hls/a/s/v/playlist.m3u8?_HLS_msn=7&_HLS_part=2"
        );
        assert_eq!(
            collapse_key("/p", Some("_HLS_msn=7&_HLS_part=2")),
            collapse_key("/p", Some("_HLS_part=2&_HLS_msn=7&x=1"))
        );
        assert_ne!(
            collapse_key("/p", Some("_HLS_msn=7")),
            collapse_key("/p", Some("_HLS_msn=8"))
        );
    }

    #[test]
    fn answers_are_kept_as_long_as_the_owner_allows() {
        let ttl = ObjectCache::TTL;
        assert_eq!(
            keep_for(200, Some("public, max-age=31536000, immutable")),
            Some(ttl)
        );
        assert_eq!(
            keep_for(200, Some("public, max-age=6")),
            Some(Duration::from_secs(6))
        );
        assert_eq!(keep_for(200, Some("no-cache")), None);
        assert_eq!(keep_for(200, Some("max-age=0")), None);
        assert_eq!(keep_for(200, Some("private, max-age=5")), None);
        assert_eq!(keep_for(200, None), None);
        assert_eq!(keep_for(404, Some("public, max-age=6")), None);
    }

    fn object(len: usize) -> Upstream {
        Upstream {
            status: 200,
            headers: Arc::from([]),
            body: Bytes::from(vec![0u8; len]),
        }
    }

    #[test]
    fn cache_expires_and_keeps_within_its_budget() {
        let start = Instant::now();
        let mut cache = ObjectCache::default();
        cache.put("a", object(10), start, ObjectCache::TTL);
        assert!(cache.get("a", start + Duration::from_secs(1)).is_some());
        assert!(
            cache.get("a", start + ObjectCache::TTL).is_none(),
            "expired"
        );
        let big = ObjectCache::MAX_BYTES / 2 + 1;
        cache.put("b", object(big), start, ObjectCache::TTL);
        cache.put("c", object(big), start, ObjectCache::TTL);
        assert!(
            cache.get("b", start).is_none(),
            "oldest out over the budget"
        );
        assert!(cache.get("c", start).is_some());
        cache.put("d", object(1), start + ObjectCache::TTL, ObjectCache::TTL);
        assert_eq!(cache.len(), 1, "expired entries dropped");
    }

    #[tokio::test]
    async fn identical_concurrent_requests_make_one_upstream_request() {
        let flights: Arc<Flights<u32>> = Arc::new(Flights::default());
        let calls = Arc::new(AtomicU64::new(0));
        let starts = Arc::new(AtomicU64::new(0));
        let (release, released) = tokio::sync::watch::channel(false);
        let mut waiters = Vec::new();
        for _ in 0..50 {
            let (flights, calls, starts, mut released) = (
                Arc::clone(&flights),
                Arc::clone(&calls),
                Arc::clone(&starts),
                released.clone(),
            );
            waiters.push(tokio::spawn(async move {
                let start = || {
                    // Building the request: only the flight's first request does it.
                    starts.fetch_add(1, Ordering::SeqCst);
                    async move {
                        calls.fetch_add(1, Ordering::SeqCst);
                        let _ = released.wait_for(|r| *r).await;
                        7
                    }
                };
                flights.run("k", start).await
            }));
        }
        while flights.is_empty() {
            tokio::task::yield_now().await;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        let _ = release.send(true);
        let mut upstream = 0;
        for waiter in waiters {
            let (value, served) = waiter.await.expect("waiter");
            assert_eq!(value, Some(7));
            upstream += usize::from(served == Served::Upstream);
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(starts.load(Ordering::SeqCst), 1, "waiters build no request");
        assert_eq!(upstream, 1);
        assert!(flights.is_empty(), "the key is free after the answer");
        let (value, served) = flights.run("k", || async { 8 }).await;
        assert_eq!((value, served), (Some(8), Served::Upstream), "a new flight");
    }

    #[tokio::test]
    async fn the_flight_finishes_when_its_waiters_leave() {
        let flights: Arc<Flights<u32>> = Arc::new(Flights::default());
        let (done_tx, done_rx) = tokio::sync::oneshot::channel();
        let waiter = {
            let flights = Arc::clone(&flights);
            tokio::spawn(async move {
                let upstream = async move {
                    tokio::time::sleep(Duration::from_millis(30)).await;
                    let _ = done_tx.send(5);
                    5
                };
                flights.run("k", || upstream).await
            })
        };
        tokio::time::sleep(Duration::from_millis(5)).await;
        waiter.abort();
        assert_eq!(done_rx.await.expect("ran to completion"), 5);
    }
}
