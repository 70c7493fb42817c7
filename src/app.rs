//! Builds every feature from its config, runs them, and owns shutdown.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;

use crate::chat::ChatService;
use crate::cluster::Cluster;
use crate::cluster::edge::Edge;
use crate::cluster::lease::Leases;
use crate::commerce::events::Events;
use crate::commerce::recommend::Recommender;
use crate::commerce::shop::start_events;
use crate::commerce::shows::Shows;
use crate::commerce::{Catalog, ProductLookup};
use crate::config::Config;
use crate::cues::service::CueService;
use crate::hls::recording::{Recorder, ShowOf};
use crate::hls::registry::Registry;
use crate::http::{self, ApiState};
use crate::ingest::{HostKeys, Ingest, LiveSet, StreamConfig};
use crate::media;
use crate::metrics::Metrics;
use crate::setting::{secs, secs_or_zero};
use crate::store::Store;
use crate::users::Users;
use crate::webhooks::Webhooks;
use crate::webhooks::admission::AdmissionHook;

/// Interval of the sweep that drops ended streams past their retention.
const SWEEP_INTERVAL: Duration = Duration::from_secs(10);
/// How long HTTP keeps serving after every playlist got EXT-X-ENDLIST at shutdown.
const ENDLIST_LINGER: Duration = Duration::from_secs(1);

/// How long shutdown waits for webhook attempts in flight.
const WEBHOOKS_LINGER: Duration = Duration::from_secs(1);

/// A started server.
pub struct App {
    /// Where RTMP listens.
    pub rtmp_addr: SocketAddr,
    /// Where RTMPS listens, when enabled.
    pub rtmps_addr: Option<SocketAddr>,
    /// Where HTTP listens.
    pub http_addr: SocketAddr,
    /// Where SRT listens (UDP), when enabled.
    pub srt_addr: Option<SocketAddr>,
    /// Where the chat QUIC endpoint listens.
    pub chat_addr: Option<SocketAddr>,
    chat: Option<Arc<ChatService>>,
    shutdown: CancellationToken,
    ingest: Ingest,
    registry: Arc<Registry>,
    http: http::Server,
    store: Store,
    cues: Arc<CueService>,
    shows: Arc<Shows>,
    events: Arc<Events>,
    recordings: Option<Arc<Recorder>>,
    recommend: Arc<Recommender>,
    webhooks: Arc<Webhooks>,
    grace: Duration,
}

impl App {
    /// Validates templates, binds the listeners and starts serving.
    pub async fn start(config: Config) -> anyhow::Result<App> {
        media::init()?;
        let admin_token = config.api.admin_token();
        let keys = Arc::new(StreamConfig::keys(&config.streams));
        let data_dir = &config.server.data_dir;
        std::fs::create_dir_all(data_dir)
            .with_context(|| format!("server.data_dir: cannot create {}", data_dir.display()))?;
        let store = Store::connect(&config.store, data_dir).await?;
        let shutdown = CancellationToken::new();
        // Clustered: Redis must answer now (the error names it and the process exits non-zero);
        // later outages are ridden out (the connection manager reconnects).
        let cluster = match config.cluster.settings()? {
            Some(settings) => Some(Cluster::connect(settings).await.context("cluster")?),
            None => None,
        };
        let leases = match &cluster {
            Some(cluster) => {
                let leases = Leases::new(cluster.clone());
                leases.spawn_renewal(shutdown.clone());
                Some(leases)
            }
            None => None,
        };
        let edge = match &leases {
            Some(leases) => Some(Arc::new(
                Edge::new(Arc::clone(leases)).context("cluster: HTTP client")?,
            )),
            None => None,
        };
        let metrics = Arc::new(Metrics::default());
        let media = config
            .media
            .settings(&config.hls.packager(), Arc::clone(&metrics))?;
        let registry = Arc::new(config.hls.registry());
        let catalog = Catalog::open(store.pool().clone(), config.catalog.clone())
            .await
            .context("catalog")?;
        let products: Arc<dyn ProductLookup> = catalog.clone();
        let cues = CueService::start(
            store.pool().clone(),
            config.cues.clone(),
            Arc::clone(&registry),
            Arc::clone(&products),
        )
        .await?;
        let shows = Shows::start(
            store.pool().clone(),
            config.shows.clone(),
            Arc::clone(&registry),
            Arc::clone(keys.directory()),
            Arc::clone(&products),
            secs_or_zero(config.ingest.reconnect_grace_s),
        )
        .await
        .context("shows")?;
        let recordings = start_recordings(&config, &store, &registry, &shows, &shutdown)
            .await
            .context("recordings")?;
        let webhooks = Webhooks::start(config.webhooks.settings()?);
        registry.set_lifecycle(Arc::clone(&webhooks) as _);
        shows.set_webhooks(Arc::clone(&webhooks));
        cues.set_webhooks(Arc::clone(&webhooks));
        if let Some(recorder) = &recordings {
            recorder.set_observer(Arc::clone(&webhooks) as _);
        }
        let live = Arc::new(LiveSet::default());
        let host_keys = HostKeys::open(store.pool().clone(), Arc::clone(&keys), Arc::clone(&live))
            .await
            .context("stream keys")?;
        let origin = Arc::new(config.hls.origin(Arc::clone(&registry)));
        let http_listener = config.http.bind().await?;

        let srt = config
            .srt
            .settings(&config.rtmp.app, &config.streams, config.ingest.takeover);
        let mut ctx = config.ingest.context(
            Arc::clone(&keys),
            Arc::clone(&live),
            Arc::clone(&registry),
            Arc::new(media),
            Arc::clone(&metrics),
        );
        let rtmps = config.rtmps.settings(chrono::Utc::now().timestamp())?;
        ctx.admission = config
            .webhooks
            .admission()?
            .map(|settings| Arc::new(AdmissionHook::new(settings)));
        ctx.leases = leases;
        let ctx = Arc::new(ctx);
        let ingest = Ingest::start(&config.rtmp, rtmps, srt, ctx, shutdown.clone()).await?;
        spawn_sweep(Arc::clone(&registry), shutdown.clone());
        if let Some(every) = config.server.heap_trim_interval() {
            spawn_heap_trim(every, shutdown.clone());
        }

        let users = Users::open(store.clone(), config.users.settings());
        let users = Arc::new(users.await.context("user accounts")?);
        let chat = if config.chat.enabled {
            let chat = ChatService::start(
                &config.chat,
                Arc::clone(keys.directory()),
                Arc::clone(&registry),
                store.clone(),
                Arc::clone(&users),
                products,
                cluster.clone(),
            );
            Some(Arc::new(chat.await?))
        } else {
            None
        };
        let recommend = Recommender::start(
            store.pool(),
            config.recommend.clone(),
            Arc::clone(&catalog),
            Arc::clone(&shows),
        );
        let recommend = recommend.await.context("recommendations")?;
        let half_life = config.catalog.popularity_half_life_s;
        let events = start_events(
            store.pool(),
            config.events.settings(),
            &shows,
            &catalog,
            half_life,
            recommend.clone(),
        );
        let events = events.await.context("shopper events")?;
        follow_other_nodes(&store, &catalog, &shows, &host_keys, &events).await?;
        let connections = Arc::new(http::Connections::new(config.http.limits()));
        let api = Arc::new(ApiState {
            admin_token,
            keys,
            host_keys,
            ingest: http::keys::IngestPorts {
                app: config.rtmp.app.clone(),
                rtmp: ingest.rtmp_addr.port(),
                rtmps: ingest.rtmps_addr.map(|a| a.port()),
                srt: ingest.srt_addr.map(|a| a.port()),
            },
            live,
            origin,
            metrics,
            store: store.clone(),
            cues: Arc::clone(&cues),
            users,
            chat: chat.clone(),
            shows: Arc::clone(&shows),
            catalog,
            events: http::events::EventsApi::new(Arc::clone(&events)),
            recordings: recordings.clone(),
            recommend: Arc::clone(&recommend),
            webhooks: Arc::clone(&webhooks),
            edge,
            connections: Arc::clone(&connections),
        });
        let router = http::router(api, &config.http.cors_allow_origin, &config.web);
        let http = http::Server::start(http_listener, router, connections)?;

        let (rtmp_addr, http_addr, srt_addr) = (ingest.rtmp_addr, http.addr, ingest.srt_addr);
        tracing::info!(%rtmp_addr, %http_addr, srt_addr = ?srt_addr, "cuecast is serving");
        ingest.log_publish_urls(&config.rtmp.app, http_addr);
        Ok(App {
            rtmp_addr,
            rtmps_addr: ingest.rtmps_addr,
            http_addr,
            srt_addr,
            chat_addr: chat.as_ref().map(|c| c.addr),
            chat,
            shutdown,
            ingest,
            registry,
            http,
            store,
            cues,
            shows,
            events,
            recordings,
            recommend,
            webhooks,
            grace: secs(config.server.shutdown_grace_s),
        })
    }

    /// Graceful shutdown: publishers are told and disconnected, every playlist gets
    /// EXT-X-ENDLIST, then HTTP stops after in-flight requests (bounded by the grace period).
    pub async fn shutdown(self) -> anyhow::Result<()> {
        tracing::info!("shutting down");
        // Before the streams end: a show live now stays live, and the next start gives its
        // stream the reconnect grace.
        self.shows.close().await;
        self.shutdown.cancel();
        let deadline = tokio::time::Instant::now() + self.grace;
        self.ingest.drain(deadline).await;
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
        if let Some(recordings) = &self.recordings {
            // Every session ended: the writers finish their recordings.
            recordings.close().await;
        }
        if let Some(chat) = &self.chat {
            chat.shutdown(Duration::from_secs(1)).await;
        }
        self.ingest.finish();
        // Keep answering a moment so players and CDNs can fetch the final playlists.
        tokio::time::sleep(ENDLIST_LINGER).await;
        self.http.stop(deadline).await?;
        self.cues.close().await;
        self.events.close().await;
        self.recommend.close().await;
        self.webhooks.close(WEBHOOKS_LINGER).await;
        self.store.close().await;
        tracing::info!("stopped");
        Ok(())
    }
}

/// Gives the heap's free memory back to the system every `every` until `shutdown`
/// ([`crate::metrics::heap`]), on a blocking thread (a trim walks every arena).
fn spawn_heap_trim(every: Duration, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval.tick().await;
        loop {
            tokio::select! {
                _ = interval.tick() => {}
                () = shutdown.cancelled() => break,
            }
            let trimmed = tokio::task::spawn_blocking(|| {
                let before = crate::metrics::heap::resident_bytes();
                crate::metrics::heap::trim();
                (before, crate::metrics::heap::resident_bytes())
            })
            .await;
            if let Ok((Some(before), Some(after))) = trimmed {
                tracing::debug!(before, after, "heap trimmed");
            }
        }
    });
}

/// Drops ended streams past their retention, every [`SWEEP_INTERVAL`] until `shutdown`.
fn spawn_sweep(registry: Arc<Registry>, shutdown: CancellationToken) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(SWEEP_INTERVAL);
        loop {
            tokio::select! {
                _ = interval.tick() => registry.sweep(),
                () = shutdown.cancelled() => break,
            }
        }
    });
}

/// Opens the recordings (finishing what a crash left), records every new session of
/// `registry`, names the show of each from `shows`, and runs retention until `shutdown`.
/// `None` when `recordings.enabled = false`.
/// On a shared store (PostgreSQL), keeps what this node holds in memory in step with the other
/// nodes' writes (docs/scaling.md#store); nothing on the embedded store.
async fn follow_other_nodes(
    store: &Store,
    catalog: &Arc<Catalog>,
    shows: &Arc<Shows>,
    host_keys: &Arc<HostKeys>,
    events: &Arc<Events>,
) -> anyhow::Result<()> {
    let subscribe = || store.changes();
    if let Some(changes) = subscribe() {
        catalog.follow(changes);
    }
    if let Some(changes) = subscribe() {
        shows.follow(changes);
    }
    if let Some(changes) = subscribe() {
        host_keys.follow(changes);
    }
    if let Some(changes) = subscribe() {
        events.follow(changes).await.context("shopper events")?;
    }
    Ok(())
}

async fn start_recordings(
    config: &Config,
    store: &Store,
    registry: &Arc<Registry>,
    shows: &Arc<Shows>,
    shutdown: &CancellationToken,
) -> anyhow::Result<Option<Arc<Recorder>>> {
    let settings = &config.recordings;
    if !settings.enabled {
        return Ok(None);
    }
    let packager = config.hls.packager();
    let target = packager.segment_target.as_secs_f64().ceil() as u64;
    let recorder = Recorder::open(
        settings.dir(&config.server.data_dir),
        settings.queue_bytes(),
        target,
        store.pool().clone(),
    )
    .await?;
    recorder.set_shows(Arc::clone(shows) as Arc<dyn ShowOf>);
    registry.set_recorder(Arc::clone(&recorder));
    let (limits, every) = (settings.limits(), settings.retention_interval());
    let (retained, stop) = (Arc::clone(&recorder), shutdown.clone());
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(every);
        loop {
            tokio::select! {
                _ = interval.tick() => {
                    if let Err(err) = retained.apply_retention(limits, chrono::Utc::now()).await {
                        tracing::error!(error = %err, "recordings retention");
                    }
                }
                () = stop.cancelled() => break,
            }
        }
    });
    Ok(Some(recorder))
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
