//! Watching the pipeline bus: an error ends the stream, end-of-stream (or the drain timeout
//! after it was sent) tears the pipeline down.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use gst::prelude::*;

use crate::hls::stream::HlsStream;
use crate::metrics::Metrics;

/// How long to wait for the pipeline to drain after end-of-stream before tearing it down.
const EOS_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// How often the drain timeout is checked while the bus is quiet.
const POLL_INTERVAL: Duration = Duration::from_millis(500);

/// How the bus watch ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum End {
    /// The pipeline drained: every sink saw end-of-stream.
    Drained,
    /// The pipeline posted an error.
    Failed,
    /// The bus closed, or the pipeline did not drain in time.
    Stopped,
}

/// Watches the pipeline bus: errors end the stream (logged), EOS tears the pipeline down and
/// ends the stream — unless the publish was interrupted (then the stream waits for a
/// reconnect).
pub(super) fn spawn_bus_watch(
    pipeline: gst::Pipeline,
    stream: Arc<HlsStream>,
    failed: Arc<AtomicBool>,
    eos_sent: Arc<AtomicBool>,
    metrics: Arc<Metrics>,
    interrupted: Arc<AtomicBool>,
) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    tokio::spawn(async move {
        let end = watch(&bus, &stream.name, &eos_sent).await;
        if end == End::Failed {
            failed.store(true, Ordering::Release);
        }
        let _ = pipeline.set_state(gst::State::Null);
        if failed.load(Ordering::Acquire) || !interrupted.load(Ordering::Acquire) {
            stream.end();
        } else if end != End::Drained {
            // The sinks never saw EOS: complete what they published.
            stream.interrupt_renditions();
        }
        metrics.remove_stream(&stream.name);
        tracing::info!(stream = %stream.name, "media pipeline stopped");
    });
}

/// Reads `bus` until the pipeline drains, fails or closes, or has not drained
/// [`EOS_DRAIN_TIMEOUT`] after `eos_sent` was set.
async fn watch(bus: &gst::Bus, stream: &str, eos_sent: &AtomicBool) -> End {
    let mut messages = bus.stream();
    let mut draining_since: Option<tokio::time::Instant> = None;
    loop {
        match tokio::time::timeout(POLL_INTERVAL, messages.next()).await {
            Ok(Some(message)) => {
                if let Some(end) = on_message(&message, stream) {
                    return end;
                }
            }
            Ok(None) => return End::Stopped,
            Err(_) => {}
        }
        if eos_sent.load(Ordering::Acquire) {
            let since = *draining_since.get_or_insert_with(tokio::time::Instant::now);
            if since.elapsed() > EOS_DRAIN_TIMEOUT {
                tracing::warn!(stream, "pipeline did not drain in time");
                return End::Stopped;
            }
        }
    }
}

/// Logs `message`; the end it means, if any.
fn on_message(message: &gst::Message, stream: &str) -> Option<End> {
    match message.view() {
        gst::MessageView::Eos(_) => Some(End::Drained),
        gst::MessageView::Error(err) => {
            tracing::error!(
                stream,
                element = %err.src().map(|s| s.path_string().to_string()).unwrap_or_default(),
                error = %err.error(),
                debug = ?err.debug(),
                "media pipeline failed; ending the stream"
            );
            Some(End::Failed)
        }
        gst::MessageView::Warning(w) => {
            tracing::warn!(stream, warning = %w.error(), "media pipeline warning");
            None
        }
        _ => None,
    }
}
