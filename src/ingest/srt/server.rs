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
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::ffi::{Epoll, EpollEvent, Handshake, Library, Socket, SocketId, SrtError};
use super::streamid::{RejectReason, Rejection, redacted};
use super::{Admission, SrtSettings};
use crate::ingest::limits::{ConnectionLimits, ConnectionSlot, LimitRefusal};
use crate::ingest::{IngestContext, Publication, PublishEnd, PublisherInfo};
use crate::media::MediaError;
use crate::media::frame::MediaUnit;
use crate::media::mpegts::{PushError, TsDemuxer};
use crate::metrics::ingest::{IngestProtocol, RefusalReason};
use crate::webhooks::admission::{AdmissionHook, AdmissionRequest, Decision};

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

/// Why the SRT listener could not start.
#[derive(Debug, thiserror::Error)]
pub enum ListenError {
    /// libsrt could not start, or a listener call failed.
    #[error(transparent)]
    Srt(#[from] SrtError),
    /// A listener option could not be set.
    #[error("{option}: {error}")]
    Option {
        /// The option (`non-blocking`, `latency`, `pbkeylen`, `passphrase`).
        option: &'static str,
        /// libsrt's error.
        error: SrtError,
    },
    /// The listen address could not be bound.
    #[error("cannot bind {address}: {error}")]
    Bind {
        /// The configured address.
        address: SocketAddr,
        /// libsrt's error.
        error: SrtError,
    },
}

/// Why a caller's connection closes or its publication fails (logged as the reason).
#[derive(Debug, thiserror::Error)]
enum CallerError {
    #[error("server shutting down")]
    Shutdown,
    #[error("{0}")]
    Broken(SrtError),
    #[error("connection broken")]
    ErrorEvent,
    #[error("the stream's media pipeline stopped")]
    PipelineStopped,
    #[error("replaced by a new publisher, or its stream key was revoked")]
    Replaced,
    #[error("no data for {0:?}")]
    Idle(Duration),
    #[error("stream `{name}` already has a publisher ({protocol} from {peer})")]
    Busy {
        name: String,
        protocol: &'static str,
        peer: SocketAddr,
    },
    #[error("stream `{name}` cannot be published here: {reason}")]
    Leased { name: String, reason: String },
    #[error(transparent)]
    Media(#[from] MediaError),
    #[error("{0}")]
    Demuxer(#[from] PushError),
    #[error("the MPEG-TS demuxer has no bus")]
    NoBus,
    #[error("MPEG-TS demuxer: {0}")]
    DemuxerBus(gst::glib::Error),
}

/// A bound SRT listener, before its thread runs.
pub struct SrtListener {
    socket: Socket,
    /// The bound address.
    pub local_addr: SocketAddr,
    /// libsrt, held until the listener and everything the server made from it are gone (the
    /// last field: dropped after `socket`; [`run`] drops its driver first).
    _library: Library,
}

/// What the handshake callback reads (it lives as long as the process: libsrt may call it
/// until the end).
struct CallbackContext {
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    /// Callers' places under `max_connections` and `max_connections_per_ip`.
    connections: Arc<ConnectionLimits>,
    /// Where the admission hook's request runs (the runtime that bound the listener).
    runtime: Option<tokio::runtime::Handle>,
    /// Streams the admission hook chose at handshake, by the caller's socket.
    hooked: Hooked,
}

/// The streams the admission hook chose at handshake, by socket, until the caller is accepted
/// (entries of callers libsrt then rejected expire after [`HOOKED_TTL`]).
type Hooked = Arc<std::sync::Mutex<HashMap<SocketId, (String, Instant)>>>;

/// How long a handshake's hook decision waits for the caller's accept.
const HOOKED_TTL: Duration = Duration::from_secs(30);
/// Margin over the hook's own timeout before the handshake stops waiting for it.
const HOOK_MARGIN: Duration = Duration::from_secs(1);

impl SrtListener {
    /// Creates, configures and binds the listener (errors name the cause).
    pub fn bind(
        settings: &Arc<SrtSettings>,
        ctx: &Arc<IngestContext>,
    ) -> Result<(SrtListener, Arc<ConnectionLimits>, Hooked), ListenError> {
        let library = Library::start()?;
        let socket = Socket::new()?;
        let option = |option: &'static str| move |error| ListenError::Option { option, error };
        socket
            .set_blocking_receive(false)
            .map_err(option("non-blocking"))?;
        socket
            .set_latency_ms(i32::try_from(settings.latency_ms).unwrap_or(i32::MAX))
            .map_err(option("latency"))?;
        socket
            .set_key_length(i32::try_from(settings.pbkeylen).unwrap_or(16))
            .map_err(option("pbkeylen"))?;
        if let Some(passphrase) = &settings.passphrase {
            socket
                .set_passphrase(passphrase)
                .map_err(option("passphrase"))?;
        }
        let connections =
            ConnectionLimits::new(settings.max_connections, settings.max_connections_per_ip);
        let hooked = Hooked::default();
        let context = CallbackContext {
            settings: Arc::clone(settings),
            ctx: Arc::clone(ctx),
            connections: Arc::clone(&connections),
            runtime: tokio::runtime::Handle::try_current().ok(),
            hooked: Arc::clone(&hooked),
        };
        socket.on_handshake(move |handshake| admit(&context, handshake))?;
        socket
            .bind(settings.listen)
            .map_err(|error| ListenError::Bind {
                address: settings.listen,
                error,
            })?;
        socket.listen(64)?;
        let local_addr = socket.local_addr().unwrap_or(settings.listen);
        tracing::info!(target: crate::setting::LISTEN_TARGET, srt = %local_addr, "listening");
        Ok((
            SrtListener {
                socket,
                local_addr,
                _library: library,
            },
            connections,
            hooked,
        ))
    }
}

/// The `cuecast_ingest_refused_total` reason of a limit.
fn limit_reason(refusal: LimitRefusal) -> RefusalReason {
    match refusal {
        LimitRefusal::Total(_) => RefusalReason::MaxConnections,
        LimitRefusal::PerIp(_) => RefusalReason::MaxConnectionsPerIp,
    }
}

/// The callback's decision: `Err(reject code)`.
fn admit(context: &CallbackContext, handshake: &Handshake<'_>) -> Result<(), i32> {
    let stream_id = handshake.stream_id();
    let peer = handshake
        .peer()
        .map_or_else(|| "?".to_string(), |p| p.to_string());
    let metrics = &context.ctx.metrics;
    let reject = |reason: RejectReason, detail: &str| {
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
    let ip = handshake
        .peer()
        .map_or(std::net::IpAddr::from([0, 0, 0, 0]), |p| p.ip());
    if let Err(refusal) = context.connections.check(ip) {
        metrics
            .ingest_refused
            .count(IngestProtocol::Srt, limit_reason(refusal));
        return Err(reject(RejectReason::Overload, &refusal.to_string()));
    }
    if super::streamid::parse(stream_id, &context.settings.app)
        .is_err_and(|r| r.reason == RejectReason::BadRequest)
    {
        metrics
            .ingest_refused
            .count(IngestProtocol::Srt, RefusalReason::BadStreamName);
    }
    let admission = match &context.ctx.admission {
        None => context
            .settings
            .admit(stream_id, &context.ctx.keys, &context.ctx.live),
        Some(hook) => ask_hook(context, hook, stream_id, handshake.peer()).and_then(|name| {
            let request = super::streamid::parse(stream_id, &context.settings.app)?;
            context.settings.admit_to(name, &request, &context.ctx.live)
        }),
    }
    .map_err(|rejection| reject(rejection.reason, &rejection.detail))?;
    if let Some(holder) = owned_elsewhere(context, &admission.name) {
        // As a second publisher on one node is refused (the lease is checked again, and
        // taken, when media starts).
        return Err(reject(
            RejectReason::Conflict,
            &format!("stream `{}` is published on node {holder}", admission.name),
        ));
    }
    if context.ctx.admission.is_some() {
        let mut hooked = context.hooked.lock().unwrap_or_else(|e| e.into_inner());
        hooked.retain(|_, (_, at)| at.elapsed() < HOOKED_TTL);
        hooked.insert(handshake.socket(), (admission.name.clone(), Instant::now()));
    }
    if let Some(passphrase) = &admission.passphrase
        && let Err(err) = handshake.set_passphrase(passphrase)
    {
        tracing::warn!(%peer, error = %err, "SRT: cannot set the stream's passphrase");
        return Err(RejectReason::BadRequest.code());
    }
    // libsrt names the socket (`@id`) when it then rejects the handshake (wrong passphrase).
    tracing::info!(
        %peer,
        socket = %format_args!("@{}", handshake.socket()),
        stream = %admission.name,
        encrypted = admission.passphrase.is_some(),
        "SRT caller admitted by stream id; handshake continues"
    );
    Ok(())
}

/// The node holding `name`'s ownership lease when it is another (clustered), asked at
/// handshake; `None` when it is free, ours, or Redis does not answer within the connect
/// timeout (the lease taken at the first media then decides).
fn owned_elsewhere(context: &CallbackContext, name: &str) -> Option<String> {
    let leases = context.ctx.leases.as_ref()?;
    let runtime = context.runtime.as_ref()?;
    if leases.holds(name) {
        return None;
    }
    let (tx, rx) = std::sync::mpsc::channel();
    let (asking, stream) = (Arc::clone(leases), name.to_string());
    runtime.spawn(async move {
        let _ = tx.send(asking.owner(&stream).await);
    });
    let wait = leases.cluster().settings().connect_timeout;
    let holder = rx.recv_timeout(wait).ok()?.ok()??;
    (holder != leases.cluster().node_id()).then_some(holder)
}

/// Asks the admission hook about a caller at handshake (as RTMP asks it at publish): the
/// stream it may publish to, or a `SRT_REJX_FORBIDDEN` rejection with the hook's reason. The
/// handshake waits for the answer (at most the hook's timeout): libsrt's callback decides
/// before it answers the caller, so the caller sees the reject code.
fn ask_hook(
    context: &CallbackContext,
    hook: &Arc<AdmissionHook>,
    stream_id: &str,
    peer: Option<SocketAddr>,
) -> Result<String, Rejection> {
    let request = super::streamid::parse(stream_id, &context.settings.app)?;
    let refused = |reason: String| Rejection {
        reason: RejectReason::Forbidden,
        detail: format!("refused by the admission hook: {reason}"),
    };
    let Some(runtime) = &context.runtime else {
        return Err(refused("no runtime to ask it from".into()));
    };
    let keys = Arc::clone(&context.ctx.keys);
    let asked = AdmissionRequest {
        stream: keys.stream_for(&request.key),
        key: request.key.clone(),
        protocol: "srt".into(),
        peer: peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0))),
    };
    let (tx, rx) = std::sync::mpsc::channel();
    let asking = Arc::clone(hook);
    runtime.spawn(async move {
        let decision = asking.check(&asked, |name| keys.is_stream(name)).await;
        let _ = tx.send(decision);
    });
    match rx.recv_timeout(hook.timeout() + HOOK_MARGIN) {
        Ok(Decision::Admit(name)) => {
            tracing::info!(peer = ?peer, stream = %name, "SRT publish admitted by the admission hook");
            Ok(name)
        }
        Ok(Decision::Refuse(reason)) => Err(refused(reason)),
        Err(_) => Err(refused("no answer in time".into())),
    }
}

/// A connected caller.
struct Caller {
    socket: Socket,
    peer: SocketAddr,
    admission: Admission,
    connected: Instant,
    last_data: Instant,
    media: Option<MediaLink>,
    /// Its place under the connection limits, given back when the caller is dropped.
    _slot: ConnectionSlot,
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
#[allow(clippy::too_many_arguments)]
pub fn run(
    listener: SrtListener,
    connections: Arc<ConnectionLimits>,
    hooked: Hooked,
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
    shutdown: CancellationToken,
) {
    let epoll = match Epoll::new().and_then(|epoll| {
        epoll.watch(&listener.socket)?;
        Ok(epoll)
    }) {
        Ok(epoll) => epoll,
        Err(error) => {
            tracing::error!(%error, "SRT epoll setup failed; SRT ingest is off");
            return;
        }
    };
    let driver = Driver {
        listener: listener.socket,
        epoll,
        callers: HashMap::new(),
        connections,
        hooked,
        settings,
        ctx,
        runtime,
        tasks,
    };
    driver.run(&shutdown);
}

/// The listener, its epoll set and its callers. Dropped in field order: the listener closes
/// before the epoll set is released.
struct Driver {
    listener: Socket,
    epoll: Epoll,
    callers: HashMap<SocketId, Caller>,
    connections: Arc<ConnectionLimits>,
    /// The admission hook's choices at handshake.
    hooked: Hooked,
    settings: Arc<SrtSettings>,
    ctx: Arc<IngestContext>,
    runtime: tokio::runtime::Handle,
    tasks: TaskTracker,
}

impl Driver {
    fn run(mut self, shutdown: &CancellationToken) {
        let mut ready = vec![EpollEvent::default(); 256];
        let mut buf = vec![0u8; MAX_PAYLOAD];
        let mut last_sweep = Instant::now();
        let mut wake = Instant::now();
        while !shutdown.is_cancelled() {
            let n = self.epoll.wait(&mut ready, WAIT_MS);
            for event in &ready[..n.min(ready.len())] {
                if event.socket() == self.listener.id() {
                    self.accept_one();
                } else {
                    self.serve(event.socket(), event.is_error(), &mut buf);
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
        let sockets: Vec<SocketId> = self.callers.keys().copied().collect();
        for socket in sockets {
            self.close(socket, &CallerError::Shutdown, PublishEnd::Finished);
        }
    }

    /// Accepts one pending caller (the level-triggered epoll reports the listener again while
    /// more are pending; accepting until "none pending" would make libsrt log an error).
    fn accept_one(&mut self) {
        let Ok((socket, peer)) = self.listener.accept() else {
            return;
        };
        let peer = peer.unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
        let stream_id = socket.stream_id();
        // Admitted at handshake; decided again now (the stream may have gone live since) —
        // with the stream the admission hook chose then, if it was asked.
        let hooked = self
            .hooked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&socket.id());
        let admission = match hooked {
            Some((name, _)) => super::streamid::parse(&stream_id, &self.settings.app)
                .and_then(|request| self.settings.admit_to(name, &request, &self.ctx.live)),
            None => self
                .settings
                .admit(&stream_id, &self.ctx.keys, &self.ctx.live),
        };
        let admission = match admission {
            Ok(admission) => admission,
            Err(rejection) => {
                tracing::warn!(%peer, %rejection, "SRT caller closed after the handshake");
                return;
            }
        };
        // Admitted at handshake; other callers from the same address may have been accepted
        // since (a handshake flood).
        let slot = match self.connections.try_acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                self.ctx
                    .metrics
                    .ingest_refused
                    .count(IngestProtocol::Srt, limit_reason(refusal));
                tracing::warn!(%peer, %refusal, "SRT caller closed after the handshake");
                return;
            }
        };
        if let Err(error) = self.epoll.watch(&socket) {
            tracing::warn!(%peer, %error, "SRT: cannot watch the caller");
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
            socket.id(),
            Caller {
                socket,
                peer,
                admission,
                connected: now,
                last_data: now,
                media: None,
                _slot: slot,
            },
        );
    }

    /// Reads what `socket` has (up to [`MAX_BATCH`]) and feeds it to its demuxer.
    fn serve(&mut self, socket: SocketId, error_event: bool, buf: &mut [u8]) {
        let Some(caller) = self.callers.get(&socket) else {
            return;
        };
        let mut batch = BytesMut::new();
        let mut broken = None;
        while batch.len() < MAX_BATCH {
            match caller.socket.recv(buf) {
                Ok(Some(n)) => batch.extend_from_slice(&buf[..n.min(buf.len())]),
                Ok(None) => break,
                Err(error) => {
                    broken = Some(CallerError::Broken(error));
                    break;
                }
            }
        }
        if broken.is_none() && error_event && batch.is_empty() {
            broken = Some(CallerError::ErrorEvent);
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

    fn feed(&mut self, socket: SocketId, batch: BytesMut) -> Result<(), CallerError> {
        let Some(caller) = self.callers.get_mut(&socket) else {
            return Ok(());
        };
        caller.last_data = Instant::now();
        if caller.media.is_none() {
            caller.media = Some(start_media(caller, &self.ctx, &self.runtime, &self.tasks)?);
        }
        match &caller.media {
            Some(media) if media.kicked.is_cancelled() => Err(CallerError::Replaced),
            Some(media) => media
                .demuxer
                .push(batch.freeze())
                .map_err(CallerError::Demuxer),
            None => Ok(()),
        }
    }

    /// Closes callers that stayed silent too long or whose publication ended.
    fn sweep(&mut self) {
        let idle = self.settings.idle_timeout;
        let closing: Vec<(SocketId, CallerError)> = self
            .callers
            .iter()
            .filter_map(|(&socket, caller)| {
                if caller
                    .media
                    .as_ref()
                    .is_some_and(|m| m.done.load(Ordering::Acquire))
                {
                    Some((socket, CallerError::PipelineStopped))
                } else if caller
                    .media
                    .as_ref()
                    .is_some_and(|m| m.kicked.is_cancelled())
                {
                    Some((socket, CallerError::Replaced))
                } else if caller.last_data.elapsed() >= idle {
                    Some((socket, CallerError::Idle(idle)))
                } else {
                    None
                }
            })
            .collect();
        for (socket, reason) in closing {
            self.close(socket, &reason, PublishEnd::Lost);
        }
    }

    /// Stops watching and closes `socket`, and ends its caller's publication.
    fn close(&mut self, socket: SocketId, reason: &CallerError, how: PublishEnd) {
        let Some(caller) = self.callers.remove(&socket) else {
            return;
        };
        self.epoll.unwatch(&caller.socket);
        drop(caller.socket);
        if matches!(reason, CallerError::Idle(_)) {
            self.ctx
                .metrics
                .ingest_refused
                .count(IngestProtocol::Srt, RefusalReason::IdleTimeout);
        }
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
) -> Result<MediaLink, CallerError> {
    let name = &caller.admission.name;
    let info = PublisherInfo {
        peer: caller.peer,
        protocol: "srt",
        since: Instant::now(),
    };
    let lease = ctx.lease_blocking(name).map_err(|err| {
        ctx.metrics
            .publishes_refused
            .fetch_add(1, Ordering::Relaxed);
        CallerError::Leased {
            name: name.clone(),
            reason: err.to_string(),
        }
    })?;
    let publication = ctx
        .begin_publish_leased(name, info, lease)
        .map_err(|current| {
            ctx.metrics
                .publishes_refused
                .fetch_add(1, Ordering::Relaxed);
            CallerError::Busy {
                name: name.clone(),
                protocol: current.protocol,
                peer: current.peer,
            }
        })?;
    let (units_tx, units) = mpsc::channel(UNIT_QUEUE);
    let demuxer = {
        // Units and pipeline bus watchers need the ingest runtime.
        let _guard = runtime.enter();
        TsDemuxer::start(name, units_tx)?
    };
    let bus = demuxer.bus().ok_or(CallerError::NoBus)?;
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
    let outcome: Result<(), CallerError> = loop {
        tokio::select! {
            unit = units.recv() => match unit {
                Some(unit) => {
                    if let Err(err) = publication.push(unit) {
                        break Err(CallerError::Media(err));
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
                    break Err(CallerError::DemuxerBus(err.error()));
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
