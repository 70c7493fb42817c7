//! Delivery: one task per endpoint drains that endpoint's bounded queue in order, retrying each
//! event with exponential backoff and jitter ([`Backoff`], pure) until a 2xx answer or the last
//! attempt. Emitting never waits: a full queue drops its oldest event. Redirects are not
//! followed, and every connection re-checks the address a name resolves to ([`GuardedResolver`]).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::{Endpoint, forbidden};
use super::event::Event;

/// The retry schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    /// Delay before the first retry.
    pub initial: Duration,
    /// Longest delay.
    pub max: Duration,
    /// Attempts per event, the first included.
    pub max_attempts: u32,
}

impl Backoff {
    /// The delay after failed attempt `attempt` (1 = the first), or `None` when it was the last.
    /// `jitter` in [0, 1) picks the delay within the upper half of the exponential step
    /// ("equal jitter"), so retries of many senders spread without ever retrying at once.
    pub fn after(&self, attempt: u32, jitter: f64) -> Option<Duration> {
        if attempt >= self.max_attempts {
            return None;
        }
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(30));
        let step = self.initial.saturating_mul(factor).min(self.max);
        let half = step / 2;
        Some(half + half.mul_f64(jitter.clamp(0.0, 1.0)))
    }
}

/// Per-endpoint counters (bounded labels: the endpoint's index and host).
#[derive(Debug, Default)]
pub struct EndpointMetrics {
    /// Deliveries answered 2xx.
    pub delivered: AtomicU64,
    /// Attempts that failed (error, timeout or non-2xx).
    pub failed_attempts: AtomicU64,
    /// Events given up after the last attempt.
    pub given_up: AtomicU64,
    /// Events dropped from a full queue.
    pub dropped: AtomicU64,
}

/// A bounded FIFO that drops its oldest entry when full.
#[derive(Debug)]
pub struct Queue {
    items: Mutex<VecDeque<Arc<Event>>>,
    capacity: usize,
    ready: Notify,
}

impl Queue {
    /// An empty queue of at most `capacity` events.
    pub fn new(capacity: usize) -> Queue {
        Queue {
            items: Mutex::new(VecDeque::new()),
            capacity: capacity.max(1),
            ready: Notify::new(),
        }
    }

    /// Adds `event`; the event dropped to make room, if any.
    pub fn push(&self, event: Arc<Event>) -> Option<Arc<Event>> {
        let dropped = {
            let mut items = self.items.lock().unwrap_or_else(|e| e.into_inner());
            let dropped = if items.len() >= self.capacity {
                items.pop_front()
            } else {
                None
            };
            items.push_back(event);
            dropped
        };
        self.ready.notify_one();
        dropped
    }

    /// The oldest event, if any.
    pub fn pop(&self) -> Option<Arc<Event>> {
        self.items
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pop_front()
    }

    /// Waits for the next event (or `stop`).
    async fn next(&self, stop: &CancellationToken) -> Option<Arc<Event>> {
        loop {
            if let Some(event) = self.pop() {
                return Some(event);
            }
            tokio::select! {
                () = self.ready.notified() => {},
                () = stop.cancelled() => return None,
            }
        }
    }
}

/// Resolves names for the webhook client and refuses forbidden addresses unless allowed, so a
/// name that resolved to a public address at config load cannot later reach a private one.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Private targets allowed.
    pub allow_private: bool,
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|addr| allow_private || !forbidden(addr.ip()))
                .collect();
            if addrs.is_empty() {
                let err = std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    format!(
                        "{host} resolves to no address webhooks may reach (private, loopback or link-local are refused)"
                    ),
                );
                return Err(Box::new(err) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The HTTP client every delivery uses: no redirects, the guarded resolver, `timeout` per
/// attempt.
pub fn client(timeout: Duration, allow_private: bool) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(timeout)
        .redirect(reqwest::redirect::Policy::none())
        .dns_resolver(Arc::new(GuardedResolver { allow_private }))
        .pool_idle_timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_default()
}

/// One endpoint's sender.
pub struct Sender {
    /// Which endpoint (its index in the config), for logs.
    pub index: usize,
    /// Where and how.
    pub endpoint: Endpoint,
    /// Its queue.
    pub queue: Arc<Queue>,
    /// Its counters.
    pub metrics: Arc<EndpointMetrics>,
    /// The retry schedule.
    pub backoff: Backoff,
    /// The client.
    pub client: reqwest::Client,
}

impl Sender {
    /// Delivers queued events in order until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        while let Some(event) = self.queue.next(&stop).await {
            let body = event.body();
            let mut attempt = 1;
            loop {
                match self.attempt(&event, &body).await {
                    Ok(()) => {
                        self.metrics.delivered.fetch_add(1, Ordering::Relaxed);
                        break;
                    }
                    Err(reason) => {
                        self.metrics.failed_attempts.fetch_add(1, Ordering::Relaxed);
                        let Some(delay) = self.backoff.after(attempt, rand::random::<f64>()) else {
                            self.metrics.given_up.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(endpoint = self.index, event = %event.id, kind = event.kind.as_str(), attempt, %reason, "webhook given up");
                            break;
                        };
                        tracing::debug!(endpoint = self.index, event = %event.id, attempt, %reason, retry_in_ms = delay.as_millis() as u64, "webhook attempt failed");
                        tokio::select! {
                            () = tokio::time::sleep(delay) => {},
                            () = stop.cancelled() => return,
                        }
                        attempt += 1;
                    }
                }
            }
        }
    }

    async fn attempt(&self, event: &Event, body: &[u8]) -> Result<(), String> {
        let timestamp = chrono::Utc::now().timestamp();
        let signature = self.endpoint.secret.sign(&event.id, timestamp, body);
        let response = self
            .client
            .post(self.endpoint.url.clone())
            .header("content-type", "application/json")
            .header("user-agent", concat!("cuecast/", env!("CARGO_PKG_VERSION")))
            .header("webhook-id", &event.id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|err| error_chain(&err))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(format!("answered {status}"))
        }
    }
}

/// An error with its causes (reqwest's own message hides the resolver's refusal).
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    use crate::webhooks::event::EventKind;

    /// Shops' receivers are https: the client speaks TLS (a client built without it refuses the
    /// scheme before connecting, a builder error). Here the peer closes during the handshake.
    #[tokio::test]
    async fn https_targets_are_reached_over_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (socket, _) = listener.accept().await.unwrap();
            drop(socket);
        });
        let client = client(Duration::from_secs(5), true);
        let err = client
            .post(format!("https://127.0.0.1:{port}/hook"))
            .body("{}")
            .send()
            .await
            .expect_err("the peer closes the connection");
        assert!(
            !err.is_builder(),
            "https refused before connecting: {err:?}"
        );
        assert!(err.is_connect() || err.is_request(), "{err:?}");
        server.abort();
    }

    #[test]
    fn backoff_doubles_up_to_the_max_with_jitter_in_the_upper_half() {
        let backoff = Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            max_attempts: 6,
        };
        assert_eq!(backoff.after(1, 0.0), Some(Duration::from_millis(50)));
        assert_eq!(backoff.after(1, 0.999_999).map(|d| d.as_millis()), Some(99));
        assert_eq!(backoff.after(2, 0.0), Some(Duration::from_millis(100)));
        assert_eq!(backoff.after(3, 0.0), Some(Duration::from_millis(200)));
        assert_eq!(
            backoff.after(5, 0.0),
            Some(Duration::from_millis(500)),
            "capped at max"
        );
        assert_eq!(backoff.after(6, 0.5), None, "the last attempt");
        assert_eq!(backoff.after(60, 0.5), None);
    }

    #[test]
    fn a_full_queue_drops_its_oldest() {
        let queue = Queue::new(2);
        let event = |n: i64| Arc::new(Event::new(EventKind::CueFired, Utc::now(), n.into()));
        assert!(queue.push(event(1)).is_none());
        assert!(queue.push(event(2)).is_none());
        let dropped = queue.push(event(3)).unwrap();
        assert_eq!(dropped.data, 1);
        assert_eq!(queue.pop().unwrap().data, 2);
        assert_eq!(queue.pop().unwrap().data, 3);
        assert!(queue.pop().is_none());
    }
}
