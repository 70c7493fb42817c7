//! Live chat over QUIC: one quinn endpoint serving the native protocol (ALPN `cuecast-chat/1`)
//! and WebTransport (ALPN `h3`), login-gated posting, host links and product cards, moderation,
//! and history persisted with the stream's media time. Protocol: `docs/chat-protocol.md`.
//!
//! Sans-IO parts: [`proto`] (frames, messages, codes), [`room`] (a room's rules and state),
//! [`links`] (link policy), [`export`] (CSV of a show's chat), [`cert`] rotation state, [`bus`]
//! (a room's events between nodes), [`presence`] (a room's members counted across nodes).
//! IO: [`hub`] (fan-out, persistence), [`fanout`] (rooms over Redis in cluster mode),
//! [`session`] (one client's session over any transport: admission, hello, requests),
//! [`server`] (QUIC driver), [`review`] (HTTP hook), [`client`] (the `cuecast chat` CLI).

pub mod bus;
pub mod cert;
pub mod client;
mod config;
pub mod export;
pub mod fanout;
pub mod history;
pub mod hub;
pub mod links;
pub mod metrics;
pub mod presence;
pub mod proto;
pub mod review;
pub mod room;
pub mod server;
pub mod session;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::commerce::ProductLookup;
use crate::hls::registry::Registry;
use crate::store::Store;
use crate::users::Users;
use cert::{CertSource, DevCerts};
use fanout::RedisBus;
use hub::Hub;
use metrics::ChatMetrics;
use review::Review;
use session::Sessions;

pub use config::Config;

/// How often the development certificate's rotation is checked.
const CERT_CHECK: Duration = Duration::from_secs(60);

/// The running chat service.
pub struct ChatService {
    /// Where the QUIC endpoint listens.
    pub addr: SocketAddr,
    /// Certificates served and published.
    pub certs: Arc<CertSource>,
    /// Rooms.
    pub hub: Arc<Hub>,
    /// Client sessions over any transport (QUIC here, WebSocket on the HTTP port).
    pub sessions: Arc<Sessions>,
    shutdown: CancellationToken,
    tasks: TaskTracker,
}

impl ChatService {
    /// Binds the endpoint and starts serving.
    pub async fn start(
        config: &Config,
        rooms: Arc<crate::hls::directory::StreamDirectory>,
        registry: Arc<Registry>,
        store: Store,
        users: Arc<Users>,
        products: Arc<dyn ProductLookup>,
        cluster: Option<crate::cluster::Cluster>,
    ) -> anyhow::Result<ChatService> {
        let now = chrono::Utc::now().timestamp();
        let certs = if config.cert_file.as_os_str().is_empty() {
            let validity = Duration::from_secs(config.dev_cert_validity_days * 86_400);
            CertSource::Dev(std::sync::RwLock::new(
                DevCerts::new(config.dev_cert_names.clone(), validity, now)
                    .context("chat development certificate")?,
            ))
        } else {
            CertSource::Static(
                crate::tls::load(&config.cert_file, &config.key_file)
                    .context("chat.cert_file / chat.key_file")?,
            )
        };
        let certs = Arc::new(certs);
        let server_settings = config.server_settings();
        let quic = server::server_config(Arc::clone(&certs), &server_settings)?;
        let buffer = config.socket_buffer_bytes;
        let endpoint = match server::bind(config.listen, quic.clone(), buffer) {
            Ok(endpoint) => endpoint,
            // Hosts without IPv6 cannot bind "[::]": serve IPv4 on the same port instead.
            Err(err) if config.listen.ip() == std::net::Ipv6Addr::UNSPECIFIED => {
                let v4 = SocketAddr::from(([0, 0, 0, 0], config.listen.port()));
                tracing::warn!(error = %err, listen = %config.listen, fallback = %v4, "chat: no IPv6; listening on IPv4 only");
                server::bind(v4, quic, buffer)
                    .with_context(|| format!("chat.listen: cannot bind UDP {v4}"))?
            }
            Err(err) => {
                return Err(err)
                    .with_context(|| format!("chat.listen: cannot bind UDP {}", config.listen));
            }
        };
        let addr = endpoint.local_addr()?;
        tracing::info!(target: crate::setting::LISTEN_TARGET, chat = %addr, "listening");

        let metrics = Arc::new(ChatMetrics::default());
        let (bus, deliveries) = match cluster {
            Some(cluster) => {
                let (bus, deliveries) = RedisBus::new(cluster, Arc::clone(&metrics));
                (Some(bus), Some(deliveries))
            }
            None => (None, None),
        };
        let review = config
            .review_settings()
            .map(|settings| Review::new(settings, Arc::clone(&metrics)));
        let hub = Arc::new(
            Hub::new(
                config.hub_settings(),
                rooms,
                registry,
                store,
                review,
                metrics,
                products,
            )
            .await
            .context("chat history")?
            .with_bus(bus),
        );

        let shutdown = CancellationToken::new();
        let tasks = TaskTracker::new();
        tasks.spawn(Arc::clone(&hub).run_ticker(shutdown.clone()));
        if let Some(deliveries) = deliveries {
            tasks.spawn(Arc::clone(&hub).run_bus(deliveries, shutdown.clone()));
        }
        let (rotate_certs, rotate_stop) = (Arc::clone(&certs), shutdown.clone());
        tasks.spawn(async move {
            let mut interval = tokio::time::interval(CERT_CHECK);
            loop {
                tokio::select! {
                    _ = interval.tick() => {
                        match rotate_certs.tick(chrono::Utc::now().timestamp()) {
                            Ok(true) => tracing::info!(sha256 = %crate::tls::hex(&rotate_certs.current().sha256), "chat development certificate rotated"),
                            Ok(false) => {}
                            Err(err) => tracing::error!(error = %err, "chat certificate rotation failed"),
                        }
                    }
                    () = rotate_stop.cancelled() => break,
                }
            }
        });
        let sessions = Arc::new(Sessions::new(
            Arc::clone(&hub),
            users,
            server_settings,
            shutdown.clone(),
        ));
        tasks.spawn(server::serve(
            endpoint,
            Arc::clone(&sessions),
            tasks.clone(),
        ));
        tracing::info!(
            %addr,
            sha256 = %crate::tls::hex(&certs.current().sha256),
            development_cert = matches!(*certs, CertSource::Dev(_)),
            "chat is serving (ALPN cuecast-chat/1 and WebTransport at {})",
            server::WEBTRANSPORT_PATH
        );
        Ok(ChatService {
            addr,
            certs,
            hub,
            sessions,
            shutdown,
            tasks,
        })
    }

    /// Closes every connection (code SHUTDOWN), then writes the remaining history.
    pub async fn shutdown(&self, grace: Duration) {
        self.shutdown.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("chat connections did not close within the grace period");
        }
        self.hub.close().await;
    }
}
