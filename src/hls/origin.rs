//! The HLS origin: `/hls/{stream}/…` served from memory, for players and for CDNs pulling.
//!
//! URLs (relative URIs inside the playlists resolve to these):
//! - `/hls/{stream}/index.m3u8` — multivariant playlist
//! - `/hls/{stream}/{rendition}/playlist.m3u8` — media playlist
//! - `/hls/{stream}/{rendition}/init.mp4` — CMAF header (EXT-X-MAP)
//! - `/hls/{stream}/{rendition}/seg{msn}.m4s` — segment
//! - `/hls/{stream}/{rendition}/part{number}.m4s` — LL-HLS part, by part number (see
//!   [`super::packager`])
//!
//! Names are matched against these shapes only; nothing is ever read from the file system, so
//! there is no path to traverse.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;

use super::directives::{Directives, SkipRequest};
use super::hold::{Answer, Group, Outcome, Target};
use super::packager::{Object, Resource};
use super::registry::Registry;
use super::stream::{HlsStream, PlaylistForm, Rendition, RenditionKind};
use crate::metrics::{HlsObject, Metrics};

/// Public stream names: 1–64 of `[A-Za-z0-9_-]` (they appear in URLs and file names).
pub fn is_valid_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// What the HLS request for `path` asks for (the `kind` of `cuecast_hls_requests_total`),
/// by its shape alone: `/hls/{stream}/index.m3u8`, `/hls/{stream}/{session}/{rendition}/
/// {playlist.m3u8, init.mp4, seg{n}.m4s, part{n}.m4s}`, anything below `/vod/`.
pub fn object_of(path: &str) -> HlsObject {
    if path.starts_with("/vod/") {
        return HlsObject::Vod;
    }
    let Some(rest) = path.strip_prefix("/hls/") else {
        return HlsObject::Other;
    };
    // At most five segments, without collecting them (this runs for every request).
    let mut segments = rest.splitn(5, '/');
    let shape = (
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
        segments.next(),
    );
    match shape {
        (Some(_), Some("index.m3u8"), None, None, None) => HlsObject::Multivariant,
        (Some(_), Some(_), Some(_), Some("playlist.m3u8"), None) => HlsObject::MediaPlaylist,
        (Some(_), Some(_), Some(_), Some(file), None) => match Resource::parse(file) {
            Some(Resource::Init(_)) => HlsObject::Init,
            Some(Resource::Segment(_)) => HlsObject::Segment,
            Some(Resource::Part(_)) => HlsObject::Part,
            None => HlsObject::Other,
        },
        _ => HlsObject::Other,
    }
}

/// Middleware counting every request of the router it wraps in `metrics` by object kind
/// ([`object_of`]) and status class.
pub async fn count_requests(
    State(metrics): State<Arc<Metrics>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let kind = object_of(request.uri().path());
    let response = next.run(request).await;
    metrics
        .hls_requests
        .record(kind, response.status().as_u16());
    response
}

/// Content type of playlists (RFC 8216 §4).
pub const PLAYLIST_CONTENT_TYPE: &str = "application/vnd.apple.mpegurl";

/// Cache lifetimes per object kind.
#[derive(Debug, Clone)]
pub struct CachePolicy {
    /// Segments, parts and init segments (immutable once published).
    pub segment_max_age: Duration,
    /// The multivariant playlist.
    pub multivariant_max_age: Duration,
    /// Media playlists without delivery directives (zero → `no-cache`).
    pub playlist_max_age: Duration,
    /// Blocking-reload responses (`_HLS_msn`): unique per query, so a CDN may keep them.
    pub blocking_playlist_max_age: Duration,
}

/// The Cache-Control values of a [`CachePolicy`], built once (a request clones one: a
/// reference count, no formatting).
#[derive(Debug, Clone)]
struct CacheHeaders {
    segment: HeaderValue,
    multivariant: HeaderValue,
    playlist: HeaderValue,
    blocking_playlist: HeaderValue,
}

impl CacheHeaders {
    fn new(policy: &CachePolicy) -> CacheHeaders {
        CacheHeaders {
            segment: cache_control(policy.segment_max_age, true),
            multivariant: cache_control(policy.multivariant_max_age, false),
            playlist: cache_control(policy.playlist_max_age, false),
            blocking_playlist: cache_control(policy.blocking_playlist_max_age, false),
        }
    }
}

/// What the origin handlers share.
pub struct Origin {
    /// The streams.
    pub registry: Arc<Registry>,
    /// Cache-Control policy.
    cache: CachePolicy,
    /// Its header values.
    headers: CacheHeaders,
    /// Serve LL-HLS (parts, blocking reload, delta updates) rather than plain HLS.
    pub low_latency: bool,
    /// Requests currently held (blocking reloads and preload-hinted parts).
    pub held_requests: AtomicUsize,
}

impl Origin {
    /// The origin serving the streams of `registry` with `cache` lifetimes; LL-HLS when
    /// `low_latency`.
    pub fn new(registry: Arc<Registry>, cache: CachePolicy, low_latency: bool) -> Origin {
        Origin {
            registry,
            headers: CacheHeaders::new(&cache),
            cache,
            low_latency,
            held_requests: AtomicUsize::new(0),
        }
    }

    /// The Cache-Control policy.
    pub fn cache(&self) -> &CachePolicy {
        &self.cache
    }
}

/// A `200 OK` with `body`, its content type and Cache-Control: the headers are shared values,
/// the body a clone of shared bytes.
fn ok(content_type: &'static str, cache_control: &HeaderValue, body: Bytes) -> Response {
    let mut response = Response::new(axum::body::Body::from(body));
    let headers = response.headers_mut();
    headers.reserve(2);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    response
}

/// The `/hls` routes.
pub fn router(origin: Arc<Origin>) -> Router {
    Router::new()
        .route("/hls/{stream}/index.m3u8", get(multivariant))
        .route(
            "/hls/{stream}/{session}/{rendition}/{file}",
            get(rendition_file),
        )
        .with_state(origin)
}

/// Why an origin request has no content; the body is JSON `{"error": reason}`.
#[derive(Debug)]
pub enum OriginError {
    /// 404: unknown stream, rendition or object.
    NotFound(String),
    /// 503 + `Retry-After: 1`: the stream is live but not playable yet.
    Starting(String),
    /// 503: a held request timed out.
    Unavailable(String),
    /// 400: invalid delivery directives.
    BadRequest(String),
}

impl IntoResponse for OriginError {
    fn into_response(self) -> Response {
        let (status, reason) = match self {
            OriginError::NotFound(reason) => (StatusCode::NOT_FOUND, reason),
            OriginError::Starting(reason) | OriginError::Unavailable(reason) => {
                (StatusCode::SERVICE_UNAVAILABLE, reason)
            }
            OriginError::BadRequest(reason) => (StatusCode::BAD_REQUEST, reason),
        };
        let body = serde_json::json!({ "error": reason }).to_string();
        let mut response = (
            status,
            [
                (header::CONTENT_TYPE, "application/json"),
                (header::CACHE_CONTROL, "no-cache"),
            ],
            body,
        )
            .into_response();
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }
}

fn cache_control(max_age: Duration, immutable: bool) -> HeaderValue {
    let secs = max_age.as_secs();
    let value = match (secs, immutable) {
        (0, _) => "no-cache".to_string(),
        (s, true) => format!("public, max-age={s}, immutable"),
        (s, false) => format!("public, max-age={s}"),
    };
    HeaderValue::from_str(&value).unwrap_or(HeaderValue::from_static("no-cache"))
}

fn find_stream(origin: &Origin, name: &str) -> Result<Arc<HlsStream>, OriginError> {
    if !is_valid_stream_name(name) {
        return Err(OriginError::NotFound("invalid stream name".into()));
    }
    origin
        .registry
        .get(name)
        .ok_or_else(|| OriginError::NotFound(format!("stream `{name}` is not live")))
}

async fn multivariant(
    State(origin): State<Arc<Origin>>,
    Path(name): Path<String>,
) -> Result<Response, OriginError> {
    let stream = find_stream(&origin, &name)?;
    match stream.multivariant_text() {
        Some(text) => Ok(ok(
            PLAYLIST_CONTENT_TYPE,
            &origin.headers.multivariant,
            text,
        )),
        None if stream.is_ended() => Err(OriginError::NotFound(format!(
            "stream `{name}` ended before its first segment"
        ))),
        None => Err(OriginError::Starting(format!(
            "stream `{name}` is starting; its first segment is not complete yet"
        ))),
    }
}

async fn rendition_file(
    State(origin): State<Arc<Origin>>,
    Path((name, session, rendition_name, file)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
) -> Result<Response, OriginError> {
    let stream = find_stream(&origin, &name)?;
    if session != stream.session {
        return Err(OriginError::NotFound(format!(
            "session `{session}` of stream `{name}` is over; reload /hls/{name}/index.m3u8"
        )));
    }
    let rendition = stream.rendition(&rendition_name).ok_or_else(|| {
        OriginError::NotFound(format!(
            "stream `{name}` has no rendition `{rendition_name}`"
        ))
    })?;
    if file == "playlist.m3u8" {
        let directives = Directives::parse(query.as_deref())
            .map_err(|e| OriginError::BadRequest(e.to_string()))?;
        // Freed now rather than when a held reload is released (with thousands of others).
        drop((name, session, rendition_name, file, query));
        return media_playlist(&origin, &stream, &rendition, directives).await;
    }
    let resource = Resource::parse(&file)
        .ok_or_else(|| OriginError::NotFound(format!("no such object `{file}`")))?;
    drop((name, session, rendition_name, file, query));
    let bytes = match resource {
        Resource::Part(part) if origin.low_latency => wait_for_part(&origin, &rendition, part)
            .await?
            .map(Object::from),
        _ => rendition.packager().resource(resource),
    };
    let bytes = bytes.ok_or_else(|| {
        OriginError::NotFound(format!(
            "`{resource}` is not available (not yet published or no longer in the window)"
        ))
    })?;
    Ok(media(&origin, &rendition, bytes))
}

/// Counts a held request while it waits.
struct Held<'a>(&'a AtomicUsize);

impl<'a> Held<'a> {
    fn new(gauge: &'a AtomicUsize) -> Held<'a> {
        gauge.fetch_add(1, Ordering::Relaxed);
        Held(gauge)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// How a request for `target` was held.
enum Hold {
    /// The target was already reached: nothing was held.
    Ready,
    /// Held, then released by the publication that reached it: the released group (whose
    /// members share their answer).
    Released(Arc<Group>),
    /// Held until the hold limit — "three times the Target Duration" (→ 503) — passed.
    Expired,
}

/// Holds the request until the rendition's published position reaches `target` (a group wait:
/// woken once, by the publication that reaches it, or by the group's timer), without the
/// packager lock.
async fn hold(origin: &Origin, rendition: &Rendition, target: Target) -> Hold {
    let position = rendition.position();
    if target.is_reached(&position) {
        return Hold::Ready;
    }
    let limit = Duration::from_secs(3 * position.target_duration);
    // Checked again under the holds' lock against the last publication: none is missed.
    let Some(group) = rendition.holds().join(target, limit) else {
        return Hold::Ready;
    };
    let _held = Held::new(&origin.held_requests);
    match group.wait().await {
        Outcome::Reached => Hold::Released(group),
        Outcome::Expired => Hold::Expired,
    }
}

/// 400 for `_HLS_msn`/`_HLS_part` too far ahead of the rendition's last part. "Once
/// EXT-X-ENDLIST is present, the server ignores the directives."
fn check_directives(rendition: &Rendition, directives: &Directives) -> Result<(), OriginError> {
    let packager = rendition.packager();
    if packager.is_ended() {
        return Ok(());
    }
    let last = packager.last_part().unwrap_or(packager.next_part());
    let part_target = packager.part_target();
    let per_segment =
        (packager.config().segment_target.as_nanos() / part_target.as_nanos().max(1)).max(1) as u64;
    directives
        .check(last, per_segment, part_target)
        .map_err(|e| OriginError::BadRequest(e.to_string()))
}

async fn media_playlist(
    origin: &Origin,
    stream: &HlsStream,
    rendition: &Rendition,
    directives: Directives,
) -> Result<Response, OriginError> {
    // A session continued from a node that died: its viewers' players know the old owner's
    // segments, and a playlist without any segment stops hls.js, so it is held until this
    // node's first segment after the seam is complete (503 if that takes too long: retried).
    if let Some(start) = stream.handoff_start(&rendition.name)
        && let Hold::Expired = hold(origin, rendition, Target::CompleteAfter(start)).await
    {
        return Err(OriginError::Starting(format!(
            "rendition `{}` continues on this node; its first segment is not complete yet",
            rendition.name
        )));
    }
    if !rendition.is_initialized() {
        return Err(OriginError::Starting(format!(
            "rendition `{}` is starting",
            rendition.name
        )));
    }
    let form = if !origin.low_latency {
        PlaylistForm::Plain
    } else {
        // The packager is locked only for requests with directives to check.
        if directives.msn.is_some() {
            check_directives(rendition, &directives)?;
        }
        match directives.skip {
            SkipRequest::No => PlaylistForm::LowLatency,
            SkipRequest::Yes => PlaylistForm::Delta,
            SkipRequest::V2 => PlaylistForm::DeltaV2,
        }
    };
    let blocking = origin.low_latency && directives.msn.is_some();
    if let (true, Some(msn)) = (blocking, directives.msn) {
        let part = directives.part;
        match hold(origin, rendition, Target::Playlist { msn, part }).await {
            Hold::Ready => {}
            // Every request the publication released gets the same answer: the first one
            // renders (or finds) the playlist, the others clone it, length header included.
            Hold::Released(group) => {
                let render = || Answer::new(playlist_text(stream, rendition, form));
                if let Some(answer) = group.answer(form.index(), render) {
                    return Ok(shared_ok(&origin.headers.blocking_playlist, answer));
                }
            }
            Hold::Expired => {
                return Err(OriginError::Unavailable(format!(
                    "segment {msn}{} did not appear within 3 target durations",
                    part.map(|p| format!(" part {p}")).unwrap_or_default()
                )));
            }
        }
    }
    let text = playlist_text(stream, rendition, form);
    let cache_control = if blocking {
        &origin.headers.blocking_playlist
    } else {
        &origin.headers.playlist
    };
    Ok(ok(PLAYLIST_CONTENT_TYPE, cache_control, text))
}

/// The media playlist of `rendition` in `form` (rendered once per version and shared).
fn playlist_text(stream: &HlsStream, rendition: &Rendition, form: PlaylistForm) -> Bytes {
    rendition.playlist(form, || stream.rendition_reports(&rendition.name))
}

/// The `200 OK` of a released blocking reload: every header value shared, `Content-Length`
/// included (nothing is formatted per response).
fn shared_ok(cache_control: &HeaderValue, answer: Answer) -> Response {
    let mut response = Response::new(axum::body::Body::from(answer.body));
    let headers = response.headers_mut();
    headers.reserve(3);
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(PLAYLIST_CONTENT_TYPE),
    );
    headers.insert(header::CACHE_CONTROL, cache_control.clone());
    headers.insert(header::CONTENT_LENGTH, answer.content_length);
    response
}

/// A part GET by part number. The part the playlist's EXT-X-PRELOAD-HINT names (or the one
/// after it) is held until it is published, then served whole. Part numbers do not depend on
/// where segments end, so a hinted part always comes (unless the stream ends first: 404).
async fn wait_for_part(
    origin: &Origin,
    rendition: &Rendition,
    number: u64,
) -> Result<Option<Bytes>, OriginError> {
    {
        let packager = rendition.packager();
        if let Some(bytes) = packager.numbered_part(number) {
            return Ok(Some(bytes));
        }
        // Hold only requests for the next part(s), as a preload hint produces them.
        let next = packager.next_part_number();
        let hinted = number >= next && number <= next + 1;
        if packager.is_ended() || !hinted {
            return Ok(None);
        }
    }
    if let Hold::Expired = hold(origin, rendition, Target::Part(number)).await {
        return Err(OriginError::Unavailable(format!(
            "`{}` was not published within 3 target durations",
            Resource::Part(number)
        )));
    }
    Ok(rendition.packager().numbered_part(number))
}

/// A response body that writes an [`Object`]'s shared buffers one after the other, with its
/// exact length known up front (so `Content-Length`, not chunked encoding).
struct ObjectBody {
    pieces: std::vec::IntoIter<Bytes>,
    remaining: u64,
}

impl http_body::Body for ObjectBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        let next = self.pieces.next();
        if let Some(piece) = &next {
            self.remaining -= piece.len() as u64;
        }
        std::task::Poll::Ready(next.map(|piece| Ok(http_body::Frame::data(piece))))
    }

    fn is_end_stream(&self) -> bool {
        self.remaining == 0
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::SizeHint::with_exact(self.remaining)
    }
}

fn media(origin: &Origin, rendition: &Rendition, object: Object) -> Response {
    let content_type = match rendition.kind {
        RenditionKind::Video => "video/mp4",
        RenditionKind::Audio => "audio/mp4",
    };
    let mut response = Response::new(axum::body::Body::new(ObjectBody {
        remaining: object.len() as u64,
        pieces: object.into_pieces().into_iter(),
    }));
    let headers = response.headers_mut();
    headers.reserve(2);
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(header::CACHE_CONTROL, origin.headers.segment.clone());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hls::packager::PartId;

    #[test]
    fn request_paths_by_object_kind() {
        for (path, kind) in [
            ("/hls/demo/index.m3u8", HlsObject::Multivariant),
            (
                "/hls/demo/18c3/source/playlist.m3u8",
                HlsObject::MediaPlaylist,
            ),
            ("/hls/demo/18c3/source/init.mp4", HlsObject::Init),
            ("/hls/demo/18c3/source/init2.mp4", HlsObject::Init),
            ("/hls/demo/18c3/source/seg12.m4s", HlsObject::Segment),
            ("/hls/demo/18c3/audio/part7.m4s", HlsObject::Part),
            ("/vod/demo-18c3/index.m3u8", HlsObject::Vod),
            ("/vod/demo-18c3/source/seg0.m4s", HlsObject::Vod),
            ("/hls/demo/18c3/source/seg012.m4s", HlsObject::Other),
            ("/hls/demo/18c3/source/x.txt", HlsObject::Other),
            ("/hls/demo/playlist.m3u8", HlsObject::Other),
            ("/hls/", HlsObject::Other),
            ("/api/streams", HlsObject::Other),
        ] {
            assert_eq!(object_of(path), kind, "{path}");
        }
    }

    fn test_origin() -> (Arc<Origin>, Arc<HlsStream>, Arc<Rendition>) {
        use crate::hls::packager::PackagerConfig;
        let registry = Arc::new(Registry::new(
            PackagerConfig {
                segment_target: Duration::from_secs(1),
                part_target: Duration::from_millis(200),
                window: Duration::from_secs(30),
            },
            Duration::from_secs(60),
        ));
        let stream = registry.create("s");
        let rendition = stream.add_rendition("source", RenditionKind::Video);
        rendition.push_init(Bytes::from_static(b"init"), Default::default());
        for index in 0..12 {
            publish_part(&rendition, index);
        }
        let origin = Arc::new(Origin::new(
            registry,
            CachePolicy {
                segment_max_age: Duration::from_secs(60),
                multivariant_max_age: Duration::from_secs(2),
                playlist_max_age: Duration::from_secs(1),
                blocking_playlist_max_age: Duration::from_secs(6),
            },
            true,
        ));
        (origin, stream, rendition)
    }

    /// Part `index` of a feed of 200 ms parts, five to a segment.
    fn publish_part(rendition: &Rendition, index: u64) {
        rendition.push_chunk(crate::hls::packager::CmafChunk {
            data: Bytes::from(vec![0x5a; 100]),
            pts: index * 200_000_000,
            duration: 200_000_000,
            fragment_start: index.is_multiple_of(5),
            independent: index.is_multiple_of(5),
            program_date_time: chrono::Utc::now(),
        });
    }

    async fn body_of(response: Response) -> Bytes {
        axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap_or_default()
    }

    /// The part after `next` (the test streams have 5 parts per segment).
    fn part_after(next: PartId) -> PartId {
        PartId {
            msn: next.msn + u64::from(next.part + 1 == 5),
            part: (next.part + 1) % 5,
        }
    }

    /// Held reloads for two different parts: each waiter is released by the publication of
    /// the part it asked for, with a playlist that has it, and the waiters of one part share
    /// one rendering (and get the same bytes a plain request then gets).
    #[tokio::test]
    async fn waiters_get_the_version_they_asked_for_from_one_rendering() {
        let (origin, stream, rendition) = test_origin();
        let next = rendition.packager().next_part();
        let after = part_after(next);
        let hold = |part: PartId| {
            let (origin, stream, rendition) = (
                Arc::clone(&origin),
                Arc::clone(&stream),
                Arc::clone(&rendition),
            );
            tokio::spawn(async move {
                let directives = Directives {
                    msn: Some(part.msn),
                    part: Some(part.part),
                    skip: SkipRequest::No,
                };
                let response = media_playlist(&origin, &stream, &rendition, directives).await;
                body_of(response.map_err(|e| format!("{e:?}")).expect("200")).await
            })
        };
        let first: Vec<_> = (0..20).map(|_| hold(next)).collect();
        let second: Vec<_> = (0..20).map(|_| hold(after)).collect();
        while origin.held_requests.load(Ordering::Relaxed) < 40 {
            tokio::task::yield_now().await;
        }
        let renders = rendition.renders();
        publish_part(&rendition, 12);
        let mut bodies = Vec::new();
        for waiter in first {
            bodies.push(waiter.await.expect("join"));
        }
        assert_eq!(
            origin.held_requests.load(Ordering::Relaxed),
            20,
            "the others wait"
        );
        let wanted = format!("URI=\"part{}.m4s\"", 12);
        for body in &bodies {
            assert_eq!(body, &bodies[0], "one version for all");
            let text = std::str::from_utf8(body).expect("text");
            assert!(text.contains(&wanted), "{text}");
            assert!(text.contains("#EXT-X-PRELOAD-HINT:TYPE=PART,URI=\"part13.m4s\""));
        }
        assert_eq!(
            rendition.renders(),
            renders + 1,
            "one rendering for 20 waiters"
        );
        publish_part(&rendition, 13);
        for waiter in second {
            let body = waiter.await.expect("join");
            let text = std::str::from_utf8(&body).expect("text");
            assert!(text.contains("URI=\"part13.m4s\""), "{text}");
        }
        assert_eq!(rendition.renders(), renders + 2);
        // A plain GET of the same version: the same bytes, no new rendering.
        let plain = media_playlist(&origin, &stream, &rendition, Directives::default())
            .await
            .map_err(|e| format!("{e:?}"))
            .expect("200");
        assert_eq!(
            plain
                .headers()
                .get(header::CACHE_CONTROL)
                .map(|v| v.as_bytes()),
            Some(&b"public, max-age=1"[..])
        );
        assert_eq!(
            plain
                .headers()
                .get(header::CONTENT_TYPE)
                .map(|v| v.as_bytes()),
            Some(PLAYLIST_CONTENT_TYPE.as_bytes())
        );
        body_of(plain).await;
        assert_eq!(rendition.renders(), renders + 2);
    }

    /// Counts the polls of the future it wraps.
    struct Polls<F> {
        inner: std::pin::Pin<Box<F>>,
        count: Arc<AtomicUsize>,
    }

    impl<F: std::future::Future> std::future::Future for Polls<F> {
        type Output = F::Output;
        fn poll(
            mut self: std::pin::Pin<&mut Self>,
            cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<F::Output> {
            self.count.fetch_add(1, Ordering::Relaxed);
            self.inner.as_mut().poll(cx)
        }
    }

    /// A publication wakes only the held reloads it answers, once each: 30 reloads held for
    /// the part after next are not polled when the next part comes (they used to be woken by
    /// every publication, to re-check). The released ones get one shared body, with its
    /// `Content-Length` set by the origin.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_publication_wakes_only_the_reloads_it_answers() {
        let (origin, stream, rendition) = test_origin();
        let next = rendition.packager().next_part();
        let after = part_after(next);
        let hold = |part: PartId| {
            let (origin, stream, rendition) = (
                Arc::clone(&origin),
                Arc::clone(&stream),
                Arc::clone(&rendition),
            );
            let count = Arc::new(AtomicUsize::new(0));
            let polls = Polls {
                inner: Box::pin(async move {
                    let directives = Directives {
                        msn: Some(part.msn),
                        part: Some(part.part),
                        skip: SkipRequest::No,
                    };
                    media_playlist(&origin, &stream, &rendition, directives)
                        .await
                        .map_err(|e| format!("{e:?}"))
                }),
                count: Arc::clone(&count),
            };
            (tokio::spawn(polls), count)
        };
        let first: Vec<_> = (0..30).map(|_| hold(next)).collect();
        let second: Vec<_> = (0..30).map(|_| hold(after)).collect();
        while origin.held_requests.load(Ordering::Relaxed) < 60 {
            tokio::task::yield_now().await;
        }
        publish_part(&rendition, 12);
        let mut bodies = Vec::new();
        for (waiter, polls) in first {
            let response = waiter.await.expect("join").expect("200");
            assert_eq!(polls.load(Ordering::Relaxed), 2, "held once, woken once");
            let length = response.headers().get(header::CONTENT_LENGTH).cloned();
            let body = body_of(response).await;
            assert_eq!(
                length.as_ref().map(|v| v.as_bytes()),
                Some(body.len().to_string().as_bytes())
            );
            bodies.push(body);
        }
        assert!(bodies.iter().all(|b| b.as_ptr() == bodies[0].as_ptr()));
        // Time for a wake-up to show, had there been one.
        tokio::time::sleep(Duration::from_millis(50)).await;
        for (waiter, polls) in &second {
            assert!(!waiter.is_finished());
            assert_eq!(polls.load(Ordering::Relaxed), 1, "not woken by part 12");
        }
        assert_eq!(origin.held_requests.load(Ordering::Relaxed), 30);
        publish_part(&rendition, 13);
        for (waiter, polls) in second {
            let body = body_of(waiter.await.expect("join").expect("200")).await;
            let text = std::str::from_utf8(&body).expect("text");
            assert!(text.contains("URI=\"part13.m4s\""), "{text}");
            assert_eq!(polls.load(Ordering::Relaxed), 2);
        }
    }

    #[test]
    fn cache_control_values() {
        assert_eq!(
            cache_control(Duration::from_secs(86400), true),
            "public, max-age=86400, immutable"
        );
        assert_eq!(
            cache_control(Duration::from_secs(2), false),
            "public, max-age=2"
        );
        assert_eq!(cache_control(Duration::ZERO, false), "no-cache");
    }
}
