//! The RTMP listener: one task per connection driving the sans-IO [`ServerSession`] over a
//! `TcpStream`, and turning its publish into a [`StreamPipeline`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Event, ServerSession, SessionConfig};
use crate::ingest::flv::FlvUnpacker;
use crate::ingest::{IngestContext, PublishClaim, PublisherInfo};
use crate::media::StreamPipeline;

/// Read buffer size per connection.
const READ_BUFFER: usize = 64 * 1024;

/// Settings of the RTMP listener.
#[derive(Debug, Clone)]
pub struct RtmpSettings {
    /// Application name publishers connect to.
    pub app: String,
    /// Session settings (chunk size, limits).
    pub session: SessionConfig,
    /// Close connections silent for this long.
    pub idle_timeout: Duration,
    /// Most simultaneous connections.
    pub max_connections: usize,
}

/// Accepts RTMP connections until `shutdown`; connection tasks are tracked by `tasks`.
pub async fn serve(
    listener: TcpListener,
    settings: Arc<RtmpSettings>,
    ctx: Arc<IngestContext>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
) {
    let permits = Arc::new(Semaphore::new(settings.max_connections));
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (socket, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "RTMP accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::warn!(%peer, "RTMP connection refused: too many connections");
            continue;
        };
        let _ = socket.set_nodelay(true);
        ctx.metrics.rtmp_connections.fetch_add(1, Ordering::Relaxed);
        let (settings, ctx, shutdown) = (Arc::clone(&settings), Arc::clone(&ctx), shutdown.clone());
        tasks.spawn(async move {
            let mut connection = Connection::new(peer, settings, ctx);
            match connection.run(socket, shutdown).await {
                Ok(()) => tracing::debug!(%peer, "RTMP connection closed"),
                Err(reason) => {
                    connection
                        .ctx
                        .metrics
                        .rtmp_errors
                        .fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(%peer, %reason, "RTMP connection ended");
                }
            }
            drop(permit);
        });
    }
}

/// The publish in progress on a connection.
struct Publish {
    stream_id: u32,
    name: String,
    flv: FlvUnpacker,
    pipeline: StreamPipeline,
    /// Released when the publish ends (dropped after the pipeline got EOS).
    _claim: PublishClaim,
    started: Instant,
}

struct Connection {
    peer: SocketAddr,
    settings: Arc<RtmpSettings>,
    ctx: Arc<IngestContext>,
    session: ServerSession,
    publish: Option<Publish>,
}

impl Connection {
    fn new(peer: SocketAddr, settings: Arc<RtmpSettings>, ctx: Arc<IngestContext>) -> Connection {
        let mut s1_random = [0u8; 1528];
        rand::Rng::fill(&mut rand::rng(), &mut s1_random[..]);
        let session = ServerSession::new(settings.session.clone(), s1_random);
        Connection {
            peer,
            settings,
            ctx,
            session,
            publish: None,
        }
    }

    async fn run(
        &mut self,
        mut socket: TcpStream,
        shutdown: CancellationToken,
    ) -> Result<(), String> {
        let mut buf = BytesMut::with_capacity(READ_BUFFER);
        let result = loop {
            buf.clear();
            let read = tokio::select! {
                read = tokio::time::timeout(self.settings.idle_timeout, socket.read_buf(&mut buf)) => read,
                () = shutdown.cancelled() => {
                    if let Some(publish) = &self.publish {
                        self.session.end_publish(publish.stream_id, "server shutting down");
                    }
                    let _ = self.flush(&mut socket).await;
                    break Ok(());
                }
            };
            match read {
                Err(_) => {
                    break Err(format!(
                        "no data for {:?}; closing",
                        self.settings.idle_timeout
                    ));
                }
                Ok(Err(err)) => break Err(format!("read error: {err}")),
                Ok(Ok(0)) => break Ok(()),
                Ok(Ok(_)) => {}
            }
            if let Err(err) = self.session.handle_input(&buf) {
                let _ = self.flush(&mut socket).await;
                break Err(format!("protocol error: {err}"));
            }
            while let Some(event) = self.session.poll_event() {
                if let Err(reason) = self.handle_event(event) {
                    let _ = self.flush(&mut socket).await;
                    self.end_publish();
                    return Err(reason);
                }
            }
            if let Err(err) = self.flush(&mut socket).await {
                break Err(format!("write error: {err}"));
            }
            if self.session.wants_close() {
                break Ok(());
            }
        };
        self.end_publish();
        let _ = socket.shutdown().await;
        result
    }

    async fn flush(&mut self, socket: &mut TcpStream) -> std::io::Result<()> {
        while let Some(bytes) = self.session.poll_transmit() {
            socket.write_all(&bytes).await?;
        }
        Ok(())
    }

    fn handle_event(&mut self, event: Event) -> Result<(), String> {
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
            } => self.start_publish(stream_id, &stream_key),
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
                    let unit = publish
                        .flv
                        .video(timestamp, data)
                        .map_err(|e| format!("stream {}: video: {e}", publish.name))?;
                    if let Some(unit) = unit {
                        publish.pipeline.push(unit).map_err(|e| e.to_string())?;
                    }
                }
            }
            Event::Audio {
                stream_id,
                timestamp,
                data,
            } => {
                if let Some(publish) = self.publish.as_mut().filter(|p| p.stream_id == stream_id) {
                    let unit = publish
                        .flv
                        .audio(timestamp, data)
                        .map_err(|e| format!("stream {}: audio: {e}", publish.name))?;
                    if let Some(unit) = unit {
                        publish.pipeline.push(unit).map_err(|e| e.to_string())?;
                    }
                }
            }
            Event::Unpublish { stream_id } => {
                if self
                    .publish
                    .as_ref()
                    .is_some_and(|p| p.stream_id == stream_id)
                {
                    self.end_publish();
                }
            }
        }
        Ok(())
    }

    fn start_publish(&mut self, stream_id: u32, key: &str) {
        if self.publish.is_some() {
            self.session.reject_publish(
                stream_id,
                "NetStream.Publish.BadName",
                "this connection is already publishing",
            );
            return;
        }
        let Some(name) = self.ctx.keys.stream_for(key).map(str::to_string) else {
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
            protocol: "rtmp",
            since: Instant::now(),
        };
        let claim = match self.ctx.live.claim(&name, info) {
            Ok(claim) => claim,
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
        let stream = self.ctx.registry.create(&name);
        let pipeline = StreamPipeline::new(stream, Arc::clone(&self.ctx.media));
        tracing::info!(peer = %self.peer, stream = %name, "RTMP publish started");
        self.session.accept_publish(stream_id);
        self.publish = Some(Publish {
            stream_id,
            name,
            flv: FlvUnpacker::new(),
            pipeline,
            _claim: claim,
            started: Instant::now(),
        });
    }

    fn end_publish(&mut self) {
        if let Some(mut publish) = self.publish.take() {
            publish.pipeline.finish();
            tracing::info!(
                peer = %self.peer,
                stream = %publish.name,
                duration_s = publish.started.elapsed().as_secs(),
                "RTMP publish ended"
            );
        }
    }
}
