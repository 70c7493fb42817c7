//! Signed webhooks ([webhooks.md](../../docs/webhooks.md)): events (`stream.started`,
//! `stream.ended`, `show.state_changed`, `cue.fired`, `recording.ready`) POSTed as JSON to the configured endpoints,
//! signed per Standard Webhooks (`sign`, pure), each endpoint fed by its own bounded queue and
//! task (`delivery`), so emitting never blocks ingest or packaging.
//!
//! Features hold a [`Webhooks`] and call [`Webhooks::emit`] where a moment happens; the HLS
//! session events arrive through [`hls::lifecycle::SessionLifecycle`](crate::hls::lifecycle),
//! which [`Webhooks`] implements. This module knows nothing of the features that emit.

pub mod admission;
pub mod config;
pub mod delivery;
pub mod event;
pub mod sign;

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use chrono::Utc;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use config::{Config, EndpointConfig, Settings};
use delivery::{EndpointMetrics, Queue, Sender};
pub use event::{Event, EventKind};

use crate::hls::lifecycle::{SessionEvent, SessionLifecycle};
use crate::hls::recording::{Entry, RecordingObserver};

/// One endpoint as the emitter sees it.
struct Target {
    host: String,
    wants: Vec<EventKind>,
    queue: Arc<Queue>,
    metrics: Arc<EndpointMetrics>,
}

/// The webhook sender: cheap to emit into from any thread; clone the `Arc` to share.
pub struct Webhooks {
    targets: Vec<Target>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

impl Webhooks {
    /// Starts one delivery task per endpoint of `settings` (none = emitting does nothing).
    pub fn start(settings: Settings) -> Arc<Webhooks> {
        let stop = CancellationToken::new();
        let tasks = TaskTracker::new();
        let client = delivery::client(settings.timeout, settings.allow_private);
        let mut targets = Vec::with_capacity(settings.endpoints.len());
        for (index, endpoint) in settings.endpoints.into_iter().enumerate() {
            let queue = Arc::new(Queue::new(settings.queue_capacity));
            let metrics = Arc::new(EndpointMetrics::default());
            targets.push(Target {
                host: endpoint.url.host_str().unwrap_or_default().to_string(),
                wants: endpoint.events.clone(),
                queue: Arc::clone(&queue),
                metrics: Arc::clone(&metrics),
            });
            let sender = Sender {
                index,
                endpoint,
                queue,
                metrics,
                backoff: settings.backoff,
                client: client.clone(),
            };
            tasks.spawn(sender.run(stop.clone()));
        }
        tasks.close();
        Arc::new(Webhooks {
            targets,
            stop,
            tasks,
        })
    }

    /// A sender with no endpoint (tests, features built without webhooks).
    pub fn none() -> Arc<Webhooks> {
        Arc::new(Webhooks {
            targets: Vec::new(),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        })
    }

    /// Queues an event of `kind` with `data` for every endpoint that wants it; never waits.
    pub fn emit(&self, kind: EventKind, data: Value) {
        if self.targets.is_empty() {
            return;
        }
        let event = Arc::new(Event::new(kind, Utc::now(), data));
        for (index, target) in self.targets.iter().enumerate() {
            if !(target.wants.is_empty() || target.wants.contains(&kind)) {
                continue;
            }
            if let Some(dropped) = target.queue.push(Arc::clone(&event)) {
                target.metrics.dropped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(endpoint = index, event = %dropped.id, kind = dropped.kind.as_str(), "webhook queue full: oldest event dropped");
            }
        }
    }

    /// Stops the delivery tasks (shutdown); waits at most `grace` for attempts in flight.
    pub async fn close(&self, grace: std::time::Duration) {
        self.stop.cancel();
        let _ = tokio::time::timeout(grace, self.tasks.wait()).await;
    }

    /// Prometheus text for `GET /metrics` (labels: the endpoint's index and host, bounded by
    /// the config).
    pub fn render_metrics(&self) -> String {
        let mut out = String::new();
        let load = |counter: &std::sync::atomic::AtomicU64| counter.load(Ordering::Relaxed);
        let labels = |index: usize, target: &Target| {
            format!("endpoint=\"{index}\",host=\"{}\"", target.host)
        };
        let name = "cuecast_webhook_deliveries_total";
        let _ = writeln!(
            out,
            "# HELP {name} Webhook events by endpoint and result: delivered (2xx) or given_up (after max_attempts).\n# TYPE {name} counter"
        );
        for (index, target) in self.targets.iter().enumerate() {
            let m = &target.metrics;
            for (result, n) in [
                ("delivered", load(&m.delivered)),
                ("given_up", load(&m.given_up)),
            ] {
                let _ = writeln!(
                    out,
                    "{name}{{{},result=\"{result}\"}} {n}",
                    labels(index, target)
                );
            }
        }
        let simple: [(&str, &str, Counter); 2] = [
            (
                "cuecast_webhook_failed_attempts_total",
                "Webhook delivery attempts that failed (error, timeout, non-2xx); retried until max_attempts.",
                |m| &m.failed_attempts,
            ),
            (
                "cuecast_webhook_queue_dropped_total",
                "Webhook events dropped because the endpoint's queue was full (oldest first).",
                |m| &m.dropped,
            ),
        ];
        for (name, help, counter) in simple {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (index, target) in self.targets.iter().enumerate() {
                let n = load(counter(&target.metrics));
                let _ = writeln!(out, "{name}{{{}}} {n}", labels(index, target));
            }
        }
        out
    }
}

/// Picks one counter of an endpoint.
type Counter = fn(&EndpointMetrics) -> &std::sync::atomic::AtomicU64;

impl RecordingObserver for Webhooks {
    fn ready(&self, entry: &Entry) {
        self.emit(
            EventKind::RecordingReady,
            json!({
                "recording": entry.id,
                "stream": entry.stream,
                "session": entry.session,
                "show": entry.show,
                "duration_s": entry.duration_s,
                "state": entry.state.as_str(),
                "playlist": entry.playlist(),
            }),
        );
    }
}

impl SessionLifecycle for Webhooks {
    fn hold_on_unpublish(&self, _name: &str) -> bool {
        false
    }

    fn on_session(&self, name: &str, session: &str, event: SessionEvent) {
        let kind = match event {
            SessionEvent::Started => EventKind::StreamStarted,
            SessionEvent::Ended => EventKind::StreamEnded,
        };
        self.emit(kind, json!({ "stream": name, "session": session }));
    }
}
