//! Where ingest runs: its own single-threaded Tokio runtime on thread `cuecast-ingest` (RTMP
//! parsing is light, and one thread for every connection avoids waking a second worker, and a
//! context switch, for every small read from every publisher), plus thread `cuecast-srt` for
//! libsrt's epoll loop, whose publications run as tasks on the ingest runtime.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::IngestContext;
use super::rtmp::tls::TlsSettings;
use super::rtmp::{self, server as rtmp_server};
use super::srt::SrtSettings;
use super::srt::server::{self as srt_server, SrtListener};

/// How long the ingest runtime keeps running pipelines' bus watchers after the last connection.
const INGEST_DRAIN: Duration = Duration::from_secs(1);

/// Why ingest could not start.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The RTMP listen address could not be bound.
    #[error("rtmp.listen: cannot bind {addr}")]
    RtmpBind {
        /// `rtmp.listen`.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The bound RTMP socket could not be handed to the ingest runtime.
    #[error("rtmp.listen: cannot use the bound socket")]
    RtmpSocket(#[source] std::io::Error),
    /// The RTMPS listen address could not be bound.
    #[error("rtmps.listen: cannot bind {addr}")]
    RtmpsBind {
        /// `rtmps.listen`.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The bound RTMPS socket could not be handed to the ingest runtime.
    #[error("rtmps.listen: cannot use the bound socket")]
    RtmpsSocket(#[source] std::io::Error),
    /// The SRT listener could not be set up.
    #[error("srt.listen: {0}")]
    Srt(String),
    /// The ingest thread could not be started.
    #[error("cannot start the ingest thread")]
    Thread(#[source] std::io::Error),
}

/// The running ingest listeners.
pub struct Ingest {
    /// Where RTMP listens.
    pub rtmp_addr: SocketAddr,
    /// Where RTMPS listens, when enabled.
    pub rtmps_addr: Option<SocketAddr>,
    /// Where SRT listens (UDP), when enabled.
    pub srt_addr: Option<SocketAddr>,
    tasks: TaskTracker,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl Ingest {
    /// Binds RTMP (and RTMPS when `rtmps` is set, SRT when `srt` is set), then serves them on
    /// the ingest thread until `shutdown` is cancelled.
    pub async fn start(
        rtmp: &rtmp::Config,
        rtmps: Option<TlsSettings>,
        srt: Option<SrtSettings>,
        ctx: Arc<IngestContext>,
        shutdown: CancellationToken,
    ) -> Result<Ingest, IngestError> {
        let listener =
            TcpListener::bind(rtmp.listen)
                .await
                .map_err(|source| IngestError::RtmpBind {
                    addr: rtmp.listen,
                    source,
                })?;
        let rtmp_addr = listener.local_addr().map_err(IngestError::RtmpSocket)?;
        let listener = listener.into_std().map_err(IngestError::RtmpSocket)?;
        let rtmps = match rtmps {
            Some(tls) => {
                let addr = tls.listen;
                let bound = TcpListener::bind(addr)
                    .await
                    .map_err(|source| IngestError::RtmpsBind { addr, source })?;
                let local = bound.local_addr().map_err(IngestError::RtmpsSocket)?;
                let bound = bound.into_std().map_err(IngestError::RtmpsSocket)?;
                Some((bound, local, Arc::new(tls)))
            }
            None => None,
        };
        let rtmps_addr = rtmps.as_ref().map(|(_, addr, _)| *addr);
        let srt = match srt {
            Some(settings) => {
                let settings = Arc::new(settings);
                let (listener, connections, hooked) = SrtListener::bind(&settings, &ctx)
                    .map_err(|e| IngestError::Srt(e.to_string()))?;
                Some((listener, connections, hooked, settings))
            }
            None => None,
        };
        let srt_addr = srt.as_ref().map(|(listener, ..)| listener.local_addr);
        let tasks = TaskTracker::new();
        let tracker = tasks.clone();
        let rtmp = Arc::new(rtmp.settings());
        let thread = std::thread::Builder::new()
            .name("cuecast-ingest".into())
            .spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(listener)?;
                    let srt_thread = match srt {
                        Some((srt_listener, connections, hooked, settings)) => {
                            let (ctx, handle) =
                                (Arc::clone(&ctx), tokio::runtime::Handle::current());
                            let (tracker, stop) = (tracker.clone(), shutdown.clone());
                            Some(
                                std::thread::Builder::new()
                                    .name("cuecast-srt".into())
                                    .spawn(move || {
                                        srt_server::run(
                                            srt_listener,
                                            connections,
                                            hooked,
                                            settings,
                                            ctx,
                                            handle,
                                            tracker,
                                            stop,
                                        );
                                    })?,
                            )
                        }
                        None => None,
                    };
                    let accept_tls = match rtmps {
                        Some((listener, _, tls)) => Some(tracker.spawn(rtmp_server::serve(
                            TcpListener::from_std(listener)?,
                            Arc::clone(&rtmp),
                            Some(tls),
                            Arc::clone(&ctx),
                            shutdown.clone(),
                            tracker.clone(),
                        ))),
                        None => None,
                    };
                    let accept = tracker.spawn(rtmp_server::serve(
                        listener,
                        rtmp,
                        None,
                        ctx,
                        shutdown,
                        tracker.clone(),
                    ));
                    let _ = accept.await;
                    if let Some(accept_tls) = accept_tls {
                        let _ = accept_tls.await;
                    }
                    if let Some(thread) = srt_thread {
                        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                    }
                    // Drive the connections (and their pipelines' bus watchers) to the end.
                    tracker.wait().await;
                    // Give pipelines a moment to drain after their publishers left.
                    tokio::time::sleep(INGEST_DRAIN).await;
                    Ok(())
                })
            })
            .map_err(IngestError::Thread)?;
        Ok(Ingest {
            rtmp_addr,
            rtmps_addr,
            srt_addr,
            tasks,
            thread,
        })
    }

    /// Logs how to publish to this server (and where the result plays, from `http_addr`).
    pub fn log_publish_urls(&self, app: &str, http_addr: SocketAddr) {
        if let Some(addr) = self.srt_addr {
            tracing::info!(
                "publish over SRT: srt://HOST:{}?streamid=publish:{app}/<key> (or #!::r={app}/<key>,m=publish)",
                addr.port(),
            );
        }
        if let Some(addr) = self.rtmps_addr {
            tracing::info!(
                "publish over TLS: rtmps://HOST:{}/{app} with a stream key",
                addr.port()
            );
        }
        tracing::info!(
            "publish: rtmp://HOST:{}/{app} with a stream key; play: http://HOST:{}/hls/<stream>/index.m3u8",
            self.rtmp_addr.port(),
            http_addr.port()
        );
    }

    /// After `shutdown` was cancelled: waits until every connection has closed, or `deadline`.
    pub async fn drain(&self, deadline: tokio::time::Instant) {
        self.tasks.close();
        if tokio::time::timeout_at(deadline, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ingest connections did not close within the grace period");
        }
    }

    /// Reports how the ingest runtime ended, if it has (it is not waited for).
    pub fn finish(self) {
        if self.thread.is_finished()
            && let Ok(Err(err)) = self.thread.join()
        {
            tracing::warn!(error = %err, "ingest runtime failed");
        }
    }
}
