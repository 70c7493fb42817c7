//! The HTTP server's life: bound at startup (a taken port fails the start before anything
//! runs), served on the multi-threaded runtime, stopped gracefully at shutdown.
//!
//! Every accepted socket is admitted first ([`Connections::admit`]): beyond
//! `http.max_connections_per_ip` from one address or `http.max_connections` in total it gets a
//! one-line `503` and is closed, counted in `cuecast_http_connections_refused_total`. Admitted
//! sockets are served by hyper's HTTP/1 connection with a header-read timeout (a client that has
//! not sent a whole request head within `http.header_read_timeout_s` is disconnected: slowloris)
//! and a head size limit (`http.max_header_bytes`, beyond it `431`).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

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

/// The connection limits (`[http]`).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Time a client has to send a whole request head (request line and headers).
    pub header_read_timeout: Duration,
    /// Largest request head, bytes (request line and headers).
    pub max_header_bytes: usize,
    /// Open connections from one IP address.
    pub max_connections_per_ip: usize,
    /// Open connections in total.
    pub max_connections: usize,
}

/// Why a connection was refused at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address has `max_connections_per_ip` open.
    PerIp,
    /// The server has `max_connections` open.
    Total,
}

/// Open connections per IP and in total, and the counters of `/metrics`.
pub struct Connections {
    limits: Limits,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    open: AtomicUsize,
    accepted: AtomicU64,
    refused_per_ip: AtomicU64,
    refused_total: AtomicU64,
    header_timeouts: AtomicU64,
    header_too_large: AtomicU64,
}

/// An admitted connection: counted per IP and in total until dropped.
pub struct Admission {
    connections: Arc<Connections>,
    ip: IpAddr,
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.connections.open.fetch_sub(1, Ordering::Relaxed);
        let mut map = self
            .connections
            .per_ip
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(count) = map.get_mut(&self.ip) {
            *count -= 1;
            if *count == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

impl Connections {
    /// No connection open yet.
    pub fn new(limits: Limits) -> Connections {
        Connections {
            limits,
            per_ip: Mutex::default(),
            open: AtomicUsize::new(0),
            accepted: AtomicU64::new(0),
            refused_per_ip: AtomicU64::new(0),
            refused_total: AtomicU64::new(0),
            header_timeouts: AtomicU64::new(0),
            header_too_large: AtomicU64::new(0),
        }
    }

    /// The limits.
    pub fn limits(&self) -> Limits {
        self.limits
    }

    /// Counts a connection from `ip`, or says (and counts) why it is refused.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Admission, Refusal> {
        let mut map = self.per_ip.lock().unwrap_or_else(|e| e.into_inner());
        let refusal = if self.open.load(Ordering::Relaxed) >= self.limits.max_connections {
            Some(Refusal::Total)
        } else if map.get(&ip).copied().unwrap_or(0) >= self.limits.max_connections_per_ip {
            Some(Refusal::PerIp)
        } else {
            None
        };
        match refusal {
            Some(Refusal::Total) => {
                self.refused_total.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::Total)
            }
            Some(Refusal::PerIp) => {
                self.refused_per_ip.fetch_add(1, Ordering::Relaxed);
                Err(Refusal::PerIp)
            }
            None => {
                *map.entry(ip).or_insert(0) += 1;
                self.open.fetch_add(1, Ordering::Relaxed);
                self.accepted.fetch_add(1, Ordering::Relaxed);
                Ok(Admission {
                    connections: Arc::clone(self),
                    ip,
                })
            }
        }
    }

    /// Connections open now.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Counts how a served connection ended, when it ended on one of the limits.
    fn ended(&self, error: &hyper::Error) {
        if error.is_timeout() {
            self.header_timeouts.fetch_add(1, Ordering::Relaxed);
        } else if error.is_parse_too_large() {
            self.header_too_large.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus lines.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let counter = |out: &mut String, name: &str, help: &str, lines: &[(&str, u64)]| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in lines {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        let load = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter(
            &mut out,
            "cuecast_http_connections_total",
            "HTTP connections admitted.",
            &[("", load(&self.accepted))],
        );
        counter(
            &mut out,
            "cuecast_http_connections_refused_total",
            "HTTP connections refused at accept (503), by the limit reached.",
            &[
                ("{limit=\"per_ip\"}", load(&self.refused_per_ip)),
                ("{limit=\"total\"}", load(&self.refused_total)),
            ],
        );
        counter(
            &mut out,
            "cuecast_http_connections_closed_total",
            "HTTP connections closed on a request-head limit (header read timeout, head too large).",
            &[
                ("{reason=\"header_timeout\"}", load(&self.header_timeouts)),
                (
                    "{reason=\"header_too_large\"}",
                    load(&self.header_too_large),
                ),
            ],
        );
        let _ = writeln!(
            out,
            "# HELP cuecast_http_open_connections HTTP connections open.\n\
             # TYPE cuecast_http_open_connections gauge\n\
             cuecast_http_open_connections {}",
            self.open()
        );
        out
    }
}

/// What a refused connection reads before it is closed.
const REFUSED: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\n\
retry-after: 1\r\nconnection: close\r\ncontent-length: 40\r\n\r\n{\"error\":\"too many connections, retry\"}\n";

/// How long a refused connection may take to read its 503.
const REFUSED_LINGER: Duration = Duration::from_secs(2);

/// Least time between two log lines about refused connections.
const REFUSAL_LOG_EVERY: Duration = Duration::from_secs(10);

/// After an accept error (out of file descriptors), the pause before accepting again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// A running HTTP server.
pub struct Server {
    /// Where it listens.
    pub addr: SocketAddr,
    task: JoinHandle<std::io::Result<()>>,
    stop: CancellationToken,
}

impl Server {
    /// Serves `router` on `listener` until [`Server::stop`], admitting connections through
    /// `connections`.
    pub fn start(
        listener: TcpListener,
        router: Router,
        connections: Arc<Connections>,
    ) -> Result<Server, HttpError> {
        let addr = listener.local_addr().map_err(HttpError::LocalAddr)?;
        tracing::info!(target: crate::setting::LISTEN_TARGET, http = %addr, "listening");
        let stop = CancellationToken::new();
        let task = tokio::spawn(accept_loop(listener, router, connections, stop.clone()));
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

/// Accepts until `stop`, then waits for the connections to finish their requests.
async fn accept_loop(
    listener: TcpListener,
    router: Router,
    connections: Arc<Connections>,
    stop: CancellationToken,
) -> std::io::Result<()> {
    let tracker = TaskTracker::new();
    let mut refused_unlogged = 0u64;
    let mut last_refusal_log: Option<Instant> = None;
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = stop.cancelled() => break,
        };
        let (tcp, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // EMFILE/ENFILE and aborted handshakes: the listener itself is fine.
                tracing::debug!(error = %err, "HTTP accept failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
                continue;
            }
        };
        match connections.admit(peer.ip()) {
            Ok(admission) => {
                let router = router.clone();
                let stop = stop.clone();
                let connections = Arc::clone(&connections);
                tracker.spawn(async move {
                    serve_connection(tcp, peer, router, &connections, stop).await;
                    drop(admission);
                });
            }
            Err(refusal) => {
                // One line per REFUSAL_LOG_EVERY at most: a flood must not become a log flood.
                refused_unlogged += 1;
                if last_refusal_log.is_none_or(|at| at.elapsed() >= REFUSAL_LOG_EVERY) {
                    tracing::warn!(
                        %peer,
                        ?refusal,
                        refused = refused_unlogged,
                        "HTTP connection limit reached; connections refused with 503 since the last line"
                    );
                    refused_unlogged = 0;
                    last_refusal_log = Some(Instant::now());
                }
                tokio::spawn(refuse(tcp));
            }
        }
    }
    drop(listener);
    tracker.close();
    tracker.wait().await;
    Ok(())
}

/// Answers 503 on a refused socket and closes it (reading what the client sent meanwhile, so
/// the close is not a reset that would drop the answer).
async fn refuse(mut tcp: TcpStream) {
    let _ = tcp.set_nodelay(true);
    let _ = tokio::time::timeout(REFUSED_LINGER, async {
        tcp.write_all(REFUSED).await?;
        tcp.shutdown().await?;
        let mut sink = [0u8; 1024];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, std::io::Error>(())
    })
    .await;
}

/// Serves one admitted connection until it closes (or, after `stop`, until its request in
/// flight is answered).
async fn serve_connection(
    tcp: TcpStream,
    peer: SocketAddr,
    router: Router,
    connections: &Connections,
    stop: CancellationToken,
) {
    let _ = tcp.set_nodelay(true);
    let limits = connections.limits();
    let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
        // The peer address is the key of per-client limits (`events.rs`).
        request.extensions_mut().insert(ConnectInfo(peer));
        let mut router = router.clone();
        tower_service::Service::call(&mut router, request.map(Body::new))
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        .max_header_size(limits.max_header_bytes)
        // The read buffer only ever holds a head (bodies stream through); the floor is hyper's.
        .max_buf_size(limits.max_header_bytes.max(8192) + 8192);
    let conn = builder
        .serve_connection(TokioIo::new(tcp), service)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        result = conn.as_mut() => result,
        () = stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            conn.as_mut().await
        }
    };
    if let Err(err) = result {
        tracing::debug!(%peer, error = %err, "HTTP connection ended");
        connections.ended(&err);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_ip: usize, total: usize) -> Limits {
        Limits {
            header_read_timeout: Duration::from_secs(1),
            max_header_bytes: 16384,
            max_connections_per_ip: per_ip,
            max_connections: total,
        }
    }

    #[test]
    fn admission_counts_per_ip_and_in_total_and_releases_on_drop() {
        let connections = Arc::new(Connections::new(limits(2, 3)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let first = connections.admit(a).unwrap();
        let _second = connections.admit(a).unwrap();
        assert_eq!(connections.admit(a).err(), Some(Refusal::PerIp));
        let _third = connections.admit(b).unwrap();
        assert_eq!(connections.admit(b).err(), Some(Refusal::Total));
        assert_eq!(connections.open(), 3);
        drop(first);
        assert_eq!(connections.open(), 2);
        let _again = connections.admit(a).unwrap();
        let text = connections.render();
        assert!(text.contains("cuecast_http_connections_refused_total{limit=\"per_ip\"} 1"));
        assert!(text.contains("cuecast_http_connections_refused_total{limit=\"total\"} 1"));
        assert!(text.contains("cuecast_http_connections_total 4"));
        assert!(text.contains("cuecast_http_open_connections 3"));
    }

    #[test]
    fn a_refused_ip_leaves_no_entry_behind() {
        let connections = Arc::new(Connections::new(limits(1, 1)));
        let a: IpAddr = "10.0.0.1".parse().unwrap();
        let b: IpAddr = "10.0.0.2".parse().unwrap();
        let held = connections.admit(a).unwrap();
        assert!(connections.admit(b).is_err());
        drop(held);
        assert!(connections.per_ip.lock().unwrap().is_empty());
    }
}
