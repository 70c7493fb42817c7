//! Builds every feature from its config, runs them, and owns shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::chat::ChatService;
use crate::config::{Config, DEV_ADMIN_TOKEN, secs};
use crate::cues::service::{AdminToken, CueService, CueSettings};
use crate::hls::origin::{CachePolicy, Origin};
use crate::hls::packager::PackagerConfig;
use crate::hls::registry::Registry;
use crate::http::{self, ApiState};
use crate::ingest::rtmp::SessionConfig;
use crate::ingest::rtmp::server::{self as rtmp_server, RtmpSettings};
use crate::ingest::srt::SrtSettings;
use crate::ingest::srt::server::{self as srt_server, SrtListener};
use crate::ingest::{IngestContext, LiveSet, StreamKeys};
use crate::media::{self, MediaSettings, ladder::Ladder, template::Template};
use crate::metrics::Metrics;
use crate::store::Store;
use crate::users::{Users, UsersSettings};

/// Interval of the sweep that drops ended streams past their retention.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long the ingest runtime keeps running pipelines' bus watchers after the last connection.
const INGEST_DRAIN: Duration = Duration::from_secs(1);
/// How long HTTP keeps serving after every playlist got EXT-X-ENDLIST at shutdown.
const ENDLIST_LINGER: Duration = Duration::from_secs(1);

/// A started server.
pub struct App {
    /// Where RTMP listens.
    pub rtmp_addr: SocketAddr,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Where SRT listens (UDP), when enabled.
    pub srt_addr: Option<SocketAddr>,
    /// Where the chat QUIC endpoint listens.
    pub chat_addr: Option<SocketAddr>,
    chat: Option<Arc<ChatService>>,
    shutdown: CancellationToken,
    ingest_tasks: TaskTracker,
    registry: Arc<Registry>,
    http_task: tokio::task::JoinHandle<std::io::Result<()>>,
    http_shutdown: CancellationToken,
    store: Store,
    cues: Arc<CueService>,
    grace: Duration,
    /// The thread running the ingest runtime.
    ingest_thread: std::thread::JoinHandle<std::io::Result<()>>,
}

impl App {
    /// Validates templates, binds the listeners and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        media::init()?;
        warn_dev_defaults(&config);
        std::fs::create_dir_all(&config.server.data_dir).with_context(|| {
            format!(
                "server.data_dir: cannot create {}",
                config.server.data_dir.display()
            )
        })?;
        let store = Store::open(&config.server.data_dir).await?;

        let segment = secs(config.hls.segment_duration_s);
        let part = secs(config.hls.part_duration_s);
        let values = MediaSettings::placeholder_values(segment, part);
        let template = Template::load(
            &config.media.pipelines_dir,
            &config.media.passthrough_template,
            &values,
        )?;
        let ladder = if config.media.ladder.is_empty() {
            None
        } else {
            Some(Ladder::load(
                &config.media.pipelines_dir,
                &config.media.ladder_template,
                &config.media.rung_template,
                &config.media.ladder,
                &values,
            )?)
        };
        let metrics = Arc::new(Metrics::default());
        let media = Arc::new(MediaSettings {
            template,
            values,
            track_wait_ns: secs(config.media.track_wait_s).as_nanos() as u64,
            metrics: Arc::clone(&metrics),
            ladder,
            source_rung: config.media.source_rung,
            ladder_block: false,
        });

        let registry = Arc::new(Registry::new(
            PackagerConfig {
                segment_target: segment,
                part_target: part,
                window: secs(config.hls.window_s),
            },
            secs(config.hls.ended_retention_s),
        ));
        let cues = CueService::start(
            store.pool().clone(),
            CueSettings {
                rate_per_s: config.cues.rate_per_s,
                rate_burst: config.cues.rate_burst,
                max_payload_bytes: config.cues.max_payload_bytes,
                max_request_bytes: config.cues.max_request_bytes,
                max_rundown_items: config.cues.max_rundown_items,
            },
            Arc::clone(&registry),
            vec![Arc::new(AdminToken(config.api.admin_token.clone()))],
        )
        .await?;
        let keys = StreamKeys::new(&config.streams);
        let live = Arc::new(LiveSet::default());
        let origin = Arc::new(Origin {
            registry: Arc::clone(&registry),
            cache: CachePolicy {
                segment_max_age: Duration::from_secs(config.hls.segment_max_age_s),
                multivariant_max_age: Duration::from_secs(config.hls.multivariant_max_age_s),
                playlist_max_age: Duration::from_secs(config.hls.playlist_max_age_s),
                blocking_playlist_max_age: Duration::from_secs(
                    config.hls.blocking_playlist_max_age_s,
                ),
            },
            low_latency: config.hls.low_latency,
            held_requests: Default::default(),
        });

        let rtmp_listener = TcpListener::bind(config.rtmp.listen)
            .await
            .with_context(|| format!("rtmp.listen: cannot bind {}", config.rtmp.listen))?;
        let http_listener = TcpListener::bind(config.http.listen)
            .await
            .with_context(|| format!("http.listen: cannot bind {}", config.http.listen))?;
        let rtmp_addr = rtmp_listener.local_addr()?;
        let http_addr = http_listener.local_addr()?;
        tracing::info!(http = %http_addr, "listening");

        let shutdown = CancellationToken::new();
        let ingest_tasks = TaskTracker::new();
        let ctx = Arc::new(IngestContext {
            keys: keys.clone(),
            live: Arc::clone(&live),
            registry: Arc::clone(&registry),
            media,
            metrics: Arc::clone(&metrics),
            reconnect_grace: secs_or_zero(config.ingest.reconnect_grace_s),
            takeover: config.ingest.takeover,
        });
        let srt = if config.srt.enabled {
            let settings = Arc::new(SrtSettings {
                listen: config.srt.listen,
                app: config.rtmp.app.clone(),
                latency_ms: config.srt.latency_ms,
                passphrase: (!config.srt.passphrase.is_empty())
                    .then(|| config.srt.passphrase.clone()),
                pbkeylen: config.srt.pbkeylen,
                stream_passphrases: SrtSettings::stream_passphrases(&config.streams),
                idle_timeout: secs(config.srt.idle_timeout_s),
                max_connections: config.srt.max_connections,
                takeover: config.ingest.takeover,
                read_batch: (config.srt.read_batch_ms > 0)
                    .then(|| Duration::from_millis(config.srt.read_batch_ms)),
            });
            let (listener, connections) = SrtListener::bind(&settings, &ctx)
                .map_err(|e| anyhow::anyhow!("srt.listen: {e}"))?;
            Some((listener, connections, settings))
        } else {
            None
        };
        let srt_addr = srt.as_ref().map(|(listener, ..)| listener.local_addr);
        let rtmp_settings = Arc::new(RtmpSettings {
            app: config.rtmp.app.clone(),
            session: SessionConfig {
                chunk_size: config.rtmp.chunk_size,
                max_message_size: config.rtmp.max_message_size,
                ..SessionConfig::default()
            },
            idle_timeout: secs(config.rtmp.idle_timeout_s),
            max_connections: config.rtmp.max_connections,
            read_batch: (config.rtmp.read_batch_ms > 0)
                .then(|| Duration::from_millis(config.rtmp.read_batch_ms)),
        });
        // Ingest runs on its own single-threaded runtime: RTMP parsing is light, and one thread
        // for every connection avoids waking a second worker (and a context switch) for every
        // small read from every publisher. HTTP keeps the multi-threaded runtime.
        let rtmp_listener = rtmp_listener.into_std()?;
        let (ingest_shutdown, ingest_tracker) = (shutdown.clone(), ingest_tasks.clone());
        let ingest_thread = std::thread::Builder::new()
            .name("cuecast-ingest".into())
            .spawn(move || -> std::io::Result<()> {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()?;
                runtime.block_on(async move {
                    let listener = TcpListener::from_std(rtmp_listener)?;
                    // SRT: libsrt is blocking/epoll based, so it gets its own thread; its
                    // publications run as tasks on this runtime.
                    let srt_thread = match srt {
                        Some((srt_listener, connections, settings)) => {
                            let (ctx, handle) =
                                (Arc::clone(&ctx), tokio::runtime::Handle::current());
                            let (tracker, stop) = (ingest_tracker.clone(), ingest_shutdown.clone());
                            Some(
                                std::thread::Builder::new()
                                    .name("cuecast-srt".into())
                                    .spawn(move || {
                                        srt_server::run(
                                            srt_listener,
                                            connections,
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
                    let accept = ingest_tracker.spawn(rtmp_server::serve(
                        listener,
                        rtmp_settings,
                        ctx,
                        ingest_shutdown,
                        ingest_tracker.clone(),
                    ));
                    let _ = accept.await;
                    if let Some(thread) = srt_thread {
                        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
                    }
                    // Drive the connections (and their pipelines' bus watchers) to the end.
                    ingest_tracker.wait().await;
                    // Give pipelines a moment to drain after their publishers left.
                    tokio::time::sleep(INGEST_DRAIN).await;
                    Ok(())
                })
            })
            .context("cannot start the ingest thread")?;

        let sweep_registry = Arc::clone(&registry);
        let sweep_shutdown = shutdown.clone();
        tokio::spawn(async move {
            let mut interval = tokio::time::interval(SWEEP_INTERVAL);
            loop {
                tokio::select! {
                    _ = interval.tick() => sweep_registry.sweep(),
                    () = sweep_shutdown.cancelled() => break,
                }
            }
        });

        let users = Arc::new(
            Users::open(
                store.clone(),
                UsersSettings {
                    token_ttl: Duration::from_secs(config.users.token_ttl_s),
                    signup_enabled: config.users.signup_enabled,
                },
            )
            .await
            .context("user accounts")?,
        );
        let chat = if config.chat.enabled {
            Some(Arc::new(
                ChatService::start(
                    &config.chat,
                    keys.names(),
                    Arc::clone(&registry),
                    store.clone(),
                    Arc::clone(&users),
                )
                .await?,
            ))
        } else {
            None
        };
        let api = Arc::new(ApiState {
            admin_token: config.api.admin_token.clone(),
            keys,
            live,
            origin,
            metrics,
            store: store.clone(),
            cues: Arc::clone(&cues),
            users,
            chat: chat.clone(),
        });
        let router = http::router(api, &config.http.cors_allow_origin);
        let http_shutdown = CancellationToken::new();
        let http_stop = http_shutdown.clone();
        let http_task = tokio::spawn(async move {
            axum::serve(http_listener, router)
                .with_graceful_shutdown(async move { http_stop.cancelled().await })
                .await
        });

        tracing::info!(%rtmp_addr, %http_addr, srt_addr = ?srt_addr, "cuecast is serving");
        if let Some(addr) = srt_addr {
            tracing::info!(
                "publish over SRT: srt://HOST:{}?streamid=publish:{}/<key> (or #!::r={}/<key>,m=publish)",
                addr.port(),
                config.rtmp.app,
                config.rtmp.app
            );
        }
        tracing::info!(
            "publish: rtmp://HOST:{}/{} with a stream key; play: http://HOST:{}/hls/<stream>/index.m3u8",
            rtmp_addr.port(),
            config.rtmp.app,
            http_addr.port()
        );
        Ok(App {
            chat_addr: chat.as_ref().map(|c| c.addr),
            chat,
            rtmp_addr,
            http_addr,
            srt_addr,
            shutdown,
            ingest_tasks,
            registry,
            http_task,
            http_shutdown,
            store,
            cues,
            grace: secs(config.server.shutdown_grace_s),
            ingest_thread,
        })
    }

    /// Graceful shutdown: publishers are told and disconnected, every playlist gets
    /// EXT-X-ENDLIST, then HTTP stops after in-flight requests (bounded by the grace period).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        self.shutdown.cancel();
        self.ingest_tasks.close();
        let deadline = tokio::time::Instant::now() + self.grace;
        if tokio::time::timeout_at(deadline, self.ingest_tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("ingest connections did not close within the grace period");
        }
        // Let pipelines drain their last chunk, then end whatever is left.
        while tokio::time::Instant::now() < deadline
            && self
                .registry
                .list()
                .iter()
                .any(|s| !s.is_ended() && s.interrupted_at().is_none())
        {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.registry.end_all();
        if let Some(chat) = &self.chat {
            chat.shutdown(Duration::from_secs(1)).await;
        }
        if self.ingest_thread.is_finished()
            && let Ok(Err(err)) = self.ingest_thread.join()
        {
            tracing::warn!(error = %err, "ingest runtime failed");
        }
        // Keep answering a moment so players and CDNs can fetch the final playlists.
        tokio::time::sleep(ENDLIST_LINGER).await;
        self.http_shutdown.cancel();
        match tokio::time::timeout_at(
            deadline.max(tokio::time::Instant::now() + Duration::from_secs(1)),
            self.http_task,
        )
        .await
        {
            Ok(Ok(result)) => result.context("HTTP server")?,
            Ok(Err(join)) => return Err(join).context("HTTP server task"),
            Err(_) => tracing::warn!("HTTP requests still running at the end of the grace period"),
        }
        self.cues.close().await;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Seconds from config that may be zero (validated finite and non-negative at load).
fn secs_or_zero(value: f64) -> Duration {
    Duration::try_from_secs_f64(value).unwrap_or(Duration::ZERO)
}

fn warn_dev_defaults(config: &Config) {
    if config.api.admin_token == DEV_ADMIN_TOKEN {
        tracing::warn!(
            "api.admin_token is the public development default; set your own before exposing this server"
        );
    }
    for stream in &config.streams {
        if stream.key == "demo-key" {
            tracing::warn!(stream = %stream.name, "stream key `demo-key` is the public development default");
        }
    }
}

/// Resolves on SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
