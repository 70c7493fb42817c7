//! The RTMP and RTMPS listeners: one task per connection driving the sans-IO
//! [`ServerSession`] over a [`Transport`] (a `TcpStream`, or TLS over one after
//! [`TlsSettings::accept`]), and turning its publish into a [`Publication`].

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures_util::FutureExt;
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::tls::TlsSettings;
use super::{Event, RtmpError, ServerSession, SessionConfig};
use crate::ingest::flv::{FlvError, FlvUnpacker};
use crate::ingest::limits::{ConnectionLimits, LimitRefusal, RefusalLog};
use crate::ingest::{IngestContext, Publication, PublishEnd, PublisherInfo};
use crate::media::MediaError;
use crate::metrics::ingest::{IngestProtocol, RefusalReason};
use crate::webhooks::admission::{AdmissionHook, AdmissionRequest, Decision};

/// At most one log line per this period about refused connections per listener.
const REFUSAL_LOG_PERIOD: Duration = Duration::from_secs(1);
/// Read buffer size per connection.
const READ_BUFFER: usize = 64 * 1024;
/// `SO_RCVLOWAT` of a connection read on the shared tick: far more than a tick's worth of
/// data, so the kernel does not report readability (and wake the ingest thread's reactor) per
/// arriving segment; the tick reads whatever is there regardless. The kernel caps it at half
/// the largest receive buffer.
const BATCH_RCVLOWAT: libc::c_int = 256 * 1024;

/// Reads what the peer sent. Without batching: waits for data (`Some(0)` at EOF). With a batch
/// period: sleeps until the next tick shared by every connection, then takes everything the
/// socket holds without waiting — so one wakeup of the ingest thread serves all publishers'
/// data of that period instead of one wakeup per packet per publisher. `None`: nothing arrived
/// during the period.
async fn read_some(
    socket: &TcpStream,
    buf: &mut BytesMut,
    batch: Option<Duration>,
) -> std::io::Result<Option<usize>> {
    let Some(period) = batch else {
        socket.readable().await?;
        return match socket.try_read_buf(buf) {
            Ok(n) => Ok(Some(n)),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => Ok(None),
            Err(err) => Err(err),
        };
    };
    tokio::time::sleep_until(next_tick(period)).await;
    let mut total = 0;
    while buf.len() < buf.capacity() {
        match recv_now(socket, buf) {
            Ok(0) if total == 0 => return Ok(Some(0)),
            Ok(0) => break,
            Ok(n) => total += n,
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
    Ok((total > 0).then_some(total))
}

/// One non-blocking `recv` into `buf`'s spare capacity, straight on the socket: tokio's
/// `try_read` answers `WouldBlock` without a syscall unless its reactor saw the socket become
/// readable, and with [`BATCH_RCVLOWAT`] it mostly does not.
fn recv_now(socket: &TcpStream, buf: &mut BytesMut) -> std::io::Result<usize> {
    let n = socket2::SockRef::from(socket).recv(buf.spare_capacity_mut())?;
    // SAFETY: `recv` initialised the first `n` bytes of the spare capacity it was given.
    unsafe { buf.set_len(buf.len() + n) };
    Ok(n)
}

/// Raises the socket's receive low-water mark for tick reads (see [`BATCH_RCVLOWAT`]).
fn set_batch_rcvlowat(socket: &TcpStream) -> std::io::Result<()> {
    use std::os::fd::AsRawFd;
    let value = BATCH_RCVLOWAT;
    // SAFETY: a valid socket descriptor and a pointer to a c_int of the given size.
    let rc = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_RCVLOWAT,
            std::ptr::from_ref(&value).cast(),
            std::mem::size_of_val(&value) as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// The first instant after now on the grid of `period` shared by all connections.
fn next_tick(period: Duration) -> tokio::time::Instant {
    static EPOCH: std::sync::OnceLock<tokio::time::Instant> = std::sync::OnceLock::new();
    let epoch = *EPOCH.get_or_init(tokio::time::Instant::now);
    let period_ns = period.as_nanos().max(1);
    let elapsed = epoch.elapsed().as_nanos();
    let ticks = elapsed / period_ns + 1;
    epoch + Duration::from_nanos(u64::try_from(ticks * period_ns).unwrap_or(u64::MAX))
}

/// A connection's byte stream as the RTMP session reads and writes it: plain TCP, or TLS over
/// TCP. Everything above it — session, stream keys, limits, reconnects — is the same.
pub trait Transport: AsyncWrite + Unpin + Send {
    /// Reads what the peer sent (`Some(0)` at EOF, `None`: nothing during a batch period), as
    /// [`read_some`] does for plain TCP.
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
        batch: Option<Duration>,
    ) -> impl Future<Output = std::io::Result<Option<usize>>> + Send + 'a;
}

impl Transport for TcpStream {
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
        batch: Option<Duration>,
    ) -> impl Future<Output = std::io::Result<Option<usize>>> + Send + 'a {
        read_some(self, buf, batch)
    }
}

impl Transport for TlsStream<TcpStream> {
    fn read_some<'a>(
        &'a mut self,
        buf: &'a mut BytesMut,
        batch: Option<Duration>,
    ) -> impl Future<Output = std::io::Result<Option<usize>>> + Send + 'a {
        read_tls(self, buf, batch)
    }
}

/// [`read_some`] for TLS: without batching waits for decrypted data; with a batch period
/// sleeps until the shared tick, then takes every record that has arrived without waiting.
/// The socket keeps the default `SO_RCVLOWAT` (rustls reads through tokio's readiness, which a
/// raised low-water mark would withhold), so arriving segments still wake the reactor, but not
/// the connection's task. A peer that closes without TLS close_notify ends like a TCP EOF.
async fn read_tls(
    stream: &mut TlsStream<TcpStream>,
    buf: &mut BytesMut,
    batch: Option<Duration>,
) -> std::io::Result<Option<usize>> {
    let eof_is_end = |result: std::io::Result<usize>| match result {
        Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => Ok(0),
        other => other,
    };
    let Some(period) = batch else {
        return eof_is_end(stream.read_buf(buf).await).map(Some);
    };
    tokio::time::sleep_until(next_tick(period)).await;
    let mut total = 0;
    while buf.len() < buf.capacity() {
        // One poll: what rustls holds or the socket has now; `None` would mean waiting.
        match stream.read_buf(buf).now_or_never().map(eof_is_end) {
            None => break,
            Some(Ok(0)) if total == 0 => return Ok(Some(0)),
            Some(Ok(0)) => break,
            Some(Ok(n)) => total += n,
            Some(Err(err)) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Some(Err(err)) => return Err(err),
        }
    }
    Ok((total > 0).then_some(total))
}

/// Why an RTMP connection ended with an error (logged as the reason).
#[derive(Debug, thiserror::Error)]
enum ConnectionError {
    #[error("no data for {0:?}; closing")]
    Idle(Duration),
    #[error("not publishing {0:?} after connecting; closing")]
    HandshakeTimeout(Duration),
    #[error("replaced by a new publisher of the stream, or its stream key was revoked")]
    Replaced,
    #[error("read error: {0}")]
    Read(std::io::Error),
    #[error("write error: {0}")]
    Write(std::io::Error),
    #[error("protocol error: {0}")]
    Protocol(RtmpError),
    #[error("stream {stream}: {track}: {error}")]
    Flv {
        stream: String,
        track: &'static str,
        error: FlvError,
    },
    #[error(transparent)]
    Media(#[from] MediaError),
}

/// Settings of the RTMP listener.
#[derive(Debug, Clone)]
pub struct RtmpSettings {
    /// Application name publishers connect to.
    pub app: String,
    /// Session settings (chunk size, limits).
    pub session: SessionConfig,
    /// Close connections silent for this long.
    pub idle_timeout: Duration,
    /// Close connections not publishing this long after they were accepted.
    pub handshake_timeout: Duration,
    /// Connection limits, in total and per address, shared by the RTMP and RTMPS listeners.
    pub limits: Arc<ConnectionLimits>,
    /// Read publishers' data in batches on this shared tick (None: read as it arrives).
    pub read_batch: Option<Duration>,
}

/// Accepts RTMP connections until `shutdown` — RTMPS ones when `tls` is set: each completes
/// its TLS handshake first, and one that does not is closed with one log line and counted.
/// Connection tasks are tracked by `tasks`.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<RtmpSettings>,
    tls: Option<Arc<TlsSettings>>,
    ctx: Arc<IngestContext>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let protocol = if tls.is_some() { "rtmps" } else { "rtmp" };
    match listener.local_addr() {
        Ok(addr) if tls.is_some() => {
            tracing::info!(target: crate::setting::LISTEN_TARGET, rtmps = %addr, "listening")
        }
        Ok(addr) => {
            tracing::info!(target: crate::setting::LISTEN_TARGET, rtmp = %addr, "listening")
        }
        Err(error) => tracing::warn!(%error, protocol, "listener has no local address"),
    }
    let metric = IngestProtocol::rtmp(tls.is_some());
    let mut refusals = RefusalLog::new(REFUSAL_LOG_PERIOD);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, protocol, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let permit = match settings.limits.try_acquire(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                let reason = match refusal {
                    LimitRefusal::Total(_) => RefusalReason::MaxConnections,
                    LimitRefusal::PerIp(_) => RefusalReason::MaxConnectionsPerIp,
                };
                ctx.metrics.ingest_refused.count(metric, reason);
                if let Some(unlogged) = refusals.refused(Instant::now()) {
                    tracing::warn!(%peer, protocol, %refusal, refused_since_last_line = unlogged, "connection refused");
                }
                // Dropping the socket closes it at once, before any byte is read.
                drop(socket);
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        // TLS reads go through tokio's readiness, which a raised low-water mark would withhold.
        if tls.is_none()
            && settings.read_batch.is_some()
            && let Err(err) = set_batch_rcvlowat(&socket)
        {
            tracing::debug!(%peer, error = %err, "SO_RCVLOWAT not set; reads still batch");
        }
        let (settings, ctx, shutdown) = (Arc::clone(&settings), Arc::clone(&ctx), shutdown.clone());
        let tls = tls.clone();
        tasks.spawn(async move {
            match tls {
                None => run_connection(socket, peer, "rtmp", settings, ctx, shutdown).await,
                Some(tls) => {
                    let handshake = tokio::select! {
                        handshake = tls.accept(socket) => handshake,
                        () = shutdown.cancelled() => return,
                    };
                    match handshake {
                        Ok(stream) => {
                            let tls = stream.get_ref().1;
                            tracing::debug!(
                                %peer,
                                version = ?tls.protocol_version(),
                                cipher = ?tls.negotiated_cipher_suite().map(|c| c.suite()),
                                "RTMPS handshake completed"
                            );
                            run_connection(stream, peer, "rtmps", settings, ctx, shutdown).await;
                        }
                        Err(refusal) => {
                            refusal.count(&ctx.metrics);
                            tracing::warn!(%peer, reason = %refusal, "RTMPS connection refused");
                        }
                    }
                }
            }
            drop(permit);
        });
    }
}

/// Runs one connection's RTMP session over `socket` to its end, and logs how it ended.
async fn run_connection<S: Transport>(
    socket: S,
    peer: SocketAddr,
    protocol: &'static str,
    settings: Arc<RtmpSettings>,
    ctx: Arc<IngestContext>,
    shutdown: CancellationToken,
) {
    ctx.metrics.rtmp_connections.fetch_add(1, Ordering::Relaxed);
    let mut connection = Connection::new(peer, protocol, settings, ctx);
    match connection.run(socket, shutdown).await {
        Ok(()) => tracing::debug!(%peer, protocol, "RTMP connection closed"),
        Err(reason) => {
            let metrics = &connection.ctx.metrics;
            let metric = IngestProtocol::rtmp(protocol == "rtmps");
            match &reason {
                ConnectionError::Idle(_) => {
                    metrics
                        .ingest_refused
                        .count(metric, RefusalReason::IdleTimeout);
                }
                ConnectionError::HandshakeTimeout(_) => {
                    metrics
                        .ingest_refused
                        .count(metric, RefusalReason::HandshakeTimeout);
                }
                ConnectionError::Protocol(error) => {
                    metrics.rtmp_errors.fetch_add(1, Ordering::Relaxed);
                    if let Some(reason) = refusal_reason(error) {
                        metrics.ingest_refused.count(metric, reason);
                    }
                }
                _ => {
                    metrics.rtmp_errors.fetch_add(1, Ordering::Relaxed);
                }
            }
            tracing::warn!(%peer, protocol, %reason, "RTMP connection ended");
        }
    }
}

/// The limit a protocol error stands for, counted in `cuecast_ingest_refused_total`.
fn refusal_reason(error: &RtmpError) -> Option<RefusalReason> {
    match error {
        RtmpError::BadStreamName(_) => Some(RefusalReason::BadStreamName),
        RtmpError::MessageTooLarge { .. }
        | RtmpError::BadChunkSize(_)
        | RtmpError::ChunkSizeMidMessage(_)
        | RtmpError::TooManyChunkStreams(_)
        | RtmpError::TooMuchBuffered(_)
        | RtmpError::TooManyStreams(_)
        | RtmpError::TooManyPendingCommands(_) => Some(RefusalReason::ProtocolLimit),
        _ => None,
    }
}

/// The publish in progress on a connection.
struct Publish {
    stream_id: u32,
    name: String,
    flv: FlvUnpacker,
    publication: Publication,
    started: Instant,
}

struct Connection {
    peer: SocketAddr,
    /// `rtmp` or `rtmps`, as reported in `/api/streams`.
    protocol: &'static str,
    settings: Arc<RtmpSettings>,
    ctx: Arc<IngestContext>,
    session: ServerSession,
    publish: Option<Publish>,
}

impl Connection {
    fn new(
        peer: SocketAddr,
        protocol: &'static str,
        settings: Arc<RtmpSettings>,
        ctx: Arc<IngestContext>,
    ) -> Connection {
        let mut s1_random = [0u8; 1528];
        rand::Rng::fill(&mut rand::rng(), &mut s1_random[..]);
        let session = ServerSession::new(settings.session.clone(), s1_random);
        Connection {
            peer,
            protocol,
            settings,
            ctx,
            session,
            publish: None,
        }
    }

    async fn run<S: Transport>(
        &mut self,
        mut socket: S,
        shutdown: CancellationToken,
    ) -> Result<(), ConnectionError> {
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        // Idle detection without a timer per read: a coarse tick checks when data last came,
        // and whether a connection that is not publishing yet has run out of time to start.
        let accepted = tokio::time::Instant::now();
        let check_every = self
            .settings
            .idle_timeout
            .min(self.settings.handshake_timeout)
            / 4;
        let mut idle_check = tokio::time::interval(check_every);
        idle_check.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_data = tokio::time::Instant::now();
        let shutdown = shutdown.cancelled();
        tokio::pin!(shutdown);
        let result = loop {
            buf.clear();
            // Another publisher took the stream over (`ingest.takeover`).
            let kicked = self.publish.as_ref().map(|p| p.publication.kicked());
            let kicked = async move {
                match kicked {
                    Some(token) => token.cancelled_owned().await,
                    None => std::future::pending().await,
                }
            };
            let read = tokio::select! {
                read = socket.read_some(&mut buf, self.settings.read_batch) => match read {
                    Ok(None) => continue,
                    Ok(Some(n)) => Ok(n),
                    Err(err) => Err(err),
                },
                _ = idle_check.tick() => {
                    if last_data.elapsed() >= self.settings.idle_timeout {
                        break Err(ConnectionError::Idle(self.settings.idle_timeout));
                    }
                    if self.publish.is_none()
                        && accepted.elapsed() >= self.settings.handshake_timeout
                    {
                        break Err(ConnectionError::HandshakeTimeout(
                            self.settings.handshake_timeout,
                        ));
                    }
                    continue;
                }
                () = kicked => {
                    if let Some(publish) = &self.publish {
                        self.session.end_publish(publish.stream_id, "replaced by a new publisher, or the stream key was revoked");
                    }
                    let _ = self.flush(&mut socket).await;
                    self.end_publish(PublishEnd::Lost);
                    break Err(ConnectionError::Replaced);
                }
                () = &mut shutdown => {
                    if let Some(publish) = &self.publish {
                        self.session.end_publish(publish.stream_id, "server shutting down");
                    }
                    let _ = self.flush(&mut socket).await;
                    self.end_publish(PublishEnd::Finished);
                    break Ok(());
                }
            };
            match read {
                Err(err) => break Err(ConnectionError::Read(err)),
                Ok(0) => break Ok(()),
                Ok(_) => last_data = tokio::time::Instant::now(),
            }
            if let Err(err) = self.session.handle_input(&buf) {
                let _ = self.flush(&mut socket).await;
                break Err(ConnectionError::Protocol(err));
            }
            while let Some(event) = self.session.poll_event() {
                if let Err(reason) = self.handle_event(event).await {
                    let _ = self.flush(&mut socket).await;
                    self.end_publish(PublishEnd::Lost);
                    return Err(reason);
                }
            }
            if let Err(err) = self.flush(&mut socket).await {
                break Err(ConnectionError::Write(err));
            }
            if self.session.wants_close() {
                // A pipelined command (sent before connect was answered) may have failed.
                break match self.session.take_deferred_error() {
                    Some(err) => Err(ConnectionError::Protocol(err)),
                    None => Ok(()),
                };
            }
        };
        // Still publishing: the connection dropped, timed out or closed without unpublishing.
        self.end_publish(PublishEnd::Lost);
        let _ = socket.shutdown().await;
        result
    }

    async fn flush<S: Transport>(&mut self, socket: &mut S) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            socket.write_all(&bytes).await?;
        }
        // TLS holds written records until flushed (a no-op for TCP).
        socket.flush().await
    }

    async fn handle_event(&mut self, event: Event) -> Result<(), ConnectionError> {
        match event {
            Event::Connect { app, tc_url, .. } => {
                let requested = app.split('?').next().unwrap_or("").trim_end_matches('/');
                if requested == self.settings.app {
                    self.session.accept_connect();
                } else {
                    self.ctx
                        .metrics
                        .publishes_refused
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(peer = %self.peer, %app, ?tc_url, "RTMP connect refused: unknown application");
                    self.session
                        .reject_connect(&format!("unknown application `{app}`"));
                }
            }
            Event::Publish {
                stream_id,
                stream_key,
                ..
            } => self.start_publish(stream_id, &stream_key).await,
            Event::Metadata { metadata, .. } => {
                let encoder = metadata
                    .get("encoder")
                    .map(|v| format!("{v:?}"))
                    .unwrap_or_default();
                tracing::debug!(peer = %self.peer, %encoder, "publisher metadata");
            }
            Event::Video {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(publish) = self.publish.as_mut().filter(|p| p.stream_id == stream_id) {
                    let unit = publish.flv.video(timestamp, data).map_err(|error| {
                        ConnectionError::Flv {
                            stream: publish.name.clone(),
                            track: "video",
                            error,
                        }
                    })?;
                    if let Some(unit) = unit {
                        publish.publication.push(unit)?;
                    }
                }
            }
            Event::Audio {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(publish) = self.publish.as_mut().filter(|p| p.stream_id == stream_id) {
                    let unit = publish.flv.audio(timestamp, data).map_err(|error| {
                        ConnectionError::Flv {
                            stream: publish.name.clone(),
                            track: "audio",
                            error,
                        }
                    })?;
                    if let Some(unit) = unit {
                        publish.publication.push(unit)?;
                    }
                }
            }
            Event::Unpublish { stream_id } => {
                if self
                    .publish
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    self.end_publish(PublishEnd::Unpublished);
                }
            }
        }
        Ok(())
    }

    async fn start_publish(&mut self, stream_id: u32, key: &str) {
        if self.publish.is_some() {
            self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection is already publishing",
            );
            return;
        }
        let configured = self.ctx.keys.stream_for(key);
        let configured = match self.ctx.admission.clone() {
            Some(hook) => match self.admit(&hook, key, configured).await {
                Ok(name) => Some(name),
                Err(reason) => {
                    self.session.reject_publish(
                        stream_id,
                        "NetStream.Publish.BadName",
                        &format!("publish refused: {reason}"),
                    );
                    return;
                }
            },
            None => configured,
        };
        let Some(name) = configured else {
            self.ctx
                .metrics
                .publishes_refused
                .fetch_add(1, Ordering::Relaxed);
            tracing::warn!(peer = %self.peer, "RTMP publish refused: unknown stream key");
            self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "unknown stream key",
            );
            return;
        };
        let info = PublisherInfo {
            peer: self.peer,
            protocol: self.protocol,
            since: Instant::now(),
        };
        let lease = match self.ctx.lease(&name).await {
            Ok(lease) => lease,
            Err(err) => {
                self.ctx
                    .metrics
                    .publishes_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer = %self.peer,
                    stream = %name,
                    reason = %err,
                    "RTMP publish refused: the stream is not this node's to publish"
                );
                // The same answer as a second publisher on one node gets.
                self.session.reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    "stream is already being published",
                );
                return;
            }
        };
        let publication = match self.ctx.begin_publish_leased(&name, info, lease) {
            Ok(publication) => publication,
            Err(current) => {
                self.ctx
                    .metrics
                    .publishes_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    peer = %self.peer,
                    stream = %name,
                    current_publisher = %current.peer,
                    "RTMP publish refused: stream already has a publisher"
                );
                self.session.reject_publish(
                    stream_id,
                    "NetStream.Publish.BadName",
                    "stream is already being published",
                );
                return;
            }
        };
        self.session.accept_publish(stream_id);
        self.publish = Some(Publish {
            stream_id,
            name,
            flv: FlvUnpacker::new(),
            publication,
            started: Instant::now(),
        });
    }

    /// Asks the admission hook: the stream to publish to, or why not.
    async fn admit(
        &self,
        hook: &AdmissionHook,
        key: &str,
        configured: Option<String>,
    ) -> Result<String, String> {
        let request = AdmissionRequest {
            stream: configured,
            key: key.to_string(),
            protocol: self.protocol.to_string(),
            peer: self.peer,
        };
        let keys = &self.ctx.keys;
        match hook.check(&request, |name| keys.is_stream(name)).await {
            Decision::Admit(name) => {
                tracing::info!(peer = %self.peer, stream = %name, "publish admitted by the admission hook");
                Ok(name)
            }
            Decision::Refuse(reason) => {
                self.ctx
                    .metrics
                    .publishes_refused
                    .fetch_add(1, Ordering::Relaxed);
                tracing::warn!(peer = %self.peer, stream = ?request.stream, %reason, "{} publish refused by the admission hook", self.protocol.to_ascii_uppercase());
                Err(reason)
            }
        }
    }

    fn end_publish(&mut self, how: PublishEnd) {
        if let Some(publish) = self.publish.take() {
            tracing::info!(
                peer = %self.peer,
                stream = %publish.name,
                duration_s = publish.started.elapsed().as_secs(),
                ?how,
                "RTMP publish ended"
            );
            publish.publication.end(how);
        }
    }
}
