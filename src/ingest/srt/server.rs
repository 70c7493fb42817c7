//! The SRT driver: one thread runs one `srt_epoll` for the listener and every caller.
//!
//! Handshake: libsrt calls [`on_listen`] with the caller's stream id before answering; it runs
//! [`SrtSettings::admit`] and either sets the stream's passphrase on the new socket or rejects
//! with a reason the caller sees (`SRT_REJX_*`). A wrong passphrase is then rejected by libsrt
//! itself (`SRT_REJ_BADSECRET`, logged through the libsrt log handler).
//!
//! Data: payloads (MPEG-TS, 7 × 188 bytes each) read in a batch per wakeup go to the caller's
//! [`TsDemuxer`]; its units go through a bounded channel to a Tokio task on the ingest runtime
//! that owns the [`Publication`]. The stream is claimed with the first data, so a caller that
//! connects and stays silent holds nothing, and is closed after `idle_timeout`.
//!
//! Close: the demuxer is flushed and handed to the task, which drains it and ends the
//! publication as [`PublishEnd::Lost`] (SRT has no "unpublish"): the stream waits for the
//! reconnect grace period.

use std::collections::HashMap;
use std::ffi::{CStr, c_char, c_int, c_void};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ffi::{self, SrtSocket};
use super::streamid::redacted;
use super::{Admission, SrtSettings};
use crate::ingest::{IngestContext, Publication, PublishEnd, PublisherInfo};
use crate::media::frame::MediaUnit;
use crate::media::mpegts::TsDemuxer;

/// Largest SRT live payload (libsrt's default SRTO_PAYLOADSIZE is 1316; 1456 is the maximum).
const MAX_PAYLOAD: usize = 1500;
/// Most bytes read from one caller per wakeup before serving the others.
const MAX_BATCH: usize = 256 * 1024;
/// Epoll wait, ms: also the granularity of shutdown and idle checks.
const WAIT_MS: i64 = 100;
/// Interval of the idle / finished-publication sweep.
const SWEEP_INTERVAL: Duration = Duration::from_millis(500);
/// Units queued between the demuxer and the publication task (≈ 20 s of 30 fps + AAC).
const UNIT_QUEUE: usize = 2048;
/// How long a closed caller's demuxer may take to flush.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// libsrt's `LOG_WARNING` (syslog levels): libsrt warnings and errors reach the log.
const SRT_LOG_LEVEL: c_int = 4;

/// A bound SRT listener, before its thread runs.
pub struct SrtListener {
    socket: SrtSocket,
    /// The bound address.
    pub local_addr: SocketAddr,
}

/// What the handshake callback reads; leaked once per listener (it must outlive every
/// callback libsrt may still be running).
struct CallbackContext {
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    connections: Arc<AtomicUsize>,
}

/// Initialises libsrt once and routes its warnings to `tracing`.
fn startup() -> Result<(), String> {
    static STARTED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    STARTED
        .get_or_init(|| {
            // SAFETY: plain library initialisation; the handler is a `'static` function.
            unsafe {
                if ffi::srt_startup() < 0 {
                    return Err(format!("srt_startup failed: {}", ffi::last_error().1));
                }
                ffi::srt_setloglevel(SRT_LOG_LEVEL);
                ffi::srt_setloghandler(std::ptr::null_mut(), Some(on_log));
            }
            Ok(())
        })
        .clone()
}

/// libsrt log lines → `tracing` (target `libsrt`).
unsafe extern "C" fn on_log(
    _opaque: *mut c_void,
    level: c_int,
    _file: *const c_char,
    _line: c_int,
    _area: *const c_char,
    message: *const c_char,
) {
    if message.is_null() {
        return;
    }
    // SAFETY: libsrt passes a NUL-terminated message valid for the call.
    let text = unsafe { CStr::from_ptr(message) }.to_string_lossy();
    let text = text.trim();
    if level <= 3 {
        tracing::warn!(target: "libsrt", "{text}");
    } else {
        tracing::info!(target: "libsrt", "{text}");
    }
}

impl SrtListener {
    /// Creates, configures and binds the listener (errors name the cause).
    pub fn bind(
        settings: &Arc<SrtSettings>,
        ctx: &Arc<IngestContext>,
    ) -> Result<(SrtListener, Arc<AtomicUsize>), String> {
        startup()?;
        // SAFETY: creating a socket has no preconditions.
        let socket = unsafe { ffi::srt_create_socket() };
        if socket == ffi::INVALID_SOCK {
            return Err(format!("srt_create_socket: {}", ffi::last_error().1));
        }
        let fail = |what: &str, message: String| {
            // SAFETY: `socket` is ours and not used after.
            unsafe { ffi::srt_close(socket) };
            format!("{what}: {message}")
        };
        let latency = c_int::try_from(settings.latency_ms).unwrap_or(c_int::MAX);
        let options = [
            (ffi::opt::RCVSYN, 0, "non-blocking"),
            (ffi::opt::LATENCY, latency, "latency"),
            (
                ffi::opt::PBKEYLEN,
                c_int::try_from(settings.pbkeylen).unwrap_or(16),
                "pbkeylen",
            ),
        ];
        for (option, value, what) in options {
            ffi::set_int(socket, option, value).map_err(|e| fail(what, e))?;
        }
        if let Some(passphrase) = &settings.passphrase {
            ffi::set_str(socket, ffi::opt::PASSPHRASE, passphrase)
                .map_err(|e| fail("passphrase", e))?;
        }
        let connections = Arc::new(AtomicUsize::new(0));
        let callback = Box::leak(Box::new(CallbackContext {
            settings: Arc::clone(settings),
            ctx: Arc::clone(ctx),
            connections: Arc::clone(&connections),
        }));
        // SAFETY: the context is leaked, so valid for the listener's (and process's) life; the
        // callback only reads it.
        let rc = unsafe {
            ffi::srt_listen_callback(socket, Some(on_listen), std::ptr::from_mut(callback).cast())
        };
        if rc == ffi::ERROR {
            return Err(fail("srt_listen_callback", ffi::last_error().1));
        }
        let (addr, len) = ffi::to_sockaddr(settings.listen);
        // SAFETY: `addr` is a valid sockaddr of `len` bytes.
        if unsafe { ffi::srt_bind(socket, (&raw const addr).cast(), len) } == ffi::ERROR {
            return Err(fail(
                &format!("cannot bind {}", settings.listen),
                ffi::last_error().1,
            ));
        }
        // SAFETY: a bound socket.
        if unsafe { ffi::srt_listen(socket, 64) } == ffi::ERROR {
            return Err(fail("srt_listen", ffi::last_error().1));
        }
        let local_addr = local_addr(socket).unwrap_or(settings.listen);
        Ok((SrtListener { socket, local_addr }, connections))
    }
}

fn local_addr(socket: SrtSocket) -> Option<SocketAddr> {
    // SAFETY: all-zero is a valid sockaddr_storage; libsrt writes at most `len` bytes.
    unsafe {
        let mut storage: libc::sockaddr_storage = std::mem::zeroed();
        let mut len = std::mem::size_of::<libc::sockaddr_storage>() as c_int;
        if ffi::srt_getsockname(socket, (&raw mut storage).cast(), &mut len) == ffi::ERROR {
            return None;
        }
        ffi::from_sockaddr((&raw const storage).cast())
    }
}

/// The handshake hook (`srt_listen_callback`): admit or reject by stream id.
unsafe extern "C" fn on_listen(
    opaque: *mut c_void,
    ns: SrtSocket,
    _hs_version: c_int,
    peer: *const libc::sockaddr,
    stream_id: *const c_char,
) -> c_int {
    // SAFETY: `opaque` is the leaked CallbackContext registered with this listener.
    let context = unsafe { &*opaque.cast::<CallbackContext>() };
    // SAFETY: libsrt passes a valid peer address and a NUL-terminated stream id (or null).
    let (peer, stream_id) = unsafe {
        let peer = ffi::from_sockaddr(peer);
        let id = if stream_id.is_null() {
            String::new()
        } else {
            CStr::from_ptr(stream_id).to_string_lossy().into_owned()
        };
        (peer, id)
    };
    let decision = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        admit(context, ns, peer, &stream_id)
    }));
    match decision {
        Ok(Ok(())) => 0,
        Ok(Err(code)) => {
            // SAFETY: `ns` is the socket libsrt is handshaking.
            unsafe { ffi::srt_setrejectreason(ns, code) };
            -1
        }
        Err(_) => -1,
    }
}

/// The callback's decision: `Err(reject code)`.
fn admit(
    context: &CallbackContext,
    ns: SrtSocket,
    peer: Option<SocketAddr>,
    stream_id: &str,
) -> Result<(), c_int> {
    let peer = peer.map_or_else(|| "?".to_string(), |p| p.to_string());
    let metrics = &context.ctx.metrics;
    let reject = |reason: super::streamid::RejectReason, detail: &str| {
        metrics.srt_rejected.fetch_add(1, Ordering::Relaxed);
        metrics.publishes_refused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            %peer,
            stream_id = %redacted(stream_id),
            reason = reason.name(),
            code = reason.code(),
            "SRT caller rejected: {detail}"
        );
        reason.code()
    };
    if context.connections.load(Ordering::Relaxed) >= context.settings.max_connections {
        return Err(reject(
            super::streamid::RejectReason::Overload,
            "too many SRT connections",
        ));
    }
    let admission = context
        .settings
        .admit(stream_id, &context.ctx.keys, &context.ctx.live)
        .map_err(|rejection| reject(rejection.reason, &rejection.detail))?;
    if let Some(passphrase) = &admission.passphrase
        && let Err(err) = ffi::set_str(ns, ffi::opt::PASSPHRASE, passphrase)
    {
        tracing::warn!(%peer, error = %err, "SRT: cannot set the stream's passphrase");
        return Err(super::streamid::RejectReason::BadRequest.code());
    }
    // libsrt names the socket (`@id`) when it then rejects the handshake (wrong passphrase).
    tracing::info!(
        %peer,
        socket = %format_args!("@{ns}"),
        stream = %admission.name,
        encrypted = admission.passphrase.is_some(),
        "SRT caller admitted by stream id; handshake continues"
    );
    Ok(())
}

/// A connected caller.
struct Caller {
    peer: SocketAddr,
    admission: Admission,
    connected: Instant,
    last_data: Instant,
    media: Option<MediaLink>,
}

/// The media side of a caller that sent data.
struct MediaLink {
    demuxer: TsDemuxer,
    /// Hands the demuxer to the task at close, with how the publish ended.
    closed: oneshot::Sender<(PublishEnd, TsDemuxer)>,
    /// Set by the task when the publication ended on its own (pipeline error).
    done: Arc<AtomicBool>,
    /// Cancelled when another publisher took the stream over.
    kicked: CancellationToken,
}

/// Runs the listener until `shutdown`, on the calling thread. Publication tasks are spawned on
/// `runtime` and tracked by `tasks`.
pub fn run(
    listener: SrtListener,
    connections: Arc<AtomicUsize>,
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let driver = Driver {
        listener: listener.socket,
        // SAFETY: creating an epoll id has no preconditions.
        eid: unsafe { ffi::srt_epoll_create() },
        callers: HashMap::new(),
        connections,
        settings,
        ctx,
        runtime,
        tasks,
    };
    driver.run(&shutdown);
}

struct Driver {
    listener: SrtSocket,
    eid: c_int,
    callers: HashMap<SrtSocket, Caller>,
    connections: Arc<AtomicUsize>,
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
}

impl Driver {
    fn run(mut self, shutdown: &CancellationToken) {
        let events = ffi::EPOLL_IN | ffi::EPOLL_ERR;
        // SAFETY: valid epoll id and socket; `events` outlives the call.
        if self.eid < 0 || unsafe { ffi::srt_epoll_add_usock(self.eid, self.listener, &events) } < 0
        {
            tracing::error!(error = %ffi::last_error().1, "SRT epoll setup failed; SRT ingest is off");
            return;
        }
        let mut ready = vec![ffi::EpollEvent::default(); 256];
        let mut buf = vec![0u8; MAX_PAYLOAD];
        let mut last_sweep = Instant::now();
        let mut wake = Instant::now();
        while !shutdown.is_cancelled() {
            // SAFETY: `ready` has room for its length in events.
            let n = unsafe {
                ffi::srt_epoll_uwait(
                    self.eid,
                    ready.as_mut_ptr(),
                    c_int::try_from(ready.len()).unwrap_or(c_int::MAX),
                    WAIT_MS,
                )
            };
            for event in ready.iter().take(usize::try_from(n).unwrap_or(0)) {
                if event.fd == self.listener {
                    self.accept_one();
                } else {
                    self.serve(event.fd, event.events, &mut buf);
                }
            }
            if last_sweep.elapsed() >= SWEEP_INTERVAL {
                last_sweep = Instant::now();
                self.sweep();
            }
            // Batching: let payloads of every caller accumulate in libsrt until the next tick, so
            // one wakeup (and one demuxer push per caller) serves a whole period.
            if let Some(period) = self.settings.read_batch
                && n > 0
            {
                std::thread::sleep(period.saturating_sub(wake.elapsed()));
            }
            wake = Instant::now();
        }
        let sockets: Vec<SrtSocket> = self.callers.keys().copied().collect();
        for socket in sockets {
            self.close(socket, "server shutting down", PublishEnd::Finished);
        }
        // SAFETY: closing our listener and releasing our epoll id, used no more.
        unsafe {
            ffi::srt_close(self.listener);
            ffi::srt_epoll_release(self.eid);
        }
    }

    /// Accepts one pending caller (the level-triggered epoll reports the listener again while
    /// more are pending; accepting until "none pending" would make libsrt log an error).
    fn accept_one(&mut self) {
        {
            // SAFETY: all-zero is a valid sockaddr_storage; libsrt writes at most `len` bytes.
            let mut storage: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            let mut len = std::mem::size_of::<libc::sockaddr_storage>() as c_int;
            // SAFETY: as above.
            let socket =
                unsafe { ffi::srt_accept(self.listener, (&raw mut storage).cast(), &mut len) };
            if socket == ffi::INVALID_SOCK {
                return;
            }
            // SAFETY: libsrt filled `storage` with the peer's address.
            let peer = unsafe { ffi::from_sockaddr((&raw const storage).cast()) }
                .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
            let stream_id = ffi::stream_id(socket);
            // Admitted at handshake; decided again now (the stream may have gone live since).
            let admission = match self
                .settings
                .admit(&stream_id, &self.ctx.keys, &self.ctx.live)
            {
                Ok(admission) => admission,
                Err(rejection) => {
                    tracing::warn!(%peer, %rejection, "SRT caller closed after the handshake");
                    // SAFETY: the accepted socket is ours.
                    unsafe { ffi::srt_close(socket) };
                    return;
                }
            };
            let events = ffi::EPOLL_IN | ffi::EPOLL_ERR;
            // SAFETY: valid epoll id and socket.
            if unsafe { ffi::srt_epoll_add_usock(self.eid, socket, &events) } < 0 {
                tracing::warn!(%peer, error = %ffi::last_error().1, "SRT: cannot watch the caller");
                // SAFETY: the accepted socket is ours.
                unsafe { ffi::srt_close(socket) };
                return;
            }
            self.ctx
                .metrics
                .srt_connections
                .fetch_add(1, Ordering::Relaxed);
            tracing::info!(
                %peer,
                stream = %admission.name,
                user = %admission.user.as_deref().unwrap_or(""),
                encrypted = admission.passphrase.is_some(),
                "SRT caller connected"
            );
            let now = Instant::now();
            self.callers.insert(
                socket,
                Caller {
                    peer,
                    admission,
                    connected: now,
                    last_data: now,
                    media: None,
                },
            );
            self.connections
                .store(self.callers.len(), Ordering::Relaxed);
        }
    }

    /// Reads what `socket` has (up to [`MAX_BATCH`]) and feeds it to its demuxer.
    fn serve(&mut self, socket: SrtSocket, events: c_int, buf: &mut [u8]) {
        let mut batch = BytesMut::new();
        let mut broken = None;
        while batch.len() < MAX_BATCH {
            // SAFETY: `buf` has room for its length.
            let n = unsafe {
                ffi::srt_recvmsg(
                    socket,
                    buf.as_mut_ptr().cast(),
                    c_int::try_from(buf.len()).unwrap_or(c_int::MAX),
                )
            };
            if n > 0 {
                batch.extend_from_slice(&buf[..usize::try_from(n).unwrap_or(0)]);
                continue;
            }
            let (code, message) = ffi::last_error();
            if n < 0 && code != ffi::EASYNCRCV {
                broken = Some(message);
            }
            break;
        }
        if broken.is_none() && events & ffi::EPOLL_ERR != 0 && batch.is_empty() {
            broken = Some("connection broken".into());
        }
        if !batch.is_empty()
            && let Err(reason) = self.feed(socket, batch)
        {
            self.close(socket, &reason, PublishEnd::Lost);
            return;
        }
        if let Some(reason) = broken {
            self.close(socket, &reason, PublishEnd::Lost);
        }
    }

    fn feed(&mut self, socket: SrtSocket, batch: BytesMut) -> Result<(), String> {
        let Some(caller) = self.callers.get_mut(&socket) else {
            return Ok(());
        };
        caller.last_data = Instant::now();
        if caller.media.is_none() {
            caller.media = Some(start_media(caller, &self.ctx, &self.runtime, &self.tasks)?);
        }
        match &caller.media {
            Some(media) if media.kicked.is_cancelled() => {
                Err("replaced by a new publisher".to_string())
            }
            Some(media) => media.demuxer.push(batch.freeze()),
            None => Ok(()),
        }
    }

    /// Closes callers that stayed silent too long or whose publication ended.
    fn sweep(&mut self) {
        let idle = self.settings.idle_timeout;
        let closing: Vec<(SrtSocket, String)> = self
            .callers
            .iter()
            .filter_map(|(&socket, caller)| {
                if caller
                    .media
                    .as_ref()
                    .is_some_and(|m| m.done.load(Ordering::Acquire))
                {
                    Some((socket, "the stream's media pipeline stopped".to_string()))
                } else if caller
                    .media
                    .as_ref()
                    .is_some_and(|m| m.kicked.is_cancelled())
                {
                    Some((socket, "replaced by a new publisher".to_string()))
                } else if caller.last_data.elapsed() >= idle {
                    Some((socket, format!("no data for {idle:?}")))
                } else {
                    None
                }
            })
            .collect();
        for (socket, reason) in closing {
            self.close(socket, &reason, PublishEnd::Lost);
        }
    }

    fn close(&mut self, socket: SrtSocket, reason: &str, how: PublishEnd) {
        // SAFETY: our epoll id and socket; the socket is not used after.
        unsafe {
            ffi::srt_epoll_remove_usock(self.eid, socket);
            ffi::srt_close(socket);
        }
        let Some(caller) = self.callers.remove(&socket) else {
            return;
        };
        self.connections
            .store(self.callers.len(), Ordering::Relaxed);
        tracing::info!(
            peer = %caller.peer,
            stream = %caller.admission.name,
            duration_s = caller.connected.elapsed().as_secs(),
            published = caller.media.is_some(),
            %reason,
            "SRT caller disconnected"
        );
        if let Some(media) = caller.media {
            media.demuxer.end();
            // The task drains the demuxer, then ends the publication.
            let _ = media.closed.send((how, media.demuxer));
        }
    }
}

/// Claims the caller's stream and starts its demuxer and publication task.
fn start_media(
    caller: &Caller,
    ctx: &Arc<IngestContext>,
    runtime: &tokio::runtime::Handle,
    tasks: &TaskTracker,
) -> Result<MediaLink, String> {
    let name = &caller.admission.name;
    let info = PublisherInfo {
        peer: caller.peer,
        protocol: "srt",
        since: Instant::now(),
    };
    let publication = ctx.begin_publish(name, info).map_err(|current| {
        ctx.metrics
            .publishes_refused
            .fetch_add(1, Ordering::Relaxed);
        format!(
            "stream `{name}` already has a publisher ({} from {})",
            current.protocol, current.peer
        )
    })?;
    let (units_tx, units) = mpsc::channel(UNIT_QUEUE);
    let demuxer = {
        // Units and pipeline bus watchers need the ingest runtime.
        let _guard = runtime.enter();
        TsDemuxer::start(name, units_tx).map_err(|e| e.to_string())?
    };
    let bus = demuxer.bus().ok_or("the MPEG-TS demuxer has no bus")?;
    let (closed_tx, closed) = oneshot::channel();
    let done = Arc::new(AtomicBool::new(false));
    let kicked = publication.kicked();
    tasks.spawn_on(
        drive(publication, units, bus, closed, Arc::clone(&done)),
        runtime,
    );
    Ok(MediaLink {
        demuxer,
        closed: closed_tx,
        done,
        kicked,
    })
}

/// Owns one SRT publication: units from the demuxer into the pipeline until the caller closes
/// (then the demuxer is drained) or the media fails.
async fn drive(
    mut publication: Publication,
    mut units: mpsc::Receiver<MediaUnit>,
    bus: gst::Bus,
    mut closed: oneshot::Receiver<(PublishEnd, TsDemuxer)>,
    done: Arc<AtomicBool>,
) {
    let mut messages = bus.stream();
    let mut ending: Option<(PublishEnd, Option<TsDemuxer>)> = None;
    let mut deadline = tokio::time::Instant::now() + Duration::from_secs(86_400 * 365);
    let outcome: Result<(), String> = loop {
        tokio::select! {
            unit = units.recv() => match unit {
                Some(unit) => {
                    if let Err(err) = publication.push(unit) {
                        break Err(err.to_string());
                    }
                }
                None => break Ok(()),
            },
            message = messages.next() => match message.as_ref().map(|m| m.view()) {
                Some(gst::MessageView::Eos(_)) | None => {
                    while let Ok(unit) = units.try_recv() {
                        if let Err(err) = publication.push(unit) {
                            tracing::debug!(stream = %publication.name, error = %err, "unit after the end");
                            break;
                        }
                    }
                    break Ok(());
                }
                Some(gst::MessageView::Error(err)) => {
                    break Err(format!("MPEG-TS demuxer: {}", err.error()));
                }
                Some(_) => {}
            },
            end = &mut closed, if ending.is_none() => {
                ending = Some(match end {
                    Ok((how, demuxer)) => (how, Some(demuxer)),
                    Err(_) => (PublishEnd::Lost, None),
                });
                deadline = tokio::time::Instant::now() + DRAIN_TIMEOUT;
            }
            () = tokio::time::sleep_until(deadline) => break Ok(()),
        }
    };
    done.store(true, Ordering::Release);
    if let Err(reason) = &outcome {
        tracing::warn!(stream = %publication.name, %reason, "SRT publish failed");
    }
    let how = ending.as_ref().map_or(PublishEnd::Lost, |(how, _)| *how);
    // The demuxer (if handed over) is dropped here, after its last units.
    drop(ending);
    publication.end(how);
}
