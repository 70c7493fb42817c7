//! The HTTP server's life: bound at startup (a taken port fails the start before anything
//! runs), served on the multi-threaded runtime, stopped gracefully at shutdown.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why the HTTP server could not start, or failed.
#[derive(Debug, thiserror::Error)]
pub enum HttpError {
    /// The listen address could not be bound.
    #[error("http.listen: cannot bind {addr}")]
    Bind {
        /// `http.listen`.
        addr: SocketAddr,
        /// The bind error.
        source: std::io::Error,
    },
    /// The bound socket has no local address.
    #[error("http.listen: cannot read the bound address")]
    LocalAddr(#[source] std::io::Error),
    /// The server stopped with an error.
    #[error("HTTP server")]
    Serve(#[source] std::io::Error),
    /// The server's task panicked or was cancelled.
    #[error("HTTP server task")]
    Task(#[source] tokio::task::JoinError),
}

/// A running HTTP server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

impl Server {
    /// Serves `router` on `listener` until [`Server::stop`].
    pub fn start(listener: TcpListener, router: Router) -> Result<Server, HttpError> {
        let addr = listener.local_addr().map_err(HttpError::LocalAddr)?;
        tracing::info!(target: crate::setting::LISTEN_TARGET, http = %addr, "listening");
        let stop = CancellationToken::new();
        let stopped = stop.clone();
        let task = tokio::spawn(async move {
            // The peer address is the key of per-client limits (`events.rs`).
            let service = router.into_make_service_with_connect_info::<SocketAddr>();
            axum::serve(listener, service)
                .with_graceful_shutdown(async move { stopped.cancelled().await })
                .await
        });
        Ok(Server { addr, task, stop })
    }

    /// Stops accepting and lets requests in flight finish until `deadline` (at least one more
    /// second); requests still running then are logged and left.
    pub async fn stop(self, deadline: Instant) -> Result<(), HttpError> {
        self.stop.cancel();
        let deadline = deadline.max(Instant::now() + Duration::from_secs(1));
        match tokio::time::timeout_at(deadline, self.task).await {
            Ok(Ok(result)) => result.map_err(HttpError::Serve),
            Ok(Err(join)) => Err(HttpError::Task(join)),
            Err(_) => {
                tracing::warn!("HTTP requests still running at the end of the grace period");
                Ok(())
            }
        }
    }
}
